//! Replay scenarios of issue 4: VXLAN and GRE overlays (br-tun) and provider networks
//! (br-phys), through the real command line.
//!
//! Each scenario writes a configuration and per-port input pcaps, runs `vswitch replay`,
//! and checks what every port sent **field by field with etherparse** (an
//! implementation independent of ours): outer Ethernet addresses, IPv4 version, header
//! length, DF, TTL, protocol and header checksum (or the IPv6 header and the mandatory
//! UDP checksum), UDP ports and length, the VXLAN flags, reserved bits and VNI, the GRE
//! flags, protocol and key, and the inner frame byte for byte. Drops are checked by
//! reason in the summary the CLI prints.
//!
//! Once the checks pass, the outputs are compared byte for byte with the committed
//! golden pcaps in `tests/golden/tunnel-NAME/` (`VSWITCH_BLESS=1` rewrites them, only
//! from outputs that passed every field check).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pcapio;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, Ipv4HeaderSlice, Ipv6HeaderSlice, UdpHeaderSlice};
use pcapio::{bless, golden_root, read_pcap, tmp_dir, vswitch, write_pcap};

type Mac = [u8; 6];

const LOCAL_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const NH2: Mac = [0x02, 0, 0, 0, 0, 0x02];
const NH3: Mac = [0x02, 0, 0, 0, 0, 0x03];
const BCAST: Mac = [0xff; 6];
const LOCAL4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VTEP2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VTEP3: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

/// A Neutron-style unicast MAC `fa:16:3e:00:00:NN`.
const fn m(n: u8) -> Mac {
    [0xfa, 0x16, 0x3e, 0x00, 0x00, n]
}

fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An untagged inner frame: IPv4/UDP from `src_ip:sport` to `dst_ip:dport`, `len`
/// bytes in all (at least 60), so that flows differ in their 5-tuple.
fn ip_frame(dst: Mac, src: Mac, flow: u16, len: usize) -> Vec<u8> {
    let payload_len = len.max(60) - 14 - 20 - 8;
    let b = etherparse::PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
        .udp(10_000 + flow, 20_000);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x5a; payload_len]).unwrap();
    v
}

/// The same frame with an 802.1Q tag (VID `vid`) after the addresses.
fn tagged(f: &[u8], vid: u16) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&[0x81, 0x00]);
    v.extend_from_slice(&vid.to_be_bytes());
    v.extend_from_slice(&f[12..]);
    v
}

/// The IPv4 header of an encapsulated packet, built field by field with etherparse
/// (header checksum included) and a VXLAN or GRE header: what a remote VTEP sends us.
fn from_vtep(src: Ipv4Addr, dst_mac: Mac, dst: Ipv4Addr, t: Tun, inner: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    let proto = match t {
        Tun::Vxlan(vni) => {
            let len = (8 + 8 + inner.len()) as u16;
            l4.extend_from_slice(&54321u16.to_be_bytes());
            l4.extend_from_slice(&4789u16.to_be_bytes());
            l4.extend_from_slice(&len.to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            l4.extend_from_slice(&[0x08, 0, 0, 0]);
            l4.extend_from_slice(&(vni << 8).to_be_bytes());
            IpNumber::UDP
        }
        Tun::Gre(key) => {
            l4.extend_from_slice(&[0x20, 0x00, 0x65, 0x58]);
            l4.extend_from_slice(&key.to_be_bytes());
            IpNumber::GRE
        }
    };
    l4.extend_from_slice(inner);
    let mut ip =
        etherparse::Ipv4Header::new(l4.len() as u16, 64, proto, src.octets(), dst.octets())
            .unwrap();
    ip.dont_fragment = true;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = Vec::new();
    v.extend_from_slice(&dst_mac);
    v.extend_from_slice(&NH2);
    v.extend_from_slice(&[0x08, 0x00]);
    ip.write(&mut v).unwrap();
    v.extend_from_slice(&l4);
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tun {
    Vxlan(u32),
    Gre(u32),
}

/// An encapsulated packet as read back, every field checked.
#[derive(Debug)]
struct Encapped {
    dst_mac: Mac,
    dst_ip: IpAddr,
    tun: Tun,
    sport: Option<u16>,
    ip_id: u16,
    inner: Vec<u8>,
}

/// Checks every outer field of `b`, a packet vswitch sent on the underlay port from
/// `local` with DF `df`, and returns what varies.
fn check_encap(b: &[u8], local: IpAddr, df: bool) -> Encapped {
    assert_eq!(&b[6..12], &LOCAL_MAC, "outer source MAC");
    let dst_mac: Mac = b[0..6].try_into().unwrap();
    let ethertype = u16::from_be_bytes([b[12], b[13]]);
    let (proto, l4, dst_ip, ip_id, pseudo_v6) = match ethertype {
        0x0800 => {
            let ip = Ipv4HeaderSlice::from_slice(&b[14..]).unwrap();
            let h = ip.to_header();
            assert_eq!(h.ihl(), 5, "IPv4 header length");
            assert_eq!(ip.version(), 4);
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
            assert_eq!(h.dont_fragment, df, "DF");
            assert!(!h.more_fragments && h.fragment_offset.value() == 0);
            assert_eq!(h.time_to_live, 64, "TTL");
            assert_eq!(IpAddr::V4(ip.source_addr()), local, "outer source");
            assert_eq!(usize::from(h.total_len), b.len() - 14, "IPv4 total length");
            if df {
                assert_eq!(h.identification, 0, "IP ID with DF set (RFC 6864)");
            }
            (
                h.protocol,
                &b[34..],
                IpAddr::V4(ip.destination_addr()),
                h.identification,
                None,
            )
        }
        0x86dd => {
            let ip = Ipv6HeaderSlice::from_slice(&b[14..]).unwrap();
            assert_eq!(ip.hop_limit(), 64, "hop limit");
            assert_eq!(IpAddr::V6(ip.source_addr()), local, "outer source");
            assert_eq!(
                usize::from(ip.payload_length()),
                b.len() - 54,
                "IPv6 payload length"
            );
            (
                ip.next_header(),
                &b[54..],
                IpAddr::V6(ip.destination_addr()),
                0,
                Some(ip.to_header()),
            )
        }
        e => panic!("outer EtherType {e:#06x}"),
    };
    match proto {
        IpNumber::UDP => {
            let u = UdpHeaderSlice::from_slice(l4).unwrap();
            assert_eq!(u.destination_port(), 4789, "VXLAN port");
            assert!(u.source_port() >= 49152, "source port {}", u.source_port());
            assert_eq!(usize::from(u.length()), l4.len(), "UDP length");
            match pseudo_v6 {
                None => assert_eq!(u.checksum(), 0, "UDP checksum over IPv4"),
                Some(ip6) => {
                    let want = u.to_header().calc_checksum_ipv6(&ip6, &l4[8..]).unwrap();
                    assert_eq!(u.checksum(), want, "UDP checksum over IPv6");
                    assert_ne!(u.checksum(), 0);
                }
            }
            let vx = &l4[8..16];
            assert_eq!(vx[0], 0x08, "VXLAN flags");
            assert_eq!(&vx[1..4], &[0, 0, 0], "VXLAN reserved");
            assert_eq!(vx[7], 0, "VXLAN reserved");
            let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
            Encapped {
                dst_mac,
                dst_ip,
                tun: Tun::Vxlan(vni),
                sport: Some(u.source_port()),
                ip_id,
                inner: l4[16..].to_vec(),
            }
        }
        IpNumber::GRE => {
            assert_eq!(
                &l4[0..4],
                &[0x20, 0x00, 0x65, 0x58],
                "GRE K flag, version 0, TEB"
            );
            let key = u32::from_be_bytes(l4[4..8].try_into().unwrap());
            Encapped {
                dst_mac,
                dst_ip,
                tun: Tun::Gre(key),
                sport: None,
                ip_id,
                inner: l4[8..].to_vec(),
            }
        }
        p => panic!("outer protocol {p:?}"),
    }
}

/// A scenario's run: what each port sent, and the drop counters.
struct Run {
    out: BTreeMap<String, Vec<Vec<u8>>>,
    drops: BTreeMap<String, u64>,
    stderr: String,
}

impl Run {
    fn sent(&self, port: &str) -> &[Vec<u8>] {
        self.out.get(port).map_or(&[], Vec::as_slice)
    }

    fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

/// Replays `inputs` (port, frame), one millisecond apart, through `config`.
fn replay(name: &str, config: &str, inputs: &[(&str, Vec<u8>)]) -> Run {
    let dir = tmp_dir(&format!("tunnel-{name}"));
    let cfg_path = dir.join("vswitch.toml");
    fs::write(&cfg_path, config).unwrap();
    let mut per_port: BTreeMap<&str, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for (i, (port, f)) in inputs.iter().enumerate() {
        per_port
            .entry(port)
            .or_default()
            .push((1_000_000 + 1000 * i as u64, f.clone()));
    }
    let in_dir = dir.join("in");
    fs::create_dir_all(&in_dir).unwrap();
    let mut args = vec![
        "replay".to_string(),
        "--config".into(),
        cfg_path.display().to_string(),
    ];
    for (port, frames) in &per_port {
        let p = in_dir.join(format!("{port}.pcap"));
        write_pcap(&p, frames);
        args.push("--input".into());
        args.push(format!("{port}={}", p.display()));
    }
    let out_dir = dir.join("out");
    args.push("--output-dir".into());
    args.push(out_dir.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = vswitch(&argv);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{name}: replay failed:\n{stderr}");
    let mut out = BTreeMap::new();
    for e in fs::read_dir(&out_dir).unwrap() {
        let p = e.unwrap().path();
        let port = p.file_stem().unwrap().to_string_lossy().to_string();
        out.insert(port, read_pcap(&p).into_iter().map(|(_, f)| f).collect());
    }
    let mut drops = BTreeMap::new();
    for l in stderr.lines() {
        if let Some(rest) = l.trim().strip_prefix("drop ") {
            let (r, n) = rest.split_once(':').unwrap();
            drops.insert(r.to_string(), n.trim().parse().unwrap());
        }
    }
    Run { out, drops, stderr }
}

/// Compares the outputs with the golden pcaps (after the field checks passed).
fn golden(name: &str, run: &Run) {
    let dir = golden_root().join(format!("tunnel-{name}"));
    if bless() {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
    }
    for (port, frames) in &run.out {
        let path = dir.join(format!("{port}.pcap"));
        let stamped: Vec<(u64, Vec<u8>)> = frames.iter().map(|f| (0, f.clone())).collect();
        if bless() {
            write_pcap(&path, &stamped);
            continue;
        }
        let want: Vec<Vec<u8>> = read_pcap(&path).into_iter().map(|(_, f)| f).collect();
        assert!(
            want == *frames,
            "{name}: port {port} differs from {} (VSWITCH_BLESS=1 rewrites it)",
            path.display()
        );
    }
}

/// The issue's example underlay and a VXLAN network (VNI 5010) with two remote VTEPs,
/// a GRE network (key 7) with one, two VM ports on each.
fn overlay_config(extra: &str) -> String {
    format!(
        r#"
[underlay]
port = "uplink"
local_ip = "198.18.0.1/24"
local_mac = "{lm}"
neighbors = [ {{ ip = "198.18.0.2", mac = "{n2}" }}, {{ ip = "198.18.0.3", mac = "{n3}" }} ]

[[network]]
name = "net-v"
segment = "vxlan"
id = 5010
remote_vteps = ["198.18.0.2", "198.18.0.3"]

[[network]]
name = "net-g"
segment = "gre"
id = 7
remote_vteps = ["198.18.0.2"]

[[port]]
name = "vm1"
mode = "access"
network = "net-v"

[[port]]
name = "vm2"
mode = "access"
network = "net-v"

[[port]]
name = "vm3"
mode = "access"
network = "net-g"
{extra}"#,
        lm = mac_str(LOCAL_MAC),
        n2 = mac_str(NH2),
        n3 = mac_str(NH3),
    )
}

const L4: IpAddr = IpAddr::V4(LOCAL4);

/// A broadcast from a VM goes to the other local port and, head-end replicated, to both
/// remote VTEPs with VNI 5010; a GRE network's to its one VTEP with key 7.
#[test]
fn flood_is_replicated_to_every_remote_vtep() {
    let cfg = overlay_config("");
    let f = ip_frame(BCAST, m(1), 1, 60);
    let g = ip_frame(BCAST, m(3), 1, 60);
    let run = replay("flood", &cfg, &[("vm1", f.clone()), ("vm3", g.clone())]);
    assert_eq!(run.sent("vm2"), std::slice::from_ref(&f));
    assert!(run.sent("vm3").is_empty() && run.sent("vm1").is_empty());
    let up = run.sent("uplink");
    assert_eq!(up.len(), 3, "{}", run.stderr);
    let e: Vec<Encapped> = up.iter().map(|b| check_encap(b, L4, true)).collect();
    let vx: BTreeSet<(IpAddr, Mac)> = e[..2].iter().map(|e| (e.dst_ip, e.dst_mac)).collect();
    assert_eq!(
        vx,
        BTreeSet::from([(IpAddr::V4(VTEP2), NH2), (IpAddr::V4(VTEP3), NH3)])
    );
    for x in &e[..2] {
        assert_eq!(x.tun, Tun::Vxlan(5010));
        assert_eq!(x.inner, f);
    }
    assert_eq!(e[2].tun, Tun::Gre(7));
    assert_eq!(e[2].dst_ip, IpAddr::V4(VTEP2));
    assert_eq!(e[2].inner, g);
    golden("flood", &run);
}

/// A frame from a VTEP is decapsulated into its network, its inner source learned behind
/// that VTEP (the reply is unicast to it alone), never sent to another tunnel; a VM
/// migrating to another host re-points its entry at once.
#[test]
fn decap_learns_the_remote_vtep_and_moves() {
    let cfg = overlay_config("");
    let x = m(0x20);
    let from2 = ip_frame(BCAST, x, 1, 60);
    let reply = ip_frame(x, m(1), 2, 60);
    let from3 = ip_frame(BCAST, x, 3, 60);
    let run = replay(
        "decap-learn",
        &cfg,
        &[
            (
                "uplink",
                from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Vxlan(5010), &from2),
            ),
            ("vm1", reply.clone()),
            (
                "uplink",
                from_vtep(VTEP3, LOCAL_MAC, LOCAL4, Tun::Vxlan(5010), &from3),
            ),
            ("vm1", reply.clone()),
        ],
    );
    // Both decapsulated broadcasts reach the two VMs of net-v, nothing else.
    assert_eq!(run.sent("vm1"), &[from2.clone(), from3.clone()]);
    assert_eq!(run.sent("vm2"), &[from2, from3]);
    assert!(run.sent("vm3").is_empty());
    let up = run.sent("uplink");
    assert_eq!(up.len(), 2, "split horizon and unicast: {}", run.stderr);
    let a = check_encap(&up[0], L4, true);
    let b = check_encap(&up[1], L4, true);
    assert_eq!((a.dst_ip, a.dst_mac), (IpAddr::V4(VTEP2), NH2));
    assert_eq!(
        (b.dst_ip, b.dst_mac),
        (IpAddr::V4(VTEP3), NH3),
        "after the move"
    );
    assert_eq!(a.inner, reply);
    assert_eq!(a.sport, b.sport, "same flow, same source port");
    assert!(run.stderr.contains("moves 1"), "{}", run.stderr);
    golden("decap-learn", &run);
}

/// The UDP source port is a hash of the inner flow: the same for every frame of a flow,
/// different across flows.
#[test]
fn source_port_is_stable_per_flow_and_varies_across_flows() {
    let cfg = overlay_config("");
    let mut inputs = Vec::new();
    for flow in 0..16u16 {
        for _ in 0..2 {
            inputs.push(("vm1", ip_frame(BCAST, m(1), flow, 60)));
        }
    }
    let run = replay("sport", &cfg, &inputs);
    let ports: Vec<u16> = run
        .sent("uplink")
        .iter()
        .map(|b| check_encap(b, L4, true))
        .filter(|e| e.dst_ip == IpAddr::V4(VTEP2))
        .map(|e| e.sport.unwrap())
        .collect();
    assert_eq!(ports.len(), 32);
    for pair in ports.chunks(2) {
        assert_eq!(pair[0], pair[1], "one flow, one source port");
    }
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert!(distinct.len() >= 12, "16 flows gave {distinct:?}");
}

/// Every received tunnel packet that breaks a rule is dropped under its reason, and
/// nothing leaks to a VM.
#[test]
fn decap_rejections_are_counted() {
    let cfg = overlay_config("");
    let inner = ip_frame(BCAST, m(0x20), 1, 60);
    let good = from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Vxlan(5010), &inner);
    let mut bad_ip_csum = good.clone();
    bad_ip_csum[24] ^= 0xff;
    let mut bad_udp_csum = good.clone();
    bad_udp_csum[40..42].copy_from_slice(&[0x12, 0x34]);
    let mut fragment = good.clone();
    fragment[20] = 0x20; // more fragments
    let mut ipv4 = etherparse::Ipv4HeaderSlice::from_slice(&fragment[14..])
        .unwrap()
        .to_header();
    ipv4.header_checksum = ipv4.calc_header_checksum();
    let mut hdr = Vec::new();
    ipv4.write(&mut hdr).unwrap();
    fragment[14..34].copy_from_slice(&hdr);
    let mut bad_flags = good.clone();
    bad_flags[42] = 0x00; // VXLAN I flag clear
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unknown_segment",
            from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Vxlan(5011), &inner),
        ),
        (
            "unknown_segment",
            from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Gre(8), &inner),
        ),
        (
            "unknown_vtep",
            from_vtep(
                Ipv4Addr::new(198, 18, 0, 99),
                LOCAL_MAC,
                LOCAL4,
                Tun::Vxlan(5010),
                &inner,
            ),
        ),
        (
            "not_our_vtep",
            from_vtep(VTEP2, NH3, LOCAL4, Tun::Vxlan(5010), &inner),
        ),
        (
            "not_our_vtep",
            from_vtep(
                VTEP2,
                LOCAL_MAC,
                Ipv4Addr::new(198, 18, 0, 7),
                Tun::Vxlan(5010),
                &inner,
            ),
        ),
        (
            "inner_tagged",
            from_vtep(
                VTEP2,
                LOCAL_MAC,
                LOCAL4,
                Tun::Vxlan(5010),
                &tagged(&inner, 5),
            ),
        ),
        ("tunnel_malformed", bad_ip_csum),
        ("tunnel_malformed", bad_udp_csum),
        ("tunnel_malformed", fragment),
        ("tunnel_malformed", bad_flags),
    ];
    let inputs: Vec<(&str, Vec<u8>)> = cases.iter().map(|(_, f)| ("uplink", f.clone())).collect();
    let run = replay("rejections", &cfg, &inputs);
    for port in ["vm1", "vm2", "vm3", "uplink"] {
        assert!(run.sent(port).is_empty(), "{port}: {}", run.stderr);
    }
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (r, _) in &cases {
        *want.entry(r.to_string()).or_default() += 1;
    }
    assert_eq!(run.drops, want, "{}", run.stderr);
}

/// Static remote entries (l2population): unicast goes to the named VTEP without any
/// learning, and a frame that would move the entry is dropped.
#[test]
fn static_remote_entry() {
    let cfg = overlay_config(
        "\n[[fdb]]\nnetwork = \"net-v\"\nmac = \"fa:16:3e:00:00:30\"\nremote = \"198.18.0.3\"\n",
    );
    let to = ip_frame(m(0x30), m(1), 1, 60);
    let spoof = ip_frame(BCAST, m(0x30), 2, 60);
    let run = replay(
        "static-remote",
        &cfg,
        &[
            ("vm1", to.clone()),
            (
                "uplink",
                from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Vxlan(5010), &spoof),
            ),
        ],
    );
    let up = run.sent("uplink");
    assert_eq!(up.len(), 1);
    let e = check_encap(&up[0], L4, true);
    assert_eq!((e.dst_ip, e.tun), (IpAddr::V4(VTEP3), Tun::Vxlan(5010)));
    assert_eq!(e.inner, to);
    assert_eq!(run.dropped("static_move"), 1, "{}", run.stderr);
    assert!(run.sent("vm2").is_empty());
}

/// A frame that would exceed the underlay MTU once encapsulated is dropped and counted,
/// never truncated: 1500 − 50 = 1450 bytes of IP for VXLAN, 1500 − 42 for GRE.
#[test]
fn underlay_mtu() {
    let cfg = overlay_config("");
    let ok = ip_frame(BCAST, m(1), 1, 14 + 1450);
    let big = ip_frame(BCAST, m(1), 2, 14 + 1451);
    let gre_ok = ip_frame(BCAST, m(3), 1, 14 + 1458);
    let gre_big = ip_frame(BCAST, m(3), 2, 14 + 1459);
    let run = replay(
        "mtu",
        &cfg,
        &[
            ("vm1", ok.clone()),
            ("vm1", big.clone()),
            ("vm3", gre_ok.clone()),
            ("vm3", gre_big),
        ],
    );
    let up = run.sent("uplink");
    assert_eq!(up.len(), 3, "{}", run.stderr);
    for b in up {
        assert_eq!(b.len(), 14 + 1500);
        check_encap(b, L4, true);
    }
    // The local port still gets the big frame (no MTU between VMs of this host).
    assert_eq!(run.sent("vm2"), &[ok, big]);
    assert_eq!(run.dropped("mtu_exceeded"), 3, "{}", run.stderr);
}

/// Two overlay networks with the same inner MACs and IPs on different VNIs never mix.
#[test]
fn overlapping_tenants_stay_apart() {
    let cfg = overlay_config(
        r#"
[[network]]
name = "net-w"
segment = "vxlan"
id = 5020
remote_vteps = ["198.18.0.2"]

[[port]]
name = "vm4"
mode = "access"
network = "net-w"
"#,
    );
    let x = m(0x20);
    let f = ip_frame(BCAST, x, 1, 60);
    let run = replay(
        "tenants",
        &cfg,
        &[
            (
                "uplink",
                from_vtep(VTEP2, LOCAL_MAC, LOCAL4, Tun::Vxlan(5020), &f),
            ),
            ("vm1", ip_frame(x, m(1), 1, 60)),
            ("vm4", ip_frame(x, m(1), 1, 60)),
        ],
    );
    assert_eq!(run.sent("vm4"), &[f]);
    // vm2 (net-v) sees vm1's flood only, never net-w's frame with the same addresses.
    assert_eq!(run.sent("vm2"), &[ip_frame(x, m(1), 1, 60)]);
    let up = run.sent("uplink");
    // vm1's frame is unknown in net-v (flooded to both VTEPs with VNI 5010); vm4's is
    // known in net-w (unicast to VTEP 2 with VNI 5020).
    let e: Vec<Encapped> = up.iter().map(|b| check_encap(b, L4, true)).collect();
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].tun, Tun::Vxlan(5010));
    assert_eq!(e[1].tun, Tun::Vxlan(5010));
    assert_eq!(
        (e[2].tun, e[2].dst_ip),
        (Tun::Vxlan(5020), IpAddr::V4(VTEP2))
    );
}

/// With `df = false` the IPv4 ID varies from packet to packet (RFC 6864).
#[test]
fn df_clear_varies_the_ip_id() {
    let cfg = overlay_config("").replace("local_mac = ", "df = false\nlocal_mac = ");
    let run = replay(
        "df-clear",
        &cfg,
        &[
            ("vm3", ip_frame(BCAST, m(3), 1, 60)),
            ("vm3", ip_frame(BCAST, m(3), 1, 60)),
        ],
    );
    let up = run.sent("uplink");
    assert_eq!(up.len(), 2);
    let a = check_encap(&up[0], L4, false);
    let b = check_encap(&up[1], L4, false);
    assert_ne!(a.ip_id, b.ip_id);
}

/// VXLAN over an IPv6 underlay: the UDP checksum is computed (and verifies).
#[test]
fn ipv6_underlay() {
    let l6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let r6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let cfg = format!(
        r#"
[underlay]
port = "uplink"
local_ip = "{l6}/64"
local_mac = "{lm}"
neighbors = [ {{ ip = "{r6}", mac = "{n2}" }} ]

[[network]]
name = "net-v"
segment = "vxlan"
id = 5010
remote_vteps = ["{r6}"]

[[port]]
name = "vm1"
mode = "access"
network = "net-v"
"#,
        lm = mac_str(LOCAL_MAC),
        n2 = mac_str(NH2),
    );
    let f = ip_frame(BCAST, m(1), 1, 60);
    let run = replay("ipv6", &cfg, &[("vm1", f.clone())]);
    let up = run.sent("uplink");
    assert_eq!(up.len(), 1, "{}", run.stderr);
    let e = check_encap(&up[0], IpAddr::V6(l6), true);
    assert_eq!((e.dst_ip, e.tun), (IpAddr::V6(r6), Tun::Vxlan(5010)));
    assert_eq!(e.inner, f);
    golden("ipv6", &run);
}

/// Provider networks (br-phys): a `vlan` network leaves the physnet port with its
/// provider VID and enters by it; a `flat` one untagged; a `local` one never leaves the
/// host; other VIDs on the physnet port are dropped.
#[test]
fn provider_networks() {
    let cfg = r#"
[[physnet]]
name = "physnet1"
port = "phys1"

[[network]]
name = "net-vlan"
segment = "vlan"
physnet = "physnet1"
id = 200

[[network]]
name = "net-flat"
segment = "flat"
physnet = "physnet1"

[[network]]
name = "net-local"
segment = "local"

[[port]]
name = "vm1"
mode = "access"
network = "net-vlan"

[[port]]
name = "vm2"
mode = "access"
network = "net-flat"

[[port]]
name = "vm3"
mode = "access"
network = "net-local"

[[port]]
name = "vm4"
mode = "access"
network = "net-local"
"#;
    let a = ip_frame(BCAST, m(1), 1, 60);
    let b = ip_frame(BCAST, m(2), 1, 60);
    let c = ip_frame(BCAST, m(3), 1, 60);
    let from_phys = ip_frame(BCAST, m(0x40), 1, 60);
    let run = replay(
        "provider",
        cfg,
        &[
            ("vm1", a.clone()),
            ("vm2", b.clone()),
            ("vm3", c.clone()),
            ("phys1", tagged(&from_phys, 200)),
            ("phys1", from_phys.clone()),
            ("phys1", tagged(&from_phys, 300)),
        ],
    );
    assert_eq!(run.sent("phys1"), &[tagged(&a, 200), b]);
    assert_eq!(run.sent("vm4"), &[c]);
    assert_eq!(run.sent("vm1"), std::slice::from_ref(&from_phys));
    assert_eq!(run.sent("vm2"), &[from_phys]);
    assert!(run.sent("vm3").is_empty());
    assert_eq!(run.dropped("unknown_vid"), 1, "{}", run.stderr);
    golden("provider", &run);
}

/// An ARP frame (`op` 1 request, broadcast; 2 reply, to `tha`), 60 bytes.
fn arp(op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(if op == 1 { &BCAST } else { &tha });
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&if op == 1 { [0; 6] } else { tha });
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

/// The l2population ARP responder: a VM's request for a configured IP is answered back
/// to it and reaches the network's other local ports, not the tunnels; a request for
/// another IP is flooded as usual, tunnels included.
#[test]
fn arp_responder() {
    let cfg = overlay_config(
        "\n[[arp]]\nnetwork = \"net-v\"\nip = \"10.1.0.20\"\nmac = \"fa:16:3e:00:00:20\"\n",
    );
    let me = Ipv4Addr::new(10, 1, 0, 1);
    let known = arp(1, m(1), me, [0; 6], Ipv4Addr::new(10, 1, 0, 20));
    let unknown = arp(1, m(1), me, [0; 6], Ipv4Addr::new(10, 1, 0, 21));
    let run = replay(
        "arp-responder",
        &cfg,
        &[("vm1", known.clone()), ("vm1", unknown.clone())],
    );
    let reply = arp(2, m(0x20), Ipv4Addr::new(10, 1, 0, 20), m(1), me);
    assert_eq!(run.sent("vm1"), &[reply]);
    assert_eq!(run.sent("vm2"), &[known, unknown.clone()]);
    let up = run.sent("uplink");
    assert_eq!(
        up.len(),
        2,
        "only the unanswered request reaches the tunnels"
    );
    for b in up {
        assert_eq!(check_encap(b, L4, true).inner, unknown);
    }
    golden("arp-responder", &run);
}

/// Without static neighbours: the first frame toward a VTEP waits while vswitch asks
/// for its MAC by ARP, goes out when the reply comes; ARP for the local VTEP address is
/// answered; a next hop off-link goes through the gateway.
#[test]
fn underlay_neighbours_are_resolved() {
    let cfg = format!(
        r#"
[underlay]
port = "uplink"
local_ip = "198.18.0.1/24"
local_mac = "{lm}"
gateway = "198.18.0.254"

[[network]]
name = "net-v"
segment = "vxlan"
id = 5010
remote_vteps = ["198.18.0.2", "198.18.1.9"]

[[port]]
name = "vm1"
mode = "access"
network = "net-v"
"#,
        lm = mac_str(LOCAL_MAC),
    );
    let gw = Ipv4Addr::new(198, 18, 0, 254);
    let gw_mac: Mac = [0x02, 0, 0, 0, 0, 0xfe];
    let f = ip_frame(BCAST, m(1), 1, 60);
    let asker = Ipv4Addr::new(198, 18, 0, 77);
    let asker_mac: Mac = [0x02, 0, 0, 0, 0, 0x77];
    let run = replay(
        "neighbours",
        &cfg,
        &[
            ("vm1", f.clone()),
            ("uplink", arp(2, NH2, VTEP2, LOCAL_MAC, LOCAL4)),
            ("uplink", arp(2, gw_mac, gw, LOCAL_MAC, LOCAL4)),
            ("uplink", arp(1, asker_mac, asker, [0; 6], LOCAL4)),
        ],
    );
    let up = run.sent("uplink");
    assert_eq!(up.len(), 5, "{}", run.stderr);
    // Two requests (the VTEP on-link, the gateway for the other), in VTEP order.
    assert_eq!(up[0], arp(1, LOCAL_MAC, LOCAL4, [0; 6], VTEP2));
    assert_eq!(up[1], arp(1, LOCAL_MAC, LOCAL4, [0; 6], gw));
    // Each reply releases the waiting copy toward its VTEP.
    let a = check_encap(&up[2], L4, true);
    assert_eq!((a.dst_ip, a.dst_mac), (IpAddr::V4(VTEP2), NH2));
    assert_eq!(a.inner, f);
    let b = check_encap(&up[3], L4, true);
    assert_eq!(
        (b.dst_ip, b.dst_mac),
        (IpAddr::V4(Ipv4Addr::new(198, 18, 1, 9)), gw_mac)
    );
    // And a request for our address is answered.
    assert_eq!(up[4], arp(2, LOCAL_MAC, LOCAL4, asker_mac, asker));
    golden("neighbours", &run);
}
