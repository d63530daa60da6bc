//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are accumulated in a `u64` as 32-bit big-endian words, which cannot overflow
//! for any frame a switch sees (2^32 words), and folded to 16 bits at the end.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to the running sum `acc` (not folded, not complemented). `acc` holds a
/// sum of big-endian 16-bit words; `data` is summed as such (an odd last byte is the high
/// byte of a zero-padded word).
#[inline]
pub fn accumulate(acc: u64, data: &[u8]) -> u64 {
    acc + u64::from(sum_words(data))
}

#[inline(always)]
fn ne32(b: &[u8]) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u64::from(u32::from_ne_bytes(w))
}

/// Adds `data` to a *native-order* running sum: its bytes summed as native-endian
/// 32-bit halves of 64-bit loads, which cannot overflow a `u64` for any frame. Several
/// pieces can be summed into one accumulator and folded once at the end; RFC 1071 §2 (B):
/// the result is the big-endian sum with its bytes swapped on little-endian machines
/// (see [`sum_words`]), and a verification against 0xffff needs no swap at all.
#[inline]
pub fn sum_native(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += ne32(&c[..4]) + ne32(&c[4..]);
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += ne32(rest);
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_ne_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        // An odd last byte is the high byte of a zero-padded word: in memory order.
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    acc
}

/// A big-endian 16-bit word as a native-order sum would have read it from memory.
#[inline(always)]
pub fn native_word(v: u16) -> u64 {
    u64::from(u16::from_ne_bytes(v.to_be_bytes()))
}

/// The folded ones' complement sum of `data` as big-endian 16-bit words.
#[inline]
pub fn sum_words(data: &[u8]) -> u16 {
    u16::from_be(fold(sum_native(0, data)))
}

/// Folds a running sum to 16 bits (ones' complement addition of the carries).
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum of `data`: the complement of its folded sum.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// Running sum of the IPv4 pseudo-header (RFC 768) for `proto` and `len` bytes.
#[inline]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    u64::from(u32::from(src)) + u64::from(u32::from(dst)) + u64::from(proto) + u64::from(len)
}

/// Running sum of the IPv6 pseudo-header (RFC 8200 §8.1) for `next` and `len` bytes.
#[inline]
pub fn pseudo_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next: u8, len: u32) -> u64 {
    let acc = accumulate(0, &src.octets());
    let acc = accumulate(acc, &dst.octets());
    acc + u64::from(len) + u64::from(next)
}

/// RFC 1624 eqn. 3: the checksum after a 16-bit word of the covered data changed
/// from `old` to `new`.
#[inline]
pub fn update(csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!csum) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// A transport checksum that is 0 is sent as 0xffff (UDP: 0 means "none").
#[inline]
pub fn nonzero(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for w in data.chunks(2) {
            let v = if w.len() == 2 {
                u16::from_be_bytes([w[0], w[1]])
            } else {
                u16::from(w[0]) << 8
            };
            s += u32::from(v);
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
    }

    #[test]
    fn ipv4_header_example() {
        // A well-known header: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
    }

    proptest! {
        #[test]
        fn matches_naive(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn incremental_matches_full(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            idx in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            let words = data.len() / 2;
            let i = idx.index(words) * 2;
            let before = checksum(&data);
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            data[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let inc = update(before, old, new);
            // 0x0000 and 0xffff are the two zeros of ones' complement arithmetic.
            prop_assert!(inc == full || (inc | full) == 0xffff && (inc & full) == 0);
        }
    }
}
