//! GRE (RFC 2784) with the key and sequence number extensions (RFC 2890).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-------------------------------+
//! |C|R|K|S|s|Rcr|  Reserved0  | Ver |        Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-------------------------------+
//! |      Checksum (optional)      |       Reserved1 (optional)    |
//! |                         Key (optional)                        |
//! |                  Sequence Number (optional)                   |
//! +---------------------------------------------------------------+
//! ```
//!
//! Received: version must be 0; the routing bit (RFC 1701) is refused; the bits RFC 2784
//! says a receiver MUST discard on (strict source route, recursion) are refused; the
//! other reserved bits are ignored. Ethernet payloads use protocol 0x6558.

use crate::checksum;
use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::EtherType;
use crate::types::GreKey;

/// Base header length (flags, version, protocol).
pub const BASE_LEN: usize = 4;
/// Longest header: checksum, key and sequence present.
pub const MAX_LEN: usize = 16;

const C: u16 = 0x8000;
const R: u16 = 0x4000;
const K: u16 = 0x2000;
const S: u16 = 0x1000;
/// Strict source route and the top recursion bit: RFC 2784 §2.3 "MUST discard".
const MUST_BE_ZERO: u16 = 0x0800 | 0x0400;
const VERSION: u16 = 0x0007;

/// A view of a GRE header and its payload.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checks.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking the header, with the optional words its flags announce, fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < BASE_LEN {
            return Err(Error::truncated(Layer::Gre, BASE_LEN, have));
        }
        let p = Packet { buffer };
        let hl = p.header_len();
        if have < hl {
            return Err(Error::truncated(Layer::Gre, hl, have));
        }
        Ok(p)
    }

    /// Flags and version word.
    #[inline]
    pub fn flags_version(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }
    /// C: checksum present.
    #[inline]
    pub fn has_checksum(&self) -> bool {
        self.flags_version() & C != 0
    }
    /// R: routing present (RFC 1701; refused).
    #[inline]
    pub fn has_routing(&self) -> bool {
        self.flags_version() & R != 0
    }
    /// K: key present.
    #[inline]
    pub fn has_key(&self) -> bool {
        self.flags_version() & K != 0
    }
    /// S: sequence number present.
    #[inline]
    pub fn has_seq(&self) -> bool {
        self.flags_version() & S != 0
    }
    /// Version (must be 0).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION) as u8
    }
    /// Protocol type of the payload.
    #[inline]
    pub fn protocol(&self) -> EtherType {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]]).into()
    }
    /// Header length implied by the flags.
    #[inline]
    pub fn header_len(&self) -> usize {
        BASE_LEN
            + 4 * (usize::from(self.has_checksum())
                + usize::from(self.has_key())
                + usize::from(self.has_seq()))
    }
    #[inline(always)]
    fn word(&self, at: usize) -> u32 {
        // One bounds check and one load (`new_checked` made sure the word is there).
        let b = self.buffer.as_ref();
        b.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_be_bytes)
    }
    /// The checksum field, if present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum()
            .then(|| (self.word(BASE_LEN) >> 16) as u16)
    }
    /// The key, if present.
    #[inline]
    pub fn key(&self) -> Option<GreKey> {
        let at = BASE_LEN + 4 * usize::from(self.has_checksum());
        self.has_key().then(|| GreKey::new(self.word(at)))
    }
    /// The sequence number, if present.
    #[inline]
    pub fn seq(&self) -> Option<u32> {
        let at = BASE_LEN + 4 * (usize::from(self.has_checksum()) + usize::from(self.has_key()));
        self.has_seq().then(|| self.word(at))
    }
    /// True when the checksum (over header and payload) verifies, or is absent.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        !self.has_checksum()
            || checksum::fold(checksum::accumulate(0, self.buffer.as_ref())) == 0xffff
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes the checksum over header and payload (C must be set).
    #[inline]
    pub fn fill_checksum(&mut self) {
        if !self.has_checksum() {
            return;
        }
        self.buffer.as_mut()[BASE_LEN..BASE_LEN + 2].fill(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.buffer.as_mut()[BASE_LEN..BASE_LEN + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// A GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreRepr {
    /// Checksum present (C).
    pub checksum: bool,
    /// Key (K).
    pub key: Option<GreKey>,
    /// Sequence number (S).
    pub seq: Option<u32>,
    /// Payload protocol.
    pub protocol: EtherType,
}

impl GreRepr {
    /// Parses and validates a header (not its checksum: see [`Packet::verify_checksum`]).
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        // One read of the flags word; the optional words follow in C, K, S order
        // (`new_checked` made sure the buffer holds them).
        let fv = p.flags_version();
        if fv & VERSION != 0 {
            return Err(Error::new(Layer::Gre, ErrorKind::BadVersion));
        }
        if fv & R != 0 {
            return Err(Error::new(Layer::Gre, ErrorKind::Unsupported));
        }
        if fv & MUST_BE_ZERO != 0 {
            return Err(Error::new(Layer::Gre, ErrorKind::Reserved));
        }
        let checksum = fv & C != 0;
        let mut at = BASE_LEN + 4 * usize::from(checksum);
        let key = if fv & K != 0 {
            at += 4;
            Some(GreKey::new(p.word(at - 4)))
        } else {
            None
        };
        let seq = (fv & S != 0).then(|| p.word(at));
        Ok(GreRepr {
            checksum,
            key,
            seq,
            protocol: p.protocol(),
        })
    }

    /// Header length.
    pub fn buffer_len(&self) -> usize {
        BASE_LEN
            + 4 * (usize::from(self.checksum)
                + usize::from(self.key.is_some())
                + usize::from(self.seq.is_some()))
    }

    /// Writes the header; a checksum field is written as zero (fill it once the payload
    /// is in place with [`Packet::fill_checksum`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let fv = if self.checksum { C } else { 0 }
            | if self.key.is_some() { K } else { 0 }
            | if self.seq.is_some() { S } else { 0 };
        let b = p.buffer.as_mut();
        b[0..2].copy_from_slice(&fv.to_be_bytes());
        b[2..4].copy_from_slice(&u16::from(self.protocol).to_be_bytes());
        let mut at = BASE_LEN;
        if self.checksum {
            b[at..at + 4].fill(0);
            at += 4;
        }
        if let Some(k) = self.key {
            b[at..at + 4].copy_from_slice(&k.get().to_be_bytes());
            at += 4;
        }
        if let Some(s) = self.seq {
            b[at..at + 4].copy_from_slice(&s.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // K and S set, TEB, key 0x01020304, seq 7, then 2 payload bytes.
    const GOLDEN: [u8; 14] = [0x30, 0x00, 0x65, 0x58, 1, 2, 3, 4, 0, 0, 0, 7, 0xaa, 0xbb];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        let r = GreRepr::parse(&p).unwrap();
        assert_eq!(r.key, Some(GreKey::new(0x0102_0304)));
        assert_eq!(r.seq, Some(7));
        assert!(!r.checksum);
        assert_eq!(r.protocol, EtherType::TransparentEthernetBridging);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn test_construct() {
        let mut b = [0xffu8; 14];
        b[12..].copy_from_slice(&[0xaa, 0xbb]);
        let r = GreRepr {
            checksum: false,
            key: Some(GreKey::new(0x0102_0304)),
            seq: Some(7),
            protocol: EtherType::TransparentEthernetBridging,
        };
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, GOLDEN);
    }

    #[test]
    fn checksum_word() {
        let mut b = [0u8; 14];
        b[8..].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        let r = GreRepr {
            checksum: true,
            key: Some(GreKey::new(9)),
            seq: None,
            protocol: EtherType::TransparentEthernetBridging,
        };
        let mut p = Packet::new_unchecked(&mut b[..]);
        r.emit(&mut p);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.key(), Some(GreKey::new(9)));
        b[13] ^= 0x10;
        assert!(!Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn refused() {
        let mut b = GOLDEN;
        b[1] = 1; // version 1 (PPTP)
        assert_eq!(
            GreRepr::parse(&Packet::new_checked(&b[..]).unwrap())
                .unwrap_err()
                .kind,
            ErrorKind::BadVersion
        );
        let mut b = GOLDEN;
        b[0] |= 0x40; // routing
        assert_eq!(
            GreRepr::parse(&Packet::new_checked(&b[..]).unwrap())
                .unwrap_err()
                .kind,
            ErrorKind::Unsupported
        );
        let mut b = GOLDEN;
        b[0] |= 0x08; // strict source route
        assert_eq!(
            GreRepr::parse(&Packet::new_checked(&b[..]).unwrap())
                .unwrap_err()
                .kind,
            ErrorKind::Reserved
        );
        assert!(Packet::new_checked(&GOLDEN[..11]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(c: bool, k in prop::option::of(any::<u32>()), s in prop::option::of(any::<u32>()), proto: u16) {
            let r = GreRepr { checksum: c, key: k.map(GreKey::new), seq: s, protocol: proto.into() };
            let mut b = vec![0u8; r.buffer_len() + 10];
            let mut p = Packet::new_unchecked(&mut b[..]);
            r.emit(&mut p);
            p.fill_checksum();
            let p = Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(GreRepr::parse(&p).unwrap(), r);
            prop_assert!(p.verify_checksum());
        }
    }
}
