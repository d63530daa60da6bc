//! ICMPv6 Neighbor Solicitation and Neighbor Advertisement (RFC 4861 §4.3, §4.4), with
//! the Source/Target Link-Layer Address options (§4.6.1) for Ethernet.
//!
//! The underlay resolves remote VTEPs and its gateway with these two messages and answers
//! the solicitations for its own address; nothing else of ICMPv6 is handled here.
//!
//! ```text
//!  0        1        2                 4                                8
//! +--------+--------+-----------------+--------------------------------+
//! | type   | code   | checksum        | NS: reserved                   |
//! |135/136 |   0    |                 | NA: R S O, 29 reserved bits    |
//! +--------+--------+-----------------+--------------------------------+
//! |                   target address (16 bytes)                        |
//! +--------------------------------------------------------------------+
//! | options: type (1 byte), length (1 byte, in units of 8 bytes), data  |
//! +--------------------------------------------------------------------+
//! ```
//!
//! A [`Packet`] is the ICMPv6 message alone (the IPv6 payload after any extension
//! headers, exactly as long as the message: the checksum covers all of it). Validation
//! needs the IPv6 header too (hop limit, addresses), so [`NdRepr::parse`] takes the
//! [`Ipv6Repr`] of the packet that carried the message and applies the receiver checks of
//! RFC 4861 §7.1.1 (NS) and §7.1.2 (NA).

use core::net::Ipv6Addr;

use crate::checksum;
use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::mac_at;
use crate::ipv6::Ipv6Repr;
use crate::types::MacAddr;

/// IPv6 next-header value of ICMPv6.
pub const NEXT_HEADER: u8 = 58;
/// Fixed part of an NS or NA: type, code, checksum, flags/reserved, target.
pub const HEADER_LEN: usize = 24;
/// The hop limit every ND message is sent with and must arrive with (RFC 4861 §7.1): a
/// router would have decremented it, so 255 proves the sender is on-link.
pub const ND_HOP_LIMIT: u8 = 255;
/// Length of a Source/Target Link-Layer Address option carrying an Ethernet address.
pub const LLADDR_OPT_LEN: usize = 8;

/// ICMPv6 message types handled here.
pub mod msg {
    /// Neighbor Solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// ND option types handled here (RFC 4861 §4.6).
pub mod opt {
    /// Source Link-Layer Address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target Link-Layer Address.
    pub const TARGET_LLADDR: u8 = 2;
}

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: usize = 24;
}

/// Neighbor Advertisement flag bits in the first byte after the checksum.
mod flag {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

fn err(kind: ErrorKind) -> Error {
    Error::new(Layer::Icmpv6, kind)
}

/// A view of an ND message.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without a length check; accessors may panic below [`HEADER_LEN`] bytes.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking the fixed part (24 bytes) is there.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(Layer::Icmpv6, HEADER_LEN, have));
        }
        Ok(Packet { buffer })
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Code (0 for ND).
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// NA flags (meaningless in an NS, whose byte is reserved).
    #[inline]
    pub fn flags(&self) -> NaFlags {
        NaFlags::from_bits(self.buffer.as_ref()[field::FLAGS])
    }
    /// Target address.
    #[inline]
    pub fn target(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(a)
    }
    /// The option bytes after the fixed part.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..]
    }
    /// Iterates over the options; stops after the first malformed one.
    #[inline]
    pub fn option_iter(&self) -> NdOptions<'_> {
        NdOptions {
            rest: self.options(),
        }
    }
    /// Whether the checksum over the IPv6 pseudo-header and the whole message verifies.
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        checksum::fold(self.sum(src, dst)) == 0xffff
    }

    fn sum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u64 {
        let b = self.buffer.as_ref();
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        checksum::accumulate(checksum::pseudo_v6(src, dst, NEXT_HEADER, len), b)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }
    /// Sets the code.
    #[inline]
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the NA flags and clears the 29 reserved bits (an NS is sent with flags empty).
    #[inline]
    pub fn set_flags(&mut self, f: NaFlags) {
        let b = self.buffer.as_mut();
        b[field::RESERVED].fill(0);
        b[field::FLAGS] = f.bits();
    }
    /// Sets the target address.
    #[inline]
    pub fn set_target(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&a.octets());
    }
    /// The option bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS..]
    }
    /// Computes and writes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = !checksum::fold(self.sum(src, dst));
        self.set_checksum(c);
    }
}

/// One ND option: its type and the bytes after the type and length bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// Option type.
    pub kind: u8,
    /// Option data (length − 2 bytes).
    pub data: &'a [u8],
}

/// Iterator over ND options. A length of 0 ([`ErrorKind::BadLength`], RFC 4861 §4.6) or an
/// option running past the message ([`ErrorKind::Truncated`]) is yielded as an error, and
/// the iteration ends.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<NdOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        self.rest = &[];
        let (kind, units) = match rest {
            [k, l, ..] => (*k, usize::from(*l)),
            _ => return Some(Err(Error::truncated(Layer::Icmpv6, 2, rest.len()))),
        };
        if units == 0 {
            return Some(Err(err(ErrorKind::BadLength)));
        }
        let len = units * 8;
        let (Some(data), Some(after)) = (rest.get(2..len), rest.get(len..)) else {
            return Some(Err(Error::truncated(Layer::Icmpv6, len, rest.len())));
        };
        self.rest = after;
        Some(Ok(NdOption { kind, data }))
    }
}

/// The flags of a Neighbor Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: the advertisement should override an existing cache entry.
    pub override_: bool,
}

impl NaFlags {
    /// Reads the flags from the first byte after the checksum (reserved bits ignored).
    #[inline]
    pub const fn from_bits(b: u8) -> Self {
        NaFlags {
            router: b & flag::ROUTER != 0,
            solicited: b & flag::SOLICITED != 0,
            override_: b & flag::OVERRIDE != 0,
        }
    }

    /// The flags as the first byte after the checksum.
    #[inline]
    pub const fn bits(self) -> u8 {
        (if self.router { flag::ROUTER } else { 0 })
            | (if self.solicited { flag::SOLICITED } else { 0 })
            | (if self.override_ { flag::OVERRIDE } else { 0 })
    }
}

/// A Neighbor Solicitation or Advertisement with its Ethernet link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdRepr {
    /// Neighbor Solicitation (type 135).
    Solicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// Source Link-Layer Address option, if present.
        source_mac: Option<MacAddr>,
    },
    /// Neighbor Advertisement (type 136).
    Advert {
        /// R, S, O.
        flags: NaFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// Target Link-Layer Address option, if present.
        target_mac: Option<MacAddr>,
    },
}

/// The Ethernet address of a Source/Target Link-Layer Address option. RFC 4861 §4.6.1:
/// on Ethernet the option is exactly 8 bytes; another size is malformed (as Linux's
/// `ndisc_opt_addr_data` treats it).
fn lladdr(o: &NdOption<'_>) -> Result<MacAddr, Error> {
    if o.data.len() + 2 != LLADDR_OPT_LEN {
        return Err(err(ErrorKind::BadLength));
    }
    Ok(mac_at(o.data, 0))
}

/// The solicited-node multicast address of `ip`: ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
#[inline]
pub fn solicited_node(ip: &Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// Whether `ip` is a solicited-node multicast address (ff02::1:ff00:0/104).
#[inline]
pub fn is_solicited_node(ip: &Ipv6Addr) -> bool {
    let o = ip.octets();
    o[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
}

/// The Ethernet address an IPv6 multicast address maps to: 33:33 and its low 32 bits
/// (RFC 2464 §7).
#[inline]
pub fn multicast_mac(ip: &Ipv6Addr) -> MacAddr {
    let o = ip.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

impl NdRepr {
    /// Parses and validates an NS or NA carried by the IPv6 packet `ip`.
    ///
    /// Checks, per RFC 4861 §7.1.1/§7.1.2: type 135/136 (else [`ErrorKind::NotMatched`]),
    /// hop limit 255 ([`ErrorKind::BadValue`]), the checksum ([`ErrorKind::BadChecksum`]),
    /// code 0 ([`ErrorKind::BadValue`]), length ≥ 24 (by [`Packet::new_checked`]),
    /// target not multicast ([`ErrorKind::BadValue`]), every option of non-zero length
    /// inside the message, link-layer address options of 8 bytes
    /// ([`ErrorKind::BadLength`] / [`ErrorKind::Truncated`]); for an NS from the
    /// unspecified address: no Source Link-Layer Address option and a solicited-node
    /// multicast destination; for an NA: the Solicited flag clear when the destination is
    /// multicast ([`ErrorKind::BadValue`]). Unknown options are skipped; of repeated
    /// link-layer address options the first counts.
    pub fn parse<T: AsRef<[u8]>>(ip: &Ipv6Repr, p: &Packet<T>) -> Result<Self, Error> {
        // The type first: another ICMPv6 message (a ping with hop limit 64) is not a
        // malformed ND message.
        let solicit = match p.msg_type() {
            msg::NEIGHBOR_SOLICIT => true,
            msg::NEIGHBOR_ADVERT => false,
            _ => return Err(err(ErrorKind::NotMatched)),
        };
        if ip.hop_limit != ND_HOP_LIMIT {
            return Err(err(ErrorKind::BadValue));
        }
        if !p.verify_checksum(&ip.src, &ip.dst) {
            return Err(err(ErrorKind::BadChecksum));
        }
        if p.code() != 0 {
            return Err(err(ErrorKind::BadValue));
        }
        let target = p.target();
        if target.is_multicast() {
            return Err(err(ErrorKind::BadValue));
        }
        let want = if solicit {
            opt::SOURCE_LLADDR
        } else {
            opt::TARGET_LLADDR
        };
        let mut mac = None;
        for o in p.option_iter() {
            let o = o?;
            if o.kind == want && mac.is_none() {
                mac = Some(lladdr(&o)?);
            }
        }
        if solicit {
            if ip.src.is_unspecified() && (mac.is_some() || !is_solicited_node(&ip.dst)) {
                return Err(err(ErrorKind::BadValue));
            }
            Ok(NdRepr::Solicit {
                target,
                source_mac: mac,
            })
        } else {
            let flags = p.flags();
            if flags.solicited && ip.dst.is_multicast() {
                return Err(err(ErrorKind::BadValue));
            }
            Ok(NdRepr::Advert {
                flags,
                target,
                target_mac: mac,
            })
        }
    }

    /// Message length: 24, plus 8 with a link-layer address option.
    pub const fn buffer_len(&self) -> usize {
        let mac = match self {
            NdRepr::Solicit { source_mac, .. } => source_mac.is_some(),
            NdRepr::Advert { target_mac, .. } => target_mac.is_some(),
        };
        HEADER_LEN + if mac { LLADDR_OPT_LEN } else { 0 }
    }

    /// Writes the message and its checksum for an IPv6 packet from `src` to `dst`. The
    /// buffer must be exactly [`NdRepr::buffer_len`] bytes (the checksum covers all of it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        p: &mut Packet<T>,
    ) {
        let (ty, flags, target, mac, kind) = match *self {
            NdRepr::Solicit { target, source_mac } => (
                msg::NEIGHBOR_SOLICIT,
                NaFlags::default(),
                target,
                source_mac,
                opt::SOURCE_LLADDR,
            ),
            NdRepr::Advert {
                flags,
                target,
                target_mac,
            } => (
                msg::NEIGHBOR_ADVERT,
                flags,
                target,
                target_mac,
                opt::TARGET_LLADDR,
            ),
        };
        p.set_msg_type(ty);
        p.set_code(0);
        p.set_flags(flags);
        p.set_target(&target);
        if let Some(m) = mac {
            let o = p.options_mut();
            o[0] = kind;
            o[1] = (LLADDR_OPT_LEN / 8) as u8;
            o[2..LLADDR_OPT_LEN].copy_from_slice(&m.0);
        }
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const TGT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

    /// NS for 2001:db8::2 from 2001:db8::1 (SLLA 02:00:00:00:00:01) to ff02::1:ff00:2.
    /// Checksum computed by hand: pseudo-header + message, see `golden_checksum_by_hand`.
    const GOLDEN_NS: [u8; 32] = [
        135, 0, 0x1c, 0x27, 0, 0, 0, 0, // type, code, checksum, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 0x02, 0, 0, 0, 0, 0x01, // SLLA
    ];

    fn ip(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Ipv6Repr {
        Ipv6Repr {
            src,
            dst,
            next_header: NEXT_HEADER,
            payload_len: len as u16,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    fn ns_repr() -> NdRepr {
        NdRepr::Solicit {
            target: TGT,
            source_mac: Some(MAC),
        }
    }

    #[test]
    fn golden_checksum_by_hand() {
        // Sum of 16-bit words: pseudo-header (src, dst, length 32, next header 58) and the
        // message with a zero checksum, folded and complemented.
        let dst = solicited_node(&TGT);
        let mut s: u32 = 0;
        let mut add = |b: &[u8]| {
            for w in b.chunks(2) {
                s += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
        };
        add(&SRC.octets());
        add(&dst.octets());
        add(&[0, 0, 0, 32, 0, 0, 0, 58]);
        let mut m = GOLDEN_NS;
        m[2] = 0;
        m[3] = 0;
        add(&m);
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(!(s as u16), 0x1c27);
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN_NS[..]).unwrap();
        assert_eq!(p.msg_type(), msg::NEIGHBOR_SOLICIT);
        assert_eq!(p.target(), TGT);
        let r = NdRepr::parse(&ip(SRC, solicited_node(&TGT), 32), &p).unwrap();
        assert_eq!(r, ns_repr());
    }

    #[test]
    fn test_construct() {
        let mut b = [0xaau8; 32];
        ns_repr().emit(
            &SRC,
            &solicited_node(&TGT),
            &mut Packet::new_unchecked(&mut b[..]),
        );
        assert_eq!(b, GOLDEN_NS);
    }

    #[test]
    fn addresses() {
        let a: Ipv6Addr = "2001:db8::12:3456:789a".parse().unwrap();
        assert_eq!(
            solicited_node(&a),
            "ff02::1:ff56:789a".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_solicited_node(&solicited_node(&a)));
        assert!(!is_solicited_node(&ALL_NODES));
        assert_eq!(
            multicast_mac(&solicited_node(&a)),
            MacAddr([0x33, 0x33, 0xff, 0x56, 0x78, 0x9a])
        );
        assert_eq!(multicast_mac(&ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }

    fn parse_kind(r: &Ipv6Repr, b: &[u8]) -> Result<NdRepr, ErrorKind> {
        let p = Packet::new_checked(b).map_err(|e| e.kind)?;
        NdRepr::parse(r, &p).map_err(|e| e.kind)
    }

    /// Emits `repr` from `src` to `dst`, lets `edit` change the bytes, re-checksums.
    fn mangled(
        repr: NdRepr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        extra: &[u8],
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<u8> {
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Packet::new_unchecked(&mut b[..]));
        b.extend_from_slice(extra);
        edit(&mut b);
        Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
        b
    }

    #[test]
    fn rfc4861_receiver_checks() {
        let sn = solicited_node(&TGT);
        let ok = mangled(ns_repr(), SRC, sn, &[], |_| {});
        let r = ip(SRC, sn, ok.len());
        assert_eq!(parse_kind(&r, &ok), Ok(ns_repr()));
        // Hop limit other than 255.
        let mut r2 = r;
        r2.hop_limit = 254;
        assert_eq!(parse_kind(&r2, &ok), Err(ErrorKind::BadValue));
        // Bad checksum.
        let mut bad = ok.clone();
        bad[3] ^= 1;
        assert_eq!(parse_kind(&r, &bad), Err(ErrorKind::BadChecksum));
        // Code 1.
        let b = mangled(ns_repr(), SRC, sn, &[], |b| b[1] = 1);
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::BadValue));
        // Other ICMPv6 type.
        let b = mangled(ns_repr(), SRC, sn, &[], |b| b[0] = 128);
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::NotMatched));
        // Shorter than 24.
        assert!(matches!(
            parse_kind(&r, &ok[..23]),
            Err(ErrorKind::Truncated { .. })
        ));
        // Multicast target.
        let b = mangled(ns_repr(), SRC, sn, &[], |b| b[8] = 0xff);
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::BadValue));
        // Option of length 0.
        let b = mangled(ns_repr(), SRC, sn, &[], |b| b[25] = 0);
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::BadLength));
        // Unknown option of length 0 after a good one.
        let b = mangled(ns_repr(), SRC, sn, &[14, 0, 0, 0, 0, 0, 0, 0], |_| {});
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::BadLength));
        // Option running past the end.
        let b = mangled(ns_repr(), SRC, sn, &[], |b| b[25] = 2);
        assert!(matches!(
            parse_kind(&r, &b),
            Err(ErrorKind::Truncated { .. })
        ));
        // A lone option byte.
        let b = mangled(ns_repr(), SRC, sn, &[14], |_| {});
        assert!(matches!(
            parse_kind(&r, &b),
            Err(ErrorKind::Truncated { .. })
        ));
        // SLLA of 16 bytes: not an Ethernet address.
        let b = mangled(ns_repr(), SRC, sn, &[0; 8], |b| b[25] = 2);
        assert_eq!(parse_kind(&r, &b), Err(ErrorKind::BadLength));
        // Unknown options are skipped; the first SLLA counts.
        let b = mangled(
            ns_repr(),
            SRC,
            sn,
            &[14, 1, 9, 9, 9, 9, 9, 9, 1, 1, 7, 7, 7, 7, 7, 7],
            |_| {},
        );
        assert_eq!(parse_kind(&r, &b), Ok(ns_repr()));
        // DAD: NS from :: must carry no SLLA and go to a solicited-node address.
        let dad = NdRepr::Solicit {
            target: TGT,
            source_mac: None,
        };
        let u = Ipv6Addr::UNSPECIFIED;
        let b = mangled(dad, u, sn, &[], |_| {});
        assert_eq!(parse_kind(&ip(u, sn, b.len()), &b), Ok(dad));
        let b = mangled(ns_repr(), u, sn, &[], |_| {});
        assert_eq!(
            parse_kind(&ip(u, sn, b.len()), &b),
            Err(ErrorKind::BadValue)
        );
        let b = mangled(dad, u, TGT, &[], |_| {});
        assert_eq!(
            parse_kind(&ip(u, TGT, b.len()), &b),
            Err(ErrorKind::BadValue)
        );
        // NA: solicited to a multicast destination is refused, unsolicited is fine.
        let na = |solicited| NdRepr::Advert {
            flags: NaFlags {
                router: false,
                solicited,
                override_: true,
            },
            target: SRC,
            target_mac: Some(MAC),
        };
        let b = mangled(na(true), SRC, ALL_NODES, &[], |_| {});
        assert_eq!(
            parse_kind(&ip(SRC, ALL_NODES, b.len()), &b),
            Err(ErrorKind::BadValue)
        );
        let b = mangled(na(false), SRC, ALL_NODES, &[], |_| {});
        assert_eq!(parse_kind(&ip(SRC, ALL_NODES, b.len()), &b), Ok(na(false)));
        let b = mangled(na(true), SRC, TGT, &[], |_| {});
        assert_eq!(parse_kind(&ip(SRC, TGT, b.len()), &b), Ok(na(true)));
        // NA reserved bits are ignored on receipt.
        let b = mangled(na(true), SRC, TGT, &[], |b| b[4] |= 0x1f);
        assert_eq!(parse_kind(&ip(SRC, TGT, b.len()), &b), Ok(na(true)));
    }

    fn arb_addr() -> impl Strategy<Value = Ipv6Addr> {
        any::<[u8; 16]>().prop_map(Ipv6Addr::from)
    }

    fn arb_repr() -> impl Strategy<Value = NdRepr> {
        let unicast = || arb_addr().prop_filter("unicast target", |a| !a.is_multicast());
        let mac = proptest::option::of(any::<[u8; 6]>().prop_map(MacAddr));
        prop_oneof![
            (unicast(), mac.clone())
                .prop_map(|(target, source_mac)| NdRepr::Solicit { target, source_mac }),
            (unicast(), mac, any::<(bool, bool, bool)>()).prop_map(|(target, target_mac, f)| {
                NdRepr::Advert {
                    flags: NaFlags {
                        router: f.0,
                        solicited: f.1,
                        override_: f.2,
                    },
                    target,
                    target_mac,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(repr in arb_repr(), src in arb_addr(), dst in arb_addr()) {
            prop_assume!(!src.is_unspecified());
            prop_assume!(!dst.is_multicast());
            let mut b = vec![0u8; repr.buffer_len()];
            repr.emit(&src, &dst, &mut Packet::new_unchecked(&mut b[..]));
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.verify_checksum(&src, &dst));
            prop_assert_eq!(NdRepr::parse(&ip(src, dst, b.len()), &p), Ok(repr));
        }

        #[test]
        fn parse_never_panics(
            b in proptest::collection::vec(any::<u8>(), 0..80),
            src in arb_addr(),
            dst in arb_addr(),
            fix in any::<bool>(),
        ) {
            let mut b = b;
            if fix && b.len() >= HEADER_LEN {
                b[0] = 135 + (b[1] & 1);
                b[1] = 0;
                Packet::new_unchecked(&mut b[..]).fill_checksum(&src, &dst);
            }
            if let Ok(p) = Packet::new_checked(&b[..]) {
                if let Ok(r) = NdRepr::parse(&ip(src, dst, b.len()), &p) {
                    // What parses re-emits to something that parses the same.
                    let mut out = vec![0u8; r.buffer_len()];
                    r.emit(&src, &dst, &mut Packet::new_unchecked(&mut out[..]));
                    let q = Packet::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(NdRepr::parse(&ip(src, dst, out.len()), &q), Ok(r));
                }
                for o in p.option_iter() {
                    let _ = o;
                }
            }
        }
    }
}
