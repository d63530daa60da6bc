use super::*;
use crate::SEC;

const AGING: u64 = 100 * SEC;

fn vlan(n: u16) -> VlanId {
    VlanId::try_new(n).unwrap()
}

fn mac(n: u64) -> MacAddr {
    MacAddr::from_u64(0x02_00_00_00_00_00 | n)
}

fn cfg() -> FdbConfig {
    FdbConfig {
        capacity: 64,
        per_port_limit: 0,
        aging_ns: AGING,
        max_ports: 8,
    }
}

fn group(n: usize, lane: usize) -> FdbGroup {
    FdbGroup::new(
        n,
        cfg(),
        ReplicaConfig {
            lane_capacity: lane,
            control_capacity: 4,
        },
    )
    .unwrap()
}

fn drain(ws: &mut [WorkerFdb], now: u64) {
    while ws
        .iter_mut()
        .map(|w| w.apply_updates(now, 1000))
        .sum::<usize>()
        > 0
    {}
}

#[test]
fn group_is_validated() {
    assert_eq!(
        FdbGroup::new(0, cfg(), ReplicaConfig::default()).unwrap_err(),
        FdbError::Workers(0)
    );
    assert_eq!(
        FdbGroup::new(
            2,
            cfg(),
            ReplicaConfig {
                lane_capacity: 0,
                control_capacity: 1
            }
        )
        .unwrap_err(),
        FdbError::QueueCapacity
    );
    let g = FdbGroup::new(1, cfg(), ReplicaConfig::default()).unwrap();
    assert_eq!(g.workers.len(), 1);
}

#[test]
fn learned_on_one_used_by_the_other_at_its_next_poll() {
    let mut g = group(2, 16);
    let ws = &mut g.workers;
    assert_eq!(ws[0].learn(vlan(1), mac(1), PortId(3), 0), Learn::New);
    assert_eq!(ws[1].lookup(vlan(1), mac(1), 0), None);
    let gen = ws[1].fdb().vlan_generation(vlan(1));
    assert_eq!(ws[1].pending(), 1);
    assert_eq!(ws[1].apply_updates(0, 32), 1);
    assert_eq!(ws[1].lookup(vlan(1), mac(1), 0), Some(PortId(3)));
    assert_ne!(ws[1].fdb().vlan_generation(vlan(1)), gen);
    assert_eq!(ws[1].stats().applied, 1);
    // Nothing comes back to the learner.
    assert_eq!(ws[0].pending(), 0);
}

#[test]
fn single_worker_group_publishes_nothing() {
    let mut g = group(1, 1);
    for i in 0..10 {
        assert_eq!(
            g.workers[0].learn(vlan(1), mac(i), PortId(1), 0),
            Learn::New
        );
    }
    assert_eq!(g.workers[0].pending(), 0);
}

#[test]
fn concurrent_moves_converge_to_the_later_one() {
    let mut g = group(3, 16);
    let ws = &mut g.workers;
    // Both learn before seeing each other's change: worker 1's is later.
    assert_eq!(ws[0].learn(vlan(1), mac(1), PortId(1), 0), Learn::New);
    assert_eq!(ws[1].learn(vlan(1), mac(1), PortId(2), 0), Learn::New);
    drain(ws, 0);
    for w in ws.iter() {
        assert_eq!(
            w.lookup(vlan(1), mac(1), 0),
            Some(PortId(2)),
            "worker {}",
            w.id()
        );
    }
    assert_eq!(ws[0].dump(), ws[1].dump());
    assert_eq!(ws[1].dump(), ws[2].dump());
    assert_eq!(
        ws[1].stats().stale,
        1,
        "worker 1 ignored worker 0's older change"
    );
}

/// Last writer wins whatever the order of arrival.
#[test]
fn apply_order_does_not_matter() {
    let ev = |seq, port| Upsert {
        key: FdbKey::new(vlan(1), mac(1)).raw(),
        seq,
        time: 0,
        port,
    };
    let events = [ev(1, 1), ev(2, 2), ev(3, 3), ev(5, 1), ev(4, 4)];
    let mut a = Fdb::new(cfg()).unwrap();
    let mut b = Fdb::new(cfg()).unwrap();
    for e in events {
        a.apply_upsert(e, 0);
    }
    for e in events.iter().rev() {
        b.apply_upsert(*e, 0);
    }
    assert_eq!(a.dump(), b.dump());
    assert_eq!(a.lookup(vlan(1), mac(1), 0), Some(PortId(1)));
    a.check_invariants();
    b.check_invariants();
}

#[test]
fn full_lane_defers_learning_everywhere() {
    let mut g = group(2, 2);
    let ws = &mut g.workers;
    assert_eq!(ws[0].learn(vlan(1), mac(1), PortId(1), 0), Learn::New);
    assert_eq!(ws[0].learn(vlan(1), mac(2), PortId(1), 0), Learn::New);
    assert_eq!(ws[0].learn(vlan(1), mac(3), PortId(1), 0), Learn::Deferred);
    assert_eq!(
        ws[0].lookup(vlan(1), mac(3), 0),
        None,
        "not learned locally either"
    );
    assert_eq!(ws[0].fdb().stats().learn_backpressure, 1);
    // A move is deferred too, and leaves the entry where it was.
    assert_eq!(ws[0].learn(vlan(1), mac(1), PortId(2), 0), Learn::Deferred);
    assert_eq!(ws[0].lookup(vlan(1), mac(1), 0), Some(PortId(1)));
    ws[1].apply_updates(0, 32);
    assert_eq!(ws[0].learn(vlan(1), mac(3), PortId(1), 0), Learn::New);
    ws[1].apply_updates(0, 32);
    assert_eq!(ws[0].dump(), ws[1].dump());
    assert_eq!(ws[0].stats().publish_lost, 0);
}

#[test]
fn refreshes_are_published_once_per_period() {
    let p = 1u64 << crate::fdb::refresh_shift(AGING);
    let mut g = group(2, 16);
    let ws = &mut g.workers;
    ws[0].learn(vlan(1), mac(1), PortId(1), p / 2);
    drain(ws, p / 2);
    for t in 1..10 {
        ws[0].learn(vlan(1), mac(1), PortId(1), p / 2 + t * p / 10);
    }
    assert_eq!(ws[1].pending(), 1, "one refresh, when the period changed");
    drain(ws, 2 * p);
    // The replica's idle timer follows the learner's to within a period.
    let t0 = ws[0].fdb().iter(2 * p).next().unwrap().age_ns;
    let t1 = ws[1].fdb().iter(2 * p).next().unwrap().age_ns;
    assert!(t1 >= t0 && t1 - t0 < p, "{t0} {t1}");
    // The refresh keeps the replica's copy alive past the first deadline.
    assert_eq!(
        ws[1].lookup(vlan(1), mac(1), p / 2 + AGING),
        Some(PortId(1))
    );
}

#[test]
fn changes_older_than_a_flush_do_not_come_back() {
    let mut g = group(2, 16);
    let (ws, ctl) = (&mut g.workers, &mut g.control);
    // Worker 0 learns; the change is still in flight to worker 1 when the port is
    // flushed.
    ws[0].learn(vlan(1), mac(1), PortId(1), 0);
    ctl.flush(FlushFilter::Port(PortId(1)), 0).unwrap();
    // A change issued after the flush survives it everywhere.
    ws[0].learn(vlan(1), mac(2), PortId(1), 0);
    drain(ws, 0);
    for w in ws.iter() {
        assert_eq!(w.lookup(vlan(1), mac(1), 0), None, "worker {}", w.id());
        assert_eq!(
            w.lookup(vlan(1), mac(2), 0),
            Some(PortId(1)),
            "worker {}",
            w.id()
        );
    }
    assert_eq!(ws[1].stats().superseded, 1);
    assert_eq!(ws[0].dump(), ws[1].dump());
}

#[test]
fn every_flush_scope_supersedes_older_changes() {
    for filter in [
        FlushFilter::All,
        FlushFilter::Vlan(vlan(1)),
        FlushFilter::Port(PortId(1)),
        FlushFilter::VlanPort(vlan(1), PortId(1)),
    ] {
        let mut g = group(2, 16);
        let (ws, ctl) = (&mut g.workers, &mut g.control);
        ws[0].learn(vlan(1), mac(1), PortId(1), 0);
        ws[0].learn(vlan(2), mac(1), PortId(2), 0);
        ctl.flush(filter, 0).unwrap();
        drain(ws, 0);
        assert_eq!(ws[0].dump(), ws[1].dump(), "{filter:?}");
        assert_eq!(ws[1].lookup(vlan(1), mac(1), 0), None, "{filter:?}");
        let other = ws[1].lookup(vlan(2), mac(1), 0);
        assert_eq!(other.is_none(), filter == FlushFilter::All, "{filter:?}");
    }
}

#[test]
fn statics_win_over_learning_on_every_worker() {
    let mut g = group(2, 16);
    let (ws, ctl) = (&mut g.workers, &mut g.control);
    // Learned on worker 0 before it sees the static entry.
    ws[0].learn(vlan(1), mac(1), PortId(1), 0);
    ctl.add_static(vlan(1), mac(1), PortId(5)).unwrap();
    drain(ws, 0);
    for w in ws.iter_mut() {
        assert_eq!(w.lookup(vlan(1), mac(1), 0), Some(PortId(5)));
        assert_eq!(
            w.learn(vlan(1), mac(1), PortId(1), 0),
            Learn::StaticMismatch
        );
    }
    ctl.remove_static(vlan(1), mac(1), 0).unwrap();
    drain(ws, 0);
    assert_eq!(ws[0].dump(), ws[1].dump());
    assert_eq!(ws[1].lookup(vlan(1), mac(1), 0), None);
    assert_eq!(
        ctl.add_static(vlan(1), MacAddr::BROADCAST, PortId(1)),
        Err(FdbError::NotUnicast(MacAddr::BROADCAST))
    );
    assert_eq!(
        ctl.flush(FlushFilter::Port(PortId(9)), 0),
        Err(FdbError::PortOutOfRange {
            port: 9,
            max_ports: 8
        })
    );
}

#[test]
fn a_static_removal_is_not_undone_by_an_older_change() {
    let mut g = group(2, 16);
    let (ws, ctl) = (&mut g.workers, &mut g.control);
    // Worker 0 learns the MAC before it applies the static entry; worker 1 applies
    // the static add and removal before the learned change arrives.
    ws[0].learn(vlan(1), mac(1), PortId(1), 0);
    ctl.add_static(vlan(1), mac(1), PortId(5)).unwrap();
    ctl.remove_static(vlan(1), mac(1), 0).unwrap();
    ws[1].apply_updates(0, 2);
    assert_eq!(ws[1].pending(), 1);
    drain(ws, 0);
    assert_eq!(ws[0].dump(), ws[1].dump());
    assert_eq!(ws[1].lookup(vlan(1), mac(1), 0), None);
}

#[test]
fn control_is_all_or_nothing() {
    let mut g = group(2, 16);
    for i in 0..4 {
        g.control.add_static(vlan(1), mac(i), PortId(1)).unwrap();
    }
    g.workers[0].apply_updates(0, 100);
    // Worker 1's control lane is full: nobody gets the fifth.
    assert_eq!(
        g.control.add_static(vlan(1), mac(9), PortId(1)),
        Err(FdbError::ControlBusy { worker: 1 })
    );
    assert_eq!(g.workers[0].pending(), 0);
    drain(&mut g.workers, 0);
    g.control.add_static(vlan(1), mac(9), PortId(1)).unwrap();
    drain(&mut g.workers, 0);
    assert_eq!(g.workers[0].dump(), g.workers[1].dump());
    assert_eq!(g.workers[0].fdb().static_len(), 5);
}

#[test]
fn changes_that_arrive_expired_are_dropped() {
    let mut g = group(2, 16);
    let ws = &mut g.workers;
    ws[0].learn(vlan(1), mac(1), PortId(1), 0);
    ws[1].apply_updates(AGING, 32);
    assert_eq!(ws[1].stats().expired, 1);
    assert!(ws[1].fdb().is_empty());
}

#[test]
fn replicas_enforce_their_own_capacity() {
    let mut g = FdbGroup::new(
        2,
        FdbConfig {
            capacity: 4,
            ..cfg()
        },
        ReplicaConfig::default(),
    )
    .unwrap();
    let ws = &mut g.workers;
    for i in 0..3 {
        ws[1].learn(vlan(1), mac(100 + i), PortId(2), 0);
    }
    for i in 0..10 {
        ws[0].learn(vlan(1), mac(i), PortId(1), i);
    }
    drain(ws, 10);
    assert_eq!(ws[1].fdb().learned_len(), 4);
    ws[1].fdb.check_invariants();
    ws[0].fdb.check_invariants();
}
