//! [`ControlTarget`] for the running [`Switch`]: what `vswitch ctl` asks of `vswitch run`.
//!
//! Reads come from the workers' snapshots (worker 0's FDB replica and neighbour cache;
//! every worker's counters and loop statistics), asked for and awaited here in the
//! control thread, never making a worker wait. FDB flushes go through the FDB's control
//! lanes; configuration changes through [`Switch::reconfigure`], which keeps the
//! learned entries of untouched networks.
//!
//! Worker time is measured with the monotonic clock and reported in nanoseconds
//! (`busy_ns`, `idle_ns`, `ns_per_packet`); the cycle fields stay 0 (not measured).

use std::time::Duration;

use flowtable::{FdbEntry, FlushFilter};

use super::{RuntimeError, Switch};
use crate::capture::{CaptureError, CaptureOptions, CaptureSession};
use crate::config::{Config, PortIdx};
use crate::control::proto::{LinkState, XdpMode};
use crate::control::{ControlError, ControlTarget, SwitchSample, VlanOccupancy, WorkerSample};
use crate::pipeline::PortLayout;
use crate::underlay::NeighborEntry;

/// How long a control request waits for the workers' snapshots.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(1);

impl Switch {
    /// Worker 0's snapshot (FDB rows and neighbours), if it answers in time.
    fn first_snapshot(&self) -> Option<super::Snapshot> {
        self.snapshots(SNAPSHOT_TIMEOUT)
            .into_iter()
            .find(|s| s.worker == 0)
    }
}

fn control_error(e: RuntimeError) -> ControlError {
    match e {
        RuntimeError::Fdb(e) => ControlError::from(e),
        RuntimeError::Capture(e @ CaptureError::Busy(_)) => ControlError::Busy(e.to_string()),
        RuntimeError::Capture(e) => ControlError::BadRequest(e.to_string()),
        e => ControlError::Failed(e.to_string()),
    }
}

impl ControlTarget for Switch {
    fn config(&self) -> &Config {
        &self.config
    }

    fn datapath(&self) -> &str {
        self.info.datapath()
    }

    fn port_status(&self, port: PortIdx) -> (LinkState, Option<XdpMode>) {
        match self.layout.port(port) {
            Some(id) => self.info.port_status(id),
            None => (LinkState::Unknown, None),
        }
    }

    fn port_layout(&self) -> PortLayout {
        self.layout.clone()
    }

    fn fdb_entries(&self) -> Vec<FdbEntry> {
        self.first_snapshot().map(|s| s.fdb).unwrap_or_default()
    }

    fn fdb_flush(&mut self, filter: FlushFilter) -> Result<(), ControlError> {
        if self.forward_only() {
            return Err(control_error(RuntimeError::ForwardOnly("a flush".into())));
        }
        let now = self.now();
        self.control.flush(filter, now)?;
        Ok(())
    }

    fn fastpath(&self) -> Option<std::sync::Arc<crate::fastpath::FastPath>> {
        Switch::fastpath(self).cloned()
    }

    fn stats(&self) -> SwitchSample {
        let snaps = self.snapshots(SNAPSHOT_TIMEOUT);
        let (fdb_entries, fdb_static, fdb_vlans) = snaps
            .iter()
            .find(|s| s.worker == 0)
            .map(|s| {
                let statics = s.fdb.iter().filter(|e| e.is_static).count();
                (s.fdb.len(), statics, VlanOccupancy::count(&s.fdb))
            })
            .unwrap_or_default();
        SwitchSample {
            workers: snaps
                .into_iter()
                .map(|s| WorkerSample {
                    id: s.worker,
                    core: s.core,
                    counters: s.counters,
                    batches: s.stats.batches,
                    polls: s.stats.loops,
                    busy_polls: s.stats.busy_loops,
                    busy_cycles: ns_to_cycles(s.stats.busy_ns),
                    idle_cycles: ns_to_cycles(s.stats.idle_ns),
                    busy_ns: s.stats.busy_ns,
                    idle_ns: s.stats.idle_ns,
                    kernel_rx_dropped: s.kernel_rx_dropped,
                })
                .collect(),
            fdb_entries,
            fdb_static,
            fdb_vlans,
        }
    }

    fn neighbors(&self) -> Vec<NeighborEntry> {
        self.first_snapshot()
            .map(|s| s.neighbors)
            .unwrap_or_default()
    }

    fn complete_config(&self, new: &mut Config) -> Result<(), ControlError> {
        match &self.completion {
            Some(f) => f(new).map_err(ControlError::Failed),
            None => Ok(()),
        }
    }

    /// Every change applies at once, ports added and removed included (their netdevs
    /// opened and closed while the workers run); learned entries of untouched networks
    /// and ports stay.
    fn apply_config(&mut self, new: Config) -> Result<(), ControlError> {
        self.reconfigure(new).map_err(control_error)
    }

    fn start_capture(
        &mut self,
        port: PortIdx,
        opts: CaptureOptions,
    ) -> Result<CaptureSession, ControlError> {
        Switch::start_capture(self, port, opts).map_err(control_error)
    }
}

/// The nominal clock of the CPU in MHz (`cpu MHz` of `/proc/cpuinfo`, the TSC rate on
/// the machines we run on), read once; 0 when unknown.
fn cpu_mhz() -> f64 {
    static MHZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *MHZ.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("cpu MHz"))
                    .and_then(|l| l.split(':').nth(1))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    })
}

/// Worker time in cycles of the nominal clock: the workers measure nanoseconds (reading
/// the TSC needs `unsafe`, kept to the AF_XDP modules), converted here; 0 when the clock
/// is unknown (then `ctl stats` shows the ns figures only).
fn ns_to_cycles(ns: u64) -> u64 {
    (ns as f64 * cpu_mhz() / 1000.0) as u64
}
