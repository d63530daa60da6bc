//! The per-worker exact-match cache of forwarding decisions (OVS's EMC).
//!
//! # Why
//!
//! Deciding where a frame goes takes several lookups: the ingress port's
//! configuration (access/trunk, VID → network), the FDB, the network's flood list.
//! Most frames belong to a few flows, so the decision for `(in_port, wire VID, dst
//! MAC)` is cached per worker in a fixed array of 8192 entries (OVS's EMC size):
//! one hash, one or two cache lines, no allocation after construction, no sharing.
//!
//! # Why a cached decision never outlives what it depends on
//!
//! A decision is stored with a [`Stamp`] taken *when it was computed*:
//! - `config_gen` — the configuration generation (ports, networks, trunks, statics
//!   as seen by the classifier), bumped by the control plane on any change: a port
//!   removed or moved to another network invalidates everything at once;
//! - `vlan` and `vlan_gen` — the FDB generation of the network's local VLAN
//!   ([`crate::Fdb::vlan_generation`]), bumped on every new entry, move, removal,
//!   flush and static change in that VLAN;
//! - `deadline_ns` — when the destination entry used expires if not refreshed
//!   ([`crate::FdbHit::deadline_ns`]; `u64::MAX` for floods and static entries).
//!   Expiry by time changes no generation, so it is checked against `now`.
//!
//! A hit is served only if all three still hold ([`Stamp::is_valid`]); otherwise the
//! entry counts as *stale*, is cleared, and the caller recomputes. Nothing is flushed
//! when something changes: stale entries are overwritten on insert or cleared a few at
//! a time by [`FlowCache::sweep`] (STYLE principle 9).
//!
//! # When there are far more flows than slots
//!
//! Every frame then misses, and inserting its decision only evicts another flow that
//! will not come back before being evicted itself. [`FlowCache::insert_sampled`]
//! inserts every decision while most lookups hit, and one in [`SAMPLE`] while most
//! miss (OVS's EMC inserts 1 in 100 always, `emc-insert-inv-prob`): with a million
//! flows that took about 10 % off the pipeline's ns/frame. The decision is made on
//! misses only, so the hit path pays nothing for it.
//!
//! # Shape
//!
//! Two-way set associative: a key may sit in either slot of its pair, so two hot
//! flows whose hashes collide do not evict each other. An insert takes the slot
//! with the same key, else an empty one, else one from an older configuration, else
//! alternates between the two. A slot is 40 bytes for a 4-byte action (asserted), so
//! the default cache is 320 KiB: it lives in L2, a hit costs a few nanoseconds.

use core::mem::size_of;
use core::num::NonZeroU64;

use encap::{MacAddr, VlanId};

use crate::hash::hash_u64_pair;
use crate::{FdbError, PortId, VlanGens};

/// OVS's EMC size per PMD thread.
pub const DEFAULT_FLOW_CACHE_SIZE: usize = 8192;

/// What a forwarding decision is keyed by: where the frame came in, the VID it
/// carried on the wire (0 = untagged or priority-tagged; only the low 12 bits are
/// used), and where it is going.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FlowKey {
    /// Ingress port.
    pub in_port: PortId,
    /// Wire VID, 0 = untagged.
    pub vid: u16,
    /// Destination MAC.
    pub dst: MacAddr,
}

impl FlowKey {
    /// `vid << 48 | dst`: with `in_port`, the whole key in a `u64` and a `u16`.
    #[inline(always)]
    fn packed(&self) -> u64 {
        // The MAC copied into the low six bytes of a big-endian word: one load and a
        // byte swap, where `MacAddr::to_u64`'s shifts stayed six byte loads here.
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&self.dst.0);
        ((self.vid & 0xfff) as u64) << 48 | u64::from_be_bytes(b)
    }

    /// The cache hash of this key (one multiply). Compute it once per frame and pass
    /// it to both [`FlowCache::lookup`] and [`FlowCache::insert`].
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        hash_u64_pair(self.packed(), self.in_port.0 as u64)
    }
}

/// The current generations a cached decision is checked against; build it once per
/// batch (after the learning stage) from the configuration and the worker's FDB.
#[derive(Clone, Copy, Debug)]
pub struct Gens<'a> {
    /// Configuration generation.
    pub config: u64,
    /// The FDB's per-VLAN generations ([`crate::Fdb::vlan_gens`]).
    pub vlans: &'a VlanGens,
}

/// What a cached decision depended on, captured when it was computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    /// Configuration generation at decision time.
    pub config_gen: u64,
    /// Local VLAN whose FDB state the decision used; 0 = none (e.g. a drop decided
    /// by configuration alone).
    pub vlan: u16,
    /// That VLAN's generation at decision time.
    pub vlan_gen: u64,
    /// The decision is void at or after this instant.
    pub deadline_ns: u64,
}

impl Stamp {
    /// Captures the current generations for a decision that used the FDB state of
    /// `vlan` (or none) and must not be used at or after `deadline_ns`.
    #[inline]
    pub fn new(gens: &Gens<'_>, vlan: Option<VlanId>, deadline_ns: u64) -> Self {
        let vlan = vlan.map_or(0, VlanId::get);
        Stamp {
            config_gen: gens.config,
            vlan,
            vlan_gen: gens.vlans.get(vlan),
            deadline_ns,
        }
    }

    /// Whether a decision with this stamp may still be used.
    #[inline(always)]
    pub fn is_valid(&self, gens: &Gens<'_>, now: u64) -> bool {
        self.config_gen == gens.config
            && self.vlan_gen == gens.vlans.get(self.vlan)
            && now < self.deadline_ns
    }
}

/// Set in every stored key. A packed key never has it (its bits 60..64 are zero), so a
/// stored key is never zero and `Option<Slot>` costs no tag: 40 bytes for a 4-byte
/// action, where a `Stamp` field (with its padding) and a tag would make it 56.
const OCCUPIED: u64 = 1 << 63;

/// One cached decision; the stamp's fields are flattened to avoid its padding.
#[derive(Clone, Copy, Debug)]
struct Slot<A> {
    key: NonZeroU64,
    config_gen: u64,
    vlan_gen: u64,
    deadline_ns: u64,
    vlan: u16,
    in_port: u16,
    action: A,
}

const _: () = assert!(size_of::<Option<Slot<u32>>>() == 40);

impl<A> Slot<A> {
    #[inline(always)]
    fn new(packed: u64, in_port: u16, action: A, stamp: Stamp) -> Self {
        Slot {
            key: NonZeroU64::new(packed | OCCUPIED).unwrap_or(NonZeroU64::MAX),
            config_gen: stamp.config_gen,
            vlan_gen: stamp.vlan_gen,
            deadline_ns: stamp.deadline_ns,
            vlan: stamp.vlan,
            in_port,
            action,
        }
    }

    #[inline(always)]
    fn matches(&self, packed: u64, in_port: u16) -> bool {
        self.key.get() == packed | OCCUPIED && self.in_port == in_port
    }

    /// [`Stamp::is_valid`] of the stored stamp.
    #[inline(always)]
    fn is_valid(&self, gens: &Gens<'_>, now: u64) -> bool {
        self.config_gen == gens.config
            && self.vlan_gen == gens.vlans.get(self.vlan)
            && now < self.deadline_ns
    }
}

/// Counters of one cache.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that found no entry for the key.
    pub misses: u64,
    /// Lookups that found the key with a void stamp (the entry is cleared).
    pub stale: u64,
    /// Decisions inserted.
    pub inserts: u64,
    /// Inserts that replaced another key's entry.
    pub evictions: u64,
    /// Void entries cleared by [`FlowCache::sweep`].
    pub swept: u64,
}

/// A per-worker exact-match cache of decisions `A`: each worker owns one, nothing is
/// shared, so lookups take `&mut self` (they clear stale entries and count).
#[derive(Debug)]
pub struct FlowCache<A: Copy> {
    slots: Box<[Option<Slot<A>>]>,
    /// `slots.len() - 2`: the index of a pair's first slot.
    pair_mask: usize,
    cursor: usize,
    flip: usize,
    stats: CacheStats,
    /// Sampling state of [`FlowCache::insert_sampled`].
    sampler: Sampler,
}

impl<A: Copy> FlowCache<A> {
    /// A cache of `size` entries (a power of two, at least 2), allocated now.
    pub fn new(size: usize) -> Result<Self, FdbError> {
        if size < 2 || !size.is_power_of_two() {
            return Err(FdbError::CacheSize(size));
        }
        Ok(FlowCache {
            slots: vec![None; size].into_boxed_slice(),
            pair_mask: size - 2,
            cursor: 0,
            flip: 0,
            sampler: Sampler::new(),
            stats: CacheStats::default(),
        })
    }

    /// Entries the cache can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Counters.
    #[inline]
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The cached decision for `key` if its stamp is still valid under `gens` at
    /// `now`. `hash` must be `key.hash()` (computed once by the caller).
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, hash: u64, gens: &Gens<'_>, now: u64) -> Option<A> {
        let (packed, port) = (key.packed(), key.in_port.0);
        let base = hash as usize & self.pair_mask;
        let found = if self.slot_matches(base, packed, port) {
            Some(base)
        } else if self.slot_matches(base | 1, packed, port) {
            Some(base | 1)
        } else {
            None
        };
        self.resolve(found, gens, now)
    }

    #[inline(always)]
    fn slot_matches(&self, i: usize, packed: u64, port: u16) -> bool {
        self.slots[i]
            .as_ref()
            .is_some_and(|s| s.matches(packed, port))
    }

    /// Serves slot `found` if valid, clears it if void, counts a miss if `None`.
    #[inline(always)]
    fn resolve(&mut self, found: Option<usize>, gens: &Gens<'_>, now: u64) -> Option<A> {
        let Some(i) = found else {
            self.stats.misses += 1;
            return None;
        };
        let slot = &mut self.slots[i];
        match *slot {
            Some(s) if s.is_valid(gens, now) => {
                self.stats.hits += 1;
                Some(s.action)
            }
            _ => {
                *slot = None;
                self.stats.stale += 1;
                None
            }
        }
    }

    /// Caches `action` for `key` with the stamp it was computed under.
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u64, action: A, stamp: Stamp) {
        let (packed, port) = (key.packed(), key.in_port.0);
        let base = hash as usize & self.pair_mask;
        let same = |s: &Option<Slot<A>>| s.is_some_and(|s| s.matches(packed, port));
        let old_config = |s: &Option<Slot<A>>| s.is_some_and(|s| s.config_gen != stamp.config_gen);
        let (a, b) = (&self.slots[base], &self.slots[base | 1]);
        let i = if same(a) {
            base
        } else if same(b) {
            base | 1
        } else if a.is_none() {
            base
        } else if b.is_none() {
            base | 1
        } else if old_config(a) {
            base
        } else if old_config(b) {
            base | 1
        } else {
            self.flip ^= 1;
            self.stats.evictions += 1;
            base | self.flip
        };
        self.slots[i] = Some(Slot::new(packed, port, action, stamp));
        self.stats.inserts += 1;
    }

    /// [`FlowCache::insert`] while the cache serves its flows; only one insert in
    /// [`SAMPLE`] (at random) while it thrashes: fewer than half of the last few
    /// thousand lookups hit, as when there are many more flows than slots. OVS's EMC
    /// does the same (`emc-insert-inv-prob`, 1 in 100 by default): an insert that
    /// only evicts another flow that will not come back before being evicted itself
    /// is work for nothing. Skipping an insert never makes a decision wrong: the
    /// caller recomputes it on the next miss.
    #[inline]
    pub fn insert_sampled(&mut self, key: &FlowKey, hash: u64, action: A, stamp: Stamp) {
        if self.sampler.skip(&self.stats) {
            return;
        }
        self.insert(key, hash, action, stamp);
    }

    /// Clears void entries among the next `budget` slots (a few per poll keeps the
    /// cache free of dead entries without a pause); returns how many it cleared.
    pub fn sweep(&mut self, gens: &Gens<'_>, now: u64, budget: usize) -> usize {
        let n = self.slots.len();
        let mut cleared = 0;
        for _ in 0..budget.min(n) {
            let slot = &mut self.slots[self.cursor];
            if slot.is_some_and(|s| !s.is_valid(gens, now)) {
                *slot = None;
                cleared += 1;
            }
            self.cursor = (self.cursor + 1) & (n - 1);
        }
        self.stats.swept += cleared as u64;
        cleared
    }

    /// Empties the cache (tests, or a worker restart).
    pub fn clear(&mut self) {
        self.slots.fill(None);
    }

    /// Occupied slots (O(size): tests and `show` only).
    pub fn occupied(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// While thrashing, [`FlowCache::insert_sampled`] inserts one decision in this many.
pub const SAMPLE: u64 = 64;

/// Lookups between two decisions of whether the cache thrashes.
const WINDOW: u64 = 4096;

/// Decides which inserts [`FlowCache::insert_sampled`] skips.
#[derive(Clone, Copy, Debug)]
struct Sampler {
    /// Hits and misses when the current window started.
    hits: u64,
    misses: u64,
    thrashing: bool,
    /// xorshift64 state.
    rng: u64,
}

impl Sampler {
    const fn new() -> Self {
        Sampler {
            hits: 0,
            misses: 0,
            thrashing: false,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Called on a miss only (never on the hit path): whether to skip this insert.
    #[inline(always)]
    fn skip(&mut self, stats: &CacheStats) -> bool {
        let (hits, misses) = (stats.hits - self.hits, stats.misses - self.misses);
        if hits + misses >= WINDOW {
            self.thrashing = misses > hits;
            self.hits = stats.hits;
            self.misses = stats.misses;
        }
        if !self.thrashing {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % SAMPLE != 0
    }
}

#[cfg(test)]
mod tests;
