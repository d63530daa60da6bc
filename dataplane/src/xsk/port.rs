//! [`XskPort`]: a netdev's queues as one switch port (safe code over the rings).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

use super::error::{check_privileges, XskError};
use super::napi::{self, NapiConfig, NapiRing, NapiTuning};
use super::socket::{self, Attached, Socket, XdpMode, XdpProgram, XSK_PROG_NAME};
use super::sys;
use super::umem::Umem;
use crate::fastpath::{FastPath, FastPort};
use crate::pool::{Desc, Pool, HEADROOM};
use crate::port::{Port, BURST};
use flowtable::PortId;

/// Ethernet header plus one 802.1Q tag: what a frame adds to the MTU.
const L2_OVERHEAD: u32 = 18;
/// Chunks a port leaves in the pool when refilling its fill ring, for floods, replies
/// and the other ports' TX.
const POOL_RESERVE: usize = 4 * BURST;
/// Attempts at binding a queue that is busy (50 ms apart).
const BUSY_RETRIES: u32 = 20;
/// Fill ring refill batch.
const FILL_BATCH: usize = 64;

/// How to open an [`XskPort`].
#[derive(Debug, Clone)]
pub struct XskConfig {
    /// The netdev queues to bind, one socket each.
    pub queues: Vec<u32>,
    /// Where bpffs is (mounted there if missing; libxdp keeps its lock there).
    pub bpffs: String,
    /// Directory of the per-interface lock files.
    pub lock_dir: PathBuf,
    /// NAPI busy polling: the netdev's NAPIs are tuned for it when it is taken (see
    /// [`napi`](super::napi)); `None`: left alone.
    pub napi: Option<NapiConfig>,
    /// Attach the XDP fast path's program (as this switch port) instead of libxdp's
    /// redirect program; `None`: libxdp's.
    pub fastpath: Option<FastSteer>,
}

/// A port's place in the XDP fast path.
#[derive(Debug, Clone)]
pub struct FastSteer {
    /// The fast path.
    pub fp: Arc<FastPath>,
    /// The switch's number for the port.
    pub port: PortId,
}

/// What steers a netdev's queues to the sockets.
#[derive(Debug)]
enum Steer {
    /// libxdp's redirect program, with its own XSKMAP.
    Own(XdpProgram),
    /// The fast path's program, whose XSKMAP is shared by every port.
    Fast(FastPort),
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            queues: vec![0],
            bpffs: "/sys/fs/bpf".into(),
            lock_dir: "/run/vswitch/xsk".into(),
            napi: None,
            fastpath: None,
        }
    }
}

/// Counters of one AF_XDP port (besides the pipeline's per-port counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames put on TX rings.
    pub tx_frames: u64,
    /// RX descriptors outside the UMEM (never expected; dropped).
    pub rx_invalid: u64,
    /// Frames longer than the interface MTU allows, dropped at TX.
    pub tx_oversize: u64,
    /// `sendto` kicks (the TX ring asked for one).
    pub tx_kicks: u64,
    /// Kicks that failed for lack of room (EAGAIN/ENOBUFS) or a full peer (EBUSY).
    pub tx_kick_errors: u64,
    /// `recvfrom` kicks (the fill ring asked for one).
    pub rx_kicks: u64,
    /// Polls that found the pool too low to refill the fill ring.
    pub fill_starved: u64,
    /// Times the netdev went down or away.
    pub link_downs: u64,
    /// Times the port was re-opened on a netdev that came back.
    pub reattaches: u64,
    /// NAPI busy polls run for the worker (counted on the port that ran them).
    pub napi_polls: u64,
    /// NAPI busy polls that failed (an error other than the expected `ETIME`).
    pub napi_poll_errors: u64,
    /// Frames the kernel dropped on the way to the sockets' RX rings (no fill-ring
    /// buffer, RX ring full, invalid descriptors: `XDP_STATISTICS`), over every socket
    /// this port has had; as of the last [`XskPort::kernel_rx_dropped`] read.
    pub kernel_rx_dropped: u64,
}

/// The per-interface lock: held while a vswitch owns the interface, removed on drop.
#[derive(Debug)]
struct IfLock {
    path: PathBuf,
    _file: File,
}

impl Drop for IfLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A netdev as vswitch holds it: the XDP program that steers its queues to AF_XDP
/// sockets and the per-interface lock. Shared (in an `Arc`) by the [`XskPort`]s of every
/// worker bound to one of its queues; the last of them to close detaches the program.
#[derive(Debug)]
pub struct XskAttach {
    ifname: String,
    ifindex: u32,
    mtu: u32,
    mode: XdpMode,
    replaced_stale: bool,
    // Field order is drop order: the NAPI settings are restored while the program (that
    // gives a veth its NAPI) is still attached, then the program goes, then the lock.
    // The mutex only makes the handle shareable; nothing uses it after the attach but
    // `Drop`.
    _napi: Option<NapiTuning>,
    _prog: Mutex<Steer>,
    _lock: IfLock,
}

impl XskAttach {
    /// Takes `ifname` (in the calling thread's network namespace) for vswitch: checks
    /// privileges, mounts bpffs if needed, takes the per-interface lock, replaces a
    /// program a crashed run left behind and attaches the redirect program.
    pub fn open(ifname: &str, cfg: &XskConfig) -> Result<Arc<Self>, XskError> {
        // libxdp's multi-program dispatcher does not load on the kernels we run on; a
        // single program is all a switch port needs.
        SKIP_DISPATCHER.call_once(|| {
            if std::env::var_os("LIBXDP_SKIP_DISPATCHER").is_none() {
                std::env::set_var("LIBXDP_SKIP_DISPATCHER", "1");
            }
        });
        check_privileges()?;
        let ifindex = sys::ifindex(ifname).map_err(|_| XskError::NoDevice {
            ifname: ifname.to_string(),
        })?;
        let mtu = sys::mtu(ifname).map_err(io_err("read the MTU", ifname))?;
        sys::ensure_bpffs(&cfg.bpffs).map_err(io_err("mount bpffs", ifname))?;
        let (lock, existed) = lock(cfg, ifname)?;
        // A program of a crashed run is ours to replace: the lock file it left says a
        // vswitch had the interface, and we now hold the lock, so that vswitch is gone.
        let replaced_stale = match socket::attached(ifindex).map_err(io_err("query XDP", ifname))? {
            Attached::Nothing => false,
            Attached::Program(name) if is_ours(&name) && existed => {
                socket::detach_all(ifindex)
                    .map_err(io_err("detach a stale XDP program", ifname))?;
                true
            }
            Attached::Program(name) if is_ours(&name) => {
                return Err(XskError::AlreadyBound {
                    ifname: ifname.to_string(),
                    queue: cfg.queues.first().copied().unwrap_or(0),
                })
            }
            Attached::Program(program) => {
                return Err(XskError::ForeignProgram {
                    ifname: ifname.to_string(),
                    program,
                })
            }
            Attached::Dispatcher => {
                return Err(XskError::ForeignProgram {
                    ifname: ifname.to_string(),
                    program: "xdp-dispatcher".into(),
                })
            }
        };
        let fast = cfg.fastpath.as_ref().and_then(|s| {
            s.fp.attach(ifname, ifindex, s.port, mtu)
                .inspect_err(|e| {
                    tracing::warn!(
                        %ifname,
                        error = %e,
                        "{ifname}: the XDP fast path could not be attached ({e}); \
                         its frames all go to the workers"
                    );
                })
                .ok()
        });
        let prog = match fast {
            Some(f) => Ok(Steer::Fast(f)),
            None => XdpProgram::attach(ifindex).map(Steer::Own),
        };
        let prog = prog.map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => XskError::NoPrivilege {
                missing: "CAP_BPF".into(),
            },
            Some(libc::EEXIST) | Some(libc::EBUSY) => XskError::ForeignProgram {
                ifname: ifname.to_string(),
                program: "(attached meanwhile)".into(),
            },
            _ => XskError::Io {
                what: "attach the XDP program",
                ifname: ifname.to_string(),
                source: e,
            },
        })?;
        // The NAPI exists now (a veth has one while an XDP program is attached).
        let tuning = cfg.napi.and_then(|c| {
            NapiTuning::apply(ifname, ifindex, &c)
                .inspect_err(|e| {
                    tracing::warn!(%ifname, error = %e, "{ifname}: NAPI settings left alone: {e}");
                })
                .ok()
                .flatten()
        });
        Ok(Arc::new(XskAttach {
            ifname: ifname.to_string(),
            ifindex,
            mtu,
            mode: match &prog {
                Steer::Own(p) => p.mode(),
                Steer::Fast(_) => XdpMode::Native,
            },
            replaced_stale,
            _napi: tuning,
            _prog: Mutex::new(prog),
            _lock: lock,
        }))
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The XDP mode the redirect program runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// True if opening replaced a program left attached by a crashed run.
    pub fn replaced_stale(&self) -> bool {
        self.replaced_stale
    }

    /// Steers `s`'s queue to it.
    fn steer(&self, s: &Socket) -> io::Result<()> {
        match &*self
            ._prog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Steer::Own(p) => s.insert_into(p.map_fd()),
            Steer::Fast(f) => f.fastpath().insert_socket(f.id(), s.queue(), s.fd()),
        }
    }

    /// The netdev is gone: closing only forgets the program (the interface index may
    /// already name another device).
    fn disown(&self) {
        match &mut *self
            ._prog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Steer::Own(p) => p.disown(),
            Steer::Fast(f) => f.disown(),
        }
    }
}

/// What the ports of every worker on one netdev share to follow its link: whether it is
/// up (as worker 0's port sees it, for `ctl show`), how often it went down, and the
/// netdev as currently taken, so that the first worker to re-open it after it came back
/// takes it and the others bind their queues to the same program.
#[derive(Debug, Default)]
pub struct XskLink {
    up: AtomicBool,
    downs: AtomicU64,
    slot: Mutex<Weak<XskAttach>>,
}

impl XskLink {
    /// A link following `attach`, initially up if its netdev is running.
    pub fn new(attach: &Arc<XskAttach>) -> Arc<Self> {
        let l = XskLink::default();
        l.up.store(true, Ordering::Relaxed);
        *l.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::downgrade(attach);
        Arc::new(l)
    }

    /// The netdev as currently taken, if any port still holds it.
    pub fn attached(&self) -> Option<Arc<XskAttach>> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .upgrade()
    }

    /// Whether the port is forwarding (its netdev present, up, with carrier).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Times the netdev went down or away.
    pub fn downs(&self) -> u64 {
        self.downs.load(Ordering::Relaxed)
    }
}

/// Whether an attached program of this name is one of vswitch's.
fn is_ours(name: &str) -> bool {
    name == XSK_PROG_NAME || name == crate::fastpath::PROG_NAME
}

/// Whether `ifname` is up with its carrier on (false if it is gone).
fn running(ifname: &str) -> bool {
    sys::running(ifname) == Some(true)
}

/// How an [`XskPort`] of the running switch re-opens its netdev when it comes back.
#[derive(Debug)]
struct Follow {
    queues: Vec<u32>,
    cfg: XskConfig,
    umem: Umem,
    link: Arc<XskLink>,
    /// This port logs and reports the link state (worker 0's).
    report: bool,
    /// A failed re-open was logged (once per outage).
    failed: bool,
}

/// A port's share of its worker's [`NapiRing`]: the NAPI ids of its queues, removed
/// from the ring when the port lets them go.
#[derive(Debug)]
struct PortNapi {
    ring: Arc<NapiRing>,
    ids: Vec<u32>,
}

impl PortNapi {
    fn clear(&mut self) {
        for id in self.ids.drain(..) {
            self.ring.remove(id);
        }
    }
}

impl Drop for PortNapi {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Some of a netdev's queues, each an AF_XDP socket on the worker's UMEM, as one switch
/// port.
#[derive(Debug)]
pub struct XskPort {
    // Field order is drop order: the program goes first if this port holds the last
    // reference (no more redirects), then the sockets.
    // `None` (and no sockets) while the netdev is gone.
    attach: Option<Arc<XskAttach>>,
    socks: Vec<Socket>,
    /// Kernel drops of sockets this port has closed (see [`XskStats::kernel_rx_dropped`]).
    kernel_rx_base: u64,
    ifname: String,
    ifindex: u32,
    mode: XdpMode,
    replaced_stale: bool,
    /// Largest frame sent (MTU plus Ethernet header and one tag).
    max_tx_len: usize,
    next_rx: usize,
    stats: XskStats,
    /// Forwarding: the netdev is there, up and with carrier (as last checked).
    up: bool,
    follow: Option<Follow>,
    /// NAPI busy polling of this port's queues by its worker.
    napi: Option<PortNapi>,
}

static SKIP_DISPATCHER: Once = Once::new();

fn io_err<'a>(what: &'static str, ifname: &'a str) -> impl FnOnce(io::Error) -> XskError + 'a {
    move |source| XskError::Io {
        what,
        ifname: ifname.to_string(),
        source,
    }
}

impl XskPort {
    /// Opens `ifname` (in the calling thread's network namespace) on `umem`, whose frames
    /// are `pool`'s chunks, binding `cfg.queues`. See the [module documentation](super)
    /// for the steps. To bind the queues of one netdev from several workers, take it
    /// once with [`XskAttach::open`] and give each worker [`XskPort::on`].
    pub fn open(ifname: &str, umem: &Umem, pool: &Pool, cfg: &XskConfig) -> Result<Self, XskError> {
        check_mtu(ifname, pool.chunk_size())?;
        let attach = XskAttach::open(ifname, cfg)?;
        XskPort::on(attach, umem, pool, &cfg.queues)
    }

    /// Binds `queues` of a netdev already taken with [`XskAttach::open`], one socket each
    /// on `umem` (whose frames are `pool`'s chunks), and steers them to the sockets.
    pub fn on(
        attach: Arc<XskAttach>,
        umem: &Umem,
        pool: &Pool,
        queues: &[u32],
    ) -> Result<Self, XskError> {
        XskPort::bind(attach, umem, pool.chunk_size(), queues)
    }

    /// [`XskPort::on`] for a caller that does not hold the pool (a port added to a
    /// running switch is opened by the control thread on each worker's UMEM):
    /// `frame_size` is the UMEM's frame size, the pool's chunk size.
    pub fn bind(
        attach: Arc<XskAttach>,
        umem: &Umem,
        frame_size: usize,
        queues: &[u32],
    ) -> Result<Self, XskError> {
        let ifname = attach.ifname.as_str();
        check_mtu(ifname, frame_size)?;
        let mut socks = Vec::with_capacity(queues.len());
        for &q in queues {
            // A socket of a process that just died releases its queue from a kernel
            // work item, shortly after the process is gone: give it a moment.
            let mut tries = 0;
            let s = loop {
                let reg = umem
                    .registration()
                    .map_err(|e| super::error::umem_error(e, umem.len()))?;
                match Socket::new(ifname, q, reg) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < BUSY_RETRIES => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    r => break r,
                }
            };
            let s = s.map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => XskError::AlreadyBound {
                    ifname: ifname.to_string(),
                    queue: q,
                },
                Some(libc::EPERM) => XskError::NoPrivilege {
                    missing: "CAP_NET_RAW or CAP_NET_ADMIN".into(),
                },
                _ => XskError::Io {
                    what: "create an AF_XDP socket",
                    ifname: ifname.to_string(),
                    source: e,
                },
            })?;
            socks.push(s);
        }
        for s in &socks {
            attach
                .steer(s)
                .map_err(io_err("insert a socket into the XSKMAP", ifname))?;
        }
        Ok(XskPort {
            max_tx_len: (attach.mtu + L2_OVERHEAD) as usize,
            ifname: attach.ifname.clone(),
            ifindex: attach.ifindex,
            mode: attach.mode,
            replaced_stale: attach.replaced_stale,
            attach: Some(attach),
            socks,
            kernel_rx_base: 0,
            next_rx: 0,
            stats: XskStats::default(),
            up: true,
            follow: None,
            napi: None,
        })
    }

    /// Makes this port follow its netdev's link (see [`Port::maintain`]): marked down
    /// when the netdev goes down or away, re-opened on `umem` with `cfg`'s bpffs and lock
    /// directory when it comes back. `link` is shared by the netdev's ports of all
    /// workers; the port with `report` set logs the changes and keeps `link` up to date.
    pub fn following(
        mut self,
        link: Arc<XskLink>,
        cfg: &XskConfig,
        umem: &Umem,
        report: bool,
    ) -> Self {
        // Up until the first check says otherwise: a veth reports no carrier for a
        // moment after an XDP program is attached.
        self.up = true;
        if report {
            link.up.store(true, Ordering::Relaxed);
        }
        self.follow = Some(Follow {
            queues: self.socks.iter().map(Socket::queue).collect(),
            cfg: cfg.clone(),
            umem: umem.clone(),
            link,
            report,
            failed: false,
        });
        self
    }

    /// Has the worker busy poll this port's queues' NAPIs on `ring` (the worker's, shared
    /// by its ports): registers their NAPI ids now, again after a re-attach, and (while
    /// the netdev has none) at each [`Port::maintain`]. Returns the ids registered.
    pub fn busy_poll_on(&mut self, ring: &Arc<NapiRing>) -> Result<Vec<u32>, XskError> {
        self.napi = Some(PortNapi {
            ring: Arc::clone(ring),
            ids: Vec::new(),
        });
        self.register_napis()?;
        Ok(self.napi_ids().to_vec())
    }

    /// The NAPI ids this port's worker busy polls for it.
    pub fn napi_ids(&self) -> &[u32] {
        self.napi.as_ref().map_or(&[], |n| &n.ids)
    }

    /// Looks up the NAPIs of this port's queues and adds them to the worker's ring.
    fn register_napis(&mut self) -> Result<(), XskError> {
        let Some(n) = &mut self.napi else {
            return Ok(());
        };
        n.clear();
        if self.socks.is_empty() {
            return Ok(());
        }
        let queues: Vec<u32> = self.socks.iter().map(Socket::queue).collect();
        let found = napi::queue_napis(self.ifindex, &queues).map_err(|e| XskError::Io {
            what: "look up the NAPI of its queues",
            ifname: self.ifname.clone(),
            source: io::Error::other(e),
        })?;
        for info in found {
            n.ring
                .add(info.id)
                .map_err(io_err("register a NAPI id on the io_uring", &self.ifname))?;
            n.ids.push(info.id);
        }
        Ok(())
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index (of the netdev as last opened).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The XDP mode the redirect program runs in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// True if opening replaced a program left attached by a crashed run.
    pub fn replaced_stale(&self) -> bool {
        self.replaced_stale
    }

    /// Whether the port is forwarding.
    pub fn is_up(&self) -> bool {
        self.up
    }

    fn set_up(&mut self, up: bool, why: &str) {
        if self.up == up {
            return;
        }
        self.up = up;
        if !up {
            self.stats.link_downs += 1;
        }
        if let Some(f) = &self.follow {
            if f.report {
                f.link.up.store(up, Ordering::Relaxed);
                if !up {
                    f.link.downs.fetch_add(1, Ordering::Relaxed);
                }
                let state = if up { "up" } else { "down" };
                tracing::info!(
                    ifname = %self.ifname,
                    link = state,
                    "port on {}: link {state} ({why})",
                    self.ifname
                );
            }
        }
    }

    /// The kernel's drops of the current sockets (`XDP_STATISTICS`; one system call per
    /// socket: called by `ctl stats`, never per packet).
    fn socket_drops(&self) -> u64 {
        self.socks
            .iter()
            .filter_map(|s| sys::xdp_statistics(s.fd()).ok())
            .map(|st| st.rx_dropped + st.rx_ring_full + st.rx_invalid_descs)
            .sum()
    }

    /// Adds the current sockets' drops to the port's base before they are closed.
    fn fold_kernel_stats(&mut self) {
        self.kernel_rx_base += self.socket_drops();
        self.stats.kernel_rx_dropped = self.kernel_rx_base;
    }

    /// The netdev is gone: frames the kernel still held on the sockets' rings go back
    /// to the pool, the sockets are deleted and the program forgotten.
    fn detach(&mut self, pool: &mut Pool) {
        let before = pool.available();
        self.reclaim(pool);
        if let Some(a) = self.attach.take() {
            a.disown();
        }
        if let Some(n) = &mut self.napi {
            n.clear();
        }
        self.fold_kernel_stats();
        self.socks.clear();
        let freed = pool.available().saturating_sub(before);
        self.set_up(
            false,
            &format!("netdev gone; {freed} frames back to the pool"),
        );
    }

    /// Gives every frame the sockets' rings hold (completed, received, and the fill
    /// ring's unused entries) back to the pool. The sockets must be closed right after,
    /// before the pool hands any of those frames out again.
    fn reclaim(&mut self, pool: &mut Pool) {
        self.reap(pool);
        let mut descs = [(0u64, 0u32); BURST];
        for s in &mut self.socks {
            loop {
                let n = s.rings().receive(&mut descs);
                for &(a, _) in &descs[..n] {
                    if let Some(c) = pool.chunk_of(a) {
                        pool.free_chunk(c);
                    }
                }
                if n < descs.len() {
                    break;
                }
            }
            s.rings_ref().unconsumed(|a| {
                if let Some(c) = pool.chunk_of(a) {
                    pool.free_chunk(c);
                }
            });
        }
    }

    /// The netdev is back (as `ifindex`): takes it (or joins another worker's port that
    /// took it) and binds the queues again.
    fn reattach(&mut self, pool: &mut Pool, ifindex: u32) {
        let Some(mut f) = self.follow.take() else {
            return;
        };
        let taken = {
            let mut slot = f
                .link
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.upgrade() {
                Some(a) if a.ifindex == ifindex => Some(Ok(a)),
                // Another worker's port still holds the old netdev (and its lock).
                Some(_) => None,
                None => Some(
                    XskAttach::open(&self.ifname, &f.cfg).inspect(|a| *slot = Arc::downgrade(a)),
                ),
            }
        };
        let Some(taken) = taken else {
            self.follow = Some(f);
            return;
        };
        let report = f.report;
        match taken.and_then(|a| XskPort::on(a, &f.umem, pool, &f.queues)) {
            Ok(p) => {
                let XskPort {
                    attach,
                    socks,
                    ifindex,
                    mode,
                    max_tx_len,
                    ..
                } = p;
                self.attach = attach;
                self.fold_kernel_stats();
                self.socks = socks;
                self.ifindex = ifindex;
                self.mode = mode;
                self.max_tx_len = max_tx_len;
                self.next_rx = 0;
                self.stats.reattaches += 1;
                f.failed = false;
                self.follow = Some(f);
                if report {
                    tracing::info!(
                        ifname = %self.ifname,
                        xdp_mode = %mode,
                        "port on {}: netdev back, re-attached ({mode} XDP)",
                        self.ifname
                    );
                }
                let up = running(&self.ifname);
                self.set_up(up, "re-attached");
                self.log_napis("re-attached");
            }
            Err(e) => {
                if report && !f.failed {
                    tracing::warn!(
                        ifname = %self.ifname,
                        error = %e,
                        "port on {}: re-attaching failed (retrying every second): {e}",
                        self.ifname
                    );
                }
                f.failed = true;
                self.follow = Some(f);
            }
        }
    }

    /// Registers the NAPIs of the queues again (after a re-attach, or while the netdev
    /// had none) and logs the outcome once: the ids found, or why there are none.
    fn log_napis(&mut self, when: &str) {
        if self.napi.is_none() {
            return;
        }
        match self.register_napis() {
            Ok(()) if !self.napi_ids().is_empty() => tracing::info!(
                ifname = %self.ifname,
                napi = ?self.napi_ids(),
                "port on {} ({when}): busy polling NAPI {:?} in its worker",
                self.ifname,
                self.napi_ids()
            ),
            Ok(()) => tracing::info!(
                ifname = %self.ifname,
                "port on {} ({when}): no NAPI for its queues yet (a veth has one \
                 only while an XDP program is attached or GRO is on); looking again every second",
                self.ifname
            ),
            Err(e) => tracing::warn!(
                ifname = %self.ifname,
                error = %e,
                "port on {} ({when}): {e}",
                self.ifname
            ),
        }
    }

    /// The counters.
    pub fn stats(&self) -> XskStats {
        self.stats
    }

    /// Returns completed TX frames to the pool.
    fn reap(&mut self, pool: &mut Pool) {
        let mut addrs = [0u64; FILL_BATCH];
        for s in &mut self.socks {
            loop {
                let n = s.rings().complete(&mut addrs);
                for &a in &addrs[..n] {
                    if let Some(c) = pool.chunk_of(a) {
                        pool.free_chunk(c);
                    }
                }
                if n < addrs.len() {
                    break;
                }
            }
        }
    }

    /// Tops up the fill ring of socket `i` from the pool's free chunks.
    fn refill(&mut self, i: usize, pool: &mut Pool) {
        let mut addrs = [0u64; FILL_BATCH];
        let s = &mut self.socks[i];
        let room = s.rings().fill_free(FILL_BATCH as u32) as usize;
        if room == 0 {
            return;
        }
        let spare = pool.available().saturating_sub(POOL_RESERVE);
        let n = room.min(spare);
        if n == 0 {
            self.stats.fill_starved += 1;
            return;
        }
        for a in &mut addrs[..n] {
            // `n` is at most the available chunks.
            *a = pool.take_chunk().map_or(0, |c| pool.chunk_addr(c));
        }
        let put = s.rings().fill(&addrs[..n]);
        for &a in &addrs[put..n] {
            if let Some(c) = pool.chunk_of(a) {
                pool.free_chunk(c);
            }
        }
        if s.rings_ref().fill_needs_wakeup() {
            self.stats.rx_kicks += 1;
            sys::kick_rx(s.fd());
        }
    }
}

/// Fails if `ifname`'s MTU does not fit chunks of `chunk_size` bytes.
fn check_mtu(ifname: &str, chunk_size: usize) -> Result<(), XskError> {
    let mtu = sys::mtu(ifname).map_err(|_| XskError::NoDevice {
        ifname: ifname.to_string(),
    })?;
    let max = (chunk_size.saturating_sub(HEADROOM) as u32).saturating_sub(L2_OVERHEAD);
    if mtu > max {
        return Err(XskError::MtuTooLarge {
            ifname: ifname.to_string(),
            mtu,
            max,
            frame_size: chunk_size,
        });
    }
    Ok(())
}

/// Takes the per-interface lock; returns it and whether its file existed before (a
/// vswitch had the interface and did not exit cleanly).
fn lock(cfg: &XskConfig, ifname: &str) -> Result<(IfLock, bool), XskError> {
    std::fs::create_dir_all(&cfg.lock_dir).map_err(io_err("create the lock directory", ifname))?;
    // Interface names are per network namespace: the namespace's inode keeps them apart.
    let ns = std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap_or(0);
    let path = cfg.lock_dir.join(format!("{ns}-{ifname}.lock"));
    let existed = path.exists();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open the interface lock", ifname))?;
    if !sys::try_lock(&file).map_err(io_err("lock the interface", ifname))? {
        return Err(XskError::AlreadyBound {
            ifname: ifname.to_string(),
            queue: cfg.queues.first().copied().unwrap_or(0),
        });
    }
    Ok((IfLock { path, _file: file }, existed))
}

impl Port for XskPort {
    fn is_up(&self) -> bool {
        self.up
    }

    fn kernel_rx_dropped(&mut self) -> u64 {
        let v = self.kernel_rx_base + self.socket_drops();
        self.stats.kernel_rx_dropped = v;
        v
    }

    /// A socket still has received frames waiting: the worker catches up with what the
    /// last poll brought in before spending another busy-poll period in the kernel.
    #[inline]
    fn rx_waiting(&mut self) -> bool {
        self.up && self.socks.iter_mut().any(|s| s.rings().rx_pending())
    }

    /// One NAPI busy poll of the worker's ring (shared by its ports, held by each port
    /// with busy polling on): the first such port with NAPI ids registered runs it.
    #[inline]
    fn busy_poll(&mut self) -> bool {
        let Some(n) = self.napi.as_ref().filter(|n| !n.ring.is_empty()) else {
            return false;
        };
        let ok = n.ring.poll();
        self.stats.napi_polls += 1;
        if !ok {
            self.stats.napi_poll_errors += 1;
        }
        true
    }

    /// Follows the netdev (a port made with [`XskPort::following`]; two interface
    /// ioctls): down or without carrier, the port is marked down; gone or replaced (its
    /// index changed), the sockets are deleted; back, it is re-opened.
    fn maintain(&mut self, pool: &mut Pool) {
        if self.follow.is_none() {
            return;
        }
        let now = sys::ifindex(&self.ifname).ok();
        match (&self.attach, now) {
            (Some(a), Some(i)) if a.ifindex == i => {
                let up = running(&self.ifname);
                self.set_up(up, if up { "netdev up" } else { "netdev down" });
                if !up {
                    self.reap(pool);
                } else if self.napi.as_ref().is_some_and(|n| n.ids.is_empty()) {
                    // A netdev taken while down gets its NAPI when it comes up.
                    let _ = self.register_napis();
                    if !self.napi_ids().is_empty() {
                        tracing::info!(
                            ifname = %self.ifname,
                            napi = ?self.napi_ids(),
                            "port on {}: busy polling NAPI {:?} in its worker",
                            self.ifname,
                            self.napi_ids()
                        );
                    }
                }
            }
            (Some(_), _) => {
                self.detach(pool);
                if let Some(i) = now {
                    self.reattach(pool, i);
                }
            }
            (None, Some(i)) => self.reattach(pool, i),
            (None, None) => {}
        }
    }

    /// Removed from a running switch: its frames go back to the pool, then the
    /// sockets are deleted (closing a socket takes it out of the XSKMAP) and the netdev
    /// let go; the XDP program is detached when the last worker's port lets go of it.
    fn close(&mut self, pool: &mut Pool) {
        self.reclaim(pool);
        self.napi = None;
        self.fold_kernel_stats();
        self.socks.clear();
        self.attach = None;
        self.follow = None;
        self.up = false;
    }

    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        if !self.up {
            return 0;
        }
        self.reap(pool);
        let nsock = self.socks.len();
        let mut got = 0;
        let mut descs = [(0u64, 0u32); BURST];
        for k in 0..nsock {
            let i = (self.next_rx + k) % nsock;
            self.refill(i, pool);
            let n = self.socks[i].rings().receive(&mut descs[..BURST - got]);
            for &(addr, len) in &descs[..n] {
                match pool.desc_at(addr, len) {
                    Some(d) => {
                        out[got] = d;
                        got += 1;
                    }
                    None => {
                        self.stats.rx_invalid += 1;
                        if let Some(c) = pool.chunk_of(addr) {
                            pool.free_chunk(c);
                        }
                    }
                }
            }
            if got == BURST {
                break;
            }
        }
        self.next_rx = (self.next_rx + 1) % nsock.max(1);
        self.stats.rx_frames += got as u64;
        got
    }

    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        if !self.up {
            return 0;
        }
        self.reap(pool);
        let Some(s) = self.socks.first_mut() else {
            return 0;
        };
        // Oversized frames are taken and dropped here (veth would pass them); the rest
        // go on the ring as far as it has room, and the caller keeps what did not fit.
        let room = s.rings().tx_free(frames.len().min(BURST) as u32) as usize;
        let mut descs = [(0u64, 0u32); BURST];
        let (mut n, mut accepted) = (0, 0);
        for &d in frames.iter().take(BURST) {
            if d.len() > self.max_tx_len {
                self.stats.tx_oversize += 1;
                pool.free(d);
            } else if n < room {
                descs[n] = (pool.addr(d), d.len() as u32);
                n += 1;
            } else {
                break;
            }
            accepted += 1;
        }
        // `room` slots are free, so all `n` fit.
        let put = s.rings().transmit(&descs[..n]);
        debug_assert_eq!(put, n);
        // A full ring is kicked too: a kick that failed (EAGAIN: the kernel's budget or
        // the completion ring; EBUSY: the peer's ring) left frames on it that only
        // another kick sends, and with no room nothing else would kick it.
        if (put > 0 || room == 0) && s.rings_ref().tx_needs_wakeup() {
            self.stats.tx_kicks += 1;
            if sys::kick_tx(s.fd()).is_some() {
                self.stats.tx_kick_errors += 1;
            }
        }
        self.stats.tx_frames += put as u64;
        accepted
    }
}
