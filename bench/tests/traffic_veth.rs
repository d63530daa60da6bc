//! The XDP traffic generator and sink over a bare veth pair between two namespaces.
//!
//! Runs as root (it creates network namespaces); otherwise prints a loud SKIP line and
//! passes. No test here has a performance target; `bare_veth_ceiling` (ignored) prints
//! the generator → sink rate:
//! `cargo test --release -p vswitch-bench --test traffic_veth -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use vswitch_bench::wire::traffic::{
    send_burst, veth_xdp_stats, GenConfig, Generator, Sink, SinkConfig, SinkCounters, Stream,
    Udp4Template,
};
use vswitch_tests::netns::{self, veth_pair, NetNs};

/// Generator namespace, sink namespace (dropped, hence deleted, even on failure).
fn rig() -> (NetNs, NetNs) {
    let g = NetNs::new("trgen").unwrap();
    let s = NetNs::new("trsink").unwrap();
    // No IPv6 router solicitations or MLD reports among the test frames.
    for ns in [&g, &s] {
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
            .unwrap();
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    }
    veth_pair(&g, "g0", &s, "s0").unwrap();
    (g, s)
}

fn template(len: usize) -> Vec<u8> {
    Udp4Template {
        dst_mac: [0x02, 0x00, 0x00, 0x5e, 0x00, 0x00],
        src_mac: [0x02, 0x00, 0x00, 0xaa, 0x00, 0x00],
        src_ip: Ipv4Addr::new(198, 18, 0, 1),
        dst_ip: Ipv4Addr::new(198, 19, 0, 1),
        src_port: 1024,
        dst_port: 9,
        frame_len: len,
    }
    .build()
    .unwrap()
}

fn gen_cfg(g: &NetNs, streams: Vec<Stream>, flows: u32, rate_pps: Option<f64>) -> GenConfig {
    GenConfig {
        netns: g.path(),
        ifname: "g0".into(),
        core: None,
        streams,
        payload_offset: Udp4Template::PAYLOAD_OFFSET,
        mac_fields: vec![Udp4Template::DST_MAC_OFFSET, Udp4Template::SRC_MAC_OFFSET],
        udp_sport_field: Some(Udp4Template::UDP_SPORT_OFFSET),
        flows,
        rate_pps,
    }
}

fn sink_cfg(s: &NetNs, every: u32) -> SinkConfig {
    SinkConfig {
        netns: s.path(),
        ifname: "s0".into(),
        payload_offset: Udp4Template::PAYLOAD_OFFSET,
        latency_sample_every: every,
        pass_other: false,
    }
}

fn imix() -> Vec<Stream> {
    [(66, 7), (594, 4), (1514, 1)]
        .into_iter()
        .map(|(len, weight)| Stream {
            template: template(len),
            weight,
        })
        .collect()
}

/// Waits until the sink has seen `frames` test frames (its NAPI may run a moment after
/// the generator's call returned), at most 5 s; returns the last reading.
fn wait_for(sink: &Sink, frames: u64) -> SinkCounters {
    let mut c = sink.read().unwrap();
    netns::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        c = sink.read().unwrap();
        c.test_frames >= frames
    });
    c
}

#[test]
fn burst_reaches_sink_in_order_with_latency_samples() {
    if !netns::root_or_skip("burst_reaches_sink_in_order_with_latency_samples") {
        return;
    }
    let (g, s) = rig();
    let mut sink = Sink::attach(&sink_cfg(&s, 64)).unwrap();
    let cfg = gen_cfg(&g, imix(), 16, None);
    let frames = 120_000;
    let sent = send_burst(&cfg, frames).unwrap();
    assert_eq!(sent, frames);

    let c = wait_for(&sink, sent);
    let lost = veth_xdp_stats(&g.path(), "g0").unwrap();
    eprintln!("sink {c:?}\ng0 {lost:?}");
    assert_eq!(
        lost.xdp_xmit_errors, 0,
        "no frame dropped at the peer's ring"
    );
    assert_eq!(
        c.test_frames, sent,
        "every generated frame reached the sink"
    );
    assert_eq!(c.other_frames, 0);
    assert_eq!(c.late, 0, "no frame out of order on a bare veth");
    assert_eq!(
        sink.flows_seen(64).unwrap(),
        16,
        "each of the 16 flows seen"
    );
    // 7:4:1 by weight, whole rounds of 16k frames.
    assert!(c.test_bytes > sent * 66);

    let mut hist = Histogram::<u64>::new(3).unwrap();
    let n = sink.drain_latency(&mut hist).unwrap();
    assert_eq!(n, c.latency_samples);
    assert_eq!(c.latency_lost, 0);
    assert!(
        n >= sent / 64 - 1 && n <= sent / 64 + 1,
        "one sample per 64 frames: {n}"
    );
    assert!(
        hist.max() > 0 && hist.max() < 10_000_000_000,
        "{}",
        hist.max()
    );

    // A second burst against the same sink keeps the sequence increasing.
    let again = send_burst(&cfg, 1000).unwrap();
    let c2 = wait_for(&sink, sent + again);
    assert_eq!(c2.test_frames, sent + again);
    assert_eq!(c2.late, 0, "a later run's sequence numbers are higher");
}

#[test]
fn generator_thread_paced_and_stopped() {
    if !netns::root_or_skip("generator_thread_paced_and_stopped") {
        return;
    }
    let (g, s) = rig();
    let sink = Sink::attach(&sink_cfg(&s, 0)).unwrap();
    let rate = 50_000.0;
    let generator = Generator::start(gen_cfg(&g, imix(), 100, Some(rate))).unwrap();
    let t = Instant::now();
    while generator.sent() < 2_000 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!generator.is_finished());
    let r = generator.stop().unwrap();
    assert!(r.frames >= 2_000, "{r:?}");
    assert_eq!(r.streams.iter().map(|s| s.frames).sum::<u64>(), r.frames);
    assert_eq!(r.streams.iter().map(|s| s.bytes).sum::<u64>(), r.bytes);
    // Pacing never runs ahead: at most the rate times the time, plus one call (~1 ms).
    let allowed = rate * r.elapsed.as_secs_f64() + rate / 1000.0 * 2.0;
    assert!(
        (r.frames as f64) <= allowed,
        "{} frames in {:?}",
        r.frames,
        r.elapsed
    );
    assert!(r.dispatcher_pinned);
    let v = r.veth.expect("veth counters read");
    assert_eq!(
        v.xdp_xmit, r.frames,
        "every frame went into the sink's ring"
    );
    assert_eq!(v.xdp_xmit_errors, 0);
    assert_eq!(r.unaccounted(), Some(0));
    assert!(r.cpu_time <= r.elapsed + Duration::from_millis(50), "{r:?}");
    let c = wait_for(&sink, r.frames);
    assert_eq!(c.test_frames, r.frames);
    assert_eq!(c.late, 0);
    assert_eq!(sink.flows_seen(200).unwrap(), 100.min(r.frames as u32));
}

#[test]
fn mac_rewrite_teaches_a_bridge_one_mac_per_flow() {
    if !netns::root_or_skip("mac_rewrite_teaches_a_bridge_one_mac_per_flow") {
        return;
    }
    // No sink: the peer is a bridge port, with GRO on so that it has the NAPI that
    // XDP-transmitted frames need.
    let (g, s) = rig();
    s.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    s.ip(&["link", "set", "s0", "master", "br0"]).unwrap();
    s.ip(&["link", "set", "br0", "up"]).unwrap();
    s.ethtool(&["-K", "s0", "gro", "on"]).unwrap();
    let mut cfg = gen_cfg(
        &g,
        vec![Stream {
            template: template(66),
            weight: 1,
        }],
        8,
        None,
    );
    cfg.mac_fields = vec![Udp4Template::SRC_MAC_OFFSET];
    assert_eq!(send_burst(&cfg, 8 * 4).unwrap(), 32);
    let mut fdb = String::new();
    let all = netns::wait_until(Duration::from_secs(3), Duration::from_millis(20), || {
        fdb = s.bridge(&["fdb", "show", "br", "br0"]).unwrap();
        (0..8).all(|i| fdb.contains(&format!("02:00:00:aa:00:0{i} dev s0")))
    });
    assert!(all, "bridge learned one MAC per flow:\n{fdb}");
    assert!(
        !fdb.contains("02:00:00:aa:00:08 dev s0"),
        "only 8 flows:\n{fdb}"
    );
}

#[test]
fn pass_other_lets_arp_and_ping_through() {
    if !netns::root_or_skip("pass_other_lets_arp_and_ping_through") {
        return;
    }
    let (g, s) = rig();
    g.ip(&["addr", "add", "198.18.0.1/30", "dev", "g0"])
        .unwrap();
    s.ip(&["addr", "add", "198.18.0.2/30", "dev", "s0"])
        .unwrap();
    let sink = Sink::attach(&SinkConfig {
        pass_other: true,
        ..sink_cfg(&s, 0)
    })
    .unwrap();
    g.exec("ping", &["-c", "1", "-W", "2", "198.18.0.2"])
        .unwrap();
    let c = sink.read().unwrap();
    assert!(c.other_frames >= 2, "ARP request and echo request: {c:?}");
    assert_eq!(c.test_frames, 0);
    let link = s.ip(&["-d", "link", "show", "dev", "s0"]).unwrap();
    assert!(link.contains("prog/xdp"), "{link}");
    drop(sink);
    // Detached when dropped: the interface has no XDP program any more.
    let link = s.ip(&["-d", "link", "show", "dev", "s0"]).unwrap();
    assert!(!link.contains("prog/xdp"), "{link}");
}

#[test]
fn bad_config_refused_before_anything_runs() {
    let cfg = GenConfig {
        netns: "/nonexistent".into(),
        ifname: "g0".into(),
        core: None,
        streams: vec![Stream {
            template: vec![0; 40],
            weight: 1,
        }],
        payload_offset: 42,
        mac_fields: vec![],
        udp_sport_field: None,
        flows: 1,
        rate_pps: None,
    };
    let e = Generator::start(cfg.clone()).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    let e = send_burst(&cfg, 1).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
}

/// Not a test: prints the generator → sink ceiling over a bare veth pair, both on core 0.
#[test]
#[ignore]
fn bare_veth_ceiling() {
    if !netns::root_or_skip("bare_veth_ceiling") {
        return;
    }
    // A raw 60-byte frame (64 on the wire with FCS): local experimental EtherType, the
    // test header right after the Ethernet header.
    let mut raw = template(66);
    raw.truncate(60);
    raw[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let cases: Vec<(&str, Vec<Stream>, usize, u32)> = vec![
        (
            "60 B raw, 1 flow",
            vec![Stream {
                template: raw,
                weight: 1,
            }],
            14,
            1,
        ),
        (
            "66 B UDP, 1 flow",
            vec![Stream {
                template: template(66),
                weight: 1,
            }],
            42,
            1,
        ),
        (
            "66 B UDP, 1024 flows",
            vec![Stream {
                template: template(66),
                weight: 1,
            }],
            42,
            1024,
        ),
        ("IMIX 66/594/1514 7:4:1, 1024 flows", imix(), 42, 1024),
    ];
    for (what, streams, payload_offset, flows) in cases {
        let (g, s) = rig();
        let mut sink = Sink::attach(&SinkConfig {
            payload_offset,
            ..sink_cfg(&s, 64)
        })
        .unwrap();
        let mut cfg = gen_cfg(&g, streams, flows, None);
        cfg.core = Some(0);
        cfg.payload_offset = payload_offset;
        if payload_offset < 42 {
            cfg.udp_sport_field = None;
        }
        let generator = Generator::start(cfg).unwrap();
        let mut h = Histogram::<u64>::new(3).unwrap();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            sink.drain_latency(&mut h).unwrap();
        }
        let r = generator.stop().unwrap();
        let c = wait_for(&sink, r.frames);
        sink.drain_latency(&mut h).unwrap();
        let secs = r.elapsed.as_secs_f64();
        println!(
            "{what}: {:.2} Mpps {:.2} Gbit/s generated, {:.2} Mpps at the sink; generator \
             thread {:.0} % busy ({:.1} Mpps per CPU-second); xdp_xmit_errors {}, \
             unaccounted {:?}, late {}; latency p50/p99/p99.9/max {}/{}/{}/{} ns ({} samples)",
            r.frames as f64 / secs / 1e6,
            r.bytes as f64 * 8.0 / secs / 1e9,
            c.test_frames as f64 / secs / 1e6,
            100.0 * r.cpu_time.as_secs_f64() / secs,
            r.frames as f64 / r.cpu_time.as_secs_f64() / 1e6,
            r.veth.map(|v| v.xdp_xmit_errors).unwrap_or(0),
            r.unaccounted(),
            c.late,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.len()
        );
    }
}

/// Runs the generator until it has sent at least `frames`.
fn run_until(cfg: GenConfig, frames: u64) -> vswitch_bench::wire::traffic::GenReport {
    let generator = Generator::start(cfg).unwrap();
    let t = Instant::now();
    while generator.sent() < frames && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    generator.stop().unwrap()
}

/// Every generated frame is delivered to the peer's ring, counted as dropped at it, or
/// (peer without NAPI) flagged as unaccounted.
#[test]
fn lost_frames_are_counted_or_flagged() {
    if !netns::root_or_skip("lost_frames_are_counted_or_flagged") {
        return;
    }
    let one = || {
        vec![Stream {
            template: template(66),
            weight: 1,
        }]
    };
    // Peer without NAPI (no XDP program, GRO off): nothing counts the loss.
    let (g, s) = rig();
    s.ethtool(&["-K", "s0", "gro", "off"]).unwrap();
    let r = run_until(gen_cfg(&g, one(), 4, None), 10_000);
    let v = r.veth.expect("veth counters");
    assert_eq!((v.xdp_xmit, v.xdp_xmit_errors), (0, 0), "{r:?}");
    assert_eq!(r.unaccounted(), Some(r.frames));
    assert_eq!(s.link_stats("s0").unwrap().rx_packets, 0);
    drop((g, s));

    // Sink NAPI threaded: it runs in a kthread, not in the generator's softirq, so the
    // 256-entry ring may fill; whatever did not go in is counted as an xmit error.
    let (g, s) = rig();
    let sink = Sink::attach(&sink_cfg(&s, 0)).unwrap();
    s.exec("sh", &["-c", "echo 1 > /sys/class/net/s0/threaded"])
        .unwrap();
    let r = run_until(gen_cfg(&g, one(), 4, None), 500_000);
    let v = r.veth.expect("veth counters");
    eprintln!("threaded NAPI: {r:?}");
    assert_eq!(v.xdp_xmit + v.xdp_xmit_errors, r.frames);
    assert_eq!(r.unaccounted(), Some(0));
    let c = wait_for(&sink, v.xdp_xmit);
    assert_eq!(
        c.test_frames, v.xdp_xmit,
        "what went into the ring reached the sink"
    );
    drop((sink, g, s));

    // Frames longer than the peer's MTU + 18 are counted as xmit errors too.
    let (g, s) = rig();
    s.ip(&["link", "set", "s0", "mtu", "1000"]).unwrap();
    let sink = Sink::attach(&sink_cfg(&s, 0)).unwrap();
    let big = vec![Stream {
        template: template(1514),
        weight: 1,
    }];
    let r = run_until(gen_cfg(&g, big, 4, None), 1_000);
    let v = r.veth.expect("veth counters");
    assert_eq!((v.xdp_xmit, v.xdp_xmit_errors), (0, r.frames), "{r:?}");
    assert_eq!(sink.read().unwrap().frames, 0);
}
