//! VXLAN (RFC 7348).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-------------------------------------------------+
//! |R|R|R|R|I|R|R|R|               Reserved                          |
//! +-+-+-+-+-+-+-+-+-------------------------------------------------+
//! |          VXLAN Network Identifier (VNI)         |   Reserved    |
//! +-------------------------------------------------+---------------+
//! ```
//!
//! Sent: flags exactly 0x08, reserved fields zero. Received: the I flag is required,
//! reserved bits are ignored as the RFC says, unless strict checking is asked for (the
//! Linux kernel and Open vSwitch drop them).

use crate::error::{Error, ErrorKind, Layer};
use crate::types::Vni;

/// Header length.
pub const HEADER_LEN: usize = 8;
/// IANA-assigned UDP port.
pub const DEFAULT_PORT: u16 = 4789;
/// The I flag.
pub const FLAG_I: u8 = 0x08;

mod field {
    use core::ops::Range;
    pub const FLAGS: usize = 0;
    pub const RSVD1: Range<usize> = 1..4;
    pub const VNI: Range<usize> = 4..7;
    pub const RSVD2: usize = 7;
}

/// A view of a VXLAN header followed by the inner frame.
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

    /// Wraps after checking it holds the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(Layer::Vxlan, HEADER_LEN, have));
        }
        Ok(Packet { buffer })
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The I (valid VNI) flag.
    #[inline]
    pub fn i_flag(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The VNI.
    #[inline]
    pub fn vni(&self) -> Vni {
        let b = &self.buffer.as_ref()[field::VNI];
        Vni::from_bits(u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]))
    }

    /// True when any reserved bit (flags other than I, or the reserved fields) is set.
    #[inline]
    pub fn reserved_set(&self) -> bool {
        let b = self.buffer.as_ref();
        b[field::FLAGS] & !FLAG_I != 0 || b[field::RSVD1] != [0, 0, 0] || b[field::RSVD2] != 0
    }

    /// The inner frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    /// Sets the VNI.
    #[inline]
    pub fn set_vni(&mut self, vni: Vni) {
        let v = vni.get();
        self.buffer.as_mut()[field::VNI].copy_from_slice(&[
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
        ]);
    }

    /// Zeroes both reserved fields.
    #[inline]
    pub fn clear_reserved(&mut self) {
        let b = self.buffer.as_mut();
        b[field::RSVD1].fill(0);
        b[field::RSVD2] = 0;
    }
}

/// A VXLAN header: its VNI (the flags are always 0x08 when sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// The network identifier.
    pub vni: Vni,
}

impl VxlanRepr {
    /// Parses a header: the I flag is required; reserved bits are refused only when
    /// `strict`.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, strict: bool) -> Result<Self, Error> {
        if !p.i_flag() {
            return Err(Error::new(Layer::Vxlan, ErrorKind::BadValue));
        }
        if strict && p.reserved_set() {
            return Err(Error::new(Layer::Vxlan, ErrorKind::Reserved));
        }
        Ok(VxlanRepr { vni: p.vni() })
    }

    /// 8.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes flags 0x08, the VNI and zero reserved fields.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_flags(FLAG_I);
        p.clear_reserved();
        p.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: [u8; 8] = [0x08, 0, 0, 0, 0x00, 0x13, 0x92, 0x00]; // VNI 5010

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p, true).unwrap().vni.get(), 5010);
    }

    #[test]
    fn test_construct() {
        let mut b = [0xffu8; 8];
        VxlanRepr {
            vni: Vni::try_new(5010).unwrap(),
        }
        .emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, GOLDEN);
    }

    #[test]
    fn flags() {
        let mut b = GOLDEN;
        b[0] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            VxlanRepr::parse(&p, false).unwrap_err().kind,
            ErrorKind::BadValue
        );
        for (i, v) in [(0usize, 0x0cu8), (1, 1), (3, 0x80), (7, 1)] {
            let mut b = GOLDEN;
            b[i] = v;
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(VxlanRepr::parse(&p, false).unwrap().vni.get(), 5010);
            assert_eq!(
                VxlanRepr::parse(&p, true).unwrap_err().kind,
                ErrorKind::Reserved
            );
        }
        assert!(Packet::new_checked(&GOLDEN[..7]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(v in 0u32..=Vni::MAX) {
            let r = VxlanRepr { vni: Vni::try_new(v).unwrap() };
            let mut b = [0u8; 8];
            r.emit(&mut Packet::new_unchecked(&mut b[..]));
            prop_assert_eq!(VxlanRepr::parse(&Packet::new_checked(&b[..]).unwrap(), true).unwrap(), r);
        }
    }
}
