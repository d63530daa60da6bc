//! The configuration layer through its public API: the example file, every
//! rejection (with its exact line and key), local VLAN allocation and `render`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::config::{
    Config, ConfigError, EgressTag, ErrorKind, FdbTarget, NetIdx, Network, Port, PortIdx, PortMode,
    PortRole, Segment, StaticFdb, SwitchParams, MAX_NETWORKS, MAX_PORTS,
};
use encap::{MacAddr, VlanId};

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
        }
    );
    let net = |name: &str, v: u16, allocated: bool| Network {
        name: name.into(),
        segment: Segment::Local,
        local_vlan: vid(v),
        local_vlan_allocated: allocated,
        remote_vteps: Vec::new(),
    };
    assert_eq!(
        c.networks,
        vec![
            net("net-a", 1, false),
            net("net-b", 2, true),
            net("net-c", 3, false),
            net("net-d", 4, true),
        ]
    );
    let access = |name: &str, ifname: Option<&str>, n: u16| Port {
        name: name.into(),
        ifname: ifname.map(Into::into),
        mode: PortMode::Access { network: NetIdx(n) },
        role: PortRole::Local,
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
            },
        ]
    );
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
        ]
    );
    assert_eq!(c.network_by_name("net-c"), Some(NetIdx(2)));
    assert_eq!(c.network_by_name("nope"), None);
    assert_eq!(c.port_by_name("trunk1"), Some(PortIdx(3)));
    assert_eq!(c.port_by_name("nope"), None);
    assert_eq!(c.network(NetIdx(3)).map(|n| n.name.as_str()), Some("net-d"));
    assert_eq!(c.port(PortIdx(4)), None);
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
    ]);
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
