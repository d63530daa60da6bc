//! The XDP traffic generator and sink over a bare veth pair between two namespaces.
//!
//! Runs as root (it creates network namespaces); otherwise prints a loud SKIP line and
//! passes. No test here has a performance target; `bare_veth_ceiling` (ignored) prints
//! the generator → sink rate:
//! `cargo test --release -p vswitch-bench --test traffic_veth -- --ignored --nocapture`.

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
    let gen = Generator::start(gen_cfg(&g, imix(), 100, Some(rate))).unwrap();
    let t = Instant::now();
    while gen.sent() < 2_000 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = gen.stop().unwrap();
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
    for (len, what) in [(60usize, "60-byte (64 with FCS)"), (66, "66-byte UDP")] {
        let (g, s) = rig();
        let mut sink = Sink::attach(&SinkConfig {
            payload_offset: 14,
            ..sink_cfg(&s, 64)
        })
        .unwrap();
        let mut t = template(66);
        t.truncate(len);
        // A raw frame: local experimental EtherType, test header right after Ethernet.
        t[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        let cfg = GenConfig {
            core: Some(0),
            payload_offset: 14,
            udp_sport_field: None,
            ..gen_cfg(
                &g,
                vec![Stream {
                    template: t,
                    weight: 1,
                }],
                1,
                None,
            )
        };
        let gen = Generator::start(cfg).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let r = gen.stop().unwrap();
        let c = wait_for(&sink, r.frames);
        let x = veth_xdp_stats(&g.path(), "g0").unwrap();
        let mut h = Histogram::<u64>::new(3).unwrap();
        sink.drain_latency(&mut h).unwrap();
        println!(
            "{what}: generated {:.3} Mpps, sink {:.3} Mpps, xdp_xmit_errors {}, late {}, \
             latency p50 {} ns p99 {} ns max {} ns",
            r.frames as f64 / r.elapsed.as_secs_f64() / 1e6,
            c.test_frames as f64 / r.elapsed.as_secs_f64() / 1e6,
            x.xdp_xmit_errors,
            c.late,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max()
        );
    }
}
