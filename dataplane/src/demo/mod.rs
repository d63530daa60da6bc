//! `vswitch demo`: a small cloud switched in memory, for a first look without netdevs.
//!
//! Two tenants share the host with overlapping MAC and IP addresses: `tenant-a` has two VMs
//! on access ports and reaches a third host through a trunk (VID 100); `tenant-b` reuses the
//! same addresses on its own VMs and VID 200. The demo sends ARP and ICMP between them
//! through the real pipeline ([`OfflineSwitch`]) and shows each frame's path, the learned
//! MAC table and the counters: floods stay inside a tenant, replies are unicast once the
//! MACs are learned, trunk frames carry their tenant's VID.
//!
//! Part two ([`overlay`]) joins two such hosts over VXLAN and GRE.

mod overlay;

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use encap::arp::{self, ArpRepr, Operation};
use encap::ethernet::{self, EtherType, EthernetRepr};
use encap::{MacAddr, ETH_HLEN};

use crate::config::{Config, PortIdx};
use crate::offline::{OfflineError, OfflineSwitch};
use crate::pipeline::Action;

/// The demo's configuration.
pub const DEMO_CONFIG: &str = r#"
[switch]
mac_aging_secs = 300

[[network]]
name = "tenant-a"
segment = "local"

[[network]]
name = "tenant-b"
segment = "local"

[[port]]
name = "a-vm1"
mode = "access"
network = "tenant-a"

[[port]]
name = "a-vm2"
mode = "access"
network = "tenant-a"

[[port]]
name = "b-vm1"
mode = "access"
network = "tenant-b"

[[port]]
name = "b-vm2"
mode = "access"
network = "tenant-b"

[[port]]
name = "uplink"
mode = "trunk"
vlans = { 100 = "tenant-a", 200 = "tenant-b" }
"#;

pub(crate) fn arp_frame(
    op: Operation,
    src: MacAddr,
    dst: MacAddr,
    sip: Ipv4Addr,
    tip: Ipv4Addr,
) -> Vec<u8> {
    let mut f = vec![0u8; ETH_HLEN + arp::PACKET_LEN];
    EthernetRepr {
        dst,
        src,
        ethertype: EtherType::Arp,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut f[..]));
    ArpRepr {
        operation: op,
        sender_mac: src,
        sender_ip: sip,
        target_mac: if op == Operation::Request {
            MacAddr::ZERO
        } else {
            dst
        },
        target_ip: tip,
    }
    .emit(&mut arp::Packet::new_unchecked(&mut f[ETH_HLEN..]));
    f
}

fn tagged(mut f: Vec<u8>, vid: u16) -> Vec<u8> {
    let tag = [0x81, 0x00, (vid >> 8) as u8, vid as u8];
    f.splice(12..12, tag);
    f
}

/// Runs the demo and returns its report.
pub fn run() -> Result<String, DemoError> {
    let cfg = Config::from_str(DEMO_CONFIG, "demo.toml")?;
    let port = |name: &str| cfg.port_by_name(name).ok_or(DemoError::Missing);
    let (a1, a2, b1, b2, up) = (
        port("a-vm1")?,
        port("a-vm2")?,
        port("b-vm1")?,
        port("b-vm2")?,
        port("uplink")?,
    );
    let names: Vec<String> = cfg.ports.iter().map(|p| p.name.clone()).collect();
    let mut sw = OfflineSwitch::new(cfg.clone())?;

    // The same MACs and IPs in both tenants.
    let vm1 = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
    let vm2 = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 2]);
    let remote = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 3]);
    let (ip1, ip2, ip3) = (
        Ipv4Addr::new(198, 19, 0, 1),
        Ipv4Addr::new(198, 19, 0, 2),
        Ipv4Addr::new(198, 19, 0, 3),
    );
    let bc = MacAddr::BROADCAST;
    let steps: Vec<(&str, PortIdx, Vec<u8>)> = vec![
        (
            "tenant-a vm1 asks who has .2 (broadcast)",
            a1,
            arp_frame(Operation::Request, vm1, bc, ip1, ip2),
        ),
        (
            "tenant-a vm2 replies (unicast to vm1)",
            a2,
            arp_frame(Operation::Reply, vm2, vm1, ip2, ip1),
        ),
        (
            "tenant-b vm1, same MAC and IP, asks the same",
            b1,
            arp_frame(Operation::Request, vm1, bc, ip1, ip2),
        ),
        (
            "tenant-b vm2 replies",
            b2,
            arp_frame(Operation::Reply, vm2, vm1, ip2, ip1),
        ),
        (
            "remote host of tenant-a (VID 100) asks for .1",
            up,
            tagged(arp_frame(Operation::Request, remote, bc, ip3, ip1), 100),
        ),
        (
            "tenant-a vm1 replies: leaves the trunk with VID 100",
            a1,
            arp_frame(Operation::Reply, vm1, remote, ip1, ip3),
        ),
        (
            "remote host of tenant-b (VID 200) asks for .1",
            up,
            tagged(arp_frame(Operation::Request, remote, bc, ip3, ip1), 200),
        ),
        (
            "tenant-b vm1 replies: leaves the trunk with VID 200",
            b1,
            arp_frame(Operation::Reply, vm1, remote, ip1, ip3),
        ),
        (
            "a frame tagged VID 200 on tenant-a's access port is dropped",
            a1,
            tagged(arp_frame(Operation::Request, vm1, bc, ip1, ip2), 200),
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vswitch demo: two tenants with overlapping addresses on one switch\n"
    );
    let _ = writeln!(out, "{}", DEMO_CONFIG.trim());
    let _ = writeln!(out);
    for (i, (what, port, frame)) in steps.iter().enumerate() {
        let now = (i as u64 + 1) * 1_000_000_000;
        let o = sw.inject(*port, frame, now);
        let decision = match (o.action, o.dropped) {
            (_, Some(r)) => format!("dropped ({r})"),
            (Some(Action::Unicast(_)), _) => "unicast".to_string(),
            (Some(Action::Flood), _) => "flood".to_string(),
            _ => "dropped".to_string(),
        };
        let outs: Vec<String> = o
            .sent
            .iter()
            .map(|(p, bytes)| {
                let tag = if bytes.len() >= 16 && bytes[12..14] == [0x81, 0x00] {
                    format!(" VID {}", u16::from_be_bytes([bytes[14] & 0x0f, bytes[15]]))
                } else {
                    String::new()
                };
                format!("{}{tag}", names[p.index()])
            })
            .collect();
        let _ = writeln!(
            out,
            "{:>2}. in {:<7} {:<58} -> {decision}{}{}",
            i + 1,
            names[port.index()],
            what,
            if outs.is_empty() { "" } else { " to " },
            outs.join(", ")
        );
    }
    let now = steps.len() as u64 * 1_000_000_000;
    let _ = writeln!(out, "\nMAC table (like ovs-appctl fdb/show):");
    mac_table(&mut out, &sw, &names, now);
    let c = sw.pipeline().counters();
    let _ = writeln!(
        out,
        "\nCounters: unicast {} flooded {} learned {} moves {} dropped {}",
        c.unicast,
        c.flooded,
        c.learned,
        c.moves,
        c.total_drops()
    );
    overlay::run(&mut out)?;
    Ok(out)
}

/// Writes the MAC table of `sw` at `now` like `ovs-appctl fdb/show`; `names` names the
/// ports (tunnel ports included).
pub(crate) fn mac_table(out: &mut String, sw: &OfflineSwitch, names: &[String], now: u64) {
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    let _ = writeln!(out, " {:<width$} VLAN  MAC                age", "port");
    let mut rows: Vec<_> = sw.pipeline().fdb().fdb().iter(now).collect();
    rows.sort_by_key(|e| (e.vlan, e.mac));
    for e in rows {
        let _ = writeln!(
            out,
            " {:<width$} {:>4}  {}  {}",
            names.get(e.port.index()).map_or("?", String::as_str),
            e.vlan,
            e.mac,
            if e.is_static {
                "static".to_string()
            } else {
                format!("{}", e.age_ns / 1_000_000_000)
            }
        );
    }
}

/// Demo failures (a bug in the demo's own configuration).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The demo configuration did not parse.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The switch could not be built.
    #[error(transparent)]
    Switch(#[from] OfflineError),
    /// A port of the demo is missing.
    #[error("demo configuration lacks a port")]
    Missing,
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_runs_and_isolates() {
        let out = super::run().unwrap();
        assert!(
            out.contains("tenant-a vm2 replies (unicast to vm1)"),
            "{out}"
        );
        // Step 1 floods inside tenant-a only: to a-vm2 and the uplink with VID 100.
        let line1 = out.lines().find(|l| l.starts_with(" 1.")).unwrap();
        assert!(line1.ends_with("flood to a-vm2, uplink VID 100"), "{line1}");
        let line3 = out.lines().find(|l| l.starts_with(" 3.")).unwrap();
        assert!(line3.ends_with("flood to b-vm2, uplink VID 200"), "{line3}");
        let line9 = out.lines().find(|l| l.starts_with(" 9.")).unwrap();
        assert!(line9.contains("dropped (tagged_on_access)"), "{line9}");
    }
}
