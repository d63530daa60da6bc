//! A cached forwarding decision never outlives what it depends on.
//!
//! A miniature br-int (access and trunk ports, NORMAL forwarding over the `Fdb`) makes
//! every decision twice: through the `FlowCache` (hit, or compute-and-insert) and
//! from scratch. They must agree on every frame. Scenario tests cover each thing a
//! decision depends on — a port removed or moved to another network, a MAC moved or
//! aged (by time alone, with no sweep), a static entry added, changed or removed, a
//! flush — and a proptest runs random mixtures of all of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use encap::{MacAddr, VlanId};
use flowtable::{
    Fdb, FdbConfig, FdbKey, FlowCache, FlowKey, FlushFilter, Gens, PortId, Stamp, SEC,
};
use proptest::prelude::*;

const AGING: u64 = 10 * SEC;

fn vlan(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

fn mac(i: u8) -> MacAddr {
    MacAddr::new([0x02, 0, 0, 0, 0, i])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Drop,
    Flood(u16),
    Output(PortId),
}

#[derive(Clone, Debug, PartialEq)]
enum PortCfg {
    Removed,
    Access(VlanId),
    /// (wire VID, local VLAN).
    Trunk(Vec<(u16, VlanId)>),
}

struct Switch {
    config_gen: u64,
    ports: Vec<PortCfg>,
    fdb: Fdb,
    cache: FlowCache<Action>,
}

impl Switch {
    fn new() -> Self {
        Switch {
            config_gen: 1,
            ports: vec![
                PortCfg::Access(vlan(1)),
                PortCfg::Access(vlan(1)),
                PortCfg::Access(vlan(1)),
                PortCfg::Access(vlan(2)),
                PortCfg::Trunk(vec![(10, vlan(1)), (20, vlan(2))]),
            ],
            fdb: Fdb::new(FdbConfig {
                capacity: 64,
                per_port_limit: 0,
                aging_ns: AGING,
                max_ports: 5,
            })
            .unwrap(),
            // Small, so that collisions and evictions happen too.
            cache: FlowCache::new(16).unwrap(),
        }
    }

    fn classify(&self, in_port: PortId, vid: u16) -> Option<VlanId> {
        match self.ports.get(in_port.index())? {
            PortCfg::Removed => None,
            PortCfg::Access(v) => (vid == 0).then_some(*v),
            PortCfg::Trunk(vids) => vids.iter().find(|(w, _)| *w == vid).map(|(_, v)| *v),
        }
    }

    fn member(&self, port: PortId, v: VlanId) -> bool {
        match self.ports.get(port.index()) {
            Some(PortCfg::Access(a)) => *a == v,
            Some(PortCfg::Trunk(vids)) => vids.iter().any(|(_, x)| *x == v),
            _ => false,
        }
    }

    /// NORMAL forwarding from scratch, with what the decision depended on.
    fn decide(&self, key: &FlowKey, now: u64) -> (Action, Stamp) {
        let gens = Gens {
            config: self.config_gen,
            vlans: self.fdb.vlan_gens(),
        };
        let Some(v) = self.classify(key.in_port, key.vid) else {
            return (Action::Drop, Stamp::new(&gens, None, u64::MAX));
        };
        let flood = (Action::Flood(v.get()), Stamp::new(&gens, Some(v), u64::MAX));
        if key.dst.is_multicast() {
            return flood;
        }
        match self.fdb.lookup_hit(FdbKey::new(v, key.dst), now) {
            Some(hit) if hit.port == key.in_port => {
                (Action::Drop, Stamp::new(&gens, Some(v), hit.deadline_ns))
            }
            Some(hit) if self.member(hit.port, v) => (
                Action::Output(hit.port),
                Stamp::new(&gens, Some(v), hit.deadline_ns),
            ),
            _ => flood,
        }
    }

    /// One frame: learn its source, then forward through the cache; checks the cached
    /// answer against a fresh one. Returns the action and whether it was a hit.
    fn frame(&mut self, in_port: u16, vid: u16, src: u8, dst: u8, now: u64) -> (Action, bool) {
        let in_port = PortId(in_port);
        if let Some(v) = self.classify(in_port, vid) {
            self.fdb.learn(v, mac(src), in_port, now);
        }
        let key = FlowKey {
            in_port,
            vid,
            dst: mac(dst),
        };
        let h = key.hash();
        let gens = Gens {
            config: self.config_gen,
            vlans: self.fdb.vlan_gens(),
        };
        let cached = self.cache.lookup(&key, h, &gens, now);
        let (fresh, stamp) = self.decide(&key, now);
        if let Some(a) = cached {
            assert_eq!(a, fresh, "stale decision served for {key:?} at {now}");
        } else {
            self.cache.insert(&key, h, fresh, stamp);
        }
        (fresh, cached.is_some())
    }

    /// Reconfigures a port: new configuration generation, and its learned MACs go
    /// (what the control plane does on a port change).
    fn set_port(&mut self, port: u16, cfg: PortCfg) {
        self.ports[port as usize] = cfg;
        self.config_gen += 1;
        self.fdb.flush(FlushFilter::Port(PortId(port)));
    }
}

/// A (port 0) talks to B (port 2): the decision is cached, then served from cache.
fn warmed(now: u64) -> Switch {
    let mut sw = Switch::new();
    sw.frame(2, 0, 0xB, 0xA, now); // B learned on port 2
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, now),
        (Action::Output(PortId(2)), false)
    );
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, now + 1),
        (Action::Output(PortId(2)), true)
    );
    sw
}

#[test]
fn port_removed() {
    let mut sw = warmed(0);
    sw.set_port(2, PortCfg::Removed);
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 2), (Action::Flood(1), false));
    assert_eq!(sw.cache.stats().stale, 1);
}

#[test]
fn port_removed_without_flush_is_caught_by_config_generation() {
    let mut sw = warmed(0);
    // Only the configuration changes; the FDB still says B is on port 2.
    sw.ports[2] = PortCfg::Removed;
    sw.config_gen += 1;
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 2), (Action::Flood(1), false));
}

#[test]
fn port_moved_to_another_network() {
    let mut sw = warmed(0);
    sw.set_port(2, PortCfg::Access(vlan(2)));
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 2), (Action::Flood(1), false));
    // And the ingress side: a frame from port 2 is now in VLAN 2.
    assert_eq!(sw.frame(2, 0, 0xB, 0xA, 3), (Action::Flood(2), false));
}

#[test]
fn trunk_vid_remapped() {
    let mut sw = Switch::new();
    sw.frame(1, 0, 0xB, 0xA, 0);
    assert_eq!(
        sw.frame(4, 10, 0xA, 0xB, 0),
        (Action::Output(PortId(1)), false)
    );
    assert_eq!(
        sw.frame(4, 10, 0xA, 0xB, 1),
        (Action::Output(PortId(1)), true)
    );
    sw.set_port(4, PortCfg::Trunk(vec![(10, vlan(2))]));
    assert_eq!(sw.frame(4, 10, 0xA, 0xB, 2), (Action::Flood(2), false));
}

#[test]
fn mac_moved() {
    let mut sw = warmed(0);
    sw.frame(1, 0, 0xB, 0xA, 5); // B now sends from port 1
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 6),
        (Action::Output(PortId(1)), false)
    );
}

#[test]
fn mac_aged_by_time_alone() {
    let mut sw = warmed(0);
    // A keeps talking (A is refreshed), B is silent; nobody sweeps.
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, AGING - 1),
        (Action::Output(PortId(2)), true)
    );
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, AGING), (Action::Flood(1), false));
    assert_eq!(sw.fdb.learned_len(), 2, "B was not swept, only expired");
}

#[test]
fn refresh_keeps_the_cache_and_extends_the_entry() {
    let mut sw = warmed(0);
    sw.frame(2, 0, 0xB, 0xA, 5 * SEC); // B refreshed: no generation change
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 5 * SEC),
        (Action::Output(PortId(2)), true)
    );
    // The cached deadline was the old one: recomputed there, still unicast.
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, AGING),
        (Action::Output(PortId(2)), false)
    );
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, AGING + 1),
        (Action::Output(PortId(2)), true)
    );
}

#[test]
fn static_entry_added_changed_removed() {
    let mut sw = warmed(0);
    sw.fdb.add_static(vlan(1), mac(0xB), PortId(1)).unwrap();
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 2),
        (Action::Output(PortId(1)), false)
    );
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 3),
        (Action::Output(PortId(1)), true)
    );
    sw.fdb.add_static(vlan(1), mac(0xB), PortId(4)).unwrap();
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 4),
        (Action::Output(PortId(4)), false)
    );
    sw.fdb.remove_static(vlan(1), mac(0xB));
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 5), (Action::Flood(1), false));
}

#[test]
fn flush() {
    for f in [
        FlushFilter::All,
        FlushFilter::Vlan(vlan(1)),
        FlushFilter::Port(PortId(2)),
        FlushFilter::VlanPort(vlan(1), PortId(2)),
    ] {
        let mut sw = warmed(0);
        sw.fdb.flush(f);
        assert_eq!(
            sw.frame(0, 0, 0xA, 0xB, 2),
            (Action::Flood(1), false),
            "{f:?}"
        );
    }
}

#[test]
fn unknown_destination_learned() {
    let mut sw = Switch::new();
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 0), (Action::Flood(1), false));
    assert_eq!(sw.frame(0, 0, 0xA, 0xB, 1), (Action::Flood(1), true));
    sw.frame(2, 0, 0xB, 0xA, 2);
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 3),
        (Action::Output(PortId(2)), false)
    );
}

#[test]
fn other_networks_changes_keep_the_cache() {
    let mut sw = warmed(0);
    sw.frame(3, 0, 0xC, 0xD, 1); // VLAN 2 learns
    sw.fdb.flush(FlushFilter::Vlan(vlan(2)));
    assert_eq!(
        sw.frame(0, 0, 0xA, 0xB, 2),
        (Action::Output(PortId(2)), true)
    );
}

#[derive(Clone, Debug)]
enum Op {
    Frame {
        in_port: u16,
        vid: u16,
        src: u8,
        dst: u8,
    },
    Advance(u64),
    SetPort(u16, PortCfg),
    AddStatic(u16, u8, u16),
    RemoveStatic(u16, u8),
    Flush(FlushFilter),
    Age(usize),
    Sweep(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let v = prop_oneof![Just(vlan(1)), Just(vlan(2))];
    let port_cfg = prop_oneof![
        Just(PortCfg::Removed),
        v.clone().prop_map(PortCfg::Access),
        Just(PortCfg::Trunk(vec![(10, vlan(1)), (20, vlan(2))])),
        Just(PortCfg::Trunk(vec![(10, vlan(2))])),
    ];
    let filter = prop_oneof![
        Just(FlushFilter::All),
        v.clone().prop_map(FlushFilter::Vlan),
        (0u16..5).prop_map(|p| FlushFilter::Port(PortId(p))),
        (v, 0u16..5).prop_map(|(v, p)| FlushFilter::VlanPort(v, PortId(p))),
    ];
    let m = 1u8..6;
    prop_oneof![
        40 => (0u16..5, prop_oneof![3 => Just(0u16), 1 => Just(10), 1 => Just(20)], m.clone(), prop_oneof![5 => m.clone(), 1 => Just(0xff)])
            .prop_map(|(in_port, vid, src, dst)| Op::Frame { in_port, vid, src, dst }),
        10 => prop_oneof![Just(1u64), Just(SEC), Just(AGING - 1), Just(AGING), 0..2 * AGING].prop_map(Op::Advance),
        2 => (0u16..5, port_cfg).prop_map(|(p, c)| Op::SetPort(p, c)),
        2 => (1u16..3, m.clone(), 0u16..5).prop_map(|(v, m, p)| Op::AddStatic(v, m, p)),
        2 => (1u16..3, m).prop_map(|(v, m)| Op::RemoveStatic(v, m)),
        1 => filter.prop_map(Op::Flush),
        2 => (0usize..3).prop_map(Op::Age),
        2 => (0usize..8).prop_map(Op::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever happens between two frames, the cache answers exactly what a fresh
    /// computation answers (asserted inside `Switch::frame`).
    #[test]
    fn cached_decisions_equal_fresh_ones(ops in prop::collection::vec(op(), 1..150)) {
        let mut sw = Switch::new();
        let mut now = 77 * SEC;
        for op in ops {
            match op {
                Op::Frame { in_port, vid, src, dst } => {
                    sw.frame(in_port, vid, src, dst, now);
                }
                Op::Advance(dt) => now += dt,
                Op::SetPort(p, c) => sw.set_port(p, c),
                Op::AddStatic(v, m, p) => sw.fdb.add_static(vlan(v), mac(m), PortId(p)).unwrap(),
                Op::RemoveStatic(v, m) => {
                    sw.fdb.remove_static(vlan(v), mac(m));
                }
                Op::Flush(f) => {
                    sw.fdb.flush(f);
                }
                Op::Age(b) => {
                    sw.fdb.age(now, b);
                }
                Op::Sweep(b) => {
                    let gens = Gens { config: sw.config_gen, vlans: sw.fdb.vlan_gens() };
                    sw.cache.sweep(&gens, now, b);
                }
            }
        }
    }
}

/// The proptest above is not vacuous: the same kind of traffic mostly hits.
#[test]
fn the_cache_is_used() {
    let mut sw = Switch::new();
    for t in 0..1000u64 {
        // MAC i lives on port i - 1 and talks to the next one.
        let src = (t % 3) as u8 + 1;
        let dst = ((t + 1) % 3) as u8 + 1;
        sw.frame(src as u16 - 1, 0, src, dst, t * SEC / 100);
    }
    let s = sw.cache.stats();
    assert!(s.hits > 500, "{s:?}");
}
