//! Cheap hashes for one-word keys.
//!
//! The FDB and flow-cache keys are a few packed integers chosen by the switch, not by
//! a client, and the tables bound their sizes, so HashDoS resistance (SipHash) buys
//! little here while costing several times more per frame. A *folded multiply* — the full
//! 128-bit product of the key and an odd constant, high half XOR low half — costs one
//! `mul` and mixes every input bit into both the low bits (hashbrown's bucket index)
//! and the top 7 bits (hashbrown's control tag). A plain 64-bit multiply would leave
//! the low bits depending only on the low bits of the key, so MACs that differ only in
//! their VLAN would all land in the same bucket.

/// An odd 64-bit constant with well-spread bits (2^64 / golden ratio).
const K0: u64 = 0x9e37_79b9_7f4a_7c15;
/// A second constant for two-word keys (from PCG's multiplier).
const K1: u64 = 0x5851_f42d_4c95_7f2d;

/// The folded product of `a` and `b`: high 64 bits XOR low 64 bits of `a * b`.
#[inline(always)]
pub const fn folded_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hash of a one-word key (the FDB key `vlan << 48 | mac`).
#[inline(always)]
pub const fn hash_u64(key: u64) -> u64 {
    folded_mul(key ^ K1, K0)
}

/// Hash of a two-word key (the flow-cache key).
#[inline(always)]
pub const fn hash_u64_pair(a: u64, b: u64) -> u64 {
    folded_mul(a ^ K0, b ^ K1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys that differ only in the VLAN bits (48..60) must not share low bits.
    #[test]
    fn vlan_bits_reach_the_bucket_index() {
        let mac = 0x02_00_00_00_00_01u64;
        let mut buckets = std::collections::HashSet::new();
        for vlan in 1..=64u64 {
            buckets.insert(hash_u64(vlan << 48 | mac) & 0xfff);
        }
        assert!(
            buckets.len() > 56,
            "{} distinct buckets of 64",
            buckets.len()
        );
    }

    /// Sequential MACs spread over the top 7 bits (hashbrown's tag) too.
    #[test]
    fn sequential_keys_spread_tags() {
        let mut tags = [0u32; 128];
        for mac in 0..128 * 64u64 {
            tags[(hash_u64(1 << 48 | mac) >> 57) as usize] += 1;
        }
        assert!(tags.iter().all(|&n| n > 20 && n < 120), "{tags:?}");
    }
}
