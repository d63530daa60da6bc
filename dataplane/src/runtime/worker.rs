//! One poll-mode worker: pinned to its core, it polls its ports, answers commands once
//! per loop, and accounts its time as busy (a poll that received frames) or idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::{Cmd, Snapshot};
use crate::pipeline::Pipeline;
use crate::pool::Pool;
use crate::port::Port;

/// How often a worker runs its ports' housekeeping ([`Port::maintain`]: an AF_XDP port
/// checks its netdev).
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);

/// A worker's loop statistics (what `ovs-appctl dpif-netdev/pmd-perf-show` reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Loop iterations.
    pub loops: u64,
    /// Iterations that received at least one frame.
    pub busy_loops: u64,
    /// Frames received.
    pub packets: u64,
    /// Bursts received (a poll of one port that returned frames).
    pub batches: u64,
    /// Nanoseconds spent in iterations that received frames.
    pub busy_ns: u64,
    /// Nanoseconds spent in iterations that received nothing.
    pub idle_ns: u64,
}

impl WorkerStats {
    /// Busy nanoseconds per received frame (0 when nothing was received).
    pub fn ns_per_packet(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.busy_ns as f64 / self.packets as f64
        }
    }
}

pub(super) struct Worker<P: Port> {
    pub(super) id: usize,
    pub(super) core: Option<usize>,
    pub(super) pipeline: Pipeline,
    pub(super) pool: Pool,
    pub(super) ports: Vec<P>,
    pub(super) cmd: Receiver<Cmd>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) epoch: Instant,
    pub(super) stats: WorkerStats,
}

impl<P: Port> Worker<P> {
    pub(super) fn run(mut self) {
        if let Some(c) = self.core {
            // Best effort: an unknown core leaves the thread unpinned.
            core_affinity::set_for_current(core_affinity::CoreId { id: c });
        }
        let mut last = self.epoch.elapsed();
        let mut next_maintain = last + MAINTAIN_EVERY;
        while !self.stop.load(Ordering::Relaxed) {
            while let Ok(cmd) = self.cmd.try_recv() {
                self.handle(cmd);
            }
            P::poll_kernel(&mut self.ports);
            let now = u64::try_from(last.as_nanos()).unwrap_or(u64::MAX);
            let n = self.pipeline.poll(&mut self.ports, &mut self.pool, now) as u64;
            let t = self.epoch.elapsed();
            let spent = u64::try_from(t.saturating_sub(last).as_nanos()).unwrap_or(0);
            last = t;
            if t >= next_maintain {
                next_maintain = t + MAINTAIN_EVERY;
                for p in &mut self.ports {
                    p.maintain(&mut self.pool);
                }
            }
            let s = &mut self.stats;
            s.loops += 1;
            if n > 0 {
                s.busy_loops += 1;
                s.packets += n;
                s.batches += n.div_ceil(crate::port::BURST as u64);
                s.busy_ns += spent;
            } else {
                s.idle_ns += spent;
                std::hint::spin_loop();
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Tables(t) => self.pipeline.set_tables(*t),
            Cmd::Snapshot(reply) => {
                let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let first = self.id == 0;
                let _ = reply.send(Snapshot {
                    worker: self.id,
                    core: self.core,
                    counters: self.pipeline.counters().clone(),
                    stats: self.stats,
                    fdb: if first {
                        self.pipeline.fdb().fdb().iter(now).collect()
                    } else {
                        Vec::new()
                    },
                    neighbors: if first {
                        self.pipeline.neighbors().iter(now).collect()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
}
