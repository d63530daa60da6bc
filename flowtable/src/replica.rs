//! N poll-mode workers, N FDB replicas, no locks: how what one worker learns reaches
//! the others.
//!
//! # Why replicas
//!
//! Every frame refreshes its source entry, so a shared table would take a write on
//! every frame: a lock, or at best an atomic store into a cache line that bounces
//! between cores. STYLE principle 8 offers epochs, sequence numbers or per-worker
//! replicas fed by channels. Replicas make the per-frame path (lookup, refresh) touch
//! only the worker's own memory; the price is memory (one table per worker) and a
//! short, bounded delay before a new MAC is known everywhere. Learning *changes*
//! (new MACs, moves, and a refresh at most once per refresh period per MAC: about a
//! sixteenth of the aging time, at least 2^30 ns, see [`crate::fdb::refresh_shift`]) are rare next to
//! frames, so the channel traffic is small.
//!
//! # How
//!
//! - **Lanes.** Each worker has one inbound lane per other worker, a preallocated
//!   [`ArrayQueue`]: `N × (N − 1)` lanes plus one control lane per worker. With one
//!   producer per lane, "the lane has room" checked by the producer stays true until
//!   it pushes, so a learner can check that *every* replica will receive a change
//!   before making it: a change is made everywhere or nowhere. If any lane is full the
//!   learner does not learn locally either ([`Learn::Deferred`], counted as
//!   `learn_backpressure`): the next frame from that source retries. Replicas never
//!   diverge because a queue overflowed.
//! - **Order.** Every change carries a sequence number from one [`AtomicU64`]
//!   (`fetch_add`, no lock). Lanes deliver in order per producer but not across
//!   producers, so a replica overwrites an entry only with a change of a higher
//!   sequence number (last writer wins): replicas that received the same changes in
//!   any order hold the same port for every MAC.
//! - **Removals** are not replicated when they are local decisions (aging, eviction
//!   of a full table): each replica ages and bounds its own table with the same rules.
//!   Control-plane removals ([`FdbControl::flush`], [`FdbControl::remove_static`])
//!   go to every replica through its control lane, carry a sequence number too, and
//!   remove only entries older than themselves; each replica remembers them for one
//!   aging period so that an older change still in flight cannot bring the entry back.
//!   Static entries always win over learned ones.
//!
//! # The delay bound
//!
//! A MAC learned by worker A is used by worker B from B's next poll after A's
//! [`WorkerFdb::learn`] returned [`Learn::New`] or [`Learn::Moved`] — B calls
//! [`WorkerFdb::apply_updates`] at the start of each poll — i.e. within one batch,
//! provided B's `budget` covers its backlog (otherwise one more poll per `budget`
//! events). Until then B floods frames for that MAC, which is what it did before A
//! learned it. Refreshes are published when an entry is refreshed in a new refresh
//! period, so a replica's idle timer lags the learner's by less than one period (two if
//! a lane was full), and a replica may age an entry out up to that much earlier.
//!
//! # What converges
//!
//! After every lane has drained, replicas hold the same port for every live learned
//! MAC and the same static entries, provided no replica had to evict (each replica
//! enforces the capacity on its own contents) and no learn raced a static entry being
//! added *and* removed again (the learner's entry is replaced by the static one, a
//! replica that saw the removal first keeps the learned entry until it ages: both are
//! views the switch's observations justify). Idle timers agree to within a refresh
//! period.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use encap::{MacAddr, VlanId};

use crate::fdb::{Applied, SeqSource, Upsert};
use crate::{Fdb, FdbConfig, FdbError, FdbHit, FdbKey, FlushFilter, Learn, PortId};

/// Queue sizes of a replica group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// Changes in flight from one worker to another. A MAC flood publishes one change
    /// per new MAC; with lanes of this size and a poll every few microseconds the
    /// flood is absorbed; beyond it learning defers rather than diverges.
    pub lane_capacity: usize,
    /// Control operations in flight to one worker.
    pub control_capacity: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            lane_capacity: 4096,
            control_capacity: 256,
        }
    }
}

/// A control-plane change, applied by every worker in the order issued.
#[derive(Clone, Copy, Debug)]
enum Control {
    AddStatic {
        key: FdbKey,
        port: PortId,
    },
    RemoveStatic {
        key: FdbKey,
        seq: u64,
        time: u64,
    },
    Flush {
        filter: FlushFilter,
        seq: u64,
        time: u64,
    },
}

#[derive(Debug)]
struct Shared {
    seq: CachePadded<AtomicU64>,
    workers: usize,
    /// `lanes[src * workers + dst]`; `None` on the diagonal.
    lanes: Vec<Option<ArrayQueue<Upsert>>>,
    control: Vec<ArrayQueue<Control>>,
}

impl Shared {
    #[inline]
    fn lane(&self, src: usize, dst: usize) -> Option<&ArrayQueue<Upsert>> {
        self.lanes.get(src * self.workers + dst)?.as_ref()
    }

    #[inline]
    fn next_seq(&self) -> u64 {
        // Relaxed: only uniqueness and the order of increments matter; the event
        // itself is published by the queue (release on push, acquire on pop).
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Builds the replicas of a switch and the control-plane handle that feeds them.
#[derive(Debug)]
pub struct FdbGroup {
    /// One per poll-mode worker; move each into its thread.
    pub workers: Vec<WorkerFdb>,
    /// Static entries and flushes for every worker.
    pub control: FdbControl,
}

impl FdbGroup {
    /// `workers` replicas of a table configured by `cfg`, wired by `lanes`.
    pub fn new(workers: usize, cfg: FdbConfig, lanes: ReplicaConfig) -> Result<Self, FdbError> {
        if workers == 0 || workers > 64 {
            return Err(FdbError::Workers(workers));
        }
        if lanes.lane_capacity == 0 || lanes.control_capacity == 0 {
            return Err(FdbError::QueueCapacity);
        }
        cfg.validate()?;
        let shared = Arc::new(Shared {
            seq: CachePadded::new(AtomicU64::new(0)),
            workers,
            lanes: (0..workers * workers)
                .map(|i| (i / workers != i % workers).then(|| ArrayQueue::new(lanes.lane_capacity)))
                .collect(),
            control: (0..workers)
                .map(|_| ArrayQueue::new(lanes.control_capacity))
                .collect(),
        });
        let workers = (0..workers)
            .map(|id| {
                Ok(WorkerFdb {
                    id,
                    fdb: Fdb::new(cfg)?,
                    shared: Arc::clone(&shared),
                    next_src: 0,
                    stats: ReplicaStats::default(),
                })
            })
            .collect::<Result<_, FdbError>>()?;
        Ok(FdbGroup {
            workers,
            control: FdbControl { shared, cfg },
        })
    }
}

/// Replication counters of one worker.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Changes from other workers applied.
    pub applied: u64,
    /// Changes ignored because the entry already had a later one.
    pub stale: u64,
    /// Changes ignored because a later flush or static removal covers them.
    pub superseded: u64,
    /// Changes that arrived after their entry would have expired.
    pub expired: u64,
    /// Changes ignored because the MAC has a static entry.
    pub static_ignored: u64,
    /// Changes refused (no room, port out of range).
    pub refused: u64,
    /// Control operations applied.
    pub control_applied: u64,
    /// Pushes that failed although room was checked (always 0: a bug otherwise).
    pub publish_lost: u64,
}

/// Sequence numbers from the group, changes to every other worker's lane.
struct Publisher<'a> {
    shared: &'a Shared,
    id: usize,
    lost: u64,
}

impl SeqSource for Publisher<'_> {
    #[inline]
    fn reserve(&mut self) -> Option<u64> {
        let s = self.shared;
        let room = (0..s.workers)
            .filter_map(|dst| s.lane(self.id, dst))
            .all(|q| !q.is_full());
        room.then(|| s.next_seq())
    }

    #[inline]
    fn publish(&mut self, ev: Upsert) {
        let s = self.shared;
        for q in (0..s.workers).filter_map(|dst| s.lane(self.id, dst)) {
            if q.push(ev).is_err() {
                self.lost += 1;
            }
        }
    }
}

/// One worker's replica: looked up and learned into by that worker only.
#[derive(Debug)]
pub struct WorkerFdb {
    id: usize,
    fdb: Fdb,
    shared: Arc<Shared>,
    /// The lane [`WorkerFdb::apply_updates`] starts from (round robin).
    next_src: usize,
    stats: ReplicaStats,
}

impl WorkerFdb {
    /// This worker's index in the group.
    #[inline]
    pub fn id(&self) -> usize {
        self.id
    }

    /// The replica, for lookups, generations, `fdb show` and counters.
    #[inline]
    pub fn fdb(&self) -> &Fdb {
        &self.fdb
    }

    /// [`Fdb::set_vlan_limits`] on this replica (each learner enforces them).
    pub fn set_vlan_limits(&mut self, limits: impl IntoIterator<Item = (VlanId, u32)>) {
        self.fdb.set_vlan_limits(limits);
    }

    /// [`Fdb::set_gen_sink`] on this replica.
    pub fn set_gen_sink(&mut self, sink: std::sync::Arc<dyn crate::GenSink>) {
        self.fdb.set_gen_sink(sink);
    }

    /// Replication counters.
    #[inline]
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// [`Fdb::lookup`] on this replica.
    #[inline]
    pub fn lookup(&self, vlan: VlanId, mac: MacAddr, now: u64) -> Option<PortId> {
        self.fdb.lookup(vlan, mac, now)
    }

    /// [`Fdb::lookup_hit`] on this replica.
    #[inline]
    pub fn lookup_hit(&self, key: FdbKey, now: u64) -> Option<FdbHit> {
        self.fdb.lookup_hit(key, now)
    }

    /// [`Fdb::learn`], published to the other workers; [`Learn::Deferred`] when a lane
    /// to some worker is full (nothing changed anywhere).
    #[inline(always)]
    pub fn learn(&mut self, vlan: VlanId, mac: MacAddr, port: PortId, now: u64) -> Learn {
        let mut publisher = Publisher {
            shared: &self.shared,
            id: self.id,
            lost: 0,
        };
        let r = self.fdb.learn_with(vlan, mac, port, now, &mut publisher);
        self.stats.publish_lost += publisher.lost;
        r
    }

    /// [`Fdb::age`] on this replica (aging is each replica's own).
    #[inline]
    pub fn age(&mut self, now: u64, budget: usize) -> usize {
        self.fdb.age(now, budget)
    }

    /// Changes waiting in this worker's lanes.
    pub fn pending(&self) -> usize {
        let s = &*self.shared;
        let data: usize = (0..s.workers)
            .filter_map(|src| s.lane(src, self.id))
            .map(ArrayQueue::len)
            .sum();
        data + s.control.get(self.id).map_or(0, ArrayQueue::len)
    }

    /// Applies up to `budget` changes from the other workers and the control plane:
    /// call it at the start of every poll. Control operations come first (they are
    /// rare and must not wait behind a learning backlog), then the lanes of the other
    /// workers in round robin. Returns how many were applied.
    pub fn apply_updates(&mut self, now: u64, budget: usize) -> usize {
        let s = &*self.shared;
        let mut done = 0;
        if let Some(ctl) = s.control.get(self.id) {
            while done < budget {
                let Some(c) = ctl.pop() else { break };
                match c {
                    Control::AddStatic { key, port } => self.fdb.add_static_key(key, port),
                    Control::RemoveStatic { key, seq, time } => {
                        self.fdb.apply_remove_static(key, seq, time, now)
                    }
                    Control::Flush { filter, seq, time } => {
                        self.fdb.apply_flush(filter, seq, time, now)
                    }
                }
                self.stats.control_applied += 1;
                done += 1;
            }
        }
        let n = s.workers;
        while done < budget {
            let mut progressed = false;
            for k in 0..n {
                if done >= budget {
                    break;
                }
                let src = (self.next_src + k) % n;
                let Some(ev) = s.lane(src, self.id).and_then(ArrayQueue::pop) else {
                    continue;
                };
                progressed = true;
                done += 1;
                let st = &mut self.stats;
                match self.fdb.apply_upsert(ev, now) {
                    Applied::Changed => st.applied += 1,
                    Applied::Stale => st.stale += 1,
                    Applied::Superseded => st.superseded += 1,
                    Applied::Expired => st.expired += 1,
                    Applied::Static => st.static_ignored += 1,
                    Applied::Refused => st.refused += 1,
                }
            }
            self.next_src = (self.next_src + 1) % n;
            if !progressed {
                break;
            }
        }
        done
    }

    #[cfg(test)]
    pub(crate) fn dump(&self) -> Vec<(u64, u16, bool, u64)> {
        self.fdb.dump()
    }
}

/// The control plane's handle: static entries and flushes, delivered to every worker
/// through its control lane. `&mut self` keeps it the only producer of those lanes.
#[derive(Debug)]
pub struct FdbControl {
    shared: Arc<Shared>,
    cfg: FdbConfig,
}

impl FdbControl {
    /// Sends `c` to every worker, or to none if some control lane is full.
    fn broadcast(&mut self, c: Control) -> Result<(), FdbError> {
        let s = &*self.shared;
        if let Some(worker) = s.control.iter().position(ArrayQueue::is_full) {
            return Err(FdbError::ControlBusy { worker });
        }
        for q in &s.control {
            // Cannot fail: this handle is the only producer and room was checked.
            let _ = q.push(c);
        }
        Ok(())
    }

    fn check_port(&self, port: PortId) -> Result<(), FdbError> {
        if port.index() >= self.cfg.max_ports {
            return Err(FdbError::PortOutOfRange {
                port: port.0,
                max_ports: self.cfg.max_ports,
            });
        }
        Ok(())
    }

    /// Adds or re-points a static entry on every worker.
    pub fn add_static(&mut self, vlan: VlanId, mac: MacAddr, port: PortId) -> Result<(), FdbError> {
        if !mac.is_unicast() {
            return Err(FdbError::NotUnicast(mac));
        }
        self.check_port(port)?;
        self.broadcast(Control::AddStatic {
            key: FdbKey::new(vlan, mac),
            port,
        })
    }

    /// Removes a static entry on every worker. `now` is the control plane's clock
    /// (same epoch as the workers').
    pub fn remove_static(&mut self, vlan: VlanId, mac: MacAddr, now: u64) -> Result<(), FdbError> {
        let seq = self.shared.next_seq();
        self.broadcast(Control::RemoveStatic {
            key: FdbKey::new(vlan, mac),
            seq,
            time: now,
        })
    }

    /// Flushes learned entries on every worker: those learned before this call;
    /// changes made after it survive.
    pub fn flush(&mut self, filter: FlushFilter, now: u64) -> Result<(), FdbError> {
        if let FlushFilter::Port(p) | FlushFilter::VlanPort(_, p) = filter {
            self.check_port(p)?;
        }
        let seq = self.shared.next_seq();
        self.broadcast(Control::Flush {
            filter,
            seq,
            time: now,
        })
    }
}

#[cfg(test)]
mod tests;
