//! The generator: `BPF_PROG_RUN` with live frames on the generator's veth, from a thread
//! pinned to one core.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder, ProgramInput};

use super::layout::{self, GenConfigValue, HEADER_LEN, MAX_FLOWS, MAX_MAC_FIELDS, MAX_OFFSET};
use super::sink::{veth_xdp_stats_here, VethXdpStats};
use super::{ifindex_in, sys, TrafficError, GEN_OBJ};

/// `BPF_F_TEST_XDP_LIVE_FRAMES` (linux/bpf.h).
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// Frames per `BPF_PROG_RUN` call when not paced (a few ms at full speed).
const ROUND_FRAMES: u64 = 16 * 1024;
/// Most frames per call (the kernel runs them in batches of 64).
const MAX_CALL_FRAMES: u64 = 64 * 1024;
/// A paced run makes calls of about this long...
const PACED_CALL: Duration = Duration::from_millis(1);
/// ...of at most this many frames: a paced generator sends bursts no longer than a
/// NAPI poll's budget, so that the rate it offers is the rate a switch sees, not
/// millisecond bursts that overflow veth's 256-frame rings at a fraction of the rate.
const PACED_BURST: f64 = 64.0;
/// Below this much time to the deadline, spin instead of sleeping.
const SPIN_BELOW: Duration = Duration::from_micros(200);

/// One kind of frame the generator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The whole Ethernet frame, without FCS. The generator writes the test header at
    /// [`GenConfig::payload_offset`] (magic and stream index before the run, flow,
    /// sequence and timestamp per frame) and rewrites the configured fields.
    pub template: Vec<u8>,
    /// Relative share of the frames (e.g. IMIX 64/594/1518 bytes as 7:4:1). Not 0.
    pub weight: u32,
}

/// What and where the generator sends.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// The namespace of the generator's interface: `/run/netns/NAME`.
    pub netns: PathBuf,
    /// The generator's interface (a veth) in that namespace; frames leave through it.
    pub ifname: String,
    /// The core the generator thread is pinned to (`None`: not pinned).
    pub core: Option<usize>,
    /// The streams, interleaved by weight. 1 to 256 streams.
    pub streams: Vec<Stream>,
    /// Offset of the test header ([`HEADER_LEN`] bytes) in every template.
    pub payload_offset: usize,
    /// Offsets of up to [`MAX_MAC_FIELDS`] MAC fields whose low 24 bits become
    /// `base + flow index`, with the base read from the first stream's template (all
    /// streams get the same MACs per flow).
    pub mac_fields: Vec<usize>,
    /// Offset of a UDP source port (big endian) set to `base + flow index` (mod 2^16),
    /// with the base read from the first stream's template; the templates' UDP checksum
    /// must be 0 (none, IPv4) since no checksum is fixed.
    pub udp_sport_field: Option<usize>,
    /// Number of flows, 1 to 2^24: frame k of a run belongs to flow `k % flows`.
    pub flows: u32,
    /// Frames per second over all streams, or `None` for as fast as possible.
    pub rate_pps: Option<f64>,
}

/// Frames and bytes of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamReport {
    /// Frames the program ran on and handed for transmission.
    pub frames: u64,
    /// Their bytes (template length, no FCS).
    pub bytes: u64,
}

/// What a generator run sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenReport {
    /// Frames the program ran on and handed for transmission (see the module doc for the
    /// frames the kernel may still drop).
    pub frames: u64,
    /// Their bytes (no FCS).
    pub bytes: u64,
    /// Per stream, in [`GenConfig::streams`] order.
    pub streams: Vec<StreamReport>,
    /// From the first call to the end of the last one.
    pub elapsed: Duration,
    /// The sequence number of the first frame; the last one is `first_seq + frames - 1`.
    pub first_seq: u64,
    /// CPU time of the generator thread over the run, kernel work included (the
    /// program runs, the transmit into the peer's ring, and whatever softirq work the
    /// kernel did in this thread, e.g. the sink's NAPI when it shares the core). With
    /// `elapsed`, it tells whether the generator had its core to itself.
    pub cpu_time: Duration,
    /// The generator veth's XDP counters over the run (`ethtool -S`; `None` if they
    /// could not be read). Frames the program handed over either went into the peer's
    /// ring (`xdp_xmit`) or were dropped because it was full (`xdp_xmit_errors`); frames
    /// in neither were dropped uncounted, because the peer had no NAPI (see
    /// [`GenReport::unaccounted`]).
    pub veth: Option<VethXdpStats>,
    /// Whether the program stayed in the kernel's XDP dispatcher through its attachment
    /// to the namespace's `lo` (see the module doc). `false` (lo already had an XDP
    /// program, e.g. another generator in the same namespace) means every call paid
    /// tens of ms: the rate is far below the ceiling. Give each generator its own
    /// namespace.
    pub dispatcher_pinned: bool,
}

impl GenReport {
    /// Frames the generator sent that the veth counted neither as delivered to the peer
    /// nor as dropped at its full ring: lost because the peer had no NAPI (no XDP program,
    /// GRO off) or was down. Should be 0; `None` if the veth counters are missing.
    pub fn unaccounted(&self) -> Option<u64> {
        let v = self.veth?;
        Some(self.frames.saturating_sub(v.xdp_xmit + v.xdp_xmit_errors))
    }
}

/// A generator sending from its own thread until [`Generator::stop`].
#[derive(Debug)]
pub struct Generator {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<GenReport, TrafficError>>>,
}

impl Generator {
    /// Checks `cfg`, starts the generator thread and returns once it has loaded its
    /// program and is about to send (setup errors are returned here).
    pub fn start(cfg: GenConfig) -> Result<Generator, TrafficError> {
        let plan = Plan::new(&cfg)?;
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let sent = Arc::clone(&sent);
            std::thread::Builder::new()
                .name("traffic-gen".into())
                .spawn(move || {
                    let setup = Runner::setup(&cfg, plan);
                    let runner = match setup {
                        Ok(r) => {
                            let _ = ready_tx.send(Ok(()));
                            r
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(GenReport::default());
                        }
                    };
                    runner.run(None, &stop, &sent)
                })
                .map_err(|e| TrafficError::Thread(format!("spawn: {e}")))?
        };
        let mut generator = Generator {
            stop,
            sent,
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(generator),
            Ok(Err(e)) => {
                generator.join().ok();
                Err(e)
            }
            Err(_) => match generator.join() {
                Err(e) => Err(e),
                Ok(_) => Err(TrafficError::Thread("generator thread ended early".into())),
            },
        }
    }

    /// Frames sent so far (updated after each `BPF_PROG_RUN` call, i.e. every few ms).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// True when the generator thread has ended on its own, i.e. on an error that
    /// [`Generator::stop`] returns.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops sending (after the call in progress) and reports what was sent.
    pub fn stop(mut self) -> Result<GenReport, TrafficError> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(&mut self) -> Result<GenReport, TrafficError> {
        match self.thread.take() {
            Some(h) => h
                .join()
                .map_err(|_| TrafficError::Thread("generator thread panicked".into()))?,
            None => Ok(GenReport::default()),
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.join();
    }
}

/// Sends `frames` frames as [`Generator`] would (same streams, flows, rewrites and
/// pacing), from a thread in the generator's namespace, and returns when they are sent:
/// e.g. one frame per flow to teach a switch the MACs before a run. Returns the frames
/// sent.
pub fn send_burst(cfg: &GenConfig, frames: u64) -> Result<u64, TrafficError> {
    let plan = Plan::new(cfg)?;
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let runner = Runner::setup(cfg, plan)?;
            runner.run(Some(frames), &stop, &sent)
        })
        .join()
        .map_err(|_| TrafficError::Thread("burst thread panicked".into()))?
    })
    .map(|r| r.frames)
}

/// The checked configuration: templates with their test header, frames per call.
#[derive(Debug)]
struct Plan {
    templates: Vec<Vec<u8>>,
    /// Frames per call of each stream in one round.
    per_round: Vec<u64>,
    value: GenConfigValue,
}

impl Plan {
    fn new(cfg: &GenConfig) -> Result<Plan, TrafficError> {
        let bad = |m: String| Err(TrafficError::Config(m));
        if cfg.streams.is_empty() || cfg.streams.len() > layout::MAX_STREAMS {
            return bad(format!("{} streams (1 to 256)", cfg.streams.len()));
        }
        if cfg.flows == 0 || cfg.flows > MAX_FLOWS {
            return bad(format!("{} flows (1 to 2^24)", cfg.flows));
        }
        if cfg.mac_fields.len() > MAX_MAC_FIELDS {
            return bad(format!(
                "{} MAC fields (at most {MAX_MAC_FIELDS})",
                cfg.mac_fields.len()
            ));
        }
        if let Some(r) = cfg.rate_pps {
            if !(r.is_finite() && r > 0.0) {
                return bad(format!("rate {r} pps"));
            }
        }
        let mut fields = vec![("test header", cfg.payload_offset, HEADER_LEN)];
        fields.extend(cfg.mac_fields.iter().map(|&o| ("MAC field", o, 6)));
        if let Some(o) = cfg.udp_sport_field {
            if o == 0 {
                return bad("UDP source port at offset 0".into());
            }
            fields.push(("UDP source port", o, 2));
        }
        let mut templates = Vec::with_capacity(cfg.streams.len());
        for (i, s) in cfg.streams.iter().enumerate() {
            if s.weight == 0 {
                return bad(format!("stream {i} has weight 0"));
            }
            for &(what, off, len) in &fields {
                if off > MAX_OFFSET || off + len > s.template.len() {
                    return bad(format!(
                        "{what} at offset {off} ({len} bytes) does not fit stream {i}'s \
                         {}-byte template (offsets at most {MAX_OFFSET})",
                        s.template.len()
                    ));
                }
            }
            let mut t = s.template.clone();
            layout::write_header(&mut t, cfg.payload_offset, i as u8);
            templates.push(t);
        }
        // Rewritten fields take their base from the first template.
        let first = &templates[0];
        let mut value = GenConfigValue {
            payload_off: cfg.payload_offset as u32,
            flows: cfg.flows,
            n_mac: cfg.mac_fields.len() as u32,
            ..Default::default()
        };
        for (i, &o) in cfg.mac_fields.iter().enumerate() {
            value.mac_off[i] = o as u32;
            value.mac_low[i] = u32::from_be_bytes([0, first[o + 3], first[o + 4], first[o + 5]]);
        }
        if let Some(o) = cfg.udp_sport_field {
            value.sport_off = o as u32;
            value.sport_base = u32::from(u16::from_be_bytes([first[o], first[o + 1]]));
        }
        let round = match cfg.rate_pps {
            None => ROUND_FRAMES as f64,
            Some(r) => (r * PACED_CALL.as_secs_f64()).clamp(1.0, PACED_BURST),
        };
        let total_weight: u64 = cfg.streams.iter().map(|s| u64::from(s.weight)).sum();
        // Whole frames per unit of weight, so that the streams' shares are exact.
        let unit = ((round / total_weight as f64) as u64).max(1);
        let per_round = cfg
            .streams
            .iter()
            .map(|s| (unit * u64::from(s.weight)).min(MAX_CALL_FRAMES))
            .collect();
        Ok(Plan {
            templates,
            per_round,
            value,
        })
    }
}

/// The loaded program in the generator thread.
struct Runner {
    // Dropped before the object.
    _lo_link: Option<libbpf_rs::Link>,
    obj: Object,
    plan: Plan,
    ifindex: u32,
    ifname: String,
    rate_pps: Option<f64>,
    first_seq: u64,
}

impl Runner {
    /// Enters the namespace, pins, loads the program and writes its configuration.
    fn setup(cfg: &GenConfig, plan: Plan) -> Result<Runner, TrafficError> {
        sys::enter_netns(&cfg.netns).map_err(|source| TrafficError::Netns {
            path: cfg.netns.clone(),
            source,
        })?;
        if let Some(core) = cfg.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                return Err(TrafficError::Pin(core));
            }
        }
        let ifindex = ifindex_in(&cfg.netns, &cfg.ifname)?;
        let obj = ObjectBuilder::default()
            .open_memory(GEN_OBJ)
            .and_then(|o| o.load())
            .map_err(TrafficError::bpf("load the generator program"))?;
        let lo = ifindex_in(&cfg.netns, "lo")?;
        let zero = 0u32.to_ne_bytes();
        let first_seq = sys::monotonic_ns();
        let mut value = plan.value;
        value.gen_ifindex = ifindex;
        map(&obj, "gen_config")?
            .update(&zero, &value.to_bytes(), MapFlags::ANY)
            .map_err(TrafficError::bpf("write gen_config"))?;
        // The program pre-increments: the first frame gets `first_seq`.
        map(&obj, "gen_state")?
            .update(
                &zero,
                &layout::gen_state_bytes(first_seq - 1, 0),
                MapFlags::ANY,
            )
            .map_err(TrafficError::bpf("write gen_state"))?;
        // Keeps the program in the XDP dispatcher (see gen.bpf.c); generic mode on lo,
        // detached when the link is dropped. Best effort: lo may already have a program
        // (another generator in this namespace); the run is then much slower, and says so.
        let lo_link = prog(&obj)?.attach_xdp(lo as i32).ok();
        Ok(Runner {
            _lo_link: lo_link,
            obj,
            plan,
            ifindex,
            ifname: cfg.ifname.clone(),
            rate_pps: cfg.rate_pps,
            first_seq,
        })
    }

    /// Sends until `stop` or until `limit` frames; publishes the count in `sent`.
    fn run(
        self,
        limit: Option<u64>,
        stop: &AtomicBool,
        sent: &AtomicU64,
    ) -> Result<GenReport, TrafficError> {
        let prog = prog(&self.obj)?;
        let state = map(&self.obj, "gen_state")?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex. The ingress device is where XDP_TX sends.
        let mut ctx = Vec::with_capacity(24);
        let mut streams = vec![StreamReport::default(); self.plan.templates.len()];
        let mut total = 0u64;
        let veth_before = veth_xdp_stats_here(&self.ifname).ok();
        let cpu_before = sys::thread_cpu_ns();
        let start = Instant::now();
        'run: loop {
            for (i, t) in self.plan.templates.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break 'run;
                }
                let mut n = self.plan.per_round[i];
                if let Some(l) = limit {
                    if total >= l {
                        break 'run;
                    }
                    n = n.min(l - total);
                }
                if let Some(rate) = self.rate_pps {
                    wait_until(start + Duration::from_secs_f64(total as f64 / rate));
                }
                ctx.clear();
                for x in [0, t.len() as u32, 0, self.ifindex, 0, 0] {
                    ctx.extend_from_slice(&u32::to_ne_bytes(x));
                }
                let input = ProgramInput {
                    data_in: Some(t),
                    context_in: Some(&mut ctx),
                    repeat: n as u32,
                    flags: BPF_F_TEST_XDP_LIVE_FRAMES,
                    ..Default::default()
                };
                let done = match prog.test_run(input) {
                    Ok(_) => n,
                    // A signal interrupted the call: the state's sequence number says how
                    // many frames it ran on.
                    Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {
                        let v = state
                            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
                            .map_err(TrafficError::bpf("read gen_state"))?;
                        let seq = v.as_deref().and_then(layout::gen_state_seq).unwrap_or(0);
                        (seq + 1).saturating_sub(self.first_seq + total).min(n)
                    }
                    Err(source) => {
                        return Err(TrafficError::Bpf {
                            what: format!("BPF_PROG_RUN of {n} frames"),
                            source,
                        })
                    }
                };
                total += done;
                streams[i].frames += done;
                streams[i].bytes += done * t.len() as u64;
                sent.store(total, Ordering::Relaxed);
            }
        }
        let elapsed = start.elapsed();
        let cpu_time = Duration::from_nanos(sys::thread_cpu_ns().saturating_sub(cpu_before));
        let veth =
            veth_before.and_then(|b| Some(veth_xdp_stats_here(&self.ifname).ok()?.since(&b)));
        Ok(GenReport {
            frames: total,
            bytes: streams.iter().map(|s| s.bytes).sum(),
            streams,
            elapsed,
            first_seq: self.first_seq,
            cpu_time,
            veth,
            dispatcher_pinned: self._lo_link.is_some(),
        })
    }
}

/// The generator program of `obj`.
fn prog(obj: &Object) -> Result<libbpf_rs::ProgramMut<'_>, TrafficError> {
    obj.progs_mut()
        .find(|p| p.name() == "traffic_gen")
        .ok_or_else(|| TrafficError::Config("no program traffic_gen in gen.bpf.o".into()))
}

/// A map of `obj` by name.
fn map<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>, TrafficError> {
    obj.maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| TrafficError::Config(format!("no map {name} in the BPF object")))
}

/// Sleeps, then spins, until `deadline`.
fn wait_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN_BELOW {
            std::thread::sleep(left - SPIN_BELOW / 2);
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(streams: Vec<Stream>) -> GenConfig {
        GenConfig {
            netns: "/nonexistent".into(),
            ifname: "g0".into(),
            core: None,
            streams,
            payload_offset: 42,
            mac_fields: vec![0, 6],
            udp_sport_field: Some(34),
            flows: 16,
            rate_pps: None,
        }
    }

    #[test]
    fn plan_checks_and_weights() {
        let s = |len, weight| Stream {
            template: vec![0u8; len],
            weight,
        };
        let p = Plan::new(&cfg(vec![s(66, 7), s(594, 4), s(1514, 1)])).unwrap();
        assert_eq!(p.per_round.len(), 3);
        assert_eq!(p.per_round[0] * 4, p.per_round[1] * 7);
        assert_eq!(p.value.n_mac, 2);
        assert_eq!(&p.templates[1][42..46], b"VSWT");
        assert_eq!(
            p.templates[2][49], 2,
            "stream index in the index's high byte"
        );

        assert!(
            Plan::new(&cfg(vec![s(57, 1)])).is_err(),
            "header does not fit"
        );
        assert!(Plan::new(&cfg(vec![s(66, 0)])).is_err(), "weight 0");
        assert!(Plan::new(&cfg(vec![])).is_err());
        let mut c = cfg(vec![s(66, 1)]);
        c.flows = 0;
        assert!(Plan::new(&c).is_err());
        c.flows = 1;
        c.rate_pps = Some(f64::NAN);
        assert!(Plan::new(&c).is_err());
        c.rate_pps = Some(1000.0);
        assert_eq!(Plan::new(&c).unwrap().per_round, vec![1]);
    }

    #[test]
    fn mac_base_from_template() {
        let mut t = vec![0u8; 66];
        t[0..6].copy_from_slice(&[2, 0, 0, 0x12, 0x34, 0x56]);
        let p = Plan::new(&cfg(vec![Stream {
            template: t,
            weight: 1,
        }]))
        .unwrap();
        assert_eq!(p.value.mac_low[0], 0x12_3456);
    }
}
