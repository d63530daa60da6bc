//! Parse and rewrite errors: small `Copy` values, never allocated, never panicking.

use core::fmt;

/// The protocol layer at which an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The frame handle itself (headroom, tailroom, buffer bounds).
    Frame,
    /// Ethernet II header.
    Ethernet,
    /// An 802.1Q / 802.1ad tag.
    Vlan,
    /// ARP packet.
    Arp,
    /// IPv4 header.
    Ipv4,
    /// IPv6 header or one of its extension headers.
    Ipv6,
    /// ICMPv6 (Neighbor Discovery messages).
    Icmpv6,
    /// UDP header.
    Udp,
    /// VXLAN header.
    Vxlan,
    /// GRE header.
    Gre,
    /// A tunnel as a whole (MTU, template).
    Tunnel,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The header needs `need` bytes, only `have` are there.
    Truncated {
        /// Bytes the header needs.
        need: u16,
        /// Bytes available.
        have: u16,
    },
    /// A length field disagrees with the buffer or with itself.
    BadLength,
    /// A checksum does not verify.
    BadChecksum,
    /// A version field is not the one this layer handles.
    BadVersion,
    /// A field holds a value outside its range (e.g. VID 4095, a flags byte).
    BadValue,
    /// Reserved bits are set and strict checking is on.
    Reserved,
    /// An IP fragment: tunnels never reassemble.
    Fragment,
    /// A protocol, hardware type or option this layer does not handle.
    Unsupported,
    /// The frame is not for this layer (wrong EtherType, port, protocol).
    NotMatched,
    /// Not enough headroom in front of the frame to push a header.
    NoHeadroom,
    /// Not enough tailroom after the frame to pad it.
    NoTailroom,
    /// The encapsulated result would exceed the MTU (`len` is the resulting size
    /// that the MTU limits, `mtu` the limit).
    TooBig {
        /// Size the frame would have.
        len: u16,
        /// The limit.
        mtu: u16,
    },
}

/// A failed parse or rewrite: which layer and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    /// The layer that failed.
    pub layer: Layer,
    /// The reason.
    pub kind: ErrorKind,
}

impl Error {
    /// Builds an error.
    #[inline]
    pub const fn new(layer: Layer, kind: ErrorKind) -> Self {
        Self { layer, kind }
    }

    /// A truncation error at `layer`: `need` bytes required, `have` present.
    #[inline]
    pub fn truncated(layer: Layer, need: usize, have: usize) -> Self {
        Self::new(
            layer,
            ErrorKind::Truncated {
                need: sat16(need),
                have: sat16(have),
            },
        )
    }
}

#[inline]
pub(crate) fn sat16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Frame => "frame",
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Icmpv6 => "icmpv6",
            Layer::Udp => "udp",
            Layer::Vxlan => "vxlan",
            Layer::Gre => "gre",
            Layer::Tunnel => "tunnel",
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Truncated { need, have } => {
                write!(f, "truncated: needs {need} bytes, has {have}")
            }
            ErrorKind::BadLength => f.write_str("length field inconsistent"),
            ErrorKind::BadChecksum => f.write_str("bad checksum"),
            ErrorKind::BadVersion => f.write_str("unsupported version"),
            ErrorKind::BadValue => f.write_str("field value out of range"),
            ErrorKind::Reserved => f.write_str("reserved bits set"),
            ErrorKind::Fragment => f.write_str("fragmented packet"),
            ErrorKind::Unsupported => f.write_str("unsupported protocol or option"),
            ErrorKind::NotMatched => f.write_str("not this protocol"),
            ErrorKind::NoHeadroom => f.write_str("not enough headroom"),
            ErrorKind::NoTailroom => f.write_str("not enough tailroom"),
            ErrorKind::TooBig { len, mtu } => write!(f, "{len} bytes exceed the MTU of {mtu}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.layer, self.kind)
    }
}

impl std::error::Error for Error {}
