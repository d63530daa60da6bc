//! Hardening through the real pipeline, in memory: port security (Neutron's
//! anti-spoofing), storm control, per-network MAC limits, the learning-rate cap, and a
//! port that sprays a million source MACs while two others keep talking.
//!
//! Frames are built with `etherparse` (an independent implementation); each test drives
//! an [`OfflineSwitch`] and checks both what left and the drop counters by reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv6Addr;

use dataplane::config::{Config, NetIdx, PortIdx};
use dataplane::counters::DropReason;
use dataplane::offline::OfflineSwitch;
use dataplane::pipeline::{link_local, Action};
use encap::MacAddr;

const VM1: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 1];
const VM2: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 2];
const VM3: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 3];
const PAIR: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 0x99];
const BCAST: [u8; 6] = [0xff; 6];
const SEC: u64 = 1_000_000_000;

fn switch(toml: &str) -> OfflineSwitch {
    let cfg = Config::from_str(toml, "hardening.toml").expect("config");
    OfflineSwitch::new(cfg).expect("switch")
}

fn udp4(dst: [u8; 6], src: [u8; 6], sip: [u8; 4], dip: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4(sip, dip, 64)
        .udp(ports.0, ports.1)
        .write(&mut out, &[0x42; 18])
        .expect("frame");
    out
}

fn arp(src: [u8; 6], sha: [u8; 6], spa: [u8; 4], op: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BCAST);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[198, 18, 1, 1]);
    f.resize(60, 0);
    f
}

/// An ICMPv6 message of `icmp_type` (with a 16-byte target, as NS/NA have) from `sip`.
fn icmp6(src: [u8; 6], sip: Ipv6Addr, icmp_type: u8, target: Ipv6Addr) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(src, [0x33, 0x33, 0, 0, 0, 1])
        .ipv6(
            sip.octets(),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets(),
            255,
        )
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: icmp_type,
            code_u8: 0,
            bytes5to8: [0; 4],
        })
        .write(&mut out, &target.octets())
        .expect("frame");
    out
}

const SECURED: &str = r#"
[[network]]
name = "net-a"
segment = "local"

[[port]]
name = "vm1"
mode = "access"
network = "net-a"
mac = "fa:16:3e:00:00:01"
ips = ["198.18.1.5", "2001:db8::5"]
allowed_pairs = [ { mac = "fa:16:3e:00:00:99", ip = "198.18.9.0/24" }, { ip = "198.18.1.50" } ]

[[port]]
name = "vm2"
mode = "access"
network = "net-a"
"#;

#[test]
fn port_security_drops_spoofing_and_passes_the_rest() {
    let mut sw = switch(SECURED);
    let vm1 = PortIdx(0);
    let mut t = SEC;
    let mut expect = |sw: &mut OfflineSwitch, frame: Vec<u8>, fate: Option<DropReason>| {
        t += 1000;
        let o = sw.inject(vm1, &frame, t);
        assert_eq!(o.dropped, fate, "frame {frame:02x?}");
        assert_eq!(o.sent.is_empty(), fate.is_some());
    };
    let own = [198, 18, 1, 5];
    let to = [198, 18, 1, 1];
    // Its own MAC and address; a second fixed address; an allowed pair's prefix with
    // the pair's MAC; a pair without a MAC (the port's own).
    expect(&mut sw, udp4(BCAST, VM1, own, to, (1, 2)), None);
    expect(
        &mut sw,
        udp4(BCAST, PAIR, [198, 18, 9, 77], to, (1, 2)),
        None,
    );
    expect(
        &mut sw,
        udp4(BCAST, VM1, [198, 18, 1, 50], to, (1, 2)),
        None,
    );
    // Another MAC; another address; the pair's prefix with the port's MAC.
    expect(
        &mut sw,
        udp4(BCAST, VM3, own, to, (1, 2)),
        Some(DropReason::SpoofedMac),
    );
    expect(
        &mut sw,
        udp4(BCAST, VM1, [198, 18, 1, 6], to, (1, 2)),
        Some(DropReason::SpoofedIp),
    );
    expect(
        &mut sw,
        udp4(BCAST, VM1, [198, 18, 9, 77], to, (1, 2)),
        Some(DropReason::SpoofedIp),
    );
    // DHCP: a client's discover from 0.0.0.0 passes, a server's offer does not.
    expect(
        &mut sw,
        udp4(BCAST, VM1, [0, 0, 0, 0], [255; 4], (68, 67)),
        None,
    );
    expect(
        &mut sw,
        udp4(BCAST, VM1, [0, 0, 0, 0], [255; 4], (1, 2)),
        Some(DropReason::SpoofedIp),
    );
    expect(
        &mut sw,
        udp4(BCAST, VM1, own, [255; 4], (67, 68)),
        Some(DropReason::SpoofedDhcp),
    );
    // ARP: its own address, a probe, another VM's address (spoofing), a sender MAC
    // that is not the frame's.
    expect(&mut sw, arp(VM1, VM1, own, 2), None);
    expect(&mut sw, arp(VM1, VM1, [0, 0, 0, 0], 1), None);
    expect(
        &mut sw,
        arp(VM1, VM1, [198, 18, 1, 1], 2),
        Some(DropReason::SpoofedArp),
    );
    expect(&mut sw, arp(VM1, VM2, own, 2), Some(DropReason::SpoofedArp));
    // IPv6: the fixed address, the MAC's link-local; NA for its own address only;
    // no router advertisements.
    let v6: Ipv6Addr = "2001:db8::5".parse().unwrap();
    let ll = link_local(MacAddr(VM1));
    let other: Ipv6Addr = "2001:db8::6".parse().unwrap();
    expect(&mut sw, icmp6(VM1, v6, 128, v6), None);
    expect(&mut sw, icmp6(VM1, ll, 136, v6), None);
    expect(
        &mut sw,
        icmp6(VM1, ll, 136, other),
        Some(DropReason::SpoofedNd),
    );
    expect(
        &mut sw,
        icmp6(VM1, ll, 134, v6),
        Some(DropReason::SpoofedNd),
    );
    expect(
        &mut sw,
        icmp6(VM1, other, 128, v6),
        Some(DropReason::SpoofedIp),
    );
    expect(&mut sw, icmp6(VM1, Ipv6Addr::UNSPECIFIED, 135, v6), None);

    let c = sw.counters();
    for (r, n) in [
        (DropReason::SpoofedMac, 1),
        (DropReason::SpoofedIp, 4),
        (DropReason::SpoofedDhcp, 1),
        (DropReason::SpoofedArp, 2),
        (DropReason::SpoofedNd, 2),
    ] {
        assert_eq!(c.dropped(r), n, "{r}");
    }
    // A spoofed frame teaches the switch nothing: the spoofed MAC is unknown.
    assert!(sw.fdb_lookup(NetIdx(0), MacAddr(VM3), t).is_none());
    // The unsecured port may send from anything.
    let o = sw.inject(
        PortIdx(1),
        &udp4(BCAST, VM3, [1, 2, 3, 4], to, (1, 2)),
        t + 1,
    );
    assert_eq!(o.dropped, None);
}

#[test]
fn port_security_keys_are_validated() {
    let bad = |port_keys: &str, key: &str| {
        let text = format!(
            "[[network]]\nname = \"n\"\nsegment = \"local\"\n[[port]]\nname = \"p\"\n{port_keys}\n"
        );
        let e = Config::from_str(&text, "bad.toml").expect_err(port_keys);
        let msg = e.to_string();
        assert!(msg.contains(key), "{port_keys}: {msg}");
        assert!(msg.contains("bad.toml:"), "{msg}");
    };
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nips = [\"198.18.1.5\"]",
        "ips",
    );
    bad(
        "mode = \"trunk\"\nvlans = { 10 = \"n\" }\nmac = \"fa:16:3e:00:00:01\"",
        "mac",
    );
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nmac = \"ff:ff:ff:ff:ff:ff\"",
        "mac",
    );
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nmac = \"fa:16:3e:00:00:01\"\nallowed_pairs = [ { ip = \"198.18.1.0/33\" } ]",
        "allowed_pairs.0.ip",
    );
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nmac = \"fa:16:3e:00:00:01\"\nips = [\"0.0.0.0\"]",
        "ips.0",
    );
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nstorm_control_pps = -1",
        "storm_control_pps",
    );
    bad(
        "mode = \"access\"\nnetwork = \"n\"\nallowed_pairs = [ { ip = \"198.18.1.5\", port = 1 } ]",
        "allowed_pairs",
    );
}

#[test]
fn storm_control_caps_flooding_not_unicast() {
    let mut sw = switch(
        r#"
[switch]
storm_control_pps = 100

[[network]]
name = "n"
segment = "local"

[[port]]
name = "a"
mode = "access"
network = "n"

[[port]]
name = "b"
mode = "access"
network = "n"

[[port]]
name = "c"
mode = "access"
network = "n"
storm_control_pps = 0
"#,
    );
    let (a, b, c) = (PortIdx(0), PortIdx(1), PortIdx(2));
    let bcast = |src| udp4(BCAST, src, [198, 18, 1, 1], [198, 18, 1, 255], (1, 2));
    // b is known, so a's unicast to it is not flooding.
    assert!(sw.inject(b, &bcast(VM2), SEC).dropped.is_none());
    let mut flooded = 0;
    let mut storm = 0;
    let mut unicast = 0;
    // 1000 broadcasts and 1000 unicasts from a in one second.
    for i in 0..1000u64 {
        let t = 2 * SEC + i * 1_000_000;
        match sw.inject(a, &bcast(VM1), t).dropped {
            None => flooded += 1,
            Some(DropReason::StormControl) => storm += 1,
            Some(r) => panic!("unexpected drop {r}"),
        }
        let o = sw.inject(a, &udp4(VM2, VM1, [1; 4], [2; 4], (1, 2)), t);
        assert_eq!(o.action, Some(Action::Unicast(flowtable::PortId(1))));
        unicast += 1;
    }
    // 100 per second, with a burst of a tenth of that: 10 + 100 over one second.
    assert!((100..=111).contains(&flooded), "flooded {flooded}");
    assert_eq!(flooded + storm, 1000);
    assert_eq!(unicast, 1000);
    assert_eq!(sw.counters().dropped(DropReason::StormControl), storm);
    // A port with `storm_control_pps = 0` has no limit.
    for i in 0..1000u64 {
        let o = sw.inject(c, &bcast(VM3), 4 * SEC + i);
        assert_eq!(o.dropped, None);
    }
}

#[test]
fn network_mac_limit_and_learning_rate_cap() {
    let mut sw = switch(
        r#"
[switch]
mac_learn_rate_per_port = 50

[[network]]
name = "small"
segment = "local"
mac_limit = 10

[[network]]
name = "big"
segment = "local"

[[port]]
name = "s1"
mode = "access"
network = "small"

[[port]]
name = "b1"
mode = "access"
network = "big"
"#,
    );
    let mac = |i: u32| {
        let b = i.to_be_bytes();
        [0x02, 0, b[0], b[1], b[2], b[3]]
    };
    let frame = |src| udp4(BCAST, src, [1; 4], [2; 4], (1, 2));
    // 20 new MACs into the small network, slowly: only 10 are learned, and the frames
    // still pass.
    for i in 0..20 {
        let o = sw.inject(PortIdx(0), &frame(mac(i)), SEC + u64::from(i) * SEC);
        assert!(o.dropped.is_none());
    }
    let c = sw.counters();
    assert_eq!(c.learned, 10);
    assert_eq!(c.learn_network_limit, 10);
    // 1000 new MACs into the big network within one second: the cap (50/s, a burst
    // of 5) lets about 55 through.
    let t0 = 100 * SEC;
    for i in 0..1000 {
        let o = sw.inject(
            PortIdx(1),
            &frame(mac(1000 + i)),
            t0 + u64::from(i) * 1_000_000,
        );
        assert!(o.dropped.is_none());
    }
    let c = sw.counters();
    let learned = c.learned - 10;
    assert!((50..=56).contains(&learned), "learned {learned}");
    assert_eq!(c.learn_rate_limited, 1000 - learned);
    // A known source is still refreshed while the cap is reached.
    let known = mac(1000);
    assert!(sw.fdb_lookup(NetIdx(1), MacAddr(known), sw.now()).is_some());
}

/// One port sprays a million random source MACs into a small table while two others
/// talk: their frames are always delivered to each other, never flooded, and their
/// entries are never evicted (the FDB's fair eviction makes the sprayer recycle its own).
#[test]
fn mac_spray_cannot_evict_or_block_others() {
    let mut sw = switch(
        r#"
[switch]
mac_table_size = 4096

[[network]]
name = "n"
segment = "local"

[[port]]
name = "attacker"
mode = "access"
network = "n"

[[port]]
name = "b"
mode = "access"
network = "n"

[[port]]
name = "c"
mode = "access"
network = "n"
"#,
    );
    let (atk, b, c) = (PortIdx(0), PortIdx(1), PortIdx(2));
    let to_c = udp4(VM3, VM2, [1; 4], [2; 4], (1, 2));
    let to_b = udp4(VM2, VM3, [2; 4], [1; 4], (2, 1));
    let mut t = SEC;
    // Both learned first.
    sw.inject(b, &to_c, t);
    sw.inject(c, &to_b, t);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut spray = udp4(BCAST, VM1, [3; 4], [4; 4], (3, 4));
    let total = 1_000_000u32;
    for i in 0..total {
        // xorshift: a new random locally administered unicast source each frame.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = x.to_be_bytes();
        spray[6..12].copy_from_slice(&[0x02, r[1], r[2], r[3], r[4], r[5]]);
        t += 100;
        sw.inject(atk, &spray, t);
        if i % 64 == 0 {
            let o = sw.inject(b, &to_c, t);
            assert_eq!(
                o.action,
                Some(Action::Unicast(flowtable::PortId(2))),
                "at {i}"
            );
            assert_eq!(o.sent.len(), 1);
            let o = sw.inject(c, &to_b, t);
            assert_eq!(
                o.action,
                Some(Action::Unicast(flowtable::PortId(1))),
                "at {i}"
            );
            assert_eq!(o.sent.len(), 1);
        }
    }
    let counters = sw.counters();
    assert!(counters.learned > u64::from(total) / 2);
    assert_eq!(sw.fdb_lookup(NetIdx(0), MacAddr(VM2), t), Some(b));
    assert_eq!(sw.fdb_lookup(NetIdx(0), MacAddr(VM3), t), Some(c));
}
