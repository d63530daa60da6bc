//! Shared pieces of the pipeline property tests (`model.rs`, `isolation.rs`):
//!
//! - generators of small switch configurations, frames and operation sequences;
//! - a **reference model** of br-int's NORMAL switching, written from issue 3,
//!   `shared/REFERENCE.md` and the documented FDB policy (`flowtable::fdb` module
//!   docs), with plain maps and no code of the pipeline: classification, learning
//!   (limits, full-table eviction, statics, aging), forwarding and the 802.1Q
//!   egress rewrite, each spelled out byte by byte;
//! - [`Harness`]: the same switch as `OfflineSwitch`, assembled from the public
//!   pipeline API, plus the one thing `OfflineSwitch` cannot do yet: change the
//!   configuration at runtime (`Pipeline::set_tables` with a new generation);
//! - [`run`]: drives a switch and the model through one operation sequence and
//!   compares every outcome and the FDB after every operation.
//!
//! Not every test uses every item.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use dataplane::config::{
    Config, FdbTarget, NetIdx, Network, Physnet, PhysnetIdx, Port, PortIdx, PortMode, PortRole,
    Segment, StaticFdb, SwitchParams, Underlay, VtepIdx,
};
use dataplane::counters::{Counters, DropReason};
use dataplane::offline::{OfflineSwitch, Outcome};
use dataplane::pipeline::{Action, Pipeline, Tables};
use dataplane::pool::{Desc, Pool, MAX_FRAME};
use dataplane::port::{MemPort, Port as _, TxMode, BURST};
use encap::{GreKey, MacAddr, VlanId, Vni};
use flowtable::{
    Fdb, FdbConfig, FdbControl, FdbGroup, FlowCache, FlushFilter, PortId, ReplicaConfig,
    DEFAULT_FLOW_CACHE_SIZE,
};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

/// One second in the switch's time unit (ns).
pub const SEC: u64 = 1_000_000_000;
/// `mac_aging_secs` of every generated configuration (the smallest accepted).
pub const AGING_SECS: u64 = 15;
/// The same in ns.
pub const AGING: u64 = AGING_SECS * SEC;
/// Time steps are multiples of this: sub-second (so the FDB's one-second recency
/// granularity matters), and 60 of them are exactly the aging time (so "idle for
/// ≥ aging" is hit on the boundary).
pub const TIME_UNIT: u64 = SEC / 4;
/// Wire VIDs trunks are built from; frames draw from the same set, so they match.
pub const VIDS: [u16; 6] = [1, 2, 10, 20, 100, 4094];
/// Unicast MACs in the universe frames draw from (shared by every network).
pub const MACS: u8 = 4;
/// The clock at the first operation.
pub const T0: u64 = 1_000 * SEC;

const TPID_Q: u16 = 0x8100;
const TPID_AD: u16 = 0x88a8;

/// Unicast MAC number `i` of the universe.
pub fn ucast(i: u8) -> MacAddr {
    MacAddr::new([0x02, 0, 0, 0, 0, i + 1])
}

/// A MAC from a selector: `0..MACS` unicast, then broadcast, multicast, all-zero,
/// one unicast address that no frame ever uses as a source, and a link-local
/// control address (LLDP's).
pub fn mac_sel(sel: u8) -> MacAddr {
    match sel {
        s if s < MACS => ucast(s),
        s if s == MACS => MacAddr::new([0xff; 6]),
        s if s == MACS + 1 => MacAddr::new([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]),
        s if s == MACS + 2 => MacAddr::ZERO,
        s if s == MACS + 3 => MacAddr::new([0x02, 0xff, 0, 0, 0, 0x99]),
        _ => MacAddr::new([0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e]),
    }
}

pub fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

// ---------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------

/// An access port or a trunk over `nets` networks, trunk VIDs from [`VIDS`].
pub fn port_mode(nets: u16) -> impl Strategy<Value = PortMode> {
    prop_oneof![
        (0..nets).prop_map(|n| PortMode::Access { network: NetIdx(n) }),
        (
            btree_map(select(&VIDS[..]), 0..nets, 0..=3),
            option::of(0..nets)
        )
            .prop_map(|(vlans, native)| PortMode::Trunk {
                vlans: vlans
                    .into_iter()
                    .map(|(v, n)| (vid(v), NetIdx(n)))
                    .collect(),
                native: native.map(NetIdx),
            }),
    ]
}

/// `mode` with its network indices folded into `0..nets` (reconfiguration ops are
/// drawn before the configuration they apply to is known).
pub fn fold_mode(mode: &PortMode, nets: u16) -> PortMode {
    match mode {
        PortMode::Access { network } => PortMode::Access {
            network: NetIdx(network.0 % nets),
        },
        PortMode::Trunk { vlans, native } => PortMode::Trunk {
            vlans: vlans
                .iter()
                .map(|&(v, n)| (v, NetIdx(n.0 % nets)))
                .collect(),
            native: native.map(|n| NetIdx(n.0 % nets)),
        },
    }
}

/// A valid configuration: `min_nets..=4` networks, 3–6 `[[port]]`s, aging 15 s, a
/// small table and a per-port limit some of the time, up to two static entries; half
/// of the time an underlay (1–3 remote VTEPs, vxlan/gre networks with random flood
/// lists, static remote entries sometimes), a third of the time one or two physnets
/// with flat/vlan networks ([`extend_config`]).
pub fn config(min_nets: u16) -> impl Strategy<Value = Config> {
    (min_nets..=4u16, 3usize..=6).prop_flat_map(|(nets, n_ports)| {
        (
            (
                btree_set(1u16..=4094, nets as usize)
                    .prop_map(Vec::from_iter)
                    .prop_shuffle(),
                vec(port_mode(nets), n_ports),
                prop_oneof![3 => Just(1000usize), 2 => 1usize..=6],
                prop_oneof![3 => Just(0usize), 1 => 1usize..=3],
                vec((0..nets, 0..MACS, any::<Index>()), 0..=2),
            ),
            (
                prop_oneof![1 => Just(None), 1 => underlay_plan().prop_map(Some)],
                prop_oneof![2 => Just(0usize), 1 => 1usize..=2],
                vec(net_plan(), nets as usize),
                vec((0..nets, 0..MACS, any::<Index>()), 0..=2),
            ),
        )
            .prop_map(
                |((vlans, modes, size, limit, statics), (underlay, physnets, plans, remote))| {
                    let cfg = build_config(&vlans, modes, size, limit, &statics);
                    extend_config(cfg, underlay, physnets, &plans, &remote)
                },
            )
    })
}

/// The underlay's knobs: remote VTEPs, DF, the VXLAN port, an on-link prefix or not.
#[derive(Clone, Copy, Debug)]
pub struct UnderlayPlan {
    pub vteps: usize,
    pub df: bool,
    pub vxlan_port: u16,
    pub prefix: bool,
}

pub fn underlay_plan() -> impl Strategy<Value = UnderlayPlan> {
    (
        1usize..=3,
        prop_oneof![3 => Just(true), 1 => Just(false)],
        prop_oneof![4 => Just(4789u16), 1 => Just(8472u16)],
        any::<bool>(),
    )
        .prop_map(|(vteps, df, vxlan_port, prefix)| UnderlayPlan {
            vteps,
            df,
            vxlan_port,
            prefix,
        })
}

/// A network's segment as drawn (folded into what the configuration allows).
#[derive(Clone, Copy, Debug)]
pub struct NetPlan {
    /// 0 local, 1 vxlan, 2 gre, 3 flat, 4 vlan.
    pub kind: u8,
    /// VNI (24 bits) or key.
    pub id: u32,
    pub physnet: Index,
    pub pvid: Index,
    /// Which remote VTEPs are in the flood list (bit `v`).
    pub vteps: u8,
}

pub fn net_plan() -> impl Strategy<Value = NetPlan> {
    (
        prop_oneof![2 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8), 2 => Just(4u8)],
        prop_oneof![3 => 1u32..=64, 1 => 1u32..=0xff_ffff],
        any::<Index>(),
        any::<Index>(),
        prop_oneof![1 => Just(0u8), 4 => 1u8..=7],
    )
        .prop_map(|(kind, id, physnet, pvid, vteps)| NetPlan {
            kind,
            id,
            physnet,
            pvid,
            vteps,
        })
}

/// The local VTEP.
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The underlay port's MAC (no frame of the universe uses it).
pub const LOCAL_MAC: MacAddr = MacAddr::new([0x02, 0xaa, 0, 0, 0, 0x01]);
/// A source address that is no configured VTEP.
pub const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);

/// Remote VTEP number `v`'s address.
pub fn vtep_ip(v: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + v as u8)
}

/// Remote VTEP number `v`'s MAC (its static neighbour entry).
pub fn vtep_mac(v: usize) -> MacAddr {
    MacAddr::new([0x02, 0xbb, 0, 0, 0, 0x10 + v as u8])
}

/// Adds to a local configuration what the config layer builds for issue 4: segments
/// (vxlan/gre with an underlay, flat/vlan with physnets; anything else stays local),
/// the physnet ports (trunks of their vlan networks' provider VIDs, their flat network
/// native), the underlay port (last; a trunk that carries nothing), the remote VTEPs
/// in order of first mention (each with a static neighbour) and static remote entries.
pub fn extend_config(
    mut cfg: Config,
    underlay: Option<UnderlayPlan>,
    physnets: usize,
    plans: &[NetPlan],
    remote: &[(u16, u8, Index)],
) -> Config {
    let n_vteps = underlay.map_or(0, |u| u.vteps);
    // Per physnet: its trunk's VID map and native network.
    type Trunk = (Vec<(VlanId, NetIdx)>, Option<NetIdx>);
    let mut trunks: Vec<Trunk> = vec![(vec![], None); physnets];
    let mut used_ids: BTreeSet<(u8, u32)> = BTreeSet::new();
    // With an underlay, at least one overlay network.
    let force_overlay = underlay.is_some() && plans.iter().all(|p| p.kind != 1 && p.kind != 2);
    for (i, (net, plan)) in cfg.networks.iter_mut().zip(plans).enumerate() {
        let n = NetIdx(i as u16);
        let mut kind = if force_overlay && i == 0 {
            1
        } else {
            plan.kind
        };
        if ((kind == 1 || kind == 2) && underlay.is_none()) || (kind >= 3 && physnets == 0) {
            kind = 0;
        }
        match kind {
            1 | 2 => {
                let mut id = if kind == 1 {
                    plan.id & 0xff_ffff
                } else {
                    plan.id
                };
                while used_ids.contains(&(kind, id)) {
                    id = (id + 1) & if kind == 1 { 0xff_ffff } else { u32::MAX };
                }
                used_ids.insert((kind, id));
                net.segment = if kind == 1 {
                    Segment::Vxlan {
                        vni: Vni::try_new(id).unwrap(),
                    }
                } else {
                    Segment::Gre {
                        key: GreKey::new(id),
                    }
                };
                net.remote_vteps = (0..n_vteps)
                    .filter(|v| plan.vteps & (1 << v) != 0)
                    .map(|v| VtepIdx(v as u16))
                    .collect();
            }
            3 | 4 => {
                let ph = plan.physnet.index(physnets);
                let (vlans, native) = &mut trunks[ph];
                if kind == 3 && native.is_none() {
                    *native = Some(n);
                    net.segment = Segment::Flat {
                        physnet: PhysnetIdx(ph as u16),
                    };
                    continue;
                }
                let start = plan.pvid.index(VIDS.len());
                let free = (0..VIDS.len())
                    .map(|k| vid(VIDS[(start + k) % VIDS.len()]))
                    .find(|v| vlans.iter().all(|(w, _)| w != v));
                if let Some(v) = free {
                    vlans.push((v, n));
                    net.segment = Segment::Vlan {
                        physnet: PhysnetIdx(ph as u16),
                        vid: v,
                    };
                }
            }
            _ => {}
        }
    }
    for (ph, (mut vlans, native)) in trunks.into_iter().enumerate() {
        vlans.sort();
        cfg.physnets.push(Physnet {
            name: format!("physnet{ph}"),
            port: PortIdx(cfg.ports.len() as u16),
            mtu: 1500,
        });
        cfg.ports.push(Port {
            name: format!("phys{ph}"),
            ifname: None,
            mode: PortMode::Trunk { vlans, native },
            role: PortRole::Physnet(PhysnetIdx(ph as u16)),
            policy: Default::default(),
        });
    }
    let Some(u) = underlay else {
        return cfg;
    };
    // Static remote entries (l2population), on overlay networks only.
    let mut statics: Vec<StaticFdb> = Vec::new();
    for &(n, m, idx) in remote {
        let net = &cfg.networks[usize::from(n)];
        if !net.segment.is_tunnel()
            || cfg
                .static_fdb
                .iter()
                .chain(&statics)
                .any(|s| s.network.0 == n && s.mac == ucast(m))
        {
            continue;
        }
        statics.push(StaticFdb {
            network: NetIdx(n),
            mac: ucast(m),
            target: FdbTarget::Remote(VtepIdx(idx.index(n_vteps) as u16)),
        });
    }
    // At least one VTEP in a flood list.
    if cfg.networks.iter().all(|n| n.remote_vteps.is_empty()) {
        if let Some(n) = cfg.networks.iter_mut().find(|n| n.segment.is_tunnel()) {
            n.remote_vteps.push(VtepIdx(0));
        }
    }
    // VTEPs in order of first mention (flood lists in network order, then statics);
    // unmentioned ones do not exist.
    let mut order: Vec<u16> = Vec::new();
    for v in cfg
        .networks
        .iter()
        .flat_map(|n| n.remote_vteps.iter().map(|v| v.0))
        .chain(statics.iter().filter_map(|s| match s.target {
            FdbTarget::Remote(v) => Some(v.0),
            FdbTarget::Port(_) => None,
        }))
    {
        if !order.contains(&v) {
            order.push(v);
        }
    }
    let renum = |v: VtepIdx| VtepIdx(order.iter().position(|&w| w == v.0).unwrap() as u16);
    for n in &mut cfg.networks {
        n.remote_vteps = n.remote_vteps.iter().map(|&v| renum(v)).collect();
    }
    for s in &mut statics {
        if let FdbTarget::Remote(v) = s.target {
            s.target = FdbTarget::Remote(renum(v));
        }
    }
    cfg.static_fdb.extend(statics);
    cfg.vteps = order
        .iter()
        .map(|&v| IpAddr::V4(vtep_ip(usize::from(v))))
        .collect();
    let port = PortIdx(cfg.ports.len() as u16);
    cfg.ports.push(Port {
        name: "uplink".into(),
        ifname: None,
        mode: PortMode::Trunk {
            vlans: vec![],
            native: None,
        },
        role: PortRole::Underlay,
        policy: Default::default(),
    });
    cfg.underlay = Some(Underlay {
        port,
        local_ip: IpAddr::V4(LOCAL_IP),
        prefix_len: u.prefix.then_some(24),
        local_mac: Some(LOCAL_MAC),
        gateway: None,
        mtu: 1500,
        df: u.df,
        vxlan_port: u.vxlan_port,
        neighbors: order
            .iter()
            .map(|&v| {
                (
                    IpAddr::V4(vtep_ip(usize::from(v))),
                    vtep_mac(usize::from(v)),
                )
            })
            .collect(),
    });
    cfg
}

/// Builds a [`Config`] by hand (not through TOML: the config layer has its own tests).
pub fn build_config(
    vlans: &[u16],
    modes: Vec<PortMode>,
    mac_table_size: usize,
    mac_limit_per_port: usize,
    statics: &[(u16, u8, Index)],
) -> Config {
    let networks = vlans
        .iter()
        .enumerate()
        .map(|(i, &v)| Network {
            name: format!("net{i}"),
            segment: Segment::Local,
            local_vlan: vid(v),
            local_vlan_allocated: false,
            remote_vteps: Vec::new(),
            mac_limit: 0,
        })
        .collect();
    let ports: Vec<Port> = modes
        .into_iter()
        .enumerate()
        .map(|(i, mode)| Port {
            name: format!("p{i}"),
            ifname: None,
            mode,
            role: PortRole::Local,
            policy: Default::default(),
        })
        .collect();
    let mut static_fdb: Vec<StaticFdb> = Vec::new();
    for &(n, m, idx) in statics {
        let carriers: Vec<u16> = (0..ports.len() as u16)
            .filter(|&p| egress_of(&ports[usize::from(p)].mode, n).is_some())
            .collect();
        if carriers.is_empty()
            || static_fdb
                .iter()
                .any(|s| s.network.0 == n && s.mac == ucast(m))
        {
            continue;
        }
        static_fdb.push(StaticFdb {
            network: NetIdx(n),
            mac: ucast(m),
            target: FdbTarget::Port(PortIdx(carriers[idx.index(carriers.len())])),
        });
    }
    Config {
        switch: SwitchParams {
            workers: 1,
            mac_aging: Duration::from_secs(AGING_SECS),
            mac_table_size,
            mac_limit_per_port,
            control_socket: PathBuf::from("/nonexistent"),
            ..SwitchParams::default()
        },
        networks,
        ports,
        static_fdb,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------

/// A frame to build: addresses by selector ([`mac_sel`]), a stack of tags as
/// (TPID, TCI) or, with `fit`, one tagging the ingress port accepts, an EtherType,
/// a payload, optionally cut short.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub dst: u8,
    pub src: u8,
    pub tags: Vec<(u16, u16)>,
    /// Replace `tags` by a tagging the port accepts: the index picks among them, the
    /// `u16` gives PCP and DEI.
    pub fit: Option<(Index, u16)>,
    pub ethertype: u16,
    pub payload: usize,
    pub fill: u8,
    pub truncate: Option<usize>,
}

impl FrameSpec {
    /// The bytes of the frame as it arrives on a port of `mode`.
    pub fn bytes(&self, mode: &PortMode) -> Vec<u8> {
        let mut f = Vec::with_capacity(18 + self.payload);
        f.extend_from_slice(&mac_sel(self.dst).octets());
        f.extend_from_slice(&mac_sel(self.src).octets());
        let tags = match self.fit {
            None => self.tags.clone(),
            Some((idx, prio)) => {
                // Untagged, priority-tagged, or tagged with a VID the port maps.
                let mut ok = vec![vec![], vec![(TPID_Q, prio & 0xf000)]];
                if let PortMode::Trunk { vlans, native } = mode {
                    if native.is_none() {
                        ok.clear();
                    }
                    ok.extend(
                        vlans
                            .iter()
                            .map(|(v, _)| vec![(TPID_Q, prio & 0xf000 | v.get())]),
                    );
                }
                if ok.is_empty() {
                    self.tags.clone()
                } else {
                    ok[idx.index(ok.len())].clone()
                }
            }
        };
        for &(tpid, tci) in &tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        f.extend((0..self.payload).map(|i| self.fill.wrapping_add(i as u8)));
        if let Some(n) = self.truncate {
            f.truncate(n);
        }
        f
    }
}

/// A TCI: any PCP and DEI; VID 0 (priority tag), a trunk VID, the reserved 4095,
/// or any other.
pub fn tci() -> impl Strategy<Value = u16> {
    (
        0u16..8,
        any::<bool>(),
        prop_oneof![
            2 => Just(0u16),
            6 => select(&VIDS[..]),
            1 => Just(4095u16),
            1 => 1u16..4095,
        ],
    )
        .prop_map(|(pcp, dei, v)| pcp << 13 | u16::from(dei) << 12 | v)
}

/// Tag stacks: mostly none or one 802.1Q tag; sometimes an 802.1ad S-tag, QinQ, or
/// three tags.
pub fn tags() -> impl Strategy<Value = Vec<(u16, u16)>> {
    prop_oneof![
        8 => Just(vec![]),
        10 => tci().prop_map(|t| vec![(TPID_Q, t)]),
        1 => tci().prop_map(|t| vec![(TPID_AD, t)]),
        1 => (tci(), tci()).prop_map(|(a, b)| vec![(TPID_Q, a), (TPID_Q, b)]),
        1 => (tci(), tci()).prop_map(|(a, b)| vec![(TPID_AD, a), (TPID_Q, b)]),
        1 => (tci(), tci(), tci()).prop_map(|(a, b, c)| vec![(TPID_Q, a), (TPID_Q, b), (TPID_Q, c)]),
    ]
}

/// A structured frame: unicast addresses from the shared universe most of the time,
/// payloads below and above the 60-byte minimum, sometimes truncated.
pub fn frame() -> impl Strategy<Value = FrameSpec> {
    // Unicast destinations mostly differ from the source (bit 7: "not the source").
    let dst = prop_oneof![
        12 => (0..MACS).prop_map(|d| d | 0x80),
        2 => 0..MACS,
        1 => Just(MACS),
        1 => Just(MACS + 1),
        1 => Just(MACS + 3),
        1 => Just(MACS + 4),
    ];
    let src = prop_oneof![12 => 0..MACS, 1 => Just(MACS + 1), 1 => Just(MACS + 2)];
    let ethertype = prop_oneof![
        Just(0x0800u16),
        Just(0x0806u16),
        Just(0x86ddu16),
        any::<u16>().prop_map(|t| if t == TPID_Q || t == TPID_AD {
            0x0800
        } else {
            t
        }),
    ];
    let fit = prop_oneof![1 => Just(None), 3 => (any::<Index>(), any::<u16>()).prop_map(Some)];
    (
        dst,
        src,
        tags(),
        fit,
        ethertype,
        0usize..=70,
        any::<u8>(),
        prop_oneof![20 => Just(None), 1 => (0usize..24).prop_map(Some)],
    )
        .prop_map(
            |(dst, src, tags, fit, ethertype, payload, fill, truncate)| FrameSpec {
                dst: match dst & 0x7f {
                    d if dst & 0x80 != 0 && d == src => (d + 1) % MACS,
                    d => d,
                },
                src,
                tags,
                fit,
                ethertype,
                payload,
                fill,
                truncate,
            },
        )
}

// ---------------------------------------------------------------------------------
// Tunnel packets (built by hand from RFC 791/768/7348/2784/2890, not with encap)
// ---------------------------------------------------------------------------------

/// The RFC 1071 Internet checksum of `data` (the value to store in a header whose
/// checksum field is zero; a header that verifies sums to 0).
pub fn inet_csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What is wrong with a generated tunnel packet, if anything.
#[derive(Clone, Copy, Debug)]
pub enum Defect {
    None,
    /// Outer destination MAC not the underlay's.
    DstMac,
    /// Outer destination IP not `local_ip`.
    DstIp,
    /// Source IP of no configured VTEP.
    SrcIp,
    /// A VNI/key of no network of that type: the other type's (`true`, when there is
    /// one) or the given one.
    Segment(bool, u32),
    /// GRE without the K bit.
    NoKey,
    /// The inner frame carries this 802.1Q TCI (VID 1..=4094).
    InnerTag(u16),
    /// Not a tunnel packet: 0 ARP reply, 1 TCP, 2 UDP to another port, 3 GRE carrying
    /// IPv4 (not 0x6558), 4 an outer VLAN tag.
    NotTunnel(u8),
    /// Malformed: 0 IPv4 checksum, 1 fragment, 2 IPv4 options, 3 cut short, 4 VXLAN
    /// without the I flag / GRE version 1, 5 bad UDP checksum / GRE routing bit, 6 inner
    /// frame under 14 bytes, 7 UDP length past the datagram / GRE reserved bit 0x0800.
    Malformed(u8),
}

/// A packet received on the underlay port.
#[derive(Clone, Debug)]
pub struct TunnelSpec {
    pub gre: bool,
    /// The sending VTEP, among the configured ones.
    pub vtep: Index,
    /// The network, among those of the packet's type.
    pub net: Index,
    pub inner: FrameSpec,
    pub sport: u16,
    /// VXLAN: a computed UDP checksum instead of 0.
    pub udp_csum: bool,
    /// GRE: a checksum word (C bit) / a sequence number (S bit) / bits a receiver
    /// ignores (0x0100).
    pub gre_opts: (bool, bool, bool),
    pub defect: Defect,
}

pub fn tunnel_spec() -> impl Strategy<Value = TunnelSpec> {
    let defect = prop_oneof![
        40 => Just(Defect::None),
        2 => Just(Defect::DstMac),
        2 => Just(Defect::DstIp),
        3 => Just(Defect::SrcIp),
        3 => (any::<bool>(), any::<u32>()).prop_map(|(o, id)| Defect::Segment(o, id)),
        1 => Just(Defect::NoKey),
        3 => (0u16..=0xefff, select(&VIDS[..5])).prop_map(|(pd, v)| Defect::InnerTag(pd & 0xf000 | v)),
        5 => (0u8..5).prop_map(Defect::NotTunnel),
        8 => (0u8..8).prop_map(Defect::Malformed),
    ];
    (
        any::<bool>(),
        any::<Index>(),
        any::<Index>(),
        frame(),
        any::<u16>(),
        prop_oneof![3 => Just(false), 1 => Just(true)],
        (
            prop_oneof![4 => Just(false), 1 => Just(true)],
            prop_oneof![4 => Just(false), 1 => Just(true)],
            prop_oneof![6 => Just(false), 1 => Just(true)],
        ),
        defect,
    )
        .prop_map(
            |(gre, vtep, net, mut inner, sport, udp_csum, gre_opts, defect)| {
                inner.tags.clear();
                inner.fit = None;
                inner.truncate = None;
                TunnelSpec {
                    gre,
                    vtep,
                    net,
                    inner,
                    sport,
                    udp_csum,
                    gre_opts,
                    defect,
                }
            },
        )
}

fn id_of(seg: Segment) -> Option<(bool, u32)> {
    match seg {
        Segment::Vxlan { vni } => Some((false, vni.get())),
        Segment::Gre { key } => Some((true, key.get())),
        _ => None,
    }
}

impl TunnelSpec {
    /// The bytes as they arrive on the underlay port of `cfg` (which has one).
    pub fn bytes(&self, cfg: &Config) -> Vec<u8> {
        let u = cfg.underlay.as_ref().expect("an underlay");
        let vxlan_port = u.vxlan_port;
        let has = |g: bool| {
            cfg.networks
                .iter()
                .any(|n| id_of(n.segment).is_some_and(|(x, _)| x == g))
        };
        // Mostly of a type some network has.
        let gre = if has(self.gre) || matches!(self.defect, Defect::Segment(..)) {
            self.gre
        } else {
            !self.gre
        };
        let ids: Vec<u32> = cfg
            .networks
            .iter()
            .filter_map(|n| id_of(n.segment))
            .filter(|&(g, _)| g == gre)
            .map(|(_, id)| id)
            .collect();
        let others: Vec<u32> = cfg
            .networks
            .iter()
            .filter_map(|n| id_of(n.segment))
            .filter(|&(g, _)| g != gre)
            .map(|(_, id)| id)
            .collect();
        let mask = if gre { u32::MAX } else { 0xff_ffff };
        let mut id = if ids.is_empty() {
            0x00ab_cdef
        } else {
            ids[self.net.index(ids.len())]
        };
        if let Defect::Segment(other, rnd) = self.defect {
            id = if other && !others.is_empty() {
                others[self.net.index(others.len())]
            } else {
                rnd & mask
            };
        }
        let v = self.vtep.index(cfg.vteps.len().max(1));
        let src_ip = match (self.defect, cfg.vteps.get(v)) {
            (Defect::SrcIp, _) | (_, None) => STRANGER_IP,
            (_, Some(IpAddr::V4(a))) => *a,
            (_, Some(IpAddr::V6(_))) => STRANGER_IP,
        };
        let src_mac = u
            .neighbors
            .iter()
            .find(|(ip, _)| *ip == IpAddr::V4(src_ip))
            .map_or(MacAddr::new([0x02, 0xbb, 0, 0, 0, 0x99]), |n| n.1);
        let dst_mac = match self.defect {
            Defect::DstMac => MacAddr::new([0x02, 0xaa, 0, 0, 0, 0x77]),
            _ => LOCAL_MAC,
        };
        let dst_ip = match self.defect {
            Defect::DstIp => Ipv4Addr::new(198, 18, 0, 77),
            _ => LOCAL_IP,
        };
        let mut inner = self.inner.bytes(&PortMode::Access { network: NetIdx(0) });
        match self.defect {
            Defect::InnerTag(tci) => {
                inner.splice(12..12, [0x81, 0x00, (tci >> 8) as u8, tci as u8]);
            }
            Defect::Malformed(6) => inner.truncate(10),
            _ => {}
        }
        let (mal, nt) = match self.defect {
            Defect::Malformed(k) => (Some(k), None),
            Defect::NotTunnel(k) => (None, Some(k)),
            _ => (None, None),
        };
        if nt == Some(0) {
            // An ARP reply from the VTEP to us.
            let mut f = [LOCAL_MAC.octets(), src_mac.octets()].concat();
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
            f.extend_from_slice(&src_mac.octets());
            f.extend_from_slice(&src_ip.octets());
            f.extend_from_slice(&LOCAL_MAC.octets());
            f.extend_from_slice(&LOCAL_IP.octets());
            f.resize(60, 0);
            return f;
        }
        // The L4 part (UDP + VXLAN, or GRE) and its IP protocol.
        let (proto, l4) = if gre && nt != Some(1) && nt != Some(2) {
            let (c, sq, ign) = self.gre_opts;
            let mut fv: u16 = if self.defect.is_no_key() { 0 } else { 0x2000 };
            if c {
                fv |= 0x8000;
            }
            if sq {
                fv |= 0x1000;
            }
            if ign {
                fv |= 0x0100;
            }
            match mal {
                Some(4) => fv |= 1,
                Some(5) => fv |= 0x4000,
                Some(7) => fv |= 0x0800,
                _ => {}
            }
            let ptype: u16 = if nt == Some(3) { 0x0800 } else { 0x6558 };
            let mut g = fv.to_be_bytes().to_vec();
            g.extend_from_slice(&ptype.to_be_bytes());
            if c {
                g.extend_from_slice(&[0, 0, 0, 0]);
            }
            if fv & 0x2000 != 0 {
                g.extend_from_slice(&id.to_be_bytes());
            }
            if sq {
                g.extend_from_slice(&[0, 0, 0x12, 0x34]);
            }
            g.extend_from_slice(&inner);
            if c {
                let cs = inet_csum(&g);
                g[4..6].copy_from_slice(&cs.to_be_bytes());
            }
            (47u8, g)
        } else if nt == Some(1) {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&self.sport.to_be_bytes());
            t[2..4].copy_from_slice(&80u16.to_be_bytes());
            t[12] = 0x50;
            t.extend_from_slice(&inner);
            (6u8, t)
        } else {
            let dport = if nt == Some(2) || nt == Some(3) {
                vxlan_port ^ 0x0101
            } else {
                vxlan_port
            };
            let flags = if mal == Some(4) { 0x00 } else { 0x08 };
            let mut p = self.sport.to_be_bytes().to_vec();
            p.extend_from_slice(&dport.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0]);
            p.extend_from_slice(&[flags, 0, 0, 0]);
            p.extend_from_slice(&(id << 8).to_be_bytes());
            p.extend_from_slice(&inner);
            let ulen = p.len() as u16 + if mal == Some(7) { 4 } else { 0 };
            p[4..6].copy_from_slice(&ulen.to_be_bytes());
            if self.udp_csum || mal == Some(5) {
                let mut ph = src_ip.octets().to_vec();
                ph.extend_from_slice(&dst_ip.octets());
                ph.extend_from_slice(&[0, 17]);
                ph.extend_from_slice(&(p.len() as u16).to_be_bytes());
                ph.extend_from_slice(&p);
                let mut cs = inet_csum(&ph);
                if cs == 0 {
                    cs = 0xffff;
                }
                if mal == Some(5) {
                    cs ^= 0x0100;
                }
                p[6..8].copy_from_slice(&cs.to_be_bytes());
            }
            (17u8, p)
        };
        let opts: &[u8] = if mal == Some(2) { &[1, 1, 1, 0] } else { &[] };
        let hl = 20 + opts.len();
        let mut ip = vec![0u8; hl];
        ip[0] = 0x40 | (hl / 4) as u8;
        ip[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        let mut frag: u16 = if u.df { 0x4000 } else { 0 };
        if mal == Some(1) {
            frag = 0x2000;
        }
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src_ip.octets());
        ip[16..20].copy_from_slice(&dst_ip.octets());
        ip[20..].copy_from_slice(opts);
        let mut cs = inet_csum(&ip);
        if mal == Some(0) {
            cs ^= 0x0040;
        }
        ip[10..12].copy_from_slice(&cs.to_be_bytes());
        let mut f = [dst_mac.octets(), src_mac.octets()].concat();
        if nt == Some(4) {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&l4);
        if mal == Some(3) {
            f.truncate(f.len() - 5);
        } else if f.len() < 60 {
            // The sender's NIC pads; the padding is not part of the IP packet.
            f.resize(60, 0);
        }
        f
    }
}

impl Defect {
    fn is_no_key(self) -> bool {
        matches!(self, Defect::NoKey)
    }
}

// ---------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------

/// How a network leaves a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eg {
    Untagged,
    Tagged(u16),
}

/// How frames of network `net` leave a port of `mode`, or `None` if it does not
/// carry it: access ports and a trunk's native network untagged, other trunk
/// networks with the lowest VID that maps to them.
pub fn egress_of(mode: &PortMode, net: u16) -> Option<Eg> {
    match mode {
        PortMode::Access { network } => (network.0 == net).then_some(Eg::Untagged),
        PortMode::Trunk { vlans, native } => {
            if native.is_some_and(|n| n.0 == net) {
                return Some(Eg::Untagged);
            }
            vlans
                .iter()
                .filter(|(_, n)| n.0 == net)
                .map(|(v, _)| v.get())
                .min()
                .map(Eg::Tagged)
        }
    }
}

/// A frame the model accepted: its network, its 802.1Q TCI if it carried one
/// (priority tags included), its addresses; where it entered (the receiving port, or
/// for a decapsulated frame the tunnel port of its VTEP) and where its (inner) frame
/// is in the received bytes.
#[derive(Clone, Copy, Debug)]
pub struct Class {
    pub net: u16,
    pub tci: Option<u16>,
    pub dst: MacAddr,
    pub src: MacAddr,
    pub in_port: u16,
    pub from_tunnel: bool,
    pub off: usize,
    pub len: usize,
}

impl Class {
    /// The (inner) frame in the received bytes `f`.
    pub fn frame<'a>(&self, f: &'a [u8]) -> &'a [u8] {
        &f[self.off..self.off + self.len]
    }
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn is_tpid(v: u16) -> bool {
    v == TPID_Q || v == TPID_AD
}

fn mac_at(f: &[u8], at: usize) -> MacAddr {
    MacAddr::new([f[at], f[at + 1], f[at + 2], f[at + 3], f[at + 4], f[at + 5]])
}

fn is_group(m: MacAddr) -> bool {
    m.octets()[0] & 1 == 1
}

/// Ingress classification (issue 3): access → its network for untagged and
/// priority-tagged frames, tagged ones dropped; trunk → the VID's network, the
/// native network for untagged and priority-tagged frames; VID 4095, QinQ and
/// 802.1ad, multicast or all-zero sources, short headers: dropped. Also dropped:
/// link-local control frames to 01:80:c2:00:00:00–0f (an 802.1D bridge never
/// forwards them; OVS's default `forward-bpdu=false`).
///
/// A dropped frame gives every reason that applies: which one the switch counts
/// when several do is its choice.
pub fn classify(cfg: &Config, port: u16, f: &[u8]) -> Result<Class, BTreeSet<DropReason>> {
    use DropReason::*;
    if cfg.underlay.as_ref().is_some_and(|u| u.port.0 == port) {
        return classify_underlay(cfg, f);
    }
    let mut why = BTreeSet::new();
    if f.len() < 14 {
        return Err([Malformed].into());
    }
    let mut tags: Vec<(u16, u16)> = Vec::new();
    let mut off = 12;
    while is_tpid(be16(f, off)) {
        if tags.len() == 2 {
            // A third tag: a stack the switch does not parse.
            why.extend([Malformed, UnsupportedTag]);
            break;
        }
        if f.len() < off + 6 {
            why.insert(Malformed);
            break;
        }
        tags.push((be16(f, off), be16(f, off + 2)));
        off += 4;
    }
    if tags.iter().any(|&(_, tci)| tci & 0xfff == 0xfff) {
        why.insert(ReservedVid);
    }
    if tags.len() >= 2 || tags.first().is_some_and(|t| t.0 == TPID_AD) {
        why.insert(UnsupportedTag);
    }
    let (dst, src) = (mac_at(f, 0), mac_at(f, 6));
    if is_group(src) || src.octets() == [0; 6] {
        why.insert(InvalidSource);
    }
    if dst.octets()[..5] == [0x01, 0x80, 0xc2, 0, 0] && dst.octets()[5] < 0x10 {
        why.insert(ReservedMulticast);
    }
    // The port decides only for untagged frames and single 802.1Q tags.
    let vid = match tags.as_slice() {
        [] => Some(0),
        [(TPID_Q, tci)] => Some(tci & 0xfff),
        _ => None,
    };
    let Some(mode) = cfg.ports.get(usize::from(port)).map(|p| &p.mode) else {
        return Err([NoPort].into());
    };

    let net = match (mode, vid) {
        (_, None) | (_, Some(0xfff)) => None,
        (PortMode::Access { network }, Some(0)) => Some(network.0),
        (PortMode::Access { .. }, Some(_)) => {
            why.insert(TaggedOnAccess);
            None
        }
        (PortMode::Trunk { native, .. }, Some(0)) => {
            if native.is_none() {
                why.insert(NoNative);
            }
            native.map(|n| n.0)
        }
        (PortMode::Trunk { vlans, .. }, Some(v)) => {
            let n = vlans.iter().find(|(w, _)| w.get() == v).map(|(_, n)| n.0);
            if n.is_none() {
                why.insert(UnknownVid);
            }
            n
        }
    };
    match net {
        Some(net) if why.is_empty() => Ok(Class {
            net,
            tci: tags.first().map(|t| t.1),
            dst,
            src,
            in_port: port,
            from_tunnel: false,
            off: 0,
            len: f.len(),
        }),
        _ => Err(why),
    }
}

/// Ingress on the underlay port (issue 4, REFERENCE.md's br-tun and protocol rules),
/// IPv4 underlay: a VXLAN packet (UDP to `vxlan_port`, RFC 7348: I flag set, other
/// flags and reserved fields ignored; UDP checksum 0 or correct) or a GRE packet
/// (RFC 2784/2890: version 0, bits R, s and the top recursion bit clear, protocol
/// 0x6558, checksum correct when present, key = segment) in a valid IPv4 header
/// (checksum, lengths, no fragment; options refused). Anything that is no such packet
/// is `NotTunnel`; one that is but fails a check `TunnelMalformed`. Then: addressed to
/// us (outer destination MAC and IP) else `NotOurVtep`; from a configured VTEP else
/// `UnknownVtep`; a network of that type with that VNI/key else `UnknownSegment`; an
/// inner frame of at least 14 bytes, untagged (`InnerTagged`), from a unicast source
/// (`InvalidSource`), not to 01:80:c2:00:00:0x (`ReservedMulticast`). The inner frame
/// enters its network from the VTEP's tunnel port.
///
/// Every reason that applies is returned; a packet that is unreadable garbage gives
/// the two of "not a tunnel packet" and "malformed" that cannot be told apart.
pub fn classify_underlay(cfg: &Config, f: &[u8]) -> Result<Class, BTreeSet<DropReason>> {
    use DropReason::*;
    let u = cfg.underlay.as_ref().expect("an underlay");
    let both: BTreeSet<DropReason> = [NotTunnel, TunnelMalformed].into();
    if f.len() < 14 {
        return Err([NotTunnel, TunnelMalformed, Malformed].into());
    }
    match be16(f, 12) {
        0x0800 => {}
        // An IPv6 packet is never addressed to an IPv4 VTEP.
        0x86dd => return Err([NotTunnel, TunnelMalformed, NotOurVtep].into()),
        _ => return Err([NotTunnel].into()),
    }
    let ip = &f[14..];
    if ip.len() < 20 {
        return Err(both);
    }
    let hl = usize::from(ip[0] & 0xf) * 4;
    let tl = usize::from(be16(ip, 2));
    let proto = ip[9];
    let mut why = BTreeSet::new();
    let header_ok = ip[0] >> 4 == 4
        && hl >= 20
        && ip.len() >= hl
        && tl >= hl
        && tl <= ip.len()
        && inet_csum(&ip[..hl]) == 0
        && be16(ip, 6) & 0x3fff == 0;
    if proto != 17 && proto != 47 {
        why.insert(NotTunnel);
        if !header_ok {
            why.insert(TunnelMalformed);
        }
        return Err(why);
    }
    if !header_ok {
        // Which protocol it really carries is anybody's guess.
        return Err(both);
    }
    if hl != 20 {
        why.insert(TunnelMalformed);
    }
    let l4 = &ip[hl..tl];
    // (segment is GRE, VNI/key, inner frame)
    let (gre, id, inner): (bool, Option<u32>, &[u8]) = if proto == 17 {
        if l4.len() < 8 {
            why.extend([TunnelMalformed, NotTunnel]);
            return Err(why);
        }
        let ulen = usize::from(be16(l4, 4));
        if be16(l4, 2) != u.vxlan_port {
            why.insert(NotTunnel);
            if ulen < 8 || ulen > l4.len() {
                why.insert(TunnelMalformed);
            }
            return Err(why);
        }
        if ulen < 8 || ulen > l4.len() {
            why.insert(TunnelMalformed);
            return Err(why);
        }
        let dgram = &l4[..ulen];
        if be16(dgram, 6) != 0 {
            let mut ph = ip[12..20].to_vec();
            ph.extend_from_slice(&[0, 17]);
            ph.extend_from_slice(&(ulen as u16).to_be_bytes());
            ph.extend_from_slice(dgram);
            if inet_csum(&ph) != 0 {
                why.insert(TunnelMalformed);
            }
        }
        let vx = &dgram[8..];
        if vx.len() < 8 || vx[0] & 0x08 == 0 {
            why.insert(TunnelMalformed);
            return Err(why);
        }
        let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
        (false, Some(vni), &vx[8..])
    } else {
        if l4.len() < 4 {
            why.extend([TunnelMalformed, NotTunnel]);
            return Err(why);
        }
        let fv = be16(l4, 0);
        let (c, k, s) = (fv & 0x8000 != 0, fv & 0x2000 != 0, fv & 0x1000 != 0);
        let hlen = 4 + 4 * (usize::from(c) + usize::from(k) + usize::from(s));
        if fv & 7 != 0 || fv & 0x4c00 != 0 || l4.len() < hlen {
            why.insert(TunnelMalformed);
            if l4.len() < hlen || be16(l4, 2) != 0x6558 {
                why.insert(NotTunnel);
            }
            return Err(why);
        }
        if be16(l4, 2) != 0x6558 {
            why.insert(NotTunnel);
            return Err(why);
        }
        if c && inet_csum(l4) != 0 {
            why.insert(TunnelMalformed);
        }
        let at = 4 + 4 * usize::from(c);
        let key = k.then(|| u32::from_be_bytes([l4[at], l4[at + 1], l4[at + 2], l4[at + 3]]));
        (true, key, &l4[hlen..])
    };
    if u.local_mac != Some(mac_at(f, 0))
        || IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])) != u.local_ip
    {
        why.insert(NotOurVtep);
    }
    let src_ip = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let vtep = cfg.vteps.iter().position(|&v| v == src_ip);
    if vtep.is_none() {
        why.insert(UnknownVtep);
    }
    let net = cfg
        .networks
        .iter()
        .position(|n| id.is_some() && id_of(n.segment) == Some((gre, id.unwrap_or(0))));
    if net.is_none() {
        why.insert(UnknownSegment);
    }
    if inner.len() < 14 {
        why.insert(TunnelMalformed);
        return Err(why);
    }
    if is_tpid(be16(inner, 12)) {
        why.insert(InnerTagged);
    }
    let (dst, src) = (mac_at(inner, 0), mac_at(inner, 6));
    if is_group(src) || src.octets() == [0; 6] {
        why.insert(InvalidSource);
    }
    if dst.octets()[..5] == [0x01, 0x80, 0xc2, 0, 0] && dst.octets()[5] < 0x10 {
        why.insert(ReservedMulticast);
    }
    match (net, vtep) {
        (Some(net), Some(v)) if why.is_empty() => Ok(Class {
            net: net as u16,
            tci: None,
            dst,
            src,
            in_port: (cfg.ports.len() + v) as u16,
            from_tunnel: true,
            off: inner.as_ptr() as usize - f.as_ptr() as usize,
            len: inner.len(),
        }),
        _ => Err(why),
    }
}

/// The bytes that leave a port with `eg` for a frame received as `f` with outer
/// 802.1Q TCI `tci`: every frame leaves at least 60 bytes long (zero padding at the
/// end); a tag is removed by taking its 4 bytes out; a trunk translates the VID
/// keeping PCP and DEI, or pushes a tag with PCP 0 and DEI 0 onto an untagged frame
/// after padding it (as the sender's NIC would have).
pub fn rewrite(f: &[u8], tci: Option<u16>, eg: Eg) -> Vec<u8> {
    let pad = |mut v: Vec<u8>| {
        if v.len() < 60 {
            v.resize(60, 0);
        }
        v
    };
    match (tci, eg) {
        (Some(_), Eg::Untagged) => pad([&f[..12], &f[16..]].concat()),
        (None, Eg::Untagged) => pad(f.to_vec()),
        (Some(t), Eg::Tagged(v)) => {
            let mut out = f.to_vec();
            out[14..16].copy_from_slice(&((t & 0xf000) | v).to_be_bytes());
            pad(out)
        }
        (None, Eg::Tagged(v)) => {
            let f = pad(f.to_vec());
            let mut out = f[..12].to_vec();
            out.extend_from_slice(&TPID_Q.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&f[12..]);
            out
        }
    }
}

/// How a port sends a network's frames: a configuration port's tagging, or a tunnel
/// port (number `ports + v`) toward remote VTEP `v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Port(Eg),
    Tunnel(u16),
}

/// How `net` leaves port `q` (configuration ports, then one tunnel port per remote
/// VTEP), `None` if `q` does not carry it: a tunnel port carries every vxlan/gre
/// network (a MAC of any of them may be behind any VTEP).
pub fn out_of(cfg: &Config, q: u16, net: u16) -> Option<Out> {
    let p = usize::from(q);
    match cfg.ports.get(p) {
        Some(port) => egress_of(&port.mode, net).map(Out::Port),
        None => {
            let v = p - cfg.ports.len();
            (v < cfg.vteps.len() && cfg.networks[usize::from(net)].segment.is_tunnel())
                .then_some(Out::Tunnel(v as u16))
        }
    }
}

/// The normalized form of an encapsulated frame: 'V' + VNI or 'G' + key (32 bits),
/// then the inner frame.
pub fn tunnel_form(seg: Segment, inner: &[u8]) -> Vec<u8> {
    let (gre, id) = id_of(seg).expect("an overlay segment");
    let mut v = vec![if gre { b'G' } else { b'V' }];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(inner);
    v
}

/// What port `q` sends for frame `f` of `net` received with TCI `tci`, in normalized
/// form: tunnel ports send the inner frame an access port would send (untagged, at
/// least 60 bytes) encapsulated with the network's VNI/key.
pub fn out_frame(cfg: &Config, net: u16, f: &[u8], tci: Option<u16>, q: u16) -> Option<Vec<u8>> {
    match out_of(cfg, q, net)? {
        Out::Port(eg) => Some(rewrite(f, tci, eg)),
        Out::Tunnel(_) => Some(tunnel_form(
            cfg.networks[usize::from(net)].segment,
            &rewrite(f, tci, Eg::Untagged),
        )),
    }
}

/// A frame sent on port `port` in the form the model predicts: frames out of the
/// underlay port are parsed (etherparse for Ethernet, IPv4, UDP) and their outer
/// headers checked — source MAC ours, destination MAC the VTEP's static neighbour,
/// IPv4 without options, valid header checksum, DF as configured, no fragment, TTL
/// 64, from `local_ip` to a configured VTEP, lengths exact; VXLAN: UDP to
/// `vxlan_port` from 49152..=65535, checksum 0, flags 0x08, reserved fields zero;
/// GRE: flags K only, version 0, protocol 0x6558 — and become (the VTEP's tunnel
/// port, [`tunnel_form`]).
pub fn normalize(cfg: &Config, port: u16, b: &[u8]) -> Result<(u16, Vec<u8>), String> {
    use etherparse::{Ethernet2HeaderSlice, Ipv4HeaderSlice, UdpHeaderSlice};
    let Some(u) = cfg.underlay.as_ref().filter(|u| u.port.0 == port) else {
        return Ok((port, b.to_vec()));
    };
    let err = |what: &str| Err(format!("underlay frame {b:02x?}: {what}"));
    let eth = Ethernet2HeaderSlice::from_slice(b).map_err(|e| format!("{e}"))?;
    if Some(MacAddr::new(eth.source())) != u.local_mac {
        return err("source MAC is not the underlay's");
    }
    if eth.ether_type() != etherparse::EtherType::IPV4 {
        return err("not IPv4");
    }
    let ip = Ipv4HeaderSlice::from_slice(&b[14..]).map_err(|e| format!("{e}"))?;
    if ip.ihl() != 5 {
        return err("IPv4 options");
    }
    if ip.header_checksum() != ip.to_header().calc_header_checksum() {
        return err("bad IPv4 header checksum");
    }
    if ip.dont_fragment() != u.df || ip.more_fragments() || ip.fragments_offset().value() != 0 {
        return err("DF/fragment bits");
    }
    if ip.ttl() != 64 {
        return err("TTL is not 64");
    }
    if IpAddr::V4(ip.source_addr()) != u.local_ip {
        return err("source IP is not local_ip");
    }
    if usize::from(ip.total_len()) != b.len() - 14 {
        return err("IPv4 total length is not the frame's");
    }
    let dst = IpAddr::V4(ip.destination_addr());
    let Some(v) = cfg.vteps.iter().position(|&x| x == dst) else {
        return err("destination is no VTEP");
    };
    let nb = u.neighbors.iter().find(|n| n.0 == dst).map(|n| n.1);
    if Some(MacAddr::new(eth.destination())) != nb {
        return err("destination MAC is not the VTEP's neighbour entry");
    }
    let l4 = &b[34..];
    let (seg, inner) = match ip.protocol() {
        etherparse::IpNumber::UDP => {
            let udp = UdpHeaderSlice::from_slice(l4).map_err(|e| format!("{e}"))?;
            if udp.destination_port() != u.vxlan_port {
                return err("UDP destination port is not vxlan_port");
            }
            if udp.source_port() < 49152 {
                return err("UDP source port below 49152");
            }
            if usize::from(udp.length()) != l4.len() {
                return err("UDP length");
            }
            if udp.checksum() != 0 {
                return err("UDP checksum is not 0");
            }
            let vx = &l4[8..];
            if vx.len() < 8 || vx[0] != 0x08 || vx[1..4] != [0, 0, 0] || vx[7] != 0 {
                return err("VXLAN flags or reserved fields");
            }
            let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
            (
                Segment::Vxlan {
                    vni: Vni::try_new(vni).unwrap(),
                },
                &vx[8..],
            )
        }
        etherparse::IpNumber::GRE => {
            if l4.len() < 8 || l4[0..4] != [0x20, 0x00, 0x65, 0x58] {
                return err("GRE flags, version or protocol");
            }
            let key = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
            (
                Segment::Gre {
                    key: GreKey::new(key),
                },
                &l4[8..],
            )
        }
        _ => return err("neither UDP nor GRE"),
    };
    Ok(((cfg.ports.len() + v) as u16, tunnel_form(seg, inner)))
}

/// Normalizes what a switch sent ([`normalize`]), keeping the order. ARP frames on
/// the underlay port (the switch's own neighbour traffic, [`Verdict::Control`]) are
/// left out.
pub fn normalize_all(cfg: &Config, sent: &[(u16, Vec<u8>)]) -> Result<Vec<(u16, Vec<u8>)>, String> {
    let underlay = cfg.underlay.as_ref().map(|u| u.port.0);
    sent.iter()
        .filter(|(p, b)| !(Some(*p) == underlay && is_arp(b)))
        .map(|(p, b)| normalize(cfg, *p, b))
        .collect()
}

/// An untagged ARP frame.
pub fn is_arp(f: &[u8]) -> bool {
    f.len() >= 14 && be16(f, 12) == 0x0806
}

/// One FDB entry of the model.
#[derive(Clone, Copy, Debug)]
struct MEntry {
    port: u16,
    last_seen: u64,
    is_static: bool,
    /// Recency order: a fresh number when learned, moved, revived, or refreshed in
    /// a later second than its last refresh (the FDB's one-second granularity).
    lru: u64,
}

/// What the model says happens to a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped before learning, for one of these reasons.
    Dropped(BTreeSet<DropReason>),
    /// An ARP frame on the underlay port: the switch's neighbour code answers it, learns
    /// from it or drops it (`NotTunnel`, `Malformed`); it never enters a network, and
    /// only ARP leaves (on the underlay port). Its own tests cover what exactly
    /// (`pipeline::tunnel`, `underlay::{neigh, responder}`).
    Control,
    /// Its source is a static entry on another port.
    StaticMove,
    /// Forwarded (or dropped by the forwarding decision: `Action::Drop`).
    Forwarded {
        action: Action,
        sent: Vec<(u16, Vec<u8>)>,
    },
}

/// Which learned entries a flush removes, by network and port index.
#[derive(Clone, Copy, Debug)]
pub enum MFlush {
    All,
    Net(u16),
    Port(u16),
    NetPort(u16, u16),
}

/// A candidate victim port of a full-table eviction and its entry count in the
/// model; the resolver says which of several equally busiest ports the switch chose.
pub type Resolver<'a> = dyn FnMut(&[(u16, u32)]) -> u16 + 'a;

/// How often the model took each path (to check that the generators reach them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Coverage {
    pub unicast: u64,
    pub flood: u64,
    pub flood_copies: u64,
    pub same_port: u64,
    pub static_move: u64,
    pub dropped: u64,
    pub tagged_in: u64,
    pub tagged_out: u64,
    pub evicted: u64,
    pub eviction_ties: u64,
    pub reclaimed: u64,
    pub aged: u64,
    pub expired_lookups: u64,
    pub reconfigs: u64,
    pub bursts: u64,
    /// Sequences that ended early (an eviction tie inside a burst).
    pub cut_short: u64,
    pub moves: u64,
    pub port_limit: u64,
    /// Packets received on the underlay port, and of them decapsulated into a network.
    pub underlay_rx: u64,
    pub decap: u64,
    /// ARP frames on the underlay port (left to the neighbour code: [`Verdict::Control`]).
    pub underlay_arp: u64,
    /// Frames of the underlay port dropped, per the one reason that applied.
    pub underlay_drops: [u64; DropReason::COUNT],
    /// Known unicast to a tunnel port (encapsulated toward its VTEP).
    pub encap_unicast: u64,
    /// Copies to tunnel ports of floods (head-end replication).
    pub encap_flood: u64,
    /// From a tunnel, unicast to a tunnel port: dropped.
    pub split_horizon: u64,
    /// Floods from a tunnel in a network with remote VTEPs (that skipped them).
    pub split_horizon_flood: u64,
    /// Frames sent out of physnet ports, and of them tagged with a provider VID.
    pub provider_out: u64,
    pub provider_tagged: u64,
}

impl Coverage {
    /// `self` plus `other`, field by field.
    pub fn add(&mut self, o: &Coverage) {
        self.unicast += o.unicast;
        self.flood += o.flood;
        self.flood_copies += o.flood_copies;
        self.same_port += o.same_port;
        self.static_move += o.static_move;
        self.dropped += o.dropped;
        self.tagged_in += o.tagged_in;
        self.tagged_out += o.tagged_out;
        self.evicted += o.evicted;
        self.eviction_ties += o.eviction_ties;
        self.reclaimed += o.reclaimed;
        self.aged += o.aged;
        self.expired_lookups += o.expired_lookups;
        self.reconfigs += o.reconfigs;
        self.bursts += o.bursts;
        self.cut_short += o.cut_short;
        self.moves += o.moves;
        self.port_limit += o.port_limit;
        self.underlay_rx += o.underlay_rx;
        self.underlay_arp += o.underlay_arp;
        self.decap += o.decap;
        for (a, b) in self.underlay_drops.iter_mut().zip(o.underlay_drops) {
            *a += b;
        }
        self.encap_unicast += o.encap_unicast;
        self.encap_flood += o.encap_flood;
        self.split_horizon += o.split_horizon;
        self.split_horizon_flood += o.split_horizon_flood;
        self.provider_out += o.provider_out;
        self.provider_tagged += o.provider_tagged;
    }

    /// Underlay drops for which `r` was the only reason.
    pub fn underlay_dropped(&self, r: DropReason) -> u64 {
        let i = DropReason::ALL.iter().position(|&x| x == r).unwrap();
        self.underlay_drops[i]
    }
}

/// br-int's NORMAL switching with OVS's MAC-learning policy, in plain maps.
#[derive(Debug)]
pub struct Model {
    pub cfg: Config,
    capacity: usize,
    limit: u32,
    /// (network index, MAC) → entry.
    fdb: BTreeMap<(u16, u64), MEntry>,
    clock: u64,
    /// What the pipeline counts: new entries (revivals included), moves, refusals.
    pub learned: u64,
    pub moves: u64,
    pub port_limit: u64,
    pub cov: Coverage,
}

impl Model {
    pub fn new(cfg: &Config) -> Self {
        let mut m = Model {
            cfg: cfg.clone(),
            capacity: cfg.switch.mac_table_size,
            limit: cfg.switch.mac_limit_per_port as u32,
            fdb: BTreeMap::new(),
            clock: 0,
            learned: 0,
            moves: 0,
            port_limit: 0,
            cov: Coverage::default(),
        };
        for s in &cfg.static_fdb {
            let p = match s.target {
                FdbTarget::Port(p) => p.0,
                FdbTarget::Remote(v) => (cfg.ports.len() + v.index()) as u16,
            };
            m.add_static(s.network.0, s.mac, p);
        }
        m
    }

    /// Configuration ports and tunnel ports.
    pub fn total_ports(&self) -> u16 {
        (self.cfg.ports.len() + self.cfg.vteps.len()) as u16
    }

    /// Whether port `q` (a tunnel port included) carries `net`.
    pub fn carries(&self, q: u16, net: u16) -> bool {
        out_of(&self.cfg, q, net).is_some()
    }

    fn next_lru(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn live(e: &MEntry, now: u64) -> bool {
        e.is_static || now.saturating_sub(e.last_seen) < AGING
    }

    /// Learned entries on `port`, expired ones not yet removed included.
    pub fn count(&self, port: u16) -> u32 {
        self.fdb
            .values()
            .filter(|e| !e.is_static && e.port == port)
            .count() as u32
    }

    fn learned_len(&self) -> usize {
        self.fdb.values().filter(|e| !e.is_static).count()
    }

    fn oldest(&self, port: Option<u16>) -> Option<(u16, u64)> {
        self.fdb
            .iter()
            .filter(|(_, e)| !e.is_static && port.is_none_or(|p| e.port == p))
            .min_by_key(|(_, e)| e.lru)
            .map(|(k, _)| *k)
    }

    fn expired(&self, k: (u16, u64), now: u64) -> bool {
        !Self::live(&self.fdb[&k], now)
    }

    /// A port at its limit may reclaim its own oldest entry if that has expired.
    fn port_has_room(&mut self, port: u16, now: u64) -> bool {
        if self.limit == 0 || self.count(port) < self.limit {
            return true;
        }
        match self.oldest(Some(port)) {
            Some(k) if self.expired(k, now) => {
                self.fdb.remove(&k);
                self.cov.reclaimed += 1;
                true
            }
            _ => false,
        }
    }

    /// A full table: the oldest entry goes if it has expired; otherwise the oldest
    /// entry of a busiest port, if that port has more entries than the learner, else
    /// the learner's own oldest.
    fn make_room(&mut self, port: u16, now: u64, resolve: &mut Resolver<'_>) {
        if let Some(k) = self.oldest(None) {
            if self.expired(k, now) {
                self.fdb.remove(&k);
                self.cov.reclaimed += 1;
                return;
            }
        }
        let n_ports = self.total_ports();
        let max = (0..n_ports).map(|p| self.count(p)).max().unwrap_or(0);
        let victim = if self.count(port) >= max {
            port
        } else {
            let busiest: Vec<(u16, u32)> = (0..n_ports)
                .filter(|&p| self.count(p) == max)
                .map(|p| (p, max))
                .collect();
            if busiest.len() == 1 {
                busiest[0].0
            } else {
                self.cov.eviction_ties += 1;
                resolve(&busiest)
            }
        };
        if let Some(k) = self.oldest(Some(victim)) {
            self.fdb.remove(&k);
            self.cov.evicted += 1;
        }
    }

    /// Learns `mac` in `net` on `port`; false if the frame must be dropped (its
    /// source is a static entry on another port).
    fn learn(
        &mut self,
        net: u16,
        mac: MacAddr,
        port: u16,
        now: u64,
        resolve: &mut Resolver<'_>,
    ) -> bool {
        let k = (net, mac.to_u64());
        match self.fdb.get(&k).copied() {
            None => {
                if !self.port_has_room(port, now) {
                    self.port_limit += 1;
                    return true;
                }
                if self.learned_len() >= self.capacity {
                    self.make_room(port, now, resolve);
                }
                let lru = self.next_lru();
                self.fdb.insert(
                    k,
                    MEntry {
                        port,
                        last_seen: now,
                        is_static: false,
                        lru,
                    },
                );
                self.learned += 1;
            }
            Some(e) if e.is_static => return e.port == port,
            Some(e) if Self::live(&e, now) && e.port == port => {
                if now > e.last_seen {
                    let shift = flowtable::fdb::refresh_shift(AGING_SECS * SEC);
                    let new_second = now >> shift != e.last_seen >> shift;
                    let lru = if new_second { self.next_lru() } else { e.lru };
                    let e = self.fdb.get_mut(&k).unwrap();
                    e.last_seen = now;
                    e.lru = lru;
                }
            }
            Some(e) => {
                if e.port != port && !self.port_has_room(port, now) {
                    if !Self::live(&e, now) {
                        self.port_limit += 1;
                        return true;
                    }
                    // A live move onto a port at its limit re-points at once; that
                    // port gives up its own oldest entry.
                    if let Some(victim) = self.oldest(Some(port)) {
                        self.fdb.remove(&victim);
                    }
                }
                let lru = self.next_lru();
                let was_live = Self::live(&e, now);
                let e = self.fdb.get_mut(&k).unwrap();
                e.port = port;
                e.last_seen = e.last_seen.max(now);
                e.lru = lru;
                if was_live {
                    self.moves += 1;
                } else {
                    self.learned += 1;
                }
            }
        }
        true
    }

    /// Where `mac` is in `net` at `now`.
    pub fn lookup(&self, net: u16, mac: MacAddr, now: u64) -> Option<u16> {
        self.fdb
            .get(&(net, mac.to_u64()))
            .filter(|e| Self::live(e, now))
            .map(|e| e.port)
    }

    /// Where `net` floods: the configuration ports that carry it, in port order, then
    /// the tunnel ports of its remote VTEPs (head-end replication).
    pub fn members(&self, net: u16) -> Vec<u16> {
        let p = self.cfg.ports.len();
        (0..p as u16)
            .filter(|&q| egress_of(&self.cfg.ports[usize::from(q)].mode, net).is_some())
            .chain(
                self.cfg.networks[usize::from(net)]
                    .remote_vteps
                    .iter()
                    .map(|v| (p + v.index()) as u16),
            )
            .collect()
    }

    /// Every port that carries `net` (every tunnel port for an overlay network).
    pub fn carriers(&self, net: u16) -> Vec<u16> {
        (0..self.total_ports())
            .filter(|&q| self.carries(q, net))
            .collect()
    }

    /// A frame received on `port` at `now`.
    pub fn inject(&mut self, port: u16, f: &[u8], now: u64, resolve: &mut Resolver<'_>) -> Verdict {
        self.inject_burst(port, &[f.to_vec()], now, resolve)
            .remove(0)
    }

    /// A burst received on `port` at `now`, switched the way the pipeline documents
    /// a batch: every source is learned (in order) before any destination is looked
    /// up, so a frame may be forwarded with what a later frame of its burst taught.
    pub fn inject_burst(
        &mut self,
        port: u16,
        frames: &[Vec<u8>],
        now: u64,
        resolve: &mut Resolver<'_>,
    ) -> Vec<Verdict> {
        if frames.len() > 1 {
            self.cov.bursts += 1;
        }
        let underlay = self.cfg.underlay.as_ref().is_some_and(|u| u.port.0 == port);
        let mut classes: Vec<Result<Class, Verdict>> = frames
            .iter()
            .map(|f| {
                if underlay && is_arp(f) {
                    self.cov.underlay_rx += 1;
                    self.cov.underlay_arp += 1;
                    return Err(Verdict::Control);
                }
                let c = classify(&self.cfg, port, f);
                if underlay {
                    self.cov.underlay_rx += 1;
                    match &c {
                        Ok(_) => self.cov.decap += 1,
                        Err(why) if why.len() == 1 => {
                            let r = *why.first().unwrap();
                            let i = DropReason::ALL.iter().position(|&x| x == r).unwrap();
                            self.cov.underlay_drops[i] += 1;
                        }
                        Err(_) => {}
                    }
                }
                c.map_err(|why| {
                    self.cov.dropped += 1;
                    Verdict::Dropped(why)
                })
            })
            .collect();
        for c in &mut classes {
            if let Ok(k) = c {
                if !self.learn(k.net, k.src, k.in_port, now, resolve) {
                    self.cov.static_move += 1;
                    *c = Err(Verdict::StaticMove);
                }
            }
        }
        classes
            .into_iter()
            .zip(frames)
            .map(|(c, f)| match c {
                Ok(c) => self.forward(c, f, now),
                Err(v) => v,
            })
            .collect()
    }

    /// Forwarding and egress rewrite of a frame that was classified and learned.
    fn forward(&mut self, c: Class, f: &[u8], now: u64) -> Verdict {
        let port = c.in_port;
        let n_cfg = self.cfg.ports.len() as u16;
        let is_tunnel = |q: u16| q >= n_cfg;
        if c.tci.is_some() {
            self.cov.tagged_in += 1;
        }
        if !is_group(c.dst)
            && self
                .fdb
                .get(&(c.net, c.dst.to_u64()))
                .is_some_and(|e| !Self::live(e, now))
        {
            self.cov.expired_lookups += 1;
        }
        let action = if is_group(c.dst) {
            Action::Flood
        } else {
            match self.lookup(c.net, c.dst, now) {
                Some(p) if p == port => Action::Drop(DropReason::SamePort),
                // Split horizon: from a tunnel, never into a tunnel.
                Some(p) if c.from_tunnel && is_tunnel(p) => Action::Drop(DropReason::SplitHorizon),
                // An entry on a port that does not carry the network (stale after a
                // reconfiguration, or a misplaced static entry) counts as unknown.
                Some(p) if !self.carries(p, c.net) => Action::Flood,
                Some(p) => Action::Unicast(PortId(p)),
                None => Action::Flood,
            }
        };
        let to: Vec<u16> = match action {
            Action::Unicast(p) => vec![p.0],
            Action::Flood => {
                let members = self.members(c.net);
                if c.from_tunnel && members.iter().any(|&q| is_tunnel(q)) {
                    self.cov.split_horizon_flood += 1;
                }
                members
                    .into_iter()
                    .filter(|&q| q != port && !(c.from_tunnel && is_tunnel(q)))
                    .collect()
            }
            Action::Drop(_) => vec![],
        };
        let frame = c.frame(f);
        let mut sent: Vec<(u16, Vec<u8>)> = to
            .into_iter()
            .filter_map(|q| Some((q, out_frame(&self.cfg, c.net, frame, c.tci, q)?)))
            .collect();
        sent.sort();
        match action {
            Action::Unicast(p) => {
                self.cov.unicast += 1;
                if is_tunnel(p.0) {
                    self.cov.encap_unicast += 1;
                }
            }
            Action::Flood => {
                self.cov.flood += 1;
                self.cov.flood_copies += sent.len().saturating_sub(1) as u64;
                self.cov.encap_flood += sent.iter().filter(|(q, _)| is_tunnel(*q)).count() as u64;
            }
            Action::Drop(DropReason::SplitHorizon) => self.cov.split_horizon += 1,
            Action::Drop(_) => self.cov.same_port += 1,
        }
        let local = |q: u16| !is_tunnel(q);
        self.cov.tagged_out += sent
            .iter()
            .filter(|(q, b)| local(*q) && b.len() >= 14 && be16(b, 12) == TPID_Q)
            .count() as u64;
        for (q, b) in &sent {
            if let Some(PortRole::Physnet(_)) = self.cfg.ports.get(usize::from(*q)).map(|p| p.role)
            {
                self.cov.provider_out += 1;
                if b.len() >= 14 && be16(b, 12) == TPID_Q {
                    self.cov.provider_tagged += 1;
                }
            }
        }
        Verdict::Forwarded { action, sent }
    }

    /// A poll without traffic: expired entries removed oldest first, stopping at
    /// the first live one (at most 64, the pipeline's budget).
    pub fn tick(&mut self, now: u64) {
        for _ in 0..64 {
            match self.oldest(None) {
                Some(k) if self.expired(k, now) => {
                    self.fdb.remove(&k);
                    self.cov.aged += 1;
                }
                _ => break,
            }
        }
    }

    /// Adds or re-points a static entry; a learned entry of the MAC becomes it.
    pub fn add_static(&mut self, net: u16, mac: MacAddr, port: u16) {
        self.fdb.insert(
            (net, mac.to_u64()),
            MEntry {
                port,
                last_seen: u64::MAX,
                is_static: true,
                lru: 0,
            },
        );
    }

    /// Removes a static entry (a learned one stays).
    pub fn remove_static(&mut self, net: u16, mac: MacAddr) {
        let k = (net, mac.to_u64());
        if self.fdb.get(&k).is_some_and(|e| e.is_static) {
            self.fdb.remove(&k);
        }
    }

    /// Removes the learned entries the filter selects, expired or not.
    pub fn flush(&mut self, f: MFlush) {
        self.fdb.retain(|&(n, _), e| {
            e.is_static
                || !match f {
                    MFlush::All => true,
                    MFlush::Net(x) => n == x,
                    MFlush::Port(p) => e.port == p,
                    MFlush::NetPort(x, p) => n == x && e.port == p,
                }
        });
    }

    /// The static entries.
    pub fn statics(&self) -> Vec<(u16, MacAddr, u16)> {
        self.fdb
            .iter()
            .filter(|(_, e)| e.is_static)
            .map(|(&(n, m), e)| (n, MacAddr::from_u64(m), e.port))
            .collect()
    }

    /// Live entries as (local VLAN, MAC, port, static), sorted.
    pub fn live_entries(&self, now: u64) -> Vec<(u16, u64, u16, bool)> {
        let mut v: Vec<_> = self
            .fdb
            .iter()
            .filter(|(_, e)| Self::live(e, now))
            .map(|(&(n, m), e)| {
                let vlan = self.cfg.networks[usize::from(n)].local_vlan.get();
                (vlan, m, e.port, e.is_static)
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// A new configuration (same networks, same number of ports): what the control
    /// plane removes with it — learned entries of a network on a port that no longer
    /// carries it, and static entries that became invalid — is removed here too.
    pub fn reconfigure(&mut self, cfg: &Config) {
        self.cov.reconfigs += 1;
        self.cfg = cfg.clone();
        self.fdb
            .retain(|&(n, _), e| out_of(cfg, e.port, n).is_some());
    }
}

// ---------------------------------------------------------------------------------
// Switches under test
// ---------------------------------------------------------------------------------

/// What the runner needs from a switch.
pub trait Sut {
    fn inject(&mut self, port: u16, f: &[u8], now: u64) -> Outcome;
    /// Switches `frames` as one batch received on `port`; what each port sent, in
    /// port order and in order per port. `None` if this switch cannot.
    fn inject_burst(
        &mut self,
        port: u16,
        frames: &[Vec<u8>],
        now: u64,
    ) -> Option<Vec<(u16, Vec<u8>)>>;
    fn tick(&mut self, now: u64);
    fn control(&mut self) -> &mut FdbControl;
    fn fdb(&self) -> &Fdb;
    fn counters(&self) -> &Counters;
    /// Replaces the configuration; `false` if this switch cannot.
    fn reconfigure(&mut self, cfg: &Config) -> bool;
}

impl Sut for OfflineSwitch {
    fn inject(&mut self, port: u16, f: &[u8], now: u64) -> Outcome {
        OfflineSwitch::inject(self, PortIdx(port), f, now)
    }
    fn inject_burst(&mut self, _: u16, _: &[Vec<u8>], _: u64) -> Option<Vec<(u16, Vec<u8>)>> {
        None
    }
    fn tick(&mut self, now: u64) {
        OfflineSwitch::tick(self, now);
    }
    fn control(&mut self) -> &mut FdbControl {
        self.fdb_control()
    }
    fn fdb(&self) -> &Fdb {
        self.pipeline().fdb().fdb()
    }
    fn counters(&self) -> &Counters {
        self.pipeline().counters()
    }
    fn reconfigure(&mut self, _: &Config) -> bool {
        false
    }
}

/// `OfflineSwitch` rebuilt from the public pipeline API, with runtime
/// reconfiguration through `Pipeline::set_tables` (a new generation each time).
#[derive(Debug)]
pub struct Harness {
    control: FdbControl,
    pipeline: Pipeline,
    pool: Pool,
    ports: Vec<MemPort>,
    generation: u64,
}

impl Harness {
    pub fn new(cfg: &Config) -> Self {
        let fdb_cfg = FdbConfig {
            capacity: cfg.switch.mac_table_size,
            per_port_limit: cfg.switch.mac_limit_per_port as u32,
            aging_ns: cfg.switch.mac_aging.as_nanos() as u64,
            max_ports: (cfg.ports.len() + cfg.vteps.len()).max(1),
        };
        let FdbGroup {
            mut workers,
            mut control,
        } = FdbGroup::new(1, fdb_cfg, ReplicaConfig::default()).unwrap();
        for s in &cfg.static_fdb {
            let vlan = cfg.networks[s.network.index()].local_vlan;
            control
                .add_static(vlan, s.mac, Tables::fdb_port(cfg, s.target))
                .unwrap();
        }
        let mut fdb = workers.remove(0);
        fdb.apply_updates(0, usize::MAX);
        let generation = 1;
        Harness {
            control,
            pipeline: Pipeline::new(
                Tables::compile(cfg, generation),
                fdb,
                FlowCache::new(DEFAULT_FLOW_CACHE_SIZE).unwrap(),
            ),
            pool: Pool::new(4096),
            ports: (0..cfg.ports.len())
                .map(|_| MemPort::new(BURST, TxMode::Capture))
                .collect(),
            generation,
        }
    }
}

impl Harness {
    fn switch_burst(&mut self, port: u16, frames: &[Vec<u8>], now: u64) -> Vec<(u16, Vec<u8>)> {
        let p = &mut self.ports[usize::from(port)];
        for f in frames {
            assert!(f.len() <= MAX_FRAME && p.inject(&mut self.pool, f));
        }
        let mut descs = [Desc::EMPTY; BURST];
        let n = p.rx_burst(&mut self.pool, &mut descs);
        assert_eq!(n, frames.len());
        self.pipeline
            .process(PortId(port), &descs[..n], &mut self.pool, now);
        self.pipeline.flush_tx(&mut self.ports, &mut self.pool);
        let mut sent = Vec::new();
        for (i, p) in self.ports.iter_mut().enumerate() {
            sent.extend(p.take_sent().into_iter().map(|f| (i as u16, f)));
        }
        sent
    }
}

impl Sut for Harness {
    fn inject(&mut self, port: u16, f: &[u8], now: u64) -> Outcome {
        let mut out = Outcome {
            sent: Vec::new(),
            action: None,
            dropped: None,
        };
        let sent = self.switch_burst(port, &[f.to_vec()], now);
        (out.action, out.dropped) = self.pipeline.last_decision();
        out.sent = sent.into_iter().map(|(p, f)| (PortIdx(p), f)).collect();
        out
    }
    fn inject_burst(
        &mut self,
        port: u16,
        frames: &[Vec<u8>],
        now: u64,
    ) -> Option<Vec<(u16, Vec<u8>)>> {
        Some(self.switch_burst(port, frames, now))
    }
    fn tick(&mut self, now: u64) {
        self.pipeline.poll(&mut self.ports, &mut self.pool, now);
    }
    fn control(&mut self) -> &mut FdbControl {
        &mut self.control
    }
    fn fdb(&self) -> &Fdb {
        self.pipeline.fdb().fdb()
    }
    fn counters(&self) -> &Counters {
        self.pipeline.counters()
    }
    fn reconfigure(&mut self, cfg: &Config) -> bool {
        assert_eq!(cfg.ports.len(), self.ports.len());
        self.generation += 1;
        self.pipeline
            .set_tables(Tables::compile(cfg, self.generation));
        true
    }
}

// ---------------------------------------------------------------------------------
// Operation sequences
// ---------------------------------------------------------------------------------

/// One step of a test. Indices are folded into the configuration at run time.
#[derive(Clone, Debug)]
pub enum Op {
    /// The clock advances by `dt` × [`TIME_UNIT`], then a frame arrives on a port.
    Inject {
        port: Index,
        frame: FrameSpec,
        dt: u64,
    },
    /// The clock advances, then a poll without traffic (aging sweep).
    Tick {
        dt: u64,
    },
    /// A static entry on a port that carries the network.
    AddStatic {
        net: Index,
        mac: u8,
        port: Index,
    },
    RemoveStatic {
        net: Index,
        mac: u8,
    },
    Flush {
        net: Option<Index>,
        port: Option<Index>,
    },
    /// A port gets a new mode (networks folded into the configuration's).
    Reconfig {
        port: Index,
        mode: PortMode,
    },
    /// The clock advances, then several frames arrive on a port in one batch.
    Burst {
        port: Index,
        frames: Vec<FrameSpec>,
        dt: u64,
    },
    /// The clock advances, then packets arrive on the underlay port (one, or a batch
    /// with [`Harness`]); nothing without an underlay.
    Tunnel {
        pkts: Vec<TunnelSpec>,
        dt: u64,
    },
}

/// Clock steps: mostly under a second or a few, sometimes around the aging time
/// (60 units = exactly 15 s).
pub fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![30 => 0u64..=2, 6 => 3u64..=8, 1 => 56u64..=64, 1 => Just(60u64)]
}

/// Operations; `harness` adds configuration changes and batches of several frames
/// (what only [`Harness`] can do).
pub fn op(harness: bool) -> BoxedStrategy<Op> {
    let inject = (any::<Index>(), frame(), dt()).prop_map(|(port, frame, dt)| Op::Inject {
        port,
        frame,
        dt,
    });
    let tick = dt().prop_map(|dt| Op::Tick { dt });
    let add = (any::<Index>(), 0..MACS, any::<Index>())
        .prop_map(|(net, mac, port)| Op::AddStatic { net, mac, port });
    let remove = (any::<Index>(), 0..MACS).prop_map(|(net, mac)| Op::RemoveStatic { net, mac });
    let flush = (option::of(any::<Index>()), option::of(any::<Index>()))
        .prop_map(|(net, port)| Op::Flush { net, port });
    let change =
        (any::<Index>(), port_mode(4)).prop_map(|(port, mode)| Op::Reconfig { port, mode });
    let burst = (any::<Index>(), vec(frame(), 2..=8), dt())
        .prop_map(|(port, frames, dt)| Op::Burst { port, frames, dt });
    let max = if harness { 6 } else { 1 };
    let tunnel = (
        prop_oneof![3 => Just(1usize), 1 => 2usize..=max.max(2)],
        vec(tunnel_spec(), max),
        dt(),
    )
        .prop_map(move |(n, mut pkts, dt)| {
            pkts.truncate(n.min(max));
            Op::Tunnel { pkts, dt }
        });
    if harness {
        prop_oneof![
            24 => inject,
            2 => tick,
            2 => add,
            1 => remove,
            1 => flush,
            3 => change,
            6 => burst,
            14 => tunnel,
        ]
        .boxed()
    } else {
        prop_oneof![30 => inject, 2 => tick, 2 => add, 1 => remove, 1 => flush, 16 => tunnel]
            .boxed()
    }
}

/// Runs `ops` through `sut` and `model` and compares, after every operation, the
/// outcome (multiset of (port, bytes) sent, decision, drop reason), the live FDB
/// contents, the per-port learned counts and the learning counters.
pub fn run(sut: &mut dyn Sut, model: &mut Model, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = T0;
    let n_ports = model.cfg.ports.len();
    let n_nets = model.cfg.networks.len();
    for (i, op) in ops.iter().enumerate() {
        if let Op::Inject { dt, .. }
        | Op::Tick { dt }
        | Op::Burst { dt, .. }
        | Op::Tunnel { dt, .. } = op
        {
            now += dt * TIME_UNIT;
        }
        let t = now;
        let ctx = |what: String| format!("op {i} ({op:?}) at t={t}: {what}");
        match op {
            Op::Inject { port, frame, .. } => {
                let port = port.index(n_ports) as u16;
                let f = frame.bytes(&model.cfg.ports[usize::from(port)].mode);
                let out = sut.inject(port, &f, now);
                let fdb = sut.fdb();
                let mut resolve = |cands: &[(u16, u32)]| {
                    // The busiest port that lost an entry in the switch.
                    cands
                        .iter()
                        .find(|&&(p, c)| fdb.port_count(PortId(p)) < c)
                        .map_or(cands[0].0, |&(p, _)| p)
                };
                let v = model.inject(port, &f, now, &mut resolve);
                check_outcome(&model.cfg, &out, &v)
                    .map_err(|e| TestCaseError::fail(ctx(format!("frame {f:02x?}\n{e}"))))?;
            }
            Op::Burst { port, frames, .. } => {
                let port = port.index(n_ports) as u16;
                let mode = &model.cfg.ports[usize::from(port)].mode;
                let fs: Vec<Vec<u8>> = frames.iter().map(|f| f.bytes(mode)).collect();
                if !burst(sut, model, port, &fs, now).map_err(|e| TestCaseError::fail(ctx(e)))? {
                    return Ok(());
                }
            }
            Op::Tunnel { pkts, .. } => {
                let Some(up) = model.cfg.underlay.as_ref().map(|u| u.port.0) else {
                    continue;
                };
                let fs: Vec<Vec<u8>> = pkts.iter().map(|p| p.bytes(&model.cfg)).collect();
                if let [f] = fs.as_slice() {
                    let out = sut.inject(up, f, now);
                    let fdb = sut.fdb();
                    let mut resolve = |cands: &[(u16, u32)]| {
                        cands
                            .iter()
                            .find(|&&(p, c)| fdb.port_count(PortId(p)) < c)
                            .map_or(cands[0].0, |&(p, _)| p)
                    };
                    let v = model.inject(up, f, now, &mut resolve);
                    check_outcome(&model.cfg, &out, &v)
                        .map_err(|e| TestCaseError::fail(ctx(format!("packet {f:02x?}\n{e}"))))?;
                } else if !burst(sut, model, up, &fs, now)
                    .map_err(|e| TestCaseError::fail(ctx(e)))?
                {
                    return Ok(());
                }
            }
            Op::Tick { .. } => {
                sut.tick(now);
                model.tick(now);
            }
            Op::AddStatic { net, mac, port } => {
                let n = net.index(n_nets) as u16;
                let carriers = model.carriers(n);
                if carriers.is_empty() {
                    continue;
                }
                let p = carriers[port.index(carriers.len())];
                let vlan = model.cfg.networks[usize::from(n)].local_vlan;
                sut.control()
                    .add_static(vlan, ucast(*mac), PortId(p))
                    .map_err(|e| TestCaseError::fail(ctx(e.to_string())))?;
                // Control changes reach the pipeline at its next poll.
                sut.tick(now);
                model.add_static(n, ucast(*mac), p);
                model.tick(now);
            }
            Op::RemoveStatic { net, mac } => {
                let n = net.index(n_nets) as u16;
                let vlan = model.cfg.networks[usize::from(n)].local_vlan;
                sut.control()
                    .remove_static(vlan, ucast(*mac), now)
                    .map_err(|e| TestCaseError::fail(ctx(e.to_string())))?;
                sut.tick(now);
                model.remove_static(n, ucast(*mac));
                model.tick(now);
            }
            Op::Flush { net, port } => {
                let n = net.map(|x| x.index(n_nets) as u16);
                let p = port.map(|x| x.index(usize::from(model.total_ports())) as u16);
                let vlan = |n: u16| model.cfg.networks[usize::from(n)].local_vlan;
                let (filter, mf) = match (n, p) {
                    (None, None) => (FlushFilter::All, MFlush::All),
                    (Some(n), None) => (FlushFilter::Vlan(vlan(n)), MFlush::Net(n)),
                    (None, Some(p)) => (FlushFilter::Port(PortId(p)), MFlush::Port(p)),
                    (Some(n), Some(p)) => (
                        FlushFilter::VlanPort(vlan(n), PortId(p)),
                        MFlush::NetPort(n, p),
                    ),
                };
                sut.control()
                    .flush(filter, now)
                    .map_err(|e| TestCaseError::fail(ctx(e.to_string())))?;
                sut.tick(now);
                model.flush(mf);
                model.tick(now);
            }
            Op::Reconfig { port, mode } => {
                // Never the underlay port (its role is fixed), which is last.
                let p = port.index(n_ports - usize::from(model.cfg.underlay.is_some()));
                let mut cfg = model.cfg.clone();
                cfg.ports[p].mode = fold_mode(mode, n_nets as u16);
                // The control plane's part: forget what the port no longer carries.
                for n in 0..n_nets as u16 {
                    let before = egress_of(&model.cfg.ports[p].mode, n).is_some();
                    let after = egress_of(&cfg.ports[p].mode, n).is_some();
                    if before && !after {
                        let vlan = model.cfg.networks[usize::from(n)].local_vlan;
                        sut.control()
                            .flush(FlushFilter::VlanPort(vlan, PortId(p as u16)), now)
                            .map_err(|e| TestCaseError::fail(ctx(e.to_string())))?;
                        for (sn, mac, sp) in model.statics() {
                            if sn == n && usize::from(sp) == p {
                                sut.control()
                                    .remove_static(vlan, mac, now)
                                    .map_err(|e| TestCaseError::fail(ctx(e.to_string())))?;
                            }
                        }
                    }
                }
                cfg.static_fdb.retain(|s| match s.target {
                    FdbTarget::Port(p) => {
                        egress_of(&cfg.ports[p.index()].mode, s.network.0).is_some()
                    }
                    FdbTarget::Remote(_) => true,
                });
                prop_assert!(
                    sut.reconfigure(&cfg),
                    "{}",
                    ctx("cannot reconfigure".into())
                );
                sut.tick(now);
                model.reconfigure(&cfg);
                model.tick(now);
            }
        }
        check_state(sut, model, now).map_err(|e| TestCaseError::fail(ctx(e)))?;
    }
    Ok(())
}

/// One batch on `port` through the switch (if it takes batches) and the model; the
/// frames each port sent must be the model's, in order per port (tunnel ports in
/// normalized form). `false`: the sequence must end here.
fn burst(
    sut: &mut dyn Sut,
    model: &mut Model,
    port: u16,
    fs: &[Vec<u8>],
    now: u64,
) -> Result<bool, String> {
    let Some(sent) = sut.inject_burst(port, fs, now) else {
        return Ok(true);
    };
    let fdb = sut.fdb();
    let mut resolve = |cands: &[(u16, u32)]| {
        cands
            .iter()
            .find(|&&(p, c)| fdb.port_count(PortId(p)) < c)
            .map_or(cands[0].0, |&(p, _)| p)
    };
    let ties = model.cov.eviction_ties;
    let vs = model.inject_burst(port, fs, now, &mut resolve);
    if model.cov.eviction_ties != ties {
        // Several evictions in one batch with a free choice among equally busiest
        // ports: the switch's choices cannot be read back one by one. The sequence
        // ends here.
        model.cov.cut_short += 1;
        return Ok(false);
    }
    let mut want: Vec<(u16, Vec<u8>)> = vs
        .into_iter()
        .flat_map(|v| match v {
            Verdict::Forwarded { sent, .. } => sent,
            _ => vec![],
        })
        .collect();
    // Per port in frame order (a stable sort keeps it).
    want.sort_by_key(|&(p, _)| p);
    let mut sent = normalize_all(&model.cfg, &sent)?;
    sent.sort_by_key(|&(p, _)| p);
    if sent != want {
        return Err(format!(
            "burst {fs:02x?}\nswitch sent {sent:02x?}\nmodel {want:02x?}"
        ));
    }
    Ok(true)
}

/// The switch's outcome against the model's verdict.
pub fn check_outcome(cfg: &Config, out: &Outcome, v: &Verdict) -> Result<(), String> {
    let sent: Vec<(u16, Vec<u8>)> = out.sent.iter().map(|(p, b)| (p.0, b.clone())).collect();
    let mut sent = normalize_all(cfg, &sent)?;
    sent.sort();
    let ok = match v {
        Verdict::Control => {
            sent.is_empty()
                && out.action.is_none()
                && out
                    .dropped
                    .is_none_or(|r| [DropReason::NotTunnel, DropReason::Malformed].contains(&r))
                && out
                    .sent
                    .iter()
                    .all(|(p, b)| cfg.underlay.as_ref().is_some_and(|u| u.port == *p) && is_arp(b))
        }
        Verdict::Dropped(why) => {
            sent.is_empty() && out.action.is_none() && out.dropped.is_some_and(|r| why.contains(&r))
        }
        Verdict::StaticMove => {
            sent.is_empty() && out.action.is_none() && out.dropped == Some(DropReason::StaticMove)
        }
        Verdict::Forwarded { action, sent: want } => {
            let dropped = match action {
                Action::Drop(r) => Some(*r),
                _ => None,
            };
            out.action == Some(*action) && out.dropped == dropped && &sent == want
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "switch: action {:?} dropped {:?} sent {:02x?}\nmodel:  {v:02x?}",
            out.action, out.dropped, sent
        ))
    }
}

/// The switch's FDB and learning counters against the model's.
pub fn check_state(sut: &dyn Sut, model: &Model, now: u64) -> Result<(), String> {
    let fdb = sut.fdb();
    let mut live: Vec<(u16, u64, u16, bool)> = fdb
        .iter(now)
        .map(|e| (e.vlan.get(), e.mac.to_u64(), e.port.0, e.is_static))
        .collect();
    live.sort_unstable();
    let want = model.live_entries(now);
    if live != want {
        return Err(format!(
            "FDB (vlan, mac, port, static): switch {live:x?}\nmodel {want:x?}"
        ));
    }
    for p in 0..model.total_ports() {
        let (got, want) = (fdb.port_count(PortId(p)), model.count(p));
        if got != want {
            return Err(format!("port {p}: {got} learned entries, model {want}"));
        }
    }
    let c = sut.counters();
    let got = (
        c.learned,
        c.moves,
        c.learn_port_limit,
        c.unicast,
        c.flooded,
        c.dropped(DropReason::SamePort),
        c.dropped(DropReason::StaticMove),
        c.dropped(DropReason::SplitHorizon),
    );
    let want = (
        model.learned,
        model.moves,
        model.port_limit,
        model.cov.unicast,
        model.cov.flood,
        model.cov.same_port,
        model.cov.static_move,
        model.cov.split_horizon,
    );
    if got != want {
        return Err(format!(
            "counters (learned, moves, port-limit refusals, unicast, flooded, same-port \
             drops, static-move drops, split-horizon drops): switch {got:?}, model {want:?}"
        ));
    }
    Ok(())
}
