//! One poll-mode worker: pinned to its core, it polls its ports, answers commands once
//! per loop, and accounts its time as busy (a poll that received frames) or idle.
//!
//! What a poll does is the worker's [`Engine`], chosen when the worker starts: the
//! switching [`Pipeline`], or the forward-only [`Forwarder`]. The worker is generic
//! over it, so each loop calls one engine directly, with no test of the mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use flowtable::{FdbEntry, PortId};

use super::{Apply, Cmd, Snapshot};
use crate::capture::Tapped;
use crate::counters::Counters;
use crate::forward::{Forwarder, Polled};
use crate::pipeline::{Pipeline, Tables};
use crate::pool::Pool;
use crate::port::Port;
use crate::underlay::NeighborEntry;

/// What a worker runs on its ports at every poll.
pub(crate) trait Engine: Send + 'static {
    /// Receives a burst from every port and does with it what the engine does.
    fn poll<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool, now: u64) -> Polled;
    /// A configuration change: new tables, the port numbers in configuration order and
    /// the size of the number space.
    fn apply(&mut self, tables: Tables, order: &[PortId], slots: usize);
    /// The number `port` is handed to a new port: its counters start from zero.
    fn reset_port(&mut self, port: PortId);
    /// The counters.
    fn counters(&self) -> &Counters;
    /// The live FDB rows (none without switching).
    fn fdb_rows(&self, now: u64) -> Vec<FdbEntry>;
    /// The underlay neighbours (none without switching).
    fn neighbor_rows(&self, now: u64) -> Vec<NeighborEntry>;
}

impl Engine for Pipeline {
    #[inline]
    fn poll<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool, now: u64) -> Polled {
        self.poll_bursts(ports, pool, now)
    }

    fn apply(&mut self, tables: Tables, _order: &[PortId], _slots: usize) {
        Pipeline::set_tables(self, tables);
    }

    fn reset_port(&mut self, port: PortId) {
        self.clear_port_counters(port);
    }

    fn counters(&self) -> &Counters {
        Pipeline::counters(self)
    }

    fn fdb_rows(&self, now: u64) -> Vec<FdbEntry> {
        self.fdb().fdb().iter(now).collect()
    }

    fn neighbor_rows(&self, now: u64) -> Vec<NeighborEntry> {
        self.neighbors().iter(now).collect()
    }
}

impl Engine for Forwarder {
    #[inline]
    fn poll<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool, _now: u64) -> Polled {
        Forwarder::poll(self, ports, pool)
    }

    /// Nothing to switch: networks and tables do not matter, only the ports' pairs.
    fn apply(&mut self, _tables: Tables, order: &[PortId], slots: usize) {
        self.set_ports(order, slots);
    }

    fn reset_port(&mut self, port: PortId) {
        if let Some(c) = self.counters_mut().ports.get_mut(port.index()) {
            *c = Default::default();
        }
    }

    fn counters(&self) -> &Counters {
        Forwarder::counters(self)
    }

    fn fdb_rows(&self, _now: u64) -> Vec<FdbEntry> {
        Vec::new()
    }

    fn neighbor_rows(&self, _now: u64) -> Vec<NeighborEntry> {
        Vec::new()
    }
}

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

pub(super) struct Worker<P: Port, E: Engine> {
    pub(super) id: usize,
    pub(super) core: Option<usize>,
    pub(super) engine: E,
    pub(super) pool: Pool,
    /// Indexed by port number; `None` at holes (removed ports, tunnel ports). Each
    /// slot carries the port's capture tap while one runs.
    pub(super) ports: Vec<Tapped<Option<P>>>,
    pub(super) cmd: Receiver<Cmd<P>>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) epoch: Instant,
    pub(super) stats: WorkerStats,
    /// An idle poll yields the core (to the kernel's NAPI threads on it, which run the
    /// XDP fast path) instead of spinning.
    pub(super) yield_idle: bool,
}

impl<P: Port, E: Engine> Worker<P, E> {
    pub(super) fn run(mut self) {
        if let Some(c) = self.core {
            // Best effort: an unknown core leaves the thread unpinned.
            core_affinity::set_for_current(core_affinity::CoreId { id: c });
        }
        let mut last = self.epoch.elapsed();
        let mut next_maintain = last + MAINTAIN_EVERY;
        while !self.stop.load(Ordering::Relaxed) {
            // Busy and idle time are the polls' own: the time spent on commands and
            // housekeeping (a port opened or closed, a netdev checked) is neither.
            let mut handled = false;
            while let Ok(cmd) = self.cmd.try_recv() {
                self.handle(cmd);
                handled = true;
            }
            if handled {
                last = self.epoch.elapsed();
            }
            crate::port::poll_kernel(&mut self.ports);
            let now = u64::try_from(last.as_nanos()).unwrap_or(u64::MAX);
            let polled = self.engine.poll(&mut self.ports, &mut self.pool, now);
            let n = polled.packets as u64;
            let t = self.epoch.elapsed();
            let spent = u64::try_from(t.saturating_sub(last).as_nanos()).unwrap_or(0);
            last = t;
            if t >= next_maintain {
                next_maintain = t + MAINTAIN_EVERY;
                for p in &mut self.ports {
                    p.maintain(&mut self.pool);
                }
                last = self.epoch.elapsed();
            }
            let s = &mut self.stats;
            s.loops += 1;
            if n > 0 {
                s.busy_loops += 1;
                s.packets += n;
                s.batches += polled.batches as u64;
                s.busy_ns += spent;
            } else {
                s.idle_ns += spent;
                if self.yield_idle {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// A configuration change: removed ports give their frames back and close, new
    /// ones take their numbers, then the engine switches to the new tables.
    fn apply(&mut self, a: Apply<P>) {
        let Apply {
            tables,
            order,
            slots,
            add,
            remove,
            done,
        } = a;
        for id in remove {
            if let Some(slot) = self.ports.get_mut(id.index()) {
                // A capture of the port ends with it.
                slot.clear_tap();
                if let Some(mut p) = slot.port.take() {
                    p.close(&mut self.pool);
                }
            }
        }
        for (id, p) in add {
            // A number handed out again: its counters start from zero. (A removed
            // port's counters stay until then, part of the worker's totals.)
            self.engine.reset_port(id);
            if self.ports.len() <= id.index() {
                self.ports.resize_with(id.index() + 1, || Tapped::new(None));
            }
            self.ports[id.index()] = Tapped::new(Some(p));
        }
        // No port lives at or beyond the number space's end.
        while self.ports.len() > slots && self.ports.last().is_some_and(|s| s.port.is_none()) {
            self.ports.pop();
        }
        self.engine.apply(*tables, &order, slots);
        let _ = done.send(());
    }

    fn handle(&mut self, cmd: Cmd<P>) {
        match cmd {
            Cmd::Apply(a) => self.apply(*a),
            // A port without a queue here (gone meanwhile) drops the tap: the capture
            // sees its ring let go.
            Cmd::Tap { port, tap, done } => {
                if let Some(slot) = self.ports.get_mut(port.index()) {
                    if slot.port.is_some() {
                        slot.set_tap(tap);
                    }
                }
                let _ = done.send(());
            }
            Cmd::Snapshot(reply) => {
                let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let first = self.id == 0;
                let _ = reply.send(Snapshot {
                    worker: self.id,
                    core: self.core,
                    counters: self.engine.counters().clone(),
                    stats: self.stats,
                    kernel_rx_dropped: self.ports.iter_mut().map(Port::kernel_rx_dropped).collect(),
                    fdb: if first {
                        self.engine.fdb_rows(now)
                    } else {
                        Vec::new()
                    },
                    neighbors: if first {
                        self.engine.neighbor_rows(now)
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
}
