//! The configuration layer through its public API: the example file, every
//! rejection (with its exact line and key), local VLAN allocation and `render`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::config::{
    AllowedPair, ArpEntry, Config, ConfigError, EgressTag, ErrorKind, FdbTarget, NetIdx, Network,
    Physnet, PhysnetIdx, Port, PortIdx, PortMode, PortPolicy, PortRole, PortSecurity, Segment,
    StaticFdb, SwitchParams, Underlay, VtepIdx, MAX_NETWORKS, MAX_PORTS,
};
use encap::{GreKey, MacAddr, VlanId, Vni};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vswitch.toml")
}

/// Joins lines, so that a test's line numbers are the slice's indexes + 1.
fn text<S: AsRef<str>>(lines: &[S]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(l.as_ref());
        s.push('\n');
    }
    s
}

fn parse<S: AsRef<str>>(lines: &[S]) -> Config {
    match Config::from_str(&text(lines), "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn err<S: AsRef<str>>(lines: &[S]) -> ConfigError {
    match Config::from_str(&text(lines), "t.toml") {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

/// Asserts the line, entry and key of an error, and that its message shows them.
#[track_caller]
fn check(e: &ConfigError, line: u32, context: Option<&str>, key: Option<&str>) {
    assert_eq!(e.file, "t.toml", "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.context.as_deref(), context, "{e}");
    assert_eq!(e.key.as_deref(), key, "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("t.toml:{line}: ")), "{msg}");
    if let Some(c) = context {
        assert!(msg.contains(&format!("{c}: ")), "{msg}");
    }
    if let Some(k) = key {
        assert!(msg.contains(&format!("key \"{k}\": ")), "{msg}");
    }
}

fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

const NET_A: &[&str] = &["[[network]]", "name = \"net-a\"", "segment = \"local\""];
const NET_B: &[&str] = &["[[network]]", "name = \"net-b\"", "segment = \"local\""];

/// `NET_A` and `NET_B` (lines 1–6), then `rest` from line 7 on.
fn with_nets(rest: &[&str]) -> Vec<String> {
    NET_A
        .iter()
        .chain(NET_B)
        .chain(rest)
        .map(|s| s.to_string())
        .collect()
}

// ---------------------------------------------------------------- valid input

#[test]
fn example_file_parses_to_expected_values() {
    let path = example_path();
    let c = Config::from_file(&path).unwrap();
    assert_eq!(c.source.as_deref(), Some(path.as_path()));
    assert_eq!(
        c.switch,
        SwitchParams {
            workers: 1,
            mac_aging: Duration::from_secs(300),
            mac_table_size: 50_000,
            mac_limit_per_port: 0,
            control_socket: PathBuf::from("/run/vswitch/vswitch.sock"),
            forward_only: false,
            napi_busy_poll: true,
            napi_busy_poll_usecs: 100,
            mac_learn_rate_per_port: 0,
            storm_control_pps: 0,
            fastpath: false,
        }
    );
    let net = |name: &str, segment, v: u16, vteps: &[u16]| Network {
        name: name.into(),
        segment,
        local_vlan: vid(v),
        local_vlan_allocated: !matches!(v, 1 | 3),
        remote_vteps: vteps.iter().map(|&i| VtepIdx(i)).collect(),
        mac_limit: if name == "net-b" { 1000 } else { 0 },
    };
    let physnet = PhysnetIdx(0);
    assert_eq!(
        c.networks,
        vec![
            net("net-a", Segment::Local, 1, &[]),
            net("net-b", Segment::Local, 2, &[]),
            net("net-c", Segment::Local, 3, &[]),
            net("net-d", Segment::Local, 4, &[]),
            net(
                "net-e",
                Segment::Vxlan {
                    vni: Vni::try_new(5010).unwrap()
                },
                5,
                &[0, 1]
            ),
            net(
                "net-f",
                Segment::Gre {
                    key: GreKey::new(7)
                },
                6,
                &[0]
            ),
            net(
                "net-g",
                Segment::Vlan {
                    physnet,
                    vid: vid(100)
                },
                7,
                &[]
            ),
            net("net-h", Segment::Flat { physnet }, 8, &[]),
        ]
    );
    let access = |name: &str, ifname: Option<&str>, n: u16| Port {
        name: name.into(),
        ifname: ifname.map(Into::into),
        mode: PortMode::Access { network: NetIdx(n) },
        role: PortRole::Local,
        policy: Default::default(),
    };
    assert_eq!(
        c.ports,
        vec![
            access("vm1", Some("tap-vm1"), 0),
            access("vm2", Some("tap-vm2"), 1),
            access("vm3", None, 0),
            Port {
                name: "trunk1".into(),
                ifname: Some("eth1".into()),
                mode: PortMode::Trunk {
                    vlans: vec![
                        (vid(10), NetIdx(0)),
                        (vid(20), NetIdx(1)),
                        (vid(30), NetIdx(2))
                    ],
                    native: Some(NetIdx(3)),
                },
                role: PortRole::Local,
                policy: Default::default(),
            },
            Port {
                policy: PortPolicy {
                    security: Some(PortSecurity {
                        mac: mac("fa:16:3e:00:00:04"),
                        allowed: [
                            ("fa:16:3e:00:00:04", "10.0.0.5/32"),
                            ("fa:16:3e:00:00:04", "2001:db8::5/128"),
                            ("fa:16:3e:00:00:04", "10.0.0.100/32"),
                            ("fa:16:3e:00:00:99", "10.0.9.0/24"),
                        ]
                        .iter()
                        .map(|(m, ip)| AllowedPair {
                            mac: mac(m),
                            ip: ip.parse().unwrap(),
                        })
                        .collect(),
                    }),
                    storm_control_pps: Some(1000),
                },
                ..access("vm4", Some("tap-vm4"), 4)
            },
            Port {
                name: "phys1".into(),
                ifname: Some("eth3".into()),
                mode: PortMode::Trunk {
                    vlans: vec![(vid(100), NetIdx(6))],
                    native: Some(NetIdx(7)),
                },
                role: PortRole::Physnet(physnet),
                policy: Default::default(),
            },
            Port {
                name: "uplink".into(),
                ifname: Some("eth2".into()),
                mode: PortMode::Trunk {
                    vlans: vec![],
                    native: None,
                },
                role: PortRole::Underlay,
                policy: Default::default(),
            },
        ]
    );
    assert_eq!(
        c.physnets,
        vec![Physnet {
            name: "physnet1".into(),
            port: PortIdx(5),
            mtu: 1500,
        }]
    );
    assert_eq!(
        c.underlay,
        Some(Underlay {
            port: PortIdx(6),
            local_ip: "198.18.0.1".parse().unwrap(),
            prefix_len: Some(24),
            local_mac: Some(MacAddr::new([2, 0, 0, 0, 0, 1])),
            gateway: Some("198.18.0.254".parse().unwrap()),
            mtu: 1500,
            df: true,
            vxlan_port: 4789,
            neighbors: vec![(
                "198.18.0.2".parse().unwrap(),
                MacAddr::new([2, 0, 0, 0, 0, 2])
            )],
        })
    );
    let ips: Vec<IpAddr> = ["198.18.0.2", "198.18.0.3", "198.18.0.4"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(c.vteps, ips);
    assert_eq!(
        c.static_fdb,
        vec![
            StaticFdb {
                network: NetIdx(0),
                mac: MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 1]),
                target: FdbTarget::Port(PortIdx(0)),
            },
            StaticFdb {
                network: NetIdx(2),
                mac: MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 3]),
                target: FdbTarget::Port(PortIdx(3)),
            },
            StaticFdb {
                network: NetIdx(4),
                mac: MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 5]),
                target: FdbTarget::Remote(VtepIdx(2)),
            },
        ]
    );
    assert_eq!(
        c.arp,
        vec![ArpEntry {
            network: NetIdx(4),
            ip: "10.1.0.5".parse().unwrap(),
            mac: MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 5]),
        }]
    );
    let mtus: Vec<Option<u16>> = (0..8).map(|n| c.network_mtu(NetIdx(n))).collect();
    assert_eq!(
        mtus,
        vec![
            None,
            None,
            None,
            None,
            Some(1450),
            Some(1458),
            Some(1500),
            Some(1500)
        ]
    );
    assert_eq!(c.network_by_name("net-c"), Some(NetIdx(2)));
    assert_eq!(c.network_by_name("nope"), None);
    assert_eq!(c.port_by_name("trunk1"), Some(PortIdx(3)));
    assert_eq!(c.port_by_name("nope"), None);
    assert_eq!(c.network(NetIdx(3)).map(|n| n.name.as_str()), Some("net-d"));
    assert_eq!(c.port(PortIdx(7)), None);
}

#[test]
fn empty_config_is_valid_with_defaults() {
    let c = Config::from_str("", "t.toml").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.switch.workers, 1);
    assert_eq!(c.switch.mac_aging, Duration::from_secs(300));
    assert_eq!(c.switch.mac_table_size, 50_000);
    assert_eq!(c.switch.mac_limit_per_port, 0);
    assert_eq!(
        c.switch.control_socket,
        PathBuf::from("/run/vswitch/vswitch.sock")
    );
    let c = parse(&["# only a comment", "[switch]"]);
    assert_eq!(c, Config::default());
    // Networks without ports are fine too.
    let c = parse(NET_A);
    assert_eq!(c.networks.len(), 1);
    assert!(c.ports.is_empty());
}

#[test]
fn switch_values_and_bounds_accepted() {
    let c = parse(&[
        "[switch]",
        "workers = 1024",
        "mac_aging_secs = 15",
        "mac_table_size = 1",
        "mac_limit_per_port = 100000",
        "control_socket = \"/tmp/v.sock\"",
        "forward_only = true",
    ]);
    assert!(c.switch.forward_only);
    assert_eq!(c.switch.workers, 1024);
    assert_eq!(c.switch.mac_aging, Duration::from_secs(15));
    assert_eq!(c.switch.mac_table_size, 1);
    assert_eq!(c.switch.mac_limit_per_port, 100_000);
    assert_eq!(c.switch.control_socket, PathBuf::from("/tmp/v.sock"));
    let c = parse(&["[switch]", "mac_aging_secs = 3600"]);
    assert_eq!(c.switch.mac_aging, Duration::from_secs(3600));
}

#[test]
fn two_vids_to_one_network_are_allowed() {
    // Open vSwitch allows it; ingress takes both, egress uses the lowest VID.
    let c = parse(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "vlans = { 30 = \"net-a\", 20 = \"net-a\", 25 = \"net-b\" }",
    ]));
    let mode = &c.ports[0].mode;
    assert_eq!(
        *mode,
        PortMode::Trunk {
            vlans: vec![
                (vid(20), NetIdx(0)),
                (vid(25), NetIdx(1)),
                (vid(30), NetIdx(0))
            ],
            native: None,
        }
    );
    assert_eq!(mode.ingress(Some(vid(20))), Some(NetIdx(0)));
    assert_eq!(mode.ingress(Some(vid(30))), Some(NetIdx(0)));
    assert_eq!(mode.ingress(Some(vid(21))), None);
    assert_eq!(mode.ingress(None), None);
    assert_eq!(mode.egress(NetIdx(0)), Some(EgressTag::Tagged(vid(20))));
    assert_eq!(mode.egress(NetIdx(1)), Some(EgressTag::Tagged(vid(25))));
}

#[test]
fn native_network_also_in_vlans_leaves_untagged() {
    let c = parse(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "vlans = { 10 = \"net-a\" }",
        "native = \"net-a\"",
    ]));
    let mode = &c.ports[0].mode;
    assert_eq!(mode.ingress(None), Some(NetIdx(0)));
    assert_eq!(mode.ingress(Some(vid(10))), Some(NetIdx(0)));
    assert_eq!(mode.egress(NetIdx(0)), Some(EgressTag::Untagged));
    assert_eq!(mode.egress(NetIdx(1)), None);
}

#[test]
fn access_port_semantics() {
    let c = parse(&with_nets(&[
        "[[port]]",
        "name = \"p\"",
        "mode = \"access\"",
        "network = \"net-b\"",
    ]));
    let mode = &c.ports[0].mode;
    assert_eq!(mode.ingress(None), Some(NetIdx(1)));
    assert_eq!(mode.ingress(Some(vid(1))), None);
    assert_eq!(mode.egress(NetIdx(1)), Some(EgressTag::Untagged));
    assert!(!mode.carries(NetIdx(0)));
}

#[test]
fn trunk_without_vlans_is_valid_and_carries_nothing() {
    let c = parse(&["[[port]]", "name = \"t\"", "mode = \"trunk\""]);
    assert_eq!(
        c.ports[0].mode,
        PortMode::Trunk {
            vlans: vec![],
            native: None
        }
    );
}

#[test]
fn static_entries_on_trunks_and_same_mac_in_two_networks() {
    let c = parse(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "vlans = { 10 = \"net-a\" }",
        "native = \"net-b\"",
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"t\"",
        "[[fdb]]",
        "network = \"net-b\"",
        "mac = \"02-00-00-00-00-01\"",
        "port = \"t\"",
    ]));
    assert_eq!(c.static_fdb.len(), 2);
    assert_eq!(c.static_fdb[1].network, NetIdx(1));
    assert_eq!(c.static_fdb[1].mac, MacAddr::new([2, 0, 0, 0, 0, 1]));
}

// ------------------------------------------------------------ local VLANs

#[test]
fn local_vlans_explicit_reserved_first_then_lowest_free() {
    let c = parse(&[
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"b\"",
        "segment = \"local\"",
        "local_vlan = 2",
        "[[network]]",
        "name = \"c\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"d\"",
        "segment = \"local\"",
        "local_vlan = 1",
        "[[network]]",
        "name = \"e\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"f\"",
        "segment = \"local\"",
        "local_vlan = 4094",
    ]);
    let got: Vec<(u16, bool)> = c
        .networks
        .iter()
        .map(|n| (n.local_vlan.get(), n.local_vlan_allocated))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, true),
            (2, false),
            (4, true),
            (1, false),
            (5, true),
            (4094, false)
        ]
    );
}

#[test]
fn local_vlan_allocation_is_stable() {
    let base = [
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"b\"",
        "segment = \"local\"",
        "local_vlan = 1",
        "[[network]]",
        "name = \"c\"",
        "segment = \"local\"",
    ];
    let c1 = parse(&base);
    assert_eq!(c1, parse(&base), "same file, same VLANs");
    let vlans = |c: &Config| {
        c.networks
            .iter()
            .map(|n| n.local_vlan.get())
            .collect::<Vec<_>>()
    };
    assert_eq!(vlans(&c1), vec![2, 1, 3]);
    // Appending networks never moves the VLANs of the ones before.
    let mut more = base.to_vec();
    more.extend(["[[network]]", "name = \"d\"", "segment = \"local\""]);
    more.extend([
        "[[network]]",
        "name = \"e\"",
        "segment = \"local\"",
        "local_vlan = 7",
    ]);
    assert_eq!(vlans(&parse(&more)), vec![2, 1, 3, 4, 7]);
}

fn many_networks(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "[[network]]\nname = \"n{i}\"\nsegment = \"local\"\n"
        ));
    }
    s
}

#[test]
fn exactly_4094_networks_fit() {
    let c = Config::from_str(&many_networks(MAX_NETWORKS), "t.toml").unwrap();
    assert_eq!(c.networks.len(), 4094);
    assert_eq!(c.networks[4093].local_vlan.get(), 4094);
}

#[test]
fn rejects_more_networks_than_local_vlans() {
    let e = Config::from_str(&many_networks(MAX_NETWORKS + 1), "t.toml").unwrap_err();
    // The 4095th network starts on line 3 * 4094 + 1.
    check(&e, 3 * 4094 + 1, Some("network \"n4094\""), None);
    assert_eq!(e.kind, ErrorKind::TooManyNetworks { max: 4094 });
}

#[test]
fn rejects_more_ports_than_indexes() {
    let mut s = String::new();
    for i in 0..=MAX_PORTS {
        s.push_str(&format!("[[port]]\nname = \"p{i}\"\nmode = \"trunk\"\n"));
    }
    let e = Config::from_str(&s, "t.toml").unwrap_err();
    check(&e, 3 * 65535 + 1, Some("port \"p65535\""), None);
    assert_eq!(e.kind, ErrorKind::TooManyPorts { max: 65535 });
}

// ---------------------------------------------------------------- render

#[test]
fn render_round_trips_the_example() {
    let c = Config::from_file(example_path()).unwrap();
    let out = c.render();
    assert!(out.contains("local_vlan = 2  # allocated\n"), "{out}");
    assert!(out.contains("local_vlan = 1\n"), "{out}");
    assert!(out.contains("workers = 1\n"), "{out}");
    assert!(
        out.contains("vlans = { 10 = \"net-a\", 20 = \"net-b\", 30 = \"net-c\" }\n"),
        "{out}"
    );
    let back = Config::from_str(&out, "rendered").unwrap();
    assert_eq!(back, c.pinned());
    assert_eq!(back.render(), c.pinned().render());
}

#[test]
fn render_writes_defaults_explicitly() {
    let out = Config::default().render();
    for line in [
        "[switch]",
        "workers = 1",
        "mac_aging_secs = 300",
        "mac_table_size = 50000",
        "mac_limit_per_port = 0",
        "control_socket = \"/run/vswitch/vswitch.sock\"",
        "forward_only = false",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing in\n{out}");
    }
    assert_eq!(Config::from_str(&out, "r").unwrap(), Config::default());
}

#[test]
fn render_escapes_names() {
    let c = parse(&[
        "[[network]]",
        "name = 'we\"ird \\ név'",
        "segment = \"local\"",
        "[[port]]",
        "name = \"p\\u00e9\\\"x\"",
        "mode = \"trunk\"",
        "native = 'we\"ird \\ név'",
    ]);
    assert_eq!(c.networks[0].name, "we\"ird \\ név");
    assert_eq!(Config::from_str(&c.render(), "r").unwrap(), c.pinned());
}

// ------------------------------------------------------------- rejections

#[test]
fn display_names_file_line_entry_and_key() {
    let e = err(&with_nets(&[
        "",
        "[[port]]",
        "name = \"vm1\"",
        "mode = \"access\"",
        "network = \"net-x\"",
    ]));
    assert_eq!(
        e.to_string(),
        "t.toml:11: port \"vm1\": key \"network\": network \"net-x\" does not exist"
    );
    assert_eq!(e.kind, ErrorKind::NoSuchNetwork("net-x".into()));
}

#[test]
fn from_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("vswitch-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vswitch.toml");
    std::fs::write(&path, "[switch]\nworkers = 0\n").unwrap();
    let e = Config::from_file(&path).unwrap_err();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with(&format!(
        "{}:2: [switch]: key \"workers\": ",
        path.display()
    )));
    std::fs::remove_dir_all(&dir).unwrap();

    let e = Config::from_file(dir.join("missing.toml")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        matches!(
            e.kind,
            ErrorKind::Read {
                io: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("missing.toml: cannot read the file: "),
        "{e}"
    );
}

#[test]
fn rejects_toml_syntax_errors_with_line() {
    let e = err(&["[switch]", "workers = 1", "mac_aging_secs = "]);
    check(&e, 3, None, None);
    assert!(matches!(e.kind, ErrorKind::Syntax(_)), "{e}");
    let e = err(&["[switch", "workers = 1"]);
    check(&e, 1, None, None);
    let e = err(&["[switch]", "workers = 1", "", "workers = 2"]);
    check(&e, 4, None, Some("workers"));
    assert_eq!(e.kind, ErrorKind::Syntax("duplicate key".into()));
}

#[test]
fn rejects_unknown_keys() {
    let e = err(&["bogus = 1"]);
    check(&e, 1, None, Some("bogus"));
    assert!(matches!(e.kind, ErrorKind::UnknownKey(_)), "{e}");

    let e = err(&["[switch]", "workers = 1", "wokers = 2"]);
    check(&e, 3, Some("[switch]"), Some("wokers"));
    assert!(
        matches!(&e.kind, ErrorKind::UnknownKey(s) if s.contains("`workers`")),
        "{e}"
    );

    let e = err(&[
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
        "vlan = 3",
    ]);
    check(&e, 4, Some("network \"a\""), Some("vlan"));

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"p\"",
        "mode = \"access\"",
        "network = \"net-a\"",
        "tag = 5",
    ]));
    check(&e, 11, Some("port \"p\""), Some("tag"));

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"p\"",
        "mode = \"access\"",
        "network = \"net-a\"",
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"p\"",
        "static = true",
    ]));
    check(&e, 15, Some("fdb #1"), Some("static"));
}

#[test]
fn rejects_wrong_types_and_missing_keys() {
    let e = err(&["[switch]", "workers = \"two\""]);
    check(&e, 2, Some("[switch]"), Some("workers"));
    assert!(matches!(e.kind, ErrorKind::Invalid(_)), "{e}");

    let e = err(&["[[network]]", "name = \"a\""]);
    check(&e, 1, Some("network \"a\""), Some("segment"));
    assert_eq!(e.kind, ErrorKind::MissingKey);

    let e = err(&["[[port]]", "mode = \"access\""]);
    check(&e, 1, Some("port #1"), Some("name"));
    assert_eq!(e.kind, ErrorKind::MissingKey);

    let e = err(&["[[port]]", "name = \"p\"", "mode = \"acces\""]);
    check(&e, 3, Some("port \"p\""), Some("mode"));
    assert_eq!(e.kind, ErrorKind::UnknownMode("acces".into()));
    let e = err(&["[[port]]", "name = \"p\"", "mode = 1"]);
    check(&e, 3, Some("port \"p\""), Some("mode"));
    assert!(
        matches!(&e.kind, ErrorKind::Invalid(s) if s.ends_with("expected a string")),
        "{e}"
    );

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "vlans = { 10 = 5 }",
    ]));
    check(&e, 10, Some("port \"t\""), Some("vlans.10"));

    let e = err(&["network = 3"]);
    check(&e, 1, None, Some("network"));
}

#[test]
fn rejects_tables_and_arrays_swapped() {
    let e = err(&["", "[[switch]]", "workers = 1"]);
    check(&e, 2, None, Some("switch"));
    assert_eq!(
        e.kind,
        ErrorKind::WrongShape {
            expected: "a table: write [switch]"
        }
    );
    let e = err(&["", "[network]", "name = \"a\""]);
    check(&e, 2, None, Some("network"));
    assert!(matches!(e.kind, ErrorKind::WrongShape { .. }), "{e}");
    let e = err(&["port = { name = \"p\" }"]);
    check(&e, 1, None, Some("port"));
    let e = err(&[
        "fdb = [",
        "  { network = \"a\", mac = \"02:00:00:00:00:01\", port = \"p\" },",
        "  3,",
        "]",
    ]);
    check(&e, 3, Some("fdb #2"), None);
    assert_eq!(
        e.kind,
        ErrorKind::WrongShape {
            expected: "a table"
        }
    );
}

#[test]
fn rejects_bad_switch_values() {
    let e = err(&["[switch]", "workers = 0"]);
    check(&e, 2, Some("[switch]"), Some("workers"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::OutOfRange {
                value: 0,
                min: 1,
                max: 1024,
                ..
            }
        ),
        "{e}"
    );
    let e = err(&["[switch]", "workers = -1"]);
    check(&e, 2, Some("[switch]"), Some("workers"));
    let e = err(&["[switch]", "workers = 1025"]);
    check(&e, 2, Some("[switch]"), Some("workers"));

    for bad in ["14", "3601", "0", "-300"] {
        let line = format!("mac_aging_secs = {bad}");
        let e = err(&["[switch]", "workers = 2", &line]);
        check(&e, 3, Some("[switch]"), Some("mac_aging_secs"));
        assert!(
            matches!(
                e.kind,
                ErrorKind::OutOfRange {
                    min: 15,
                    max: 3600,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("out of range 15..=3600"), "{e}");
    }

    let e = err(&["[switch]", "mac_table_size = 0"]);
    check(&e, 2, Some("[switch]"), Some("mac_table_size"));
    let e = err(&["[switch]", "mac_limit_per_port = -1"]);
    check(&e, 2, Some("[switch]"), Some("mac_limit_per_port"));
    let e = err(&["[switch]", "control_socket = \"\""]);
    check(&e, 2, Some("[switch]"), Some("control_socket"));
    assert_eq!(e.kind, ErrorKind::Empty);
    let e = err(&["[switch]", "forward_only = \"yes\""]);
    check(&e, 2, Some("[switch]"), Some("forward_only"));
    assert!(matches!(e.kind, ErrorKind::Invalid(_)), "{e}");
    let e = err(&["[switch]", "forward_only = 1"]);
    check(&e, 2, Some("[switch]"), Some("forward_only"));
}

#[test]
fn rejects_duplicate_names() {
    let e = err(&[
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
    ]);
    check(&e, 5, Some("network \"a\""), Some("name"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateName {
            what: "network",
            first_line: 2
        }
    );

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"p\"",
        "mode = \"trunk\"",
        "[[port]]",
        "mode = \"trunk\"",
        "name = \"p\"",
    ]));
    check(&e, 12, Some("port \"p\""), Some("name"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateName {
            what: "port",
            first_line: 8
        }
    );

    // A port may share a network's name: separate name spaces.
    parse(&with_nets(&[
        "[[port]]",
        "name = \"net-a\"",
        "mode = \"access\"",
        "network = \"net-a\"",
    ]));
}

#[test]
fn rejects_bad_names() {
    let e = err(&["[[network]]", "name = \"\"", "segment = \"local\""]);
    check(&e, 2, Some("network #1"), Some("name"));
    assert_eq!(e.kind, ErrorKind::Empty);
    let e = err(&["[[port]]", "name = \"a\\tb\"", "mode = \"trunk\""]);
    check(&e, 2, Some("port \"a\\tb\""), Some("name"));
    assert_eq!(e.kind, ErrorKind::ControlCharacter);
    let e = err(&[
        "[[port]]",
        "name = \"p\"",
        "ifname = \"much-too-long-name\"",
        "mode = \"trunk\"",
    ]);
    check(&e, 3, Some("port \"p\""), Some("ifname"));
    assert!(matches!(e.kind, ErrorKind::InvalidIfname { .. }), "{e}");
}

#[test]
fn rejects_unknown_segments() {
    let e = err(&["[[network]]", "name = \"a\"", "segment = \"geneve\""]);
    check(&e, 3, Some("network \"a\""), Some("segment"));
    assert_eq!(e.kind, ErrorKind::UnknownSegment("geneve".into()));
}

#[test]
fn rejects_duplicate_local_vlan() {
    let e = err(&[
        "[[network]]",
        "name = \"a\"",
        "segment = \"local\"",
        "local_vlan = 7",
        "[[network]]",
        "name = \"b\"",
        "segment = \"local\"",
        "[[network]]",
        "name = \"c\"",
        "segment = \"local\"",
        "local_vlan = 7",
    ]);
    check(&e, 11, Some("network \"c\""), Some("local_vlan"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateLocalVlan {
            vlan: 7,
            other: "a".into(),
            other_line: 4
        }
    );
}

#[test]
fn rejects_local_vlan_out_of_range() {
    for bad in ["0", "4095", "4096", "-1", "65537"] {
        let line = format!("local_vlan = {bad}");
        let e = err(&["[[network]]", "name = \"a\"", "segment = \"local\"", &line]);
        check(&e, 4, Some("network \"a\""), Some("local_vlan"));
        assert!(
            matches!(
                e.kind,
                ErrorKind::OutOfRange {
                    min: 1,
                    max: 4094,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn rejects_trunk_vid_out_of_range_or_not_a_number() {
    for bad in ["0", "4095", "99999999999999999999999"] {
        let line = format!("vlans = {{ 10 = \"net-a\", {bad} = \"net-b\" }}");
        let e = err(&with_nets(&[
            "[[port]]",
            "name = \"t\"",
            "mode = \"trunk\"",
            &line,
        ]));
        let key = format!("vlans.{bad}");
        check(&e, 10, Some("port \"t\""), Some(&key));
        assert!(
            matches!(
                e.kind,
                ErrorKind::OutOfRange {
                    min: 1,
                    max: 4094,
                    ..
                }
            ),
            "{e}"
        );
    }
    for bad in ["x", "+5", "-1", ""] {
        let line = format!("vlans = {{ \"{bad}\" = \"net-b\" }}");
        let e = err(&with_nets(&[
            "[[port]]",
            "name = \"t\"",
            "mode = \"trunk\"",
            &line,
        ]));
        let key = format!("vlans.{bad}");
        check(&e, 10, Some("port \"t\""), Some(&key));
        assert!(matches!(e.kind, ErrorKind::InvalidVid(_)), "{e}");
    }
}

#[test]
fn rejects_trunk_vid_listed_twice() {
    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "[port.vlans]",
        "10 = \"net-a\"",
        "010 = \"net-b\"",
    ]));
    check(&e, 12, Some("port \"t\""), Some("vlans.010"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateVid {
            vid: 10,
            first_line: 11
        }
    );
}

#[test]
fn rejects_access_port_without_network() {
    let e = err(&with_nets(&[
        "",
        "[[port]]",
        "name = \"vm1\"",
        "mode = \"access\"",
    ]));
    check(&e, 8, Some("port \"vm1\""), Some("network"));
    assert_eq!(e.kind, ErrorKind::AccessWithoutNetwork);
}

#[test]
fn rejects_keys_of_the_other_mode() {
    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "network = \"net-a\"",
    ]));
    check(&e, 10, Some("port \"t\""), Some("network"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForMode {
                mode: "a trunk",
                ..
            }
        ),
        "{e}"
    );

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"a\"",
        "mode = \"access\"",
        "network = \"net-a\"",
        "vlans = { 10 = \"net-b\" }",
    ]));
    check(&e, 11, Some("port \"a\""), Some("vlans"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForMode {
                mode: "an access",
                ..
            }
        ),
        "{e}"
    );

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"a\"",
        "mode = \"access\"",
        "native = \"net-b\"",
        "network = \"net-a\"",
    ]));
    check(&e, 10, Some("port \"a\""), Some("native"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForMode {
                mode: "an access",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn rejects_references_to_missing_networks() {
    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "vlans = { 10 = \"net-a\", 20 = \"net-x\" }",
    ]));
    check(&e, 10, Some("port \"t\""), Some("vlans.20"));
    assert_eq!(e.kind, ErrorKind::NoSuchNetwork("net-x".into()));

    let e = err(&with_nets(&[
        "[[port]]",
        "name = \"t\"",
        "mode = \"trunk\"",
        "native = \"net-y\"",
    ]));
    check(&e, 10, Some("port \"t\""), Some("native"));
    assert_eq!(e.kind, ErrorKind::NoSuchNetwork("net-y".into()));

    // A network defined after the port is still found.
    parse(&[
        "[[port]]",
        "name = \"p\"",
        "mode = \"access\"",
        "network = \"late\"",
        "[[network]]",
        "name = \"late\"",
        "segment = \"local\"",
    ]);
}

const PORTS: &[&str] = &[
    "[[port]]", // 7
    "name = \"vm1\"",
    "mode = \"access\"",
    "network = \"net-a\"",
    "[[port]]", // 11
    "name = \"t\"",
    "mode = \"trunk\"",
    "vlans = { 10 = \"net-b\" }",
];

fn with_ports(fdb: &[&str]) -> Vec<String> {
    let rest: Vec<&str> = PORTS.iter().chain(fdb).copied().collect();
    with_nets(&rest)
}

#[test]
fn rejects_static_entries_with_unknown_network_or_port() {
    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-x\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"vm1\"",
    ]));
    check(&e, 16, Some("fdb #1"), Some("network"));
    assert_eq!(e.kind, ErrorKind::NoSuchNetwork("net-x".into()));

    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"vm9\"",
    ]));
    check(&e, 18, Some("fdb #1"), Some("port"));
    assert_eq!(e.kind, ErrorKind::NoSuchPort("vm9".into()));

    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-a\"",
        "port = \"vm1\"",
    ]));
    check(&e, 15, Some("fdb #1"), Some("mac"));
    assert_eq!(e.kind, ErrorKind::MissingKey);
}

#[test]
fn rejects_static_entries_on_ports_outside_the_network() {
    // An access port of another network.
    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-b\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"vm1\"",
    ]));
    check(&e, 18, Some("fdb #1"), Some("port"));
    assert_eq!(
        e.kind,
        ErrorKind::PortNotInNetwork {
            network: "net-b".into()
        }
    );
    // A trunk without the network.
    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"t\"",
    ]));
    check(&e, 18, Some("fdb #1"), Some("port"));
    assert!(matches!(e.kind, ErrorKind::PortNotInNetwork { .. }), "{e}");
    // ...which is fine on the trunk's network.
    parse(&with_ports(&[
        "[[fdb]]",
        "network = \"net-b\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"t\"",
    ]));
}

#[test]
fn rejects_duplicate_static_entries() {
    let e = err(&with_ports(&[
        "[[fdb]]", // 15
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"vm1\"",
        "[[fdb]]", // 19
        "network = \"net-a\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"vm1\"",
    ]));
    check(&e, 21, Some("fdb #2"), Some("mac"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateStaticEntry {
            mac: MacAddr::new([2, 0, 0, 0, 0, 1]),
            first_line: 17
        }
    );
    // The same address written differently is the same entry.
    let e = err(&with_ports(&[
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"0a:00:00:00:00:01\"",
        "port = \"vm1\"",
        "[[fdb]]",
        "network = \"net-a\"",
        "mac = \"0A-00-00-00-00-01\"",
        "port = \"vm1\"",
    ]));
    check(&e, 21, Some("fdb #2"), Some("mac"));
}

#[test]
fn rejects_bad_and_non_unicast_macs() {
    for bad in [
        "fa:16:3e:00:00",
        "fa:16:3e:00:00:01:02",
        "zz:16:3e:00:00:01",
        "+a:16:3e:00:00:01",
        "fa163e000001",
        "",
    ] {
        let line = format!("mac = \"{bad}\"");
        let e = err(&with_ports(&[
            "[[fdb]]",
            "network = \"net-a\"",
            &line,
            "port = \"vm1\"",
        ]));
        check(&e, 17, Some("fdb #1"), Some("mac"));
        assert_eq!(e.kind, ErrorKind::InvalidMac(bad.into()));
    }
    for bad in [
        "01:00:5e:00:00:01",
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "33:33:00:00:00:01",
    ] {
        let line = format!("mac = \"{bad}\"");
        let e = err(&with_ports(&[
            "[[fdb]]",
            "network = \"net-a\"",
            &line,
            "port = \"vm1\"",
        ]));
        check(&e, 17, Some("fdb #1"), Some("mac"));
        assert_eq!(e.kind, ErrorKind::NotUnicast(bad.parse().unwrap()));
    }
}

// ------------------------------------------------- issue 4: tunnels, physnets

/// An underlay (lines 1–5) and a physnet (lines 6–9); `rest` starts at line 10.
const INFRA: &[&str] = &[
    "[underlay]",                        // 1
    "port = \"uplink\"",                 // 2
    "ifname = \"eth1\"",                 // 3
    "local_ip = \"198.18.0.1/24\"",      // 4
    "local_mac = \"02:00:00:00:00:01\"", // 5
    "[[physnet]]",                       // 6
    "name = \"physnet1\"",               // 7
    "port = \"phys1\"",                  // 8
    "ifname = \"eth2\"",                 // 9
];

fn with_infra(rest: &[&str]) -> Vec<String> {
    INFRA.iter().chain(rest).map(|s| s.to_string()).collect()
}

/// `INFRA`, then a vxlan network "net-x" (lines 10–14, VNI 5010, local VLAN 1),
/// then `rest` from line 15.
fn with_vxlan(rest: &[&str]) -> Vec<String> {
    let net: &[&str] = &[
        "[[network]]",                     // 10
        "name = \"net-x\"",                // 11
        "segment = \"vxlan\"",             // 12
        "id = 5010",                       // 13
        "remote_vteps = [\"198.18.0.2\"]", // 14
    ];
    let rest: Vec<&str> = net.iter().chain(rest).copied().collect();
    with_infra(&rest)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

const ISSUE4: &[&str] = &[
    "[underlay]",
    "port = \"uplink\"",
    "ifname = \"eth1\"",
    "local_ip = \"198.18.0.1/24\"",
    "local_mac = \"02:00:00:00:00:01\"",
    "gateway = \"198.18.0.254\"",
    "mtu = 1600",
    "df = false",
    "vxlan_port = 8472",
    "neighbors = [ { ip = \"198.18.0.2\", mac = \"02:00:00:00:00:02\" },",
    "              { ip = \"10.9.0.1\", mac = \"02:00:00:00:00:03\" } ]",
    "",
    "[[physnet]]",
    "name = \"physnet1\"",
    "port = \"phys1\"",
    "ifname = \"eth2\"",
    "[[physnet]]",
    "name = \"physnet2\"",
    "port = \"phys2\"",
    "mtu = 9000",
    "",
    "[[network]]",
    "name = \"net-a\"",
    "segment = \"local\"",
    "[[network]]",
    "name = \"net-b\"",
    "segment = \"vxlan\"",
    "id = 5010",
    "remote_vteps = [\"198.18.0.2\", \"198.18.0.3\"]",
    "[[network]]",
    "name = \"net-v200\"",
    "segment = \"vlan\"",
    "id = 200",
    "physnet = \"physnet1\"",
    "[[network]]",
    "name = \"net-v100\"",
    "segment = \"vlan\"",
    "id = 100",
    "physnet = \"physnet1\"",
    "local_vlan = 7",
    "[[network]]",
    "name = \"net-flat\"",
    "segment = \"flat\"",
    "physnet = \"physnet1\"",
    "[[network]]",
    "name = \"net-g\"",
    "segment = \"gre\"",
    "id = 4294967295",
    "remote_vteps = [\"198.18.0.3\", \"10.9.0.1\"]",
    "[[network]]",
    "name = \"net-v100b\"",
    "segment = \"vlan\"",
    "id = 100",
    "physnet = \"physnet2\"",
    "",
    "[[port]]",
    "name = \"vm1\"",
    "ifname = \"tap-vm1\"",
    "mode = \"access\"",
    "network = \"net-b\"",
    "",
    "[[fdb]]",
    "network = \"net-b\"",
    "mac = \"fa:16:3e:00:00:02\"",
    "remote = \"198.18.0.9\"",
    "[[fdb]]",
    "network = \"net-g\"",
    "mac = \"fa:16:3e:00:00:02\"",
    "remote = \"198.18.0.2\"",
    "[[fdb]]",
    "network = \"net-v100\"",
    "mac = \"fa:16:3e:00:00:05\"",
    "port = \"phys1\"",
    "",
    "[[arp]]",
    "network = \"net-b\"",
    "ip = \"10.1.0.2\"",
    "mac = \"fa:16:3e:00:00:02\"",
    "[[arp]]",
    "network = \"net-a\"",
    "ip = \"10.1.0.2\"",
    "mac = \"fa:16:3e:00:00:03\"",
];

#[test]
fn issue4_config_resolves_field_by_field() {
    let c = parse(ISSUE4);
    // VTEPs: networks' remote_vteps in file order, then [[fdb]] remotes, each once.
    assert_eq!(
        c.vteps,
        vec![
            ip("198.18.0.2"),
            ip("198.18.0.3"),
            ip("10.9.0.1"),
            ip("198.18.0.9")
        ]
    );
    let net = |name: &str, segment, v: u16, allocated, vteps: &[u16]| Network {
        name: name.into(),
        segment,
        local_vlan: vid(v),
        local_vlan_allocated: allocated,
        remote_vteps: vteps.iter().map(|&i| VtepIdx(i)).collect(),
        mac_limit: 0,
    };
    let p1 = PhysnetIdx(0);
    let p2 = PhysnetIdx(1);
    assert_eq!(
        c.networks,
        vec![
            net("net-a", Segment::Local, 1, true, &[]),
            net(
                "net-b",
                Segment::Vxlan {
                    vni: Vni::try_new(5010).unwrap()
                },
                2,
                true,
                &[0, 1]
            ),
            net(
                "net-v200",
                Segment::Vlan {
                    physnet: p1,
                    vid: vid(200)
                },
                3,
                true,
                &[]
            ),
            net(
                "net-v100",
                Segment::Vlan {
                    physnet: p1,
                    vid: vid(100)
                },
                7,
                false,
                &[]
            ),
            net("net-flat", Segment::Flat { physnet: p1 }, 4, true, &[]),
            net(
                "net-g",
                Segment::Gre {
                    key: GreKey::new(u32::MAX)
                },
                5,
                true,
                &[1, 2]
            ),
            net(
                "net-v100b",
                Segment::Vlan {
                    physnet: p2,
                    vid: vid(100)
                },
                6,
                true,
                &[]
            ),
        ]
    );
    // Ports: [[port]]s, then one per physnet, then the underlay's.
    assert_eq!(
        c.ports,
        vec![
            Port {
                name: "vm1".into(),
                ifname: Some("tap-vm1".into()),
                mode: PortMode::Access { network: NetIdx(1) },
                role: PortRole::Local,
                policy: Default::default(),
            },
            Port {
                name: "phys1".into(),
                ifname: Some("eth2".into()),
                mode: PortMode::Trunk {
                    vlans: vec![(vid(100), NetIdx(3)), (vid(200), NetIdx(2))],
                    native: Some(NetIdx(4)),
                },
                role: PortRole::Physnet(p1),
                policy: Default::default(),
            },
            Port {
                name: "phys2".into(),
                ifname: None,
                mode: PortMode::Trunk {
                    vlans: vec![(vid(100), NetIdx(6))],
                    native: None,
                },
                role: PortRole::Physnet(p2),
                policy: Default::default(),
            },
            Port {
                name: "uplink".into(),
                ifname: Some("eth1".into()),
                mode: PortMode::Trunk {
                    vlans: vec![],
                    native: None,
                },
                role: PortRole::Underlay,
                policy: Default::default(),
            },
        ]
    );
    assert_eq!(
        c.physnets,
        vec![
            Physnet {
                name: "physnet1".into(),
                port: PortIdx(1),
                mtu: 1500,
            },
            Physnet {
                name: "physnet2".into(),
                port: PortIdx(2),
                mtu: 9000,
            },
        ]
    );
    assert_eq!(
        c.underlay,
        Some(Underlay {
            port: PortIdx(3),
            local_ip: ip("198.18.0.1"),
            prefix_len: Some(24),
            local_mac: Some(mac("02:00:00:00:00:01")),
            gateway: Some(ip("198.18.0.254")),
            mtu: 1600,
            df: false,
            vxlan_port: 8472,
            neighbors: vec![
                (ip("198.18.0.2"), mac("02:00:00:00:00:02")),
                (ip("10.9.0.1"), mac("02:00:00:00:00:03")),
            ],
        })
    );
    assert_eq!(
        c.static_fdb,
        vec![
            StaticFdb {
                network: NetIdx(1),
                mac: mac("fa:16:3e:00:00:02"),
                target: FdbTarget::Remote(VtepIdx(3)),
            },
            StaticFdb {
                network: NetIdx(5),
                mac: mac("fa:16:3e:00:00:02"),
                target: FdbTarget::Remote(VtepIdx(0)),
            },
            StaticFdb {
                network: NetIdx(3),
                mac: mac("fa:16:3e:00:00:05"),
                target: FdbTarget::Port(PortIdx(1)),
            },
        ]
    );
    assert_eq!(
        c.arp,
        vec![
            ArpEntry {
                network: NetIdx(1),
                ip: "10.1.0.2".parse().unwrap(),
                mac: mac("fa:16:3e:00:00:02"),
            },
            ArpEntry {
                network: NetIdx(0),
                ip: "10.1.0.2".parse().unwrap(),
                mac: mac("fa:16:3e:00:00:03"),
            },
        ]
    );
    // Usable MTUs: underlay 1600 over IPv4.
    let mtus: Vec<Option<u16>> = (0..7).map(|n| c.network_mtu(NetIdx(n))).collect();
    assert_eq!(
        mtus,
        vec![
            None,
            Some(1550),
            Some(1500),
            Some(1500),
            Some(1500),
            Some(1558),
            Some(9000)
        ]
    );
    assert_eq!(c.network_mtu(NetIdx(7)), None);
    assert_eq!(c.physnet_by_name("physnet2"), Some(p2));
    assert_eq!(c.physnet(p2).map(|p| p.mtu), Some(9000));
    assert_eq!(c.vtep(VtepIdx(2)), Some(ip("10.9.0.1")));
    assert_eq!(c.vtep(VtepIdx(4)), None);
    assert_eq!(c.port_by_name("uplink"), Some(PortIdx(3)));
    // A physnet port is the reference for provider tagging.
    let phys1 = &c.ports[1].mode;
    assert_eq!(phys1.ingress(Some(vid(100))), Some(NetIdx(3)));
    assert_eq!(phys1.ingress(None), Some(NetIdx(4)));
    assert_eq!(phys1.egress(NetIdx(2)), Some(EgressTag::Tagged(vid(200))));
    assert_eq!(phys1.egress(NetIdx(1)), None);
}

#[test]
fn issue4_config_renders_and_round_trips() {
    let c = parse(ISSUE4);
    let out = c.render();
    for line in [
        "[underlay]",
        "port = \"uplink\"",
        "local_ip = \"198.18.0.1/24\"",
        "gateway = \"198.18.0.254\"",
        "df = false",
        "vxlan_port = 8472",
        "  { ip = \"198.18.0.2\", mac = \"02:00:00:00:00:02\" },",
        "mtu = 9000",
        "remote_vteps = [\"198.18.0.2\", \"198.18.0.3\"]",
        "remote = \"198.18.0.9\"",
        "# mtu 1550",
        "# mtu 1558",
        "# mtu 9000",
        "# mtu: no limit (local)",
        "[[arp]]",
        "ip = \"10.1.0.2\"",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} missing in\n{out}");
    }
    // Physnet and underlay ports are written in their sections only.
    assert_eq!(out.matches("[[port]]").count(), 1, "{out}");
    let back = Config::from_str(&out, "rendered").unwrap();
    assert_eq!(back, c.pinned());
    assert_eq!(back.render(), c.pinned().render());
}

#[test]
fn underlay_and_physnet_defaults() {
    let c = parse(&[
        "[underlay]",
        "port = \"uplink\"",
        "local_ip = \"2001:db8::1\"",
        "[[physnet]]",
        "name = \"p\"",
        "port = \"phys\"",
        "[[network]]",
        "name = \"v\"",
        "segment = \"vxlan\"",
        "id = 1",
        "[[network]]",
        "name = \"g\"",
        "segment = \"gre\"",
        "id = 1",
        "[[network]]",
        "name = \"f\"",
        "segment = \"flat\"",
        "physnet = \"p\"",
    ]);
    let u = c.underlay.as_ref().unwrap();
    assert_eq!(
        *u,
        Underlay {
            port: PortIdx(1),
            local_ip: ip("2001:db8::1"),
            prefix_len: None,
            local_mac: None,
            gateway: None,
            mtu: 1500,
            df: true,
            vxlan_port: 4789,
            neighbors: vec![],
        }
    );
    assert_eq!(c.physnets[0].mtu, 1500);
    assert_eq!(c.ports[0].ifname, None);
    // A VNI and a GRE key may be equal; an empty flood list is valid.
    assert!(c.networks[0].remote_vteps.is_empty());
    assert!(c.vteps.is_empty());
    // Over IPv6: VXLAN − 70, GRE − 62.
    assert_eq!(c.network_mtu(NetIdx(0)), Some(1430));
    assert_eq!(c.network_mtu(NetIdx(1)), Some(1438));
    assert_eq!(c.network_mtu(NetIdx(2)), Some(1500));
    let out = c.render();
    assert!(out.contains("\nneighbors = []\n"), "{out}");
    assert!(out.contains("\nremote_vteps = []\n"), "{out}");
    assert!(!out.contains("local_mac"), "{out}");
    assert_eq!(Config::from_str(&out, "r").unwrap(), c.pinned());
}

#[test]
fn underlay_without_tunnel_networks_and_same_vid_on_two_physnets_are_valid() {
    let c = parse(&with_infra(&[
        "[[physnet]]",
        "name = \"physnet2\"",
        "port = \"phys2\"",
        "[[network]]",
        "name = \"a\"",
        "segment = \"vlan\"",
        "id = 10",
        "physnet = \"physnet1\"",
        "[[network]]",
        "name = \"b\"",
        "segment = \"vlan\"",
        "id = 10",
        "physnet = \"physnet2\"",
    ]));
    assert!(c.underlay.is_some());
    assert_eq!(c.ports.len(), 3);
    // The physnet port carries nothing but its own networks; a physnet without
    // networks is an empty trunk.
    let c = parse(INFRA);
    assert_eq!(
        c.ports[0].mode,
        PortMode::Trunk {
            vlans: vec![],
            native: None
        }
    );
    assert_eq!(c.ports[0].role, PortRole::Physnet(PhysnetIdx(0)));
    assert_eq!(c.ports[1].role, PortRole::Underlay);
}

#[test]
fn a_vtep_named_twice_is_one_vtep() {
    let c = parse(&with_vxlan(&[
        "[[network]]",
        "name = \"net-g\"",
        "segment = \"gre\"",
        "id = 9",
        "remote_vteps = [\"198.18.0.3\", \"198.18.0.2\"]",
        "[[fdb]]",
        "network = \"net-g\"",
        "mac = \"02:00:00:00:00:09\"",
        "remote = \"198.18.0.3\"",
    ]));
    assert_eq!(c.vteps, vec![ip("198.18.0.2"), ip("198.18.0.3")]);
    assert_eq!(c.networks[1].remote_vteps, vec![VtepIdx(1), VtepIdx(0)]);
    assert_eq!(c.static_fdb[0].target, FdbTarget::Remote(VtepIdx(1)));
}

#[test]
fn rejects_shape_mistakes_of_new_sections() {
    let e = err(&["", "[[underlay]]", "port = \"u\""]);
    check(&e, 2, None, Some("underlay"));
    assert!(
        matches!(e.kind, ErrorKind::WrongShape { expected } if expected.starts_with("a table: write [underlay]")),
        "{e}"
    );
    let e = err(&["", "[physnet]", "name = \"p\""]);
    check(&e, 2, None, Some("physnet"));
    assert!(
        matches!(e.kind, ErrorKind::WrongShape { expected } if expected.contains("[[physnet]]")),
        "{e}"
    );
    let e = err(&["", "[arp]", "ip = \"10.0.0.1\""]);
    check(&e, 2, None, Some("arp"));
    assert!(
        matches!(e.kind, ErrorKind::WrongShape { expected } if expected.contains("[[arp]]")),
        "{e}"
    );
    let e = err(&["physnet = [", "  3,", "]"]);
    check(&e, 2, Some("physnet #1"), None);
    let e = err(&["underlay = 3"]);
    check(&e, 1, None, Some("underlay"));
}

#[test]
fn rejects_unknown_keys_in_new_sections() {
    let e = err(&with_infra(&[
        "[[arp]]",
        "network = \"x\"",
        "ip = \"10.0.0.1\"",
        "mac = \"02:00:00:00:00:01\"",
        "port = \"p\"",
    ]));
    check(&e, 14, Some("arp #1"), Some("port"));
    assert!(matches!(e.kind, ErrorKind::UnknownKey(_)), "{e}");

    let mut lines = INFRA.to_vec();
    lines.insert(5, "tunnel_csum = true");
    let e = err(&lines);
    check(&e, 6, Some("[underlay]"), Some("tunnel_csum"));
    assert!(matches!(e.kind, ErrorKind::UnknownKey(_)), "{e}");

    let e = err(&with_infra(&["bridge = \"br-phys\""]));
    check(&e, 10, Some("physnet \"physnet1\""), Some("bridge"));

    let mut lines = INFRA.to_vec();
    lines.insert(
        5,
        "neighbors = [ { ip = \"198.18.0.2\", mac = \"02:00:00:00:00:02\", age = 1 } ]",
    );
    let e = err(&lines);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.age"));
    assert!(matches!(e.kind, ErrorKind::UnknownKey(_)), "{e}");

    let mut lines = INFRA.to_vec();
    lines.insert(5, "neighbors = [ { ip = \"198.18.0.2\" } ]");
    let e = err(&lines);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.mac"));
    assert_eq!(e.kind, ErrorKind::MissingKey);

    let e = err(&with_vxlan(&["vni = 3"]));
    check(&e, 15, Some("network \"net-x\""), Some("vni"));
}

#[test]
fn rejects_missing_required_keys_of_underlay_and_physnet() {
    let e = err(&["", "[underlay]", "local_ip = \"198.18.0.1\""]);
    check(&e, 2, Some("[underlay]"), Some("port"));
    assert_eq!(e.kind, ErrorKind::MissingKey);
    let e = err(&["[underlay]", "port = \"u\""]);
    check(&e, 1, Some("[underlay]"), Some("local_ip"));
    assert_eq!(e.kind, ErrorKind::MissingKey);
    let e = err(&["[[physnet]]", "name = \"p\""]);
    check(&e, 1, Some("physnet \"p\""), Some("port"));
    assert_eq!(e.kind, ErrorKind::MissingKey);
}

#[test]
fn rejects_bad_physnets() {
    let e = err(&with_infra(&[
        "[[physnet]]",
        "name = \"physnet1\"",
        "port = \"phys2\"",
    ]));
    check(&e, 11, Some("physnet \"physnet1\""), Some("name"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateName {
            what: "physnet",
            first_line: 7
        }
    );
    let e = err(&["[[physnet]]", "name = \"\"", "port = \"p\""]);
    check(&e, 2, Some("physnet #1"), Some("name"));
    assert_eq!(e.kind, ErrorKind::Empty);
    let e = err(&["[[physnet]]", "name = \"p\"", "port = \"\""]);
    check(&e, 3, Some("physnet \"p\""), Some("port"));
    assert_eq!(e.kind, ErrorKind::Empty);
    let e = err(&[
        "[[physnet]]",
        "name = \"p\"",
        "port = \"p\"",
        "ifname = \"a/b\"",
    ]);
    check(&e, 4, Some("physnet \"p\""), Some("ifname"));
    assert!(matches!(e.kind, ErrorKind::InvalidIfname { .. }), "{e}");
    for bad in ["67", "65536", "0", "-1"] {
        let line = format!("mtu = {bad}");
        let e = err(&["[[physnet]]", "name = \"p\"", "port = \"p\"", &line]);
        check(&e, 4, Some("physnet \"p\""), Some("mtu"));
        assert!(
            matches!(
                e.kind,
                ErrorKind::OutOfRange {
                    min: 68,
                    max: 65535,
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn rejects_port_names_shared_across_sections() {
    // A physnet port named like a [[port]].
    let e = err(&with_infra(&[
        "[[port]]",
        "name = \"phys1\"",
        "mode = \"trunk\"",
    ]));
    check(&e, 8, Some("physnet \"physnet1\""), Some("port"));
    assert_eq!(
        e.kind,
        ErrorKind::PortNameTaken {
            other: "port \"phys1\"".into(),
            other_line: 11
        }
    );
    assert!(
        e.to_string()
            .contains("already used by port \"phys1\" (line 11)"),
        "{e}"
    );
    // The underlay port named like a physnet port.
    let mut lines = INFRA.to_vec();
    lines[1] = "port = \"phys1\"";
    let e = err(&lines);
    check(&e, 2, Some("[underlay]"), Some("port"));
    assert_eq!(
        e.kind,
        ErrorKind::PortNameTaken {
            other: "physnet \"physnet1\"".into(),
            other_line: 8
        }
    );
    // Two physnets with one port.
    let e = err(&with_infra(&[
        "[[physnet]]",
        "name = \"physnet2\"",
        "port = \"phys1\"",
    ]));
    check(&e, 12, Some("physnet \"physnet2\""), Some("port"));
    assert!(
        matches!(e.kind, ErrorKind::PortNameTaken { other_line: 8, .. }),
        "{e}"
    );
    // The underlay port named like a [[port]].
    let e = err(&with_infra(&[
        "[[port]]",
        "name = \"uplink\"",
        "mode = \"trunk\"",
    ]));
    check(&e, 2, Some("[underlay]"), Some("port"));
    assert_eq!(
        e.kind,
        ErrorKind::PortNameTaken {
            other: "port \"uplink\"".into(),
            other_line: 11
        }
    );
}

#[test]
fn rejects_an_ifname_used_twice() {
    let e = err(&[
        "[[port]]",
        "name = \"a\"",
        "ifname = \"tap0\"",
        "mode = \"trunk\"",
        "[[port]]",
        "name = \"b\"",
        "ifname = \"tap0\"",
        "mode = \"trunk\"",
    ]);
    check(&e, 7, Some("port \"b\""), Some("ifname"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateIfname {
            other: "port \"a\"".into(),
            other_line: 3
        }
    );
    let e = err(&with_infra(&[
        "[[port]]",
        "name = \"p\"",
        "ifname = \"eth2\"",
        "mode = \"trunk\"",
    ]));
    check(&e, 9, Some("physnet \"physnet1\""), Some("ifname"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateIfname {
            other: "port \"p\"".into(),
            other_line: 12
        }
    );
    let mut lines = INFRA.to_vec();
    lines[2] = "ifname = \"eth2\"";
    let e = err(&lines);
    check(&e, 3, Some("[underlay]"), Some("ifname"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateIfname {
            other: "physnet \"physnet1\"".into(),
            other_line: 9
        }
    );
}

/// A network "n" with the given segment lines, after `INFRA` (lines 10–12 + extra).
fn net_n(segment: &str, extra: &[&str]) -> Vec<String> {
    let seg = format!("segment = \"{segment}\"");
    let mut lines = vec!["[[network]]", "name = \"n\"", seg.as_str()];
    lines.extend(extra);
    with_infra(&lines)
}

#[test]
fn rejects_segment_id_missing_or_forbidden() {
    for seg in ["vlan", "vxlan", "gre"] {
        let extra: &[&str] = if seg == "vlan" {
            &["physnet = \"physnet1\""]
        } else {
            &[]
        };
        let e = err(&net_n(seg, extra));
        check(&e, 10, Some("network \"n\""), Some("id"));
        assert!(
            matches!(e.kind, ErrorKind::RequiredForSegment { segment, .. } if segment == seg),
            "{e}"
        );
    }
    let e = err(&net_n("local", &["id = 5"]));
    check(&e, 13, Some("network \"n\""), Some("id"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForSegment {
                segment: "local",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&net_n("flat", &["physnet = \"physnet1\"", "id = 5"]));
    check(&e, 14, Some("network \"n\""), Some("id"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForSegment {
                segment: "flat",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn rejects_segment_id_out_of_range() {
    let cases: &[(&str, &str, u32, u32)] = &[
        ("vlan", "0", 1, 4094),
        ("vlan", "4095", 1, 4094),
        ("vxlan", "0", 1, 16_777_215),
        ("vxlan", "16777216", 1, 16_777_215),
        ("gre", "0", 1, u32::MAX),
        ("gre", "4294967296", 1, u32::MAX),
        ("gre", "-1", 1, u32::MAX),
    ];
    for &(seg, bad, lo, hi) in cases {
        let id = format!("id = {bad}");
        let extra: Vec<&str> = if seg == "vlan" {
            vec![&id, "physnet = \"physnet1\""]
        } else {
            vec![&id]
        };
        let e = err(&net_n(seg, &extra));
        check(&e, 13, Some("network \"n\""), Some("id"));
        assert!(
            matches!(e.kind, ErrorKind::OutOfRange { min, max, .. } if min == lo && max == hi),
            "{seg} {bad}: {e}"
        );
    }
    // The bounds themselves are accepted.
    parse(&net_n("vxlan", &["id = 16777215"]));
    parse(&net_n("gre", &["id = 1"]));
    parse(&net_n("vlan", &["id = 4094", "physnet = \"physnet1\""]));
}

#[test]
fn rejects_physnet_missing_forbidden_or_unknown() {
    for seg in ["flat", "vlan"] {
        let extra: &[&str] = if seg == "vlan" { &["id = 5"] } else { &[] };
        let e = err(&net_n(seg, extra));
        check(&e, 10, Some("network \"n\""), Some("physnet"));
        assert!(
            matches!(e.kind, ErrorKind::RequiredForSegment { segment, .. } if segment == seg),
            "{e}"
        );
    }
    for (seg, extra) in [
        ("local", None),
        ("vxlan", Some("id = 5")),
        ("gre", Some("id = 5")),
    ] {
        let mut lines: Vec<&str> = extra.into_iter().collect();
        lines.push("physnet = \"physnet1\"");
        let e = err(&net_n(seg, &lines));
        let line = 13 + u32::from(extra.is_some());
        check(&e, line, Some("network \"n\""), Some("physnet"));
        assert!(
            matches!(e.kind, ErrorKind::NotAllowedForSegment { segment, .. } if segment == seg),
            "{e}"
        );
    }
    let e = err(&net_n("flat", &["physnet = \"physnet9\""]));
    check(&e, 13, Some("network \"n\""), Some("physnet"));
    assert_eq!(e.kind, ErrorKind::NoSuchPhysnet("physnet9".into()));
}

#[test]
fn rejects_tunnel_networks_without_underlay() {
    for seg in ["vxlan", "gre"] {
        let line = format!("segment = \"{seg}\"");
        let e = err(&["[[network]]", "name = \"n\"", &line, "id = 5"]);
        check(&e, 3, Some("network \"n\""), Some("segment"));
        assert!(
            matches!(e.kind, ErrorKind::NeedsUnderlay { segment } if segment == seg),
            "{e}"
        );
        assert!(e.to_string().contains("needs an [underlay] section"), "{e}");
    }
}

#[test]
fn rejects_bad_remote_vteps() {
    // Only on vxlan and gre.
    let e = err(&net_n("local", &["remote_vteps = []"]));
    check(&e, 13, Some("network \"n\""), Some("remote_vteps"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForSegment {
                segment: "local",
                ..
            }
        ),
        "{e}"
    );
    let e = err(&net_n(
        "vlan",
        &[
            "id = 3",
            "physnet = \"physnet1\"",
            "remote_vteps = [\"198.18.0.2\"]",
        ],
    ));
    check(&e, 15, Some("network \"n\""), Some("remote_vteps"));

    let vteps = |list: &str| {
        let line = format!("remote_vteps = [{list}]");
        err(&net_n("vxlan", &["id = 5", &line]))
    };
    let e = vteps("\"198.18.0.2\", \"198.18.0.x\"");
    check(&e, 14, Some("network \"n\""), Some("remote_vteps.1"));
    assert_eq!(e.kind, ErrorKind::InvalidIp("198.18.0.x".into()));
    let e = vteps("\"2001:db8::2\"");
    check(&e, 14, Some("network \"n\""), Some("remote_vteps.0"));
    assert_eq!(e.kind, ErrorKind::WrongFamily { expected: "IPv4" });
    let e = vteps("\"198.18.0.1\"");
    check(&e, 14, Some("network \"n\""), Some("remote_vteps.0"));
    assert_eq!(e.kind, ErrorKind::IsLocalIp(ip("198.18.0.1")));
    for bad in ["0.0.0.0", "224.0.0.5", "239.1.1.1", "255.255.255.255"] {
        let e = vteps(&format!("\"{bad}\""));
        check(&e, 14, Some("network \"n\""), Some("remote_vteps.0"));
        assert_eq!(e.kind, ErrorKind::NotUnicastIp(ip(bad)));
    }
    let e = err(&net_n(
        "gre",
        &[
            "id = 5",
            "remote_vteps = [",
            "  \"198.18.0.2\",",
            "  \"198.18.0.2\",",
            "]",
        ],
    ));
    check(&e, 16, Some("network \"n\""), Some("remote_vteps.1"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateAddress {
            ip: ip("198.18.0.2"),
            first_line: 15
        }
    );
}

#[test]
fn rejects_duplicate_segments() {
    // VNI among vxlan networks.
    let e = err(&with_vxlan(&[
        "[[network]]",
        "name = \"y\"",
        "segment = \"vxlan\"",
        "id = 5010",
    ]));
    check(&e, 18, Some("network \"y\""), Some("id"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateVni {
            vni: 5010,
            other: "net-x".into(),
            other_line: 13
        }
    );
    // ...but a GRE key may equal a VNI.
    parse(&with_vxlan(&[
        "[[network]]",
        "name = \"y\"",
        "segment = \"gre\"",
        "id = 5010",
    ]));
    // Key among gre networks.
    let e = err(&with_infra(&[
        "[[network]]",
        "name = \"g1\"",
        "segment = \"gre\"",
        "id = 7",
        "[[network]]",
        "name = \"g2\"",
        "segment = \"gre\"",
        "id = 7",
    ]));
    check(&e, 17, Some("network \"g2\""), Some("id"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateGreKey {
            key: 7,
            other: "g1".into(),
            other_line: 13
        }
    );
    // (physnet, VID) among vlan networks.
    let e = err(&with_infra(&[
        "[[network]]",
        "name = \"v1\"",
        "segment = \"vlan\"",
        "id = 100",
        "physnet = \"physnet1\"",
        "[[network]]",
        "name = \"v2\"",
        "segment = \"vlan\"",
        "physnet = \"physnet1\"",
        "id = 100",
    ]));
    check(&e, 19, Some("network \"v2\""), Some("id"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateProviderVid {
            vid: 100,
            other: "v1".into(),
            other_line: 13
        }
    );
    // One flat network per physnet.
    let e = err(&with_infra(&[
        "[[network]]",
        "name = \"f1\"",
        "segment = \"flat\"",
        "physnet = \"physnet1\"",
        "[[network]]",
        "name = \"f2\"",
        "segment = \"flat\"",
        "physnet = \"physnet1\"",
    ]));
    check(&e, 17, Some("network \"f2\""), Some("physnet"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateFlat {
            other: "f1".into(),
            other_line: 13
        }
    );
    assert!(e.to_string().contains("\"f1\" (line 13)"), "{e}");
}

/// `INFRA` with line 4 (`local_ip`) replaced and `extra` lines inserted after it
/// (from line 5 on).
fn underlay_with(local_ip: &str, extra: &[&str]) -> Vec<String> {
    let mut lines: Vec<String> = INFRA.iter().map(|s| s.to_string()).collect();
    lines[3] = format!("local_ip = \"{local_ip}\"");
    for (i, l) in extra.iter().enumerate() {
        lines.insert(4 + i, l.to_string());
    }
    lines
}

#[test]
fn rejects_bad_local_ip() {
    for bad in [
        "x",
        "198.18.0.1/33",
        "2001:db8::1/129",
        "198.18.0.1/",
        "198.18.0.1/+8",
        "198.18.0.1/a",
        "fe80::1%eth0",
        "198.18.0.01",
    ] {
        let e = err(&underlay_with(bad, &[]));
        check(&e, 4, Some("[underlay]"), Some("local_ip"));
        assert_eq!(e.kind, ErrorKind::InvalidLocalIp(bad.into()));
    }
    for bad in ["0.0.0.0", "224.0.0.1/4", "255.255.255.255", "::", "ff02::1"] {
        let e = err(&underlay_with(bad, &[]));
        check(&e, 4, Some("[underlay]"), Some("local_ip"));
        assert!(matches!(e.kind, ErrorKind::NotUnicastIp(_)), "{e}");
    }
    // Host bits are accepted, as `ip addr` does; /0 and /32 too.
    for good in ["198.18.0.1/0", "198.18.0.1/32", "2001:db8::1/128"] {
        parse(&underlay_with(good, &[]));
    }
}

#[test]
fn rejects_bad_local_mac() {
    let mut lines = INFRA.to_vec();
    lines[4] = "local_mac = \"01:00:5e:00:00:01\"";
    let e = err(&lines);
    check(&e, 5, Some("[underlay]"), Some("local_mac"));
    assert!(matches!(e.kind, ErrorKind::NotUnicast(_)), "{e}");
    lines[4] = "local_mac = \"02:00:00:00:00\"";
    let e = err(&lines);
    check(&e, 5, Some("[underlay]"), Some("local_mac"));
    assert!(matches!(e.kind, ErrorKind::InvalidMac(_)), "{e}");
}

#[test]
fn rejects_bad_gateway() {
    let gw = |local: &str, gw: &str| {
        let line = format!("gateway = \"{gw}\"");
        err(&underlay_with(local, &[&line]))
    };
    let e = gw("198.18.0.1", "198.18.0.254");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert_eq!(e.kind, ErrorKind::GatewayWithoutPrefix);
    let e = gw("198.18.0.1/24", "198.18.1.254");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert_eq!(e.kind, ErrorKind::GatewayOffLink(ip("198.18.1.254")));
    let e = gw("198.18.0.1/24", "198.18.0.1");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert_eq!(e.kind, ErrorKind::IsLocalIp(ip("198.18.0.1")));
    let e = gw("198.18.0.1/24", "2001:db8::1");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert_eq!(e.kind, ErrorKind::WrongFamily { expected: "IPv4" });
    let e = gw("2001:db8::1/64", "198.18.0.1");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert_eq!(e.kind, ErrorKind::WrongFamily { expected: "IPv6" });
    let e = gw("198.18.0.1/24", "198.18.0.254/24");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert!(matches!(e.kind, ErrorKind::InvalidIp(_)), "{e}");
    let e = gw("2001:db8::1/64", "2001:db9::1");
    check(&e, 5, Some("[underlay]"), Some("gateway"));
    assert!(matches!(e.kind, ErrorKind::GatewayOffLink(_)), "{e}");
    // Inside the prefix, in both families.
    let c = parse(&underlay_with(
        "2001:db8::1/64",
        &["gateway = \"2001:db8::ffff\""],
    ));
    assert_eq!(c.underlay.unwrap().gateway, Some(ip("2001:db8::ffff")));
}

#[test]
fn rejects_bad_underlay_numbers() {
    let cases: &[(&str, &str, &str, u32, u32)] = &[
        ("198.18.0.1", "mtu = 575", "mtu", 576, 9216),
        ("198.18.0.1", "mtu = 9217", "mtu", 576, 9216),
        ("2001:db8::1", "mtu = 1279", "mtu", 1280, 9216),
        ("198.18.0.1", "vxlan_port = 0", "vxlan_port", 1, 65535),
        ("198.18.0.1", "vxlan_port = 65536", "vxlan_port", 1, 65535),
    ];
    for &(local, line, key, lo, hi) in cases {
        let e = err(&underlay_with(local, &[line]));
        check(&e, 5, Some("[underlay]"), Some(key));
        assert!(
            matches!(e.kind, ErrorKind::OutOfRange { min, max, .. } if min == lo && max == hi),
            "{line}: {e}"
        );
    }
    parse(&underlay_with("198.18.0.1", &["mtu = 576"]));
    parse(&underlay_with("2001:db8::1", &["mtu = 9216"]));
    let e = err(&underlay_with("198.18.0.1", &["df = \"yes\""]));
    check(&e, 5, Some("[underlay]"), Some("df"));
    assert!(matches!(e.kind, ErrorKind::Invalid(_)), "{e}");
}

#[test]
fn rejects_bad_neighbors() {
    let nb = |items: &[&str]| {
        let mut extra = vec!["neighbors = ["];
        extra.extend(items);
        extra.push("]");
        err(&underlay_with("198.18.0.1/24", &extra))
    };
    // Items from line 6 on.
    let e = nb(&["{ ip = \"2001:db8::2\", mac = \"02:00:00:00:00:02\" },"]);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.ip"));
    assert_eq!(e.kind, ErrorKind::WrongFamily { expected: "IPv4" });
    let e = nb(&[
        "{ ip = \"198.18.0.2\", mac = \"02:00:00:00:00:02\" },",
        "{ ip = \"198.18.0.2\", mac = \"02:00:00:00:00:03\" },",
    ]);
    check(&e, 7, Some("[underlay]"), Some("neighbors.1.ip"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateAddress {
            ip: ip("198.18.0.2"),
            first_line: 6
        }
    );
    let e = nb(&["{ ip = \"198.18.0.2\", mac = \"ff:ff:ff:ff:ff:ff\" },"]);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.mac"));
    assert!(matches!(e.kind, ErrorKind::NotUnicast(_)), "{e}");
    let e = nb(&["{ ip = \"198.18.0.1\", mac = \"02:00:00:00:00:02\" },"]);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.ip"));
    assert_eq!(e.kind, ErrorKind::IsLocalIp(ip("198.18.0.1")));
    let e = nb(&["{ ip = \"224.0.0.1\", mac = \"02:00:00:00:00:02\" },"]);
    check(&e, 6, Some("[underlay]"), Some("neighbors.0.ip"));
    assert!(matches!(e.kind, ErrorKind::NotUnicastIp(_)), "{e}");
}

#[test]
fn rejects_static_entry_targets() {
    // Both `port` and `remote`.
    let e = err(&with_vxlan(&[
        "[[port]]",
        "name = \"vm1\"",
        "mode = \"access\"",
        "network = \"net-x\"",
        "[[fdb]]",
        "network = \"net-x\"",
        "mac = \"02:00:00:00:00:09\"",
        "port = \"vm1\"",
        "remote = \"198.18.0.2\"",
    ]));
    check(&e, 23, Some("fdb #1"), Some("remote"));
    assert_eq!(e.kind, ErrorKind::FdbTarget(", not both"));
    // Neither.
    let e = err(&with_vxlan(&[
        "",
        "[[fdb]]",
        "network = \"net-x\"",
        "mac = \"02:00:00:00:00:09\"",
    ]));
    check(&e, 16, Some("fdb #1"), None);
    assert_eq!(e.kind, ErrorKind::FdbTarget(""));
    // `remote` on a network that is not a tunnel.
    let e = err(&with_infra(&[
        "[[network]]",
        "name = \"v\"",
        "segment = \"vlan\"",
        "id = 3",
        "physnet = \"physnet1\"",
        "[[fdb]]",
        "network = \"v\"",
        "mac = \"02:00:00:00:00:09\"",
        "remote = \"198.18.0.2\"",
    ]));
    check(&e, 18, Some("fdb #1"), Some("remote"));
    assert!(
        matches!(
            e.kind,
            ErrorKind::NotAllowedForSegment {
                segment: "vlan",
                ..
            }
        ),
        "{e}"
    );
    // A remote that is not a remote host's address.
    for (bad, kind) in [
        ("198.18.0.1", ErrorKind::IsLocalIp(ip("198.18.0.1"))),
        ("2001:db8::2", ErrorKind::WrongFamily { expected: "IPv4" }),
        ("224.0.0.1", ErrorKind::NotUnicastIp(ip("224.0.0.1"))),
        ("host-b", ErrorKind::InvalidIp("host-b".into())),
    ] {
        let line = format!("remote = \"{bad}\"");
        let e = err(&with_vxlan(&[
            "[[fdb]]",
            "network = \"net-x\"",
            "mac = \"02:00:00:00:00:09\"",
            &line,
        ]));
        check(&e, 18, Some("fdb #1"), Some("remote"));
        assert_eq!(e.kind, kind);
    }
    // A static entry on the underlay port: it carries no network.
    let e = err(&with_vxlan(&[
        "[[fdb]]",
        "network = \"net-x\"",
        "mac = \"02:00:00:00:00:09\"",
        "port = \"uplink\"",
    ]));
    check(&e, 18, Some("fdb #1"), Some("port"));
    assert!(matches!(e.kind, ErrorKind::PortNotInNetwork { .. }), "{e}");
}

#[test]
fn rejects_bad_arp_entries() {
    let arp = |network: &str, ip: &str, mac: &str| {
        let n = format!("network = \"{network}\"");
        let i = format!("ip = \"{ip}\"");
        let m = format!("mac = \"{mac}\"");
        err(&with_vxlan(&["[[arp]]", &n, &i, &m]))
    };
    let e = arp("net-y", "10.0.0.1", "02:00:00:00:00:09");
    check(&e, 16, Some("arp #1"), Some("network"));
    assert_eq!(e.kind, ErrorKind::NoSuchNetwork("net-y".into()));
    let e = arp("net-x", "2001:db8::9", "02:00:00:00:00:09");
    check(&e, 17, Some("arp #1"), Some("ip"));
    assert_eq!(e.kind, ErrorKind::ArpNotIpv4(ip("2001:db8::9")));
    assert!(
        e.to_string().contains("the ARP responder is IPv4 only"),
        "{e}"
    );
    let e = arp("net-x", "10.0.0", "02:00:00:00:00:09");
    check(&e, 17, Some("arp #1"), Some("ip"));
    assert_eq!(e.kind, ErrorKind::InvalidIp("10.0.0".into()));
    let e = arp("net-x", "224.0.0.1", "02:00:00:00:00:09");
    check(&e, 17, Some("arp #1"), Some("ip"));
    assert!(matches!(e.kind, ErrorKind::NotUnicastIp(_)), "{e}");
    for bad in ["01:00:5e:00:00:01", "00:00:00:00:00:00"] {
        let e = arp("net-x", "10.0.0.1", bad);
        check(&e, 18, Some("arp #1"), Some("mac"));
        assert!(matches!(e.kind, ErrorKind::NotUnicast(_)), "{e}");
    }
    let e = err(&with_vxlan(&[
        "[[arp]]",
        "network = \"net-x\"",
        "ip = \"10.0.0.1\"",
        "mac = \"02:00:00:00:00:09\"",
        "[[arp]]",
        "network = \"net-x\"",
        "ip = \"10.0.0.1\"",
        "mac = \"02:00:00:00:00:0a\"",
    ]));
    check(&e, 21, Some("arp #2"), Some("ip"));
    assert_eq!(
        e.kind,
        ErrorKind::DuplicateArpEntry {
            ip: "10.0.0.1".parse().unwrap(),
            first_line: 17
        }
    );
}

#[test]
fn rejects_more_vteps_than_port_ids_left() {
    // 65533 [[port]]s + the underlay port leave one id for VTEPs.
    let mut s = String::from("[underlay]\nport = \"u\"\nlocal_ip = \"198.18.0.1\"\n");
    s.push_str("[[network]]\nname = \"n\"\nsegment = \"vxlan\"\nid = 1\n");
    s.push_str("remote_vteps = [\n\"198.18.0.2\",\n\"198.18.0.3\",\n]\n");
    for i in 0..MAX_PORTS - 2 {
        s.push_str(&format!("[[port]]\nname = \"p{i}\"\nmode = \"trunk\"\n"));
    }
    let e = Config::from_str(&s, "t.toml").unwrap_err();
    check(&e, 10, Some("network \"n\""), Some("remote_vteps.1"));
    assert_eq!(e.kind, ErrorKind::TooManyVteps { max: 1 });
    // One VTEP fits.
    let s = s.replace("\"198.18.0.3\",\n", "");
    let c = Config::from_str(&s, "t.toml").unwrap();
    assert_eq!(c.ports.len() + c.vteps.len(), MAX_PORTS);
}

/// A reload keeps each network's allocated local VLAN (by name) unless an explicit
/// `local_vlan` of the new file takes it; new networks get the lowest free ones.
#[test]
fn reload_keeps_allocated_local_vlans() {
    let net = |name: &str, vlan: Option<u16>| {
        let v = vlan.map_or_else(String::new, |v| format!("local_vlan = {v}\n"));
        format!("[[network]]\nname = \"{name}\"\nsegment = \"local\"\n{v}\n")
    };
    let vlans = |c: &Config| -> Vec<(String, u16)> {
        c.networks
            .iter()
            .map(|n| (n.name.clone(), n.local_vlan.get()))
            .collect()
    };
    let old = Config::from_str(&format!("{}{}", net("a", None), net("b", None)), "old").unwrap();
    assert_eq!(vlans(&old), [("a".into(), 1), ("b".into(), 2)]);
    // x before a and b: allocation in file order would move both.
    let text = format!("{}{}{}", net("x", None), net("a", None), net("b", None));
    let mut new = Config::from_str(&text, "new").unwrap();
    new.keep_local_vlans(&old);
    assert_eq!(
        vlans(&new),
        [("x".into(), 3), ("a".into(), 1), ("b".into(), 2)]
    );
    // An explicit VLAN wins: y takes 2, so b moves to the lowest free one.
    let text = format!("{}{}{}", net("y", Some(2)), net("a", None), net("b", None));
    let mut new = Config::from_str(&text, "new").unwrap();
    new.keep_local_vlans(&old);
    assert_eq!(
        vlans(&new),
        [("y".into(), 2), ("a".into(), 1), ("b".into(), 3)]
    );
    // The running configuration itself: nothing moves.
    let mut same = old.clone();
    same.keep_local_vlans(&old);
    assert_eq!(same, old);
}

/// A reload may not change `[switch]`: the error names the file, the key's line and key.
#[test]
fn reload_refuses_switch_changes() {
    let old = Config::from_str("[switch]\nworkers = 1\n", "sw.toml").unwrap();
    let text = "\n[switch]\nworkers = 1\nnapi_busy_poll_usecs = 50\n";
    let mut new = Config::from_str(text, "sw.toml").unwrap();
    new.source = Some(PathBuf::from("sw.toml"));
    let e = old.check_reload(&new, text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sw.toml:4: [switch]: key \"napi_busy_poll_usecs\": changed from 100 to 50, which takes a \
         restart of vswitch (read at start only)"
    );
    // A key the new file leaves out, back to its default: the header's line.
    let text = "\n\n[switch]\n";
    let mut new = Config::from_str(text, "sw.toml").unwrap();
    new.source = Some(PathBuf::from("sw.toml"));
    let old = Config::from_str("[switch]\nmac_aging_secs = 60\n", "sw.toml").unwrap();
    let e = old.check_reload(&new, text).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert_eq!(e.key.as_deref(), Some("mac_aging_secs"));
    assert!(old.check_reload(&old.clone(), "").is_ok());
    // `[metrics] listen` too; the learning cap and storm control do reload.
    let text = "[switch]\nmac_learn_rate_per_port = 10\nstorm_control_pps = 5\n\n[metrics]\nlisten = \"127.0.0.1:9417\"\n";
    let mut new = Config::from_str(text, "sw.toml").unwrap();
    new.source = Some(PathBuf::from("sw.toml"));
    let e = Config::default().check_reload(&new, text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sw.toml:6: [metrics]: key \"listen\": changed from none to 127.0.0.1:9417, which takes \
         a restart of vswitch (read at start only)"
    );
    new.metrics = Config::default().metrics;
    assert!(Config::default().check_reload(&new, text).is_ok());
}

// ---------------------------------------------------------------- [metrics]

#[test]
fn metrics_listen_is_off_by_default_and_parsed() {
    assert_eq!(Config::default().metrics.listen, None);
    assert_eq!(parse(&["[metrics]"]).metrics.listen, None);
    let c = parse(&["[metrics]", "listen = \"127.0.0.1:9417\""]);
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9417".parse().unwrap()));
    let c = parse(&["[metrics]", "listen = \"[::1]:9417\""]);
    assert_eq!(c.metrics.listen, Some("[::1]:9417".parse().unwrap()));
    // check-config shows it, and it parses back.
    let out = c.render();
    assert!(
        out.contains("\n[metrics]\nlisten = \"[::1]:9417\"\n"),
        "{out}"
    );
    assert_eq!(Config::from_str(&out, "r").unwrap(), c.pinned());
    assert!(!Config::default().render().contains("[metrics]"));
}

#[test]
fn rejects_bad_metrics_values() {
    for bad in [
        "localhost:9417",
        "127.0.0.1",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "::1:9417",
        "",
    ] {
        let e = err(&["[switch]", "[metrics]", &format!("listen = {bad:?}")]);
        check(&e, 3, Some("[metrics]"), Some("listen"));
        assert!(
            e.to_string()
                .contains(&format!("invalid listen address {bad:?}: expected IP:PORT")),
            "{e}"
        );
    }
    let e = err(&["[metrics]", "listen = 9417"]);
    check(&e, 2, Some("[metrics]"), Some("listen"));
    let e = err(&["[metrics]", "listen = \"127.0.0.1:9417\"", "lisen = 1"]);
    check(&e, 3, Some("[metrics]"), Some("lisen"));
    assert!(e.to_string().contains("unknown key"), "{e}");
    let e = err(&["[[metrics]]", "listen = \"127.0.0.1:9417\""]);
    check(&e, 1, None, Some("metrics"));
    assert!(e.to_string().contains("a table: write [metrics]"), "{e}");
}
