//! The forwarding database: (local VLAN, MAC) → port, learned from source addresses
//! and aged out when idle, plus static entries from the configuration.
//!
//! # Why this layout
//!
//! The table is read for every frame's destination and written (refreshed) for every
//! frame's source, so both must be one hash probe with no allocation and no lock. The
//! key is one `u64` (VPP packs bridge domain + MAC the same way): comparing it is one
//! instruction and hashing it one multiplication ([`crate::hash`]). Entries are 24
//! bytes (asserted below) and live inline, two per 64-byte bucket, in a table of our
//! own (`table.rs`, which says why not hashbrown, with the measurements) sized at
//! construction so that learning never allocates, in transparent huge pages. A batch
//! of frames loads the buckets of all its keys first ([`Fdb::warm_batch`]), so that
//! on a table larger than the caches their misses overlap instead of stalling the
//! frames one after the other.
//!
//! What the hash table cannot do — find the oldest entry, count entries per port —
//! is done by a slab of nodes with intrusive recency lists (`lru.rs`), touched only
//! when an entry is created, moved, removed, or refreshed in a new refresh period.
//!
//! # Semantics (OVS NORMAL, see `shared/REFERENCE.md`)
//!
//! - **Aging.** An entry idle for ≥ `aging_ns` is gone: lookups treat it as absent the
//!   moment it expires, whether or not [`Fdb::age`] has swept it yet. The sweep only
//!   reclaims its memory. Expired entries still count toward the capacity until swept
//!   or reclaimed.
//! - **Learning** ([`Fdb::learn`]): multicast and all-zero sources are never learned;
//!   a known source refreshes its entry; a source seen on another port *moves* at
//!   once; a source that matches a static entry on another port is refused
//!   ([`Learn::StaticMismatch`]: the caller drops and counts the frame).
//! - **Per-port limit** (`per_port_limit`, 0 = none): a port at its limit first
//!   reclaims its own oldest entry if that one has expired, otherwise a new MAC is
//!   refused with [`Learn::PortLimit`]. A *move* onto a port at its limit is never
//!   refused (the MAC re-points at once, as a migrated VM needs): that port gives up its
//!   own oldest entry instead, so it stays within its limit.
//! - **Full table** (learned entries == `capacity`), the policy we chose: OVS-style
//!   eviction (`mac_learning_insert` → `evict_mac_entry_fairly`), with two guards:
//!   1. the oldest learned entry of the whole table is reclaimed instead if it has
//!      expired (expired entries go first);
//!   2. otherwise a learner evicts the oldest entry of a port with the most entries
//!      **only if that port has strictly more entries than the learner**; if the
//!      learner is itself among the busiest, it evicts its own oldest entry.
//!
//!   So a port below its fair share never loses entries to a port that floods new
//!   MACs: a flooding port ends up recycling its own entries. Static entries are
//!   never evicted and do not count toward `capacity` or the per-port limit.
//!   "Oldest" has the lists' granularity, one refresh period ([`refresh_shift`]: about a
//!   sixteenth of the aging time, at least 2^30 ns; OVS uses one second).
//! - **Static entries** never age, never move by learning, and are only changed by
//!   [`Fdb::add_static`] / [`Fdb::remove_static`]. [`Fdb::flush`] removes learned
//!   entries only.
//!
//! # Generations (for the flow cache)
//!
//! [`Fdb::vlan_generation`] is bumped on every change that can alter a forwarding
//! decision in that VLAN: a new entry (including one revived after expiry), a move,
//! a removal (sweep, flush, eviction, reclaim), a static added, re-pointed or
//! removed. A refresh does not bump it. An entry that expires *by time* bumps
//! nothing — no code runs at that instant — so a cached decision that used an entry
//! carries that entry's deadline ([`FdbHit::deadline_ns`] = `last_seen + aging`) and
//! is ignored once `now` reaches it ([`crate::FlowCache`]). A refresh moves the real
//! deadline later, never earlier, so a cached deadline is always safe.

mod lru;
mod table;

use core::mem::size_of;

use encap::{MacAddr, VlanId};
use hashbrown::HashTable;
use table::Table;

use crate::hash::hash_u64;
use crate::{FdbError, PortId, SEC};
use lru::{Lru, NIL};

/// Largest learned capacity accepted (slot indices are `u32`).
const MAX_CAPACITY: usize = 1_000_000_000;

/// The FDB key: `vlan << 48 | mac`, vlan being the network's host-local VLAN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FdbKey(u64);

impl FdbKey {
    /// Packs a local VLAN and a MAC.
    #[inline]
    pub const fn new(vlan: VlanId, mac: MacAddr) -> Self {
        FdbKey((vlan.get() as u64) << 48 | mac.to_u64())
    }

    /// The packed value.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The VLAN part (1–4094).
    #[inline]
    pub const fn vlan(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// The MAC part.
    #[inline]
    pub const fn mac(self) -> MacAddr {
        MacAddr::from_u64(self.0)
    }

    /// The table hash of this key.
    #[inline(always)]
    pub const fn hash(self) -> u64 {
        hash_u64(self.0)
    }
}

/// Sizing and policy of one FDB replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbConfig {
    /// Learned entries, whole switch (`mac_table_size`). Static entries are extra.
    pub capacity: usize,
    /// Learned entries per port; 0 = no limit (`mac_limit_per_port`).
    pub per_port_limit: u32,
    /// Idle time after which a learned entry is gone (`mac_aging_secs` × 10⁹).
    pub aging_ns: u64,
    /// Ports are `PortId(0..max_ports)`.
    pub max_ports: usize,
}

impl Default for FdbConfig {
    /// OVS's defaults: 8192 entries, 300 s aging; 256 ports, no per-port limit.
    fn default() -> Self {
        FdbConfig {
            capacity: 8192,
            per_port_limit: 0,
            aging_ns: 300 * SEC,
            max_ports: 256,
        }
    }
}

impl FdbConfig {
    /// Checks the values can build a table.
    pub fn validate(&self) -> Result<(), FdbError> {
        if self.aging_ns == 0 {
            return Err(FdbError::ZeroAging);
        }
        if self.capacity > MAX_CAPACITY {
            return Err(FdbError::CapacityTooLarge(self.capacity));
        }
        if self.max_ports == 0 || self.max_ports > 1 << 16 {
            return Err(FdbError::MaxPorts(self.max_ports));
        }
        Ok(())
    }
}

/// What [`Fdb::learn`] did with a source address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Learn {
    /// Known on this port: its idle timer restarted. No generation bump.
    Refreshed,
    /// A new entry (or one that had expired) now points at the port.
    New,
    /// The entry was on `from` and now points at the port (a MAC move; count it).
    Moved {
        /// The previous port.
        from: PortId,
    },
    /// The MAC has a static entry on another port: drop the frame and count it.
    StaticMismatch,
    /// Multicast or all-zero source, or a port outside `max_ports`: nothing learned.
    NotLearnable,
    /// The table has no room and nothing may be evicted (only with `capacity` 0).
    TableFull,
    /// The port is at its per-port limit: nothing learned (forward the frame normally).
    PortLimit,
    /// The VLAN (network) is at its limit ([`Fdb::set_vlan_limits`]): nothing learned
    /// (forward the frame normally).
    VlanLimit,
    /// Replication queues are full: nothing learned anywhere, so replicas stay
    /// identical; the next frame from this source tries again (see [`crate::replica`]).
    Deferred,
}

impl Learn {
    /// Whether the table changed in a way that bumped the VLAN generation.
    #[inline]
    pub const fn changed(self) -> bool {
        matches!(self, Learn::New | Learn::Moved { .. })
    }
}

/// Which learned entries [`Fdb::flush`] removes. Static entries are never flushed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlushFilter {
    /// Every learned entry.
    All,
    /// Learned entries of one VLAN (a network removed or re-segmented).
    Vlan(VlanId),
    /// Learned entries on one port (a port removed or moved to another network).
    Port(PortId),
    /// Learned entries of one VLAN on one port (a trunk leaving one network).
    VlanPort(VlanId, PortId),
}

impl FlushFilter {
    #[inline]
    fn matches(self, key: u64, port: u16) -> bool {
        let vlan = (key >> 48) as u16;
        match self {
            FlushFilter::All => true,
            FlushFilter::Vlan(v) => v.get() == vlan,
            FlushFilter::Port(p) => p.0 == port,
            FlushFilter::VlanPort(v, p) => v.get() == vlan && p.0 == port,
        }
    }
}

/// A lookup result with what a cached decision needs to stay correct.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FdbHit {
    /// Where the MAC is.
    pub port: PortId,
    /// The entry is gone from this instant on unless refreshed (`u64::MAX` for static
    /// entries). A decision cached from this hit must not be used at or after it.
    pub deadline_ns: u64,
}

/// How often a refresh re-orders an entry in the recency lists and is published to the
/// other replicas, as a power of two of nanoseconds: the largest one not above
/// `aging / 16`, and at least 2^30 ns (1.07 s). Refreshes within one period (`now >>
/// shift` unchanged) only store `last_seen`. `last_seen` itself is exact on the learning
/// worker; a replica's idle timer lags it by less than one period, about a sixteenth of
/// the aging time. Once a second, the re-ordering and the replication traffic for a
/// million active MACs dominated a worker (`vswitch-bench pipeline --macs 1M`, see the
/// README); a shift, not a division, keeps the check cheap.
pub fn refresh_shift(aging_ns: u64) -> u32 {
    let p = (aging_ns / 16).max(1);
    (63 - p.leading_zeros()).max(30)
}

/// One row of `fdb show`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FdbEntry {
    /// Local VLAN.
    pub vlan: VlanId,
    /// MAC address.
    pub mac: MacAddr,
    /// Port.
    pub port: PortId,
    /// Idle time (0 for static entries).
    pub age_ns: u64,
    /// Configured, never aged or moved.
    pub is_static: bool,
}

/// Per-VLAN generation counters, indexed by local VLAN (index 0 is never bumped:
/// decisions that depend on no VLAN use it).
/// (The array itself, so a check is one load from `&VlanGens`; `Fdb` boxes it.)
/// A [`GenSink`] set with [`Fdb::set_gen_sink`] sees every bump too, before the change
/// it announces is made.
#[derive(Clone)]
pub struct VlanGens([u64; 4096], Option<std::sync::Arc<dyn GenSink>>);

/// Who else must know when a VLAN's decisions may change: the XDP fast path's shared
/// generations (`dataplane::fastpath`), whose entries of the VLAN go stale at once.
pub trait GenSink: Send + Sync {
    /// Local VLAN `vlan`'s decisions may change.
    fn bump(&self, vlan: u16);
}

impl core::fmt::Debug for VlanGens {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let changed = self.0.iter().filter(|&&g| g != 0).count();
        f.debug_struct("VlanGens")
            .field("vlans_changed", &changed)
            .finish()
    }
}

impl VlanGens {
    fn new_boxed() -> Box<Self> {
        Box::new(VlanGens([0; 4096], None))
    }

    /// The generation of local VLAN `vlan` (only the low 12 bits are used).
    #[inline(always)]
    pub fn get(&self, vlan: u16) -> u64 {
        self.0[(vlan & 0xfff) as usize]
    }

    #[inline]
    fn bump(&mut self, vlan: u16) {
        if let Some(s) = &self.1 {
            s.bump(vlan);
        }
        let g = &mut self.0[(vlan & 0xfff) as usize];
        *g = g.wrapping_add(1);
    }
}

/// Counters of one replica, named after what the caller counts per frame.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct FdbStats {
    /// New entries learned locally.
    pub learned: u64,
    /// MAC moves learned locally.
    pub moved: u64,
    /// Live entries evicted by the full-table policy.
    pub evicted: u64,
    /// Expired entries reclaimed to make room (full table or port at its limit).
    pub reclaimed: u64,
    /// Expired entries removed by [`Fdb::age`].
    pub aged: u64,
    /// Entries removed by flushes.
    pub flushed: u64,
    /// Frames whose source matched a static entry on another port.
    pub static_mismatch: u64,
    /// Multicast/zero sources or out-of-range ports.
    pub not_learnable: u64,
    /// New MACs refused by the per-port limit.
    pub port_limit: u64,
    /// New MACs refused by a VLAN's limit.
    pub vlan_limit: u64,
    /// New MACs refused because the table has no room.
    pub table_full: u64,
    /// Learning deferred because a replication queue was full (`learn_backpressure`).
    pub learn_backpressure: u64,
    /// Refreshes that were due to be published but found a queue full.
    pub refresh_unpublished: u64,
}

const STATIC: u8 = 1;

/// One table entry. Static entries have `last_seen == u64::MAX` (never idle, so the
/// lookup needs no flag test) and `slot == NIL`.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Entry {
    key: u64,
    last_seen: u64,
    slot: u32,
    port: u16,
    flags: u8,
    /// Explicit padding (the table's memory is plain bytes: no implicit padding).
    pad: u8,
}

const _: () = assert!(size_of::<Entry>() == 24);

/// A change to publish to the other replicas (see [`crate::replica`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Upsert {
    pub(crate) key: u64,
    pub(crate) seq: u64,
    pub(crate) time: u64,
    pub(crate) port: u16,
}

/// Where sequence numbers come from and where changes go.
pub(crate) trait SeqSource {
    /// A fresh sequence number if a change can be published to every other replica
    /// now; `None` if some queue is full.
    fn reserve(&mut self) -> Option<u64>;
    /// Publishes a change (only after a successful `reserve`).
    fn publish(&mut self, ev: Upsert);
}

/// A lone table: local sequence numbers, nothing published.
struct Local(u64);

impl SeqSource for Local {
    #[inline]
    fn reserve(&mut self) -> Option<u64> {
        self.0 += 1;
        Some(self.0)
    }
    #[inline]
    fn publish(&mut self, _: Upsert) {}
}

/// What applying a replicated change did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Applied {
    /// The entry was created, moved, refreshed or revived.
    Changed,
    /// The entry already carries a later change.
    Stale,
    /// A flush or static removal newer than the change covers it.
    Superseded,
    /// Expired by the time it arrived.
    Expired,
    /// The key has a static entry.
    Static,
    /// No room (capacity 0) or a port out of range.
    Refused,
}

/// A removal remembered so that older changes still in flight do not undo it.
#[derive(Clone, Copy, Debug)]
struct Mark {
    key: u64,
    seq: u64,
    time: u64,
}

/// Sequence numbers of recent flushes and static removals, per scope.
#[derive(Debug)]
struct Watermarks {
    all: u64,
    vlan: Box<[u64; 4096]>,
    port: Vec<u64>,
    /// Keyed by `vlan << 16 | port`.
    vlan_port: HashTable<Mark>,
    /// Keyed by the FDB key.
    key: HashTable<Mark>,
}

impl Watermarks {
    fn new(max_ports: usize) -> Self {
        Watermarks {
            all: 0,
            vlan: Box::new([0; 4096]),
            port: vec![0; max_ports],
            vlan_port: HashTable::new(),
            key: HashTable::new(),
        }
    }

    /// Whether a change `(key, port, seq)` is older than a removal that covers it.
    #[inline]
    fn covers(&self, key: u64, port: u16, seq: u64) -> bool {
        let vlan = (key >> 48) as u16;
        let mark = |t: &HashTable<Mark>, k: u64| {
            if t.is_empty() {
                0
            } else {
                t.find(hash_u64(k), |m| m.key == k).map_or(0, |m| m.seq)
            }
        };
        seq < self.all
            || seq < self.vlan[(vlan & 0xfff) as usize]
            || seq < self.port.get(port as usize).copied().unwrap_or(0)
            || seq < mark(&self.vlan_port, (vlan as u64) << 16 | port as u64)
            || seq < mark(&self.key, key)
    }

    fn record(t: &mut HashTable<Mark>, m: Mark, now: u64, aging: u64) {
        // A change older than `aging` is dropped as expired anyway, so marks older
        // than that can go: the tables hold only the last `aging` of removals.
        t.retain(|old| now.saturating_sub(old.time) < aging && old.key != m.key);
        t.insert_unique(hash_u64(m.key), m, |x| hash_u64(x.key));
    }

    fn record_flush(&mut self, filter: FlushFilter, seq: u64, time: u64, now: u64, aging: u64) {
        match filter {
            FlushFilter::All => self.all = self.all.max(seq),
            FlushFilter::Vlan(v) => {
                let w = &mut self.vlan[(v.get() & 0xfff) as usize];
                *w = (*w).max(seq);
            }
            FlushFilter::Port(p) => {
                if let Some(w) = self.port.get_mut(p.index()) {
                    *w = (*w).max(seq);
                }
            }
            FlushFilter::VlanPort(v, p) => {
                let key = (v.get() as u64) << 16 | p.0 as u64;
                Self::record(&mut self.vlan_port, Mark { key, seq, time }, now, aging);
            }
        }
    }
}

/// One FDB replica: owned by one worker, never shared (`&mut self` to learn).
#[derive(Debug)]
pub struct Fdb {
    table: Table,
    lru: Lru,
    gens: Box<VlanGens>,
    cfg: FdbConfig,
    statics: usize,
    /// Sequence numbers of a lone table (replicas take theirs from the group).
    local_seq: u64,
    marks: Watermarks,
    stats: FdbStats,
    /// [`refresh_shift`] of the aging time.
    refresh_shift: u32,
    /// Learned entries allowed per VLAN; 0 = no limit.
    vlan_limits: Box<[u32]>,
}

impl Fdb {
    /// Builds a table and preallocates everything learning will ever use.
    pub fn new(cfg: FdbConfig) -> Result<Self, FdbError> {
        cfg.validate()?;
        Ok(Fdb {
            table: Table::with_capacity(cfg.capacity + 1)?,
            lru: Lru::new(cfg.capacity as u32, cfg.max_ports),
            gens: VlanGens::new_boxed(),
            cfg,
            statics: 0,
            local_seq: 0,
            marks: Watermarks::new(cfg.max_ports),
            stats: FdbStats::default(),
            refresh_shift: refresh_shift(cfg.aging_ns),
            vlan_limits: vec![0; 1 << 12].into_boxed_slice(),
        })
    }

    /// The configuration this table was built with.
    #[inline]
    pub fn config(&self) -> &FdbConfig {
        &self.cfg
    }

    /// Sets the per-VLAN learning limits (a network's `mac_limit`): `limits` gives
    /// (VLAN, limit) pairs, every other VLAN has none. A VLAN at its limit learns no new
    /// MAC ([`Learn::VlanLimit`]) until entries age out or are flushed; moves within it
    /// are not refused. Entries already over a lowered limit stay until they age.
    pub fn set_vlan_limits(&mut self, limits: impl IntoIterator<Item = (VlanId, u32)>) {
        self.vlan_limits.fill(0);
        for (vlan, limit) in limits {
            if let Some(l) = self.vlan_limits.get_mut(usize::from(vlan.get())) {
                *l = limit;
            }
        }
    }

    /// Learned entries stored in `vlan` (expired ones not yet swept included).
    pub fn vlan_count(&self, vlan: VlanId) -> u32 {
        self.lru.vlan_count(vlan.get())
    }

    /// Entries stored, learned and static, including expired ones not yet swept.
    #[inline]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is stored.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Learned entries stored (what `capacity` bounds), including expired ones.
    #[inline]
    pub fn learned_len(&self) -> usize {
        self.lru.used() as usize
    }

    /// Static entries.
    #[inline]
    pub fn static_len(&self) -> usize {
        self.statics
    }

    /// Learned entries stored on `port` (what `per_port_limit` bounds).
    pub fn port_count(&self, port: PortId) -> u32 {
        if port.index() < self.cfg.max_ports {
            self.lru.count(port)
        } else {
            0
        }
    }

    /// Counters.
    #[inline]
    pub fn stats(&self) -> &FdbStats {
        &self.stats
    }

    /// The generation of `vlan`: it changes whenever a forwarding decision in that
    /// VLAN may have changed (see the module docs).
    #[inline]
    pub fn vlan_generation(&self, vlan: VlanId) -> u64 {
        self.gens.get(vlan.get())
    }

    /// Has `sink` see every generation bump of this table (see [`GenSink`]).
    pub fn set_gen_sink(&mut self, sink: std::sync::Arc<dyn GenSink>) {
        self.gens.1 = Some(sink);
    }

    /// All VLAN generations, for [`crate::Gens`].
    #[inline]
    pub fn vlan_gens(&self) -> &VlanGens {
        &self.gens
    }

    #[inline(always)]
    fn is_live(&self, last_seen: u64, now: u64) -> bool {
        now.saturating_sub(last_seen) < self.cfg.aging_ns
    }

    /// Where `mac` is in `vlan`, if it is known and not expired at `now`.
    #[inline]
    pub fn lookup(&self, vlan: VlanId, mac: MacAddr, now: u64) -> Option<PortId> {
        self.lookup_key(FdbKey::new(vlan, mac), now)
    }

    /// [`Fdb::lookup`] with a prepared key.
    #[inline]
    pub fn lookup_key(&self, key: FdbKey, now: u64) -> Option<PortId> {
        let e = self.table.find(key.0)?;
        self.is_live(e.last_seen, now).then_some(PortId(e.port))
    }

    /// [`Fdb::lookup`] returning also the deadline a cached decision must respect.
    #[inline]
    pub fn lookup_hit(&self, key: FdbKey, now: u64) -> Option<FdbHit> {
        let e = self.table.find(key.0)?;
        self.is_live(e.last_seen, now).then_some(FdbHit {
            port: PortId(e.port),
            deadline_ns: e.last_seen.saturating_add(self.cfg.aging_ns),
        })
    }

    /// [`Fdb::lookup_hit`] over a batch: the buckets of all the keys are loaded first,
    /// in one loop with no dependency between keys ([`Fdb::warm_batch`]), then probed,
    /// so that on a table larger than the caches the misses overlap. `out[i]` is the
    /// result for `keys[i]`.
    pub fn lookup_hit_batch(&self, keys: &[FdbKey], now: u64, out: &mut [Option<FdbHit>]) {
        self.warm_batch(keys);
        for (o, k) in out.iter_mut().zip(keys) {
            *o = self.lookup_hit(*k, now);
        }
    }

    /// [`Fdb::lookup_key`] over a batch, overlapping the misses like
    /// [`Fdb::lookup_hit_batch`]: use it for large tables (compare `fdb_lookup_batch_32`
    /// with `fdb_lookup_32`, `cargo bench -p vswitch-bench --bench flowtable`).
    /// `out[i]` is the result for `keys[i]`; extra elements of the longer slice are
    /// left alone.
    pub fn lookup_batch(&self, keys: &[FdbKey], now: u64, out: &mut [Option<PortId>]) {
        self.warm_batch(keys);
        for (o, k) in out.iter_mut().zip(keys) {
            *o = self.lookup_key(*k, now);
        }
    }

    /// Whether [`Fdb::warm_batch`] does anything: the table is larger than L2. A caller
    /// that would build keys only to warm them checks this first.
    #[inline]
    pub fn warm_pays(&self) -> bool {
        self.table.warm_pays()
    }

    /// Loads the table memory of every key of a batch and returns nothing: called
    /// before a stage that handles the keys one at a time (learning), it starts all
    /// their cache misses together instead of one per key (the safe form of a
    /// software prefetch across the batch; see `table.rs`). A table small enough to
    /// stay in L2 is left alone, so this costs one comparison there.
    #[inline]
    pub fn warm_batch(&self, keys: &[FdbKey]) {
        self.table.warm(keys.iter().map(|k| k.0));
    }

    /// Prefetches the table memory of `key` when the table is larger than L2 (see
    /// [`Fdb::warm_pays`]): call it as soon as a frame's key is known, a stage before
    /// the key is probed.
    #[inline(always)]
    pub fn prefetch(&self, key: FdbKey) {
        self.table.prefetch(key.0);
    }

    /// Learns that `mac` in `vlan` was seen as a source on `port` at `now`.
    #[inline]
    pub fn learn(&mut self, vlan: VlanId, mac: MacAddr, port: PortId, now: u64) -> Learn {
        let mut seq = Local(self.local_seq);
        let r = self.learn_with(vlan, mac, port, now, &mut seq);
        self.local_seq = seq.0;
        r
    }

    /// The learning algorithm, with sequence numbers and publication supplied by the
    /// caller (a lone table or a replica).
    #[inline(always)]
    pub(crate) fn learn_with<S: SeqSource>(
        &mut self,
        vlan: VlanId,
        mac: MacAddr,
        port: PortId,
        now: u64,
        src: &mut S,
    ) -> Learn {
        if !mac.is_unicast() || port.index() >= self.cfg.max_ports {
            self.stats.not_learnable += 1;
            return Learn::NotLearnable;
        }
        let key = FdbKey::new(vlan, mac);
        let aging = self.cfg.aging_ns;
        let (slot, old_port, live) = match self.table.find_mut(key.0) {
            None => return self.learn_new(key, port, now, src),
            Some(e) if e.flags & STATIC != 0 => {
                if e.port == port.0 {
                    return Learn::Refreshed;
                }
                self.stats.static_mismatch += 1;
                return Learn::StaticMismatch;
            }
            Some(e) => {
                let live = now.saturating_sub(e.last_seen) < aging;
                if live && e.port == port.0 {
                    // The hot path: one probe, one store.
                    if now > e.last_seen {
                        let shift = self.refresh_shift;
                        let new_period = now >> shift != e.last_seen >> shift;
                        e.last_seen = now;
                        if new_period {
                            let slot = e.slot;
                            self.refresh_new_period(slot, key, port, now, src);
                        }
                    }
                    return Learn::Refreshed;
                }
                (e.slot, PortId(e.port), live)
            }
        };
        self.learn_existing(key, slot, old_port, live, port, now, src)
    }

    /// A refresh in a later refresh period than the previous one: keep the recency lists in
    /// order and let the other replicas restart their idle timers too.
    #[cold]
    fn refresh_new_period<S: SeqSource>(
        &mut self,
        slot: u32,
        key: FdbKey,
        port: PortId,
        now: u64,
        src: &mut S,
    ) {
        self.lru.touch(slot, port);
        match src.reserve() {
            Some(seq) => {
                self.lru.set_seq(slot, seq);
                src.publish(Upsert {
                    key: key.0,
                    seq,
                    time: now,
                    port: port.0,
                });
            }
            None => self.stats.refresh_unpublished += 1,
        }
    }

    /// A move of a live entry, or the revival of an expired one (on any port).
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn learn_existing<S: SeqSource>(
        &mut self,
        key: FdbKey,
        slot: u32,
        old_port: PortId,
        live: bool,
        port: PortId,
        now: u64,
        src: &mut S,
    ) -> Learn {
        let full = old_port != port && !self.port_has_room(port, now);
        if full && !live {
            // Reviving an expired entry on a port at its limit is a new MAC there.
            self.stats.port_limit += 1;
            return Learn::PortLimit;
        }
        let Some(seq) = src.reserve() else {
            self.stats.learn_backpressure += 1;
            return Learn::Deferred;
        };
        if full {
            // A move re-points at once, limit or not (a migrated VM must not be
            // black-holed until its old entry ages out): the target port, at its
            // limit, gives up its own oldest entry to stay within it.
            if let Some(head) = self.lru.port_head(port) {
                self.remove_slot(head);
                self.stats.evicted += 1;
            }
        }
        let Some(e) = self.table.find_mut(key.0) else {
            // Unreachable: only entries of `port` were removed, and this one is on
            // `old_port`.
            return Learn::NotLearnable;
        };
        e.port = port.0;
        e.last_seen = e.last_seen.max(now);
        if old_port != port {
            self.lru.repoint(slot, old_port, port);
        } else {
            self.lru.touch(slot, port);
        }
        self.lru.set_seq(slot, seq);
        self.gens.bump(key.vlan());
        src.publish(Upsert {
            key: key.0,
            seq,
            time: now,
            port: port.0,
        });
        if live {
            self.stats.moved += 1;
            Learn::Moved { from: old_port }
        } else {
            self.stats.learned += 1;
            Learn::New
        }
    }

    /// A MAC with no entry.
    #[cold]
    fn learn_new<S: SeqSource>(
        &mut self,
        key: FdbKey,
        port: PortId,
        now: u64,
        src: &mut S,
    ) -> Learn {
        if self.cfg.capacity == 0 {
            self.stats.table_full += 1;
            return Learn::TableFull;
        }
        if !self.port_has_room(port, now) {
            self.stats.port_limit += 1;
            return Learn::PortLimit;
        }
        let vlan = key.vlan();
        let vlan_limit = self
            .vlan_limits
            .get(usize::from(vlan))
            .copied()
            .unwrap_or(0);
        if vlan_limit != 0 && self.lru.vlan_count(vlan) >= vlan_limit {
            self.stats.vlan_limit += 1;
            return Learn::VlanLimit;
        }
        let Some(seq) = src.reserve() else {
            self.stats.learn_backpressure += 1;
            return Learn::Deferred;
        };
        if self.lru.is_full() {
            self.make_room(port, now);
        }
        if !self.insert_learned(key, port, now, seq) {
            self.stats.table_full += 1;
            return Learn::TableFull;
        }
        src.publish(Upsert {
            key: key.0,
            seq,
            time: now,
            port: port.0,
        });
        self.stats.learned += 1;
        Learn::New
    }

    /// Inserts a learned entry known to be absent; false if no node is free.
    fn insert_learned(&mut self, key: FdbKey, port: PortId, now: u64, seq: u64) -> bool {
        let Some(slot) = self.lru.alloc(key.0, seq, port) else {
            return false;
        };
        let inserted = self.table.insert_unique(Entry {
            key: key.0,
            last_seen: now,
            slot,
            port: port.0,
            flags: 0,
            pad: 0,
        });
        if !inserted {
            // Unreachable: the table has room for every node and every static.
            self.lru.release(slot, port);
            return false;
        }
        self.gens.bump(key.vlan());
        true
    }

    /// Whether `port` may gain an entry: below its limit, or at it with an expired
    /// oldest entry (which is then reclaimed).
    fn port_has_room(&mut self, port: PortId, now: u64) -> bool {
        let limit = self.cfg.per_port_limit;
        if limit == 0 || self.lru.count(port) < limit {
            return true;
        }
        match self.lru.port_head(port) {
            Some(head) if self.slot_expired(head, now) => {
                self.remove_slot(head);
                self.stats.reclaimed += 1;
                true
            }
            _ => false,
        }
    }

    /// Frees one node of a full table for a learner on `port` (module docs: policy).
    fn make_room(&mut self, port: PortId, now: u64) {
        if let Some(head) = self.lru.global_head() {
            if self.slot_expired(head, now) {
                self.remove_slot(head);
                self.stats.reclaimed += 1;
                return;
            }
        }
        let victim_port = if self.lru.count(port) >= self.lru.max_count() {
            port
        } else {
            self.lru.busiest()
        };
        if let Some(victim) = self.lru.port_head(victim_port) {
            self.remove_slot(victim);
            self.stats.evicted += 1;
        }
    }

    fn slot_expired(&self, slot: u32, now: u64) -> bool {
        let key = self.lru.node(slot).key;
        self.table
            .find(key)
            .is_some_and(|e| !self.is_live(e.last_seen, now))
    }

    /// Removes the learned entry owning `slot`.
    fn remove_slot(&mut self, slot: u32) {
        let key = self.lru.node(slot).key;
        if let Some(e) = self.table.remove(key) {
            self.lru.release(slot, PortId(e.port));
            self.gens.bump((key >> 48) as u16);
        }
    }

    /// Removes learned entries idle for ≥ aging, oldest first, examining at most
    /// `budget` entries; returns how many it removed. Call it every poll with a small
    /// budget: it stops at the first live entry, so a table with nothing to expire
    /// costs one probe.
    pub fn age(&mut self, now: u64, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget {
            match self.lru.global_head() {
                Some(head) if self.slot_expired(head, now) => {
                    self.remove_slot(head);
                    removed += 1;
                }
                _ => break,
            }
        }
        self.stats.aged += removed as u64;
        removed
    }

    /// Adds or re-points a static entry (replacing a learned one). Control plane: it
    /// may allocate to make room for static entries beyond the learned capacity.
    pub fn add_static(&mut self, vlan: VlanId, mac: MacAddr, port: PortId) -> Result<(), FdbError> {
        self.check_static(mac, port)?;
        self.add_static_key(FdbKey::new(vlan, mac), port);
        Ok(())
    }

    pub(crate) fn check_static(&self, mac: MacAddr, port: PortId) -> Result<(), FdbError> {
        if !mac.is_unicast() {
            return Err(FdbError::NotUnicast(mac));
        }
        if port.index() >= self.cfg.max_ports {
            return Err(FdbError::PortOutOfRange {
                port: port.0,
                max_ports: self.cfg.max_ports,
            });
        }
        Ok(())
    }

    pub(crate) fn add_static_key(&mut self, key: FdbKey, port: PortId) {
        if let Some(e) = self.table.find_mut(key.0) {
            if e.flags & STATIC != 0 {
                if e.port != port.0 {
                    e.port = port.0;
                    self.gens.bump(key.vlan());
                }
                return;
            }
            let (slot, old) = (e.slot, PortId(e.port));
            *e = Entry {
                key: key.0,
                last_seen: u64::MAX,
                slot: NIL,
                port: port.0,
                flags: STATIC,
                pad: 0,
            };
            self.lru.release(slot, old);
        } else {
            self.ensure_headroom();
            // `ensure_headroom` just made room.
            self.table.insert_unique(Entry {
                key: key.0,
                last_seen: u64::MAX,
                slot: NIL,
                port: port.0,
                flags: STATIC,
                pad: 0,
            });
        }
        self.statics += 1;
        self.gens.bump(key.vlan());
    }

    /// Keeps the table sized for (learned capacity + statics + 1) entries at its
    /// design load, so that learning never needs to grow it.
    fn ensure_headroom(&mut self) {
        self.table.reserve(self.cfg.capacity + self.statics + 1);
    }

    /// Removes a static entry; false if there was none (learned entries are kept).
    pub fn remove_static(&mut self, vlan: VlanId, mac: MacAddr) -> bool {
        self.remove_static_key(FdbKey::new(vlan, mac))
    }

    pub(crate) fn remove_static_key(&mut self, key: FdbKey) -> bool {
        if self.table.find(key.0).is_none_or(|e| e.flags & STATIC == 0) {
            return false;
        }
        self.table.remove(key.0);
        self.statics -= 1;
        self.gens.bump(key.vlan());
        true
    }

    /// Removes the learned entries `filter` selects (expired ones too); returns how
    /// many. Static entries stay. By port it walks that port's list only; otherwise
    /// the whole table.
    pub fn flush(&mut self, filter: FlushFilter) -> usize {
        self.local_seq += 1;
        self.flush_below(filter, self.local_seq)
    }

    /// Flushes the learned entries selected by `filter` whose last change is older
    /// than `seq` (replicas: changes made after the flush was issued survive it).
    pub(crate) fn flush_below(&mut self, filter: FlushFilter, seq: u64) -> usize {
        let mut removed = 0;
        match filter {
            FlushFilter::Port(p) | FlushFilter::VlanPort(_, p) => {
                if p.index() >= self.cfg.max_ports {
                    return 0;
                }
                let mut cur = self.lru.port_head(p);
                while let Some(slot) = cur {
                    cur = self.lru.port_next(slot);
                    let node = self.lru.node(slot);
                    if node.seq < seq && filter.matches(node.key, p.0) {
                        self.remove_slot(slot);
                        removed += 1;
                    }
                }
            }
            FlushFilter::All | FlushFilter::Vlan(_) => {
                let (lru, gens) = (&mut self.lru, &mut self.gens);
                self.table.retain(|e| {
                    if e.flags & STATIC != 0
                        || !filter.matches(e.key, e.port)
                        || lru.node(e.slot).seq >= seq
                    {
                        return true;
                    }
                    lru.release(e.slot, PortId(e.port));
                    gens.bump((e.key >> 48) as u16);
                    removed += 1;
                    false
                });
            }
        }
        self.stats.flushed += removed as u64;
        removed
    }

    /// The live entries, for `fdb show` (hash order; sort for display).
    pub fn iter(&self, now: u64) -> impl Iterator<Item = FdbEntry> + '_ {
        self.table
            .iter()
            .filter(move |e| self.is_live(e.last_seen, now))
            .filter_map(move |e| {
                let is_static = e.flags & STATIC != 0;
                Some(FdbEntry {
                    vlan: VlanId::try_new((e.key >> 48) as u16).ok()?,
                    mac: MacAddr::from_u64(e.key),
                    port: PortId(e.port),
                    age_ns: if is_static {
                        0
                    } else {
                        now.saturating_sub(e.last_seen)
                    },
                    is_static,
                })
            })
    }

    // ---- replication (see crate::replica) ----

    /// Applies a change published by another replica. Last writer wins by sequence
    /// number; the per-port limit is the learner's to enforce, the capacity (and its
    /// eviction policy) is every replica's own.
    pub(crate) fn apply_upsert(&mut self, ev: Upsert, now: u64) -> Applied {
        let port = PortId(ev.port);
        if port.index() >= self.cfg.max_ports {
            return Applied::Refused;
        }
        if self.marks.covers(ev.key, ev.port, ev.seq) {
            return Applied::Superseded;
        }
        if !self.is_live(ev.time, now) {
            return Applied::Expired;
        }
        let aging = self.cfg.aging_ns;
        let vlan = (ev.key >> 48) as u16;
        match self.table.find_mut(ev.key) {
            Some(e) if e.flags & STATIC != 0 => Applied::Static,
            Some(e) => {
                let slot = e.slot;
                if self.lru.node(slot).seq > ev.seq {
                    return Applied::Stale;
                }
                let was_live = now.saturating_sub(e.last_seen) < aging;
                if e.port == ev.port {
                    let shift = self.refresh_shift;
                    let new_period =
                        ev.time > e.last_seen && ev.time >> shift != e.last_seen >> shift;
                    e.last_seen = e.last_seen.max(ev.time);
                    self.lru.set_seq(slot, ev.seq);
                    if new_period {
                        self.lru.touch(slot, port);
                    }
                    if !was_live {
                        self.gens.bump(vlan);
                    }
                } else {
                    let old = PortId(e.port);
                    e.port = ev.port;
                    e.last_seen = ev.time;
                    self.lru.repoint(slot, old, port);
                    self.lru.set_seq(slot, ev.seq);
                    self.gens.bump(vlan);
                }
                Applied::Changed
            }
            None => {
                if self.cfg.capacity == 0 {
                    return Applied::Refused;
                }
                if self.lru.is_full() {
                    self.make_room(port, now);
                }
                if self.insert_learned(FdbKey(ev.key), port, ev.time, ev.seq) {
                    Applied::Changed
                } else {
                    Applied::Refused
                }
            }
        }
    }

    /// Applies a static removal issued with `seq`; older changes still in flight for
    /// this key are then ignored.
    pub(crate) fn apply_remove_static(&mut self, key: FdbKey, seq: u64, time: u64, now: u64) {
        self.remove_static_key(key);
        let mark = Mark {
            key: key.0,
            seq,
            time,
        };
        Watermarks::record(&mut self.marks.key, mark, now, self.cfg.aging_ns);
    }

    /// Applies a flush issued with `seq`: removes what it covers and ignores older
    /// changes still in flight that it covers.
    pub(crate) fn apply_flush(&mut self, filter: FlushFilter, seq: u64, time: u64, now: u64) {
        self.flush_below(filter, seq);
        self.marks
            .record_flush(filter, seq, time, now, self.cfg.aging_ns);
    }

    /// Every stored entry with its sequence number (tests: replica convergence).
    #[cfg(test)]
    pub(crate) fn dump(&self) -> Vec<(u64, u16, bool, u64)> {
        let mut v: Vec<_> = self
            .table
            .iter()
            .map(|e| {
                let seq = if e.slot == NIL {
                    0
                } else {
                    self.lru.node(e.slot).seq
                };
                (e.key, e.port, e.flags & STATIC != 0, seq)
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let statics = self.table.iter().filter(|e| e.flags & STATIC != 0).count();
        assert_eq!(statics, self.statics);
        assert_eq!(self.table.len(), self.statics + self.lru.used() as usize);
        self.table.check();
        for e in self.table.iter().filter(|e| e.flags & STATIC == 0) {
            assert_eq!(self.lru.node(e.slot).key, e.key);
        }
        self.lru.check(|k| {
            self.table
                .find(k)
                .filter(|e| e.flags & STATIC == 0)
                .map(|e| e.port)
        });
    }

    #[cfg(test)]
    pub(crate) fn table_buckets(&self) -> usize {
        self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests;
