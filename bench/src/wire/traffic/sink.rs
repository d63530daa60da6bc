//! The sink: an XDP program on the sink's veth that counts, checks order, samples
//! latency and drops.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder, RingBuffer};

use super::layout::{self, MAX_CHECKED_FLOWS, MAX_OFFSET, SINK_COUNTERS};
use super::{ifindex_in, in_netns, TrafficError, SINK_OBJ};

/// Where and how the sink counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// The namespace of the sink's interface: `/run/netns/NAME`.
    pub netns: PathBuf,
    /// The sink's interface (a veth) in that namespace.
    pub ifname: String,
    /// Offset of the test header in arriving frames (the generator's
    /// [`payload_offset`](super::GenConfig::payload_offset) plus whatever the switch
    /// under test adds or removes in front of it).
    pub payload_offset: usize,
    /// One latency sample per this many test frames (by sequence number); 0: none.
    pub latency_sample_every: u32,
    /// Pass frames that are not test frames to the stack (ARP, neighbour discovery)
    /// instead of dropping them.
    pub pass_other: bool,
}

/// The sink's counters, summed over CPUs. Frames and bytes as the XDP program sees them
/// (no FCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkCounters {
    /// All frames.
    pub frames: u64,
    /// Bytes of all frames.
    pub bytes: u64,
    /// Test frames (magic at the payload offset).
    pub test_frames: u64,
    /// Bytes of test frames.
    pub test_bytes: u64,
    /// Frames that are not test frames.
    pub other_frames: u64,
    /// Bytes of those.
    pub other_bytes: u64,
    /// Test frames whose sequence number was not above the highest seen in their flow
    /// (on the same CPU): reordered or duplicated.
    pub late: u64,
    /// Latency samples written to the ring buffer.
    pub latency_samples: u64,
    /// Latency samples lost because the ring buffer was full (drain more often).
    pub latency_lost: u64,
}

impl SinkCounters {
    /// The counters accumulated since `earlier` (saturating).
    pub fn since(&self, earlier: &SinkCounters) -> SinkCounters {
        SinkCounters {
            frames: self.frames.saturating_sub(earlier.frames),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            test_frames: self.test_frames.saturating_sub(earlier.test_frames),
            test_bytes: self.test_bytes.saturating_sub(earlier.test_bytes),
            other_frames: self.other_frames.saturating_sub(earlier.other_frames),
            other_bytes: self.other_bytes.saturating_sub(earlier.other_bytes),
            late: self.late.saturating_sub(earlier.late),
            latency_samples: self.latency_samples.saturating_sub(earlier.latency_samples),
            latency_lost: self.latency_lost.saturating_sub(earlier.latency_lost),
        }
    }
}

/// The attached sink program. Dropping it detaches the program.
pub struct Sink {
    // Field order is drop order: the ring buffer and link go before the object.
    ring: RingBuffer<'static>,
    samples: Arc<Mutex<Vec<u64>>>,
    _link: Link,
    counters: MapHandle,
    flow_seq: MapHandle,
    _obj: Object,
    cfg: SinkConfig,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Loads the sink program and attaches it natively to `cfg.ifname` in `cfg.netns`.
    /// Fails if another XDP program is attached there.
    pub fn attach(cfg: &SinkConfig) -> Result<Sink, TrafficError> {
        if cfg.payload_offset > MAX_OFFSET {
            return Err(TrafficError::Config(format!(
                "sink payload offset {} (at most {MAX_OFFSET})",
                cfg.payload_offset
            )));
        }
        let obj = ObjectBuilder::default()
            .open_memory(SINK_OBJ)
            .and_then(|o| o.load())
            .map_err(TrafficError::bpf("load the sink program"))?;
        let map = |name: &str| -> Result<MapHandle, TrafficError> {
            let m = obj
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| TrafficError::Config(format!("no map {name} in sink.bpf.o")))?;
            MapHandle::try_from(&m).map_err(TrafficError::bpf(format!("handle of map {name}")))
        };
        map("sink_config")?
            .update(
                &0u32.to_ne_bytes(),
                &layout::sink_config_bytes(
                    cfg.payload_offset as u32,
                    cfg.latency_sample_every,
                    cfg.pass_other,
                ),
                MapFlags::ANY,
            )
            .map_err(TrafficError::bpf("write sink_config"))?;
        let counters = map("sink_counters")?;
        let flow_seq = map("sink_flow_seq")?;
        let latency = map("sink_latency")?;

        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut rb = libbpf_rs::RingBufferBuilder::new();
        {
            let samples = Arc::clone(&samples);
            rb.add(&latency, move |rec: &[u8]| {
                if let (Some((lat, _seq)), Ok(mut v)) = (layout::lat_sample(rec), samples.lock()) {
                    v.push(lat);
                }
                0
            })
            .map_err(TrafficError::bpf("latency ring buffer"))?;
        }
        let ring = rb
            .build()
            .map_err(TrafficError::bpf("latency ring buffer"))?;

        // The link is made inside the namespace (the ifindex is looked up there); closing
        // it later detaches the program from wherever the process is.
        let obj_ref = &obj;
        let link = in_netns(&cfg.netns, || {
            let prog = obj_ref
                .progs_mut()
                .find(|p| p.name() == "traffic_sink")
                .ok_or_else(|| {
                    TrafficError::Config("no program traffic_sink in sink.bpf.o".into())
                })?;
            let ifindex = ifindex_in(&cfg.netns, &cfg.ifname)?;
            prog.attach_xdp(ifindex as i32)
                .map_err(TrafficError::bpf(format!(
                    "attach the sink to {}",
                    cfg.ifname
                )))
        })?;
        Ok(Sink {
            ring,
            samples,
            _link: link,
            counters,
            flow_seq,
            _obj: obj,
            cfg: cfg.clone(),
        })
    }

    /// The counters, summed over CPUs.
    pub fn read(&self) -> Result<SinkCounters, TrafficError> {
        let per_cpu = self
            .counters
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(TrafficError::bpf("read sink_counters"))?
            .unwrap_or_default();
        let mut sum = [0u64; SINK_COUNTERS];
        for v in &per_cpu {
            let c = layout::sink_counters(v)
                .ok_or_else(|| TrafficError::Config("short sink_counters value".into()))?;
            for (s, x) in sum.iter_mut().zip(c) {
                *s += x;
            }
        }
        let [frames, bytes, test_frames, test_bytes, other_frames, other_bytes, late, latency_samples, latency_lost] =
            sum;
        Ok(SinkCounters {
            frames,
            bytes,
            test_frames,
            test_bytes,
            other_frames,
            other_bytes,
            late,
            latency_samples,
            latency_lost,
        })
    }

    /// Moves the latency samples waiting in the ring buffer into `into` (an auto-resizing
    /// histogram grows; in a bounded one, values above its highest trackable value are
    /// recorded as that value). Returns how many were moved.
    /// Call it often enough that the 16 MiB ring (699,050 samples of 24 bytes with their
    /// headers) does not fill: at 1 in 64 that is 44.7 M frames, 5.6 s at 8 Mpps. Once
    /// full, later samples are lost (counted in [`SinkCounters::latency_lost`]) and the
    /// histogram only describes the start of the run, so drain it periodically (e.g.
    /// every 100 ms) during long or fast runs.
    pub fn drain_latency(&mut self, into: &mut Histogram<u64>) -> Result<u64, TrafficError> {
        self.ring
            .consume()
            .map_err(TrafficError::bpf("consume the latency ring buffer"))?;
        let mut v = self
            .samples
            .lock()
            .map_err(|_| TrafficError::Thread("latency sample buffer poisoned".into()))?;
        for &lat in v.iter() {
            // `record` grows an auto-resizing histogram; a bounded one clamps.
            if into.record(lat).is_err() {
                into.saturating_record(lat);
            }
        }
        let n = v.len() as u64;
        v.clear();
        Ok(n)
    }

    /// How many of the flows `0..flows` (at most [`MAX_CHECKED_FLOWS`]) the sink has seen
    /// a test frame of. One map lookup per flow: for tests and checks, not for the
    /// measurement loop.
    pub fn flows_seen(&self, flows: u32) -> Result<u32, TrafficError> {
        let mut seen = 0;
        for flow in 0..flows.min(MAX_CHECKED_FLOWS) {
            let per_cpu = self
                .flow_seq
                .lookup_percpu(&flow.to_ne_bytes(), MapFlags::ANY)
                .map_err(TrafficError::bpf("read sink_flow_seq"))?
                .unwrap_or_default();
            if per_cpu.iter().any(|v| v.iter().any(|&b| b != 0)) {
                seen += 1;
            }
        }
        Ok(seen)
    }

    /// Forgets the highest sequence number seen of the flows `0..flows` (at most
    /// [`MAX_CHECKED_FLOWS`]): call it before each generator run. Every run numbers its
    /// frames from its own start time, and the sink compares 32-bit sequence numbers, so
    /// a flow's maximum left from an earlier run would make a later run's frames look
    /// reordered about half the time.
    pub fn reset_flows(&self, flows: u32) -> Result<(), TrafficError> {
        let cpus =
            libbpf_rs::num_possible_cpus().map_err(TrafficError::bpf("count the possible CPUs"))?;
        let zero: Vec<Vec<u8>> = vec![vec![0u8; 8]; cpus];
        for flow in 0..flows.min(MAX_CHECKED_FLOWS) {
            self.flow_seq
                .update_percpu(&flow.to_ne_bytes(), &zero, MapFlags::ANY)
                .map_err(TrafficError::bpf("reset sink_flow_seq"))?;
        }
        Ok(())
    }

    /// The sink's configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }
}

/// The XDP counters of a veth (`ethtool -S`), summed over queues. On the *sending*
/// veth, `xdp_xmit_errors` counts frames redirected to it (the generator's `XDP_TX`, a
/// switch's redirect) that its peer's ring had no room for: lost frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VethXdpStats {
    /// Frames sent into the peer's XDP ring by `ndo_xdp_xmit` (`tx_queue_*_xdp_xmit`).
    pub xdp_xmit: u64,
    /// Frames `ndo_xdp_xmit` could not put into the peer's ring and dropped
    /// (`tx_queue_*_xdp_xmit_errors`).
    pub xdp_xmit_errors: u64,
    /// Frames this veth received through its own XDP path (`rx_queue_*_xdp_packets`).
    pub rx_xdp_packets: u64,
    /// Frames of this veth's receive path dropped by XDP (`rx_queue_*_xdp_drops`).
    pub rx_xdp_drops: u64,
    /// Frames this veth's XDP program sent with XDP_TX that failed (`rx_queue_*_xdp_tx_errors`).
    pub rx_xdp_tx_errors: u64,
}

impl VethXdpStats {
    /// The counters accumulated since `earlier` (saturating).
    pub fn since(&self, earlier: &VethXdpStats) -> VethXdpStats {
        VethXdpStats {
            xdp_xmit: self.xdp_xmit.saturating_sub(earlier.xdp_xmit),
            xdp_xmit_errors: self.xdp_xmit_errors.saturating_sub(earlier.xdp_xmit_errors),
            rx_xdp_packets: self.rx_xdp_packets.saturating_sub(earlier.rx_xdp_packets),
            rx_xdp_drops: self.rx_xdp_drops.saturating_sub(earlier.rx_xdp_drops),
            rx_xdp_tx_errors: self
                .rx_xdp_tx_errors
                .saturating_sub(earlier.rx_xdp_tx_errors),
        }
    }
}

/// Reads `ethtool -S IFNAME` inside `netns` and sums the XDP counters over queues.
pub fn veth_xdp_stats(netns: &Path, ifname: &str) -> Result<VethXdpStats, TrafficError> {
    in_netns(netns, || veth_xdp_stats_here(ifname))
}

/// [`veth_xdp_stats`] in the calling thread's namespace (`ethtool` runs as a child of
/// this thread, so in its namespace).
pub(super) fn veth_xdp_stats_here(ifname: &str) -> Result<VethXdpStats, TrafficError> {
    let err = |source| TrafficError::Stats {
        ifname: ifname.to_string(),
        source,
    };
    let out = Command::new("ethtool")
        .args(["-S", ifname])
        .stdin(Stdio::null())
        .output()
        .map_err(err)?;
    if !out.status.success() {
        return Err(err(std::io::Error::other(format!(
            "ethtool -S {ifname}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let stats = parse_ethtool(&text);
    let sum = |pre: &str, suf: &str| -> u64 {
        stats
            .iter()
            .filter(|(k, _)| k.starts_with(pre) && k.ends_with(suf))
            .map(|(_, v)| *v)
            .sum()
    };
    Ok(VethXdpStats {
        xdp_xmit: sum("tx_queue_", "_xdp_xmit"),
        xdp_xmit_errors: sum("tx_queue_", "_xdp_xmit_errors"),
        rx_xdp_packets: sum("rx_queue_", "_xdp_packets"),
        rx_xdp_drops: sum("rx_queue_", "_xdp_drops"),
        rx_xdp_tx_errors: sum("rx_queue_", "_xdp_tx_errors"),
    })
}

/// `name: value` lines of `ethtool -S`.
fn parse_ethtool(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_can_move_between_threads() {
        fn send<T: Send>() {}
        send::<Sink>();
        send::<super::super::Generator>();
    }

    #[test]
    fn ethtool_parsed() {
        let s =
            parse_ethtool("NIC statistics:\n     peer_ifindex: 5\n     tx_queue_0_xdp_xmit: 12\n");
        assert_eq!(s.get("peer_ifindex"), Some(&5));
        assert_eq!(s.get("tx_queue_0_xdp_xmit"), Some(&12));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn counters_since() {
        let a = SinkCounters {
            frames: 10,
            late: 1,
            ..Default::default()
        };
        let b = SinkCounters {
            frames: 25,
            late: 1,
            ..Default::default()
        };
        assert_eq!(b.since(&a).frames, 15);
        assert_eq!(b.since(&a).late, 0);
    }
}
