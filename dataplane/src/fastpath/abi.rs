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
/// `fp_port.flags`: the underlay port (VXLAN packets are decapsulated).
pub const FP_PORT_UNDERLAY: u32 = 2;
/// `fp_flow_key.seg` of a decapsulated frame: `FP_SEG_VNI | vni`.
pub const FP_SEG_VNI: u32 = 0x0100_0000;
/// Bytes of the VXLAN-over-IPv4 outer headers.
pub const FP_VXLAN4_LEN: usize = 50;
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
    /// To a remote VTEP: popped if tagged, VXLAN over IPv4.
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
            Op::Encap => "vxlan-encap",
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
pub const COUNTERS: [&str; 14] = [
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
}

impl FlowKey {
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.in_port.to_ne_bytes());
        b[4..8].copy_from_slice(&self.seg.to_ne_bytes());
        b[8..14].copy_from_slice(&self.dst.0);
        b
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
    /// Encap: the outer headers' template.
    pub hdr: [u8; FP_VXLAN4_LEN],
}

/// Size of `struct fp_flow`.
pub const FLOW_SIZE: usize = 136;

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
        b[72..72 + FP_VXLAN4_LEN].copy_from_slice(&self.hdr);
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
            hdr: b.get(72..72 + FP_VXLAN4_LEN)?.try_into().ok()?,
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
}

impl Config {
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.refresh_ns.to_ne_bytes());
        b[8..12].copy_from_slice(&self.local_ip.map_or([0; 4], |ip| ip.octets()));
        b[12..14].copy_from_slice(&self.vxlan_port.to_be_bytes());
        b[14..20].copy_from_slice(&self.local_mac.0);
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
            hdr: [0x42; FP_VXLAN4_LEN],
        };
        assert_eq!(Flow::decode(&f.encode()), Some(f));
        let k = FlowKey {
            in_port: 3,
            seg: FP_SEG_TAGGED | 100,
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
        };
        assert_eq!(&k.encode()[8..14], &k.dst.0);
    }
}
