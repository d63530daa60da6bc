//! The second part of `vswitch demo`: two compute nodes, each its own switch, joined by
//! an underlay link. Tenant A's network is a VXLAN overlay (VNI 5001), tenant B's a GRE
//! one (key 5002); both tenants use the same MAC and IP addresses on both hosts. No
//! neighbour is configured: each switch finds the other's MAC by ARP on the underlay
//! while the first frames toward it wait. Everything a switch sends on its underlay
//! port is delivered to the other's, as a cable would.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use encap::arp::Operation;
use encap::parse::{parse, Tunnel, L3, L4};
use encap::MacAddr;

use super::{arp_frame, DemoError};
use crate::config::Config;
use crate::offline::OfflineSwitch;

/// The configuration of host `n` (1 or 2), whose peer is host `3 - n`.
pub fn host_config(n: u8) -> String {
    let peer = 3 - n;
    format!(
        r#"[underlay]
port = "uplink"
local_ip = "198.18.0.{n}/24"
local_mac = "02:00:00:00:00:0{n}"

[[network]]
name = "tenant-a"
segment = "vxlan"
id = 5001
remote_vteps = ["198.18.0.{peer}"]

[[network]]
name = "tenant-b"
segment = "gre"
id = 5002
remote_vteps = ["198.18.0.{peer}"]

[[port]]
name = "a-vm"
mode = "access"
network = "tenant-a"

[[port]]
name = "b-vm"
mode = "access"
network = "tenant-b"
"#
    )
}

/// A one-line description of a frame on the underlay.
fn describe_underlay(frame: &[u8]) -> String {
    let Ok(p) = parse(frame, 4789) else {
        return format!("{} bytes", frame.len());
    };
    match (p.l3, p.tunnel, p.l4) {
        (L3::Arp(a), _, _) if a.operation == Operation::Request => {
            format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip)
        }
        (L3::Arp(a), _, _) => format!("ARP {} is-at {}", a.sender_ip, a.sender_mac),
        (
            L3::Ip { src, dst, .. },
            Some(Tunnel::Vxlan { vni, inner_offset }),
            L4::Udp { src_port, .. },
        ) => {
            format!(
                "VXLAN VNI {vni} {src} > {dst} (UDP source port {src_port}) carrying {}",
                describe_inner(&frame[inner_offset..])
            )
        }
        (L3::Ip { src, dst, .. }, Some(Tunnel::Gre { key, inner_offset }), _) => format!(
            "GRE key {} {src} > {dst} carrying {}",
            key.map_or("none".to_string(), |k| k.to_string()),
            describe_inner(&frame[inner_offset..])
        ),
        _ => format!("{} bytes", frame.len()),
    }
}

/// A one-line description of a tenant's frame.
fn describe_inner(frame: &[u8]) -> String {
    match parse(frame, 4789) {
        Ok(p) => match p.l3 {
            L3::Arp(a) if a.operation == Operation::Request => {
                format!("ARP who-has {} tell {}", a.target_ip, a.sender_ip)
            }
            L3::Arp(a) => format!("ARP {} is-at {}", a.sender_ip, a.sender_mac),
            _ => format!("{} > {}", p.l2.src, p.l2.dst),
        },
        Err(_) => format!("{} bytes", frame.len()),
    }
}

/// Runs part two of the demo, appending to `out`.
pub fn run(out: &mut String) -> Result<(), DemoError> {
    let cfgs = [
        Config::from_str(&host_config(1), "host1.toml")?,
        Config::from_str(&host_config(2), "host2.toml")?,
    ];
    let port = |c: &Config, name: &str| c.port_by_name(name).ok_or(DemoError::Missing);
    let uplink = [port(&cfgs[0], "uplink")?, port(&cfgs[1], "uplink")?];
    let names: Vec<Vec<String>> = cfgs
        .iter()
        .map(|c| {
            let mut v: Vec<String> = c.ports.iter().map(|p| p.name.clone()).collect();
            v.extend(c.vteps.iter().map(|ip| format!("tunnel to {ip}")));
            v
        })
        .collect();
    let mut hosts = [
        OfflineSwitch::new(cfgs[0].clone())?,
        OfflineSwitch::new(cfgs[1].clone())?,
    ];
    let vm1 = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
    let vm2 = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 2]);
    let (ip1, ip2) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let bc = MacAddr::BROADCAST;
    // (host index, port name, what, frame)
    let steps: Vec<(usize, &str, &str, Vec<u8>)> = vec![
        (
            0,
            "a-vm",
            "tenant A's VM on host1 asks who has 10.0.0.2",
            arp_frame(Operation::Request, vm1, bc, ip1, ip2),
        ),
        (
            1,
            "a-vm",
            "tenant A's VM on host2 replies",
            arp_frame(Operation::Reply, vm2, vm1, ip2, ip1),
        ),
        (
            0,
            "b-vm",
            "tenant B's VM on host1, same MAC and IP, asks the same",
            arp_frame(Operation::Request, vm1, bc, ip1, ip2),
        ),
        (
            1,
            "b-vm",
            "tenant B's VM on host2 replies",
            arp_frame(Operation::Reply, vm2, vm1, ip2, ip1),
        ),
    ];
    let _ = writeln!(
        out,
        "\nPart 2: two compute nodes joined by an underlay link; tenant A over VXLAN (VNI 5001),\n\
         tenant B over GRE (key 5002), the same addresses in both; the VTEPs find each other by ARP.\n"
    );
    let _ = writeln!(out, "host1.toml:\n{}", host_config(1).trim());
    let _ = writeln!(out);
    let mut now = 100_000_000_000u64;
    for (i, (h, port_name, what, frame)) in steps.into_iter().enumerate() {
        let _ = writeln!(out, "{}. {what}", i + 1);
        let mut queue = VecDeque::from([(h, port(&cfgs[h], port_name)?, frame)]);
        let mut hops = 0;
        while let Some((h, p, f)) = queue.pop_front() {
            hops += 1;
            if hops > 32 {
                break;
            }
            now += 1_000_000;
            let o = hosts[h].inject(p, &f, now);
            let host = format!("host{}", h + 1);
            let verdict = match o.dropped {
                Some(r) => format!(" -> dropped ({r})"),
                None if o.sent.is_empty() => " -> waits".to_string(),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "   {host} in {:<7} {}{verdict}",
                names[h][p.index()],
                if p == uplink[h] {
                    describe_underlay(&f)
                } else {
                    describe_inner(&f)
                }
            );
            for (to, bytes) in o.sent {
                if to == uplink[h] {
                    let _ = writeln!(out, "   {host} out uplink  {}", describe_underlay(&bytes));
                    queue.push_back((1 - h, uplink[1 - h], bytes));
                } else {
                    let _ = writeln!(
                        out,
                        "   {host} out {:<7} {}  (delivered to the VM)",
                        names[h][to.index()],
                        describe_inner(&bytes)
                    );
                }
            }
        }
    }
    for (h, sw) in hosts.iter().enumerate() {
        let _ = writeln!(out, "\nhost{} MAC table:", h + 1);
        super::mac_table(out, sw, &names[h], now);
        let c = sw.pipeline().counters();
        let _ = writeln!(
            out,
            "host{} counters: unicast {} flooded {} learned {} underlay ARP handled {} dropped {}",
            h + 1,
            c.unicast,
            c.flooded,
            c.learned,
            c.underlay_control,
            c.total_drops()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_find_each_other_and_tenants_stay_apart() {
        let mut out = String::new();
        super::run(&mut out).unwrap();
        // Each step ends with the frame delivered to the right tenant's VM on the other host.
        let delivered: Vec<&str> = out.lines().filter(|l| l.contains("(delivered")).collect();
        assert_eq!(delivered.len(), 4, "{out}");
        assert!(delivered[0].starts_with("   host2 out a-vm"), "{out}");
        assert!(delivered[1].starts_with("   host1 out a-vm"), "{out}");
        assert!(delivered[2].starts_with("   host2 out b-vm"), "{out}");
        assert!(delivered[3].starts_with("   host1 out b-vm"), "{out}");
        assert!(
            out.contains("ARP who-has 198.18.0.2 tell 198.18.0.1"),
            "{out}"
        );
        assert!(out.contains("VXLAN VNI 5001"), "{out}");
        assert!(out.contains("GRE key 5002"), "{out}");
        assert!(out.contains("tunnel to 198.18.0.2"), "{out}");
        assert!(!out.contains("dropped ("), "{out}");
    }
}
