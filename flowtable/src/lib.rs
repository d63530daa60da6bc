//! `flowtable`: the forwarding state of the switch — the MAC learning table (FDB),
//! its per-worker replicas, and the per-worker flow cache in front of it.
//!
//! # Why it is shaped this way
//!
//! br-int's NORMAL action is MAC learning per local VLAN (see `shared/REFERENCE.md`):
//! every frame *writes* the table (learn or refresh its source) and *reads* it (find
//! its destination). A table shared between poll-mode workers would put a lock or an
//! atomic read-modify-write on every frame, so instead:
//!
//! - **Each worker owns a full replica** ([`Fdb`], wrapped by [`WorkerFdb`]). Lookups
//!   and refreshes touch only memory the worker owns: no lock, no atomic, no
//!   allocation. What one worker learns is pushed to the others through preallocated
//!   lock-free queues and applied at the start of their next poll ([`replica`] says
//!   how replicas converge and how long the delay is).
//! - **The key is one `u64`** (`vlan << 48 | mac`, [`FdbKey`]) hashed by one
//!   multiplication ([`hash`]), in a bucketised table of 24-byte entries (one
//!   64-byte line per lookup, in huge pages) that is sized at construction so that
//!   learning never allocates; a batch loads all its buckets before using them.
//! - **Every input that grows state is bounded** (whole-table capacity, per-port
//!   limit); a full table evicts OVS-style from the busiest port, never from a port
//!   that has fewer MACs than the learner ([`fdb`] documents the policy).
//! - **Cached decisions are invalidated by generation, not by flushing**
//!   (STYLE principle 9): the FDB bumps a per-VLAN generation on every change that
//!   can alter a forwarding decision, the [`FlowCache`] stores the generations and
//!   the expiry deadline a decision depended on and ignores it once any of them moved.
//!
//! Time is always passed in by the caller as `u64` nanoseconds from an arbitrary
//! epoch (`now`); nothing here reads a clock, so replay can drive time from pcap
//! timestamps and tests can step it exactly.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod fdb;
pub mod flowcache;
pub mod hash;
pub mod replica;

pub use error::FdbError;
pub use fdb::{
    Fdb, FdbConfig, FdbEntry, FdbHit, FdbKey, FdbStats, FlushFilter, GenSink, Learn, VlanGens,
};
pub use flowcache::{CacheStats, FlowCache, FlowKey, Gens, Stamp, DEFAULT_FLOW_CACHE_SIZE};
pub use replica::{FdbControl, FdbGroup, ReplicaConfig, ReplicaStats, WorkerFdb};

/// A dense port index (`0..max_ports`), assigned by the configuration layer.
///
/// The FDB sizes its per-port counters by `max_ports` and refuses ports outside it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct PortId(pub u16);

impl PortId {
    /// The index as a `usize`, for per-port arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl core::fmt::Display for PortId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// One second in the crate's time unit (nanoseconds).
pub const SEC: u64 = 1_000_000_000;
