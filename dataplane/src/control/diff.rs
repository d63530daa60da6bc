//! What a configuration change keeps.
//!
//! In the dense numbering of the offline switch, port numbers are positions in
//! [`Config::ports`] (then one tunnel port per remote VTEP), so adding or removing a
//! port renumbers the ports after it and every tunnel port. The FDB and the per-port
//! counters are keyed by those numbers: the offline switch moves them to the new
//! numbering with [`ConfigDiff`], keeping the learned entries of every network the
//! change did not touch. (The running switch keeps port numbers stable instead, so
//! that nothing has to move while its workers run: `runtime::slots`.)
//!
//! A learned entry is kept when its network still exists under the same name, local
//! VLAN and segment, and its port (matched by name, a tunnel port by its VTEP's
//! address) still exists and still carries that network. Everything else is dropped,
//! as a flush would. Static entries are not carried: the new configuration has them.

use std::collections::HashMap;
use std::net::IpAddr;

use flowtable::{FdbEntry, PortId};

use crate::config::{Config, NetIdx, StaticFdb};
use crate::pipeline::Tables;

/// The mapping from one configuration's FDB ports and networks to another's.
#[derive(Debug, Clone)]
pub struct ConfigDiff {
    /// Old FDB port number → new one.
    ports: Vec<Option<PortId>>,
    /// Old local VLAN → the new network with the same name, VLAN and segment.
    vlans: HashMap<u16, NetIdx>,
    /// Whether only `[[fdb]]` entries differ.
    statics_only: bool,
    /// New configuration ports (tunnel ports follow).
    new_ports: usize,
}

impl ConfigDiff {
    /// Compares `old` and `new`.
    pub fn new(old: &Config, new: &Config) -> ConfigDiff {
        let new_vtep: HashMap<IpAddr, usize> = new
            .vteps
            .iter()
            .enumerate()
            .map(|(i, &ip)| (ip, i))
            .collect();
        let ports = old
            .ports
            .iter()
            .map(|p| new.port_by_name(&p.name).map(|i| PortId(i.0)))
            .chain(old.vteps.iter().map(|ip| {
                let v = *new_vtep.get(ip)?;
                u16::try_from(new.ports.len() + v).ok().map(PortId)
            }))
            .collect();
        let vlans = old
            .networks
            .iter()
            .filter_map(|n| {
                let i = new.network_by_name(&n.name)?;
                let m = new.network(i)?;
                (m.local_vlan == n.local_vlan && m.segment == n.segment)
                    .then_some((n.local_vlan.get(), i))
            })
            .collect();
        let strip = |c: &Config| {
            let mut c = c.pinned();
            c.static_fdb.clear();
            c
        };
        ConfigDiff {
            ports,
            vlans,
            statics_only: strip(old) == strip(new),
            new_ports: new.ports.len(),
        }
    }

    /// Whether the change is to static entries only (no port, network or VTEP moved):
    /// it can be applied through [`flowtable::FdbControl`] without touching anything else.
    pub fn statics_only(&self) -> bool {
        self.statics_only
    }

    /// The new number of an old FDB port (configuration or tunnel port), if it is
    /// still there.
    pub fn port(&self, old: PortId) -> Option<PortId> {
        self.ports.get(old.index()).copied().flatten()
    }

    /// A learned entry of the old configuration as the new one numbers it, or `None`
    /// if the change drops it (and for static entries).
    pub fn carry(&self, new: &Config, e: &FdbEntry) -> Option<FdbEntry> {
        if e.is_static {
            return None;
        }
        let net = *self.vlans.get(&e.vlan.get())?;
        let port = self.port(e.port)?;
        let carried = match new.ports.get(port.index()) {
            Some(p) => p.mode.carries(net),
            None => port.index() >= self.new_ports && new.network(net)?.segment.is_tunnel(),
        };
        carried.then_some(FdbEntry { port, ..*e })
    }
}

/// The static entries of `old` missing from `new` and those of `new` missing from
/// `old`, as (local VLAN, MAC, FDB port) in each configuration's numbering.
pub fn static_changes(old: &Config, new: &Config) -> (Vec<StaticKey>, Vec<StaticKey>) {
    let keys = |c: &Config| -> Vec<StaticKey> {
        c.static_fdb
            .iter()
            .filter_map(|s| StaticKey::of(c, s))
            .collect()
    };
    let (a, b) = (keys(old), keys(new));
    let removed = a
        .iter()
        .filter(|k| !b.iter().any(|n| n.vlan == k.vlan && n.mac == k.mac))
        .copied()
        .collect();
    let added = b.iter().filter(|k| !a.contains(k)).copied().collect();
    (removed, added)
}

/// A static entry in FDB terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticKey {
    /// The network's local VLAN.
    pub vlan: encap::VlanId,
    /// The MAC.
    pub mac: encap::MacAddr,
    /// The FDB port.
    pub port: PortId,
}

impl StaticKey {
    /// `s` of configuration `c`.
    pub fn of(c: &Config, s: &StaticFdb) -> Option<StaticKey> {
        Some(StaticKey {
            vlan: c.network(s.network)?.local_vlan,
            mac: s.mac,
            port: Tables::fdb_port(c, s.target),
        })
    }
}

/// What changes from `old` to `new`, in words: networks and ports added, removed or
/// changed (by name), and whether the static entries, ARP entries, underlay, physnets or
/// `[switch]` (its keys a reload may change) differ; `no change` when nothing does.
pub fn summary(old: &Config, new: &Config) -> String {
    let net_key = |c: &Config, n: &crate::config::Network| {
        let vteps: Vec<Option<IpAddr>> = n.remote_vteps.iter().map(|&v| c.vtep(v)).collect();
        (
            n.segment.as_str(),
            segment_id(n.segment),
            n.local_vlan,
            vteps,
            n.mac_limit,
        )
    };
    let port_key = |c: &Config, p: &crate::config::Port| {
        let name = |i: NetIdx| c.network(i).map(|n| n.name.clone());
        let nets: Vec<(Option<u16>, Option<String>)> = match &p.mode {
            crate::config::PortMode::Access { network } => vec![(None, name(*network))],
            crate::config::PortMode::Trunk { vlans, native } => vlans
                .iter()
                .map(|&(v, n)| (Some(v.get()), name(n)))
                .chain(native.map(|n| (None, name(n))))
                .collect(),
        };
        (p.ifname.clone(), nets, p.policy.clone())
    };
    let mut parts = Vec::new();
    let mut list = |what: &str, names: Vec<&str>| {
        if !names.is_empty() {
            parts.push(format!("{what} {}", names.join(", ")));
        }
    };
    let old_nets: Vec<&str> = old.networks.iter().map(|n| n.name.as_str()).collect();
    let new_nets: Vec<&str> = new.networks.iter().map(|n| n.name.as_str()).collect();
    list(
        "networks added:",
        not_in(new_nets, |n| old.network_by_name(n).is_some()),
    );
    list(
        "networks removed:",
        not_in(old_nets, |n| new.network_by_name(n).is_some()),
    );
    list(
        "networks changed:",
        new.networks
            .iter()
            .filter(|n| {
                old.network_by_name(&n.name)
                    .and_then(|i| old.network(i))
                    .is_some_and(|o| net_key(old, o) != net_key(new, n))
            })
            .map(|n| n.name.as_str())
            .collect(),
    );
    let old_ports: Vec<&str> = old.ports.iter().map(|p| p.name.as_str()).collect();
    let new_ports: Vec<&str> = new.ports.iter().map(|p| p.name.as_str()).collect();
    list(
        "ports added:",
        not_in(new_ports, |p| old.port_by_name(p).is_some()),
    );
    list(
        "ports removed:",
        not_in(old_ports, |p| new.port_by_name(p).is_some()),
    );
    list(
        "ports changed:",
        new.ports
            .iter()
            .filter(|p| {
                old.port_by_name(&p.name)
                    .and_then(|i| old.port(i))
                    .is_some_and(|o| port_key(old, o) != port_key(new, p))
            })
            .map(|p| p.name.as_str())
            .collect(),
    );
    // Static, ARP, underlay and physnet entries by name (indexes shift with the ports).
    let net_name = |c: &Config, i: NetIdx| c.network(i).map(|n| n.name.clone());
    let port_name = |c: &Config, i: crate::config::PortIdx| c.port(i).map(|p| p.name.clone());
    let statics = |c: &Config| {
        let mut v: Vec<_> = c
            .static_fdb
            .iter()
            .map(|s| {
                let to = match s.target {
                    crate::config::FdbTarget::Port(p) => port_name(c, p),
                    crate::config::FdbTarget::Remote(v) => c.vtep(v).map(|ip| ip.to_string()),
                };
                (net_name(c, s.network), s.mac.to_u64(), to)
            })
            .collect();
        v.sort();
        v
    };
    if statics(old) != statics(new) {
        parts.push(format!(
            "static entries changed ({} now)",
            new.static_fdb.len()
        ));
    }
    let arps = |c: &Config| {
        let mut v: Vec<_> = c
            .arp
            .iter()
            .map(|a| (net_name(c, a.network), a.ip, a.mac.to_u64()))
            .collect();
        v.sort();
        v
    };
    if arps(old) != arps(new) {
        parts.push(format!(
            "ARP responder entries changed ({} now)",
            new.arp.len()
        ));
    }
    let underlay = |c: &Config| {
        c.underlay.as_ref().map(|u| {
            let mut u = u.clone();
            let port = port_name(c, u.port);
            u.port = crate::config::PortIdx(0);
            (u, port)
        })
    };
    if underlay(old) != underlay(new) {
        parts.push("[underlay] changed".into());
    }
    let physnets = |c: &Config| {
        let mut v: Vec<_> = c
            .physnets
            .iter()
            .map(|p| (p.name.clone(), p.mtu, port_name(c, p.port)))
            .collect();
        v.sort();
        v
    };
    if physnets(old) != physnets(new) {
        parts.push("physnets changed".into());
    }
    if old.switch != new.switch {
        parts.push("[switch] changed".into());
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join("; ")
    }
}

/// The names `other` does not have.
fn not_in(names: Vec<&str>, other: impl Fn(&str) -> bool) -> Vec<&str> {
    names.into_iter().filter(|n| !other(n)).collect()
}

/// A segment's VID, VNI or key.
fn segment_id(s: crate::config::Segment) -> Option<u32> {
    use crate::config::Segment;
    match s {
        Segment::Local | Segment::Flat { .. } => None,
        Segment::Vlan { vid, .. } => Some(u32::from(vid.get())),
        Segment::Vxlan { vni } => Some(vni.get()),
        Segment::Gre { key } => Some(key.get()),
    }
}
