//! Shared helpers for the integration tests in `tests/tests/`.
//!
//! - [`netns`]: network namespaces as RAII guards ([`netns::NetNs`]), commands run inside
//!   them, veth pairs, and [`netns::root_or_skip`] for tests that need root.
//! - [`rawsock`]: an `AF_PACKET` raw socket bound to one interface of a namespace, to send
//!   and receive whole Ethernet frames as the switch's ports would.
//! - [`ping`]: ICMP echo from inside a namespace (a raw ICMP socket: no `ping` binary needed).
//! - [`prom`]: Prometheus text exposition checked for layout and by the official parser.
//! - [`pkt`]: a tiny userspace overlay host that answers ARP and ICMP echo, and frame builders.
//!
//! Everything here returns `io::Result` (or `Option`) instead of panicking: the tests decide
//! what a failure means.

pub mod netns;
pub mod ping;
pub mod pkt;
pub mod prom;
pub mod rawsock;
