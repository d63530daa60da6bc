//! [`XskBackend`]: the running switch's ports as AF_XDP sockets on netdevs.
//!
//! Worker `w` gets one UMEM-backed pool and a socket on queue `w` of every configured
//! port's netdev. A netdev's XDP program and lock ([`XskAttach`]) are taken once, by
//! worker 0's open, and shared by the ports of the other workers; the last port to
//! close detaches the program. The backend itself keeps only weak references and what
//! `ctl show` reports (XDP mode, a stale program replaced), so that stopping the
//! workers is what detaches the programs.
//!
//! Every port follows its netdev ([`XskPort::following`]): each worker checks its ports'
//! netdevs once a second ([`Port::maintain`](crate::port::Port::maintain)); one that
//! goes down or loses its carrier is marked down (frames for it are dropped as
//! `port_down`), one that disappears has its sockets deleted, and when a netdev of the
//! same name is back the first worker to see it takes it again (program and lock, shared
//! through the port's [`XskLink`]) and every worker binds its queue again on its own
//! UMEM. `ctl show` reports the link as worker 0's port sees it.
//!
//! Ports added to the running switch ([`Backend::open_port`]) are opened by the control
//! thread: the netdev is taken for worker 0's socket, and every worker's socket is
//! created on that worker's UMEM (the backend keeps a handle on each; libxdp's socket
//! creation is serialised per UMEM). Each worker's UMEM is sized at start for the
//! configured ports plus [`SPARE_PORTS`], so that the new sockets' rings find frames;
//! more ports than that need a restart. State is kept by port number, which a running
//! switch keeps stable.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use flowtable::PortId;

use super::napi::{NapiConfig, NapiRing};
use super::{
    sys, umem_pool, FastSteer, RingSizes, Umem, XdpMode, XskAttach, XskConfig, XskLink, XskPort,
};
use crate::config::{Config, Port, PortIdx};
use crate::control::proto::{self, LinkState};
use crate::fastpath::FastPath;
use crate::pool::{Pool, CHUNK_SIZE};
use crate::port::BURST;
use crate::runtime::{Backend, PortInfo, RuntimeError};

/// Ports a running switch can add beyond its configured ones: each worker's UMEM has
/// room for the rings of this many more sockets.
pub const SPARE_PORTS: usize = 4;

/// Frames of a worker's UMEM for `sockets` sockets with `sizes`: every ring of every
/// socket full at once (fill and RX hold the receive side's chunks, TX and completion
/// the transmit side's), plus a few bursts per socket for floods and replies in the
/// pipeline. With the default 1024-entry rings that is 4128 frames (8 MiB of 2 KiB
/// frames) per socket; a pool that small never starves a fill ring.
pub fn pool_frames(sockets: usize, sizes: RingSizes) -> u32 {
    let per_socket = sizes.fill as usize
        + sizes.rx as usize
        + sizes.tx as usize
        + sizes.comp as usize
        + 2 * BURST;
    u32::try_from(sockets.max(1) * per_socket).unwrap_or(u32::MAX)
}

/// The MAC address of `ifname` in the calling thread's network namespace (an ioctl:
/// `/sys/class/net` shows the namespace sysfs was mounted in, which `nsenter --net`
/// does not change).
pub fn netdev_mac(ifname: &str) -> std::io::Result<encap::MacAddr> {
    sys::hwaddr(ifname).map(encap::MacAddr)
}

/// Whether `ifname` is administratively up with its carrier on; `None` if it is gone.
pub fn netdev_running(ifname: &str) -> Option<bool> {
    sys::running(ifname)
}

/// The receive queues of `ifname` AF_XDP can bind, if the driver reports them.
pub fn netdev_rx_queues(ifname: &str) -> std::io::Result<Option<u32>> {
    sys::rx_queues(ifname)
}

/// Worker `w`'s NAPI busy-poll ring if `[switch] napi_busy_poll` is on and the kernel
/// supports it; the reason it does not is logged (once, by worker 0).
fn napi_ring(w: usize, cfg: &Config) -> Option<Arc<NapiRing>> {
    if !cfg.switch.napi_busy_poll {
        return None;
    }
    let c = NapiConfig::with_busy_poll(cfg.switch.napi_busy_poll_usecs);
    match NapiRing::new(&c) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            if w == 0 {
                tracing::warn!(
                    error = %e,
                    "NAPI busy polling off ([switch] napi_busy_poll = true): {e}; \
                     the kernel's receive work for the ports runs in softirq context"
                );
            }
            None
        }
    }
}

/// An error of opening port `p`.
fn port_err(p: &Port, message: String) -> RuntimeError {
    RuntimeError::Port {
        port: p.name.clone(),
        message,
    }
}

/// The netdev AF_XDP port `p` opens.
fn ifname_of(p: &Port) -> Result<&str, RuntimeError> {
    p.ifname
        .as_deref()
        .ok_or_else(|| port_err(p, "has no ifname: an AF_XDP port needs a netdev".into()))
}

/// Binding queue `queue` of `p`'s netdev failed: EINVAL there most often means the
/// netdev has fewer receive queues than there are workers.
fn bind_err(p: &Port, ifname: &str, queue: u32, e: &super::XskError) -> RuntimeError {
    let mut m = e.to_string();
    if matches!(e, super::XskError::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
    {
        m.push_str(&format!(
            " (does {ifname} have a receive queue {queue}? each worker binds its own)"
        ));
    }
    port_err(p, m)
}

/// Has worker `w`'s `ring` busy poll `port`'s queue NAPIs, and says so.
fn start_busy_poll(
    port: &mut XskPort,
    ring: &Arc<NapiRing>,
    w: usize,
    name: &str,
    ifname: &str,
    queue: u32,
) {
    match port.busy_poll_on(ring) {
        Ok(ids) if !ids.is_empty() => tracing::info!(
            worker = w,
            port = %name,
            %ifname,
            queue,
            napi = ?ids,
            "worker {w}: port {name}: busy polling NAPI {ids:?} of {ifname} queue {queue} \
             ({} µs per poll, prefer_busy_poll)",
            ring.busy_poll_usecs()
        ),
        Ok(_) => tracing::info!(
            worker = w,
            port = %name,
            %ifname,
            queue,
            "worker {w}: port {name}: {ifname} queue {queue} has no NAPI yet (a veth has \
             one only while an XDP program is attached or GRO is on, and up); looking again every \
             second"
        ),
        Err(e) => tracing::warn!(
            worker = w,
            port = %name,
            %ifname,
            error = %e,
            "worker {w}: port {name}: no NAPI busy polling: {e}"
        ),
    }
}

/// What opening a port found, for `ctl show` and the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPort {
    /// The port's name.
    pub name: String,
    /// Its netdev.
    pub ifname: String,
    /// The XDP mode of its program.
    pub mode: XdpMode,
    /// A program left attached by a crashed run was replaced.
    pub replaced_stale: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Per port number: its link, shared by the ports of every worker.
    links: Vec<Option<Arc<XskLink>>>,
    /// Per port number, once opened.
    opened: Vec<Option<OpenedPort>>,
    /// Per worker: its UMEM and frame size, for ports added at runtime.
    umems: Vec<Option<(Umem, usize)>>,
    /// Per worker: its NAPI busy-poll ring, for ports added at runtime.
    rings: Vec<Option<Arc<NapiRing>>>,
    /// Numbers of the ports open (or being opened).
    live: BTreeSet<u16>,
    /// Ports the workers' UMEMs were sized for.
    capacity: usize,
    /// The XDP fast path, when on.
    fastpath: Option<Arc<FastPath>>,
}

impl State {
    fn set<T>(v: &mut Vec<Option<T>>, i: usize, x: T) {
        if v.len() <= i {
            v.resize_with(i + 1, || None);
        }
        v[i] = Some(x);
    }
}

/// AF_XDP ports for [`Switch::start`](crate::runtime::Switch::start).
#[derive(Debug)]
pub struct XskBackend {
    sizes: RingSizes,
    xsk: XskConfig,
    state: Mutex<State>,
}

impl Default for XskBackend {
    fn default() -> Self {
        XskBackend::new(RingSizes::default(), XskConfig::default())
    }
}

impl XskBackend {
    /// The socket options for a worker: NAPI busy polling when it has a busy-poll ring.
    fn xsk_config(&self, busy_poll: bool, cfg: &Config) -> XskConfig {
        XskConfig {
            napi: busy_poll.then(|| NapiConfig::with_busy_poll(cfg.switch.napi_busy_poll_usecs)),
            ..self.xsk.clone()
        }
    }

    /// `xsk` for port number `id`: in the fast path if there is one.
    fn port_config(xsk: &XskConfig, fp: Option<&Arc<FastPath>>, id: PortId) -> XskConfig {
        XskConfig {
            fastpath: fp.map(|fp| FastSteer {
                fp: Arc::clone(fp),
                port: id,
            }),
            ..xsk.clone()
        }
    }

    /// Loads the XDP fast path for `cfg` if it asks for one; a fast path that cannot be
    /// loaded is logged and left out (the workers take every frame).
    fn load_fastpath(cfg: &Config) -> Option<Arc<FastPath>> {
        if !cfg.switch.fastpath || cfg.switch.forward_only {
            return None;
        }
        FastPath::load(cfg.switch.mac_aging)
            .inspect_err(|e| {
                tracing::warn!(error = %e, "XDP fast path off: {e}; the workers take every frame");
            })
            .ok()
    }

    /// A backend with these ring sizes; `xsk`'s bpffs and lock directory are used (its
    /// queues are not: worker `w` binds queue `w`).
    pub fn new(sizes: RingSizes, xsk: XskConfig) -> Self {
        XskBackend {
            sizes,
            xsk,
            state: Mutex::new(State::default()),
        }
    }

    /// What opening the ports found (ports opened so far, in configuration order).
    pub fn opened(&self) -> Vec<OpenedPort> {
        self.state
            .lock()
            .map(|s| s.opened.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// Fails unless every port of `cfg` names a netdev with a queue for each worker.
    pub fn check(cfg: &Config) -> Result<(), RuntimeError> {
        for p in &cfg.ports {
            Self::check_port(p, cfg.switch.workers)?;
        }
        Ok(())
    }

    /// Fails unless `p` names a netdev with a queue for each of `workers`.
    fn check_port(p: &crate::config::Port, workers: usize) -> Result<(), RuntimeError> {
        {
            let port_err = |message: String| RuntimeError::Port {
                port: p.name.clone(),
                message,
            };
            let Some(ifname) = &p.ifname else {
                return Err(port_err(
                    "has no ifname: an AF_XDP port needs a netdev (set `ifname` in its [[port]])"
                        .into(),
                ));
            };
            match netdev_rx_queues(ifname) {
                Ok(Some(q)) if (q as usize) < workers => {
                    return Err(port_err(format!(
                        "netdev {ifname} has {q} receive queue(s), fewer than the {workers} workers: \
                         each worker binds its own queue (`ethtool -L {ifname} combined {workers}`, \
                         or lower [switch] workers)"
                    )))
                }
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                    return Err(port_err(format!(
                        "no network device named {ifname:?} (in this network namespace)"
                    )))
                }
                // Channels unknown: binding the queue will tell.
                Err(_) => {}
            }
        }
        Ok(())
    }
}

impl PortInfo for XskBackend {
    fn datapath(&self) -> &str {
        "af_xdp"
    }

    fn port_status(&self, port: PortId) -> (LinkState, Option<proto::XdpMode>) {
        let Ok(s) = self.state.lock() else {
            return (LinkState::Unknown, None);
        };
        let Some(Some(o)) = s.opened.get(port.index()) else {
            return (LinkState::Unknown, None);
        };
        let up = match s.links.get(port.index()) {
            Some(Some(l)) => l.is_up(),
            _ => netdev_running(&o.ifname) == Some(true),
        };
        let link = if up { LinkState::Up } else { LinkState::Down };
        let mode = match o.mode {
            XdpMode::Native => proto::XdpMode::Native,
            XdpMode::Generic => proto::XdpMode::Generic,
        };
        (link, Some(mode))
    }
}

impl Backend for XskBackend {
    type Port = XskPort;

    fn open(&self, w: usize, cfg: &Config) -> Result<(Pool, Vec<XskPort>), RuntimeError> {
        if w == 0 {
            XskBackend::check(cfg)?;
        }
        let queue = u32::try_from(w).map_err(|_| RuntimeError::Worker {
            worker: w,
            message: "too many workers".into(),
        })?;
        let frames = pool_frames(cfg.ports.len() + SPARE_PORTS, self.sizes);
        let (pool, umem) =
            umem_pool(frames, CHUNK_SIZE, self.sizes).map_err(|e| RuntimeError::Worker {
                worker: w,
                message: e.to_string(),
            })?;
        let mut st = self.state.lock().map_err(|_| RuntimeError::Worker {
            worker: w,
            message: "backend state poisoned".into(),
        })?;
        if w == 0 {
            st.links = vec![None; cfg.ports.len()];
            st.opened = vec![None; cfg.ports.len()];
            st.live = (0..cfg.ports.len()).map(|i| i as u16).collect();
            st.capacity = cfg.ports.len() + SPARE_PORTS;
            st.fastpath = Self::load_fastpath(cfg);
        }
        State::set(&mut st.umems, w, (umem.clone(), pool.chunk_size()));
        // NAPI busy polling: one io_uring per worker. Without it the ports' NAPIs are
        // left as they are.
        let ring = napi_ring(w, cfg);
        if let Some(r) = &ring {
            State::set(&mut st.rings, w, Arc::clone(r));
        }
        let xsk = self.xsk_config(ring.is_some(), cfg);
        let mut ports = Vec::with_capacity(cfg.ports.len());
        let fp = st.fastpath.clone();
        for (i, p) in cfg.ports.iter().enumerate() {
            let port_err = |message: String| port_err(p, message);
            let ifname = ifname_of(p)?;
            let xsk = Self::port_config(&xsk, fp.as_ref(), PortId(i as u16));
            let attach = match st.links.get(i).and_then(|l| l.as_ref()?.attached()) {
                Some(a) => a,
                None => {
                    let a = XskAttach::open(ifname, &xsk).map_err(|e| port_err(e.to_string()))?;
                    if let Some(slot) = st.links.get_mut(i) {
                        *slot = Some(XskLink::new(&a));
                    }
                    a
                }
            };
            let link = st
                .links
                .get(i)
                .cloned()
                .flatten()
                .ok_or_else(|| port_err("worker 0 did not open this port".into()))?;
            let mut port = XskPort::on(Arc::clone(&attach), &umem, &pool, &[queue])
                .map_err(|e| bind_err(p, ifname, queue, &e))?
                .following(link, &xsk, &umem, w == 0);
            if let Some(r) = &ring {
                start_busy_poll(&mut port, r, w, &p.name, ifname, queue);
            }
            if w == 0 {
                if let Some(slot) = st.opened.get_mut(i) {
                    *slot = Some(OpenedPort {
                        name: p.name.clone(),
                        ifname: ifname.to_owned(),
                        mode: attach.mode(),
                        replaced_stale: attach.replaced_stale(),
                    });
                }
            }
            ports.push(port);
        }
        Ok((pool, ports))
    }

    fn open_port(
        &self,
        w: usize,
        cfg: &Config,
        port: PortIdx,
        id: PortId,
    ) -> Result<XskPort, RuntimeError> {
        let p = cfg
            .port(port)
            .ok_or_else(|| RuntimeError::Invalid(format!("no port {}", port.0)))?;
        let port_err = |message: String| port_err(p, message);
        let ifname = ifname_of(p)?;
        let queue = u32::try_from(w).map_err(|_| port_err("too many workers".into()))?;
        let mut st = self
            .state
            .lock()
            .map_err(|_| port_err("backend state poisoned".into()))?;
        let (umem, frame_size) = st
            .umems
            .get(w)
            .cloned()
            .flatten()
            .ok_or_else(|| port_err(format!("worker {w} has no UMEM")))?;
        let ring = st.rings.get(w).cloned().flatten();
        let xsk = Self::port_config(
            &self.xsk_config(ring.is_some(), cfg),
            st.fastpath.as_ref(),
            id,
        );
        let attach = if w == 0 {
            if !st.live.contains(&id.0) && st.live.len() >= st.capacity {
                return Err(port_err(format!(
                    "the workers' UMEMs were sized at start for {} ports ({} configured + {SPARE_PORTS}                      spare) and {} are open: restart vswitch to add more",
                    st.capacity,
                    st.capacity - SPARE_PORTS,
                    st.live.len()
                )));
            }
            Self::check_port(p, cfg.switch.workers)?;
            let a = XskAttach::open(ifname, &xsk).map_err(|e| port_err(e.to_string()))?;
            tracing::info!(
                port = %p.name,
                %ifname,
                xdp_mode = %a.mode(),
                "port {} on {ifname}: AF_XDP, XDP {} mode (added while running){}",
                p.name,
                a.mode(),
                if a.replaced_stale() {
                    " (replaced a stale XDP program left by a crashed run)"
                } else {
                    ""
                }
            );
            st.live.insert(id.0);
            State::set(&mut st.links, id.index(), XskLink::new(&a));
            State::set(
                &mut st.opened,
                id.index(),
                OpenedPort {
                    name: p.name.clone(),
                    ifname: ifname.to_owned(),
                    mode: a.mode(),
                    replaced_stale: a.replaced_stale(),
                },
            );
            a
        } else {
            st.links
                .get(id.index())
                .and_then(|l| l.as_ref()?.attached())
                .ok_or_else(|| port_err("worker 0 did not open this port".into()))?
        };
        let link = st
            .links
            .get(id.index())
            .cloned()
            .flatten()
            .ok_or_else(|| port_err("worker 0 did not open this port".into()))?;
        drop(st);
        let port = XskPort::bind(attach, &umem, frame_size, &[queue])
            .map_err(|e| bind_err(p, ifname, queue, &e))?;
        let mut port = port.following(link, &xsk, &umem, w == 0);
        if let Some(r) = &ring {
            start_busy_poll(&mut port, r, w, &p.name, ifname, queue);
        }
        Ok(port)
    }

    /// Forgets the port numbered `id` (removed, or its opening abandoned).
    fn fastpath(&self) -> Option<Arc<FastPath>> {
        self.state.lock().ok()?.fastpath.clone()
    }

    fn port_removed(&self, id: PortId) {
        if let Ok(mut st) = self.state.lock() {
            st.live.remove(&id.0);
            if let Some(l) = st.links.get_mut(id.index()) {
                *l = None;
            }
            if let Some(o) = st.opened.get_mut(id.index()).and_then(Option::take) {
                tracing::info!(
                    port = %o.name,
                    ifname = %o.ifname,
                    "port {} on {}: closed",
                    o.name,
                    o.ifname
                );
            }
        }
    }
}
