use super::*;
use core::net::{Ipv4Addr, Ipv6Addr};
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

const MS: u64 = 1_000_000;

fn v4(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, n))
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

/// What one `poll` produced.
#[derive(Debug, Default)]
struct Out {
    solicits: Vec<IpAddr>,
    drops: Vec<u32>,
}

fn poll<const Q: usize>(c: &mut NeighborCache<u32, Q>, now: u64) -> Out {
    let mut o = Out::default();
    c.poll(now, &mut |ip| o.solicits.push(ip), &mut |t| o.drops.push(t));
    o
}

fn confirm<const Q: usize>(
    c: &mut NeighborCache<u32, Q>,
    ip: IpAddr,
    m: MacAddr,
    now: u64,
) -> Vec<(u32, MacAddr)> {
    let mut v = Vec::new();
    c.confirm(ip, m, now, &mut |t, m| v.push((t, m)));
    v
}

fn state<const Q: usize>(c: &NeighborCache<u32, Q>, ip: IpAddr, now: u64) -> Option<NeighState> {
    c.iter(now).find(|e| e.ip == ip).map(|e| e.state)
}

#[test]
fn resolves_and_releases_in_order() {
    let mut c = NeighborCache::<u32>::new(4);
    let ip = v4(2);
    assert_eq!(c.lookup(ip, 0), None);
    for t in 1..=3 {
        assert_eq!(c.enqueue(ip, t, 0), Ok(()));
    }
    assert_eq!(state(&c, ip, 0), Some(NeighState::Incomplete));
    // The request goes out at once.
    assert_eq!(poll(&mut c, 0).solicits, vec![ip]);
    assert!(poll(&mut c, 500 * MS).solicits.is_empty());
    assert_eq!(
        confirm(&mut c, ip, mac(2), 600 * MS),
        vec![(1, mac(2)), (2, mac(2)), (3, mac(2))]
    );
    assert_eq!(c.lookup(ip, 600 * MS), Some(mac(2)));
    assert_eq!(state(&c, ip, 600 * MS), Some(NeighState::Reachable));
    assert_eq!(c.counters().released, 3);
    assert_eq!(c.counters().requests, 1);
    // Resolved: nothing more is queued.
    assert_eq!(c.enqueue(ip, 9, 700 * MS), Err(9));
}

#[test]
fn three_requests_then_failed_with_hold_down() {
    let mut c = NeighborCache::<u32>::new(4);
    let ip = v4(3);
    c.enqueue(ip, 1, 0).unwrap();
    c.enqueue(ip, 2, 0).unwrap();
    assert_eq!(poll(&mut c, 0).solicits, vec![ip]);
    assert!(poll(&mut c, 999 * MS).solicits.is_empty());
    assert_eq!(poll(&mut c, SEC).solicits, vec![ip]);
    assert_eq!(poll(&mut c, 2 * SEC).solicits, vec![ip]);
    let o = poll(&mut c, 3 * SEC - 1);
    assert!(o.solicits.is_empty() && o.drops.is_empty());
    let o = poll(&mut c, 3 * SEC);
    assert!(o.solicits.is_empty());
    assert_eq!(o.drops, vec![1, 2]);
    assert_eq!(state(&c, ip, 3 * SEC), Some(NeighState::Failed));
    assert_eq!(c.counters().timeouts, 1);
    assert_eq!(c.counters().queued_dropped, 2);
    // Hold-down: refused at once for 5 s.
    assert_eq!(c.enqueue(ip, 3, 3 * SEC), Err(3));
    assert_eq!(c.enqueue(ip, 4, 8 * SEC - 1), Err(4));
    assert_eq!(c.counters().hold_down, 2);
    assert_eq!(c.lookup(ip, 8 * SEC), None);
    // Then it starts over.
    assert_eq!(c.enqueue(ip, 5, 8 * SEC), Ok(()));
    assert_eq!(poll(&mut c, 8 * SEC).solicits, vec![ip]);
    assert_eq!(confirm(&mut c, ip, mac(3), 8 * SEC), vec![(5, mac(3))]);
}

#[test]
fn queue_is_bounded() {
    let mut c = NeighborCache::<u32, 2>::new(4);
    let ip = v4(4);
    assert_eq!(c.enqueue(ip, 1, 0), Ok(()));
    assert_eq!(c.enqueue(ip, 2, 0), Ok(()));
    assert_eq!(c.enqueue(ip, 3, 0), Err(3));
    assert_eq!(c.counters().queue_full, 1);
    assert_eq!(
        confirm(&mut c, ip, mac(4), 1),
        vec![(1, mac(4)), (2, mac(4))]
    );
}

#[test]
fn stale_is_used_and_refreshed() {
    let mut c = NeighborCache::<u32>::new(4);
    let ip = v4(5);
    c.enqueue(ip, 1, 0).unwrap();
    poll(&mut c, 0);
    confirm(&mut c, ip, mac(5), 0);
    // Reachable for 30 s: no request on use.
    assert_eq!(c.lookup(ip, REACHABLE_TIME_NS - 1), Some(mac(5)));
    assert!(poll(&mut c, REACHABLE_TIME_NS - 1).solicits.is_empty());
    // Stale: still used, one refresh request scheduled (not one per lookup).
    let t = REACHABLE_TIME_NS;
    assert_eq!(state(&c, ip, t), Some(NeighState::Stale));
    assert_eq!(c.lookup(ip, t), Some(mac(5)));
    assert_eq!(c.lookup(ip, t + 1), Some(mac(5)));
    assert_eq!(poll(&mut c, t + 2).solicits, vec![ip]);
    assert_eq!(c.lookup(ip, t + 3), Some(mac(5)));
    assert!(poll(&mut c, t + 4).solicits.is_empty());
    // The answer, with a new MAC: reachable again, used at once.
    assert!(confirm(&mut c, ip, mac(6), t + 5).is_empty());
    assert_eq!(c.lookup(ip, t + 6), Some(mac(6)));
    assert_eq!(state(&c, ip, t + 6), Some(NeighState::Reachable));
    assert!(poll(&mut c, t + 2 * SEC).solicits.is_empty());
}

#[test]
fn unanswered_refresh_fails() {
    let mut c = NeighborCache::<u32>::new(4);
    let ip = v4(6);
    c.enqueue(ip, 1, 0).unwrap();
    poll(&mut c, 0);
    confirm(&mut c, ip, mac(6), 0);
    let t = REACHABLE_TIME_NS;
    c.lookup(ip, t);
    assert_eq!(poll(&mut c, t).solicits, vec![ip]);
    assert_eq!(c.lookup(ip, t + SEC), Some(mac(6)));
    assert_eq!(poll(&mut c, t + SEC).solicits, vec![ip]);
    assert_eq!(poll(&mut c, t + 2 * SEC).solicits, vec![ip]);
    assert_eq!(c.lookup(ip, t + 2 * SEC), Some(mac(6)));
    assert!(poll(&mut c, t + 3 * SEC).solicits.is_empty());
    assert_eq!(state(&c, ip, t + 3 * SEC), Some(NeighState::Failed));
    assert_eq!(c.lookup(ip, t + 3 * SEC), None);
    assert_eq!(c.counters().timeouts, 1);
}

#[test]
fn static_entries_never_expire_nor_change() {
    let mut c = NeighborCache::<u32>::new(2);
    let ip = v4(7);
    c.add_static(ip, mac(7)).unwrap();
    assert_eq!(c.lookup(ip, u64::MAX - 1), Some(mac(7)));
    assert!(confirm(&mut c, ip, mac(8), 5).is_empty());
    assert_eq!(c.lookup(ip, 10 * REACHABLE_TIME_NS), Some(mac(7)));
    assert!(poll(&mut c, u64::MAX).solicits.is_empty());
    assert_eq!(c.enqueue(ip, 1, 0), Err(1));
    let e = c.iter(100).next().unwrap();
    assert_eq!(
        e,
        NeighborEntry {
            ip,
            mac: Some(mac(7)),
            state: NeighState::Static,
            age_ns: 0,
            queued: 0
        }
    );
}

#[test]
fn unsolicited_confirmations_create_nothing() {
    let mut c = NeighborCache::<u32>::new(2);
    assert!(confirm(&mut c, v4(9), mac(9), 0).is_empty());
    assert!(c.is_empty());
    assert_eq!(c.lookup(v4(9), 0), None);
    // Non-unicast MACs are ignored even for a resolving address.
    c.enqueue(v4(9), 1, 0).unwrap();
    assert!(confirm(&mut c, v4(9), MacAddr::BROADCAST, 0).is_empty());
    assert!(confirm(&mut c, v4(9), MacAddr::ZERO, 0).is_empty());
    assert_eq!(state(&c, v4(9), 0), Some(NeighState::Incomplete));
    assert_eq!(c.counters().ignored, 3);
}

#[test]
fn full_table_replaces_the_oldest_resolved_entry() {
    let mut c = NeighborCache::<u32>::new(3);
    c.add_static(v4(1), mac(1)).unwrap();
    for (n, t) in [(2u8, 10u64), (3, 5)] {
        c.enqueue(v4(n), u32::from(n), t).unwrap();
        confirm(&mut c, v4(n), mac(n), t);
    }
    // v4(3) was confirmed longest ago: it goes.
    assert_eq!(c.enqueue(v4(4), 4, 20), Ok(()));
    assert_eq!(c.counters().evictions, 1);
    assert_eq!(c.lookup(v4(3), 20), None);
    assert_eq!(c.lookup(v4(2), 20), Some(mac(2)));
    assert_eq!(c.lookup(v4(1), 20), Some(mac(1)));
    // Now: static, resolved v4(2), incomplete v4(4). Another: v4(2) goes.
    assert_eq!(c.enqueue(v4(5), 5, 21), Ok(()));
    // Static + two incomplete: nothing can go.
    assert_eq!(c.enqueue(v4(6), 6, 22), Err(6));
    assert_eq!(c.counters().table_full, 1);
    assert_eq!(
        c.add_static(v4(6), mac(6)),
        Err(NeighError::Full { capacity: 3 })
    );
    assert_eq!(c.len(), 3);
    // Evicted addresses are gone from the index, the others still found.
    let o = poll(&mut c, 22);
    assert_eq!(o.solicits.len(), 2);
    assert_eq!(confirm(&mut c, v4(4), mac(4), 23), vec![(4, mac(4))]);
    assert_eq!(confirm(&mut c, v4(5), mac(5), 23), vec![(5, mac(5))]);
}

#[test]
fn static_over_a_resolving_address_drops_its_items_at_poll() {
    let mut c = NeighborCache::<u32>::new(2);
    c.enqueue(v4(2), 1, 0).unwrap();
    c.add_static(v4(2), mac(2)).unwrap();
    assert_eq!(c.lookup(v4(2), 0), Some(mac(2)));
    let o = poll(&mut c, 0);
    assert!(o.solicits.is_empty());
    assert_eq!(o.drops, vec![1]);
    assert_eq!(c.iter(0).next().map(|e| e.queued), Some(0));
}

#[test]
fn ipv6_and_ipv4_keys_are_distinct() {
    let mut c = NeighborCache::<u32>::new(4);
    let a = IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap());
    let b = IpAddr::V6("::c612:2".parse::<Ipv6Addr>().unwrap()); // same low 32 bits as v4(2)
    c.add_static(a, mac(1)).unwrap();
    c.add_static(b, mac(2)).unwrap();
    c.add_static(v4(2), mac(3)).unwrap();
    assert_eq!(c.lookup(a, 0), Some(mac(1)));
    assert_eq!(c.lookup(b, 0), Some(mac(2)));
    assert_eq!(c.lookup(v4(2), 0), Some(mac(3)));
}

#[test]
fn zero_capacity_refuses_everything() {
    let mut c = NeighborCache::<u32>::new(0);
    assert_eq!(c.enqueue(v4(1), 1, 0), Err(1));
    assert!(c.add_static(v4(1), mac(1)).is_err());
    assert!(poll(&mut c, 0).solicits.is_empty());
}

// ---------------------------------------------------------------------------------------
// Model-based test
// ---------------------------------------------------------------------------------------

/// The reference: the same rules, written plainly over a map with unbounded queues
/// checked against Q, and no capacity (the test uses fewer addresses than the capacity).
#[derive(Debug, Default)]
struct Model {
    map: BTreeMap<IpAddr, ModelEntry>,
}

#[derive(Debug)]
struct ModelEntry {
    mac: Option<MacAddr>,
    kind: Kind,
    since: u64,
    requests: u8,
    due: Option<u64>,
    queue: VecDeque<u32>,
}

const MQ: usize = 3;

impl Model {
    fn lookup(&mut self, ip: IpAddr, now: u64) -> Option<MacAddr> {
        let e = self.map.get_mut(&ip)?;
        match e.kind {
            Kind::Static => e.mac,
            Kind::Resolved => {
                if now >= e.since + REACHABLE_TIME_NS && e.due.is_none() {
                    e.requests = 0;
                    e.due = Some(now);
                }
                e.mac
            }
            _ => None,
        }
    }

    fn enqueue(&mut self, ip: IpAddr, item: u32, now: u64) -> Result<(), u32> {
        let e = self.map.entry(ip).or_insert(ModelEntry {
            mac: None,
            kind: Kind::Incomplete,
            since: now,
            requests: 0,
            due: Some(now),
            queue: VecDeque::new(),
        });
        match e.kind {
            Kind::Incomplete => {}
            Kind::Failed if now < e.since + HOLD_DOWN_NS => return Err(item),
            Kind::Failed => {
                *e = ModelEntry {
                    mac: None,
                    kind: Kind::Incomplete,
                    since: now,
                    requests: 0,
                    due: Some(now),
                    queue: VecDeque::new(),
                }
            }
            _ => return Err(item),
        }
        if e.queue.len() == MQ {
            return Err(item);
        }
        e.queue.push_back(item);
        Ok(())
    }

    fn confirm(&mut self, ip: IpAddr, mac: MacAddr, now: u64) -> Vec<(u32, MacAddr)> {
        let Some(e) = self.map.get_mut(&ip) else {
            return vec![];
        };
        if e.kind == Kind::Static {
            return vec![];
        }
        e.kind = Kind::Resolved;
        e.mac = Some(mac);
        e.since = now;
        e.requests = 0;
        e.due = None;
        e.queue.drain(..).map(|t| (t, mac)).collect()
    }

    fn poll(&mut self, now: u64) -> (Vec<IpAddr>, Vec<u32>) {
        let (mut sol, mut drops) = (vec![], vec![]);
        for (ip, e) in &mut self.map {
            if e.due.is_some_and(|d| d <= now) {
                if e.requests < MAX_REQUESTS {
                    sol.push(*ip);
                    e.requests += 1;
                    e.due = Some(now + RETRANS_TIME_NS);
                } else {
                    e.kind = Kind::Failed;
                    e.since = now;
                    e.requests = 0;
                    e.due = None;
                    drops.extend(e.queue.drain(..));
                }
            }
        }
        (sol, drops)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Lookup(u8),
    Enqueue(u8),
    Confirm(u8, u8),
    Poll,
    Advance(u64),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4).prop_map(Op::Lookup),
        4 => (0u8..4).prop_map(Op::Enqueue),
        2 => (0u8..4, 1u8..4).prop_map(|(i, m)| Op::Confirm(i, m)),
        3 => Just(Op::Poll),
        3 => prop_oneof![0u64..2 * SEC, 0u64..40 * SEC].prop_map(Op::Advance),
    ]
}

fn ip_of(i: u8) -> IpAddr {
    if i % 2 == 0 {
        v4(i)
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random lookups, enqueues, confirmations and polls on a monotonic clock: the cache
    /// behaves as the model, every accepted item comes back exactly once (released or
    /// dropped), in order per address, with the confirmed MAC, only items of resolving
    /// addresses wait, and after enough polls nothing waits at all.
    #[test]
    fn behaves_as_the_model(ops in proptest::collection::vec(arb_op(), 1..120), statics in 0u8..2) {
        let mut c = NeighborCache::<u32, MQ>::new(8);
        let mut m = Model::default();
        // A static entry for address 0 (when drawn) in both.
        if statics == 1 {
            c.add_static(ip_of(0), mac(0x50)).unwrap();
            m.map.insert(ip_of(0), ModelEntry {
                mac: Some(mac(0x50)), kind: Kind::Static, since: 0, requests: 0, due: None,
                queue: VecDeque::new(),
            });
        }
        let mut now = 0u64;
        let mut next_item = 0u32;
        let mut rejected = 0u64;
        // item → address, for the items accepted and not yet returned.
        let mut waiting: BTreeMap<u32, IpAddr> = BTreeMap::new();
        let mut last_out: BTreeMap<IpAddr, u32> = BTreeMap::new();
        let mut give_back = |t: u32, waiting: &mut BTreeMap<u32, IpAddr>| -> Result<(), TestCaseError> {
            let ip = waiting.remove(&t);
            prop_assert!(ip.is_some(), "item {} returned twice or never queued", t);
            let ip = ip.unwrap_or(ip_of(0));
            if let Some(prev) = last_out.insert(ip, t) {
                prop_assert!(prev < t, "item {} of {} out of order after {}", t, ip, prev);
            }
            Ok(())
        };
        for op in ops {
            match op {
                Op::Lookup(i) => {
                    prop_assert_eq!(c.lookup(ip_of(i), now), m.lookup(ip_of(i), now));
                }
                Op::Enqueue(i) => {
                    let t = next_item;
                    next_item += 1;
                    let r = c.enqueue(ip_of(i), t, now);
                    prop_assert_eq!(r, m.enqueue(ip_of(i), t, now));
                    if r.is_ok() {
                        waiting.insert(t, ip_of(i));
                    } else {
                        rejected += 1;
                    }
                }
                Op::Confirm(i, k) => {
                    let got = confirm(&mut c, ip_of(i), mac(k), now);
                    prop_assert_eq!(&got, &m.confirm(ip_of(i), mac(k), now));
                    for (t, g) in got {
                        prop_assert_eq!(g, mac(k));
                        give_back(t, &mut waiting)?;
                    }
                }
                Op::Poll => {
                    let mut o = poll(&mut c, now);
                    let (mut sol, mut drops) = m.poll(now);
                    o.solicits.sort();
                    sol.sort();
                    prop_assert_eq!(&o.solicits, &sol);
                    let mut od = o.drops.clone();
                    od.sort();
                    drops.sort();
                    prop_assert_eq!(&od, &drops);
                    for t in o.drops {
                        give_back(t, &mut waiting)?;
                    }
                }
                Op::Advance(d) => now += d,
            }
            // Only resolving addresses hold items, and no more than Q.
            for e in c.iter(now) {
                if e.queued > 0 {
                    prop_assert_eq!(e.state, NeighState::Incomplete);
                }
                prop_assert!(e.queued <= MQ);
                let n = waiting.values().filter(|&&ip| ip == e.ip).count();
                prop_assert_eq!(n, e.queued);
            }
        }
        // Nothing waits forever: polls a retransmission apart fail every resolution.
        for _ in 0..=MAX_REQUESTS {
            now += RETRANS_TIME_NS;
            for t in poll(&mut c, now).drops {
                give_back(t, &mut waiting)?;
            }
        }
        prop_assert!(waiting.is_empty(), "still waiting: {:?}", waiting);
        // Every item is accounted for: released, dropped after waiting, or refused.
        let k = c.counters();
        prop_assert_eq!(k.released + k.queued_dropped + rejected, u64::from(next_item));
    }
}
