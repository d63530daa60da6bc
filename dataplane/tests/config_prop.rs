//! Properties of the configuration layer: any valid configuration survives
//! `render` → parse unchanged, local VLANs are allocated as the reference model
//! says, and no input text makes the parser panic.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use dataplane::config::{
    Config, FdbTarget, NetIdx, Network, Port, PortIdx, PortMode, PortRole, Segment, StaticFdb,
    SwitchParams,
};
use encap::{MacAddr, VlanId};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;

/// Names with characters that need quoting or escaping in TOML.
fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9-]{0,8}", "[a-zA-Z0-9 _.'\"\\\\é中-]{1,8}",]
}

fn switch() -> impl Strategy<Value = SwitchParams> {
    (
        1usize..=1024,
        15u64..=3600,
        1usize..=u32::MAX as usize,
        0usize..=u32::MAX as usize,
        "/[a-z/]{0,12}[a-z]",
    )
        .prop_map(|(workers, aging, size, limit, socket)| SwitchParams {
            workers,
            mac_aging: Duration::from_secs(aging),
            mac_table_size: size,
            mac_limit_per_port: limit,
            control_socket: PathBuf::from(socket),
        })
}

fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

/// Distinct names: a suffix makes each unique whatever the generator drew.
fn uniquify(names: Vec<String>) -> Vec<String> {
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| format!("{n}#{i}"))
        .collect()
}

fn port_mode(nets: u16) -> BoxedStrategy<PortMode> {
    if nets == 0 {
        return Just(PortMode::Trunk {
            vlans: vec![],
            native: None,
        })
        .boxed();
    }
    prop_oneof![
        (0..nets).prop_map(|n| PortMode::Access { network: NetIdx(n) }),
        (btree_map(1u16..=4094, 0..nets, 0..5), option::of(0..nets)).prop_map(|(vlans, native)| {
            PortMode::Trunk {
                vlans: vlans
                    .into_iter()
                    .map(|(v, n)| (vid(v), NetIdx(n)))
                    .collect(),
                native: native.map(NetIdx),
            }
        }),
    ]
    .boxed()
}

/// A random valid configuration, every local VLAN distinct.
fn config() -> impl Strategy<Value = Config> {
    (switch(), 0usize..6, 0usize..6).prop_flat_map(|(switch, n_nets, n_ports)| {
        let nets = (
            vec(name(), n_nets),
            btree_set(1u16..=4094, n_nets)
                .prop_map(Vec::from_iter)
                .prop_shuffle(),
            vec(any::<bool>(), n_nets),
        );
        let nets_u16 = u16::try_from(n_nets).unwrap();
        let ports = vec(
            (
                name(),
                option::of("[a-z][a-z0-9]{0,14}"),
                port_mode(nets_u16),
            ),
            n_ports,
        );
        let fdb = vec((any::<usize>(), any::<usize>(), any::<[u8; 6]>()), 0..6);
        (Just(switch), nets, ports, fdb).prop_map(|(switch, (names, vlans, alloc), ports, fdb)| {
            let networks = uniquify(names)
                .into_iter()
                .zip(vlans)
                .zip(alloc)
                .map(|((name, v), allocated)| Network {
                    name,
                    segment: Segment::Local,
                    local_vlan: vid(v),
                    local_vlan_allocated: allocated,
                    remote_vteps: Vec::new(),
                })
                .collect();
            let names = uniquify(ports.iter().map(|p| p.0.clone()).collect());
            let ports: Vec<Port> = ports
                .into_iter()
                .zip(names)
                .map(|((_, ifname, mode), name)| Port {
                    name,
                    ifname,
                    mode,
                    role: PortRole::Local,
                })
                .collect();
            let mut static_fdb: Vec<StaticFdb> = Vec::new();
            for (p, n, mut mac) in fdb {
                if ports.is_empty() {
                    break;
                }
                let port = p % ports.len();
                let carried: Vec<NetIdx> = match &ports[port].mode {
                    PortMode::Access { network } => vec![*network],
                    PortMode::Trunk { vlans, native } => {
                        vlans.iter().map(|&(_, n)| n).chain(*native).collect()
                    }
                };
                if carried.is_empty() {
                    continue;
                }
                let network = carried[n % carried.len()];
                mac[0] &= 0xfe;
                mac[5] |= 1;
                let mac = MacAddr::new(mac);
                if static_fdb
                    .iter()
                    .any(|e| e.network == network && e.mac == mac)
                {
                    continue;
                }
                let port = PortIdx(u16::try_from(port).unwrap());
                static_fdb.push(StaticFdb {
                    network,
                    mac,
                    target: FdbTarget::Port(port),
                });
            }
            Config {
                switch,
                networks,
                ports,
                static_fdb,
                ..Config::default()
            }
        })
    })
}

/// The allocation rule, written as plainly as possible: explicit VLANs are
/// reserved, then each network without one takes the lowest free VLAN.
fn reference_allocation(explicit: &[Option<u16>]) -> Vec<u16> {
    let mut used: Vec<u16> = explicit.iter().flatten().copied().collect();
    explicit
        .iter()
        .map(|e| match e {
            Some(v) => *v,
            None => {
                let v = (1..=4094).find(|v| !used.contains(v)).unwrap();
                used.push(v);
                v
            }
        })
        .collect()
}

/// A TOML value for `key`: mostly plausible, sometimes wrong in the ways a
/// user gets it wrong.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |words: Vec<&'static str>| {
        prop::sample::select(words)
            .prop_map(|w| format!("\"{w}\""))
            .boxed()
    };
    let names = vec!["net-a", "net-b", "net-c", "p1", "p2", "t1", ""];
    let plausible = match key {
        "name" | "network" | "native" | "port" => quoted(names.clone()),
        "mode" => quoted(vec!["access", "trunk", "trunk", "acces"]),
        "segment" => quoted(vec!["local", "local", "local", "vxlan", "x"]),
        "mac" => quoted(vec![
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "zz",
        ]),
        "ifname" => quoted(vec!["tap0", "much-too-long-name"]),
        "control_socket" => quoted(vec!["/run/x.sock", ""]),
        "vlans" => btree_map(
            prop::sample::select(vec!["10", "20", "30", "0", "4095", "010", "x"]),
            prop::sample::select(names),
            0..4,
        )
        .prop_map(|m| {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
                .collect();
            format!("{{ {} }}", items.join(", "))
        })
        .boxed(),
        _ => prop::sample::select(vec![-1i64, 0, 1, 2, 3, 14, 15, 300, 3600, 3601, 4094, 4095])
            .prop_map(|v| v.to_string())
            .boxed(),
    };
    prop_oneof![
        19 => plausible,
        1 => prop::sample::select(vec!["true", "[]", "{}", "1.5", "\"s\""]).prop_map(str::to_owned),
    ]
    .boxed()
}

/// One `[header]` and its keys, each present with probability 0.85, plus now
/// and then an unknown one.
fn section(header: &'static str, keys: &[&'static str]) -> BoxedStrategy<String> {
    let lines: Vec<BoxedStrategy<Option<String>>> = keys
        .iter()
        .map(|&k| (k, 0.85))
        .chain([("bogus", 0.02)])
        .map(|(k, p)| {
            option::weighted(p, value_for(k).prop_map(move |v| format!("{k} = {v}"))).boxed()
        })
        .collect();
    lines
        .prop_map(move |kvs| {
            let kvs: Vec<String> = kvs.into_iter().flatten().collect();
            format!("{header}\n{}", kvs.join("\n"))
        })
        .boxed()
}

/// Text that looks like a configuration: the real sections and keys with
/// plausible values, so that most inputs get past the TOML parser and exercise
/// validation (and some are valid).
fn config_like_text() -> impl Strategy<Value = String> {
    let switch = section(
        "[switch]",
        &[
            "workers",
            "mac_aging_secs",
            "mac_table_size",
            "mac_limit_per_port",
            "control_socket",
        ],
    );
    let entry = prop_oneof![
        2 => section("[[network]]", &["name", "segment", "local_vlan"]),
        2 => section("[[port]]", &["name", "ifname", "mode", "network", "vlans", "native"]),
        1 => section("[[fdb]]", &["network", "mac", "port"]),
    ];
    // Now and then one line of junk, so that syntax errors are in the mix too.
    let junk = option::weighted(0.05, (any::<prop::sample::Index>(), "[ -~]{0,10}"));
    (option::of(switch), vec(entry, 0..10), junk).prop_map(|(switch, entries, junk)| {
        let text = switch
            .into_iter()
            .chain(entries)
            .collect::<Vec<_>>()
            .join("\n");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if let Some((at, j)) = junk {
            lines.insert(at.index(lines.len() + 1), j);
        }
        lines.join("\n")
    })
}

/// Checks an error's line is within the text (or one past its last line).
fn check_error_line(text: &str, r: &Result<Config, dataplane::config::ConfigError>) {
    if let Err(e) = r {
        let lines = text.lines().count().max(1);
        let line = e.line.unwrap() as usize;
        assert!(
            (1..=lines + 1).contains(&line),
            "line {line} of {lines}: {e}"
        );
        assert!(
            e.to_string().starts_with(&format!("p.toml:{line}: ")),
            "{e}"
        );
    }
}

proptest! {
    #[test]
    fn render_then_parse_round_trips(c in config()) {
        let text = c.render();
        let back = Config::from_str(&text, "p.toml");
        prop_assert_eq!(back.as_ref(), Ok(&c.pinned()), "rendered:\n{}", text);
        // And rendering is a fixed point once pinned.
        prop_assert_eq!(back.unwrap().render(), c.pinned().render());
    }

    #[test]
    fn allocation_matches_reference(
        explicit in vec(option::of(1u16..=4094), 0..40)
    ) {
        // Duplicated explicit VLANs are an error, tested elsewhere: keep the first.
        let mut seen = std::collections::HashSet::new();
        let explicit: Vec<Option<u16>> = explicit
            .into_iter()
            .map(|e| e.filter(|v| seen.insert(*v)))
            .collect();
        let mut text = String::new();
        for (i, e) in explicit.iter().enumerate() {
            text.push_str(&format!("[[network]]\nname = \"n{i}\"\nsegment = \"local\"\n"));
            if let Some(v) = e {
                text.push_str(&format!("local_vlan = {v}\n"));
            }
        }
        let c = Config::from_str(&text, "p.toml").unwrap();
        let got: Vec<u16> = c.networks.iter().map(|n| n.local_vlan.get()).collect();
        prop_assert_eq!(got, reference_allocation(&explicit));
        for (n, e) in c.networks.iter().zip(&explicit) {
            prop_assert_eq!(n.local_vlan_allocated, e.is_none());
        }
    }

    #[test]
    fn edited_valid_text_never_panics(
        c in config(),
        edits in vec((any::<prop::sample::Index>(), 0usize..4, "[\\[\\]{}=\"#\n a-z0-9.,]{0,3}"), 1..4)
    ) {
        let mut text = c.render();
        for (at, del, ins) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = (pos + del).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(pos..end, &ins);
        }
        let r = Config::from_str(&text, "p.toml");
        check_error_line(&text, &r);
    }
}

proptest! {
    // Cheap cases: run more of them.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let r = Config::from_str(&text, "p.toml");
        check_error_line(&text, &r);
    }

    #[test]
    fn config_like_text_never_panics(text in config_like_text()) {
        let r = Config::from_str(&text, "p.toml");
        check_error_line(&text, &r);
        if let Ok(c) = r {
            prop_assert_eq!(Config::from_str(&c.render(), "p.toml"), Ok(c.pinned()));
        }
    }
}
