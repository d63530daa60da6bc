//! The FDB's hash table: 128-byte buckets of five inline entries, so that a lookup
//! touches one bucket (two adjacent cache lines) and a batch can load all of its
//! buckets first, independently, before handling the keys one at a time.
//!
//! # Why not `hashbrown::HashTable`
//!
//! hashbrown reads a group of control bytes, then the entry they point at: two
//! *dependent* cache misses per lookup. With a million MACs per side (a replica of
//! about 200 MB) both miss in every cache and the TLB, and even with all the probes
//! of a 32-frame batch in one independent loop (so the CPU can overlap them) the
//! pipeline measured about 120 ns/frame on-CPU (`vswitch-bench pipeline --profile l2
//! --macs 1M`, against 50 ns wanted): the second miss of a probe cannot start before
//! the first returns, and the loop body is long enough that few probes are in flight.
//! Here the bucket index is a function of the hash alone, so the address of every
//! key's bucket is known at once: [`Table::warm`] loads one word of each cache line
//! of each bucket of the batch (the safe form of a software prefetch: the crate has
//! no `unsafe`), and the probes that follow hit the cache.
//!
//! # Shape
//!
//! - Buckets are `#[repr(align(128))]`: an 8-byte overflow count and five 24-byte
//!   entries. An empty entry has the key [`EMPTY`], which no FDB key can be (its VLAN
//!   bits would be 0xfff and more).
//! - A key's home bucket is the multiply-shift reduction of its hash to the bucket
//!   count (Lemire: `hash * buckets >> 64`, no power of two needed). The table is sized
//!   so that it is at most 40 % full at the FDB's capacity: about 4 % of buckets get a
//!   sixth key at that load.
//! - A full bucket sends a key to the next one (linear probing), and each bucket
//!   passed counts it in its `overflow` (F14's outbound overflow count). A lookup stops
//!   at the first bucket whose count is 0, so a miss usually costs one bucket; a
//!   removal decrements the counts along the key's path, so there are no tombstones
//!   and the table never needs rehashing.

use core::hint::black_box;
use core::mem::size_of;

use super::Entry;
use crate::hash::hash_u64;

/// Entries per bucket.
const SLOTS: usize = 5;

/// The key of an empty entry: VLAN bits 0xfff, which no [`super::FdbKey`] has.
pub(super) const EMPTY: u64 = u64::MAX;

/// Entries allowed per slot of the table, as a fraction: at most 2/5 full.
const LOAD_NUM: usize = 2;
const LOAD_DEN: usize = 5;

/// Tables at most this large are not warmed: they stay in L2 anyway, and a warming
/// pass would only add work.
const WARM_MIN_BYTES: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
#[repr(C, align(128))]
struct Bucket {
    /// Keys whose probe passed this bucket because it was full.
    overflow: u64,
    entries: [Entry; SLOTS],
}

const _: () = assert!(size_of::<Bucket>() == 128);

const EMPTY_BUCKET: Bucket = Bucket {
    overflow: 0,
    entries: [Entry {
        key: EMPTY,
        last_seen: 0,
        slot: 0,
        port: 0,
        flags: 0,
    }; SLOTS],
};

/// Buckets preallocated at construction; see the module docs.
#[derive(Debug)]
pub(super) struct Table {
    buckets: Box<[Bucket]>,
    len: usize,
    /// `buckets.len() * SLOTS`.
    slots: usize,
}

impl Table {
    /// A table sized for `capacity` entries at the design load.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let n = (capacity.max(1) * LOAD_DEN).div_ceil(LOAD_NUM * SLOTS);
        Table {
            buckets: vec![EMPTY_BUCKET; n].into_boxed_slice(),
            len: 0,
            slots: n * SLOTS,
        }
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
        self.buckets.len() * size_of::<Bucket>()
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        ((hash_u64(key) as u128 * self.buckets.len() as u128) >> 64) as usize
    }

    #[inline(always)]
    fn next(&self, b: usize) -> usize {
        if b + 1 == self.buckets.len() {
            0
        } else {
            b + 1
        }
    }

    /// Bucket and position of `key`.
    #[inline(always)]
    fn locate(&self, key: u64) -> Option<(usize, usize)> {
        let mut b = self.home(key);
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            if let Some(i) = bucket.entries.iter().position(|e| e.key == key) {
                return Some((b, i));
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
        Some(&self.buckets[b].entries[i])
    }

    #[inline]
    pub(super) fn find_mut(&mut self, key: u64) -> Option<&mut Entry> {
        let (b, i) = self.locate(key)?;
        Some(&mut self.buckets[b].entries[i])
    }

    /// Loads a word from both cache lines of the home bucket of every key, in one
    /// loop with no dependency between keys, so that on a table larger than the
    /// caches all their misses are in flight together; the probes that follow find
    /// the buckets in cache. Does nothing on a small table.
    #[inline]
    pub(super) fn warm(&self, keys: impl Iterator<Item = u64>) {
        if self.allocation_size() <= WARM_MIN_BYTES {
            return;
        }
        let mut acc = 0u64;
        for k in keys {
            let b = &self.buckets[self.home(k)];
            acc ^= b.overflow ^ b.entries[SLOTS - 1].key;
        }
        black_box(acc);
    }

    /// Inserts an entry whose key is absent; false if every slot is taken.
    pub(super) fn insert_unique(&mut self, e: Entry) -> bool {
        if self.len >= self.slots {
            return false;
        }
        let mut b = self.home(e.key);
        loop {
            let bucket = &mut self.buckets[b];
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
        let e = core::mem::replace(&mut self.buckets[b].entries[i], EMPTY_BUCKET.entries[0]);
        self.len -= 1;
        let mut j = self.home(key);
        while j != b {
            self.buckets[j].overflow -= 1;
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
        for b in 0..self.buckets.len() {
            for i in 0..SLOTS {
                let e = &mut self.buckets[b].entries[i];
                if e.key != EMPTY && !keep(e) {
                    let key = e.key;
                    self.remove_at(key, b, i);
                }
            }
        }
    }

    /// The entries, in bucket order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.key != EMPTY)
    }

    /// Makes room for `capacity` entries at the design load, moving every entry to a
    /// larger table if needed (control plane: it allocates).
    pub(super) fn reserve(&mut self, capacity: usize) {
        if self.capacity() >= capacity {
            return;
        }
        let mut t = Table::with_capacity(capacity);
        for e in self.iter() {
            t.insert_unique(*e);
        }
        *self = t;
    }

    /// Overflow counts match the entries' probe paths (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let mut want = vec![0u64; self.buckets.len()];
        let mut n = 0;
        for (b, bucket) in self.buckets.iter().enumerate() {
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
        for (bucket, w) in self.buckets.iter().zip(want) {
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
        }
    }

    /// A table filled to every slot, then emptied in another order: probes past full
    /// buckets find every key, and the overflow counts return to zero.
    #[test]
    fn full_table_overflow_and_removal() {
        let mut t = Table::with_capacity(8);
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
        assert!(t.buckets.iter().all(|b| b.overflow == 0));
    }
}
