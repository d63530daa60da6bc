//! The configuration compiled into the dense tables the pipeline reads per frame: no
//! strings, no maps keyed by names, one array index per question.

use encap::VlanId;
use flowtable::PortId;

use crate::config::{Config, EgressTag, FdbTarget, NetIdx, PortMode};

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
}

/// One port.
#[derive(Debug, Clone)]
pub struct PortEntry {
    /// Ingress classification.
    pub ingress: Ingress,
    /// Per network: how its frames leave this port, `None` if the port does not carry it.
    egress: Box<[Option<EgressTag>]>,
}

/// One network.
#[derive(Debug, Clone)]
pub struct NetEntry {
    /// Its host-local VLAN: the FDB's key.
    pub local_vlan: VlanId,
    /// Ports that carry it, in port order (the flood list).
    pub members: Box<[PortId]>,
}

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Bumped on every change: part of every cached decision's stamp.
    pub generation: u64,
    /// Indexed by port number.
    pub ports: Vec<PortEntry>,
    /// Indexed by network number.
    pub nets: Vec<NetEntry>,
}

impl Tables {
    /// Compiles `cfg`, stamping it with `generation`.
    pub fn compile(cfg: &Config, generation: u64) -> Tables {
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
                    .map(|(i, _)| PortId(i as u16))
                    .collect(),
            })
            .collect();
        let ports = cfg
            .ports
            .iter()
            .map(|p| {
                let ingress = match &p.mode {
                    PortMode::Access { network } => Ingress::Access { net: network.0 },
                    PortMode::Trunk { vlans, native } => {
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
                PortEntry { ingress, egress }
            })
            .collect();
        Tables {
            generation,
            ports,
            nets,
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

    /// How frames of `net` leave `port`: `None` if the port does not carry it.
    #[inline]
    pub fn egress(&self, port: PortId, net: u16) -> Option<EgressTag> {
        *self.ports.get(port.index())?.egress.get(usize::from(net))?
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
        }
    }
}
