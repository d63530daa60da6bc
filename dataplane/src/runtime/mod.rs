//! The running switch: poll-mode workers, each pinned to a core and owning its queue of
//! every port, and the control side that changes and inspects them while they run.
//!
//! # Shape
//!
//! Worker `w` owns a frame pool and queue `w` of every port (RSS spreads a port's
//! traffic over its queues; a port with fewer queues than workers is refused by the
//! [`Backend`]), so every worker can send on every port without sharing a queue, and
//! a frame moves from one port to another inside one worker's pool without a copy. A
//! worker runs [`Pipeline::poll`] in a loop and nothing else: no lock, no allocation,
//! no syscall of its own per packet (the ports' own kicks aside). Once a second it runs
//! its ports' housekeeping ([`Port::maintain`]: an AF_XDP port checks its netdev, marks
//! itself down, re-opens it when it is back); a port that is down gets no frames (they
//! are counted as `port_down` drops).
//!
//! The control side ([`Switch`]) talks to the workers in two ways, neither of which
//! makes a worker wait:
//! - FDB changes (static entries, flushes) go through [`FdbControl`]'s lock-free
//!   queues, which every worker drains at its next poll;
//! - everything else is a [`Cmd`] on a per-worker channel that the worker checks once
//!   per loop (an empty `try_recv` is one atomic load): new compiled tables, and
//!   snapshot requests answered on a one-shot channel (counters, loop statistics, and
//!   from worker 0 the FDB and neighbour rows).
//!
//! The clock is one monotonic epoch for all workers and the control side
//! ([`Switch::now`]), in nanoseconds.

pub mod chan;
mod control;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};
use flowtable::{
    FdbConfig, FdbControl, FdbEntry, FdbError, FdbGroup, FlowCache, FlushFilter, ReplicaConfig,
    DEFAULT_FLOW_CACHE_SIZE,
};

use crate::config::{Config, FdbTarget, NetIdx, PortIdx};
use crate::control::proto::{LinkState, XdpMode};
use crate::counters::Counters;
use crate::forward::Forwarder;
use crate::pipeline::{Pipeline, Tables};
use crate::pool::Pool;
use crate::port::Port;
use crate::underlay::NeighborEntry;

pub use worker::WorkerStats;

/// Ports (configuration and tunnel ports) the FDB replicas are built for: room for
/// ports and VTEPs added at runtime without rebuilding the tables.
pub const FDB_MAX_PORTS: usize = 1 << 16;

/// What the control side learns about ports from the backend that opened them.
pub trait PortInfo: Send + Sync {
    /// What runs the ports (`af_xdp`, `channel`...), for `ctl show`.
    fn datapath(&self) -> &str {
        "runtime"
    }

    /// A port's link state and XDP mode, where known.
    fn port_status(&self, _port: PortIdx) -> (LinkState, Option<XdpMode>) {
        (LinkState::Unknown, None)
    }
}

/// How the workers' ports and pools are made: AF_XDP sockets on netdevs, or in-memory
/// ports in tests.
pub trait Backend: PortInfo + 'static {
    /// A port as a worker owns it.
    type Port: Port + Send + 'static;

    /// Opens worker `w`'s frame pool and its queue of every port of `cfg`, in port
    /// order.
    fn open(&self, w: usize, cfg: &Config) -> Result<(Pool, Vec<Self::Port>), RuntimeError>;
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
    /// The workers run forward-only: there is no MAC table or network to change.
    #[error(
        "{0}: the switch runs forward-only (no MAC table, no networks); restart it without \
         --forward-only / forward_only = true to switch"
    )]
    ForwardOnly(String),
}

/// A request to a worker.
pub(crate) enum Cmd {
    /// Switch to these compiled tables (a configuration change).
    Tables(Box<Tables>),
    /// Answer with a snapshot.
    Snapshot(Sender<Snapshot>),
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
    /// Its FDB replica's live entries (worker 0 only; the replicas agree).
    pub fdb: Vec<FdbEntry>,
    /// Its neighbour cache (worker 0 only).
    pub neighbors: Vec<NeighborEntry>,
}

struct WorkerHandle {
    thread: Option<JoinHandle<()>>,
    cmd: Sender<Cmd>,
}

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
    workers: Vec<WorkerHandle>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    generation: u64,
}

impl std::fmt::Debug for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switch")
            .field("workers", &self.workers.len())
            .field("generation", &self.generation)
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
        for s in &config.static_fdb {
            let vlan = config.networks[s.network.index()].local_vlan;
            control.add_static(vlan, s.mac, Tables::fdb_port(&config, s.target))?;
        }
        let generation = 1;
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let mut workers = Vec::with_capacity(n);
        // Open everything before starting anything: a port that cannot be opened fails
        // the start with nothing running.
        let mut opened = Vec::with_capacity(n);
        // Underlay neighbour answers reach one worker's queue: share them.
        let mut peers = crate::pipeline::NeighborPeers::mesh(n).into_iter();
        for (w, fdb) in replicas.into_iter().enumerate() {
            let (pool, ports) = backend.open(w, &config)?;
            let cache = FlowCache::new(DEFAULT_FLOW_CACHE_SIZE)?;
            let mut pipeline = Pipeline::new(Tables::compile(&config, generation), fdb, cache);
            if let Some(p) = peers.next().filter(|_| n > 1) {
                pipeline.set_neighbor_peers(p);
            }
            opened.push((pipeline, pool, ports));
        }
        let forward_only = config.switch.forward_only;
        let order: Vec<flowtable::PortId> = (0..config.ports.len())
            .map(|i| flowtable::PortId(i as u16))
            .collect();
        for (w, (pipeline, pool, ports)) in opened.into_iter().enumerate() {
            let core = opts.cores.get(w).copied();
            let stop = Arc::clone(&stop);
            let handle = if forward_only {
                let engine = Forwarder::new(&order, order.len());
                spawn_worker(w, core, engine, pool, ports, stop, epoch)?
            } else {
                spawn_worker(w, core, pipeline, pool, ports, stop, epoch)?
            };
            workers.push(handle);
        }
        Ok(Switch {
            config,
            info: backend,
            control,
            workers,
            stop,
            epoch,
            generation,
        })
    }

    /// Nanoseconds since the switch started: the workers' clock.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Asks every worker for a snapshot; a worker that does not answer within
    /// `timeout` (stopped, or stuck) is left out.
    pub fn snapshots(&self, timeout: Duration) -> Vec<Snapshot> {
        let mut out = Vec::with_capacity(self.workers.len());
        let replies: Vec<Receiver<Snapshot>> = self
            .workers
            .iter()
            .filter_map(|w| {
                let (tx, rx) = channel::bounded(1);
                w.cmd.send(Cmd::Snapshot(tx)).ok().map(|()| rx)
            })
            .collect();
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

    /// Adds or re-points a static entry.
    pub fn add_static(
        &mut self,
        net: NetIdx,
        mac: encap::MacAddr,
        target: FdbTarget,
    ) -> Result<(), RuntimeError> {
        self.switching("a static entry")?;
        let vlan = self.vlan(net)?;
        let port = Tables::fdb_port(&self.config, target);
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
        let filter = match (net, port) {
            (None, None) => FlushFilter::All,
            (Some(n), None) => FlushFilter::Vlan(self.vlan(n)?),
            (None, Some(p)) => FlushFilter::Port(flowtable::PortId(p.0)),
            (Some(n), Some(p)) => FlushFilter::VlanPort(self.vlan(n)?, flowtable::PortId(p.0)),
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

    /// Applies a new configuration with the same ports (netdevs are opened at start):
    /// networks, port modes, static entries and the underlay may change. Learned
    /// entries of networks whose local VLAN or ports changed are flushed; the others
    /// keep theirs.
    pub fn reconfigure(&mut self, new: Config) -> Result<(), RuntimeError> {
        self.switching("a configuration change")?;
        let same_ports = self.config.same_ports(&new);
        if !same_ports || new.switch.workers != self.config.switch.workers {
            return Err(RuntimeError::Invalid(
                "ports and workers can only change with a restart".into(),
            ));
        }
        let now = self.now();
        // What a cached or learned decision depended on and no longer holds: a network
        // gone or moved to another local VLAN, a port that no longer carries a network.
        for (i, old) in self.config.networks.iter().enumerate() {
            let kept = new.networks.iter().position(|n| n.name == old.name);
            let changed = match kept {
                None => true,
                Some(j) => {
                    let n = &new.networks[j];
                    n.local_vlan != old.local_vlan
                        || n.segment != old.segment
                        || self.config.ports.iter().zip(&new.ports).any(|(po, pn)| {
                            po.mode.carries(NetIdx(i as u16)) != pn.mode.carries(NetIdx(j as u16))
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
            self.control
                .add_static(vlan, s.mac, Tables::fdb_port(&new, s.target))?;
        }
        self.generation += 1;
        let tables = Tables::compile(&new, self.generation);
        for (w, h) in self.workers.iter().enumerate() {
            h.cmd
                .send(Cmd::Tables(Box::new(tables.clone())))
                .map_err(|_| RuntimeError::Worker {
                    worker: w,
                    message: "stopped".into(),
                })?;
        }
        self.config = new;
        Ok(())
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
        for h in &mut self.workers {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Starts worker `w` running `engine` on its `pool` and `ports`.
fn spawn_worker<P: Port + Send + 'static, E: worker::Engine>(
    w: usize,
    core: Option<usize>,
    engine: E,
    pool: Pool,
    ports: Vec<P>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> Result<WorkerHandle, RuntimeError> {
    let (tx, rx): (Sender<Cmd>, Receiver<Cmd>) = channel::unbounded();
    let ctx = worker::Worker {
        id: w,
        core,
        engine,
        pool,
        ports,
        cmd: rx,
        stop,
        epoch,
        stats: WorkerStats::default(),
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
