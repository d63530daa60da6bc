//! Bounded header values as types, so that a raw integer never crosses a module
//! boundary unchecked: a [`VlanId`] is always 1–4094, a [`Vni`] always 24 bits.

use core::fmt;
use core::str::FromStr;

/// A value given to a bounded type's `try_new` was out of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    /// The type that refused the value.
    pub what: &'static str,
    /// The value refused.
    pub value: u64,
    /// Smallest value accepted.
    pub min: u64,
    /// Largest value accepted.
    pub max: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} out of range {}..={}",
            self.what, self.value, self.min, self.max
        )
    }
}

impl std::error::Error for OutOfRange {}

fn check(what: &'static str, value: u64, min: u64, max: u64) -> Result<(), OutOfRange> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(OutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Builds an address from its six bytes.
    #[inline]
    pub const fn new(b: [u8; 6]) -> Self {
        MacAddr(b)
    }

    /// Reads an address from the first six bytes of `b`, or `None` if shorter.
    #[inline]
    pub fn try_from_slice(b: &[u8]) -> Option<Self> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(MacAddr(a))
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (also `-` separators); same as `str::parse`.
    pub fn try_new(s: &str) -> Result<Self, MacParseError> {
        s.parse()
    }

    /// The address bytes.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Group bit set (multicast or broadcast).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// ff:ff:ff:ff:ff:ff.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// 00:00:00:00:00:00.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// A unicast, non-zero address: one a switch may learn.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }

    /// The address as the low 48 bits of a `u64` (network byte order: first byte highest).
    #[inline]
    pub const fn to_u64(&self) -> u64 {
        let b = self.0;
        (b[0] as u64) << 40
            | (b[1] as u64) << 32
            | (b[2] as u64) << 24
            | (b[3] as u64) << 16
            | (b[4] as u64) << 8
            | b[5] as u64
    }

    /// The inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    #[inline]
    pub const fn from_u64(v: u64) -> Self {
        MacAddr([
            (v >> 40) as u8,
            (v >> 32) as u8,
            (v >> 24) as u8,
            (v >> 16) as u8,
            (v >> 8) as u8,
            v as u8,
        ])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A MAC address string was not six hex pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacParseError;

impl fmt::Display for MacParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid MAC address: expected six hex pairs like fa:16:3e:00:00:01")
    }
}

impl std::error::Error for MacParseError {}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 6 || part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacParseError);
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| MacParseError)?;
            n += 1;
        }
        if n == 6 {
            Ok(MacAddr(out))
        } else {
            Err(MacParseError)
        }
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

/// An 802.1Q VLAN identifier, 1–4094. VID 0 (priority tag) and 4095 (reserved)
/// are not VLANs and cannot be represented.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct VlanId(u16);

impl VlanId {
    /// Smallest VLAN id.
    pub const MIN: u16 = 1;
    /// Largest VLAN id.
    pub const MAX: u16 = 4094;

    /// Checks `v` is in 1–4094.
    #[inline]
    pub fn try_new(v: u16) -> Result<Self, OutOfRange> {
        check("VLAN id", v.into(), Self::MIN.into(), Self::MAX.into())?;
        Ok(VlanId(v))
    }

    /// The VID.
    #[inline]
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u16> for VlanId {
    type Error = OutOfRange;
    fn try_from(v: u16) -> Result<Self, OutOfRange> {
        VlanId::try_new(v)
    }
}

/// An 802.1p priority code point, 0–7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Pcp(u8);

impl Pcp {
    /// Checks `v` is in 0–7.
    #[inline]
    pub fn try_new(v: u8) -> Result<Self, OutOfRange> {
        check("PCP", v.into(), 0, 7)?;
        Ok(Pcp(v))
    }

    /// Keeps the low three bits of `v`.
    #[inline]
    pub const fn from_bits(v: u8) -> Self {
        Pcp(v & 7)
    }

    /// The priority.
    #[inline]
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// A VXLAN network identifier: 24 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Vni(u32);

impl Vni {
    /// Largest VNI.
    pub const MAX: u32 = 0x00ff_ffff;

    /// Checks `v` fits in 24 bits.
    #[inline]
    pub fn try_new(v: u32) -> Result<Self, OutOfRange> {
        check("VNI", v.into(), 0, Self::MAX.into())?;
        Ok(Vni(v))
    }

    /// Keeps the low 24 bits of `v`.
    #[inline]
    pub const fn from_bits(v: u32) -> Self {
        Vni(v & Self::MAX)
    }

    /// The VNI.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A GRE key (RFC 2890): the 32-bit segment id of a GRE network.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GreKey(u32);

impl GreKey {
    /// Checks `v` fits in 32 bits (configuration values arrive as wider integers).
    #[inline]
    pub fn try_new(v: u64) -> Result<Self, OutOfRange> {
        check("GRE key", v, 0, u32::MAX.into())?;
        Ok(GreKey(v as u32))
    }

    /// Any 32-bit value is a key.
    #[inline]
    pub const fn new(v: u32) -> Self {
        GreKey(v)
    }

    /// The key.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for GreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(VlanId::try_new(0).is_err());
        assert!(VlanId::try_new(4095).is_err());
        assert_eq!(VlanId::try_new(1).map(VlanId::get), Ok(1));
        assert_eq!(VlanId::try_new(4094).map(VlanId::get), Ok(4094));
        assert!(Vni::try_new(0x100_0000).is_err());
        assert_eq!(Vni::try_new(0xff_ffff).map(Vni::get), Ok(0xff_ffff));
        assert!(GreKey::try_new(1 << 32).is_err());
        assert!(Pcp::try_new(8).is_err());
        let e = VlanId::try_new(4095).unwrap_err();
        assert_eq!(e.to_string(), "VLAN id 4095 out of range 1..=4094");
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "fa:16:3e:00:00:01".parse().unwrap();
        assert_eq!(m.0, [0xfa, 0x16, 0x3e, 0, 0, 1]);
        assert_eq!(m.to_string(), "fa:16:3e:00:00:01");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!("fa:16:3e:00:00".parse::<MacAddr>().is_err());
        assert!("fa:16:3e:00:00:01:02".parse::<MacAddr>().is_err());
        assert!("fa:16:3e:00:00:1".parse::<MacAddr>().is_err());
        assert!("zz:16:3e:00:00:01".parse::<MacAddr>().is_err());
        assert!("+a:16:3e:00:00:01".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::ZERO.is_unicast());
    }
}
