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

use std::sync::{Arc, Mutex};

use super::napi::{NapiConfig, NapiRing};
use super::{sys, umem_pool, RingSizes, XdpMode, XskAttach, XskConfig, XskLink, XskPort};
use crate::config::{Config, PortIdx};
use crate::control::proto::{self, LinkState};
use crate::pool::{Pool, CHUNK_SIZE};
use crate::port::BURST;
use crate::runtime::{Backend, PortInfo, RuntimeError};

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
    let f = sys::if_flags(ifname).ok()?;
    Some(f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0)
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
                eprintln!(
                    "vswitch: NAPI busy polling off ([switch] napi_busy_poll = true): {e}; \
                     the kernel's receive work for the ports runs in softirq context"
                );
            }
            None
        }
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
    /// Per configuration port: its link, shared by the ports of every worker.
    links: Vec<Option<Arc<XskLink>>>,
    /// Per configuration port, once opened.
    opened: Vec<Option<OpenedPort>>,
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
        let workers = cfg.switch.workers;
        for p in &cfg.ports {
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

    fn port_status(&self, port: PortIdx) -> (LinkState, Option<proto::XdpMode>) {
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
        let frames = pool_frames(cfg.ports.len(), self.sizes);
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
        }
        // NAPI busy polling: one io_uring per worker. Without it the ports' NAPIs are
        // left as they are.
        let ring = napi_ring(w, cfg);
        let xsk = XskConfig {
            napi: ring
                .as_ref()
                .map(|_| NapiConfig::with_busy_poll(cfg.switch.napi_busy_poll_usecs)),
            ..self.xsk.clone()
        };
        let mut ports = Vec::with_capacity(cfg.ports.len());
        for (i, p) in cfg.ports.iter().enumerate() {
            let port_err = |message: String| RuntimeError::Port {
                port: p.name.clone(),
                message,
            };
            let ifname = p
                .ifname
                .as_deref()
                .ok_or_else(|| port_err("has no ifname: an AF_XDP port needs a netdev".into()))?;
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
            let mut port = XskPort::on(Arc::clone(&attach), &umem, &pool, &[queue]).map_err(|e| {
                let mut m = e.to_string();
                if matches!(&e, super::XskError::Io { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
                {
                    m.push_str(&format!(
                        " (does {ifname} have a receive queue {queue}? each worker binds its own)"
                    ));
                }
                port_err(m)
            })?
            .following(link, &xsk, &umem, w == 0);
            if let Some(r) = &ring {
                match port.busy_poll_on(r) {
                    Ok(ids) if !ids.is_empty() => eprintln!(
                        "vswitch: worker {w}: port {}: busy polling NAPI {ids:?} of {ifname} \
                         queue {queue} ({} µs per poll, prefer_busy_poll)",
                        p.name,
                        r.busy_poll_usecs()
                    ),
                    Ok(_) => eprintln!(
                        "vswitch: worker {w}: port {}: {ifname} queue {queue} has no NAPI yet \
                         (a veth has one only while an XDP program is attached or GRO is on, \
                         and up); looking again every second",
                        p.name
                    ),
                    Err(e) => eprintln!(
                        "vswitch: worker {w}: port {}: no NAPI busy polling: {e}",
                        p.name
                    ),
                }
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
}
