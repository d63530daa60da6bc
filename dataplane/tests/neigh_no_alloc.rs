//! The neighbour cache and the underlay responder allocate nothing after
//! `NeighborCache::new`: a counting global allocator watches thousands of operations
//! (resolutions, failures, hold-downs, evictions with index tombstones, refreshes,
//! replies and learning).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use dataplane::underlay::neigh::{RETRANS_TIME_NS, SEC};
use dataplane::underlay::{solicit, underlay_control, Control, NeighborCache};
use encap::MacAddr;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the test's own thread is counted (the harness allocates on its threads).
    static TRACK: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if TRACK.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_after_new() {
    const CAP: usize = 64;
    let mut cache = NeighborCache::<u32>::new(CAP);
    let mut cache6 = NeighborCache::<u32>::new(CAP);
    let our_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let our4 = IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1));
    let our6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let mut frame = [0u8; 128];
    let mut out = [0u8; 128];
    let before = ALLOCS.load(Ordering::Relaxed);
    TRACK.with(|t| t.set(true));
    let mut now = 0u64;
    let mut released = 0u64;
    let mut dropped = 0u64;
    // 20 000 distinct addresses through a 64-entry table: evictions and index churn.
    for i in 0..20_000u32 {
        let ip4 = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let ip6 = IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8_u128 << 96) | (u128::from(i) + 2),
        ));
        for (c, ip, local) in [(&mut cache, ip4, our4), (&mut cache6, ip6, our6)] {
            for k in 0..3 {
                let _ = c.enqueue(ip, i * 4 + k, now);
            }
            c.poll(
                now,
                &mut |t| {
                    let n = solicit(t, local, our_mac, &mut frame);
                    assert!(n > 0);
                    // Answer our own request as the peer would not: just classify it.
                    let _ = underlay_control(&frame[..n], local, our_mac, &mut out);
                },
                &mut |_| dropped += 1,
            );
            // Two of three resolve; the rest fail after the retries.
            if i % 3 != 0 {
                c.confirm(
                    ip,
                    MacAddr([2, 0, 0, 0, 1, (i % 200) as u8 + 2]),
                    now,
                    &mut |_, _| released += 1,
                );
            }
            let _ = c.lookup(ip, now);
        }
        now += RETRANS_TIME_NS / 3 + u64::from(i % 7) * SEC;
    }
    // A reply for us, learned.
    let peer = MacAddr([2, 0, 0, 0, 0, 9]);
    let n = encap::neigh::arp_request(
        &mut frame,
        peer,
        Ipv4Addr::new(10, 255, 0, 9),
        Ipv4Addr::new(10, 255, 0, 1),
    )
    .unwrap();
    assert!(matches!(
        underlay_control(&frame[..n], our4, our_mac, &mut out),
        Control::Reply { .. }
    ));
    let shown = cache.iter(now).count() + cache6.iter(now).count();
    TRACK.with(|t| t.set(false));
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "allocations after new()");
    assert!(released > 0 && dropped > 0 && shown == 2 * CAP);
    assert!(cache.counters().evictions > 10_000);
}
