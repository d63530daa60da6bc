//! The underlay: what the switch needs to reach remote VTEPs over the host's network.
//!
//! - [`neigh`]: the neighbour cache (IP → MAC) with resolution, refresh and bounded
//!   waiting queues.
//! - [`responder`]: frames on the underlay port that are not tunnel traffic: ARP and ND
//!   for our address answered, replies and announcements learned; and the requests the
//!   cache asks for.

pub mod neigh;
pub mod responder;

pub use neigh::{NeighCounters, NeighError, NeighState, NeighborCache, NeighborEntry};
pub use responder::{solicit, underlay_control, Control, Invalid};
