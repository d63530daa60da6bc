//! Traffic generator and sink of `vswitch-bench wire`, both in XDP.
//!
//! # Why XDP on both ends
//!
//! The generator must never be the bottleneck. On a 2-core machine an AF_PACKET generator
//! (trafgen) stalls near 0.4 Mpps, about what the switches under test forward; a program
//! run with `BPF_PROG_RUN` in *live frames* mode (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux
//! ≥ 5.18, the method of xdp-tools' xdp-trafficgen) sends several Mpps from one core.
//! The sink counts in an XDP program attached to its veth (per-CPU counters, then
//! `XDP_DROP`): no skb is ever built for a test frame.
//!
//! # Generator
//!
//! [`Generator::start`] spawns a thread that enters the generator's namespace, pins itself
//! to [`GenConfig::core`], loads `bpf/gen.bpf.c` and calls `BPF_PROG_RUN` over and over:
//! each call runs the program on `repeat` copies of one stream's template in batches of
//! 64 (the kernel's default batch), and every frame goes out through the generator's
//! veth (`XDP_TX`, which `BPF_PROG_RUN` turns into a redirect to the context's ingress
//! device). Streams (e.g. IMIX 64/594/1518 weighted 7:4:1) are interleaved call by call
//! in proportion to their weights. With [`GenConfig::rate_pps`] each call waits for its
//! deadline (sleeping, then spinning), so the rate holds on average over a few ms.
//!
//! For every frame the program writes into the test header (see [`HEADER_LEN`]): the flow
//! index (frame *k* of a run is flow `k % flows`), a sequence number and a
//! `bpf_ktime_get_ns` timestamp. It sets the low 24 bits of each configured MAC field to
//! `base + flow`, where `base` is that field's value in the template, and optionally the
//! UDP source port to `template port + flow` (tunnel entropy). **Templates must carry a
//! zero UDP checksum over IPv4** (or none of the rewritten bytes may be covered by a
//! checksum): the program fixes no checksum. [`Udp4Template`] builds such frames.
//!
//! Sequence numbers start at the monotonic clock (in ns) when the run starts, so runs one
//! after another against the same sink keep increasing (a run sends fewer than one frame
//! per ns); they are global over all flows and streams of a run.
//!
//! # Sink
//!
//! [`Sink::attach`] attaches `bpf/sink.bpf.c` in native mode to the sink's veth through a
//! BPF link created from a thread inside the sink's namespace; dropping the [`Sink`]
//! closes the link, which detaches the program. It counts all frames and bytes, test
//! frames (magic at [`SinkConfig::payload_offset`]) and other frames; checks order per
//! flow (a test frame whose sequence number is not above the highest seen for its flow on
//! that CPU is *late*: reordered or duplicated; flows ≥ [`MAX_CHECKED_FLOWS`] are not
//! checked); and for test frames whose sequence number is a multiple of
//! [`SinkConfig::latency_sample_every`] sends `now - timestamp` to a ring buffer, which
//! [`Sink::drain_latency`] empties into an HDR histogram. Frames that are not test frames
//! are dropped too, or passed to the stack with [`SinkConfig::pass_other`] (ARP etc.).
//!
//! # Where frames can be lost, and which counter says so
//!
//! `BPF_PROG_RUN` itself never reports a frame it could not transmit: [`GenReport::frames`]
//! (and [`Generator::sent`]) count frames the program *ran on* and handed for transmission.
//! `XDP_TX` there is a redirect to the generator's veth, whose `ndo_xdp_xmit` puts the frame
//! into the *peer's* XDP ring (256 entries), and only if the peer has a NAPI instance: an
//! XDP program attached to the peer, or GRO on (`ethtool -K PEER gro on`). Checked on
//! Linux 6.18 (`drop_counters_experiment` in `bench/tests/traffic_veth.rs`):
//!
//! - Frames that went into the peer's ring: the generator veth's `ethtool -S`
//!   `tx_queue_N_xdp_xmit`. Peer ring full (the receiver's NAPI runs elsewhere and is
//!   slower, e.g. threaded NAPI): the frames are dropped and counted in
//!   `tx_queue_N_xdp_xmit_errors` of the **generator's** veth. With threaded NAPI on the
//!   sink, 2,000,000 sent = 986,112 `xdp_xmit` + 1,013,888 `xdp_xmit_errors`, exactly.
//! - Frames longer than the peer's MTU + 18 (e.g. a 1514-byte frame wrapped in VXLAN on
//!   a 1500-MTU veth) are dropped the same way and counted in `xdp_xmit_errors` too.
//! - Peer without NAPI (no XDP program, GRO off) or down: every frame is dropped and
//!   **no counter moves**, on either veth (`ip -s link` neither).
//!
//! The generator reads those counters before and after a run ([`GenReport::veth`],
//! [`VethXdpStats`]), so `generated = xdp_xmit + xdp_xmit_errors + unaccounted`, where
//! [`GenReport::unaccounted`] is non-zero only when the peer has no NAPI. The harness can
//! read them at any time with [`veth_xdp_stats`]. When the generator and the sink share a
//! core, the sink's NAPI runs in the generator's own softirq right after each batch of 64
//! and the ring never fills.
//!
//! # Cost, and the dispatcher
//!
//! Each `BPF_PROG_RUN` call in live mode puts the program into the kernel's XDP dispatcher
//! and takes it out again unless it is already there; that patches kernel text and waits
//! for RCU, tens of ms per call, and capped a first version at 0.6 Mpps with the generator
//! thread asleep 94 % of the time. The generator therefore also attaches its program to
//! its namespace's loopback (generic XDP, through a BPF link dropped with the run); the
//! program passes every frame whose ingress is not the generator's veth untouched. Only
//! one program fits on `lo`, so run each generator in its own namespace
//! ([`GenReport::dispatcher_pinned`] says whether it worked). Then a
//! call of 16k frames costs ~1.3 ms, about 80 ns per frame on this machine (≈ 12.5 Mpps
//! per CPU-second of the generator thread, sink included). `XDP_TX` and `bpf_redirect()`
//! to the same ifindex take the same kernel path; `XDP_TX` measured slightly faster.
//!
//! # Example
//!
//! ```no_run
//! # use vswitch_bench::wire::traffic::*;
//! # fn f() -> Result<(), TrafficError> {
//! let frame = Udp4Template {
//!     dst_mac: [0x02, 0, 0, 0, 1, 0],
//!     src_mac: [0x02, 0, 0, 0, 2, 0],
//!     src_ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
//!     dst_ip: std::net::Ipv4Addr::new(198, 19, 0, 1),
//!     src_port: 1024,
//!     dst_port: 9,
//!     frame_len: 66,
//! }
//! .build()?;
//! let mut sink = Sink::attach(&SinkConfig {
//!     netns: "/run/netns/sink".into(),
//!     ifname: "s0".into(),
//!     payload_offset: Udp4Template::PAYLOAD_OFFSET,
//!     latency_sample_every: 64,
//!     pass_other: false,
//! })?;
//! let generator = Generator::start(GenConfig {
//!     netns: "/run/netns/gen".into(),
//!     ifname: "g0".into(),
//!     core: Some(0),
//!     streams: vec![Stream { template: frame, weight: 1 }],
//!     payload_offset: Udp4Template::PAYLOAD_OFFSET,
//!     mac_fields: vec![Udp4Template::SRC_MAC_OFFSET],
//!     udp_sport_field: Some(Udp4Template::UDP_SPORT_OFFSET),
//!     flows: 1024,
//!     rate_pps: None,
//! })?;
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! let report = generator.stop()?;
//! let counters = sink.read()?;
//! let mut hist = hdrhistogram::Histogram::<u64>::new(3)
//!     .map_err(|e| TrafficError::Config(e.to_string()))?;
//! sink.drain_latency(&mut hist)?;
//! let dropped_at_peer = report.veth.map_or(0, |v| v.xdp_xmit_errors);
//! println!(
//!     "{} sent, {} dropped at the sink's ring, {} received, p99 {} ns",
//!     report.frames,
//!     dropped_at_peer,
//!     counters.test_frames,
//!     hist.value_at_quantile(0.99)
//! );
//! # Ok(()) }
//! ```

mod generator;
mod layout;
mod sink;
mod sys;
mod template;

use std::io;
use std::path::PathBuf;

pub use generator::{send_burst, GenConfig, GenReport, Generator, Stream, StreamReport};
pub use layout::{HEADER_LEN, MAGIC, MAX_CHECKED_FLOWS, MAX_FLOWS, MAX_MAC_FIELDS, MAX_OFFSET};
pub use sink::{veth_xdp_stats, Sink, SinkConfig, SinkCounters, VethXdpStats};
pub use template::Udp4Template;

/// The generator's BPF object (`bpf/gen.bpf.c`), built by `build.rs`.
static GEN_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gen.bpf.o"));
/// The sink's BPF object (`bpf/sink.bpf.c`), built by `build.rs`.
static SINK_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sink.bpf.o"));

/// Errors of the traffic generator and sink.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// A configuration that cannot work (offsets, lengths, counts).
    #[error("invalid traffic configuration: {0}")]
    Config(String),
    /// The network namespace could not be entered.
    #[error("cannot enter network namespace {}: {source}", path.display())]
    Netns {
        /// The namespace handle.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The interface does not exist in the namespace.
    #[error("no interface {ifname} in {}: {source}", netns.display())]
    Interface {
        /// The interface name.
        ifname: String,
        /// The namespace handle.
        netns: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The thread could not be pinned to the core.
    #[error("cannot pin the generator thread to core {0}")]
    Pin(usize),
    /// A BPF operation failed (load, map access, attach, test run).
    #[error("{what}: {source}")]
    Bpf {
        /// What was being done.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// A thread of the generator or sink could not be spawned, or panicked.
    #[error("traffic thread: {0}")]
    Thread(String),
    /// Reading an interface's statistics failed.
    #[error("interface statistics of {ifname}: {source}")]
    Stats {
        /// The interface name.
        ifname: String,
        /// Why.
        source: io::Error,
    },
}

impl TrafficError {
    pub(super) fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> TrafficError {
        let what = what.into();
        move |source| TrafficError::Bpf { what, source }
    }
}

/// Runs `f` on a fresh thread that has entered the network namespace at `netns`.
pub(super) fn in_netns<R: Send>(
    netns: &std::path::Path,
    f: impl FnOnce() -> Result<R, TrafficError> + Send,
) -> Result<R, TrafficError> {
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            sys::enter_netns(netns).map_err(|source| TrafficError::Netns {
                path: netns.to_path_buf(),
                source,
            })?;
            f()
        });
        h.join()
            .map_err(|_| TrafficError::Thread("thread inside the namespace panicked".into()))?
    })
}

/// Looks up `ifname` in the calling thread's namespace.
pub(super) fn ifindex_in(netns: &std::path::Path, ifname: &str) -> Result<u32, TrafficError> {
    sys::ifindex(ifname).map_err(|source| TrafficError::Interface {
        ifname: ifname.to_string(),
        netns: netns.to_path_buf(),
        source,
    })
}
