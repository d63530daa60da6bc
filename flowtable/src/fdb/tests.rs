use super::*;

const AGING: u64 = 10 * SEC;

fn vlan(n: u16) -> VlanId {
    VlanId::try_new(n).unwrap()
}

/// A locally administered unicast MAC.
fn mac(n: u64) -> MacAddr {
    MacAddr::from_u64(0x02_00_00_00_00_00 | n)
}

fn fdb(capacity: usize, per_port_limit: u32) -> Fdb {
    Fdb::new(FdbConfig {
        capacity,
        per_port_limit,
        aging_ns: AGING,
        max_ports: 8,
    })
    .unwrap()
}

#[test]
fn entry_is_24_bytes() {
    assert_eq!(size_of::<Entry>(), 24);
}

#[test]
fn config_is_validated() {
    let ok = FdbConfig::default();
    assert!(Fdb::new(ok).is_ok());
    for (cfg, err) in [
        (FdbConfig { aging_ns: 0, ..ok }, FdbError::ZeroAging),
        (FdbConfig { max_ports: 0, ..ok }, FdbError::MaxPorts(0)),
        (
            FdbConfig {
                max_ports: 65537,
                ..ok
            },
            FdbError::MaxPorts(65537),
        ),
        (
            FdbConfig {
                capacity: usize::MAX,
                ..ok
            },
            FdbError::CapacityTooLarge(usize::MAX),
        ),
    ] {
        assert_eq!(Fdb::new(cfg).unwrap_err(), err);
    }
}

#[test]
fn learn_then_lookup_is_per_vlan() {
    let mut f = fdb(16, 0);
    assert_eq!(f.learn(vlan(1), mac(1), PortId(2), 0), Learn::New);
    assert_eq!(f.lookup(vlan(1), mac(1), 1), Some(PortId(2)));
    assert_eq!(f.lookup(vlan(2), mac(1), 1), None);
    assert_eq!(f.learn(vlan(2), mac(1), PortId(3), 0), Learn::New);
    assert_eq!(f.lookup(vlan(2), mac(1), 1), Some(PortId(3)));
    assert_eq!(f.lookup(vlan(1), mac(1), 1), Some(PortId(2)));
    assert_eq!(f.len(), 2);
    f.check_invariants();
}

#[test]
fn never_learns_multicast_zero_or_bad_ports() {
    let mut f = fdb(16, 0);
    let mcast = MacAddr::new([0x01, 0, 0x5e, 0, 0, 1]);
    assert_eq!(f.learn(vlan(1), mcast, PortId(1), 0), Learn::NotLearnable);
    assert_eq!(
        f.learn(vlan(1), MacAddr::BROADCAST, PortId(1), 0),
        Learn::NotLearnable
    );
    assert_eq!(
        f.learn(vlan(1), MacAddr::ZERO, PortId(1), 0),
        Learn::NotLearnable
    );
    assert_eq!(f.learn(vlan(1), mac(1), PortId(8), 0), Learn::NotLearnable);
    assert!(f.is_empty());
    assert_eq!(f.stats().not_learnable, 4);
}

#[test]
fn refresh_keeps_generation_new_and_move_bump_it() {
    let mut f = fdb(16, 0);
    let g0 = f.vlan_generation(vlan(7));
    assert_eq!(f.learn(vlan(7), mac(1), PortId(1), 0), Learn::New);
    let g1 = f.vlan_generation(vlan(7));
    assert_ne!(g0, g1);
    assert_eq!(
        f.learn(vlan(7), mac(1), PortId(1), 3 * SEC),
        Learn::Refreshed
    );
    assert_eq!(f.vlan_generation(vlan(7)), g1);
    assert_eq!(
        f.learn(vlan(7), mac(1), PortId(4), 4 * SEC),
        Learn::Moved { from: PortId(1) }
    );
    assert_ne!(f.vlan_generation(vlan(7)), g1);
    assert_eq!(f.lookup(vlan(7), mac(1), 4 * SEC), Some(PortId(4)));
    assert_eq!(f.port_count(PortId(1)), 0);
    assert_eq!(f.port_count(PortId(4)), 1);
    // Another VLAN's generation is untouched.
    assert_eq!(f.vlan_generation(vlan(8)), 0);
    f.check_invariants();
}

#[test]
fn aging_is_exact_without_a_sweep() {
    let mut f = fdb(16, 0);
    f.learn(vlan(1), mac(1), PortId(1), 5);
    assert_eq!(f.lookup(vlan(1), mac(1), 5 + AGING - 1), Some(PortId(1)));
    assert_eq!(f.lookup(vlan(1), mac(1), 5 + AGING), None);
    let hit = f.lookup_hit(FdbKey::new(vlan(1), mac(1)), 5).unwrap();
    assert_eq!(hit.deadline_ns, 5 + AGING);
    // A refresh restarts the idle timer.
    assert_eq!(
        f.learn(vlan(1), mac(1), PortId(1), 5 + AGING - 1),
        Learn::Refreshed
    );
    assert_eq!(f.lookup(vlan(1), mac(1), 5 + AGING), Some(PortId(1)));
    assert_eq!(f.lookup(vlan(1), mac(1), 5 + 2 * AGING - 1), None);
    // Relearning an expired entry is New (it was gone) and bumps the generation.
    let g = f.vlan_generation(vlan(1));
    assert_eq!(
        f.learn(vlan(1), mac(1), PortId(3), 5 + 2 * AGING),
        Learn::New
    );
    assert_ne!(f.vlan_generation(vlan(1)), g);
    assert_eq!(f.len(), 1);
    f.check_invariants();
}

#[test]
fn age_sweeps_oldest_first_within_budget() {
    let mut f = fdb(16, 0);
    for i in 0..6 {
        f.learn(vlan(1), mac(i), PortId(1), i * SEC);
    }
    // At AGING + 2.5 s, the entries learned at 0, 1, 2 s are expired.
    let now = AGING + 2 * SEC + SEC / 2;
    let g = f.vlan_generation(vlan(1));
    assert_eq!(f.age(now, 2), 2);
    assert_eq!(f.age(now, 10), 1);
    assert_eq!(f.age(now, 10), 0);
    assert_ne!(f.vlan_generation(vlan(1)), g);
    assert_eq!(f.learned_len(), 3);
    assert_eq!(f.stats().aged, 3);
    f.check_invariants();
}

#[test]
fn statics_never_age_move_or_count() {
    let mut f = fdb(2, 1);
    f.add_static(vlan(1), mac(1), PortId(1)).unwrap();
    assert_eq!(
        f.learn(vlan(1), mac(1), PortId(2), 0),
        Learn::StaticMismatch
    );
    assert_eq!(f.learn(vlan(1), mac(1), PortId(1), 0), Learn::Refreshed);
    assert_eq!(f.lookup(vlan(1), mac(1), u64::MAX - 1), Some(PortId(1)));
    assert_eq!(
        f.lookup_hit(FdbKey::new(vlan(1), mac(1)), 0)
            .unwrap()
            .deadline_ns,
        u64::MAX
    );
    // The static entry does not use the port's limit of 1 nor the capacity of 2.
    assert_eq!(f.learn(vlan(1), mac(2), PortId(1), 0), Learn::New);
    assert_eq!(f.learn(vlan(1), mac(3), PortId(2), 0), Learn::New);
    assert_eq!(f.age(u64::MAX, 100), 2);
    assert_eq!(f.flush(FlushFilter::All), 0);
    assert_eq!(f.len(), 1);
    assert_eq!(f.static_len(), 1);
    assert_eq!(f.stats().static_mismatch, 1);
    f.check_invariants();
}

#[test]
fn static_replaces_learned_and_changes_bump() {
    let mut f = fdb(4, 0);
    f.learn(vlan(1), mac(1), PortId(2), 0);
    let g = f.vlan_generation(vlan(1));
    f.add_static(vlan(1), mac(1), PortId(3)).unwrap();
    let g1 = f.vlan_generation(vlan(1));
    assert_ne!(g1, g);
    assert_eq!(f.learned_len(), 0);
    assert_eq!(f.lookup(vlan(1), mac(1), 0), Some(PortId(3)));
    // Same static again: no change, no bump.
    f.add_static(vlan(1), mac(1), PortId(3)).unwrap();
    assert_eq!(f.vlan_generation(vlan(1)), g1);
    f.add_static(vlan(1), mac(1), PortId(4)).unwrap();
    let g2 = f.vlan_generation(vlan(1));
    assert_ne!(g2, g1);
    assert!(f.remove_static(vlan(1), mac(1)));
    assert_ne!(f.vlan_generation(vlan(1)), g2);
    assert!(!f.remove_static(vlan(1), mac(1)));
    assert_eq!(f.lookup(vlan(1), mac(1), 0), None);
    // remove_static leaves learned entries alone.
    f.learn(vlan(1), mac(2), PortId(2), 0);
    assert!(!f.remove_static(vlan(1), mac(2)));
    assert_eq!(f.lookup(vlan(1), mac(2), 0), Some(PortId(2)));
    assert_eq!(
        f.add_static(vlan(1), MacAddr::BROADCAST, PortId(1)),
        Err(FdbError::NotUnicast(MacAddr::BROADCAST))
    );
    assert_eq!(
        f.add_static(vlan(1), mac(9), PortId(8)),
        Err(FdbError::PortOutOfRange {
            port: 8,
            max_ports: 8
        })
    );
    f.check_invariants();
}

#[test]
fn per_port_limit_refuses_then_reclaims_expired() {
    let mut f = fdb(100, 2);
    assert_eq!(f.learn(vlan(1), mac(1), PortId(1), 0), Learn::New);
    assert_eq!(f.learn(vlan(1), mac(2), PortId(1), SEC), Learn::New);
    assert_eq!(
        f.learn(vlan(1), mac(3), PortId(1), 2 * SEC),
        Learn::PortLimit
    );
    // A move onto a port at its limit re-points at once; the port gives up its oldest.
    assert_eq!(f.learn(vlan(1), mac(9), PortId(2), 2 * SEC), Learn::New);
    assert_eq!(
        f.learn(vlan(1), mac(9), PortId(1), 2 * SEC),
        Learn::Moved { from: PortId(2) }
    );
    assert_eq!(f.lookup(vlan(1), mac(9), 2 * SEC), Some(PortId(1)));
    assert_eq!(f.lookup(vlan(1), mac(1), 2 * SEC), None);
    assert_eq!(f.port_count(PortId(1)), 2);
    // Other ports are not limited by port 1.
    assert_eq!(f.learn(vlan(1), mac(4), PortId(2), 2 * SEC), Learn::New);
    // Once port 1's oldest entry (MAC 2, seen at 1 s) expires, it is reclaimed.
    assert_eq!(f.learn(vlan(1), mac(3), PortId(1), AGING + SEC), Learn::New);
    assert_eq!(f.lookup(vlan(1), mac(2), AGING + SEC), None);
    assert_eq!(f.lookup(vlan(1), mac(9), AGING + SEC), Some(PortId(1)));
    assert_eq!(f.port_count(PortId(1)), 2);
    assert_eq!(f.stats().reclaimed, 1);
    assert_eq!(f.stats().port_limit, 1);
    f.check_invariants();
}

#[test]
fn full_table_flooder_evicts_only_itself() {
    let mut f = fdb(8, 0);
    // Two quiet ports hold 2 MACs each.
    for (i, p) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
        assert_eq!(f.learn(vlan(1), mac(i), PortId(p), 0), Learn::New);
    }
    // Port 3 floods 100 new MACs.
    for i in 100..200 {
        assert_eq!(f.learn(vlan(1), mac(i), PortId(3), SEC + i), Learn::New);
    }
    assert_eq!(f.learned_len(), 8);
    for i in 1..=4 {
        assert!(
            f.lookup(vlan(1), mac(i), 2 * SEC).is_some(),
            "quiet MAC {i} was evicted"
        );
    }
    assert_eq!(f.port_count(PortId(3)), 4);
    // It kept its 4 newest.
    for i in 196..200 {
        assert_eq!(f.lookup(vlan(1), mac(i), 2 * SEC), Some(PortId(3)));
    }
    assert_eq!(f.stats().evicted, 96);
    f.check_invariants();
}

#[test]
fn full_table_small_port_evicts_from_busiest_oldest_first() {
    let mut f = fdb(4, 0);
    for i in 0..3 {
        f.learn(vlan(1), mac(i), PortId(1), i * SEC);
    }
    f.learn(vlan(1), mac(10), PortId(2), 0);
    // Port 5 (0 entries) needs room: port 1 has strictly more, its oldest goes.
    assert_eq!(f.learn(vlan(1), mac(20), PortId(5), 5 * SEC), Learn::New);
    assert_eq!(f.lookup(vlan(1), mac(0), 5 * SEC), None);
    assert_eq!(f.lookup(vlan(1), mac(1), 5 * SEC), Some(PortId(1)));
    // Now ports 1 has 2, 2 and 5 have 1: port 2 needs room and evicts from port 1.
    assert_eq!(f.learn(vlan(1), mac(11), PortId(2), 6 * SEC), Learn::New);
    assert_eq!(f.lookup(vlan(1), mac(1), 6 * SEC), None);
    // Now every port has 1 or 2 (port 2 has 2): port 2 is among the busiest and
    // evicts its own oldest.
    assert_eq!(f.port_count(PortId(2)), 2);
    assert_eq!(f.learn(vlan(1), mac(12), PortId(2), 7 * SEC), Learn::New);
    assert_eq!(f.lookup(vlan(1), mac(10), 7 * SEC), None);
    assert_eq!(f.lookup(vlan(1), mac(11), 7 * SEC), Some(PortId(2)));
    f.check_invariants();
}

#[test]
fn full_table_reclaims_expired_before_evicting() {
    let mut f = fdb(3, 0);
    f.learn(vlan(1), mac(1), PortId(1), 0);
    f.learn(vlan(1), mac(2), PortId(2), 5 * SEC);
    f.learn(vlan(1), mac(3), PortId(2), 5 * SEC);
    // At AGING, mac 1 (port 1, the smaller port) is expired and is reused first.
    assert_eq!(f.learn(vlan(1), mac(4), PortId(3), AGING), Learn::New);
    assert_eq!(f.stats().reclaimed, 1);
    assert_eq!(f.stats().evicted, 0);
    assert_eq!(f.lookup(vlan(1), mac(2), AGING), Some(PortId(2)));
    f.check_invariants();
}

#[test]
fn zero_capacity_refuses() {
    let mut f = fdb(0, 0);
    assert_eq!(f.learn(vlan(1), mac(1), PortId(1), 0), Learn::TableFull);
    f.add_static(vlan(1), mac(1), PortId(1)).unwrap();
    assert_eq!(f.lookup(vlan(1), mac(1), 0), Some(PortId(1)));
}

#[test]
fn flush_filters() {
    let mut f = fdb(64, 0);
    for v in 1..=2 {
        for p in 1..=2 {
            for i in 0..3 {
                f.learn(vlan(v), mac(p as u64 * 10 + i), PortId(p), 0);
            }
        }
    }
    f.add_static(vlan(1), mac(99), PortId(1)).unwrap();
    let g2 = f.vlan_generation(vlan(2));
    assert_eq!(f.flush(FlushFilter::VlanPort(vlan(1), PortId(1))), 3);
    assert_eq!(
        f.vlan_generation(vlan(2)),
        g2,
        "untouched VLAN kept its generation"
    );
    assert_eq!(f.flush(FlushFilter::Port(PortId(2))), 6);
    assert_eq!(f.flush(FlushFilter::Vlan(vlan(2))), 3);
    assert_ne!(f.vlan_generation(vlan(2)), g2);
    assert_eq!(f.learned_len(), 0);
    assert_eq!(f.lookup(vlan(1), mac(99), 0), Some(PortId(1)));
    f.learn(vlan(3), mac(1), PortId(1), 0);
    assert_eq!(f.flush(FlushFilter::All), 1);
    assert_eq!(f.flush(FlushFilter::Port(PortId(200))), 0);
    assert_eq!(f.len(), 1);
    f.check_invariants();
}

#[test]
fn iter_shows_live_entries() {
    let mut f = fdb(16, 0);
    f.learn(vlan(1), mac(1), PortId(1), 0);
    f.learn(vlan(2), mac(2), PortId(2), 3 * SEC);
    f.add_static(vlan(3), mac(3), PortId(3)).unwrap();
    let mut rows: Vec<_> = f.iter(AGING + SEC).collect();
    rows.sort_by_key(|r| r.vlan);
    assert_eq!(
        rows,
        vec![
            FdbEntry {
                vlan: vlan(2),
                mac: mac(2),
                port: PortId(2),
                age_ns: AGING - 2 * SEC,
                is_static: false
            },
            FdbEntry {
                vlan: vlan(3),
                mac: mac(3),
                port: PortId(3),
                age_ns: 0,
                is_static: true
            },
        ]
    );
}

#[test]
fn lookup_batch_matches_lookup() {
    let mut f = fdb(1000, 0);
    for i in 0..500 {
        f.learn(vlan(1 + (i % 3) as u16), mac(i), PortId((i % 8) as u16), i);
    }
    let keys: Vec<_> = (0..100)
        .map(|i| FdbKey::new(vlan(1 + (i % 4) as u16), mac(i * 7)))
        .collect();
    let mut out = vec![None; keys.len()];
    f.lookup_batch(&keys, 1000, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        assert_eq!(*o, f.lookup_key(*k, 1000));
    }
    assert!(out.iter().any(Option::is_some) && out.iter().any(Option::is_none));
}

/// Churn through learning, moves, eviction, aging, flushes and statics: the table
/// never reallocates and the lists stay consistent.
#[test]
fn churn_never_allocates_and_keeps_invariants() {
    let mut f = Fdb::new(FdbConfig {
        capacity: 1000,
        per_port_limit: 200,
        aging_ns: AGING,
        max_ports: 16,
    })
    .unwrap();
    f.add_static(vlan(1), mac(1 << 30), PortId(0)).unwrap();
    let bytes = f.table_buckets();
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut now = 0;
    for round in 0..200_000u64 {
        // xorshift
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += x % (SEC / 1000);
        if round % 20_000 == 0 {
            now += AGING / 2 + (x % AGING);
        }
        // Port 0 sends half of the frames: it meets its limit.
        let port = PortId(if x & 1 == 0 { 0 } else { (x >> 20) as u16 % 16 });
        let m = mac((x >> 32) % 3000);
        let v = vlan(1 + ((x >> 40) % 4) as u16);
        f.learn(v, m, port, now);
        f.age(now, 4);
        if round % 50_000 == 49_999 {
            f.flush(FlushFilter::Port(port));
            f.check_invariants();
        }
    }
    assert_eq!(f.table_buckets(), bytes, "the table reallocated");
    let s = f.stats();
    assert!(
        s.evicted > 0 && s.moved > 0 && s.port_limit > 0 && s.aged > 0,
        "{s:?}"
    );
    f.check_invariants();
}

#[test]
fn vlan_limit_refuses_new_macs_of_that_vlan_only() {
    let mut t = fdb(100, 0);
    t.set_vlan_limits([(vlan(10), 3)]);
    let p = PortId(1);
    for i in 0..3 {
        assert_eq!(t.learn(vlan(10), mac(i), p, SEC), Learn::New);
    }
    assert_eq!(t.learn(vlan(10), mac(3), p, SEC), Learn::VlanLimit);
    assert_eq!(t.stats().vlan_limit, 1);
    // Known MACs still refresh and move; other VLANs are not limited.
    assert_eq!(t.learn(vlan(10), mac(0), p, 2 * SEC), Learn::Refreshed);
    assert!(matches!(
        t.learn(vlan(10), mac(1), PortId(2), 2 * SEC),
        Learn::Moved { .. }
    ));
    for i in 0..10 {
        assert_eq!(t.learn(vlan(20), mac(i), p, SEC), Learn::New);
    }
    assert_eq!(t.vlan_count(vlan(10)), 3);
    assert_eq!(t.vlan_count(vlan(20)), 10);
    // A flush frees room; aged entries swept free it too.
    t.flush(FlushFilter::Vlan(vlan(10)));
    assert_eq!(t.vlan_count(vlan(10)), 0);
    assert_eq!(t.learn(vlan(10), mac(3), p, 3 * SEC), Learn::New);
    t.age(3 * SEC + AGING, usize::MAX);
    assert_eq!(t.vlan_count(vlan(10)), 0);
    assert_eq!(t.vlan_count(vlan(20)), 0);
    // Limits are replaced as a whole.
    t.set_vlan_limits([]);
    for i in 0..5 {
        assert_eq!(t.learn(vlan(10), mac(i), p, 20 * SEC), Learn::New);
    }
    t.check_invariants();
}
