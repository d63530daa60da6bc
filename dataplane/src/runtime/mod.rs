//! The running switch: poll-mode workers, each pinned to a core and owning its queue of
//! every port, and the control side that changes and inspects them while they run.
//!
//! # Shape
//!
//! Worker `w` owns a frame pool and queue `w` of every port (RSS spreads a port's
//! traffic over its queues; a port with fewer queues than workers is refused by the
//! [`Backend`]), so every worker can send on every port without sharing a queue, and
//! a frame moves from one port to another inside one worker's pool without a copy. A
//! worker runs its engine ([`Pipeline::poll`], or the forward-only
//! [`Forwarder`]) in a loop and nothing else: no lock, no allocation, no syscall of its
//! own per packet (the ports' own kicks aside). Once a second it runs its ports'
//! housekeeping ([`Port::maintain`]: an AF_XDP port checks its netdev, marks itself
//! down, re-opens it when it is back); a port that is down gets no frames (they are
//! counted as `port_down` drops).
//!
//! The control side ([`Switch`]) talks to the workers in two ways, neither of which
//! makes a worker wait:
//! - FDB changes (static entries, flushes) go through [`FdbControl`]'s lock-free
//!   queues, which every worker drains at its next poll;
//! - everything else is a command on a per-worker channel that the worker checks once
//!   per loop (an empty `try_recv` is one atomic load): a configuration change (new
//!   compiled tables, with the ports it adds and removes), and snapshot requests
//!   answered on a one-shot channel (counters, loop statistics, and from worker 0 the
//!   FDB and neighbour rows).
//!
//! A capture ([`Switch::start_capture`], [`crate::capture`]) hands every worker a tap
//! for the port's slot by the same command channel; it ends without one (the worker
//! drops the tap when it sees the ring closed).
//!
//! # Ports added and removed while running
//!
//! Port numbers stay stable (`runtime/slots.rs`): a port or remote VTEP keeps its number for as
//! long as it exists, whatever is added or removed around it, so the FDB replicas and
//! counters never need renumbering. A change that adds a port first opens it for every
//! worker ([`Backend::open_port`]: with AF_XDP, worker `w`'s socket on queue `w`, on
//! worker `w`'s UMEM, opened by the control thread); only when all of them are open is
//! anything changed, so a missing netdev or a busy queue leaves the switch as it was.
//! Then the removed ports' and VTEPs' learned entries are flushed, and each worker gets
//! one command with the new tables, its new ports and the numbers to close, applied
//! between two polls; the control side waits for every worker's acknowledgement, so a
//! removed port's sockets are closed (and its XDP program detached) when
//! [`Switch::reconfigure`] returns. Learned entries of networks the change does not
//! touch stay.
//!
//! The clock is one monotonic epoch for all workers and the control side
//! ([`Switch::now`]), in nanoseconds.

pub mod chan;
mod control;
mod slots;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};
use flowtable::{
    FdbConfig, FdbControl, FdbEntry, FdbError, FdbGroup, FlowCache, FlushFilter, PortId,
    ReplicaConfig, DEFAULT_FLOW_CACHE_SIZE,
};

use crate::capture::{CaptureOptions, CaptureSession, Producer, Tapped};
use crate::config::{Config, FdbTarget, NetIdx, PortIdx};
use crate::control::proto::{LinkState, XdpMode};
use crate::counters::Counters;
use crate::forward::Forwarder;
use crate::pipeline::{Pipeline, PortLayout, Tables};
use crate::pool::Pool;
use crate::port::Port;
use crate::underlay::NeighborEntry;

use slots::Slots;
pub use worker::WorkerStats;

/// Ports (configuration and tunnel ports) the FDB replicas are built for: room for
/// ports and VTEPs added at runtime without rebuilding the tables.
pub const FDB_MAX_PORTS: usize = 1 << 16;

/// How long a worker may take to apply a configuration change before
/// [`Switch::reconfigure`] reports it.
const APPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the control side learns about ports from the backend that opened them.
pub trait PortInfo: Send + Sync {
    /// What runs the ports (`af_xdp`, `channel`...), for `ctl show`.
    fn datapath(&self) -> &str {
        "runtime"
    }

    /// The link state and XDP mode of the port numbered `port`, where known.
    fn port_status(&self, _port: PortId) -> (LinkState, Option<XdpMode>) {
        (LinkState::Unknown, None)
    }
}

/// How the workers' ports and pools are made: AF_XDP sockets on netdevs, or in-memory
/// ports in tests.
pub trait Backend: PortInfo + 'static {
    /// A port as a worker owns it.
    type Port: Port + Send + 'static;

    /// Opens worker `w`'s frame pool and its queue of every port of `cfg`, in port
    /// order (numbered `0..ports`, the dense numbering a switch starts with).
    fn open(&self, w: usize, cfg: &Config) -> Result<(Pool, Vec<Self::Port>), RuntimeError>;

    /// Opens worker `w`'s queue of `cfg`'s port `port`, added to the running switch as
    /// number `id`. Called from the control thread for every worker in turn (worker 0
    /// first), before the workers hear of the port; the ports it returns are dropped
    /// if the change fails. A backend that cannot add ports refuses.
    fn open_port(
        &self,
        _w: usize,
        cfg: &Config,
        port: PortIdx,
        _id: PortId,
    ) -> Result<Self::Port, RuntimeError> {
        Err(RuntimeError::Port {
            port: cfg.port(port).map_or_else(String::new, |p| p.name.clone()),
            message: format!(
                "the {} datapath cannot add ports at runtime",
                self.datapath()
            ),
        })
    }

    /// The port numbered `id` was removed: every worker has closed its queue.
    fn port_removed(&self, _id: PortId) {}

    /// The XDP fast path its ports are attached to, if any (known after worker 0's
    /// [`Backend::open`]).
    fn fastpath(&self) -> Option<Arc<crate::fastpath::FastPath>> {
        None
    }
}

/// Errors starting or changing the switch.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A port could not be opened.
    #[error("port {port:?}: {message}")]
    Port {
        /// The port's name.
        port: String,
        /// What went wrong.
        message: String,
    },
    /// The FDB refused its configuration or a change.
    #[error("forwarding table: {0}")]
    Fdb(#[from] FdbError),
    /// A worker thread could not be started or stopped.
    #[error("worker {worker}: {message}")]
    Worker {
        /// The worker.
        worker: usize,
        /// What went wrong.
        message: String,
    },
    /// A change names something the configuration does not have.
    #[error("{0}")]
    Invalid(String),
    /// A capture could not start.
    #[error("{0}")]
    Capture(#[from] crate::capture::CaptureError),
    /// The workers run forward-only: there is no MAC table or network to change.
    #[error(
        "{0}: the switch runs forward-only (no MAC table, no networks); restart it without \
         --forward-only / forward_only = true to switch"
    )]
    ForwardOnly(String),
}

/// A configuration change as one worker applies it, between two polls.
pub(crate) struct Apply<P> {
    /// The new compiled tables.
    tables: Box<Tables>,
    /// Port numbers in configuration order (the forward-only pairs).
    order: Vec<PortId>,
    /// Size of the port-number space.
    slots: usize,
    /// New ports: this worker's queue of each, with its number.
    add: Vec<(PortId, P)>,
    /// Numbers of removed ports: closed and dropped.
    remove: Vec<PortId>,
    /// Answered once applied.
    done: Sender<()>,
}

/// A request to a worker.
pub(crate) enum Cmd<P> {
    /// A configuration change.
    Apply(Box<Apply<P>>),
    /// Answer with a snapshot.
    Snapshot(Sender<Snapshot>),
    /// Copy port `port`'s frames to `tap` (a capture).
    Tap {
        /// The port's number.
        port: PortId,
        /// The worker's end of the capture ring.
        tap: Box<Producer>,
        /// Answered once the tap is set.
        done: Sender<()>,
    },
}

/// What a worker reports when asked.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The worker.
    pub worker: usize,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// Its counters.
    pub counters: Counters,
    /// Its loop statistics.
    pub stats: WorkerStats,
    /// Per port number: frames the kernel dropped before this worker's queue of the
    /// port received them ([`Port::kernel_rx_dropped`]).
    pub kernel_rx_dropped: Vec<u64>,
    /// Its FDB replica's live entries (worker 0 only; the replicas agree).
    pub fdb: Vec<FdbEntry>,
    /// Its neighbour cache (worker 0 only).
    pub neighbors: Vec<NeighborEntry>,
}

/// The workers as the (untyped) switch drives them: their command channels, typed by
/// the backend's port, behind an object.
trait WorkerSet: Send {
    /// Workers.
    fn count(&self) -> usize;
    /// Asks worker `w` for a snapshot.
    fn snapshot(&self, w: usize) -> Option<Receiver<Snapshot>>;
    /// Hands worker `w` a capture tap for port `port`; the receiver hears when it is
    /// set. `None` if the worker is gone.
    fn tap(&self, w: usize, port: PortId, tap: Box<Producer>) -> Option<Receiver<()>>;
    /// Opens the `added` ports of `cfg` for every worker and holds them for
    /// [`WorkerSet::commit`]; on error nothing is held.
    fn prepare(&mut self, cfg: &Config, added: &[(PortIdx, PortId)]) -> Result<(), RuntimeError>;
    /// Drops the ports [`WorkerSet::prepare`] opened.
    fn abort(&mut self);
    /// Sends every worker the new tables with its prepared ports and the numbers to
    /// close, and waits until each has applied them.
    fn commit(
        &mut self,
        tables: &Tables,
        layout: &PortLayout,
        remove: &[PortId],
    ) -> Result<(), RuntimeError>;
    /// Waits for every worker thread to end (the stop flag is set).
    fn join(&mut self);
}

struct WorkerHandle<P> {
    thread: Option<JoinHandle<()>>,
    cmd: Sender<Cmd<P>>,
}

struct Workers<B: Backend> {
    backend: Arc<B>,
    handles: Vec<WorkerHandle<B::Port>>,
    /// Per worker: ports opened by `prepare`, not yet sent.
    pending: Vec<Vec<(PortId, B::Port)>>,
}

impl<B: Backend> WorkerSet for Workers<B> {
    fn count(&self) -> usize {
        self.handles.len()
    }

    fn snapshot(&self, w: usize) -> Option<Receiver<Snapshot>> {
        let (tx, rx) = channel::bounded(1);
        self.handles
            .get(w)?
            .cmd
            .send(Cmd::Snapshot(tx))
            .ok()
            .map(|()| rx)
    }

    fn tap(&self, w: usize, port: PortId, tap: Box<Producer>) -> Option<Receiver<()>> {
        let (done, ack) = channel::bounded(1);
        let h = self.handles.get(w)?;
        h.cmd.send(Cmd::Tap { port, tap, done }).ok().map(|()| ack)
    }

    fn prepare(&mut self, cfg: &Config, added: &[(PortIdx, PortId)]) -> Result<(), RuntimeError> {
        self.abort();
        let mut pending: Vec<Vec<(PortId, B::Port)>> =
            (0..self.handles.len()).map(|_| Vec::new()).collect();
        // Worker 0 first for each port: it takes the netdev, the others join it.
        for (k, &(idx, id)) in added.iter().enumerate() {
            for (w, list) in pending.iter_mut().enumerate() {
                match self.backend.open_port(w, cfg, idx, id) {
                    Ok(port) => list.push((id, port)),
                    Err(e) => {
                        // The ports opened so far close here (the netdev's program is
                        // detached with the last of them) and are forgotten.
                        drop(pending);
                        for &(_, id) in &added[..=k] {
                            self.backend.port_removed(id);
                        }
                        return Err(e);
                    }
                }
            }
        }
        self.pending = pending;
        Ok(())
    }

    fn abort(&mut self) {
        let ids: Vec<PortId> = self
            .pending
            .first()
            .map(|l| l.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default();
        self.pending.clear();
        for id in ids {
            self.backend.port_removed(id);
        }
    }

    fn commit(
        &mut self,
        tables: &Tables,
        layout: &PortLayout,
        remove: &[PortId],
    ) -> Result<(), RuntimeError> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.resize_with(self.handles.len(), Vec::new);
        let mut acks = Vec::with_capacity(self.handles.len());
        for (w, (h, add)) in self.handles.iter().zip(pending).enumerate() {
            let (done, ack) = channel::bounded(1);
            let apply = Apply {
                tables: Box::new(tables.clone()),
                order: layout.ports.clone(),
                slots: layout.slots(),
                add,
                remove: remove.to_vec(),
                done,
            };
            h.cmd
                .send(Cmd::Apply(Box::new(apply)))
                .map_err(|_| RuntimeError::Worker {
                    worker: w,
                    message: "stopped".into(),
                })?;
            acks.push(ack);
        }
        let deadline = Instant::now() + APPLY_TIMEOUT;
        let mut late = None;
        for (w, ack) in acks.into_iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if ack.recv_timeout(left).is_err() {
                late.get_or_insert(w);
            }
        }
        for &id in remove {
            self.backend.port_removed(id);
        }
        match late {
            None => Ok(()),
            Some(w) => Err(RuntimeError::Worker {
                worker: w,
                message: format!(
                    "did not apply the change within {} s (it will when it polls again)",
                    APPLY_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    fn join(&mut self) {
        self.pending.clear();
        for h in &mut self.handles {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// What the daemon adds to a configuration read from the file, at start and at each
/// reload (its command line's overrides, values read from its netdevs): see
/// [`Switch::set_completion`]. The error is a message for the operator.
pub type Completion = Box<dyn Fn(&mut Config) -> Result<(), String> + Send>;

/// Options of [`Switch::start`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Cores to pin workers to, in worker order; a worker without one is not pinned.
    pub cores: Vec<usize>,
}

/// A running switch.
pub struct Switch {
    config: Config,
    info: Arc<dyn PortInfo>,
    control: FdbControl,
    workers: Box<dyn WorkerSet>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    generation: u64,
    /// Who has which port number.
    slots: Slots,
    /// The configuration's ports and VTEPs by number.
    layout: PortLayout,
    /// Applied to a configuration read again for a reload.
    completion: Option<Completion>,
    /// Running captures: the port and its session's token (gone when it ends).
    captures: Vec<(PortId, Weak<()>)>,
    /// The XDP fast path, and its agent thread.
    fastpath: Option<Arc<crate::fastpath::FastPath>>,
    fastpath_agent: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("workers", &self.workers.count())
            .field("generation", &self.generation)
            .field("layout", &self.layout)
            .finish()
    }
}

impl Switch {
    /// Builds the tables, opens every worker's ports through `backend` and starts the
    /// workers. Static FDB entries are installed before the first frame.
    pub fn start<B: Backend>(
        config: Config,
        backend: Arc<B>,
        opts: &StartOptions,
    ) -> Result<Switch, RuntimeError> {
        let n = config.switch.workers;
        let fdb_cfg = FdbConfig {
            capacity: config.switch.mac_table_size,
            per_port_limit: u32::try_from(config.switch.mac_limit_per_port).unwrap_or(u32::MAX),
            aging_ns: u64::try_from(config.switch.mac_aging.as_nanos()).unwrap_or(u64::MAX),
            max_ports: FDB_MAX_PORTS,
        };
        let FdbGroup {
            workers: replicas,
            mut control,
        } = FdbGroup::new(n, fdb_cfg, ReplicaConfig::default())?;
        let (slots, layout) = Slots::new(&config);
        for s in &config.static_fdb {
            let vlan = config.networks[s.network.index()].local_vlan;
            control.add_static(vlan, s.mac, Tables::fdb_port(&config, s.target))?;
        }
        let generation = 1;
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        // Open everything before starting anything: a port that cannot be opened fails
        // the start with nothing running.
        let mut opened = Vec::with_capacity(n);
        // Underlay neighbour answers reach one worker's queue: share them.
        let mut peers = crate::pipeline::NeighborPeers::mesh(n).into_iter();
        let mut fastpath = None;
        for (w, mut fdb) in replicas.into_iter().enumerate() {
            let (pool, ports) = backend.open(w, &config)?;
            if w == 0 {
                fastpath = backend.fastpath();
                if let Some(fp) = &fastpath {
                    fp.set_epoch(epoch);
                    fp.set_generation(generation);
                    fp.set_underlay(underlay_info(&config, &layout));
                }
            }
            if let Some(fp) = &fastpath {
                fdb.set_gen_sink(fp.gens());
            }
            let cache = FlowCache::new(DEFAULT_FLOW_CACHE_SIZE)?;
            let mut pipeline = Pipeline::new(Tables::compile(&config, generation), fdb, cache);
            if let Some(fp) = &fastpath {
                pipeline.set_fastpath(fp.hook());
            }
            if let Some(p) = peers.next().filter(|_| n > 1) {
                pipeline.set_neighbor_peers(p);
            }
            opened.push((pipeline, pool, ports));
        }
        let forward_only = config.switch.forward_only;
        // With the fast path on and no NAPI busy polling, the ports' NAPIs (which run the
        // XDP program) are the kernel's to schedule, possibly on the workers' cores: an
        // idle worker gives its core to them.
        let yield_idle = fastpath.is_some() && !config.switch.napi_busy_poll;
        let mut workers = Workers {
            backend: Arc::clone(&backend),
            handles: Vec::with_capacity(n),
            pending: Vec::new(),
        };
        for (w, (pipeline, pool, ports)) in opened.into_iter().enumerate() {
            let core = opts.cores.get(w).copied();
            let stop2 = Arc::clone(&stop);
            let ports: Vec<Tapped<Option<B::Port>>> =
                ports.into_iter().map(|p| Tapped::new(Some(p))).collect();
            let spawned = if forward_only {
                let engine = Forwarder::new(&layout.ports, layout.slots());
                let place = Placement {
                    core,
                    yield_idle: false,
                };
                spawn_worker(w, place, engine, pool, ports, stop2, epoch)
            } else {
                let place = Placement { core, yield_idle };
                spawn_worker(w, place, pipeline, pool, ports, stop2, epoch)
            };
            match spawned {
                Ok(h) => workers.handles.push(h),
                Err(e) => {
                    // Nothing half-started is left running.
                    stop.store(true, Ordering::Relaxed);
                    workers.join();
                    return Err(e);
                }
            }
        }
        let fastpath_agent = match &fastpath {
            Some(fp) => match fp.spawn_agent(Arc::clone(&stop)) {
                Ok(h) => Some(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    workers.join();
                    return Err(RuntimeError::Worker {
                        worker: 0,
                        message: format!("cannot start the fast path's agent: {e}"),
                    });
                }
            },
            None => None,
        };
        Ok(Switch {
            config,
            info: backend as Arc<dyn PortInfo>,
            control,
            workers: Box::new(workers),
            stop,
            epoch,
            generation,
            slots,
            layout,
            completion: None,
            captures: Vec::new(),
            fastpath,
            fastpath_agent,
        })
    }

    /// The XDP fast path, when on.
    pub fn fastpath(&self) -> Option<&Arc<crate::fastpath::FastPath>> {
        self.fastpath.as_ref()
    }

    /// Sets what a reload ([`crate::control::proto::Request::Reload`]) does to the
    /// configuration it reads before comparing it with the running one: the same as the
    /// daemon did to the file's configuration before [`Switch::start`].
    pub fn set_completion(&mut self, f: Completion) {
        self.completion = Some(f);
    }

    /// Nanoseconds since the switch started: the workers' clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The numbers of the configuration's ports and remote VTEPs (the FDB's and the
    /// counters' port numbers).
    pub fn layout(&self) -> &PortLayout {
        &self.layout
    }

    /// Asks every worker for a snapshot; a worker that does not answer within
    /// `timeout` (stopped, or stuck) is left out.
    pub fn snapshots(&self, timeout: Duration) -> Vec<Snapshot> {
        let n = self.workers.count();
        let mut out = Vec::with_capacity(n);
        let replies: Vec<Receiver<Snapshot>> =
            (0..n).filter_map(|w| self.workers.snapshot(w)).collect();
        let deadline = Instant::now() + timeout;
        for rx in replies {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok(s) = rx.recv_timeout(left) {
                out.push(s);
            }
        }
        out
    }

    /// The counters of every worker, summed.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for s in self.snapshots(Duration::from_secs(1)) {
            c.merge(&s.counters);
        }
        c
    }

    /// The FDB port of a static entry's target.
    fn fdb_port(&self, target: FdbTarget) -> Result<PortId, RuntimeError> {
        self.layout
            .fdb_port(target)
            .ok_or_else(|| RuntimeError::Invalid(format!("no port for {target:?}")))
    }

    /// Adds or re-points a static entry.
    pub fn add_static(
        &mut self,
        net: NetIdx,
        mac: encap::MacAddr,
        target: FdbTarget,
    ) -> Result<(), RuntimeError> {
        self.switching("a static entry")?;
        let vlan = self.vlan(net)?;
        let port = self.fdb_port(target)?;
        self.control.add_static(vlan, mac, port)?;
        Ok(())
    }

    /// Removes a static entry.
    pub fn remove_static(&mut self, net: NetIdx, mac: encap::MacAddr) -> Result<(), RuntimeError> {
        self.switching("removing a static entry")?;
        let vlan = self.vlan(net)?;
        let now = self.now();
        self.control.remove_static(vlan, mac, now)?;
        Ok(())
    }

    /// Flushes learned entries: all, of a network, of a port, or of both.
    pub fn flush(
        &mut self,
        net: Option<NetIdx>,
        port: Option<PortIdx>,
    ) -> Result<(), RuntimeError> {
        self.switching("a flush")?;
        let port = match port {
            Some(p) => Some(
                self.layout
                    .port(p)
                    .ok_or_else(|| RuntimeError::Invalid(format!("no port {}", p.0)))?,
            ),
            None => None,
        };
        let filter = match (net, port) {
            (None, None) => FlushFilter::All,
            (Some(n), None) => FlushFilter::Vlan(self.vlan(n)?),
            (None, Some(p)) => FlushFilter::Port(p),
            (Some(n), Some(p)) => FlushFilter::VlanPort(self.vlan(n)?, p),
        };
        let now = self.now();
        self.control.flush(filter, now)?;
        Ok(())
    }

    /// Whether the workers run forward-only (no switching state to change).
    pub fn forward_only(&self) -> bool {
        self.config.switch.forward_only
    }

    /// Refuses a change of switching state in forward-only mode.
    fn switching(&self, what: &str) -> Result<(), RuntimeError> {
        if self.forward_only() {
            return Err(RuntimeError::ForwardOnly(what.to_owned()));
        }
        Ok(())
    }

    fn vlan(&self, net: NetIdx) -> Result<encap::VlanId, RuntimeError> {
        self.config
            .network(net)
            .map(|n| n.local_vlan)
            .ok_or_else(|| RuntimeError::Invalid(format!("no network {}", net.0)))
    }

    /// Applies a new configuration: networks, port modes, static entries, the
    /// underlay, and ports added or removed (matched by name and netdev) may change;
    /// the number of workers may not. New ports are opened first, on every worker: if
    /// one cannot be (no such netdev, a queue bound elsewhere), nothing changes.
    /// Learned entries of removed ports and remote VTEPs are flushed, and of networks
    /// whose local VLAN, segment or ports (a kept port that carries it no longer, or
    /// newly) changed; the others keep theirs. Returns when every worker has applied
    /// the change (removed ports closed).
    pub fn reconfigure(&mut self, new: Config) -> Result<(), RuntimeError> {
        self.switching("a configuration change")?;
        if new.switch.workers != self.config.switch.workers
            || new.switch.forward_only != self.config.switch.forward_only
        {
            return Err(RuntimeError::Invalid(
                "the number of workers and the forward-only mode can only change with a restart"
                    .into(),
            ));
        }
        let now = self.now();
        // A number given back is not handed out again before any entry a worker may
        // have learned on it in flight has aged out.
        let aging = u64::try_from(self.config.switch.mac_aging.as_nanos()).unwrap_or(u64::MAX);
        let plan = self
            .slots
            .plan(&new, now, aging.saturating_add(flowtable::SEC))?;
        self.workers.prepare(&new, &plan.added)?;
        if let Err(e) = self.fdb_changes(&new, &plan, now) {
            self.workers.abort();
            return Err(e);
        }
        self.generation += 1;
        // Every fast-path entry is stale before any worker has the new tables.
        if let Some(fp) = &self.fastpath {
            fp.set_generation(self.generation);
            fp.set_underlay(underlay_info(&new, &plan.layout));
        }
        let tables = Tables::compile_with(&new, self.generation, &plan.layout);
        let committed = self
            .workers
            .commit(&tables, &plan.layout, &plan.removed_ports);
        // Sent: the workers apply it (if late, at their next poll).
        self.config = new;
        self.slots = plan.slots;
        self.layout = plan.layout;
        committed
    }

    /// The FDB side of a change: flushes what no longer holds, replaces the static
    /// entries.
    fn fdb_changes(
        &mut self,
        new: &Config,
        plan: &slots::Plan,
        now: u64,
    ) -> Result<(), RuntimeError> {
        for &id in plan.removed_ports.iter().chain(&plan.removed_vteps) {
            self.control.flush(FlushFilter::Port(id), now)?;
        }
        // Ports in both configurations, by number: (old index, new index).
        let kept: Vec<(usize, usize)> = self
            .layout
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((i, plan.layout.ports.iter().position(|n| n == id)?)))
            .collect();
        // What a cached or learned decision depended on and no longer holds: a network
        // gone or moved to another local VLAN or segment, a kept port that carries it
        // no longer or newly.
        for (i, old) in self.config.networks.iter().enumerate() {
            let changed = match new.network_by_name(&old.name) {
                None => true,
                Some(j) => {
                    let n = &new.networks[j.index()];
                    n.local_vlan != old.local_vlan
                        || n.segment != old.segment
                        || kept.iter().any(|&(po, pn)| {
                            self.config.ports[po].mode.carries(NetIdx(i as u16))
                                != new.ports[pn].mode.carries(j)
                        })
                }
            };
            if changed {
                self.control.flush(FlushFilter::Vlan(old.local_vlan), now)?;
            }
        }
        for s in &self.config.static_fdb {
            let vlan = self.config.networks[s.network.index()].local_vlan;
            self.control.remove_static(vlan, s.mac, now)?;
        }
        for s in &new.static_fdb {
            let vlan = new.networks[s.network.index()].local_vlan;
            let port = plan
                .layout
                .fdb_port(s.target)
                .ok_or_else(|| RuntimeError::Invalid(format!("no port for {:?}", s.target)))?;
            self.control.add_static(vlan, s.mac, port)?;
        }
        Ok(())
    }

    /// Starts capturing the frames of port `port` (see [`crate::capture`]): every
    /// worker gets a tap with its own ring, allocated here; the capture runs until the
    /// session is dropped, the port is removed or the switch stops. One capture per
    /// port at a time. Returns once every worker has its tap (or after 2 s).
    pub fn start_capture(
        &mut self,
        port: PortIdx,
        opts: CaptureOptions,
    ) -> Result<CaptureSession, RuntimeError> {
        let name = self
            .config
            .port(port)
            .map(|p| p.name.clone())
            .ok_or_else(|| RuntimeError::Invalid(format!("no port {}", port.0)))?;
        let id = self
            .layout
            .port(port)
            .ok_or_else(|| RuntimeError::Invalid(format!("no number for port {name:?}")))?;
        self.captures.retain(|(_, w)| w.strong_count() > 0);
        if self.captures.iter().any(|(p, _)| *p == id) {
            return Err(crate::capture::CaptureError::Busy(name).into());
        }
        let n = self.workers.count();
        let mut rings = Vec::with_capacity(n);
        let mut taps = Vec::with_capacity(n);
        for _ in 0..n {
            let (producer, consumer) = crate::capture::ring(&opts, self.epoch);
            taps.push(Box::new(producer));
            rings.push(consumer);
        }
        let (session, token) = CaptureSession::new(name, opts, rings, self.epoch);
        // The port's frames, in and out, take the workers while it is captured.
        if let Some(fp) = &self.fastpath {
            fp.tap(id, token.clone());
        }
        let mut acks = Vec::with_capacity(n);
        for (w, tap) in taps.into_iter().enumerate() {
            let ack = self.workers.tap(w, id, tap).ok_or(RuntimeError::Worker {
                worker: w,
                message: "stopped".into(),
            })?;
            acks.push(ack);
        }
        // Once every worker has its tap, the capture sees every frame from now on (a
        // late worker sets it at its next poll).
        let deadline = Instant::now() + APPLY_TIMEOUT;
        for ack in acks {
            let _ = ack.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        self.captures.push((id, token));
        Ok(session)
    }

    /// A flag that stops the workers when set (e.g. by a signal handler).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops the workers and waits for them; their ports are closed (and with AF_XDP
    /// their XDP programs detached) as they drop.
    pub fn shutdown(mut self) {
        self.stop_workers();
    }

    fn stop_workers(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.workers.join();
        if let Some(h) = self.fastpath_agent.take() {
            let _ = h.join();
        }
    }
}

/// What the XDP fast path needs to decapsulate VXLAN and GRE for `cfg` numbered by
/// `layout`: `None` without an underlay with a known MAC.
fn underlay_info(cfg: &Config, layout: &PortLayout) -> Option<crate::fastpath::UnderlayInfo> {
    let u = cfg.underlay.as_ref()?;
    let vteps = cfg
        .vteps
        .iter()
        .zip(&layout.vteps)
        .filter(|(ip, _)| ip.is_ipv4() == u.local_ip.is_ipv4())
        .map(|(ip, id)| (*ip, *id))
        .collect();
    Some(crate::fastpath::UnderlayInfo {
        port: layout.port(u.port)?,
        local_ip: u.local_ip,
        local_mac: u.local_mac?,
        vxlan_port: u.vxlan_port,
        vteps,
    })
}

/// Starts worker `w` running `engine` on its `pool` and `ports`.
/// Where a worker runs and how it idles.
#[derive(Debug, Clone, Copy)]
struct Placement {
    /// The core it is pinned to, if any.
    core: Option<usize>,
    /// An idle poll yields the core instead of spinning (see `Worker::yield_idle`).
    yield_idle: bool,
}

fn spawn_worker<P: Port + Send + 'static, E: worker::Engine>(
    w: usize,
    place: Placement,
    engine: E,
    pool: Pool,
    ports: Vec<Tapped<Option<P>>>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> Result<WorkerHandle<P>, RuntimeError> {
    let (tx, rx): (Sender<Cmd<P>>, Receiver<Cmd<P>>) = channel::unbounded();
    let ctx = worker::Worker {
        id: w,
        core: place.core,
        engine,
        pool,
        ports,
        cmd: rx,
        stop,
        epoch,
        stats: WorkerStats::default(),
        yield_idle: place.yield_idle,
    };
    let thread = std::thread::Builder::new()
        .name(format!("vswitch-w{w}"))
        .spawn(move || ctx.run())
        .map_err(|e| RuntimeError::Worker {
            worker: w,
            message: e.to_string(),
        })?;
    Ok(WorkerHandle {
        thread: Some(thread),
        cmd: tx,
    })
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop_workers();
    }
}
