//! The switch without netdevs: the real pipeline over in-memory ports, driven frame by
//! frame with the caller's clock. `vswitch replay`, `vswitch trace`, the scenario tests
//! and the model-based tests all go through it, so what they check is what runs.

use encap::MacAddr;
use flowtable::{
    FdbConfig, FdbControl, FdbEntry, FdbGroup, FlowCache, FlushFilter, PortId, ReplicaConfig,
    WorkerFdb, DEFAULT_FLOW_CACHE_SIZE,
};

use crate::config::{Config, PortIdx};
use crate::control::diff::{static_changes, ConfigDiff};
use crate::control::{ControlError, ControlTarget, SwitchSample, WorkerSample};
use crate::counters::PortCounters;
use crate::pipeline::{Action, Pipeline, Tables};
use crate::pool::{Pool, MAX_FRAME};
use crate::port::{MemPort, Port, TxMode, BURST};

/// Frame buffers of an offline switch: one burst per port in flight at most, plus flood
/// copies.
const POOL_CHUNKS: u32 = 4096;

/// Errors building an offline switch.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The FDB refused its configuration or a static entry.
    #[error("forwarding table: {0}")]
    Fdb(#[from] flowtable::FdbError),
}

/// The pipeline of a one-worker switch for `config`, with its static FDB entries
/// installed, and the control plane's handle on its FDB. The switch's ports are the
/// configuration's ports in order (`PortId(i)` is `config.ports[i]`).
pub fn single_worker_pipeline(config: &Config) -> Result<(Pipeline, FdbControl), OfflineError> {
    let (fdb, control) = fdb_for(config, 0)?;
    let tables = Tables::compile(config, 1);
    let cache = FlowCache::new(DEFAULT_FLOW_CACHE_SIZE)?;
    Ok((Pipeline::new(tables, fdb, cache), control))
}

/// A whole switch in memory.
#[derive(Debug)]
pub struct OfflineSwitch {
    config: Config,
    control: FdbControl,
    pipeline: Pipeline,
    pool: Pool,
    ports: Vec<MemPort>,
    /// The latest time seen (inject, tick): the control plane's clock.
    now: u64,
    /// The tables' generation, bumped by every configuration change.
    generation: u64,
    /// Batches switched (one per injected frame).
    batches: u64,
    /// Per-port counters across configuration changes, which renumber ports: what a
    /// port had counted before the last change (`carried`) and what the pipeline's
    /// counter at its new number held at the change (`base`).
    carried: Vec<PortCounters>,
    base: Vec<PortCounters>,
}

/// What happened to one injected frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Frames sent, per port, in order.
    pub sent: Vec<(PortIdx, Vec<u8>)>,
    /// The pipeline's decision, or `None` if the frame was dropped before forwarding.
    pub action: Option<Action>,
    /// Why it was dropped, if it was.
    pub dropped: Option<crate::counters::DropReason>,
}

impl OfflineSwitch {
    /// Builds the switch for `config`, with its static FDB entries installed.
    pub fn new(config: Config) -> Result<Self, OfflineError> {
        let (pipeline, control) = single_worker_pipeline(&config)?;
        let ports = (0..config.ports.len())
            .map(|_| MemPort::new(BURST, TxMode::Capture))
            .collect();
        Ok(OfflineSwitch {
            pipeline,
            pool: Pool::new(POOL_CHUNKS),
            ports,
            control,
            config,
            now: 0,
            generation: 1,
            batches: 0,
            carried: Vec::new(),
            base: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The control plane's handle on the FDB (static entries, flushes); changes reach the
    /// pipeline at its next poll or injected frame.
    pub fn fdb_control(&mut self) -> &mut FdbControl {
        &mut self.control
    }

    /// The pipeline (counters, FDB, tables).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The pipeline, to connect it to others (e.g. [`Pipeline::set_neighbor_peers`]).
    pub fn pipeline_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// Switches one frame received on `port` at time `now` (ns) and returns what left.
    pub fn inject(&mut self, port: PortIdx, frame: &[u8], now: u64) -> Outcome {
        self.now = self.now.max(now);
        let mut out = Outcome {
            sent: Vec::new(),
            action: None,
            dropped: None,
        };
        let Some(p) = self.ports.get_mut(port.index()) else {
            out.dropped = Some(crate::counters::DropReason::NoPort);
            return out;
        };
        if frame.len() > MAX_FRAME || !p.inject(&mut self.pool, frame) {
            out.dropped = Some(crate::counters::DropReason::NoBuffer);
            return out;
        }
        out.sent = self.run_batch(port, now);
        let (action, dropped) = self.pipeline.last_decision();
        out.action = action;
        out.dropped = dropped;
        out
    }

    /// Takes what `port` received as one batch through the pipeline at `now`; returns
    /// what left, per port in order.
    fn run_batch(&mut self, port: PortIdx, now: u64) -> Vec<(PortIdx, Vec<u8>)> {
        let Some(p) = self.ports.get_mut(port.index()) else {
            return Vec::new();
        };
        let mut descs = [crate::pool::Desc::EMPTY; BURST];
        let n = p.rx_burst(&mut self.pool, &mut descs);
        self.batches += 1;
        // Control-plane changes (static entries, flushes) apply before the frames.
        self.pipeline.fdb_mut().apply_updates(now, usize::MAX);
        self.pipeline
            .process(PortId(port.0), &descs[..n], &mut self.pool, now);
        self.pipeline.flush_tx(&mut self.ports, &mut self.pool);
        let mut sent = Vec::new();
        for (i, p) in self.ports.iter_mut().enumerate() {
            sent.extend(p.take_sent().into_iter().map(|f| (PortIdx(i as u16), f)));
        }
        sent
    }

    /// Switches `frames`, received together on `port` at `now`, as one batch (the way
    /// a poll takes them); returns what left, per port in order. Frames beyond a batch
    /// ([`BURST`]) or that do not fit a buffer are counted drops (`no_buffer`).
    pub fn inject_burst(
        &mut self,
        port: PortIdx,
        frames: &[&[u8]],
        now: u64,
    ) -> Vec<(PortIdx, Vec<u8>)> {
        self.now = self.now.max(now);
        let Some(p) = self.ports.get_mut(port.index()) else {
            return Vec::new();
        };
        for (i, f) in frames.iter().enumerate() {
            if i >= BURST || f.len() > MAX_FRAME || !p.inject(&mut self.pool, f) {
                self.pipeline
                    .count_drop(crate::counters::DropReason::NoBuffer);
            }
        }
        self.run_batch(port, now)
    }

    /// Runs the periodic work of a poll with no traffic (aging sweep, replica updates).
    pub fn tick(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.pipeline.poll(&mut self.ports, &mut self.pool, now);
    }

    /// The port a MAC is learned on in a network, as the FDB says at `now`.
    pub fn fdb_lookup(
        &self,
        net: crate::config::NetIdx,
        mac: MacAddr,
        now: u64,
    ) -> Option<PortIdx> {
        let vlan = self.config.networks.get(net.index())?.local_vlan;
        self.pipeline
            .fdb()
            .lookup(vlan, mac, now)
            .map(|p| PortIdx(p.0))
    }
}

/// The FDB replica of a one-worker switch and its control handle, with `config`'s
/// static entries installed at `now`.
fn fdb_for(config: &Config, now: u64) -> Result<(WorkerFdb, FdbControl), OfflineError> {
    let fdb_cfg = FdbConfig {
        capacity: config.switch.mac_table_size,
        per_port_limit: u32::try_from(config.switch.mac_limit_per_port).unwrap_or(u32::MAX),
        aging_ns: u64::try_from(config.switch.mac_aging.as_nanos()).unwrap_or(u64::MAX),
        max_ports: (config.ports.len() + config.vteps.len()).max(1),
    };
    let FdbGroup {
        mut workers,
        mut control,
    } = FdbGroup::new(1, fdb_cfg, ReplicaConfig::default())?;
    for s in &config.static_fdb {
        let vlan = config.networks[s.network.index()].local_vlan;
        control.add_static(vlan, s.mac, Tables::fdb_port(config, s.target))?;
    }
    let mut fdb = workers.remove(0);
    fdb.apply_updates(now, usize::MAX);
    Ok((fdb, control))
}

fn add(a: PortCounters, b: PortCounters) -> PortCounters {
    PortCounters {
        rx_frames: a.rx_frames.wrapping_add(b.rx_frames),
        rx_bytes: a.rx_bytes.wrapping_add(b.rx_bytes),
        tx_frames: a.tx_frames.wrapping_add(b.tx_frames),
        tx_bytes: a.tx_bytes.wrapping_add(b.tx_bytes),
    }
}

fn sub(a: PortCounters, b: PortCounters) -> PortCounters {
    PortCounters {
        rx_frames: a.rx_frames.wrapping_sub(b.rx_frames),
        rx_bytes: a.rx_bytes.wrapping_sub(b.rx_bytes),
        tx_frames: a.tx_frames.wrapping_sub(b.tx_frames),
        tx_bytes: a.tx_bytes.wrapping_sub(b.tx_bytes),
    }
}

impl OfflineSwitch {
    /// The control plane's clock: the latest time given to [`inject`](Self::inject) or
    /// [`tick`](Self::tick).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The pipeline's counters with per-port counters that follow their port across
    /// configuration changes.
    pub fn counters(&self) -> crate::counters::Counters {
        let mut c = self.pipeline.counters().clone();
        for (i, p) in c.ports.iter_mut().enumerate() {
            let carried = self.carried.get(i).copied().unwrap_or_default();
            let base = self.base.get(i).copied().unwrap_or_default();
            *p = add(carried, sub(*p, base));
        }
        c
    }

    /// Switches to `new` (validated): learned entries of untouched networks on
    /// untouched ports stay ([`ConfigDiff`]), as do the counters of the ports that
    /// remain; a change to static entries only goes through the FDB's control lanes.
    /// On error nothing changed.
    pub fn apply_config(&mut self, new: Config) -> Result<(), OfflineError> {
        let now = self.now;
        let diff = ConfigDiff::new(&self.config, &new);
        if diff.statics_only() {
            let (removed, added) = static_changes(&self.config, &new);
            for k in removed {
                self.control.remove_static(k.vlan, k.mac, now)?;
            }
            for k in added {
                self.control.add_static(k.vlan, k.mac, k.port)?;
            }
            self.pipeline.fdb_mut().apply_updates(now, usize::MAX);
            self.config = new;
            return Ok(());
        }
        let (mut fdb, control) = fdb_for(&new, now)?;
        let mut keep: Vec<FdbEntry> = self
            .pipeline
            .fdb()
            .fdb()
            .iter(now)
            .filter_map(|e| diff.carry(&new, &e))
            .collect();
        // Oldest first, each at the time it was last seen: ages and recency survive.
        keep.sort_by_key(|e| core::cmp::Reverse(e.age_ns));
        for e in keep {
            fdb.learn(e.vlan, e.mac, e.port, now.saturating_sub(e.age_ns));
        }
        let old_counters = self.counters();
        self.generation += 1;
        *self.pipeline.fdb_mut() = fdb;
        self.pipeline
            .set_tables(Tables::compile(&new, self.generation));
        let n = self.pipeline.counters().ports.len();
        let mut carried = vec![PortCounters::default(); n];
        for (old, c) in old_counters.ports.iter().enumerate() {
            if let Some(p) = diff.port(PortId(old as u16)) {
                if let Some(slot) = carried.get_mut(p.index()) {
                    *slot = *c;
                }
            }
        }
        self.carried = carried;
        self.base = self.pipeline.counters().ports.clone();
        let mut old_ports: Vec<Option<MemPort>> = std::mem::take(&mut self.ports)
            .into_iter()
            .map(Some)
            .collect();
        self.ports = (0..new.ports.len())
            .map(|i| {
                self.config
                    .ports
                    .iter()
                    .position(|p| new.ports.get(i).is_some_and(|q| q.name == p.name))
                    .and_then(|old| old_ports.get_mut(old)?.take())
                    .unwrap_or_else(|| MemPort::new(BURST, TxMode::Capture))
            })
            .collect();
        self.control = control;
        self.config = new;
        Ok(())
    }
}

impl ControlTarget for OfflineSwitch {
    fn config(&self) -> &Config {
        &self.config
    }

    fn datapath(&self) -> &str {
        "offline"
    }

    fn port_status(
        &self,
        _port: PortIdx,
    ) -> (
        crate::control::proto::LinkState,
        Option<crate::control::proto::XdpMode>,
    ) {
        // In-memory ports are always up and have no XDP program.
        (crate::control::proto::LinkState::Up, None)
    }

    fn fdb_entries(&self) -> Vec<FdbEntry> {
        self.pipeline.fdb().fdb().iter(self.now).collect()
    }

    fn fdb_flush(&mut self, filter: FlushFilter) -> Result<(), ControlError> {
        self.control.flush(filter, self.now)?;
        self.pipeline.fdb_mut().apply_updates(self.now, usize::MAX);
        Ok(())
    }

    /// One worker. Its cycle counts are 0: an offline switch is driven frame by frame
    /// by its caller and measures no time of its own (`cycles_per_packet` is then
    /// reported as unknown). A batch is one injected frame.
    fn stats(&self) -> SwitchSample {
        let fdb = self.pipeline.fdb().fdb();
        let rows: Vec<FdbEntry> = fdb.iter(self.now).collect();
        SwitchSample {
            workers: vec![WorkerSample {
                id: 0,
                core: None,
                counters: self.counters(),
                batches: self.batches,
                polls: self.batches,
                busy_polls: self.batches,
                busy_cycles: 0,
                idle_cycles: 0,
                busy_ns: 0,
                idle_ns: 0,
                kernel_rx_dropped: Vec::new(),
            }],
            fdb_entries: fdb.len(),
            fdb_static: fdb.static_len(),
            fdb_vlans: crate::control::VlanOccupancy::count(&rows),
        }
    }

    fn neighbors(&self) -> Vec<crate::underlay::NeighborEntry> {
        self.pipeline.neighbors().iter(self.now).collect()
    }

    fn apply_config(&mut self, new: Config) -> Result<(), ControlError> {
        OfflineSwitch::apply_config(self, new).map_err(|e| match e {
            OfflineError::Fdb(e) => ControlError::from(e),
        })
    }
}
