//! The XDP program's map layouts (`bpf/fastpath.h`), encoded and decoded field by
//! field in native byte order, as the kernel stores them. Change both together.

use encap::MacAddr;

/// Ports the fast path knows.
pub const FP_MAX_PORTS: u32 = 256;
/// XSKMAP entries per port: entry `id * FP_MAX_QUEUES + queue`.
pub const FP_MAX_QUEUES: u32 = 64;
/// Flow entries.
pub const FP_MAX_FLOWS: usize = 65536;
/// Source MAC entries.
pub const FP_MAX_MACS: usize = 65536;
/// `fp_gens[FP_GEN_CFG]`: the configuration's generation.
pub const FP_GEN_CFG: u32 = 4096;
/// `fp_gens[FP_GEN_NEIGH]`: the underlay neighbours' generation.
pub const FP_GEN_NEIGH: u32 = 4097;
/// Entries of `fp_gens`.
pub const FP_GENS: u32 = 4608;
/// `fp_port.flags`: the fast path may take the port's frames.
pub const FP_PORT_FAST: u32 = 1;
/// `fp_port.flags`: the underlay port (tunnel packets are decapsulated).
pub const FP_PORT_UNDERLAY: u32 = 2;
/// `fp_flow_key.seg` of a frame decapsulated from VXLAN: `FP_SEG_VNI | vni`.
pub const FP_SEG_VNI: u32 = 0x0100_0000;
/// Room for the outer headers' template in `fp_flow.hdr`.
pub const FP_HDR_MAX: usize = 72;

/// The encapsulation of an [`Op::Encap`] entry (`fp_flow.tun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tun {
    /// VXLAN over IPv4.
    Vxlan4 = 0,
    /// VXLAN over IPv6 (with the UDP checksum).
    Vxlan6 = 1,
    /// GRE with a key over IPv4.
    Gre4 = 2,
    /// GRE with a key over IPv6.
    Gre6 = 3,
}

impl Tun {
    /// The kind for a tunnel over IPv6 (`v6`) or IPv4, GRE (`gre`) or VXLAN.
    pub fn new(v6: bool, gre: bool) -> Tun {
        match (v6, gre) {
            (false, false) => Tun::Vxlan4,
            (true, false) => Tun::Vxlan6,
            (false, true) => Tun::Gre4,
            (true, true) => Tun::Gre6,
        }
    }

    /// Bytes of its outer headers (Ethernet, IP, UDP + VXLAN or GRE with a key): the
    /// program's `FP_*_LEN`.
    pub fn hdr_len(self) -> usize {
        match self {
            Tun::Vxlan4 => 50,
            Tun::Vxlan6 => 70,
            Tun::Gre4 => 42,
            Tun::Gre6 => 62,
        }
    }

    /// Whether it is GRE.
    pub fn is_gre(self) -> bool {
        matches!(self, Tun::Gre4 | Tun::Gre6)
    }

    fn from_u8(v: u8) -> Tun {
        match v {
            1 => Tun::Vxlan6,
            2 => Tun::Gre4,
            3 => Tun::Gre6,
            _ => Tun::Vxlan4,
        }
    }
}
/// `fp_flow_key.seg` of a tagged frame: `FP_SEG_TAGGED | vid` (0: untagged).
pub const FP_SEG_TAGGED: u32 = 0x1000;

/// What a frame needs on its way out (`fp_flow.op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Untagged in and out.
    None = 0,
    /// Tagged in, untagged out.
    Pop = 1,
    /// Tagged in and out: the VID rewritten, PCP and DEI kept.
    Xlate = 2,
    /// Untagged in, tagged out (PCP 0).
    Push = 3,
    /// To a remote VTEP: popped if tagged, then [`Tun`].
    Encap = 4,
}

impl Op {
    /// Name in `ctl fastpath show`.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::Pop => "pop",
            Op::Xlate => "translate",
            Op::Push => "push",
            Op::Encap => "encap",
        }
    }

    fn from_u8(v: u8) -> Op {
        match v {
            1 => Op::Pop,
            2 => Op::Xlate,
            3 => Op::Push,
            4 => Op::Encap,
            _ => Op::None,
        }
    }
}

/// Counters of the program (`enum fp_counter`), in order.
pub const COUNTERS: [&str; 18] = [
    "hits",
    "misses",
    "punt_stale",
    "punt_src_unknown",
    "punt_src_moved",
    "punt_refresh",
    "punt_checksum",
    "punt_short",
    "punt_mtu",
    "punt_no_dev",
    "punt_other",
    "not_ours",
    "encap",
    "decap",
    "encap_gre",
    "decap_gre",
    "encap_ipv6",
    "decap_ipv6",
];

/// `struct fp_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpPort {
    pub id: u32,
    pub xsk_base: u32,
    pub flags: u32,
}

impl FpPort {
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.id.to_ne_bytes());
        b[4..8].copy_from_slice(&self.xsk_base.to_ne_bytes());
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b
    }
}

/// `struct fp_flow_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub in_port: u32,
    pub seg: u32,
    pub dst: MacAddr,
    /// Decapsulated from GRE: `seg` is the key.
    pub gre: bool,
}

impl FlowKey {
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.in_port.to_ne_bytes());
        b[4..8].copy_from_slice(&self.seg.to_ne_bytes());
        b[8..14].copy_from_slice(&self.dst.0);
        b[14] = u8::from(self.gre);
        b
    }
}

/// The key of a remote VTEP at `ip`: its IPv4 address (`fp_vteps`) or its IPv6 address
/// (`fp_vteps6`, `struct fp_vtep_key`), as the packet carries it.
pub fn vtep_key(ip: core::net::IpAddr) -> Vec<u8> {
    match ip {
        core::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        core::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// `struct fp_flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub vlan_gen: u64,
    pub cfg_gen: u64,
    pub expires_ns: u64,
    pub last_hit_ns: u64,
    pub neigh_gen: u64,
    pub out_port: u32,
    pub src_port: u32,
    pub max_len: u32,
    pub vni: u32,
    pub stat_port: u32,
    pub vlan: u16,
    pub vid: u16,
    pub op: Op,
    /// Encap: the tunnel's kind.
    pub tun: Tun,
    /// Encap: the outer headers' template (`tun.hdr_len()` bytes).
    pub hdr: [u8; FP_HDR_MAX],
}

/// Size of `struct fp_flow`.
pub const FLOW_SIZE: usize = 144;

impl Flow {
    pub fn encode(&self) -> [u8; FLOW_SIZE] {
        let mut b = [0u8; FLOW_SIZE];
        b[0..8].copy_from_slice(&self.vlan_gen.to_ne_bytes());
        b[8..16].copy_from_slice(&self.cfg_gen.to_ne_bytes());
        b[16..24].copy_from_slice(&self.expires_ns.to_ne_bytes());
        b[24..32].copy_from_slice(&self.last_hit_ns.to_ne_bytes());
        b[32..40].copy_from_slice(&self.neigh_gen.to_ne_bytes());
        b[40..44].copy_from_slice(&self.out_port.to_ne_bytes());
        b[44..48].copy_from_slice(&self.src_port.to_ne_bytes());
        b[48..52].copy_from_slice(&self.max_len.to_ne_bytes());
        b[52..56].copy_from_slice(&self.vni.to_ne_bytes());
        b[56..60].copy_from_slice(&self.stat_port.to_ne_bytes());
        b[60..62].copy_from_slice(&self.vlan.to_ne_bytes());
        b[62..64].copy_from_slice(&self.vid.to_ne_bytes());
        b[64] = self.op as u8;
        b[65] = self.tun as u8;
        b[72..72 + FP_HDR_MAX].copy_from_slice(&self.hdr);
        b
    }

    pub fn decode(b: &[u8]) -> Option<Flow> {
        let u64_at = |i: usize| Some(u64::from_ne_bytes(b.get(i..i + 8)?.try_into().ok()?));
        let u32_at = |i: usize| Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let u16_at = |i: usize| Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?));
        Some(Flow {
            vlan_gen: u64_at(0)?,
            cfg_gen: u64_at(8)?,
            expires_ns: u64_at(16)?,
            last_hit_ns: u64_at(24)?,
            neigh_gen: u64_at(32)?,
            out_port: u32_at(40)?,
            src_port: u32_at(44)?,
            max_len: u32_at(48)?,
            vni: u32_at(52)?,
            stat_port: u32_at(56)?,
            vlan: u16_at(60)?,
            vid: u16_at(62)?,
            op: Op::from_u8(*b.get(64)?),
            tun: Tun::from_u8(*b.get(65)?),
            hdr: b.get(72..72 + FP_HDR_MAX)?.try_into().ok()?,
        })
    }
}

/// `struct fp_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    pub refresh_ns: u64,
    /// The local VTEP's IPv4 address (None: no IPv4 underlay).
    pub local_ip: Option<core::net::Ipv4Addr>,
    pub vxlan_port: u16,
    pub local_mac: MacAddr,
    /// The local VTEP's IPv6 address (None: no IPv6 underlay).
    pub local_ip6: Option<core::net::Ipv6Addr>,
}

impl Config {
    pub fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..8].copy_from_slice(&self.refresh_ns.to_ne_bytes());
        b[8..12].copy_from_slice(&self.local_ip.map_or([0; 4], |ip| ip.octets()));
        b[12..14].copy_from_slice(&self.vxlan_port.to_be_bytes());
        b[14..20].copy_from_slice(&self.local_mac.0);
        b[24..40].copy_from_slice(&self.local_ip6.map_or([0; 16], |ip| ip.octets()));
        b
    }
}

/// `struct fp_mac_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacKey {
    pub vlan: u16,
    pub mac: MacAddr,
}

impl MacKey {
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&self.vlan.to_ne_bytes());
        b[2..8].copy_from_slice(&self.mac.0);
        b
    }
}

/// `struct fp_mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac {
    pub vlan_gen: u64,
    pub cfg_gen: u64,
    pub refresh_ns: u64,
    pub last_hit_ns: u64,
    pub port: u32,
}

impl Mac {
    pub fn encode(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        b[0..8].copy_from_slice(&self.vlan_gen.to_ne_bytes());
        b[8..16].copy_from_slice(&self.cfg_gen.to_ne_bytes());
        b[16..24].copy_from_slice(&self.refresh_ns.to_ne_bytes());
        b[24..32].copy_from_slice(&self.last_hit_ns.to_ne_bytes());
        b[32..36].copy_from_slice(&self.port.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_round_trips() {
        let f = Flow {
            vlan_gen: 1,
            cfg_gen: 2,
            expires_ns: 3,
            last_hit_ns: 4,
            out_port: 5,
            src_port: 6,
            max_len: 1518,
            vlan: 7,
            vid: 100,
            op: Op::Xlate,
            neigh_gen: 8,
            vni: 5010,
            stat_port: 9,
            tun: Tun::Gre6,
            hdr: [0x42; FP_HDR_MAX],
        };
        assert_eq!(Flow::decode(&f.encode()), Some(f));
        let k = FlowKey {
            in_port: 3,
            seg: FP_SEG_TAGGED | 100,
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
            gre: true,
        };
        assert_eq!(&k.encode()[8..15], &[2, 0, 0, 0, 0, 1, 1]);
        for (v6, gre) in [(false, false), (true, false), (false, true), (true, true)] {
            let t = Tun::new(v6, gre);
            assert_eq!(Tun::from_u8(t as u8), t);
            assert_eq!(t.is_gre(), gre);
            assert!(t.hdr_len() <= FP_HDR_MAX);
        }
    }
}
