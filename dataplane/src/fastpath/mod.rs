//! The XDP fast path: established known-unicast flows forwarded inside the kernel, the
//! AF_XDP workers keep the rest.
//!
//! # How the work is shared
//!
//! One XDP program (`bpf/fastpath.bpf.c`) is attached to every AF_XDP port instead of
//! libxdp's redirect program. For each frame it looks up the flow — (ingress port, how
//! the frame is tagged, destination MAC), the flow cache's key — in `fp_flows`. On a
//! valid entry it checks the source MAC against the port the FDB has it on
//! (`fp_macs`), applies the 802.1Q rewrite and redirects the frame through a devmap to
//! the egress port: the frame never leaves the kernel. Everything else goes to the
//! port's AF_XDP socket as before: unknown destinations, floods, ARP, new or moved
//! sources, port security, captures, tunnels, anything unusual.
//!
//! Entries come from the workers: a worker that forwarded a frame to one known port
//! *offers* the decision (a lock-free queue, at most once per flow per 100 ms); the
//! agent thread ([`FastPath::spawn_agent`]) installs it with the generations it was
//! taken under.
//!
//! # Why the fast path never forwards a frame where the workers would not
//!
//! Every entry carries the generation of its network's local VLAN and of the
//! configuration, read by the worker when it offered the decision. The generations
//! live in memory shared with the program ([`SharedGens`]): every FDB replica bumps the
//! VLAN's before it applies a change that can alter a decision there (a new MAC, a
//! move, an aged or flushed entry, a static entry), and the control thread sets the
//! configuration's before new tables reach the workers. The program compares them on
//! every frame, so an entry is dead from the moment its decision may have changed, and
//! the frames go to the workers until they offer the new decision. An entry also
//! expires when the destination's FDB entry would age.
//!
//! Learning stays in the workers: a frame whose source is unknown to the fast path or
//! on another port (a move) is punted, and so is one frame per source per refresh
//! period (a quarter of the aging time), which refreshes the source in the FDB; the
//! program records the last hit of each entry (`ctl fastpath show`).
//!
//! Frames the workers would change or drop are punted too: partial TCP/UDP checksums
//! (a peer's TX offload; the workers complete them), frames that need padding, frames
//! over the egress port's MTU, priority-tagged and double-tagged frames.

mod abi;
mod shm;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use encap::MacAddr;
use flowtable::PortId;
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};
use serde::{Deserialize, Serialize};

use abi::{FlowKey, FpPort, Mac, MacKey, FP_MAX_FLOWS, FP_MAX_MACS, FP_MAX_QUEUES};
pub use abi::{Op, Tun, COUNTERS, FP_HDR_MAX};
pub use shm::SharedGens;

/// The compiled program (`build.rs`).
static FASTPATH_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fastpath.bpf.o"));

/// The program's name, as the kernel reports it for an attached program.
pub const PROG_NAME: &str = "vswitch_fp";

/// Offers one worker may have waiting.
const QUEUE_SIZE: usize = 4096;
/// A worker offers the same flow again at most this often (unless its generations
/// changed).
const REOFFER_NS: u64 = 100_000_000;

/// The first wait before a port that refused redirected frames is tried again.
const REFUSED_RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait: a port whose peer never takes redirected frames loses the frames of
/// one check period (100 ms) this often.
const REFUSED_RETRY_MAX: Duration = Duration::from_secs(64);
/// A refusal this long after the last retry starts the backoff again from the shortest.
const REFUSED_QUIET: Duration = Duration::from_secs(300);

/// A worker's known-unicast decision, offered to the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// Ingress port (for a decapsulated frame, the remote VTEP's tunnel port).
    pub in_port: PortId,
    /// How the frame arrives: [`seg_tagged`], [`seg_vni`], a GRE key (with `gre`) or 0
    /// (untagged).
    pub seg: u32,
    /// Decapsulated from GRE: `seg` is the key.
    pub gre: bool,
    /// Destination MAC.
    pub dst: MacAddr,
    /// Egress port.
    pub out_port: PortId,
    /// The rewrite.
    pub op: Op,
    /// VID pushed or written.
    pub vid_out: u16,
    /// The network's local VLAN.
    pub vlan: u16,
    /// Its generation when the decision was taken.
    pub vlan_gen: u64,
    /// The tables' generation the decision was taken with.
    pub cfg_gen: u64,
    /// When the destination's FDB entry ages (workers' clock).
    pub expires: u64,
    /// The source MAC, known on `in_port` (None: not learned there).
    pub src: Option<MacAddr>,
    /// Encap: the tunnel's VNI or key, its tunnel port (counters), the largest inner frame
    /// the underlay takes, the outer headers' template and the neighbours' generation
    /// it was built under.
    pub tunnel: Option<EncapOffer>,
}

/// The encapsulation part of an [`Offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapOffer {
    /// VNI or GRE key.
    pub vni: u32,
    /// The remote VTEP's tunnel port.
    pub tunnel_port: PortId,
    /// Largest inner frame (Ethernet header included) that fits the underlay MTU.
    pub max_inner: u32,
    /// VXLAN or GRE, over IPv4 or IPv6.
    pub tun: Tun,
    /// The template ([`encap::tunnel::VxlanTemplate::header`],
    /// [`encap::tunnel::GreTemplate::header`]): `tun.hdr_len()` bytes.
    pub hdr: [u8; abi::FP_HDR_MAX],
    /// The neighbours' generation when the template was read.
    pub neigh_gen: u64,
}

/// [`Offer::seg`] of a frame tagged `vid`.
pub fn seg_tagged(vid: u16) -> u32 {
    abi::FP_SEG_TAGGED | u32::from(vid & 0x0fff)
}

/// [`Offer::seg`] of a frame decapsulated from VNI `vni`.
pub fn seg_vni(vni: u32) -> u32 {
    abi::FP_SEG_VNI | (vni & 0x00ff_ffff)
}

/// What the program needs of the underlay to decapsulate: the local VTEP and the remote
/// VTEPs' tunnel ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderlayInfo {
    /// The underlay port.
    pub port: PortId,
    /// Local VTEP address.
    pub local_ip: core::net::IpAddr,
    /// Underlay MAC.
    pub local_mac: MacAddr,
    /// VXLAN UDP port.
    pub vxlan_port: u16,
    /// Remote VTEPs: address and tunnel port.
    pub vteps: Vec<(core::net::IpAddr, PortId)>,
}

/// Counters of the fast path: the program's (summed over CPUs) and the agent's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastPathStats {
    /// The program's counters by name ([`COUNTERS`]).
    pub program: Vec<(String, u64)>,
    /// Flow entries installed.
    pub flows: u64,
    /// Source MAC entries installed.
    pub macs: u64,
    /// Decisions the workers offered.
    pub offers: u64,
    /// Offers lost to a full queue.
    pub offers_dropped: u64,
    /// Offers stale on arrival (a generation moved meanwhile).
    pub offers_stale: u64,
    /// Entries written into the maps.
    pub installs: u64,
    /// Map writes that failed (a full map).
    pub install_errors: u64,
    /// Times a port refused redirected frames (and was left to the workers).
    #[serde(default)]
    pub refused_ports: u64,
}

impl FastPathStats {
    /// The program's counter `name`.
    pub fn get(&self, name: &str) -> u64 {
        self.program
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v)
    }
}

/// One port of the fast path, for `ctl fastpath show`: whether frames may be
/// redirected to it, and whether its devmap entry says the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRow {
    /// Port number (the devmap's key).
    pub port: u16,
    /// Its netdev.
    pub ifname: String,
    /// `redirect`, or why not: `captured`, `down`, `refused` (with the seconds left
    /// before the next try).
    pub state: String,
    /// The devmap holds it (redirects to it are possible).
    pub in_devmap: bool,
}

/// One flow entry, for `ctl fastpath show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    /// Ingress port number (a tunnel port for decapsulated frames).
    pub in_port: u16,
    /// VID the frame arrives with (None: untagged).
    pub vid_in: Option<u16>,
    /// VNI it arrives with (decapsulated).
    #[serde(default)]
    pub vni_in: Option<u32>,
    /// VNI it leaves with (encapsulated).
    #[serde(default)]
    pub vni_out: Option<u32>,
    /// GRE key it arrives with (decapsulated).
    #[serde(default)]
    pub gre_key_in: Option<u32>,
    /// GRE key it leaves with (encapsulated).
    #[serde(default)]
    pub gre_key_out: Option<u32>,
    /// Destination MAC.
    pub dst: String,
    /// Egress port number.
    pub out_port: u16,
    /// The rewrite.
    pub op: String,
    /// VID pushed or written.
    pub vid_out: Option<u16>,
    /// The network's local VLAN.
    pub vlan: u16,
    /// Valid (its generations current, not expired).
    pub valid: bool,
    /// Seconds since the program last forwarded a frame with it (None: never).
    pub idle_secs: Option<f64>,
}

/// Errors of loading or using the fast path.
#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    /// libbpf refused (load, verifier, map access).
    #[error("XDP fast path: {what}: {source}")]
    Bpf {
        /// What was being done.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
    /// A system call failed.
    #[error("XDP fast path: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> FastPathError {
    let what = what.into();
    move |source| FastPathError::Bpf { what, source }
}

/// A port as the fast path knows it.
#[derive(Debug)]
struct PortReg {
    ifindex: u32,
    ifname: String,
    /// Longest frame it sends (MTU + Ethernet header + one tag).
    max_len: u32,
    /// Captured: its frames go to the workers until the capture ends.
    tapped: Option<Weak<()>>,
    /// The underlay port.
    underlay: bool,
    /// Down or without carrier: frames for it go to the workers (which count them).
    down: bool,
    /// It refused redirected frames (a veth whose peer has no NAPI): frames for it go
    /// to the workers until `retry_at` (or the next reconfiguration).
    refused: bool,
    /// When a refused port gets redirected frames again.
    retry_at: Option<Instant>,
    /// When it last got them again after a refusal.
    retried_at: Option<Instant>,
    /// The wait before the next retry: doubled at every refusal after a retry, from
    /// [`REFUSED_RETRY_MIN`] up to [`REFUSED_RETRY_MAX`].
    backoff: Duration,
    /// `fp_xmit_errors` for it when last read.
    xmit_errors: u64,
}

impl PortReg {
    /// Frames may be redirected to it.
    fn egress(&self) -> bool {
        self.tapped.is_none() && !self.down && !self.refused
    }

    /// It refused redirected frames at `now`: not an egress until the returned wait
    /// has passed. A refusal soon after a retry waits twice as long as the last one;
    /// one after a quiet period starts again from the shortest.
    fn refuse(&mut self, now: Instant) -> Duration {
        if self
            .retried_at
            .is_none_or(|t| now.duration_since(t) >= REFUSED_QUIET)
        {
            self.backoff = REFUSED_RETRY_MIN;
        }
        let wait = self.backoff;
        self.refused = true;
        self.retry_at = Some(now + wait);
        self.backoff = (wait * 2).min(REFUSED_RETRY_MAX);
        wait
    }

    /// A reconfiguration tries it again at once, with the backoff from the shortest.
    fn forgive(&mut self) {
        self.refused = false;
        self.retry_at = None;
        self.backoff = REFUSED_RETRY_MIN;
    }

    /// Whether a refused port's wait is over at `now`: then it is an egress again.
    fn retry_due(&mut self, now: Instant) -> bool {
        if !self.refused || self.retry_at.is_none_or(|t| now < t) {
            return false;
        }
        self.refused = false;
        self.retry_at = None;
        self.retried_at = Some(now);
        true
    }
}

/// What is installed, as the agent wrote it (the maps' own copy of the decisions).
#[derive(Debug, Default)]
struct Mirror {
    flows: HashMap<FlowKey, abi::Flow>,
    macs: HashMap<MacKey, Mac>,
}

/// The agent's counters.
#[derive(Debug, Default)]
struct AgentCounters {
    offers: AtomicU64,
    offers_dropped: AtomicU64,
    offers_stale: AtomicU64,
    installs: AtomicU64,
    install_errors: AtomicU64,
    refused_ports: AtomicU64,
}

/// The loaded program and its maps, shared by the ports (attach), the workers (offers,
/// generations) and the control thread (counters, `ctl fastpath show`).
pub struct FastPath {
    obj: Object,
    xsks: MapHandle,
    devs: MapHandle,
    ports_map: MapHandle,
    flows: MapHandle,
    macs: MapHandle,
    config: MapHandle,
    stats: MapHandle,
    port_stats: MapHandle,
    xmit_errors: MapHandle,
    /// The tracepoint program that counts refused redirects (none if it could not be
    /// attached: then a refusing port is not detected).
    xmit_link: Mutex<Option<Link>>,
    vteps: MapHandle,
    vteps6: MapHandle,
    /// The decapsulation side, as last set.
    underlay: Mutex<Option<UnderlayInfo>>,
    refresh_ns: u64,
    gens: Arc<SharedGens>,
    /// CLOCK_MONOTONIC at the workers' clock's zero.
    mono_epoch: AtomicU64,
    ports: Mutex<HashMap<PortId, PortReg>>,
    mirror: Mutex<Mirror>,
    queues: Mutex<Vec<Arc<ArrayQueue<Offer>>>>,
    counters: Arc<AgentCounters>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath").finish_non_exhaustive()
    }
}

/// CLOCK_MONOTONIC in ns (the clock of `bpf_ktime_get_ns` and of `Instant`).
pub fn mono_now() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |ts| {
        (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64
    })
}

impl FastPath {
    /// Loads the program and its maps (nothing is attached yet). `aging` is the FDB's
    /// aging time: a source is punted for a refresh every quarter of it.
    pub fn load(aging: Duration) -> Result<Arc<FastPath>, FastPathError> {
        let open = ObjectBuilder::default()
            .open_memory(FASTPATH_OBJ)
            .map_err(bpf("open the BPF object"))?;
        let obj = open.load().map_err(bpf("load the XDP program"))?;
        let handle = |name: &str| -> Result<MapHandle, FastPathError> {
            let m = obj
                .maps()
                .find(|m| m.name() == name)
                .ok_or_else(|| FastPathError::Io {
                    what: format!("map {name}"),
                    source: io::Error::from(io::ErrorKind::NotFound),
                })?;
            MapHandle::try_from(&m).map_err(bpf(format!("map {name}")))
        };
        let gens_map = handle("fp_gens")?;
        let gens = SharedGens::map(gens_map.as_fd()).map_err(|source| FastPathError::Io {
            what: "map the generations".into(),
            source,
        })?;
        let fp = FastPath {
            xsks: handle("fp_xsks")?,
            devs: handle("fp_devs")?,
            ports_map: handle("fp_ports")?,
            flows: handle("fp_flows")?,
            macs: handle("fp_macs")?,
            config: handle("fp_config")?,
            stats: handle("fp_stats")?,
            port_stats: handle("fp_port_stats")?,
            xmit_errors: handle("fp_xmit_errors")?,
            xmit_link: Mutex::new(None),
            vteps: handle("fp_vteps")?,
            vteps6: handle("fp_vteps6")?,
            underlay: Mutex::new(None),
            refresh_ns: u64::try_from(aging.as_nanos() / 4)
                .unwrap_or(u64::MAX)
                .max(1),
            obj,
            gens: Arc::new(gens),
            mono_epoch: AtomicU64::new(mono_now()),
            ports: Mutex::new(HashMap::new()),
            mirror: Mutex::new(Mirror::default()),
            queues: Mutex::new(Vec::new()),
            counters: Arc::default(),
        };
        fp.write_config(None)
            .map_err(bpf("write the configuration"))?;
        let link = fp
            .obj
            .progs_mut()
            .find(|p| p.name() == "vswitch_fp_xmit")
            .map(|p| p.attach());
        match link {
            Some(Ok(l)) => *fp.xmit_link.lock().unwrap_or_else(|e| e.into_inner()) = Some(l),
            Some(Err(e)) => tracing::warn!(
                error = %e,
                "fast path: the xdp_devmap_xmit tracepoint could not be attached ({e}): a port \
                 that refuses redirected frames (a veth whose peer has no NAPI) will not be \
                 detected"
            ),
            None => {}
        }
        Ok(Arc::new(fp))
    }

    fn write_config(&self, u: Option<&UnderlayInfo>) -> Result<(), libbpf_rs::Error> {
        let c = abi::Config {
            refresh_ns: self.refresh_ns,
            local_ip: u.and_then(|u| match u.local_ip {
                core::net::IpAddr::V4(ip) => Some(ip),
                core::net::IpAddr::V6(_) => None,
            }),
            local_ip6: u.and_then(|u| match u.local_ip {
                core::net::IpAddr::V6(ip) => Some(ip),
                core::net::IpAddr::V4(_) => None,
            }),
            vxlan_port: u.map_or(0, |u| u.vxlan_port),
            local_mac: u.map_or(MacAddr::ZERO, |u| u.local_mac),
        };
        self.config
            .update(&0u32.to_ne_bytes(), &c.encode(), MapFlags::ANY)
    }

    /// The map of the remote VTEPs of `ip`'s family.
    fn vteps_map(&self, ip: core::net::IpAddr) -> &MapHandle {
        if ip.is_ipv4() {
            &self.vteps
        } else {
            &self.vteps6
        }
    }

    /// Sets what decapsulation needs (`None`: no underlay, nothing is
    /// decapsulated in the kernel). Called at start and before a reconfiguration's
    /// tables reach the workers.
    pub fn set_underlay(&self, u: Option<UnderlayInfo>) {
        let old = std::mem::replace(
            &mut *self.underlay.lock().unwrap_or_else(|e| e.into_inner()),
            u.clone(),
        );
        if let Some(o) = &old {
            for (ip, _) in &o.vteps {
                let _ = self.vteps_map(*ip).delete(&abi::vtep_key(*ip));
            }
        }
        if let Err(e) = self.write_config(u.as_ref()) {
            tracing::warn!(error = %e, "fast path: the underlay could not be written ({e})");
        }
        if let Some(u) = &u {
            for (ip, port) in &u.vteps {
                let _ = self.vteps_map(*ip).update(
                    &abi::vtep_key(*ip),
                    &u32::from(port.0).to_ne_bytes(),
                    MapFlags::ANY,
                );
            }
        }
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<PortId> = ports.keys().copied().collect();
        for id in ids {
            if let Some(r) = ports.get_mut(&id) {
                r.underlay = u.as_ref().is_some_and(|u| u.port == id);
            }
            let _ = self.write_port(id, &ports);
        }
    }

    /// The generations the program checks (the FDB replicas' [`flowtable::GenSink`]).
    pub fn gens(&self) -> Arc<SharedGens> {
        Arc::clone(&self.gens)
    }

    /// Sets where the workers' clock starts: `epoch` is its zero.
    pub fn set_epoch(&self, epoch: Instant) {
        let elapsed = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(0);
        self.mono_epoch
            .store(mono_now().saturating_sub(elapsed), Ordering::Relaxed);
    }

    /// The configuration's generation is now `g`: every entry taken under another is
    /// stale from now on. Called before tables of generation `g` reach the workers.
    pub fn set_generation(&self, g: u64) {
        self.gens.set_cfg(g);
        // A reconfiguration tries the ports that refused redirected frames again.
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let retry: Vec<PortId> = ports
            .iter_mut()
            .filter(|(_, r)| r.refused)
            .map(|(&id, r)| {
                r.forgive();
                id
            })
            .collect();
        for id in retry {
            let _ = self.write_port(id, &ports);
        }
    }

    /// A worker's end of the offer queue.
    pub fn hook(&self) -> FastHook {
        let q = Arc::new(ArrayQueue::new(QUEUE_SIZE));
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&q));
        FastHook {
            gens: Arc::clone(&self.gens),
            queue: q,
            counters: Arc::clone(&self.counters),
            recent: vec![Recent::default(); RECENT_SLOTS].into_boxed_slice(),
        }
    }

    /// Attaches the program to `ifindex`, switch port `id` whose MTU is `mtu`, and
    /// registers it (native XDP, through a BPF link: a crashed process leaves nothing
    /// attached). The port is forgotten and the program detached when the returned
    /// handle drops.
    pub fn attach(
        self: &Arc<Self>,
        ifname: &str,
        ifindex: u32,
        id: PortId,
        mtu: u32,
    ) -> io::Result<FastPort> {
        if u32::from(id.0) >= abi::FP_MAX_PORTS {
            return Err(io::Error::other(format!(
                "port number {id} is beyond the fast path's {}",
                abi::FP_MAX_PORTS
            )));
        }
        let prog = self
            .obj
            .progs_mut()
            .find(|p| p.name() == PROG_NAME)
            .ok_or_else(|| io::Error::other("no program vswitch_fp"))?;
        let link = prog
            .attach_xdp(ifindex as i32)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let xmit_errors = self
            .xmit_errors
            .lookup(&ifindex.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|b| Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?)))
            .unwrap_or(0);
        let reg = PortReg {
            ifindex,
            ifname: ifname.to_string(),
            max_len: mtu + 18,
            tapped: None,
            underlay: self
                .underlay
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|u| u.port == id),
            down: false,
            refused: false,
            retry_at: None,
            retried_at: None,
            backoff: REFUSED_RETRY_MIN,
            xmit_errors,
        };
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.insert(id, reg);
        self.write_port(id, &ports)?;
        Ok(FastPort {
            fp: Arc::clone(self),
            id,
            ifindex,
            _link: Some(link),
        })
    }

    /// Writes port `id`'s entries (`fp_ports`, `fp_devs`) as `ports` has it.
    fn write_port(&self, id: PortId, ports: &HashMap<PortId, PortReg>) -> io::Result<()> {
        let Some(r) = ports.get(&id) else {
            return Ok(());
        };
        let p = FpPort {
            id: u32::from(id.0),
            xsk_base: u32::from(id.0) * FP_MAX_QUEUES,
            flags: match (r.tapped.is_none(), r.underlay) {
                (false, _) => 0,
                (true, false) => abi::FP_PORT_FAST,
                (true, true) => abi::FP_PORT_FAST | abi::FP_PORT_UNDERLAY,
            },
        };
        let io = |e: libbpf_rs::Error| io::Error::other(e.to_string());
        self.ports_map
            .update(&r.ifindex.to_ne_bytes(), &p.encode(), MapFlags::ANY)
            .map_err(io)?;
        let key = u32::from(id.0).to_ne_bytes();
        if r.egress() {
            self.devs
                .update(&key, &r.ifindex.to_ne_bytes(), MapFlags::ANY)
                .map_err(io)?;
        } else {
            let _ = self.devs.delete(&key);
        }
        Ok(())
    }

    /// Points XSKMAP entry (`id`, `queue`) at the AF_XDP socket `fd`.
    pub fn insert_socket(&self, id: PortId, queue: u32, fd: RawFd) -> io::Result<()> {
        if queue >= FP_MAX_QUEUES {
            return Err(io::Error::other(format!(
                "queue {queue} is beyond the fast path's {FP_MAX_QUEUES} per port"
            )));
        }
        let key = u32::from(id.0) * FP_MAX_QUEUES + queue;
        self.xsks
            .update(
                &key.to_ne_bytes(),
                &(fd as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Port `id` is being captured: its frames (in and out) take the workers until
    /// `session` is dropped.
    pub fn tap(&self, id: PortId, session: Weak<()>) {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = ports.get_mut(&id) {
            r.tapped = Some(session);
            if let Err(e) = self.write_port(id, &ports) {
                tracing::warn!(port = %id, error = %e, "fast path: could not exclude a captured port: {e}");
            }
        }
    }

    fn forget_port(&self, id: PortId, ifindex: u32) {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if ports.get(&id).is_some_and(|r| r.ifindex == ifindex) {
            ports.remove(&id);
            let _ = self.devs.delete(&u32::from(id.0).to_ne_bytes());
        }
        // A netdev that came back may already have this index again (and its port its
        // entry): only an index no port has is forgotten.
        if !ports.values().any(|r| r.ifindex == ifindex) {
            let _ = self.ports_map.delete(&ifindex.to_ne_bytes());
        }
    }

    /// Starts the agent: installs the workers' offers, removes entries that went stale,
    /// ends captures' exclusions; until `stop`.
    pub fn spawn_agent(self: &Arc<Self>, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
        let fp = Arc::clone(self);
        std::thread::Builder::new()
            .name("vswitch-fastpath".into())
            .spawn(move || fp.agent(&stop))
    }

    fn agent(&self, stop: &AtomicBool) {
        let mut last_gc = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut n = 0;
            // Taken only by `hook` (at start) besides here.
            for q in self.queues.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                while let Some(o) = q.pop() {
                    self.install(&o);
                    n += 1;
                }
            }
            if last_gc.elapsed() >= Duration::from_millis(100) {
                last_gc = Instant::now();
                self.untap_ended();
                self.check_egress();
                self.gc();
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Stops redirecting to ports that are down or refused redirected frames, and
    /// starts again when they are back up.
    ///
    /// A refusal is often transient (the peer's NAPI comes with its GRO or XDP program,
    /// which may be set after the port was opened), so a refused port is tried again
    /// after a backoff that doubles at each refusal (1 s up to 64 s): the frames
    /// redirected to a port that still refuses are lost once per retry.
    fn check_egress(&self) {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let mut changed = Vec::new();
        let now = Instant::now();
        for (&id, r) in ports.iter_mut() {
            if r.retry_due(now) {
                changed.push(id);
                tracing::info!(
                    ifname = %r.ifname,
                    "fast path: trying to redirect to {} again",
                    r.ifname
                );
            }
            let down = !crate::xsk::netdev_running(&r.ifname).unwrap_or(false);
            if down != r.down {
                r.down = down;
                changed.push(id);
            }
            let errors = self
                .xmit_errors
                .lookup(&r.ifindex.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|b| Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?)))
                .unwrap_or(0);
            if errors > r.xmit_errors {
                r.xmit_errors = errors;
                if !r.refused {
                    let wait = r.refuse(now);
                    changed.push(id);
                    self.counters.refused_ports.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        ifname = %r.ifname,
                        "fast path: {} refused redirected frames (a veth whose peer has no \
                         NAPI: `ethtool -K PEER gro on`); frames for it go through the workers, \
                         the fast path tries it again in {:?}",
                        r.ifname,
                        wait
                    );
                }
            }
        }
        for id in changed {
            let _ = self.write_port(id, &ports);
        }
    }

    fn untap_ended(&self) {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let ended: Vec<PortId> = ports
            .iter_mut()
            .filter(|(_, r)| r.tapped.as_ref().is_some_and(|w| w.strong_count() == 0))
            .map(|(&id, r)| {
                r.tapped = None;
                id
            })
            .collect();
        for id in ended {
            let _ = self.write_port(id, &ports);
        }
    }

    /// Installs one offer, if its generations are still current and both ports are
    /// the fast path's.
    fn install(&self, o: &Offer) {
        let (vg, cg) = (self.gens.vlan(o.vlan), self.gens.cfg());
        if o.vlan_gen != vg || o.cfg_gen != cg {
            self.counters.offers_stale.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if o.tunnel.is_some_and(|t| t.neigh_gen != self.gens.neigh()) {
            self.counters.offers_stale.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let max_len = {
            let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
            // A decapsulated frame came in on the underlay port.
            let ingress = if o.gre || o.seg & abi::FP_SEG_VNI != 0 {
                ports.values().any(|r| r.underlay && r.tapped.is_none())
            } else {
                ports.get(&o.in_port).is_some_and(|r| r.tapped.is_none())
            };
            // An egress port that is down, captured or refusing redirects right now
            // still gets the entry: the program redirects only to ports in the devmap,
            // which holds none of those, and punts the rest (`no_dev`). Dropping the
            // offer instead lost it until the worker's next offer, 100 ms later (a
            // netns test's whole transfer fitted in that gap).
            match ports.get(&o.out_port) {
                Some(out) if ingress => match &o.tunnel {
                    // The inner frame: within the template's MTU, and the outer frame
                    // within the underlay netdev's.
                    Some(t) => t
                        .max_inner
                        .min(out.max_len.saturating_sub(t.tun.hdr_len() as u32)),
                    None => out.max_len,
                },
                _ => return,
            }
        };
        let key = FlowKey {
            in_port: u32::from(o.in_port.0),
            seg: o.seg,
            dst: o.dst,
            gre: o.gre,
        };
        let flow = abi::Flow {
            vlan_gen: o.vlan_gen,
            cfg_gen: o.cfg_gen,
            expires_ns: self
                .mono_epoch
                .load(Ordering::Relaxed)
                .saturating_add(o.expires),
            last_hit_ns: 0,
            out_port: u32::from(o.out_port.0),
            src_port: u32::from(o.in_port.0),
            max_len,
            vlan: o.vlan,
            vid: o.vid_out,
            op: o.op,
            neigh_gen: o.tunnel.map_or(0, |t| t.neigh_gen),
            vni: o.tunnel.map_or(0, |t| t.vni),
            stat_port: o.tunnel.map_or(0, |t| u32::from(t.tunnel_port.0)),
            tun: o.tunnel.map_or(Tun::Vxlan4, |t| t.tun),
            hdr: o.tunnel.map_or([0; abi::FP_HDR_MAX], |t| t.hdr),
        };
        let mut mirror = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(src) = o.src {
            let mk = MacKey {
                vlan: o.vlan,
                mac: src,
            };
            let mac = Mac {
                vlan_gen: o.vlan_gen,
                cfg_gen: o.cfg_gen,
                refresh_ns: mono_now(),
                last_hit_ns: 0,
                port: u32::from(o.in_port.0),
            };
            let same = mirror.macs.get(&mk).is_some_and(|m| {
                m.vlan_gen == mac.vlan_gen && m.cfg_gen == mac.cfg_gen && m.port == mac.port
            });
            if !same && (mirror.macs.len() < FP_MAX_MACS || mirror.macs.contains_key(&mk)) {
                match self.macs.update(&mk.encode(), &mac.encode(), MapFlags::ANY) {
                    Ok(()) => {
                        self.counters.installs.fetch_add(1, Ordering::Relaxed);
                        mirror.macs.insert(mk, mac);
                    }
                    Err(_) => {
                        self.counters.install_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let same = mirror.flows.get(&key).is_some_and(|f| {
            abi::Flow {
                last_hit_ns: 0,
                ..*f
            } == flow
        });
        if same || (mirror.flows.len() >= FP_MAX_FLOWS && !mirror.flows.contains_key(&key)) {
            return;
        }
        match self
            .flows
            .update(&key.encode(), &flow.encode(), MapFlags::ANY)
        {
            Ok(()) => {
                self.counters.installs.fetch_add(1, Ordering::Relaxed);
                mirror.flows.insert(key, flow);
            }
            Err(_) => {
                self.counters.install_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Removes entries whose generations moved or that expired.
    fn gc(&self) {
        let cg = self.gens.cfg();
        let now = mono_now();
        let mut mirror = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        let Mirror { flows, macs } = &mut *mirror;
        let ng = self.gens.neigh();
        flows.retain(|k, f| {
            let keep = f.cfg_gen == cg
                && f.vlan_gen == self.gens.vlan(f.vlan)
                && now < f.expires_ns
                && (f.op != Op::Encap || f.neigh_gen == ng);
            if !keep {
                let _ = self.flows.delete(&k.encode());
            }
            keep
        });
        macs.retain(|k, m| {
            let keep = m.cfg_gen == cg && m.vlan_gen == self.gens.vlan(k.vlan);
            if !keep {
                let _ = self.macs.delete(&k.encode());
            }
            keep
        });
    }

    /// The counters.
    pub fn stats(&self) -> FastPathStats {
        let program = COUNTERS
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), self.percpu_sum(&self.stats, i as u32)))
            .collect();
        let (flows, macs) = {
            let m = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
            (m.flows.len() as u64, m.macs.len() as u64)
        };
        let c = &self.counters;
        FastPathStats {
            program,
            flows,
            macs,
            offers: c.offers.load(Ordering::Relaxed),
            offers_dropped: c.offers_dropped.load(Ordering::Relaxed),
            offers_stale: c.offers_stale.load(Ordering::Relaxed),
            installs: c.installs.load(Ordering::Relaxed),
            install_errors: c.install_errors.load(Ordering::Relaxed),
            refused_ports: c.refused_ports.load(Ordering::Relaxed),
        }
    }

    /// Port `id`'s frames forwarded by the fast path: (rx frames, rx bytes, tx frames,
    /// tx bytes).
    pub fn port_counters(&self, id: PortId) -> [u64; 4] {
        let mut sum = [0u64; 4];
        if let Ok(Some(per_cpu)) = self
            .port_stats
            .lookup_percpu(&u32::from(id.0).to_ne_bytes(), MapFlags::ANY)
        {
            for v in &per_cpu {
                for (i, s) in sum.iter_mut().enumerate() {
                    *s += v
                        .get(i * 8..i * 8 + 8)
                        .and_then(|b| b.try_into().ok())
                        .map_or(0, u64::from_ne_bytes);
                }
            }
        }
        sum
    }

    fn percpu_sum(&self, map: &MapHandle, i: u32) -> u64 {
        match map.lookup_percpu(&i.to_ne_bytes(), MapFlags::ANY) {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                .sum(),
            _ => 0,
        }
    }

    /// The ports, with their redirect state and devmap entry.
    pub fn ports(&self) -> Vec<PortRow> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut rows: Vec<PortRow> = ports
            .iter()
            .map(|(&id, r)| PortRow {
                port: id.0,
                ifname: r.ifname.clone(),
                state: if r.tapped.is_some() {
                    "captured".into()
                } else if r.down {
                    "down".into()
                } else if r.refused {
                    let left = r
                        .retry_at
                        .map_or(0, |t| t.saturating_duration_since(now).as_secs());
                    format!("refused (retry in {left} s)")
                } else {
                    "redirect".into()
                },
                in_devmap: self
                    .devs
                    .lookup(&u32::from(id.0).to_ne_bytes(), MapFlags::ANY)
                    .ok()
                    .flatten()
                    .is_some(),
            })
            .collect();
        rows.sort_by_key(|r| r.port);
        rows
    }

    /// The installed flow entries.
    pub fn flows(&self) -> Vec<FlowRow> {
        let cg = self.gens.cfg();
        let now = mono_now();
        let entries: Vec<(FlowKey, abi::Flow)> = {
            let m = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = m.flows.iter().map(|(k, f)| (*k, *f)).collect();
            v.sort_by_key(|(k, _)| *k);
            v
        };
        entries
            .into_iter()
            .map(|(k, f)| {
                let live = self
                    .flows
                    .lookup(&k.encode(), MapFlags::ANY)
                    .ok()
                    .flatten()
                    .and_then(|b| abi::Flow::decode(&b));
                let last_hit = live.map_or(0, |l| l.last_hit_ns);
                FlowRow {
                    in_port: k.in_port as u16,
                    vid_in: (!k.gre
                        && k.seg & abi::FP_SEG_TAGGED != 0
                        && k.seg & abi::FP_SEG_VNI == 0)
                        .then_some((k.seg & 0x0fff) as u16),
                    vni_in: (!k.gre && k.seg & abi::FP_SEG_VNI != 0).then_some(k.seg & 0x00ff_ffff),
                    vni_out: (f.op == Op::Encap && !f.tun.is_gre()).then_some(f.vni),
                    gre_key_in: k.gre.then_some(k.seg),
                    gre_key_out: (f.op == Op::Encap && f.tun.is_gre()).then_some(f.vni),
                    dst: k.dst.to_string(),
                    out_port: f.out_port as u16,
                    op: match (f.op, f.tun) {
                        (Op::Encap, Tun::Vxlan4) => "vxlan-encap".to_string(),
                        (Op::Encap, Tun::Vxlan6) => "vxlan6-encap".to_string(),
                        (Op::Encap, Tun::Gre4) => "gre-encap".to_string(),
                        (Op::Encap, Tun::Gre6) => "gre6-encap".to_string(),
                        (op, _) => op.name().to_string(),
                    },
                    vid_out: matches!(f.op, Op::Push | Op::Xlate).then_some(f.vid),
                    vlan: f.vlan,
                    valid: f.cfg_gen == cg
                        && f.vlan_gen == self.gens.vlan(f.vlan)
                        && now < f.expires_ns
                        && (f.op != Op::Encap || f.neigh_gen == self.gens.neigh()),
                    idle_secs: (last_hit != 0).then(|| now.saturating_sub(last_hit) as f64 / 1e9),
                }
            })
            .collect()
    }
}

/// A port attached to the fast path: detached and forgotten on drop.
#[derive(Debug)]
pub struct FastPort {
    fp: Arc<FastPath>,
    id: PortId,
    ifindex: u32,
    _link: Option<Link>,
}

impl FastPort {
    /// The fast path it is attached to.
    pub fn fastpath(&self) -> &Arc<FastPath> {
        &self.fp
    }

    /// Its switch port number.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The netdev is gone: only forget it.
    pub fn disown(&mut self) {
        if let Some(l) = self._link.take() {
            // The link's netdev is gone with its attachment; closing the link is all
            // that is left.
            drop(l);
        }
    }
}

impl Drop for FastPort {
    fn drop(&mut self) {
        self.fp.forget_port(self.id, self.ifindex);
        // The link drops after this: the program is detached.
    }
}

/// A worker's end: offers decisions, at most once per flow per [`REOFFER_NS`].
#[derive(Debug)]
pub struct FastHook {
    gens: Arc<SharedGens>,
    queue: Arc<ArrayQueue<Offer>>,
    counters: Arc<AgentCounters>,
    recent: Box<[Recent]>,
}

const RECENT_SLOTS: usize = 4096;

/// The last offer of a flow hashed to this slot.
#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    key: u64,
    vlan_gen: u64,
    cfg_gen: u64,
    at: u64,
}

impl FastHook {
    /// The generation of local VLAN `vlan` now.
    #[inline]
    pub fn vlan_gen(&self, vlan: u16) -> u64 {
        self.gens.vlan(vlan)
    }

    /// The underlay neighbours' generation now.
    #[inline]
    pub fn neigh_gen(&self) -> u64 {
        self.gens.neigh()
    }

    /// A remote VTEP's next hop changed (before the worker uses the new one).
    pub fn bump_neigh(&self) {
        self.gens.bump_neigh();
    }

    /// Whether flow `key` (a hash) with these generations was offered less than
    /// [`REOFFER_NS`] ago; if not, it counts as offered at `now`.
    #[inline]
    pub fn recently_offered(&mut self, key: u64, vlan_gen: u64, cfg_gen: u64, now: u64) -> bool {
        let r = &mut self.recent[(key as usize) & (RECENT_SLOTS - 1)];
        if r.key == key
            && r.vlan_gen == vlan_gen
            && r.cfg_gen == cfg_gen
            && now.saturating_sub(r.at) < REOFFER_NS
        {
            return true;
        }
        *r = Recent {
            key,
            vlan_gen,
            cfg_gen,
            at: now,
        };
        false
    }

    /// Queues `o` for the agent (dropped, and counted, if the queue is full).
    #[inline]
    pub fn offer(&self, o: Offer) {
        self.counters.offers.fetch_add(1, Ordering::Relaxed);
        if self.queue.push(o).is_err() {
            self.counters.offers_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> PortReg {
        PortReg {
            ifindex: 7,
            ifname: "vm1".into(),
            max_len: 1518,
            tapped: None,
            underlay: false,
            down: false,
            refused: false,
            retry_at: None,
            retried_at: None,
            backoff: REFUSED_RETRY_MIN,
            xmit_errors: 0,
        }
    }

    #[test]
    fn a_refused_port_is_retried_with_a_doubling_backoff() {
        let t0 = Instant::now();
        let mut p = port();
        assert!(p.egress() && !p.retry_due(t0), "a port that never refused");
        assert_eq!(p.refuse(t0), Duration::from_secs(1));
        assert!(!p.egress());
        assert!(!p.retry_due(t0 + Duration::from_millis(999)));
        let t1 = t0 + Duration::from_secs(1);
        assert!(p.retry_due(t1) && p.egress(), "retried after 1 s");
        assert!(!p.retry_due(t1), "once");
        // Refused again right after the retry: 2 s, then 4 s, ... up to the cap.
        assert_eq!(p.refuse(t1), Duration::from_secs(2));
        let mut t = t1;
        let mut waits = Vec::new();
        for _ in 0..8 {
            t += p.retry_at.map_or(Duration::ZERO, |r| r - t);
            assert!(p.retry_due(t));
            waits.push(p.refuse(t).as_secs());
        }
        assert_eq!(waits, [4, 8, 16, 32, 64, 64, 64, 64]);
        // A refusal long after the last retry starts again from 1 s.
        t += p.retry_at.map_or(Duration::ZERO, |r| r - t);
        assert!(p.retry_due(t));
        assert_eq!(p.refuse(t + REFUSED_QUIET), Duration::from_secs(1));
    }
}
