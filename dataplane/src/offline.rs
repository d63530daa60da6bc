//! The switch without netdevs: the real pipeline over in-memory ports, driven frame by
//! frame with the caller's clock. `vswitch replay`, `vswitch trace`, the scenario tests
//! and the model-based tests all go through it, so what they check is what runs.

use encap::MacAddr;
use flowtable::{
    FdbConfig, FdbControl, FdbGroup, FlowCache, PortId, ReplicaConfig, DEFAULT_FLOW_CACHE_SIZE,
};

use crate::config::{Config, PortIdx};
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
    fdb.apply_updates(0, usize::MAX);
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

    /// Switches one frame received on `port` at time `now` (ns) and returns what left.
    pub fn inject(&mut self, port: PortIdx, frame: &[u8], now: u64) -> Outcome {
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
        let mut descs = [crate::pool::Desc::EMPTY; BURST];
        let n = p.rx_burst(&mut self.pool, &mut descs);
        // Control-plane changes (static entries, flushes) apply before the frame.
        self.pipeline.fdb_mut().apply_updates(now, usize::MAX);
        self.pipeline
            .process(PortId(port.0), &descs[..n], &mut self.pool, now);
        let (action, dropped) = self.pipeline.last_decision();
        out.action = action;
        out.dropped = dropped;
        self.pipeline.flush_tx(&mut self.ports, &mut self.pool);
        for (i, p) in self.ports.iter_mut().enumerate() {
            for f in p.take_sent() {
                out.sent.push((PortIdx(i as u16), f));
            }
        }
        out
    }

    /// Runs the periodic work of a poll with no traffic (aging sweep, replica updates).
    pub fn tick(&mut self, now: u64) {
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
