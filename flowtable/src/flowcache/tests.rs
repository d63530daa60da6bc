use super::*;
use crate::{Fdb, FdbConfig, FdbKey, SEC};

fn key(in_port: u16, vid: u16, dst: u64) -> FlowKey {
    FlowKey {
        in_port: PortId(in_port),
        vid,
        dst: MacAddr::from_u64(0x02_00_00_00_00_00 | dst),
    }
}

fn vlan(n: u16) -> VlanId {
    VlanId::try_new(n).unwrap()
}

#[test]
fn size_is_validated() {
    assert!(FlowCache::<u8>::new(DEFAULT_FLOW_CACHE_SIZE).is_ok());
    assert_eq!(FlowCache::<u8>::new(0).unwrap_err(), FdbError::CacheSize(0));
    assert_eq!(FlowCache::<u8>::new(1).unwrap_err(), FdbError::CacheSize(1));
    assert_eq!(
        FlowCache::<u8>::new(100).unwrap_err(),
        FdbError::CacheSize(100)
    );
}

#[test]
fn hit_miss_and_exact_key() {
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    let mut c = FlowCache::new(64).unwrap();
    let k = key(1, 10, 5);
    assert_eq!(c.lookup(&k, k.hash(), &gens, 0), None);
    c.insert(
        &k,
        k.hash(),
        42u32,
        Stamp::new(&gens, Some(vlan(3)), u64::MAX),
    );
    assert_eq!(c.lookup(&k, k.hash(), &gens, 0), Some(42));
    for other in [key(2, 10, 5), key(1, 11, 5), key(1, 10, 6), key(1, 0, 5)] {
        assert_eq!(c.lookup(&other, other.hash(), &gens, 0), None, "{other:?}");
    }
    assert_eq!(c.stats().hits, 1);
    assert_eq!(c.stats().misses, 5);
}

#[test]
fn each_part_of_the_stamp_voids_a_hit() {
    let mut fdb = Fdb::new(FdbConfig::default()).unwrap();
    let mut c = FlowCache::new(64).unwrap();
    let k = key(1, 0, 5);
    let h = k.hash();
    let insert = |c: &mut FlowCache<u32>, fdb: &Fdb, config| {
        let gens = Gens {
            config,
            vlans: fdb.vlan_gens(),
        };
        c.insert(&k, h, 7, Stamp::new(&gens, Some(vlan(3)), 100));
    };
    insert(&mut c, &fdb, 1);
    let gens = Gens {
        config: 2,
        vlans: fdb.vlan_gens(),
    };
    assert_eq!(c.lookup(&k, h, &gens, 0), None, "config generation");
    assert_eq!(c.stats().stale, 1);
    assert_eq!(c.occupied(), 0, "a stale entry is cleared on lookup");

    insert(&mut c, &fdb, 1);
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    assert_eq!(c.lookup(&k, h, &gens, 99), Some(7));
    assert_eq!(c.lookup(&k, h, &gens, 100), None, "deadline");

    insert(&mut c, &fdb, 1);
    fdb.learn(vlan(4), MacAddr::from_u64(0x0200_0000_0009), PortId(1), 0);
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    assert_eq!(c.lookup(&k, h, &gens, 0), Some(7), "another VLAN changed");
    fdb.learn(vlan(3), MacAddr::from_u64(0x0200_0000_0009), PortId(1), 0);
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    assert_eq!(c.lookup(&k, h, &gens, 0), None, "this VLAN changed");
}

#[test]
fn a_stamp_without_vlan_ignores_fdb_changes() {
    let mut fdb = Fdb::new(FdbConfig::default()).unwrap();
    let mut c = FlowCache::new(64).unwrap();
    let k = key(1, 4095, 5);
    let gens = Gens {
        config: 9,
        vlans: fdb.vlan_gens(),
    };
    c.insert(&k, k.hash(), 'd', Stamp::new(&gens, None, u64::MAX));
    fdb.learn(vlan(1), MacAddr::from_u64(0x0200_0000_0009), PortId(1), 0);
    let gens = Gens {
        config: 9,
        vlans: fdb.vlan_gens(),
    };
    assert_eq!(c.lookup(&k, k.hash(), &gens, SEC), Some('d'));
}

/// Keys whose hashes select the same pair of slots.
fn colliding(c: &FlowCache<u32>, n: usize) -> Vec<FlowKey> {
    let k0 = key(0, 0, 0);
    let pair = k0.hash() as usize & c.pair_mask;
    (0..)
        .map(|i| key(0, 0, i))
        .filter(|k| k.hash() as usize & c.pair_mask == pair)
        .take(n)
        .collect()
}

#[test]
fn two_way_pairs_keep_two_colliding_flows() {
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let gens = Gens {
        config: 0,
        vlans: fdb.vlan_gens(),
    };
    let mut c = FlowCache::new(16).unwrap();
    let ks = colliding(&c, 3);
    let st = Stamp::new(&gens, None, u64::MAX);
    c.insert(&ks[0], ks[0].hash(), 0, st);
    c.insert(&ks[1], ks[1].hash(), 1, st);
    assert_eq!(c.lookup(&ks[0], ks[0].hash(), &gens, 0), Some(0));
    assert_eq!(c.lookup(&ks[1], ks[1].hash(), &gens, 0), Some(1));
    // Re-inserting a present key overwrites it in place.
    c.insert(&ks[1], ks[1].hash(), 11, st);
    assert_eq!(c.lookup(&ks[1], ks[1].hash(), &gens, 0), Some(11));
    assert_eq!(c.lookup(&ks[0], ks[0].hash(), &gens, 0), Some(0));
    // A third one evicts one of them.
    c.insert(&ks[2], ks[2].hash(), 2, st);
    assert_eq!(c.stats().evictions, 1);
    assert_eq!(c.lookup(&ks[2], ks[2].hash(), &gens, 0), Some(2));
    let left = [0, 1]
        .iter()
        .filter(|&&i| c.lookup(&ks[i], ks[i].hash(), &gens, 0).is_some())
        .count();
    assert_eq!(left, 1);
}

#[test]
fn insert_prefers_entries_of_an_old_configuration() {
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let old = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    let new = Gens {
        config: 2,
        vlans: fdb.vlan_gens(),
    };
    let mut c = FlowCache::new(16).unwrap();
    let ks = colliding(&c, 3);
    c.insert(&ks[1], ks[1].hash(), 1, Stamp::new(&old, None, u64::MAX));
    c.insert(&ks[0], ks[0].hash(), 0, Stamp::new(&new, None, u64::MAX));
    c.insert(&ks[2], ks[2].hash(), 2, Stamp::new(&new, None, u64::MAX));
    assert_eq!(c.stats().evictions, 0);
    assert_eq!(c.lookup(&ks[0], ks[0].hash(), &new, 0), Some(0));
    assert_eq!(c.lookup(&ks[2], ks[2].hash(), &new, 0), Some(2));
}

#[test]
fn sweep_clears_only_void_entries() {
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let gens = Gens {
        config: 0,
        vlans: fdb.vlan_gens(),
    };
    let mut c = FlowCache::new(256).unwrap();
    for i in 0..100u64 {
        let k = key(1, 0, i);
        let deadline = if i % 2 == 0 { 10 } else { u64::MAX };
        c.insert(&k, k.hash(), i, Stamp::new(&gens, None, deadline));
    }
    let live = c.occupied();
    let mut cleared = 0;
    for _ in 0..256 / 16 {
        cleared += c.sweep(&gens, 10, 16);
    }
    assert_eq!(
        c.sweep(&gens, 10, 1000),
        0,
        "one full turn cleared everything void"
    );
    assert_eq!(c.occupied(), live - cleared);
    for i in (1..100u64).step_by(2) {
        let k = key(1, 0, i);
        assert_eq!(c.lookup(&k, k.hash(), &gens, 10), Some(i));
    }
    assert_eq!(c.stats().swept, cleared as u64);
}

#[test]
fn fdb_hit_deadline_feeds_the_stamp() {
    let mut fdb = Fdb::new(FdbConfig {
        aging_ns: 10 * SEC,
        ..FdbConfig::default()
    })
    .unwrap();
    let dst = MacAddr::from_u64(0x0200_0000_0042);
    fdb.learn(vlan(5), dst, PortId(2), SEC);
    let hit = fdb.lookup_hit(FdbKey::new(vlan(5), dst), 2 * SEC).unwrap();
    let gens = Gens {
        config: 0,
        vlans: fdb.vlan_gens(),
    };
    let st = Stamp::new(&gens, Some(vlan(5)), hit.deadline_ns);
    assert!(st.is_valid(&gens, 11 * SEC - 1));
    assert!(!st.is_valid(&gens, 11 * SEC));
    assert_eq!(fdb.lookup(vlan(5), dst, 11 * SEC), None);
}

/// `insert_sampled` inserts every decision while lookups mostly hit, and about one in
/// `SAMPLE` once a window of lookups mostly missed; it recovers when hits return.
#[test]
fn sampled_inserts_only_while_thrashing() {
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    let stamp = Stamp::new(&gens, None, u64::MAX);
    let mut c = FlowCache::new(64).unwrap();
    // Fewer lookups than a window: every miss is inserted.
    for d in 0..100 {
        let k = key(1, 0, d);
        assert_eq!(c.lookup(&k, k.hash(), &gens, 0), None);
        let before = c.stats().inserts;
        c.insert_sampled(&k, k.hash(), 1u32, stamp);
        assert_eq!(c.stats().inserts, before + 1);
    }
    // Many more flows than slots: after a window of misses, few inserts.
    let start = c.stats().inserts;
    let n = 20 * WINDOW;
    for d in 0..n {
        let k = key(1, 0, 1000 + d);
        if c.lookup(&k, k.hash(), &gens, 0).is_none() {
            c.insert_sampled(&k, k.hash(), 1u32, stamp);
        }
    }
    let inserted = c.stats().inserts - start;
    assert!(
        inserted > n / SAMPLE / 2 && inserted < 2 * WINDOW + 2 * n / SAMPLE,
        "{inserted} inserts for {n} misses"
    );
    // A few flows again: once a window is mostly hits, every miss is inserted.
    let hot = key(2, 0, 7);
    c.insert(&hot, hot.hash(), 1u32, stamp);
    for _ in 0..2 * WINDOW {
        assert!(c.lookup(&hot, hot.hash(), &gens, 0).is_some());
    }
    let k = key(3, 0, 9);
    assert_eq!(c.lookup(&k, k.hash(), &gens, 0), None);
    let before = c.stats().inserts;
    c.insert_sampled(&k, k.hash(), 1u32, stamp);
    assert_eq!(c.stats().inserts, before + 1);
}
