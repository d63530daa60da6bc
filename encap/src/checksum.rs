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

/// Whether the packet at `l3` can carry a TCP/UDP checksum at all (IPv4 or IPv6 with
/// TCP or UDP as the first header): a few loads, to call before [`complete_partial`].
#[inline(always)]
pub fn may_be_partial(frame: &[u8], l3: usize, ethertype: u16) -> bool {
    let proto = match ethertype {
        0x0800 => frame.get(l3 + 9),
        0x86dd => frame.get(l3 + 6),
        _ => None,
    };
    matches!(proto, Some(6 | 17))
}

/// Where a TCP or UDP checksum lives in a frame, and the sum it starts from.
struct L4Sum {
    /// Offset of the transport header.
    l4: usize,
    /// Length the checksum covers.
    len: usize,
    /// Offset of the checksum field.
    field: usize,
    /// The pseudo-header's native-order running sum.
    pseudo: u64,
}

/// Finds the TCP/UDP checksum of an IPv4 or IPv6 packet at `l3` in `frame` (IPv4
/// without fragmentation; IPv6 without extension headers): `None` for anything else.
fn l4_sum(frame: &[u8], l3: usize, ethertype: u16) -> Option<L4Sum> {
    let ip = frame.get(l3..)?;
    let (proto, l4, len, addrs) = match ethertype {
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff != 0;
            if *ip.first()? >> 4 != 4 || ihl < 20 || frag || total < ihl || total > ip.len() {
                return None;
            }
            (*ip.get(9)?, l3 + ihl, total - ihl, ip.get(12..20)?)
        }
        0x86dd => {
            let payload = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            if *ip.first()? >> 4 != 6 || 40 + payload > ip.len() {
                return None;
            }
            (*ip.get(6)?, l3 + 40, payload, ip.get(8..40)?)
        }
        _ => return None,
    };
    let field = match proto {
        6 if len >= 20 => l4 + 16,
        17 if len >= 8 => l4 + 6,
        _ => return None,
    };
    let pseudo = sum_native(0, addrs)
        + native_word(u16::from(proto))
        + native_word(len as u16)
        + native_word((len >> 16) as u16);
    Some(L4Sum {
        l4,
        len,
        field,
        pseudo,
    })
}

/// Completes a *partial* TCP or UDP checksum in place: what a sender with TX checksum
/// offload leaves for a NIC to finish (Linux's `CHECKSUM_PARTIAL`: the field holds the
/// folded pseudo-header sum alone), and what a veth or tap hands over unfinished to a
/// switch reading raw frames (AF_XDP carries no checksum metadata). `l3` is the offset
/// of the IP header, `ethertype` its type. A checksum that already verifies, or that is
/// not in the partial form, is left alone; returns whether one was completed.
///
/// Detection costs one pseudo-header sum per TCP/UDP packet; the payload is summed only
/// for a packet whose field holds exactly that value. [`may_be_partial`] is the cheap
/// test to call first.
#[inline(never)]
pub fn complete_partial(frame: &mut [u8], l3: usize, ethertype: u16) -> bool {
    let Some(s) = l4_sum(frame, l3, ethertype) else {
        return false;
    };
    let Some(stored) = frame.get(s.field..s.field + 2) else {
        return false;
    };
    let stored = u16::from_ne_bytes([stored[0], stored[1]]);
    if stored != fold(s.pseudo) {
        return false;
    }
    let Some(seg) = frame.get(s.l4..s.l4 + s.len) else {
        return false;
    };
    let with_field = fold(sum_native(s.pseudo, seg));
    if with_field == 0xffff {
        return false; // It verifies as it is.
    }
    // The sum without the field (the field held the pseudo sum, which is in `pseudo`
    // once already): complement of pseudo + segment with a zero field.
    let without = sum_native(s.pseudo, seg) + u64::from(!stored);
    let mut c = !fold(without);
    if s.field == s.l4 + 6 && c == 0 {
        c = 0xffff; // UDP: 0 means "no checksum".
    }
    frame[s.field..s.field + 2].copy_from_slice(&c.to_ne_bytes());
    true
}

#[cfg(test)]
mod partial_tests {
    use super::*;

    /// A UDP or TCP packet over IPv4 or IPv6 with a valid checksum, and the same with
    /// the partial form a sender with TX offload leaves.
    fn packets(proto: u8, v6: bool) -> (Vec<u8>, Vec<u8>, usize) {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let payload: Vec<u8> = (0..333u16).map(|i| (i * 7) as u8).collect();
        let mut good = Vec::new();
        if proto == 17 {
            b.udp(1234, 5678).write(&mut good, &payload).unwrap();
        } else {
            b.tcp(1234, 5678, 1, 1000)
                .write(&mut good, &payload)
                .unwrap();
        }
        let l3 = 14;
        let s = l4_sum(&good, l3, if v6 { 0x86dd } else { 0x0800 }).unwrap();
        let mut partial = good.clone();
        partial[s.field..s.field + 2].copy_from_slice(&fold(s.pseudo).to_ne_bytes());
        (good, partial, l3)
    }

    #[test]
    fn partial_checksums_are_completed_exactly() {
        for (proto, v6) in [(17, false), (6, false), (17, true), (6, true)] {
            let (good, mut partial, l3) = packets(proto, v6);
            let et = if v6 { 0x86dd } else { 0x0800 };
            assert!(complete_partial(&mut partial, l3, et), "{proto} {v6}");
            assert_eq!(partial, good, "{proto} v6={v6}");
            // A valid checksum is left alone, and so is a wrong one not in partial form.
            let mut again = good.clone();
            assert!(!complete_partial(&mut again, l3, et));
            assert_eq!(again, good);
            let mut wrong = good.clone();
            let s = l4_sum(&wrong, l3, et).unwrap();
            wrong[s.field] ^= 0x40;
            let before = wrong.clone();
            assert!(!complete_partial(&mut wrong, l3, et));
            assert_eq!(wrong, before);
        }
    }

    #[test]
    fn other_packets_are_left_alone() {
        let mut arp = vec![0u8; 60];
        assert!(!complete_partial(&mut arp, 14, 0x0806));
        let (_, mut partial, _) = packets(17, false);
        partial.truncate(30);
        assert!(!complete_partial(&mut partial, 14, 0x0800));
    }
}
