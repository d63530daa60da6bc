//! One worker of the benchmark: its pipeline, pool and ports, built on its own pinned
//! thread; learning and warm-up; then timed slices that alternate the real pipeline and
//! the null pipeline over the same ports and frames.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dataplane::counters::Counters;
use dataplane::pipeline::{Pipeline, Tables};
use dataplane::pool::{Desc, Pool};
use dataplane::port::{MemPort, Port, TxMode, BURST};
use flowtable::{FlowCache, PortId, WorkerFdb, DEFAULT_FLOW_CACHE_SIZE};

use super::ring::{self, RingInfo};
use super::traffic::{Spec, Stream, HDR_LEN};
use super::RxMode;

/// Receive queue of a [`MemPort`] in `--rx inject` mode: frames injected per refill.
pub const INJECT_QUEUE: usize = 8 * BURST;
/// Pool chunks beyond the rings / queues: flood copies and learning frames in flight.
const SPARE_CHUNKS: usize = 16 * BURST;
/// Polls between two reads of the clock (the clock also gives the pipeline its `now`).
const POLLS_PER_CHECK: usize = 32;
/// Longest the learning phase may take.
const LEARN_TIMEOUT: Duration = Duration::from_secs(300);

/// What every worker of one run shares.
#[derive(Debug)]
pub struct Shared<'a> {
    /// The switch and its traffic.
    pub spec: &'a Spec,
    /// Workers in the run.
    pub workers: usize,
    /// How frames are received.
    pub rx: RxMode,
    /// Chunks per receive ring (`--rx ring`).
    pub ring: usize,
    /// Every worker sends all the flows (`--replicate-flows`) instead of its share.
    pub replicate: bool,
    /// Measured time of each kind (pipeline, null).
    pub seconds: f64,
    /// Length of one timed slice.
    pub slice: Duration,
    /// Time zero of the pipeline's clock.
    pub epoch: Instant,
    /// Workers whose replica holds every host.
    pub learned: AtomicUsize,
    /// A worker failed: the others stop waiting.
    pub abort: AtomicBool,
    /// Slice boundaries.
    pub barrier: Barrier,
}

impl Shared<'_> {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Frames and time of one kind of loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure {
    /// Frames received and handled.
    pub frames: u64,
    /// Time spent switching them (injection excluded).
    pub ns: u64,
    /// Time spent injecting them (`--rx inject` only).
    pub inject_ns: u64,
    /// Wall time of the slices (switching and injecting).
    pub wall_ns: u64,
    /// Time the thread was on a CPU during the slices (`/proc/thread-self/schedstat`),
    /// 0 when unknown.
    pub cpu_ns: u64,
}

impl Measure {
    fn add(&mut self, o: Measure) {
        self.frames += o.frames;
        self.ns += o.ns;
        self.inject_ns += o.inject_ns;
        self.wall_ns += o.wall_ns;
        self.cpu_ns += o.cpu_ns;
    }

    /// The share of the slices' wall time the thread was on a CPU (1.0 when unknown):
    /// below ~0.99, other processes took cycles and ns/frame is inflated.
    pub fn on_cpu(&self) -> f64 {
        if self.cpu_ns == 0 || self.wall_ns == 0 {
            1.0
        } else {
            (self.cpu_ns as f64 / self.wall_ns as f64).min(1.0)
        }
    }

    /// Nanoseconds per frame (switching only).
    pub fn ns_per_frame(&self) -> f64 {
        self.ns as f64 / self.frames.max(1) as f64
    }

    /// Million frames per second of switching time.
    pub fn mpps(&self) -> f64 {
        if self.ns == 0 {
            0.0
        } else {
            self.frames as f64 * 1e3 / self.ns as f64
        }
    }

    /// Nanoseconds per frame spent injecting.
    pub fn inject_ns_per_frame(&self) -> f64 {
        self.inject_ns as f64 / self.frames.max(1) as f64
    }
}

/// The pipeline's counters that tell what the measured frames did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Frames received.
    pub rx: u64,
    /// Frames sent (flood copies included).
    pub tx: u64,
    /// Frames forwarded to one known port.
    pub unicast: u64,
    /// Frames flooded.
    pub flooded: u64,
    /// Frames dropped.
    pub drops: u64,
    /// Flow-cache hits.
    pub cache_hits: u64,
    /// Flow-cache misses.
    pub cache_misses: u64,
    /// MACs learned.
    pub learned: u64,
}

impl Tally {
    /// The counters of `c` summed over its first `ports` ports: the configuration's
    /// ports, whose frames are on the wire (tunnel ports count the same frames again,
    /// per remote VTEP).
    fn of(c: &Counters, ports: usize) -> Tally {
        Tally {
            rx: c.ports.iter().take(ports).map(|p| p.rx_frames).sum(),
            tx: c.ports.iter().take(ports).map(|p| p.tx_frames).sum(),
            unicast: c.unicast,
            flooded: c.flooded,
            drops: c.total_drops(),
            cache_hits: c.cache_hits,
            cache_misses: c.cache_misses,
            learned: c.learned,
        }
    }

    fn since(self, before: Tally) -> Tally {
        Tally {
            rx: self.rx - before.rx,
            tx: self.tx - before.tx,
            unicast: self.unicast - before.unicast,
            flooded: self.flooded - before.flooded,
            drops: self.drops - before.drops,
            cache_hits: self.cache_hits - before.cache_hits,
            cache_misses: self.cache_misses - before.cache_misses,
            learned: self.learned - before.learned,
        }
    }

    /// Flow-cache hit rate, 0..=1.
    pub fn hit_rate(&self) -> f64 {
        self.cache_hits as f64 / (self.cache_hits + self.cache_misses).max(1) as f64
    }
}

/// What one worker measured.
#[derive(Debug, Clone)]
pub struct WorkerResult {
    /// Worker index.
    pub id: usize,
    /// The core it was pinned to, if pinning worked.
    pub core: Option<usize>,
    /// The real pipeline.
    pub pipe: Measure,
    /// The null pipeline.
    pub null: Measure,
    /// What the measured frames did in the pipeline.
    pub tally: Tally,
    /// Entries in the worker's FDB replica.
    pub fdb_entries: usize,
    /// Ring layout (`--rx ring`).
    pub ring: RingInfo,
    /// Seconds spent learning and warming up.
    pub warmup_s: f64,
    /// Distinct flows this worker sent.
    pub flows: usize,
    /// MiB of the process's anonymous memory in transparent huge pages at the end of the
    /// measurement (`AnonHugePages` of `/proc/self/smaps_rollup`; `None` if unreadable).
    pub anon_huge_mib: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pipe,
    Null,
}

/// Runs worker `id` to the end; `core` is where to pin it.
pub fn run(
    sh: &Shared<'_>,
    id: usize,
    fdb: WorkerFdb,
    tables: Tables,
    core: Option<core_affinity::CoreId>,
) -> Result<WorkerResult> {
    let r = run_inner(sh, id, fdb, tables, core);
    if r.is_err() {
        sh.abort.store(true, Ordering::Relaxed);
    }
    r
}

fn run_inner(
    sh: &Shared<'_>,
    id: usize,
    fdb: WorkerFdb,
    tables: Tables,
    core: Option<core_affinity::CoreId>,
) -> Result<WorkerResult> {
    let core = core.and_then(|c| core_affinity::set_for_current(c).then_some(c.id));
    let nports = tables.ports.len();
    let streams = if sh.replicate {
        sh.spec.streams_for(0, 1)
    } else {
        sh.spec.streams_for(id, sh.workers)
    };
    let mut egress: Vec<u16> = (0..nports).map(|i| ((i + 1) % nports) as u16).collect();
    for s in &streams {
        egress[usize::from(s.port)] = s.egress;
    }
    let flows = streams.iter().map(|s| s.hdrs.len()).sum();
    let cache = FlowCache::new(DEFAULT_FLOW_CACHE_SIZE)?;
    let mut w = Worker {
        sh,
        id,
        pipeline: Pipeline::new(tables, fdb, cache),
        egress,
    };
    let max_flows = streams.iter().map(|s| s.hdrs.len()).max().unwrap_or(0);
    let (ring_info, (pipe, null, tally, warmup_s)) = match sh.rx {
        RxMode::Ring => {
            let chunks = ring::ring_chunks(&streams, sh.ring) + SPARE_CHUNKS;
            let mut pool = Pool::new(u32::try_from(chunks)?);
            let (mut ports, info) = ring::build(nports, &streams, sh.ring, &mut pool)
                .context("building the rx rings")?;
            let mut feed = Feed::Ring;
            let m = w.warm_and_measure(&mut ports, &mut pool, &mut feed, max_flows)?;
            (info, m)
        }
        RxMode::Inject => {
            let chunks = nports * INJECT_QUEUE + SPARE_CHUNKS;
            let mut pool = Pool::new(u32::try_from(chunks)?);
            let mut ports: Vec<MemPort> = (0..nports)
                .map(|_| MemPort::new(INJECT_QUEUE, TxMode::Discard))
                .collect();
            let mut feed = Feed::Inject(Injector::new(streams));
            let m = w.warm_and_measure(&mut ports, &mut pool, &mut feed, max_flows)?;
            (RingInfo::default(), m)
        }
    };
    let anon_huge_mib = anon_huge_mib();
    Ok(WorkerResult {
        anon_huge_mib,
        id,
        core,
        pipe,
        null,
        tally,
        fdb_entries: w.pipeline.fdb().fdb().len(),
        ring: ring_info,
        warmup_s,
        flows,
    })
}

/// Copies frames into [`MemPort`] receive queues, as a NIC would (`--rx inject`).
#[derive(Debug)]
struct Injector {
    streams: Vec<Stream>,
    next: Vec<usize>,
    /// Per stream, the frame being built: the template with the next flow's header.
    scratch: Vec<Vec<u8>>,
}

impl Injector {
    fn new(streams: Vec<Stream>) -> Self {
        Injector {
            next: vec![0; streams.len()],
            scratch: streams.iter().map(|s| s.template.clone()).collect(),
            streams,
        }
    }

    /// Fills every ingress queue; returns frames injected.
    fn fill(&mut self, ports: &mut [MemPort], pool: &mut Pool) -> usize {
        let mut n = 0;
        for ((s, next), buf) in self
            .streams
            .iter()
            .zip(&mut self.next)
            .zip(&mut self.scratch)
        {
            let Some(port) = ports.get_mut(usize::from(s.port)) else {
                continue;
            };
            while port.rx_pending() < INJECT_QUEUE {
                let Some(h) = s.hdrs.get(*next) else { break };
                if let Some(b) = buf.get_mut(s.hdr_at..s.hdr_at + HDR_LEN) {
                    b.copy_from_slice(h);
                }
                if !port.inject(pool, buf) {
                    break;
                }
                *next += 1;
                if *next == s.hdrs.len() {
                    *next = 0;
                }
                n += 1;
            }
        }
        n
    }
}

/// How receive queues get their frames.
#[derive(Debug)]
enum Feed {
    /// [`RingPort`](ring::RingPort)s: always full, nothing to do.
    Ring,
    /// [`MemPort`]s refilled by copying.
    Inject(Injector),
}

/// Ports the bench can refill: only [`MemPort`]s need it.
trait BenchPort: Port {
    fn refill(feed: &mut Feed, ports: &mut [Self], pool: &mut Pool) -> usize
    where
        Self: Sized;
    fn pending(ports: &[Self]) -> bool
    where
        Self: Sized;
}

impl BenchPort for ring::RingPort {
    fn refill(_: &mut Feed, _: &mut [Self], _: &mut Pool) -> usize {
        0
    }
    fn pending(_: &[Self]) -> bool {
        true
    }
}

impl BenchPort for MemPort {
    fn refill(feed: &mut Feed, ports: &mut [Self], pool: &mut Pool) -> usize {
        match feed {
            Feed::Inject(inj) => inj.fill(ports, pool),
            Feed::Ring => 0,
        }
    }
    fn pending(ports: &[Self]) -> bool {
        ports.iter().any(|p| p.rx_pending() > 0)
    }
}

struct Worker<'a, 'b> {
    sh: &'a Shared<'b>,
    id: usize,
    pipeline: Pipeline,
    /// Per port, where the null pipeline moves what it receives.
    egress: Vec<u16>,
}

impl Worker<'_, '_> {
    /// Sends this worker's share of the learning frames until its replica holds every
    /// host (its own and, replicated, the other workers'), then waits for the others
    /// while applying their changes.
    fn learn<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool) -> Result<()> {
        let sh = self.sh;
        let expected = sh.spec.expected_fdb();
        let start = Instant::now();
        loop {
            let mut descs = [Desc::EMPTY; BURST];
            let (mut n, mut cur) = (0, 0u16);
            for (port, f) in sh.spec.learn_frames(self.id, sh.workers) {
                if n == BURST || (n > 0 && port != cur) {
                    self.switch_batch(cur, &descs[..n], ports, pool);
                    n = 0;
                }
                cur = port;
                descs[n] = pool
                    .alloc_with(&f)
                    .context("pool exhausted while learning")?;
                n += 1;
            }
            if n > 0 {
                self.switch_batch(cur, &descs[..n], ports, pool);
            }
            let now = sh.now();
            self.pipeline.fdb_mut().apply_updates(now, usize::MAX);
            if self.pipeline.fdb().fdb().learned_len() >= expected {
                break;
            }
            if start.elapsed() > LEARN_TIMEOUT || sh.abort.load(Ordering::Relaxed) {
                bail!(
                    "worker {}: learned {} of {expected} MACs in {:?}",
                    self.id,
                    self.pipeline.fdb().fdb().learned_len(),
                    start.elapsed()
                );
            }
        }
        sh.learned.fetch_add(1, Ordering::AcqRel);
        while sh.learned.load(Ordering::Acquire) < sh.workers {
            if sh.abort.load(Ordering::Relaxed) {
                bail!("worker {}: another worker failed", self.id);
            }
            self.pipeline.fdb_mut().apply_updates(sh.now(), usize::MAX);
            std::hint::spin_loop();
        }
        self.pipeline.fdb_mut().apply_updates(sh.now(), usize::MAX);
        Ok(())
    }

    fn switch_batch<P: Port>(
        &mut self,
        port: u16,
        descs: &[Desc],
        ports: &mut [P],
        pool: &mut Pool,
    ) {
        let now = self.sh.now();
        self.pipeline.fdb_mut().apply_updates(now, usize::MAX);
        self.pipeline.process(PortId(port), descs, pool, now);
        self.pipeline.flush_tx(ports, pool);
    }

    /// Learns every host, warms the flow cache and both loops up (two passes over the
    /// flows each), then measures.
    fn warm_and_measure<P: BenchPort>(
        &mut self,
        ports: &mut [P],
        pool: &mut Pool,
        feed: &mut Feed,
        max_flows: usize,
    ) -> Result<(Measure, Measure, Tally, f64)> {
        let t0 = Instant::now();
        self.learn(ports, pool)?;
        let warm = 2 * max_flows as u64 + 4 * BURST as u64;
        for kind in [Kind::Pipe, Kind::Null] {
            self.slice(kind, ports, pool, feed, None, Some(warm));
        }
        let warmup_s = t0.elapsed().as_secs_f64();
        let (p, n, t) = self.measure(ports, pool, feed);
        Ok((p, n, t, warmup_s))
    }

    /// The timed part: slices of each kind in turn, every worker starting each slice
    /// together. Returns the pipeline's and the null pipeline's totals and what the
    /// pipeline did with the frames.
    fn measure<P: BenchPort>(
        &mut self,
        ports: &mut [P],
        pool: &mut Pool,
        feed: &mut Feed,
    ) -> (Measure, Measure, Tally) {
        let sh = self.sh;
        // Dense numbering (a switch that never changed its ports): configuration ports,
        // then one tunnel port per remote VTEP.
        let t = self.pipeline.tables();
        let wire = t.ports.len().saturating_sub(t.vteps.len());
        let before = Tally::of(self.pipeline.counters(), wire);
        let (mut pipe, mut null) = (Measure::default(), Measure::default());
        let slices = ((sh.seconds / sh.slice.as_secs_f64()).ceil() as usize).max(1);
        let slice = Duration::from_secs_f64(sh.seconds / slices as f64);
        for _ in 0..slices {
            for kind in [Kind::Pipe, Kind::Null] {
                sh.barrier.wait();
                let m = self.slice(kind, ports, pool, feed, Some(slice), None);
                match kind {
                    Kind::Pipe => pipe.add(m),
                    Kind::Null => null.add(m),
                }
            }
        }
        let tally = Tally::of(self.pipeline.counters(), wire).since(before);
        (pipe, null, tally)
    }

    /// Runs one kind of loop for `time`, or until `frames` frames.
    fn slice<P: BenchPort>(
        &mut self,
        kind: Kind,
        ports: &mut [P],
        pool: &mut Pool,
        feed: &mut Feed,
        time: Option<Duration>,
        frames: Option<u64>,
    ) -> Measure {
        let cpu0 = thread_cpu_ns();
        let start = Instant::now();
        let mut m = self.run_slice(kind, ports, pool, feed, start, time, frames);
        m.wall_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        m.cpu_ns = match (cpu0, thread_cpu_ns()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        };
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn run_slice<P: BenchPort>(
        &mut self,
        kind: Kind,
        ports: &mut [P],
        pool: &mut Pool,
        feed: &mut Feed,
        start: Instant,
        time: Option<Duration>,
        frames: Option<u64>,
    ) -> Measure {
        let sh = self.sh;
        let mut m = Measure::default();
        let mut t = start;
        let done = |m: &Measure, t: Instant| {
            time.is_some_and(|d| t - start >= d) || frames.is_some_and(|f| m.frames >= f)
        };
        match feed {
            Feed::Ring => loop {
                let now = u64::try_from((t - sh.epoch).as_nanos()).unwrap_or(u64::MAX);
                for _ in 0..POLLS_PER_CHECK {
                    m.frames += self.poll(kind, ports, pool, now) as u64;
                }
                t = Instant::now();
                if done(&m, t) {
                    m.ns = u64::try_from((t - start).as_nanos()).unwrap_or(u64::MAX);
                    return m;
                }
            },
            Feed::Inject(_) => loop {
                let t0 = Instant::now();
                P::refill(feed, ports, pool);
                let t1 = Instant::now();
                let now = u64::try_from((t1 - sh.epoch).as_nanos()).unwrap_or(u64::MAX);
                while P::pending(ports) {
                    m.frames += self.poll(kind, ports, pool, now) as u64;
                }
                t = Instant::now();
                m.inject_ns += u64::try_from((t1 - t0).as_nanos()).unwrap_or(0);
                m.ns += u64::try_from((t - t1).as_nanos()).unwrap_or(0);
                if done(&m, t) {
                    return m;
                }
            },
        }
    }

    #[inline]
    fn poll<P: Port>(&mut self, kind: Kind, ports: &mut [P], pool: &mut Pool, now: u64) -> usize {
        match kind {
            Kind::Pipe => self.pipeline.poll(ports, pool, now),
            Kind::Null => null_poll(ports, pool, &self.egress),
        }
    }
}

/// `AnonHugePages` of this process, MiB.
fn anon_huge_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Nanoseconds this thread has run on a CPU (the first field of
/// `/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The null pipeline: receive a burst from every port, read each frame's Ethernet header
/// (addresses and EtherType), and hand the burst to the egress port unchanged.
#[inline(never)]
pub fn null_poll<P: Port>(ports: &mut [P], pool: &mut Pool, egress: &[u16]) -> usize {
    let mut descs = [Desc::EMPTY; BURST];
    let mut total = 0;
    for i in 0..ports.len() {
        let n = ports[i].rx_burst(pool, &mut descs);
        if n == 0 {
            continue;
        }
        let mut acc = 0u64;
        for &d in &descs[..n] {
            if let Some(h) = pool.data(d).get(..14) {
                let mut a = [0u8; 8];
                a.copy_from_slice(&h[..8]);
                let mut b = [0u8; 8];
                b[..6].copy_from_slice(&h[8..14]);
                acc = acc.wrapping_add(u64::from_ne_bytes(a) ^ u64::from_ne_bytes(b));
            }
        }
        black_box(acc);
        let e = egress.get(i).map_or(i, |&e| usize::from(e));
        let sent = match ports.get_mut(e) {
            Some(p) => p.tx_burst(pool, &descs[..n]),
            None => 0,
        };
        for &d in &descs[sent..n] {
            pool.free(d);
        }
        total += n;
    }
    total
}
