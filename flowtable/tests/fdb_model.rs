//! Model-based test of `Fdb`: random operation sequences run against the table and
//! against a reference model (a `BTreeMap` and the rules of the `fdb` module docs
//! written out plainly), with a small capacity and per-port limit so that the
//! full-table and limit policies are exercised all the time.
//!
//! After every operation: same results, same live contents (`fdb show`), same
//! per-port counts, and a VLAN generation that changed exactly when the model says a
//! forwarding decision in that VLAN may have changed.
//!
//! The one freedom the policy leaves — which of several equally busiest ports a
//! learner evicts from — is resolved by asking the table which of them lost an entry,
//! then checking that it lost its oldest one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use encap::{MacAddr, VlanId};
use flowtable::{Fdb, FdbConfig, FdbEntry, FdbError, FlushFilter, Learn, PortId, SEC};
use proptest::prelude::*;

const AGING: u64 = 5 * SEC;
const PORTS: u16 = 4;
const VLANS: [u16; 2] = [1, 2];

fn vlan(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

/// MAC universe: 0 is multicast, 1 is all-zero, the rest unicast.
fn mac(i: u8) -> MacAddr {
    match i {
        0 => MacAddr::new([0x01, 0x00, 0x5e, 0, 0, 1]),
        1 => MacAddr::ZERO,
        n => MacAddr::new([0x02, 0, 0, 0, 0, n]),
    }
}

fn key(v: u16, m: u8) -> u64 {
    (v as u64) << 48 | mac(m).to_u64()
}

#[derive(Clone, Copy, Debug)]
struct MEntry {
    port: u16,
    last_seen: u64,
    is_static: bool,
    /// Recency order: set when learned, moved, revived or refreshed in a new second.
    lru: u64,
}

#[derive(Debug)]
struct Model {
    cap: usize,
    limit: u32,
    map: BTreeMap<u64, MEntry>,
    tick: u64,
    bumped: BTreeSet<u16>,
}

impl Model {
    fn live(e: &MEntry, now: u64) -> bool {
        e.is_static || now.saturating_sub(e.last_seen) < AGING
    }

    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn learned(&self) -> impl Iterator<Item = (&u64, &MEntry)> {
        self.map.iter().filter(|(_, e)| !e.is_static)
    }

    fn count(&self, port: u16) -> u32 {
        self.learned().filter(|(_, e)| e.port == port).count() as u32
    }

    fn oldest(&self, port: Option<u16>) -> Option<u64> {
        self.learned()
            .filter(|(_, e)| port.is_none() || port == Some(e.port))
            .min_by_key(|(_, e)| e.lru)
            .map(|(k, _)| *k)
    }

    fn remove(&mut self, k: u64) {
        self.map.remove(&k);
        self.bumped.insert((k >> 48) as u16);
    }

    fn expired(&self, k: u64, now: u64) -> bool {
        !Self::live(&self.map[&k], now)
    }

    fn port_has_room(&mut self, port: u16, now: u64) -> bool {
        if self.limit == 0 || self.count(port) < self.limit {
            return true;
        }
        match self.oldest(Some(port)) {
            Some(k) if self.expired(k, now) => {
                self.remove(k);
                true
            }
            _ => false,
        }
    }

    /// Frees room in a full table; `victim_port` says which of several equally
    /// busiest ports the table chose.
    fn make_room(&mut self, port: u16, now: u64, victim_port: impl Fn(&[u16]) -> u16) {
        if let Some(k) = self.oldest(None) {
            if self.expired(k, now) {
                self.remove(k);
                return;
            }
        }
        let max = (0..PORTS).map(|p| self.count(p)).max().unwrap_or(0);
        let v = if self.count(port) >= max {
            port
        } else {
            let busiest: Vec<u16> = (0..PORTS).filter(|&p| self.count(p) == max).collect();
            if busiest.len() == 1 {
                busiest[0]
            } else {
                victim_port(&busiest)
            }
        };
        let k = self.oldest(Some(v)).unwrap();
        self.remove(k);
    }

    fn learn(
        &mut self,
        v: u16,
        m: u8,
        port: u16,
        now: u64,
        victim: impl Fn(&[u16]) -> u16,
    ) -> Learn {
        if !mac(m).is_unicast() || port >= PORTS {
            return Learn::NotLearnable;
        }
        let k = key(v, m);
        match self.map.get(&k).copied() {
            Some(e) if e.is_static => {
                if e.port == port {
                    Learn::Refreshed
                } else {
                    Learn::StaticMismatch
                }
            }
            Some(e) if Self::live(&e, now) && e.port == port => {
                if now > e.last_seen {
                    let shift = flowtable::fdb::refresh_shift(AGING);
                    let lru = if now >> shift != e.last_seen >> shift {
                        self.tick()
                    } else {
                        e.lru
                    };
                    self.map.insert(
                        k,
                        MEntry {
                            last_seen: now,
                            lru,
                            ..e
                        },
                    );
                }
                Learn::Refreshed
            }
            Some(e) => {
                if e.port != port && !self.port_has_room(port, now) {
                    if !Self::live(&e, now) {
                        return Learn::PortLimit;
                    }
                    // A live move onto a port at its limit: that port loses its oldest.
                    let victim = self.oldest(Some(port)).unwrap();
                    self.remove(victim);
                }
                let lru = self.tick();
                self.map.insert(
                    k,
                    MEntry {
                        port,
                        last_seen: e.last_seen.max(now),
                        is_static: false,
                        lru,
                    },
                );
                self.bumped.insert(v);
                if Self::live(&e, now) {
                    Learn::Moved {
                        from: PortId(e.port),
                    }
                } else {
                    Learn::New
                }
            }
            None => {
                if self.cap == 0 {
                    return Learn::TableFull;
                }
                if !self.port_has_room(port, now) {
                    return Learn::PortLimit;
                }
                if self.learned().count() == self.cap {
                    self.make_room(port, now, victim);
                }
                let lru = self.tick();
                self.map.insert(
                    k,
                    MEntry {
                        port,
                        last_seen: now,
                        is_static: false,
                        lru,
                    },
                );
                self.bumped.insert(v);
                Learn::New
            }
        }
    }

    fn lookup(&self, v: u16, m: u8, now: u64) -> Option<PortId> {
        self.map
            .get(&key(v, m))
            .filter(|e| Self::live(e, now))
            .map(|e| PortId(e.port))
    }

    fn age(&mut self, now: u64, budget: usize) -> usize {
        let mut n = 0;
        for _ in 0..budget {
            match self.oldest(None) {
                Some(k) if self.expired(k, now) => {
                    self.remove(k);
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }

    fn add_static(&mut self, v: u16, m: u8, port: u16) -> Result<(), FdbError> {
        if !mac(m).is_unicast() {
            return Err(FdbError::NotUnicast(mac(m)));
        }
        if port >= PORTS {
            return Err(FdbError::PortOutOfRange {
                port,
                max_ports: PORTS as usize,
            });
        }
        let k = key(v, m);
        match self.map.get(&k) {
            Some(e) if e.is_static && e.port == port => {}
            _ => {
                self.map.insert(
                    k,
                    MEntry {
                        port,
                        last_seen: 0,
                        is_static: true,
                        lru: 0,
                    },
                );
                self.bumped.insert(v);
            }
        }
        Ok(())
    }

    fn remove_static(&mut self, v: u16, m: u8) -> bool {
        let k = key(v, m);
        if self.map.get(&k).is_some_and(|e| e.is_static) {
            self.remove(k);
            true
        } else {
            false
        }
    }

    fn flush(&mut self, f: FlushFilter) -> usize {
        let doomed: Vec<u64> = self
            .learned()
            .filter(|(k, e)| {
                let v = (**k >> 48) as u16;
                match f {
                    FlushFilter::All => true,
                    FlushFilter::Vlan(x) => x.get() == v,
                    FlushFilter::Port(p) => p.0 == e.port,
                    FlushFilter::VlanPort(x, p) => x.get() == v && p.0 == e.port,
                }
            })
            .map(|(k, _)| *k)
            .collect();
        for &k in &doomed {
            self.remove(k);
        }
        doomed.len()
    }

    fn show(&self, now: u64) -> Vec<FdbEntry> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| Self::live(e, now))
            .map(|(k, e)| FdbEntry {
                vlan: vlan((k >> 48) as u16),
                mac: MacAddr::from_u64(*k),
                port: PortId(e.port),
                age_ns: if e.is_static {
                    0
                } else {
                    now.saturating_sub(e.last_seen)
                },
                is_static: e.is_static,
            })
            .collect();
        v.sort_by_key(|e| (e.vlan, e.mac));
        v
    }
}

#[derive(Clone, Debug)]
enum Op {
    Learn { v: u16, m: u8, port: u16 },
    Lookup { v: u16, m: u8 },
    Advance(u64),
    AddStatic { v: u16, m: u8, port: u16 },
    RemoveStatic { v: u16, m: u8 },
    Flush(FlushFilter),
    Age(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let v = prop::sample::select(VLANS.to_vec());
    let m = 0u8..10;
    let port = prop_oneof![20 => 0..PORTS, 1 => Just(PORTS)];
    let dt = prop_oneof![
        Just(0u64),
        Just(1),
        Just(SEC / 3),
        Just(SEC),
        Just(3 * SEC),
        Just(AGING - 1),
        Just(AGING),
        0..2 * AGING,
    ];
    let filter = prop_oneof![
        Just(FlushFilter::All),
        prop::sample::select(VLANS.to_vec()).prop_map(|v| FlushFilter::Vlan(vlan(v))),
        (0..PORTS).prop_map(|p| FlushFilter::Port(PortId(p))),
        (prop::sample::select(VLANS.to_vec()), 0..PORTS)
            .prop_map(|(v, p)| FlushFilter::VlanPort(vlan(v), PortId(p))),
    ];
    prop_oneof![
        30 => (v.clone(), m.clone(), port.clone()).prop_map(|(v, m, port)| Op::Learn { v, m, port }),
        10 => (v.clone(), m.clone()).prop_map(|(v, m)| Op::Lookup { v, m }),
        10 => dt.prop_map(Op::Advance),
        3 => (v.clone(), m.clone(), port).prop_map(|(v, m, port)| Op::AddStatic { v, m, port }),
        3 => (v, m).prop_map(|(v, m)| Op::RemoveStatic { v, m }),
        2 => filter.prop_map(Op::Flush),
        4 => (0usize..4).prop_map(Op::Age),
    ]
}

fn run(cap: usize, limit: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut fdb = Fdb::new(FdbConfig {
        capacity: cap,
        per_port_limit: limit,
        aging_ns: AGING,
        max_ports: PORTS as usize,
    })
    .unwrap();
    let mut model = Model {
        cap,
        limit,
        map: BTreeMap::new(),
        tick: 0,
        bumped: BTreeSet::new(),
    };
    // Start at an arbitrary epoch, not 0.
    let mut now = 1_000 * SEC + 7;
    for (i, op) in ops.iter().enumerate() {
        let gens_before: Vec<u64> = VLANS
            .iter()
            .map(|&v| fdb.vlan_generation(vlan(v)))
            .collect();
        let counts_before: Vec<u32> = (0..PORTS).map(|p| fdb.port_count(PortId(p))).collect();
        model.bumped.clear();
        match *op {
            Op::Learn { v, m, port } => {
                let got = fdb.learn(vlan(v), mac(m), PortId(port), now);
                let want = model.learn(v, m, port, now, |busiest| {
                    // The table chose one of the equally busiest ports: the one whose
                    // count dropped.
                    *busiest
                        .iter()
                        .find(|&&p| fdb.port_count(PortId(p)) < counts_before[p as usize])
                        .expect("an equally busiest port lost an entry")
                });
                prop_assert_eq!(got, want, "op {}: {:?}", i, op);
            }
            Op::Lookup { v, m } => {
                prop_assert_eq!(fdb.lookup(vlan(v), mac(m), now), model.lookup(v, m, now));
            }
            Op::Advance(dt) => now += dt,
            Op::AddStatic { v, m, port } => {
                prop_assert_eq!(
                    fdb.add_static(vlan(v), mac(m), PortId(port)),
                    model.add_static(v, m, port)
                );
            }
            Op::RemoveStatic { v, m } => {
                prop_assert_eq!(
                    fdb.remove_static(vlan(v), mac(m)),
                    model.remove_static(v, m)
                );
            }
            Op::Flush(f) => prop_assert_eq!(fdb.flush(f), model.flush(f), "op {}", i),
            Op::Age(b) => prop_assert_eq!(fdb.age(now, b), model.age(now, b), "op {}", i),
        }
        // Same contents, counts and generations.
        let mut shown: Vec<FdbEntry> = fdb.iter(now).collect();
        shown.sort_by_key(|e| (e.vlan, e.mac));
        prop_assert_eq!(shown, model.show(now), "contents after op {}: {:?}", i, op);
        prop_assert_eq!(fdb.len(), model.map.len());
        prop_assert_eq!(fdb.learned_len(), model.learned().count());
        prop_assert!(fdb.learned_len() <= cap);
        for p in 0..PORTS {
            prop_assert_eq!(fdb.port_count(PortId(p)), model.count(p));
            if limit > 0 {
                prop_assert!(model.count(p) <= limit);
            }
        }
        for (j, &v) in VLANS.iter().enumerate() {
            let changed = fdb.vlan_generation(vlan(v)) != gens_before[j];
            prop_assert_eq!(
                changed,
                model.bumped.contains(&v),
                "generation of VLAN {} after op {}: {:?}",
                v,
                i,
                op
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fdb_matches_model_with_port_limit(ops in prop::collection::vec(op(), 1..200)) {
        run(5, 2, &ops)?;
    }

    #[test]
    fn fdb_matches_model_without_port_limit(ops in prop::collection::vec(op(), 1..200)) {
        run(5, 0, &ops)?;
    }

    #[test]
    fn fdb_matches_model_tiny(ops in prop::collection::vec(op(), 1..100)) {
        run(1, 0, &ops)?;
    }
}

/// The scenario the full-table rule exists for, spelled out: a port that floods new
/// source MACs never evicts the entries of a quieter port.
#[test]
fn flooding_port_cannot_starve_others() {
    let mut fdb = Fdb::new(FdbConfig {
        capacity: 100,
        per_port_limit: 0,
        aging_ns: 300 * SEC,
        max_ports: 4,
    })
    .unwrap();
    for i in 0..10u64 {
        let m = MacAddr::from_u64(0x0200_0000_0000 | i);
        assert_eq!(fdb.learn(vlan(1), m, PortId(1), 0), Learn::New);
    }
    for i in 0..100_000u64 {
        let m = MacAddr::from_u64(0x0600_0000_0000 | i);
        assert_eq!(fdb.learn(vlan(1), m, PortId(2), SEC + i), Learn::New);
    }
    for i in 0..10u64 {
        let m = MacAddr::from_u64(0x0200_0000_0000 | i);
        assert_eq!(fdb.lookup(vlan(1), m, 2 * SEC), Some(PortId(1)));
    }
    assert_eq!(fdb.port_count(PortId(2)), 90);
}
