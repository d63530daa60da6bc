//! The configuration compiled into the dense tables the pipeline reads per frame: no
//! strings, no maps keyed by names, one array index per question.
//!
//! Port numbers ([`PortId`]) name the configuration's ports (`[[port]]`s, physnet
//! ports, the underlay port) and one *tunnel port* per remote VTEP, as Open vSwitch has
//! one tunnel port per remote host: the FDB learns a MAC against the tunnel port of the
//! VTEP it came from, and a network's flood list holds the tunnel ports of its
//! `remote_vteps`. Which number each has is a [`PortLayout`]: offline and at start the
//! dense one (configuration ports `0..ports`, then tunnel ports `ports..ports + vteps`);
//! a running switch that adds and removes ports keeps every number stable instead (a
//! port or VTEP keeps its number for as long as it exists, a new one gets a number no
//! one has, see `runtime::slots`), so that the FDB entries and counters of untouched
//! ports never need renumbering. Numbers no port has are holes: an entry that takes
//! nothing and carries nothing.

use core::net::IpAddr;

use encap::tunnel::DecapConfig;
use encap::{GreKey, MacAddr, VlanId, Vni};
use flowtable::PortId;
use hashbrown::HashMap;

use super::security::Security;
use crate::config::{Config, EgressTag, FdbTarget, NetIdx, PortMode, PortRole, Segment};

/// Sentinel for "no network" in the VID map.
const NONE: u16 = u16::MAX;

/// How a port classifies received frames.
#[derive(Debug, Clone)]
pub enum Ingress {
    /// Untagged and priority-tagged frames belong to `net`; tagged ones are dropped.
    Access {
        /// The network.
        net: u16,
    },
    /// Tagged frames by VID; untagged and priority-tagged ones to `native`.
    Trunk {
        /// VID → network index, [`NONE`] when not carried.
        vid_map: Box<[u16; 4096]>,
        /// Native network.
        native: Option<u16>,
    },
    /// The underlay port: tunnel packets are decapsulated, ARP/ND for the local VTEP
    /// answered, anything else dropped.
    Underlay,
    /// No configuration port has this number (a hole, or a tunnel port): anything
    /// received is dropped.
    Absent,
}

/// How a frame of a network leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Out of a configuration port, untagged or with a VID.
    Tag(EgressTag),
    /// Encapsulated toward remote VTEP number `.0`, out of the underlay port.
    Tunnel(u16),
}

/// One port number.
#[derive(Debug, Clone)]
pub struct PortEntry {
    /// Ingress classification.
    pub ingress: Ingress,
    /// Per network: how its frames leave this port, `None` if the port does not carry it.
    egress: Box<[Option<EgressTag>]>,
    /// The remote VTEP whose tunnel port this number is.
    tunnel: Option<u16>,
    /// Port security, if on.
    pub security: Option<Box<Security>>,
    /// Storm control: flooded frames per second from this port that this worker
    /// takes (the port's limit split over the workers' queues); 0 = no limit.
    pub storm_pps: u32,
    /// New MACs per second this worker learns from this port (the cap split over the
    /// workers); 0 = no cap.
    pub learn_rate: u32,
}

impl PortEntry {
    /// A number that is no configuration port.
    fn absent() -> PortEntry {
        PortEntry {
            ingress: Ingress::Absent,
            egress: Box::new([]),
            tunnel: None,
            security: None,
            storm_pps: 0,
            learn_rate: 0,
        }
    }
}

/// Where a configuration's ports and remote VTEPs sit in the port-number space.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortLayout {
    /// Per configuration port ([`crate::config::PortIdx`] order): its number.
    pub ports: Vec<PortId>,
    /// Per remote VTEP ([`crate::config::VtepIdx`] order): its tunnel port's number.
    pub vteps: Vec<PortId>,
}

/// What a port number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOwner {
    /// A configuration port.
    Port(crate::config::PortIdx),
    /// The tunnel port of a remote VTEP.
    Vtep(crate::config::VtepIdx),
}

impl PortLayout {
    /// Configuration ports `0..ports`, then tunnel ports: the numbering of a switch
    /// whose ports never change (offline, replay, trace) and of a switch at start.
    pub fn dense(cfg: &Config) -> PortLayout {
        let n = cfg.ports.len();
        PortLayout {
            ports: (0..n).map(|i| PortId(i as u16)).collect(),
            vteps: (0..cfg.vteps.len())
                .map(|v| PortId((n + v) as u16))
                .collect(),
        }
    }

    /// The size of the number space: one more than the highest number.
    pub fn slots(&self) -> usize {
        self.ports
            .iter()
            .chain(&self.vteps)
            .map(|p| p.index() + 1)
            .max()
            .unwrap_or(0)
    }

    /// The number of configuration port `p`.
    pub fn port(&self, p: crate::config::PortIdx) -> Option<PortId> {
        self.ports.get(p.index()).copied()
    }

    /// The tunnel port number of remote VTEP `v`.
    pub fn vtep(&self, v: crate::config::VtepIdx) -> Option<PortId> {
        self.vteps.get(v.index()).copied()
    }

    /// The FDB port of a static entry's target.
    pub fn fdb_port(&self, target: FdbTarget) -> Option<PortId> {
        match target {
            FdbTarget::Port(p) => self.port(p),
            FdbTarget::Remote(v) => self.vtep(v),
        }
    }

    /// What number `id` stands for, if anything.
    pub fn owner(&self, id: PortId) -> Option<PortOwner> {
        if let Some(i) = self.ports.iter().position(|&p| p == id) {
            return Some(PortOwner::Port(crate::config::PortIdx(i as u16)));
        }
        let v = self.vteps.iter().position(|&p| p == id)?;
        Some(PortOwner::Vtep(crate::config::VtepIdx(v as u16)))
    }
}

/// A network's overlay segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// VXLAN with this VNI.
    Vxlan(Vni),
    /// GRE with this key.
    Gre(GreKey),
}

/// One network.
#[derive(Debug, Clone)]
pub struct NetEntry {
    /// Its host-local VLAN: the FDB's key.
    pub local_vlan: VlanId,
    /// Ports that carry it, in port order, then its remote VTEPs' tunnel ports (the
    /// flood list).
    pub members: Box<[PortId]>,
    /// The overlay segment of a vxlan/gre network.
    pub overlay: Option<Overlay>,
    /// Learned entries allowed in it (`mac_limit`); 0 = no limit.
    pub mac_limit: u32,
}

/// One remote VTEP (tunnel port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VtepEntry {
    /// Its tunnel port's number.
    pub port: PortId,
    /// Its address.
    pub ip: IpAddr,
    /// Where its packets go on the underlay link: itself when on-link, else the
    /// gateway; `None` when off-link without a gateway (its frames are dropped).
    pub next_hop: Option<IpAddr>,
}

/// The underlay: the local VTEP.
#[derive(Debug, Clone)]
pub struct UnderlayTable {
    /// The underlay port.
    pub port: PortId,
    /// Local VTEP address.
    pub local_ip: IpAddr,
    /// `local_ip` in [`encap::tunnel::OuterInfo::src_ip_bits`] form.
    pub local_ip_bits: u128,
    /// Source MAC of tunnel frames (`None`: the netdev's, set by the port's owner).
    pub local_mac: Option<MacAddr>,
    /// Underlay MTU.
    pub mtu: u16,
    /// DF on outer IPv4.
    pub df: bool,
    /// How received tunnel packets are checked.
    pub decap: DecapConfig,
    /// VNI → network.
    pub vni: HashMap<u32, u16>,
    /// GRE key → network.
    pub gre_key: HashMap<u32, u16>,
    /// Remote address ([`ip_bits`]) → VTEP number.
    pub vtep_by_ip: HashMap<u128, u16>,
    /// Static neighbours.
    pub neighbors: Vec<(IpAddr, MacAddr)>,
}

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Bumped on every change: part of every cached decision's stamp.
    pub generation: u64,
    /// Indexed by port number: configuration ports, tunnel ports and holes (see
    /// [`PortLayout`]).
    pub ports: Vec<PortEntry>,
    /// Indexed by network number.
    pub nets: Vec<NetEntry>,
    /// Remote VTEPs, by [`crate::config::VtepIdx`]; each names its tunnel port.
    pub vteps: Vec<VtepEntry>,
    /// The local VTEP, when configured.
    pub underlay: Option<UnderlayTable>,
    /// The l2population ARP responder: [`arp_key`]`(network, IPv4)` → MAC.
    pub arp: HashMap<u64, MacAddr>,
    /// Whether any port has a learning-rate cap (the learn stage skips the check
    /// otherwise).
    pub learn_caps: bool,
    /// Whether any port has a storm-control limit (floods skip the check otherwise).
    pub storm_limits: bool,
}

/// The ARP responder's key of an IPv4 address in a network.
#[inline]
pub fn arp_key(net: u16, ip: core::net::Ipv4Addr) -> u64 {
    u64::from(net) << 32 | u64::from(ip.to_bits())
}

/// An address as 128 bits, IPv4 mapped into `::ffff:0:0/96` (the form decapsulation
/// reports).
#[inline]
pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => 0xffff << 32 | u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

/// Whether `ip` is inside `net/len`.
fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        _ => false,
    }
}

impl Tables {
    /// Compiles `cfg` in the dense numbering ([`PortLayout::dense`]), stamping it with
    /// `generation`.
    pub fn compile(cfg: &Config, generation: u64) -> Tables {
        Tables::compile_with(cfg, generation, &PortLayout::dense(cfg))
    }

    /// Compiles `cfg` with its ports numbered by `layout`, stamping it with
    /// `generation`. `layout` must name every port and VTEP of `cfg` (ones it misses
    /// carry nothing).
    pub fn compile_with(cfg: &Config, generation: u64, layout: &PortLayout) -> Tables {
        let port_id = |i: usize| layout.ports.get(i).copied();
        let vtep_id = |v: usize| layout.vteps.get(v).copied();
        let nets = cfg
            .networks
            .iter()
            .enumerate()
            .map(|(n, net)| NetEntry {
                local_vlan: net.local_vlan,
                members: cfg
                    .ports
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.mode.carries(NetIdx(n as u16)))
                    .filter_map(|(i, _)| port_id(i))
                    .chain(net.remote_vteps.iter().filter_map(|v| vtep_id(v.index())))
                    .collect(),
                overlay: match net.segment {
                    Segment::Vxlan { vni } => Some(Overlay::Vxlan(vni)),
                    Segment::Gre { key } => Some(Overlay::Gre(key)),
                    _ => None,
                },
                mac_limit: net.mac_limit,
            })
            .collect();
        let workers = cfg.switch.workers;
        let entries = cfg.ports.iter().map(|p| {
            let ingress = match (&p.mode, p.role) {
                (_, PortRole::Underlay) => Ingress::Underlay,
                (PortMode::Access { network }, _) => Ingress::Access { net: network.0 },
                (PortMode::Trunk { vlans, native }, _) => {
                    let mut vid_map = Box::new([NONE; 4096]);
                    for &(vid, net) in vlans {
                        vid_map[usize::from(vid.get())] = net.0;
                    }
                    Ingress::Trunk {
                        vid_map,
                        native: native.map(|n| n.0),
                    }
                }
            };
            let egress = (0..cfg.networks.len())
                .map(|n| p.mode.egress(NetIdx(n as u16)))
                .collect();
            // A port's rate limits are split over the workers (each owns one of its
            // queues), rounded up so that a limit is never 0 (= none) by the split.
            let per_worker = |rate: u32| match rate {
                0 => 0,
                r => r.div_ceil(u32::try_from(workers).unwrap_or(1).max(1)),
            };
            PortEntry {
                ingress,
                egress,
                tunnel: None,
                security: p
                    .policy
                    .security
                    .as_ref()
                    .map(|s| Box::new(Security::new(s))),
                storm_pps: per_worker(
                    p.policy
                        .storm_control_pps
                        .unwrap_or(cfg.switch.storm_control_pps),
                ),
                learn_rate: match p.role {
                    PortRole::Underlay => 0,
                    _ => per_worker(cfg.switch.mac_learn_rate_per_port),
                },
            }
        });
        let mut ports = vec![PortEntry::absent(); layout.slots()];
        for (i, e) in entries.enumerate() {
            if let Some(slot) = port_id(i).and_then(|id| ports.get_mut(id.index())) {
                *slot = e;
            }
        }
        for (v, id) in layout.vteps.iter().enumerate() {
            if let Some(slot) = ports.get_mut(id.index()) {
                slot.tunnel = Some(v as u16);
            }
        }
        let u = cfg.underlay.as_ref();
        let vteps = cfg
            .vteps
            .iter()
            .enumerate()
            .map(|(v, &ip)| VtepEntry {
                port: vtep_id(v).unwrap_or(PortId(u16::MAX)),
                ip,
                next_hop: u.and_then(|u| match u.prefix_len {
                    Some(len) if !in_prefix(ip, u.local_ip, len) => u.gateway,
                    _ => Some(ip),
                }),
            })
            .collect();
        let underlay = u.map(|u| {
            let mut vni = HashMap::new();
            let mut gre_key = HashMap::new();
            for (i, n) in cfg.networks.iter().enumerate() {
                match n.segment {
                    Segment::Vxlan { vni: v } => {
                        vni.insert(v.get(), i as u16);
                    }
                    Segment::Gre { key } => {
                        gre_key.insert(key.get(), i as u16);
                    }
                    _ => {}
                }
            }
            UnderlayTable {
                port: port_id(u.port.index()).unwrap_or(PortId(u16::MAX)),
                local_ip: u.local_ip,
                local_ip_bits: ip_bits(u.local_ip),
                local_mac: u.local_mac,
                mtu: u.mtu,
                df: u.df,
                decap: DecapConfig {
                    vxlan_port: u.vxlan_port,
                    ..DecapConfig::default()
                },
                vni,
                gre_key,
                vtep_by_ip: cfg
                    .vteps
                    .iter()
                    .enumerate()
                    .map(|(i, &ip)| (ip_bits(ip), i as u16))
                    .collect(),
                neighbors: u.neighbors.clone(),
            }
        });
        let arp = cfg
            .arp
            .iter()
            .map(|a| (arp_key(a.network.0, a.ip), a.mac))
            .collect();
        let learn_caps = ports.iter().any(|p| p.learn_rate != 0);
        let storm_limits = ports.iter().any(|p| p.storm_pps != 0);
        Tables {
            generation,
            ports,
            nets,
            vteps,
            underlay,
            arp,
            learn_caps,
            storm_limits,
        }
    }

    /// The FDB port of a static entry's target: config ports are `PortId(0..ports)`,
    /// remote VTEPs (tunnel ports) follow them, `PortId(ports + vtep)`.
    pub fn fdb_port(cfg: &Config, target: FdbTarget) -> PortId {
        match target {
            FdbTarget::Port(p) => PortId(p.0),
            FdbTarget::Remote(v) => PortId((cfg.ports.len() + v.index()) as u16),
        }
    }

    /// The size of the port-number space: configuration ports, tunnel ports, holes.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// The remote VTEP number of `port`, if it is a tunnel port.
    #[inline]
    pub fn vtep_of(&self, port: PortId) -> Option<u16> {
        self.ports.get(port.index())?.tunnel
    }

    /// How frames of `net` leave `port`: `None` if the port does not carry it. Tunnel
    /// ports carry every overlay network (a MAC may be learned behind any VTEP).
    #[inline]
    pub fn egress(&self, port: PortId, net: u16) -> Option<Egress> {
        let p = self.ports.get(port.index())?;
        match p.tunnel {
            None => p
                .egress
                .get(usize::from(net))
                .copied()
                .flatten()
                .map(Egress::Tag),
            Some(v) => {
                self.nets.get(usize::from(net))?.overlay?;
                Some(Egress::Tunnel(v))
            }
        }
    }
}

impl Ingress {
    /// The network of a frame with outer VID `vid` (`None`: untagged or priority tag).
    #[inline]
    pub fn classify(&self, vid: Option<VlanId>) -> Result<u16, crate::counters::DropReason> {
        use crate::counters::DropReason;
        match (self, vid) {
            (Ingress::Access { net }, None) => Ok(*net),
            (Ingress::Access { .. }, Some(_)) => Err(DropReason::TaggedOnAccess),
            (Ingress::Trunk { native, .. }, None) => native.ok_or(DropReason::NoNative),
            (Ingress::Trunk { vid_map, .. }, Some(v)) => match vid_map[usize::from(v.get())] {
                NONE => Err(DropReason::UnknownVid),
                net => Ok(net),
            },
            (Ingress::Underlay, _) => Err(DropReason::NotTunnel),
            (Ingress::Absent, _) => Err(DropReason::NoPort),
        }
    }
}
