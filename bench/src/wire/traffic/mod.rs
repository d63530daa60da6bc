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
//! `BPF_PROG_RUN` itself never reports a frame it could not transmit; [`GenReport::frames`]
//! (and [`Generator::sent`]) count frames the program *ran on* and returned for
//! transmission. A frame redirected to a veth goes into the peer's XDP ring
//! (`veth_xdp_xmit`), and only if the peer has a NAPI instance: an XDP program attached
//! to the peer, or GRO on (`ethtool -K PEER gro on`). Findings on Linux 6.18:
//!
//! - Peer ring full (the receiver is slower): the frames are dropped and counted on the
//!   **generator's** veth as `ethtool -S` `xdp_xmit_errors` (and `tx_xdp_xmit_errors`? see
//!   [`VethXdpStats`]), read with [`veth_xdp_stats`]. So
//!   `generated = delivered + xdp_xmit_errors`.
//! - Peer without NAPI (no XDP program, GRO off) or down: every frame is dropped and
//!   **no counter** moves (`veth_xdp_xmit` returns an error before counting); only the
//!   tracepoint `xdp:xdp_devmap_xmit` sees it. The harness must make sure the peer has a
//!   NAPI; the sink has one through its program.
//!
//! # Example
//!
//! ```no_run
//! # use vswitch_bench::wire::traffic::*;
//! # fn f() -> Result<(), TrafficError> {
//! let frame = Udp4Template {
//!     dst_mac: [0x02, 0, 0, 0, 1, 0],
//!     src_mac: [0x02, 0, 0, 0, 2, 0],
//!     src_ip: "198.18.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
//!     dst_ip: "198.19.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
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
//! let gen = Generator::start(GenConfig {
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
//! let report = gen.stop()?;
//! let counters = sink.read()?;
//! let mut hist = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| TrafficError::Config(e.to_string()))?;
//! sink.drain_latency(&mut hist)?;
//! println!("{} sent, {} received", report.frames, counters.test_frames);
//! # Ok(()) }
//! ```

mod gen;
mod layout;
mod sink;
mod sys;
mod template;

use std::io;
use std::path::PathBuf;

pub use gen::{send_burst, GenConfig, GenReport, Generator, Stream, StreamReport};
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
    fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> TrafficError {
        let what = what.into();
        move |source| TrafficError::Bpf { what, source }
    }
}

/// Runs `f` on a fresh thread that has entered the network namespace at `netns`.
fn in_netns<R: Send>(
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
fn ifindex_in(netns: &std::path::Path, ifname: &str) -> Result<u32, TrafficError> {
    sys::ifindex(ifname).map_err(|source| TrafficError::Interface {
        ifname: ifname.to_string(),
        netns: netns.to_path_buf(),
        source,
    })
}
