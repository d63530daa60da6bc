//! The FDB's hash table: 64-byte buckets (one cache line) of two inline entries, in
//! memory of its own backed by transparent huge pages, so that a lookup touches one
//! line and a batch can load all of its lines first, independently, before handling
//! the keys one at a time.
//!
//! # Why not `hashbrown::HashTable` (STYLE principle 7)
//!
//! hashbrown reads a group of control bytes, then the entry they point at: two
//! *dependent* cache misses per lookup. With a million MACs per side (a replica of
//! about 200 MB) both miss in every cache and the TLB. `vswitch-bench pipeline
//! --profile l2 --macs 1M`, on-CPU ns/frame (the `@cpu` column; the 2-core machine was
//! shared with other builds, so compare rows measured together, not with the README):
//!
//! | FDB table | ns/frame |
//! |---|---:|
//! | hashbrown, one probe per frame (before) | 155 |
//! | hashbrown, the batch's sources probed first in one independent loop | 116–120 |
//! | the same with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` | 107–109 |
//! | 128-byte buckets of 5 entries, sources and destinations warmed, 4 KiB pages | 99–102 |
//! | 128-byte buckets of 5, in huge pages (three runs alternated with the next row) | 95–97 |
//! | 64-byte buckets of 2, in huge pages (this table) | 83–87 |
//!
//! The probe's second miss cannot start before the first returns, and a probe loop
//! is long enough that few probes are in flight. Here the bucket index is a function
//! of the hash alone, so the address of every key's bucket is known at once:
//! [`Table::warm`] loads one word of each key's bucket in a loop with no dependency
//! between keys (the safe form of a software prefetch: the crate has no `unsafe`), and
//! the probes that follow hit the cache. One line per key rather than two (128-byte
//! buckets need both: an entry straddles them) was worth another 12 %: at a million
//! MACs the pass is bound by how many random lines the core keeps in flight.
//!
//! # Shape
//!
//! - Buckets are `#[repr(align(64))]`: an 8-byte overflow count, two 24-byte entries
//!   and padding. An empty entry has the key [`EMPTY`], which no FDB key can be (its
//!   VLAN bits would be 0xfff and more).
//! - The bucket count is a power of two, at least three times the FDB's capacity
//!   over two slots, and a key's home bucket is the top bits of its hash (which is
//!   a folded multiply: multiply-shift). At most a third full, fewer than 3 % of the
//!   keys do not fit their home bucket; two million entries take 256 MiB, a quarter
//!   full. (Reducing the hash to an exact bucket count, `hash * buckets >> 64`, saved
//!   a quarter of the memory but put a second multiply on every lookup's critical
//!   path: 0.5–0.6 ns per lookup or learn at 1k MACs in `cargo bench --bench
//!   flowtable`; the 1M pipeline also measured faster without it, 62–65 against
//!   73–75 ns/frame.)
//! - A full bucket sends a key to the next one (linear probing: the next line, often
//!   fetched with this one), and each bucket passed counts it in its `overflow` (F14's
//!   outbound overflow count). A lookup stops at the first bucket whose count is 0,
//!   so a miss usually costs one line; a removal decrements the counts along the
//!   key's path, so there are no tombstones and the table never needs rehashing.
//! - The buckets live in an anonymous map (`memmap2`) advised `MADV_HUGEPAGE` and cast
//!   to `[Bucket]` with `bytemuck` (both safe): with 4 KiB pages every random line of
//!   a large table also costs a page walk. Where the kernel has no transparent huge
//!   pages the advice fails and 4 KiB pages are used. The map is written at
//!   construction, so no page fault happens on the packet path.

use core::hint::black_box;
use core::mem::size_of;

use memmap2::{Advice, MmapMut};

use super::Entry;
use crate::hash::hash_u64;
use crate::FdbError;

/// Entries per bucket (`locate` compares both at once).
const SLOTS: usize = 2;

/// The key of an empty entry: VLAN bits 0xfff, which no [`super::FdbKey`] has.
pub(super) const EMPTY: u64 = u64::MAX;

/// Entries allowed per slot of the table, as a fraction: at most 1/3 full.
const LOAD_NUM: usize = 1;
const LOAD_DEN: usize = 3;

/// Tables at most this large are not warmed: they stay in L2 anyway, and a warming
/// pass would only add work.
const WARM_MIN_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Bucket {
    /// Keys whose probe passed this bucket because it was full.
    overflow: u64,
    entries: [Entry; SLOTS],
    /// Explicit padding to the cache line.
    pad: u64,
}

const _: () = assert!(size_of::<Bucket>() == 64);

const EMPTY_BUCKET: Bucket = Bucket {
    overflow: 0,
    pad: 0,
    entries: [Entry {
        key: EMPTY,
        last_seen: 0,
        slot: 0,
        port: 0,
        flags: 0,
        pad: 0,
    }; SLOTS],
};

/// Buckets preallocated at construction; see the module docs.
#[derive(Debug)]
pub(super) struct Table {
    /// The bucket array, as bytes (page aligned, so it casts to buckets).
    map: MmapMut,
    len: usize,
    /// Buckets × SLOTS.
    slots: usize,
    /// 64 − log2(buckets): a key's home bucket is the top bits of its hash.
    shift: u32,
}

impl Table {
    /// A table sized for `capacity` entries at the design load, in memory of its own
    /// that asks for transparent huge pages, written once so that every page is
    /// there before the first frame.
    pub(super) fn with_capacity(capacity: usize) -> Result<Self, FdbError> {
        let n = (capacity.max(1) * LOAD_DEN)
            .div_ceil(LOAD_NUM * SLOTS)
            .max(2)
            .next_power_of_two();
        let bytes = n * size_of::<Bucket>();
        let err = |e: std::io::Error| FdbError::TableMemory {
            bytes,
            kind: e.kind(),
        };
        let mut map = MmapMut::map_anon(bytes).map_err(err)?;
        // Without huge pages every bucket access of a large table also misses the
        // TLB; a kernel without THP (or with it off) just keeps 4 KiB pages.
        let _ = map.advise(Advice::HugePage);
        let buckets: &mut [Bucket] = bytemuck::cast_slice_mut(&mut map[..]);
        buckets.fill(EMPTY_BUCKET);
        Ok(Table {
            map,
            len: 0,
            slots: n * SLOTS,
            shift: 64 - n.trailing_zeros(),
        })
    }

    /// The buckets (a page-aligned map of a whole number of buckets: the cast
    /// cannot fail).
    #[inline(always)]
    fn buckets(&self) -> &[Bucket] {
        bytemuck::cast_slice(&self.map[..])
    }

    #[inline(always)]
    fn buckets_mut(&mut self) -> &mut [Bucket] {
        bytemuck::cast_slice_mut(&mut self.map[..])
    }

    /// Bucket `b`, cast from its own 64 bytes of the map: the packet path's access.
    /// A slice of constant length leaves the cast only the alignment to check, where
    /// casting the whole map ([`Table::buckets`]) also checked the map's length and
    /// address on every lookup and learn. Panics past the end, as indexing would.
    #[inline(always)]
    fn bucket(&self, b: usize) -> &Bucket {
        let at = b * size_of::<Bucket>();
        bytemuck::from_bytes(&self.map[at..at + size_of::<Bucket>()])
    }

    #[inline(always)]
    fn bucket_mut(&mut self, b: usize) -> &mut Bucket {
        let at = b * size_of::<Bucket>();
        bytemuck::from_bytes_mut(&mut self.map[at..at + size_of::<Bucket>()])
    }

    /// Entries it holds at the design load (more fit, with longer probes).
    pub(super) fn capacity(&self) -> usize {
        self.slots * LOAD_NUM / LOAD_DEN
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of the bucket array.
    pub(super) fn allocation_size(&self) -> usize {
        self.map.len()
    }

    /// Buckets.
    #[inline(always)]
    fn count(&self) -> usize {
        self.slots / SLOTS
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (hash_u64(key) >> self.shift) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        (b + 1) & (self.count() - 1)
    }

    /// Bucket and position of `key`.
    #[inline(always)]
    fn locate(&self, key: u64) -> Option<(usize, usize)> {
        let mut b = self.home(key);
        for _ in 0..self.count() {
            let bucket = self.bucket(b);
            // Both slots compared without a branch between them: which slot holds a
            // key is unpredictable, and a mispredicted branch here would serialise
            // the lookups of a batch.
            let [hit0, hit1] = bucket.entries.each_ref().map(|e| e.key == key);
            if hit0 | hit1 {
                return Some((b, usize::from(hit1)));
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = self.next(b);
        }
        None
    }

    #[inline]
    pub(super) fn find(&self, key: u64) -> Option<&Entry> {
        let (b, i) = self.locate(key)?;
        Some(&self.bucket(b).entries[i])
    }

    #[inline]
    pub(super) fn find_mut(&mut self, key: u64) -> Option<&mut Entry> {
        let (b, i) = self.locate(key)?;
        Some(&mut self.bucket_mut(b).entries[i])
    }

    /// Whether the table is larger than L2, so that warming pays.
    #[inline]
    pub(super) fn warm_pays(&self) -> bool {
        self.allocation_size() > WARM_MIN_BYTES
    }

    /// Loads a word of the home bucket (one cache line) of every key, in one
    /// loop with no dependency between keys, so that on a table larger than the
    /// caches all their misses are in flight together; the probes that follow find
    /// the buckets in cache. Does nothing on a small table.
    #[inline]
    pub(super) fn warm(&self, keys: impl Iterator<Item = u64>) {
        if !self.warm_pays() {
            return;
        }
        let buckets = self.buckets();
        let mut acc = 0u64;
        for k in keys {
            let b = &buckets[self.home(k)];
            acc ^= b.overflow;
        }
        black_box(acc);
    }

    /// Asks the CPU to fetch the home bucket of `key` (a software prefetch: it
    /// returns at once and never faults). Issued for a batch's keys while the
    /// batch's headers are still being parsed, the misses overlap that work
    /// instead of stalling the stage that probes them.
    #[inline(always)]
    pub(super) fn prefetch(&self, key: u64) {
        if let Some(b) = self.buckets().get(self.home(key)) {
            mem_prefetch::prefetch_read_data::<_, 3>(b);
        }
    }

    /// Inserts an entry whose key is absent; false if every slot is taken.
    pub(super) fn insert_unique(&mut self, e: Entry) -> bool {
        if self.len >= self.slots {
            return false;
        }
        let mut b = self.home(e.key);
        loop {
            let bucket = &mut self.buckets_mut()[b];
            if let Some(slot) = bucket.entries.iter_mut().find(|s| s.key == EMPTY) {
                *slot = e;
                self.len += 1;
                return true;
            }
            bucket.overflow += 1;
            b = self.next(b);
        }
    }

    /// Empties position `i` of bucket `b`, which holds `key`, and takes the key off
    /// the overflow counts of the buckets its probe passed.
    fn remove_at(&mut self, key: u64, b: usize, i: usize) -> Entry {
        let e = core::mem::replace(
            &mut self.buckets_mut()[b].entries[i],
            EMPTY_BUCKET.entries[0],
        );
        self.len -= 1;
        let mut j = self.home(key);
        while j != b {
            self.buckets_mut()[j].overflow -= 1;
            j = self.next(j);
        }
        e
    }

    /// Removes `key`'s entry and returns it.
    pub(super) fn remove(&mut self, key: u64) -> Option<Entry> {
        let (b, i) = self.locate(key)?;
        Some(self.remove_at(key, b, i))
    }

    /// Keeps the entries for which `keep` returns true (it may change them).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&mut Entry) -> bool) {
        for b in 0..self.count() {
            for i in 0..SLOTS {
                let e = &mut self.buckets_mut()[b].entries[i];
                if e.key != EMPTY && !keep(e) {
                    let key = e.key;
                    self.remove_at(key, b, i);
                }
            }
        }
    }

    /// The entries, in bucket order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.buckets()
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.key != EMPTY)
    }

    /// Makes room for `capacity` entries at the design load, moving every entry to a
    /// larger table if needed (control plane: it allocates). If the memory cannot be
    /// had, the table stays as it is: it still holds up to three times its design load,
    /// with longer probes.
    pub(super) fn reserve(&mut self, capacity: usize) {
        if self.capacity() >= capacity {
            return;
        }
        let Ok(mut t) = Table::with_capacity(capacity) else {
            return;
        };
        for e in self.iter() {
            t.insert_unique(*e);
        }
        *self = t;
    }

    /// Overflow counts match the entries' probe paths (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut want = vec![0u64; self.count()];
        let mut n = 0;
        for (b, bucket) in self.buckets().iter().enumerate() {
            for e in bucket.entries.iter().filter(|e| e.key != EMPTY) {
                n += 1;
                assert_eq!(self.locate(e.key).map(|x| x.0), Some(b));
                let mut j = self.home(e.key);
                while j != b {
                    want[j] += 1;
                    j = self.next(j);
                }
            }
        }
        assert_eq!(n, self.len);
        for (bucket, w) in self.buckets().iter().zip(want) {
            assert_eq!(bucket.overflow, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64) -> Entry {
        Entry {
            key,
            last_seen: key,
            slot: 0,
            port: 0,
            flags: 0,
            pad: 0,
        }
    }

    /// A table filled to every slot, then emptied in another order: probes past full
    /// buckets find every key, and the overflow counts return to zero.
    #[test]
    fn full_table_overflow_and_removal() {
        let mut t = Table::with_capacity(8).unwrap();
        let n = t.slots as u64;
        for k in 0..n {
            assert!(t.insert_unique(entry(k * 7919)));
        }
        assert!(!t.insert_unique(entry(n * 7919)));
        t.check();
        for k in 0..n {
            assert_eq!(t.find(k * 7919).map(|e| e.last_seen), Some(k * 7919));
        }
        for k in (0..n).rev().step_by(2) {
            assert!(t.remove(k * 7919).is_some());
            t.check();
        }
        t.retain(|e| e.key % 3 == 0);
        t.check();
        for k in 0..n {
            t.remove(k * 7919);
        }
        t.check();
        assert!(t.is_empty());
        assert!(t.buckets().iter().all(|b| b.overflow == 0));
    }
}
