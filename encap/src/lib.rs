//! `encap`: the packet-format layer of vswitch.
//!
//! Every part of the switch reads and rewrites frames in place, so this crate gives
//! *writable zero-copy views* over the bytes of a frame (in the manner of smoltcp's
//! `wire` module) and small `Copy` *Repr* types that describe a header, parse it and
//! emit it. On top of them sit the in-place operations the dataplane applies per frame:
//! 802.1Q push/pop/translate ([`vlan`]), VXLAN and GRE encapsulation from a per-tunnel
//! template and validated decapsulation ([`tunnel`]). For the underlay it also reads and
//! builds the neighbour-resolution frames: ARP and IPv6 Neighbor Discovery ([`icmpv6`],
//! [`neigh`]).
//!
//! Rules this crate keeps:
//! - No allocation and no `unsafe`: every accessor works on a slice whose length was
//!   checked once (`new_checked`), so no input can make it panic.
//! - The payload never moves: push and encap write into the headroom of a [`Frame`],
//!   pop and decap advance its start.
//! - Errors are small `Copy` values ([`Error`]) that say which layer failed and why.
//! - Bounded fields are types: [`MacAddr`], [`VlanId`], [`Vni`], [`GreKey`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
mod frame;
pub mod gre;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod neigh;
pub mod parse;
pub mod tunnel;
mod types;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use error::{Error, ErrorKind, Layer};
pub use ethernet::EtherType;
pub use frame::Frame;
pub use types::{GreKey, MacAddr, MacParseError, OutOfRange, Pcp, VlanId, Vni};

/// Length of an Ethernet II header without tags.
pub const ETH_HLEN: usize = 14;
/// Smallest Ethernet frame without FCS; shorter frames are padded on egress.
pub const ETH_ZLEN: usize = 60;

/// Result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod testutil;
