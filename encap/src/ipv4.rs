//! IPv4 (RFC 791), with options.
//!
//! ```text
//!  0               1               2               3
//! +-------+-------+---------------+-------------------------------+
//! |Version|  IHL  |   DSCP/ECN    |          Total Length         |
//! +-------+-------+---------------+-----+-------------------------+
//! |         Identification        |Flags|     Fragment Offset     |
//! +---------------+---------------+-----+-------------------------+
//! |      TTL      |   Protocol    |        Header Checksum        |
//! +---------------+---------------+-------------------------------+
//! |                        Source Address                         |
//! |                     Destination Address                       |
//! |                    Options (IHL > 5)  ...                     |
//! +---------------------------------------------------------------+
//! ```

use core::net::Ipv4Addr;

use crate::checksum;
use crate::error::{Error, ErrorKind, Layer};

/// Header length without options.
pub const HEADER_LEN: usize = 20;
/// Longest options field.
pub const MAX_OPTIONS_LEN: usize = 40;

/// IP protocol numbers this crate names.
pub mod protocol {
    /// ICMP
    pub const ICMP: u8 = 1;
    /// TCP
    pub const TCP: u8 = 6;
    /// UDP
    pub const UDP: u8 = 17;
    /// GRE
    pub const GRE: u8 = 47;
    /// ICMPv6
    pub const ICMPV6: u8 = 58;
}

pub(crate) mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

#[inline(always)]
pub(crate) fn ip4(b: &[u8]) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    Ipv4Addr::from(a)
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking that the header, its options and the total length fit in
    /// the buffer (the buffer may be longer: Ethernet padding).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// The length checks of [`Packet::new_checked`].
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::truncated(Layer::Ipv4, HEADER_LEN, b.len()));
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadLength));
        }
        if b.len() < hl {
            return Err(Error::truncated(Layer::Ipv4, hl, b.len()));
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadLength));
        }
        if b.len() < tl {
            return Err(Error::truncated(Layer::Ipv4, tl, b.len()));
        }
        Ok(())
    }

    /// Version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// DSCP and ECN byte.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    /// Total length.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LEN.start)
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT.start)
    }
    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & DF != 0
    }
    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & MF != 0
    }
    /// Reserved (evil) flag bit.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x8000 != 0
    }
    /// Fragment offset in 8-byte units.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x1fff
    }
    /// True when this is any fragment (MF set or non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol number.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO]
    }
    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::SRC])
    }
    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        ip4(&self.buffer.as_ref()[field::DST])
    }
    /// The options bytes.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        // The usual 20-byte header is summed as five constant words: a native-order sum
        // that verifies folds to 0xffff in either byte order.
        if self.header_len() == HEADER_LEN {
            if let Some(h) = b.get(..HEADER_LEN) {
                return checksum::fold(checksum::sum_native(0, h)) == 0xffff;
            }
        }
        checksum::fold(checksum::accumulate(0, &b[..self.header_len()])) == 0xffff
    }
    /// The payload, bounded by the total length (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4, 20–60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    /// Sets DSCP/ECN.
    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }
    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LEN].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets flags (DF, MF) and fragment offset; the reserved bit is cleared.
    #[inline]
    pub fn set_flags_and_offset(&mut self, df: bool, mf: bool, offset: u16) {
        let v = if df { DF } else { 0 } | if mf { MF } else { 0 } | (offset & 0x1fff);
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTO] = v;
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
    /// Recomputes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
    /// The options bytes, writable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }
}

/// A parsed IPv4 header, options included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Payload length (total length minus header length).
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// DSCP/ECN.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset (8-byte units).
    pub frag_offset: u16,
    /// Options length, a multiple of 4, at most 40.
    pub options_len: u8,
    /// Options bytes (the first `options_len`).
    pub options: [u8; MAX_OPTIONS_LEN],
}

impl Ipv4Repr {
    /// A header without options: TTL 64, DF set, ident 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: u16) -> Self {
        Ipv4Repr {
            src,
            dst,
            protocol,
            payload_len,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options_len: 0,
            options: [0; MAX_OPTIONS_LEN],
        }
    }

    /// Parses a checked packet: version 4 and a valid header checksum required.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        if p.version() != 4 {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadVersion));
        }
        if !p.verify_checksum() {
            return Err(Error::new(Layer::Ipv4, ErrorKind::BadChecksum));
        }
        let opts = p.options();
        let mut options = [0; MAX_OPTIONS_LEN];
        options[..opts.len()].copy_from_slice(opts);
        Ok(Ipv4Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len().saturating_sub(p.header_len() as u16),
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            options_len: opts.len() as u8,
            options,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &[u8] {
        &self.options[..usize::from(self.options_len).min(MAX_OPTIONS_LEN)]
    }

    /// Header length with options, padded to a multiple of 4 bytes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options().len().next_multiple_of(4)
    }

    /// Writes the header (with a valid checksum) into `p`, which must hold
    /// [`Ipv4Repr::buffer_len`] bytes; the payload is not touched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let hl = self.buffer_len();
        p.set_version_and_header_len(hl);
        p.set_tos(self.tos);
        p.set_total_len(self.payload_len.wrapping_add(hl as u16));
        p.set_ident(self.ident);
        p.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src);
        p.set_dst(self.dst);
        let opts = self.options();
        let area = p.options_mut();
        area[..opts.len()].copy_from_slice(opts);
        // An options length that is not a multiple of 4 is padded with End-of-Options.
        area[opts.len()..].fill(0);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // 198.18.0.1 -> 198.18.0.2, UDP, 4-byte payload, one NOP+NOP+NOP+EOL option word.
    const GOLDEN: [u8; 28] = [
        0x46, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 198, 18, 0, 1, 198,
        18, 0, 2, 0x01, 0x01, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn golden() -> [u8; 28] {
        let mut g = GOLDEN;
        let c = checksum::checksum(&g[..24]);
        g[10..12].copy_from_slice(&c.to_be_bytes());
        g
    }

    fn golden_repr() -> Ipv4Repr {
        let mut r = Ipv4Repr::new(
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            protocol::UDP,
            4,
        );
        r.ident = 0x1234;
        r.options_len = 4;
        r.options[..4].copy_from_slice(&[1, 1, 1, 0]);
        r
    }

    #[test]
    fn test_deconstruct() {
        let g = golden();
        let p = Packet::new_checked(&g[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), golden_repr());
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 28];
        b[24..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        golden_repr().emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, golden());
    }

    #[test]
    fn checksum_value_is_known() {
        // 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7: the textbook example.
        let mut r = Ipv4Repr::new(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            protocol::UDP,
            0x73 - 20,
        );
        r.ttl = 64;
        let mut b = [0u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(&b[10..12], &[0xb8, 0x61]);
    }

    #[test]
    fn malformed() {
        let g = golden();
        assert_eq!(
            Packet::new_checked(&g[..19]).unwrap_err().layer,
            Layer::Ipv4
        );
        assert!(
            Packet::new_checked(&g[..27]).is_err(),
            "total length beyond the buffer"
        );
        let mut bad = g;
        bad[0] = 0x44; // IHL 4
        assert_eq!(
            Packet::new_checked(&bad[..]).unwrap_err().kind,
            ErrorKind::BadLength
        );
        let mut bad = g;
        bad[11] ^= 1;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p).unwrap_err().kind,
            ErrorKind::BadChecksum
        );
        let mut bad = g;
        bad[0] = 0x66;
        let p = Packet::new_checked(&bad[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err().kind, ErrorKind::BadVersion);
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u8>(),
            0u16..1000,
            any::<(u8, u8, u16, bool, bool)>(),
            0u16..0x2000,
            0usize..=10,
            any::<[u8; 40]>(),
        )
            .prop_map(
                |(s, d, proto, len, (ttl, tos, ident, df, mf), off, words, opts)| {
                    let mut r = Ipv4Repr::new(s.into(), d.into(), proto, len);
                    r.ttl = ttl;
                    r.tos = tos;
                    r.ident = ident;
                    r.dont_frag = df;
                    r.more_frags = mf;
                    r.frag_offset = off;
                    r.options_len = (words * 4) as u8;
                    r.options[..words * 4].copy_from_slice(&opts[..words * 4]);
                    r
                },
            )
    }

    #[test]
    fn odd_options_are_padded() {
        let mut r = golden_repr();
        r.options_len = 3;
        assert_eq!(r.buffer_len(), 24);
        let mut b = [0xffu8; 28];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(&b[20..24], &[1, 1, 1, 0]);
        r.options_len = 200;
        assert_eq!(r.buffer_len(), 60);
    }

    proptest! {
        #[test]
        fn roundtrip(r in arb_repr()) {
            let mut b = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
        }
    }
}
