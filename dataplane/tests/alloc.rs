//! Zero heap allocations per packet in steady state (issue 3; STYLE: "a heap
//! allocation … per packet" is an anti-pattern we will not ship).
//!
//! A counting `#[global_allocator]` wraps the system allocator. Counting is per
//! thread and only while a thread-local flag is armed, so the test harness's other
//! threads (and this test's own setup) are not counted. Each profile builds a
//! `Pipeline` directly (compiled tables, one FDB replica, a flow cache, a pool,
//! `MemPort`s in `TxMode::Discard`, which counts and frees instead of copying
//! frames out), runs its traffic until every MAC is learned and the flow cache is
//! warm, then arms the counter and switches 100 000 more frames in bursts of 32
//! through `MemPort::inject` and `Pipeline::poll` with the clock advancing 1 ms per
//! burst (so per-second refreshes, the aging sweep and the flow-cache sweep all run).
//! The profiles: known unicast access → access; broadcast and unknown unicast
//! flooded to 3 ports; trunk tag push, pop and translate; known unicast with the XDP
//! fast path's hook set, so that the worker offers its decisions (needs root to load
//! the program).
//!
//! The neighbour cache and the underlay responder are held to the same rule after
//! `NeighborCache::new` (`no_allocation_in_neighbour_cache_after_new`).
//!
//! To find an allocation, run with `VSWITCH_ALLOC_TRACE=1`: each counted allocation
//! prints a backtrace.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::config::{Config, NetIdx, Network, Port, PortMode, PortRole, Segment, SwitchParams};
use dataplane::counters::Counters;
use dataplane::pipeline::{Pipeline, Tables};
use dataplane::pool::Pool;
use dataplane::port::{MemPort, TxMode, BURST};
use dataplane::underlay::neigh::RETRANS_TIME_NS;
use dataplane::underlay::{solicit, underlay_control, Control, NeighborCache};
use encap::{MacAddr, VlanId};
use flowtable::{FdbConfig, FdbGroup, FlowCache, ReplicaConfig, DEFAULT_FLOW_CACHE_SIZE, SEC};

/// The system allocator, counting the calls made by armed threads.
///
/// # Safety
///
/// Every method forwards its arguments unchanged to [`System`], so each upholds the
/// [`GlobalAlloc`] contract exactly as `System` does. The bookkeeping around the
/// calls uses only `const`-initialised thread-locals of `Cell` type (no lazy
/// initialisation, no destructor, so no allocation and no unwinding inside the
/// allocator); with `VSWITCH_ALLOC_TRACE` set it disarms the thread before
/// printing a backtrace, so the allocations that printing makes go straight to
/// `System` uncounted.
struct Counting;

thread_local! {
    /// Whether this thread's allocations are counted.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Whether to print a backtrace for each counted allocation.
    static TRACE: Cell<bool> = const { Cell::new(false) };
    /// Allocations and reallocations counted on this thread.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    /// Deallocations counted on this thread.
    static FREES: Cell<usize> = const { Cell::new(0) };
}

impl Counting {
    #[inline]
    fn count(counter: &'static std::thread::LocalKey<Cell<usize>>) {
        if !ARMED.try_with(Cell::get).unwrap_or(false) {
            return;
        }
        let _ = counter.try_with(|c| c.set(c.get() + 1));
        if TRACE.try_with(Cell::get).unwrap_or(false) {
            ARMED.with(|a| a.set(false));
            eprintln!(
                "counted heap operation at:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            ARMED.with(|a| a.set(true));
        }
    }
}

// SAFETY: see the `# Safety` section of `Counting`: every method delegates to
// `System` with the caller's arguments, and the counting neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    /// # Safety
    /// The contract of [`GlobalAlloc::alloc`], passed on to `System` unchanged.
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Counting::count(&ALLOCS);
        // SAFETY: the caller guarantees `layout` has a non-zero size, as
        // `System.alloc` requires.
        unsafe { System.alloc(layout) }
    }

    /// # Safety
    /// The contract of [`GlobalAlloc::alloc_zeroed`], passed on to `System` unchanged.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Counting::count(&ALLOCS);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    /// # Safety
    /// The contract of [`GlobalAlloc::realloc`], passed on to `System` unchanged.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Counting::count(&ALLOCS);
        // SAFETY: the caller guarantees `ptr` was allocated by this allocator (hence by
        // `System`) with `layout`, and that `new_size` is non-zero and does not
        // overflow when rounded to `layout.align()`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    /// # Safety
    /// The contract of [`GlobalAlloc::dealloc`], passed on to `System` unchanged.
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Counting::count(&FREES);
        // SAFETY: the caller guarantees `ptr` was allocated by this allocator (hence by
        // `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with this thread's heap operations counted: (allocations, frees, result).
fn counted<R>(f: impl FnOnce() -> R) -> (usize, usize, R) {
    let trace = std::env::var_os("VSWITCH_ALLOC_TRACE").is_some();
    TRACE.with(|t| t.set(trace));
    let (a0, f0) = (ALLOCS.with(Cell::get), FREES.with(Cell::get));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (ALLOCS.with(Cell::get) - a0, FREES.with(Cell::get) - f0, r)
}

fn vid(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

fn host(port: u8, i: u8) -> MacAddr {
    MacAddr::new([0x02, 0, 0, 0, port, i])
}

/// A 64-byte frame (68 bytes when `vid` adds a tag, PCP 3).
fn frame(dst: MacAddr, src: MacAddr, vid: Option<u16>) -> Vec<u8> {
    let mut f = [dst.octets(), src.octets()].concat();
    if let Some(v) = vid {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&(0x6000 | v).to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(f.len() + 50, 0x5a);
    f
}

fn config(nets: u16, modes: Vec<PortMode>) -> Config {
    Config {
        switch: SwitchParams::default(),
        networks: (0..nets)
            .map(|n| Network {
                name: format!("net{n}"),
                segment: Segment::Local,
                local_vlan: vid(n + 1),
                local_vlan_allocated: false,
                remote_vteps: Vec::new(),
                mac_limit: 0,
            })
            .collect(),
        ports: modes
            .into_iter()
            .enumerate()
            .map(|(i, mode)| Port {
                name: format!("p{i}"),
                ifname: None,
                mode,
                role: PortRole::Local,
                policy: Default::default(),
            })
            .collect(),
        ..Config::default()
    }
}

fn access(n: u16) -> PortMode {
    PortMode::Access { network: NetIdx(n) }
}

/// A traffic profile: the configuration and the bursts it cycles through, each
/// `BURST` frames received on one port.
struct Profile {
    cfg: Config,
    bursts: Vec<(usize, Vec<Vec<u8>>)>,
}

/// The switch of a profile, its FDB, cache and pool allocated up front.
struct Switch {
    pipeline: Pipeline,
    pool: Pool,
    ports: Vec<MemPort>,
    now: u64,
}

impl Switch {
    fn new(cfg: &Config) -> Self {
        let fdb_cfg = FdbConfig {
            capacity: 1024,
            per_port_limit: 0,
            aging_ns: 300 * SEC,
            max_ports: cfg.ports.len(),
        };
        let mut group = FdbGroup::new(1, fdb_cfg, ReplicaConfig::default()).unwrap();
        let fdb = group.workers.remove(0);
        Switch {
            pipeline: Pipeline::new(
                Tables::compile(cfg, 1),
                fdb,
                FlowCache::new(DEFAULT_FLOW_CACHE_SIZE).unwrap(),
            ),
            pool: Pool::new(4096),
            ports: (0..cfg.ports.len())
                .map(|_| MemPort::new(BURST, TxMode::Discard))
                .collect(),
            now: 1_000 * SEC,
        }
    }

    /// Switches `rounds` passes over the profile's bursts, 1 ms per burst.
    fn run(&mut self, bursts: &[(usize, Vec<Vec<u8>>)], rounds: usize) {
        for _ in 0..rounds {
            for (port, frames) in bursts {
                for f in frames {
                    assert!(self.ports[*port].inject(&mut self.pool, f));
                }
                self.now += SEC / 1000;
                self.pipeline
                    .poll(&mut self.ports, &mut self.pool, self.now);
            }
        }
    }
}

/// Frames switched in the measured loop.
const FRAMES: usize = 100_000;

/// Warms the switch up, then counts the heap operations of [`FRAMES`] more frames;
/// returns the counters of the measured loop alone.
fn steady_state(name: &str, p: &Profile) -> Counters {
    steady_state_with(name, p, |_| {})
}

/// [`steady_state`], with `setup` applied to the switch first.
fn steady_state_with(name: &str, p: &Profile, setup: impl FnOnce(&mut Switch)) -> Counters {
    let mut sw = Switch::new(&p.cfg);
    setup(&mut sw);
    sw.run(&p.bursts, 4);
    let before = sw.pipeline.counters().clone();
    let pool_free = sw.pool.available();
    let rounds = FRAMES.div_ceil(BURST * p.bursts.len());
    let (allocs, frees, ()) = counted(|| sw.run(&p.bursts, rounds));
    let c = sw.pipeline.counters();
    assert_eq!(
        (allocs, frees),
        (0, 0),
        "{name}: {allocs} allocations and {frees} frees while switching {} frames \
         (VSWITCH_ALLOC_TRACE=1 prints where)",
        rounds * BURST * p.bursts.len()
    );
    assert_eq!(
        sw.pool.available(),
        pool_free,
        "{name}: frame buffers leaked"
    );
    let mut delta = c.clone();
    delta.drops = std::array::from_fn(|i| c.drops[i] - before.drops[i]);
    delta.unicast -= before.unicast;
    delta.flooded -= before.flooded;
    delta.learned -= before.learned;
    delta.moves -= before.moves;
    delta.cache_hits -= before.cache_hits;
    delta.cache_misses -= before.cache_misses;
    assert_eq!(delta.total_drops(), 0, "{name}: drops {:?}", delta.drops);
    assert_eq!((delta.learned, delta.moves), (0, 0), "{name}: not steady");
    assert_eq!(delta.cache_misses, 0, "{name}: flow cache not warm");
    delta
}

/// Known unicast between two access ports, 16 hosts on each side.
fn unicast_profile() -> Profile {
    Profile {
        cfg: config(1, vec![access(0), access(0)]),
        bursts: (0..2u8)
            .map(|side| {
                let frames = (0..BURST as u8)
                    .map(|i| frame(host(1 - side, i % 16), host(side, i % 16), None))
                    .collect();
                (usize::from(side), frames)
            })
            .collect(),
    }
}

/// [`unicast_profile`]: no allocation.
#[test]
fn no_allocation_known_unicast_access_to_access() {
    let p = unicast_profile();
    let c = steady_state("unicast", &p);
    assert_eq!(c.unicast, c.cache_hits);
    assert!(c.unicast >= FRAMES as u64, "{c:?}");
    assert_eq!(c.flooded, 0);
}

/// Known unicast with the XDP fast path's hook set: after each batch the worker offers
/// its decisions (generations read from the shared map, the re-offer filter, the
/// lock-free queue to the agent), and that allocates nothing either. Loading the
/// program needs root: otherwise the test says SKIPPED and passes.
#[test]
fn no_allocation_offering_to_the_fast_path() {
    if !vswitch_tests::netns::root_or_skip("no_allocation_offering_to_the_fast_path") {
        return;
    }
    let fp = dataplane::fastpath::FastPath::load(std::time::Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("loading the fast path: {e}"));
    let p = unicast_profile();
    let before = fp.stats().offers;
    let c = steady_state_with("offers", &p, |sw| sw.pipeline.set_fastpath(fp.hook()));
    assert!(c.unicast >= FRAMES as u64, "{c:?}");
    // 32 flows re-offered every 100 ms of the switch's clock (1 ms per burst).
    let offers = fp.stats().offers - before;
    assert!(offers >= 32 * 10, "only {offers} offers were made");
}

/// Broadcast and unknown unicast from one access port flooded to the 3 other
/// ports of the network: two copies and one move per frame.
#[test]
fn no_allocation_flood_to_three_ports() {
    let unknown = MacAddr::new([0x02, 0xee, 0, 0, 0, 1]);
    let p = Profile {
        cfg: config(1, vec![access(0), access(0), access(0), access(0)]),
        bursts: vec![(
            0,
            (0..BURST as u8)
                .map(|i| {
                    let dst = if i % 2 == 0 {
                        MacAddr::new([0xff; 6])
                    } else {
                        unknown
                    };
                    frame(dst, host(0, i % 8), None)
                })
                .collect(),
        )],
    };
    let c = steady_state("flood", &p);
    assert!(c.flooded >= FRAMES as u64, "{c:?}");
    assert_eq!(c.unicast, 0);
    let sent: u64 = c.ports[1..].iter().map(|p| p.tx_frames).sum();
    assert!(sent >= 3 * FRAMES as u64, "{c:?}");
}

/// An access port of net 0, a trunk carrying net 0 on VID 10 and net 1 on VID 20, an
/// access port of net 1 and a trunk carrying net 0 on VID 30: tags pushed (access →
/// trunk), popped (trunk → access) and translated (trunk → trunk).
#[test]
fn no_allocation_trunk_push_pop_translate() {
    let trunk = |vlans: Vec<(u16, u16)>| PortMode::Trunk {
        vlans: vlans
            .into_iter()
            .map(|(v, n)| (vid(v), NetIdx(n)))
            .collect(),
        native: None,
    };
    let cfg = config(
        2,
        vec![
            access(0),
            trunk(vec![(10, 0), (20, 1)]),
            access(1),
            trunk(vec![(30, 0)]),
        ],
    );
    let burst = |port: usize, f: &dyn Fn(u8) -> Vec<u8>| (port, (0..BURST as u8).map(f).collect());
    let p = Profile {
        cfg,
        bursts: vec![
            // Push: access port 0 → hosts behind trunk 1 (net 0, VID 10).
            burst(0, &|i| frame(host(1, i % 8), host(0, i % 8), None)),
            // Pop: trunk 1 → access port 0 (VID 10) and access port 2 (VID 20).
            burst(1, &|i| {
                let j = (i / 2) % 8;
                if i % 2 == 0 {
                    frame(host(0, j), host(1, j), Some(10))
                } else {
                    frame(host(2, j), host(1, 8 + j), Some(20))
                }
            }),
            burst(2, &|i| frame(host(1, 8 + i % 8), host(2, i % 8), None)),
            // Translate: trunk 3 (VID 30) ↔ trunk 1 (VID 10).
            burst(3, &|i| frame(host(1, i % 8), host(3, i % 8), Some(30))),
        ],
    };
    let c = steady_state("trunk", &p);
    assert!(c.unicast >= FRAMES as u64, "{c:?}");
    assert_eq!(c.flooded, 0, "{c:?}");
    // Access ports send 64-byte untagged frames (popped), trunk 1 68-byte tagged ones
    // (pushed and translated).
    let size = |p: usize| c.ports[p].tx_bytes / c.ports[p].tx_frames;
    assert_eq!((size(0), size(1), size(2)), (64, 68, 64), "{c:?}");
}

/// Beyond the steady state: a MAC flood. Every frame has a new source MAC, so
/// every frame learns, the 1024-entry table fills and then evicts on every frame, and
/// every destination is a flow-cache miss: learning and eviction do not allocate
/// either (the FDB and the cache are sized at construction).
#[test]
fn no_allocation_while_learning_and_evicting() {
    let cfg = config(1, vec![access(0), access(0), access(0)]);
    let mut sw = Switch::new(&cfg);
    let mut next = 0u32;
    let mut mac = move || {
        next += 1;
        let b = next.to_be_bytes();
        MacAddr::new([0x02, 0x77, b[0], b[1], b[2], b[3]])
    };
    let bursts: Vec<(usize, Vec<Vec<u8>>)> = (0..FRAMES / BURST)
        .map(|k| {
            let frames = (0..BURST).map(|_| frame(mac(), mac(), None)).collect();
            (k % 2, frames)
        })
        .collect();
    // Warm up on other MACs until the table is full.
    let warm: Vec<_> = (0..2048 / BURST)
        .map(|k| {
            (
                k % 2,
                (0..BURST).map(|_| frame(mac(), mac(), None)).collect(),
            )
        })
        .collect();
    sw.run(&warm, 1);
    assert_eq!(sw.pipeline.fdb().fdb().learned_len(), 1024);
    let before = sw.pipeline.counters().clone();
    let (allocs, frees, ()) = counted(|| sw.run(&bursts, 1));
    assert_eq!((allocs, frees), (0, 0), "MAC flood: heap operations");
    let c = sw.pipeline.counters();
    assert_eq!(c.learned - before.learned, (FRAMES / BURST * BURST) as u64);
    assert!(sw.pipeline.fdb().fdb().stats().evicted >= FRAMES as u64 / 2);
    assert_eq!(c.total_drops(), 0);
}

/// The counter counts: a `Vec` made while armed is seen.
#[test]
fn the_counter_counts() {
    let (allocs, frees, v) = counted(|| vec![1u8; 100]);
    assert_eq!((allocs, frees), (1, 0));
    drop(v);
}

/// The neighbour cache and the underlay responder allocate nothing after
/// `NeighborCache::new`: thousands of resolutions, failures, hold-downs, evictions,
/// refreshes, replies and learning.
#[test]
fn no_allocation_in_neighbour_cache_after_new() {
    const CAP: usize = 64;
    let mut cache = NeighborCache::<u32>::new(CAP);
    let mut cache6 = NeighborCache::<u32>::new(CAP);
    let our_mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let our4 = IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1));
    let our6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let mut frame = [0u8; 128];
    let mut out = [0u8; 128];
    let (allocs, _, (released, dropped, shown, evictions)) = counted(|| {
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
        (released, dropped, shown, cache.counters().evictions)
    });
    assert_eq!(allocs, 0, "allocations after new()");
    assert!(released > 0 && dropped > 0 && shown == 2 * CAP);
    assert!(evictions > 10_000);
}

/// Forward-only mode: bursts moved between two ports (and dropped on an odd third),
/// through the ports' `Option` wrappers the running switch uses, allocate nothing.
#[test]
fn no_allocation_forward_only() {
    use dataplane::forward::Forwarder;
    use flowtable::PortId;

    let mut pool = Pool::new(4096);
    let mut ports: Vec<Option<MemPort>> = (0..3)
        .map(|_| Some(MemPort::new(4 * BURST, TxMode::Discard)))
        .collect();
    let mut f = Forwarder::new(&[PortId(0), PortId(1), PortId(2)], 3);
    let frame = frame(host(1, 1), host(0, 1), None);
    let mut run = |pool: &mut Pool, ports: &mut Vec<Option<MemPort>>, rounds: usize| {
        for _ in 0..rounds {
            for p in ports.iter_mut().flatten() {
                for _ in 0..BURST {
                    assert!(p.inject(pool, &frame));
                }
            }
            f.poll(ports, pool);
        }
    };
    run(&mut pool, &mut ports, 4);
    let free = pool.available();
    let rounds = FRAMES.div_ceil(3 * BURST);
    let (allocs, frees, ()) = counted(|| run(&mut pool, &mut ports, rounds));
    assert_eq!(
        (allocs, frees),
        (0, 0),
        "forward-only: {allocs} allocations and {frees} frees (VSWITCH_ALLOC_TRACE=1 prints where)"
    );
    assert_eq!(pool.available(), free, "forward-only: frame buffers leaked");
    let c = f.counters();
    assert_eq!(c.ports[1].tx_frames, c.ports[0].rx_frames);
    assert_eq!(
        c.dropped(dataplane::counters::DropReason::NoPeer),
        c.ports[2].rx_frames
    );
}

/// The hardening stages on the hot path: secured ports (port security checks every
/// frame's MAC and IPv4 source), storm control dropping most of a broadcast storm, and
/// a learning-rate cap refusing a spray of new source MACs: no heap operation.
#[test]
fn no_allocation_with_port_security_storm_control_and_learning_cap() {
    use dataplane::config::{AllowedPair, PortPolicy, PortSecurity};
    let udp = |dst: MacAddr, src: MacAddr, sip: [u8; 4]| {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(src.octets(), dst.octets())
            .ipv4(sip, [198, 18, 40, 250], 64)
            .udp(1, 2)
            .write(&mut out, &[0x5a; 18])
            .unwrap();
        out
    };
    let mut cfg = config(1, vec![access(0), access(0), access(0)]);
    cfg.switch.storm_control_pps = 1000;
    cfg.switch.mac_learn_rate_per_port = 100;
    for side in 0..2u8 {
        let mac = host(side, 0);
        cfg.ports[usize::from(side)].policy = PortPolicy {
            security: Some(PortSecurity {
                mac,
                allowed: vec![AllowedPair {
                    mac,
                    ip: IpAddr::V4(Ipv4Addr::new(198, 18, 40, side)).into(),
                }],
            }),
            storm_control_pps: None,
        };
    }
    let mut sw = Switch::new(&cfg);
    let unicast: Vec<(usize, Vec<Vec<u8>>)> = (0..2u8)
        .map(|side| {
            let f = udp(host(1 - side, 0), host(side, 0), [198, 18, 40, side]);
            (usize::from(side), vec![f; BURST])
        })
        .collect();
    // Port 2 (unsecured): broadcasts from ever new source MACs.
    let mut n = 0u32;
    let storm: Vec<(usize, Vec<Vec<u8>>)> = (0..64)
        .map(|_| {
            let frames = (0..BURST)
                .map(|_| {
                    n += 1;
                    let b = n.to_be_bytes();
                    let src = MacAddr::new([0x02, 0x66, b[0], b[1], b[2], b[3]]);
                    udp(MacAddr::new([0xff; 6]), src, [198, 18, 40, 9])
                })
                .collect();
            (2, frames)
        })
        .collect();
    sw.run(&unicast, 4);
    sw.run(&storm, 1);
    let before = sw.pipeline.counters().clone();
    let rounds = FRAMES / (BURST * 2);
    let (allocs, frees, ()) = counted(|| {
        sw.run(&unicast, rounds);
        sw.run(&storm, 4);
    });
    assert_eq!(
        (allocs, frees),
        (0, 0),
        "heap operations on the hardened path"
    );
    let c = sw.pipeline.counters();
    assert!(c.unicast - before.unicast >= (rounds * BURST * 2) as u64);
    assert!(
        c.dropped(dataplane::counters::DropReason::StormControl)
            > before.dropped(dataplane::counters::DropReason::StormControl)
    );
    assert!(c.learn_rate_limited > before.learn_rate_limited);
    assert_eq!(
        c.dropped(dataplane::counters::DropReason::SpoofedIp)
            + c.dropped(dataplane::counters::DropReason::SpoofedMac),
        0
    );
}

/// The port slots of a running worker (`Tapped`, what `vswitch run` polls) allocate
/// nothing without a capture, nor with captures running both ways on two ports (an
/// access port and a trunk, so the `out` copies are taken after the tag push): their
/// records were allocated when the captures started, and the reader's recycling
/// (here between bursts, as the control thread would) allocates nothing either.
#[test]
fn no_allocation_with_capture_off_and_on() {
    use dataplane::capture::{ring, CaptureOptions, Consumer, Filter, Tapped};

    let trunk = PortMode::Trunk {
        vlans: vec![(vid(10), NetIdx(0))],
        native: None,
    };
    let cfg = config(1, vec![access(0), trunk]);
    let Switch {
        mut pipeline,
        mut pool,
        mut now,
        ..
    } = Switch::new(&cfg);
    let mut ports: Vec<Tapped<MemPort>> = (0..2)
        .map(|_| Tapped::new(MemPort::new(BURST, TxMode::Discard)))
        .collect();
    let bursts: Vec<(usize, Vec<Vec<u8>>)> = vec![
        (
            0,
            (0..BURST as u8)
                .map(|i| frame(host(1, i % 8), host(0, i % 8), None))
                .collect(),
        ),
        (
            1,
            (0..BURST as u8)
                .map(|i| frame(host(0, i % 8), host(1, i % 8), Some(10)))
                .collect(),
        ),
    ];
    let mut run = |ports: &mut Vec<Tapped<MemPort>>, readers: &[Consumer], rounds: usize| {
        let mut read = 0u64;
        for _ in 0..rounds {
            for (port, frames) in &bursts {
                for f in frames {
                    assert!(ports[*port].port.inject(&mut pool, f));
                }
                now += SEC / 1000;
                pipeline.poll(ports, &mut pool, now);
                for c in readers {
                    while let Some(r) = c.pop() {
                        read += r.data().len() as u64;
                        c.recycle(r);
                    }
                }
            }
        }
        read
    };
    run(&mut ports, &[], 4);
    let rounds = FRAMES.div_ceil(BURST * 2);
    let (allocs, frees, _) = counted(|| run(&mut ports, &[], rounds));
    assert_eq!(
        (allocs, frees),
        (0, 0),
        "capture off: {allocs} allocations and {frees} frees (VSWITCH_ALLOC_TRACE=1 prints where)"
    );

    let opts = CaptureOptions::new(Filter::Both, Some(128), Some(256), None).unwrap();
    let epoch = std::time::Instant::now();
    let mut readers = Vec::new();
    for p in &mut ports {
        let (producer, consumer) = ring(&opts, epoch);
        p.set_tap(Box::new(producer));
        readers.push(consumer);
    }
    run(&mut ports, &readers, 4);
    let (allocs, frees, read) = counted(|| run(&mut ports, &readers, rounds));
    assert_eq!(
        (allocs, frees),
        (0, 0),
        "capture on: {allocs} allocations and {frees} frees (VSWITCH_ALLOC_TRACE=1 prints where)"
    );
    // Every frame copied twice (in on one port, out on the other), none missed.
    let frames = (rounds * BURST * 2) as u64;
    assert!(
        read >= 2 * frames * 64,
        "{read} bytes read for {frames} frames"
    );
    assert!(readers.iter().all(|c| c.dropped() == 0));
    assert_eq!(
        readers.iter().map(Consumer::captured).sum::<u64>(),
        2 * frames + 2 * (4 * BURST * 2) as u64
    );
}
