//! Properties of the configuration layer: any valid configuration survives
//! `render` → parse unchanged, local VLANs are allocated as the reference model
//! says, and no input text makes the parser panic.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use dataplane::config::{
    AllowedPair, ArpEntry, Config, FdbTarget, MetricsParams, NetIdx, Network, Physnet, PhysnetIdx,
    Port, PortIdx, PortMode, PortPolicy, PortRole, PortSecurity, Segment, StaticFdb, SwitchParams,
    Underlay, VtepIdx,
};
use encap::{GreKey, MacAddr, VlanId, Vni};
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
        any::<bool>(),
        0u32..=10_000,
        any::<bool>(),
    )
        .prop_map(
            |(workers, aging, size, limit, socket, napi, usecs, forward_only)| SwitchParams {
                workers,
                mac_aging: Duration::from_secs(aging),
                mac_table_size: size,
                mac_limit_per_port: limit,
                control_socket: PathBuf::from(socket),
                forward_only,
                napi_busy_poll: napi,
                napi_busy_poll_usecs: usecs,
                mac_learn_rate_per_port: 0,
                storm_control_pps: 0,
                fastpath: napi ^ forward_only,
            },
        )
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

/// Distinct interface names of at most 15 bytes: a suffix makes each unique.
fn uniquify_ifnames(names: Vec<Option<String>>) -> Vec<Option<String>> {
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.map(|n| format!("{n}.{i}")))
        .collect()
}

/// An address that the parser takes as a host: IPv4 first octet 1..=223 (never
/// 0.0.0.0, multicast or broadcast), IPv6 in 2000::/8.
fn host_ip(v6: bool, bits: u128) -> IpAddr {
    if v6 {
        let b = (bits & !(0xff << 120)) | (0x20 << 120);
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        let b = bits as u32;
        let first = 1 + (b >> 24) % 223;
        IpAddr::V4(Ipv4Addr::from((first << 24) | (b & 0x00ff_ffff)))
    }
}

fn is_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => !a.is_unspecified() && !a.is_multicast(),
    }
}

fn unicast_mac(mut mac: [u8; 6]) -> MacAddr {
    mac[0] &= 0xfe;
    mac[5] |= 1;
    MacAddr::new(mac)
}

/// What the underlay generator draws: the family, the local address bits, the
/// prefix, the MAC, the gateway's host bits, MTU, DF, VXLAN port and neighbours.
type UnderlayDraw = (
    bool,
    u128,
    Option<u8>,
    Option<[u8; 6]>,
    Option<u128>,
    u16,
    bool,
    u16,
    Vec<(u128, [u8; 6])>,
);

fn underlay_draw() -> impl Strategy<Value = UnderlayDraw> {
    (
        any::<bool>(),
        any::<u128>(),
        option::of(0u8..=128),
        option::of(any::<[u8; 6]>()),
        option::of(any::<u128>()),
        576u16..=9216,
        any::<bool>(),
        1u16..=65535,
        vec((any::<u128>(), any::<[u8; 6]>()), 0..4),
    )
}

/// The underlay a draw describes, with `port` still to set: every value the
/// parser would refuse is dropped or adjusted.
fn underlay_from(d: UnderlayDraw) -> Underlay {
    let (v6, bits, prefix, mac, gw, mtu, df, vxlan_port, neighbors) = d;
    let local_ip = host_ip(v6, bits);
    let width = if v6 { 128 } else { 32 };
    let prefix_len = prefix.map(|p| p % (width + 1));
    let gateway = match (prefix_len, gw) {
        (Some(len), Some(gw)) => {
            let ip = host_ip(v6, gw);
            let (l, g) = match (local_ip, ip) {
                (IpAddr::V4(l), IpAddr::V4(g)) => {
                    (u128::from(u32::from(l)), u128::from(u32::from(g)))
                }
                (IpAddr::V6(l), IpAddr::V6(g)) => (u128::from(l), u128::from(g)),
                _ => unreachable!(),
            };
            let host_bits = u32::from(width - len);
            let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0)
                & (u128::MAX >> (128 - u32::from(width)));
            let addr = (l & mask) | (g & !mask & (u128::MAX >> (128 - u32::from(width))));
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::from(addr))
            } else {
                IpAddr::V4(Ipv4Addr::from(addr as u32))
            };
            (is_host(ip) && ip != local_ip).then_some(ip)
        }
        _ => None,
    };
    let mut seen = Vec::new();
    let neighbors = neighbors
        .into_iter()
        .filter_map(|(bits, mac)| {
            let ip = host_ip(v6, bits);
            if ip == local_ip || seen.contains(&ip) {
                return None;
            }
            seen.push(ip);
            Some((ip, unicast_mac(mac)))
        })
        .collect();
    Underlay {
        port: PortIdx(u16::MAX),
        local_ip,
        prefix_len,
        local_mac: mac.map(unicast_mac),
        gateway,
        mtu: if v6 { mtu.max(1280) } else { mtu },
        df,
        vxlan_port,
        neighbors,
    }
}

/// One drawn network: name, local VLAN, allocated?, segment type 0..5 (local,
/// flat, vlan, vxlan, gre), id bits, physnet pick, remote VTEP picks.
type NetDraw = (String, bool, u8, u32, usize, Vec<usize>);

/// A random valid configuration of every section, every local VLAN distinct.
///
/// It draws raw material and then keeps what the parser accepts (a tunnel
/// network without an underlay, a second flat network on a physnet or a
/// duplicate segment id becomes `local`), and fills in what the parser derives
/// (port order and roles, physnet trunks, VTEP order of first mention).
fn config() -> impl Strategy<Value = Config> {
    (switch(), 0usize..7, 0usize..5, 0usize..3).prop_flat_map(
        |(switch, n_nets, n_ports, n_physnets)| {
            let nets = (
                vec(
                    (
                        name(),
                        any::<bool>(),
                        0u8..5,
                        any::<u32>(),
                        any::<usize>(),
                        vec(any::<usize>(), 0..4),
                    ),
                    n_nets,
                ),
                btree_set(1u16..=4094, n_nets)
                    .prop_map(Vec::from_iter)
                    .prop_shuffle(),
            );
            let nets_u16 = u16::try_from(n_nets).unwrap();
            let ports = vec(
                (
                    name(),
                    option::of("[a-z][a-z0-9]{0,9}"),
                    port_mode(nets_u16),
                ),
                n_ports,
            );
            let physnets = vec(
                (
                    name(),
                    name(),
                    option::of("[a-z][a-z0-9]{0,9}"),
                    68u16..=65535,
                ),
                n_physnets,
            );
            let underlay = option::of((
                underlay_draw(),
                name(),
                option::of("[a-z][a-z0-9]{0,9}"),
                vec(any::<u128>(), 0..5),
            ));
            let fdb = vec(
                (
                    any::<usize>(),
                    any::<usize>(),
                    any::<[u8; 6]>(),
                    option::of(any::<usize>()),
                ),
                0..6,
            );
            let arp = vec((any::<usize>(), any::<u32>(), any::<[u8; 6]>()), 0..4);
            // `[metrics] listen`: any address of either family, any port but 0.
            let metrics =
                option::of((any::<bool>(), any::<u128>(), 1u16..=65535)).prop_map(|listen| {
                    MetricsParams {
                        listen: listen.map(|(v6, bits, port)| {
                            let ip = if v6 {
                                IpAddr::from(bits.to_be_bytes())
                            } else {
                                IpAddr::from((bits as u32).to_be_bytes())
                            };
                            std::net::SocketAddr::new(ip, port)
                        }),
                    }
                });
            (
                Just(switch),
                nets,
                ports,
                physnets,
                underlay,
                (fdb, arp, metrics),
            )
                .prop_map(
                    |(switch, (nets, vlans), ports, physnets, underlay, (fdb, arp, metrics))| {
                        let mut c =
                            build_config(switch, nets, vlans, ports, physnets, underlay, fdb, arp);
                        c.metrics = metrics;
                        c
                    },
                )
        },
    )
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn build_config(
    switch: SwitchParams,
    nets: Vec<NetDraw>,
    vlans: Vec<u16>,
    ports: Vec<(String, Option<String>, PortMode)>,
    physnets: Vec<(String, String, Option<String>, u16)>,
    underlay: Option<(UnderlayDraw, String, Option<String>, Vec<u128>)>,
    fdb: Vec<(usize, usize, [u8; 6], Option<usize>)>,
    arp: Vec<(usize, u32, [u8; 6])>,
) -> Config {
    let n_physnets = physnets.len();
    let (underlay, underlay_port, pool) = match underlay {
        Some((d, port, ifname, pool)) => {
            let u = underlay_from(d);
            let v6 = u.local_ip.is_ipv6();
            let mut ips: Vec<IpAddr> = Vec::new();
            for bits in pool {
                let ip = host_ip(v6, bits);
                if ip != u.local_ip && !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            (Some(u), Some((port, ifname)), ips)
        }
        None => (None, None, Vec::new()),
    };

    // Networks, with their remote VTEPs as addresses for now.
    let mut vnis = Vec::new();
    let mut keys = Vec::new();
    let mut provider = Vec::new();
    let mut flats = Vec::new();
    let mut networks = Vec::new();
    let mut net_remotes: Vec<Vec<IpAddr>> = Vec::new();
    for ((name, (allocated, ty, id, pick, remotes)), v) in
        uniquify(nets.iter().map(|n| n.0.clone()).collect())
            .into_iter()
            .zip(nets.into_iter().map(|(_, a, t, i, p, r)| (a, t, i, p, r)))
            .zip(vlans)
    {
        let physnet = PhysnetIdx(u16::try_from(pick % n_physnets.max(1)).unwrap());
        let segment = match ty {
            1 if n_physnets > 0 && !flats.contains(&physnet) => {
                flats.push(physnet);
                Segment::Flat { physnet }
            }
            2 if n_physnets > 0 => {
                let vid = vid(1 + (id % 4094) as u16);
                if provider.contains(&(physnet, vid)) {
                    Segment::Local
                } else {
                    provider.push((physnet, vid));
                    Segment::Vlan { physnet, vid }
                }
            }
            3 if underlay.is_some() => {
                let vni = Vni::try_new(1 + id % Vni::MAX).unwrap();
                if vnis.contains(&vni) {
                    Segment::Local
                } else {
                    vnis.push(vni);
                    Segment::Vxlan { vni }
                }
            }
            4 if underlay.is_some() => {
                let key = GreKey::new(id.max(1));
                if keys.contains(&key) {
                    Segment::Local
                } else {
                    keys.push(key);
                    Segment::Gre { key }
                }
            }
            _ => Segment::Local,
        };
        let mut ips = Vec::new();
        if segment.is_tunnel() && !pool.is_empty() {
            for r in remotes {
                let ip = pool[r % pool.len()];
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        net_remotes.push(ips);
        networks.push(Network {
            name,
            segment,
            local_vlan: vid(v),
            local_vlan_allocated: allocated,
            remote_vteps: Vec::new(),
            // Derived from the rest (not drawn), so every case covers some.
            mac_limit: u32::from(v % 3) * 100,
        });
    }

    // Ports: [[port]]s, then one per physnet, then the underlay's.
    let mut names: Vec<String> = ports.iter().map(|p| p.0.clone()).collect();
    let mut ifnames: Vec<Option<String>> = ports.iter().map(|p| p.1.clone()).collect();
    for p in &physnets {
        names.push(p.1.clone());
        ifnames.push(p.2.clone());
    }
    if let Some((port, ifname)) = &underlay_port {
        names.push(port.clone());
        ifnames.push(ifname.clone());
    }
    let mut names = uniquify(names).into_iter();
    let mut ifnames = uniquify_ifnames(ifnames).into_iter();
    let mut all_ports: Vec<Port> = Vec::new();
    for (i, (_, _, mode)) in ports.into_iter().enumerate() {
        // Port security on every other access port, storm control on every third
        // port: derived from the index, so every case covers both.
        let n = u8::try_from(i % 250).unwrap();
        let security = (matches!(mode, PortMode::Access { .. }) && i % 2 == 0).then(|| {
            let mac = MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, n]);
            PortSecurity {
                mac,
                allowed: vec![
                    AllowedPair {
                        mac,
                        ip: "198.18.7.1/32".parse::<ipnet::IpNet>().unwrap(),
                    },
                    AllowedPair {
                        mac: MacAddr::new([0xfa, 0x16, 0x3e, 0, 1, n]),
                        ip: format!("2001:db8:{n:x}::/64").parse().unwrap(),
                    },
                ],
            }
        });
        all_ports.push(Port {
            name: names.next().unwrap(),
            ifname: ifnames.next().unwrap(),
            mode,
            role: PortRole::Local,
            policy: PortPolicy {
                security,
                storm_control_pps: (i % 3 == 0).then_some(u32::from(n) * 10),
            },
        });
    }
    let mut out_physnets = Vec::new();
    for (i, (pname, (_, _, _, mtu))) in uniquify(physnets.iter().map(|p| p.0.clone()).collect())
        .into_iter()
        .zip(&physnets)
        .enumerate()
    {
        let pidx = PhysnetIdx(u16::try_from(i).unwrap());
        let mut vlans: Vec<(VlanId, NetIdx)> = Vec::new();
        let mut native = None;
        for (n, net) in networks.iter().enumerate() {
            let nidx = NetIdx(u16::try_from(n).unwrap());
            match net.segment {
                Segment::Vlan { physnet, vid } if physnet == pidx => vlans.push((vid, nidx)),
                Segment::Flat { physnet } if physnet == pidx => native = Some(nidx),
                _ => {}
            }
        }
        vlans.sort_unstable_by_key(|&(v, _)| v);
        out_physnets.push(Physnet {
            name: pname,
            port: PortIdx(u16::try_from(all_ports.len()).unwrap()),
            mtu: *mtu,
        });
        all_ports.push(Port {
            name: names.next().unwrap(),
            ifname: ifnames.next().unwrap(),
            mode: PortMode::Trunk { vlans, native },
            role: PortRole::Physnet(pidx),
            policy: Default::default(),
        });
    }
    let underlay = underlay.map(|mut u| {
        u.port = PortIdx(u16::try_from(all_ports.len()).unwrap());
        all_ports.push(Port {
            name: names.next().unwrap(),
            ifname: ifnames.next().unwrap(),
            mode: PortMode::Trunk {
                vlans: vec![],
                native: None,
            },
            role: PortRole::Underlay,
            policy: Default::default(),
        });
        u
    });

    // Static entries: on a port that carries the network, or on a remote VTEP of a
    // tunnel network.
    let tunnels: Vec<NetIdx> = (0..networks.len())
        .filter(|&n| networks[n].segment.is_tunnel())
        .map(|n| NetIdx(u16::try_from(n).unwrap()))
        .collect();
    let mut static_fdb: Vec<StaticFdb> = Vec::new();
    let mut fdb_remotes: Vec<IpAddr> = Vec::new();
    for (p, n, mac, remote) in fdb {
        let mac = unicast_mac(mac);
        let (network, target) = match remote {
            Some(r) if !tunnels.is_empty() && !pool.is_empty() => {
                let ip = pool[r % pool.len()];
                // Index fixed below, once every VTEP is known.
                (tunnels[n % tunnels.len()], Err(ip))
            }
            _ => {
                if all_ports.is_empty() {
                    continue;
                }
                let port = p % all_ports.len();
                let carried: Vec<NetIdx> = match &all_ports[port].mode {
                    PortMode::Access { network } => vec![*network],
                    PortMode::Trunk { vlans, native } => {
                        vlans.iter().map(|&(_, n)| n).chain(*native).collect()
                    }
                };
                if carried.is_empty() {
                    continue;
                }
                let port = PortIdx(u16::try_from(port).unwrap());
                (carried[n % carried.len()], Ok(FdbTarget::Port(port)))
            }
        };
        if static_fdb
            .iter()
            .any(|e| e.network == network && e.mac == mac)
        {
            continue;
        }
        let target = target.unwrap_or_else(|ip| {
            fdb_remotes.push(ip);
            FdbTarget::Remote(VtepIdx(u16::MAX))
        });
        static_fdb.push(StaticFdb {
            network,
            mac,
            target,
        });
    }

    // VTEPs in order of first mention: networks, then static entries.
    let mut vteps: Vec<IpAddr> = Vec::new();
    let mut intern = |ip: IpAddr| {
        let i = vteps.iter().position(|&v| v == ip).unwrap_or_else(|| {
            vteps.push(ip);
            vteps.len() - 1
        });
        VtepIdx(u16::try_from(i).unwrap())
    };
    for (net, ips) in networks.iter_mut().zip(net_remotes) {
        net.remote_vteps = ips.into_iter().map(&mut intern).collect();
    }
    let mut remotes = fdb_remotes.into_iter();
    for e in &mut static_fdb {
        if let FdbTarget::Remote(_) = e.target {
            e.target = FdbTarget::Remote(intern(remotes.next().unwrap()));
        }
    }

    let mut arp_entries: Vec<ArpEntry> = Vec::new();
    if !networks.is_empty() {
        for (n, ip, mac) in arp {
            let IpAddr::V4(ip) = host_ip(false, u128::from(ip)) else {
                unreachable!()
            };
            let network = NetIdx(u16::try_from(n % networks.len()).unwrap());
            if arp_entries
                .iter()
                .any(|a| a.network == network && a.ip == ip)
            {
                continue;
            }
            arp_entries.push(ArpEntry {
                network,
                ip,
                mac: unicast_mac(mac),
            });
        }
    }

    Config {
        switch,
        networks,
        ports: all_ports,
        static_fdb,
        underlay,
        physnets: out_physnets,
        vteps,
        arp: arp_entries,
        metrics: MetricsParams::default(),
        source: None,
    }
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

/// Addresses for `remote_vteps`, `remote`, `gateway`, `neighbors` and `[[arp]]`:
/// some valid, some of the other family, the local address, not unicast or not
/// addresses at all.
const IPS: &[&str] = &[
    "198.18.0.2",
    "198.18.0.3",
    "198.18.0.254",
    "10.0.0.1",
    "198.18.0.1",
    "2001:db8::2",
    "224.0.0.1",
    "255.255.255.255",
    "0.0.0.0",
    "1.2.3",
];

/// A TOML value for `key`: mostly plausible, sometimes wrong in the ways a
/// user gets it wrong.
fn value_for(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |words: Vec<&'static str>| {
        prop::sample::select(words)
            .prop_map(|w| format!("\"{w}\""))
            .boxed()
    };
    let names = vec![
        "net-a", "net-b", "net-c", "p1", "p2", "t1", "phys-a", "phys-b", "uplink", "",
    ];
    let plausible = match key {
        "name" | "network" | "native" | "port" => quoted(names.clone()),
        "mode" => quoted(vec!["access", "trunk", "trunk", "acces"]),
        "segment" => quoted(vec!["local", "local", "flat", "vlan", "vxlan", "gre", "x"]),
        "physnet" => quoted(vec!["phys-a", "phys-b", "phys-x", ""]),
        "id" => prop::sample::select(vec![
            -1i64,
            0,
            1,
            10,
            4094,
            4095,
            5010,
            16_777_216,
            4_294_967_296,
        ])
        .prop_map(|v| v.to_string())
        .boxed(),
        "mtu" => prop::sample::select(vec![
            0i64, 67, 68, 575, 576, 1279, 1280, 1500, 9216, 9217, 65536,
        ])
        .prop_map(|v| v.to_string())
        .boxed(),
        "vxlan_port" => prop::sample::select(vec![0i64, 1, 4789, 65535, 65536])
            .prop_map(|v| v.to_string())
            .boxed(),
        "df" | "forward_only" => prop::sample::select(vec!["true", "false"])
            .prop_map(str::to_owned)
            .boxed(),
        "ip" | "remote" | "gateway" => quoted(IPS.to_vec()),
        "local_ip" => quoted(vec![
            "198.18.0.1/24",
            "198.18.0.1",
            "198.18.0.1/33",
            "2001:db8::1/64",
            "2001:db8::1",
            "0.0.0.0",
            "x",
        ]),
        "local_mac" => quoted(vec!["02:00:00:00:00:01", "01:00:5e:00:00:01", "zz"]),
        "remote_vteps" => vec(prop::sample::select(IPS.to_vec()), 0..3)
            .prop_map(|v| {
                let items: Vec<String> = v.iter().map(|ip| format!("\"{ip}\"")).collect();
                format!("[{}]", items.join(", "))
            })
            .boxed(),
        "neighbors" => vec(
            (
                prop::sample::select(IPS.to_vec()),
                prop::sample::select(vec!["02:00:00:00:00:02", "ff:ff:ff:ff:ff:ff"]),
                prop::sample::select(vec!["", ", bogus = 1"]),
            ),
            0..3,
        )
        .prop_map(|v| {
            let items: Vec<String> = v
                .iter()
                .map(|(ip, mac, extra)| format!("{{ ip = \"{ip}\", mac = \"{mac}\"{extra} }}"))
                .collect();
            format!("[{}]", items.join(", "))
        })
        .boxed(),
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
            "forward_only",
        ],
    );
    let underlay = section(
        "[underlay]",
        &[
            "port",
            "ifname",
            "local_ip",
            "local_mac",
            "gateway",
            "mtu",
            "df",
            "vxlan_port",
            "neighbors",
        ],
    );
    let entry = prop_oneof![
        2 => section(
            "[[network]]",
            &["name", "segment", "local_vlan", "id", "physnet", "remote_vteps"],
        ),
        2 => section("[[port]]", &["name", "ifname", "mode", "network", "vlans", "native"]),
        1 => section("[[physnet]]", &["name", "port", "ifname", "mtu"]),
        1 => section("[[fdb]]", &["network", "mac", "port", "remote"]),
        1 => section("[[arp]]", &["network", "ip", "mac"]),
    ];
    // Now and then one line of junk, so that syntax errors are in the mix too.
    let junk = option::weighted(0.05, (any::<prop::sample::Index>(), "[ -~]{0,10}"));
    (
        option::of(switch),
        option::of(underlay),
        vec(entry, 0..10),
        junk,
    )
        .prop_map(|(switch, underlay, entries, junk)| {
            let text = switch
                .into_iter()
                .chain(underlay)
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
