//! Per-worker counters. Every frame the pipeline does not deliver is counted under a
//! [`DropReason`], never logged per packet. Each worker owns its counters (plain integers,
//! no atomics on the hot path); readers sum the workers' snapshots.

use core::fmt;

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// The Ethernet header or a tag could not be parsed.
    Malformed,
    /// VID 4095 (reserved) on the wire.
    ReservedVid,
    /// A frame tagged with a non-zero VID arrived on an access port (no VLAN hopping).
    TaggedOnAccess,
    /// A trunk received a VID it does not carry.
    UnknownVid,
    /// A trunk without a native network received an untagged or priority-tagged frame.
    NoNative,
    /// A tag the ports do not carry: QinQ, or an 802.1ad S-tag (ports carry 802.1Q).
    UnsupportedTag,
    /// Multicast or all-zero source MAC.
    InvalidSource,
    /// A link-local control frame (01:80:c2:00:00:0x: STP, LACP, LLDP...), never forwarded.
    ReservedMulticast,
    /// The frame would move a static FDB entry to another port.
    StaticMove,
    /// The destination was learned on the ingress port.
    SamePort,
    /// A flood or a rewrite found no free frame buffer.
    NoBuffer,
    /// A rewrite (tag push/pop) failed for lack of headroom or tailroom.
    RewriteFailed,
    /// The egress port's transmit queue was full.
    TxFull,
    /// The ingress port is not part of the configuration (removed while frames were in flight).
    NoPort,
    /// On the underlay port: neither a tunnel packet nor ARP/ND for the local VTEP.
    NotTunnel,
    /// A tunnel packet that failed validation (checksums, lengths, fragments, options,
    /// VXLAN flags, GRE version or routing).
    TunnelMalformed,
    /// A tunnel packet not addressed to the local VTEP (outer destination MAC or IP).
    NotOurVtep,
    /// A tunnel packet from an address that is not a configured remote VTEP.
    UnknownVtep,
    /// A tunnel packet with a VNI or GRE key of no network (or GRE without a key).
    UnknownSegment,
    /// A decapsulated frame that carries a VLAN tag.
    InnerTagged,
    /// From a tunnel toward a tunnel: never forwarded (split horizon).
    SplitHorizon,
    /// The frame would exceed the underlay MTU once encapsulated.
    MtuExceeded,
    /// The remote VTEP is off-link and no gateway is configured, or no local MAC is known.
    NoRoute,
    /// The underlay next hop is unresolved and its wait queue is full, or resolution failed.
    NeighborUnresolved,
    /// The egress port is down: its netdev went down or away (until it comes back).
    PortDown,
    /// Forward-only mode: received on the last of an odd number of ports, which has no
    /// peer to send to.
    NoPeer,
    /// Port security: a source MAC the port does not own.
    SpoofedMac,
    /// Port security: ARP whose sender (MAC, IP) the port does not own.
    SpoofedArp,
    /// Port security: IPv4/IPv6 from a source address the port does not own.
    SpoofedIp,
    /// Port security: a neighbour advertisement for an address the port does not own,
    /// a router advertisement or a redirect.
    SpoofedNd,
    /// Port security: a DHCP or DHCPv6 server reply from a VM port.
    SpoofedDhcp,
    /// Storm control: the port's flooding rate limit was reached.
    StormControl,
}

impl DropReason {
    /// Every reason, in order.
    pub const ALL: [DropReason; 32] = [
        DropReason::Malformed,
        DropReason::ReservedVid,
        DropReason::TaggedOnAccess,
        DropReason::UnknownVid,
        DropReason::NoNative,
        DropReason::UnsupportedTag,
        DropReason::InvalidSource,
        DropReason::ReservedMulticast,
        DropReason::StaticMove,
        DropReason::SamePort,
        DropReason::NoBuffer,
        DropReason::RewriteFailed,
        DropReason::TxFull,
        DropReason::NoPort,
        DropReason::NotTunnel,
        DropReason::TunnelMalformed,
        DropReason::NotOurVtep,
        DropReason::UnknownVtep,
        DropReason::UnknownSegment,
        DropReason::InnerTagged,
        DropReason::SplitHorizon,
        DropReason::MtuExceeded,
        DropReason::NoRoute,
        DropReason::NeighborUnresolved,
        DropReason::PortDown,
        DropReason::NoPeer,
        DropReason::SpoofedMac,
        DropReason::SpoofedArp,
        DropReason::SpoofedIp,
        DropReason::SpoofedNd,
        DropReason::SpoofedDhcp,
        DropReason::StormControl,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// A stable name for metrics and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::ReservedVid => "reserved_vid",
            DropReason::TaggedOnAccess => "tagged_on_access",
            DropReason::UnknownVid => "unknown_vid",
            DropReason::NoNative => "no_native",
            DropReason::UnsupportedTag => "unsupported_tag",
            DropReason::InvalidSource => "invalid_source",
            DropReason::ReservedMulticast => "reserved_multicast",
            DropReason::StaticMove => "static_move",
            DropReason::SamePort => "same_port",
            DropReason::NoBuffer => "no_buffer",
            DropReason::RewriteFailed => "rewrite_failed",
            DropReason::TxFull => "tx_full",
            DropReason::NoPort => "no_port",
            DropReason::NotTunnel => "not_tunnel",
            DropReason::TunnelMalformed => "tunnel_malformed",
            DropReason::NotOurVtep => "not_our_vtep",
            DropReason::UnknownVtep => "unknown_vtep",
            DropReason::UnknownSegment => "unknown_segment",
            DropReason::InnerTagged => "inner_tagged",
            DropReason::SplitHorizon => "split_horizon",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::NeighborUnresolved => "neighbor_unresolved",
            DropReason::PortDown => "port_down",
            DropReason::NoPeer => "no_peer",
            DropReason::SpoofedMac => "spoofed_mac",
            DropReason::SpoofedArp => "spoofed_arp",
            DropReason::SpoofedIp => "spoofed_ip",
            DropReason::SpoofedNd => "spoofed_nd",
            DropReason::SpoofedDhcp => "spoofed_dhcp",
            DropReason::StormControl => "storm_control",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of one port on one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Counters of one worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Per port, indexed by port number.
    pub ports: Vec<PortCounters>,
    /// Drops by reason.
    pub drops: [u64; DropReason::COUNT],
    /// Frames flooded (once per frame, not per copy).
    pub flooded: u64,
    /// Frames forwarded to one known port.
    pub unicast: u64,
    /// MACs learned.
    pub learned: u64,
    /// MAC moves.
    pub moves: u64,
    /// Learning refused: table full.
    pub learn_table_full: u64,
    /// Learning refused: per-port limit.
    pub learn_port_limit: u64,
    /// Learning refused: the network's limit.
    pub learn_network_limit: u64,
    /// Learning refused: the port's learning rate cap.
    pub learn_rate_limited: u64,
    /// Flow-cache hits.
    pub cache_hits: u64,
    /// Flow-cache misses (stale entries included).
    pub cache_misses: u64,
    /// ARP requests answered by the l2population ARP responder.
    pub arp_replies: u64,
    /// ARP/ND frames for the local VTEP handled on the underlay port.
    pub underlay_control: u64,
    /// Partial TCP/UDP checksums (a sender's TX offload) completed.
    pub checksums_completed: u64,
}

impl Counters {
    /// Counters for `ports` ports.
    pub fn new(ports: usize) -> Self {
        Counters {
            ports: vec![PortCounters::default(); ports],
            ..Default::default()
        }
    }

    /// Counts a drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Drops counted for `r`.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// All drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds `other` into `self` (summing workers).
    pub fn merge(&mut self, other: &Counters) {
        if self.ports.len() < other.ports.len() {
            self.ports
                .resize(other.ports.len(), PortCounters::default());
        }
        for (a, b) in self.ports.iter_mut().zip(&other.ports) {
            a.rx_frames += b.rx_frames;
            a.rx_bytes += b.rx_bytes;
            a.tx_frames += b.tx_frames;
            a.tx_bytes += b.tx_bytes;
        }
        for (a, b) in self.drops.iter_mut().zip(&other.drops) {
            *a += b;
        }
        self.flooded += other.flooded;
        self.unicast += other.unicast;
        self.learned += other.learned;
        self.moves += other.moves;
        self.learn_table_full += other.learn_table_full;
        self.learn_port_limit += other.learn_port_limit;
        self.learn_network_limit += other.learn_network_limit;
        self.learn_rate_limited += other.learn_rate_limited;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.arp_replies += other.arp_replies;
        self.underlay_control += other.underlay_control;
        self.checksums_completed += other.checksums_completed;
    }
}
