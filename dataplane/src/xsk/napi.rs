//! NAPI busy polling from the worker's own thread, through io_uring.
//!
//! Why: on veth, AF_XDP is copy mode, and the kernel's receive work for a port (the
//! veth NAPI: `veth_poll`, the XDP program, the copy into the socket's RX ring) runs
//! wherever the veth was scheduled, normally the *sender's* CPU. The switch then
//! competes with its own traffic source for that CPU and looks faster or slower than it
//! is. The AF_XDP socket busy-poll options (`SO_BUSY_POLL`, `SO_PREFER_BUSY_POLL`) do
//! nothing on veth: since Linux 6.13 an XSK learns its NAPI id only in zero-copy mode.
//! What does move the work is io_uring's NAPI busy polling with *static* tracking: the
//! ring is registered with the NAPI ids of the worker's queues and `prefer_busy_poll`,
//! and the worker calls `io_uring_enter(GETEVENTS | EXT_ARG)` with a zero timeout once
//! per loop iteration ([`NapiRing::poll`]); the kernel then runs those NAPIs in the
//! worker's thread, on the worker's core, for up to the busy-poll timeout.
//! `prefer_busy_poll` plus per-NAPI `napi_defer_hard_irqs` / `gro_flush_timeout`
//! ([`NapiTuning`]) keep the softirq from taking the NAPI back between two polls.
//!
//! How: each worker has one [`NapiRing`] shared by its ports (one `io_uring_enter` per
//! loop, whatever the number of ports); each port adds the NAPI ids of its queues
//! ([`queue_napis`], from the netdev generic-netlink family) after the XDP program is
//! attached (a veth has a NAPI only while an XDP program is attached or GRO is on),
//! and again after a re-attach. The netdev is tuned once, when vswitch takes it, and
//! its NAPIs' old settings are restored when vswitch lets it go.
//!
//! Nothing here runs per packet: one system call per loop iteration, the netlink
//! look-ups at start and on link changes.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use io_uring::types::{Napi, NapiTracking, Timespec};
use io_uring::{opcode, squeue, IoUring};

use super::genl::{NapiInfo, Netdev, NetlinkError};

/// Default busy-poll time, µs (`[switch] napi_busy_poll_usecs`).
pub const DEFAULT_BUSY_POLL_USECS: u32 = crate::config::DEFAULT_NAPI_BUSY_POLL_USECS;
/// `napi_defer_hard_irqs` set on the ports' NAPIs.
pub const DEFER_HARD_IRQS: u32 = 2;
/// Smallest `gro_flush_timeout` set on the ports' NAPIs, ns (see
/// [`NapiConfig::with_busy_poll`]).
pub const MIN_GRO_FLUSH_TIMEOUT_NS: u64 = 2_000_000;
/// `gro_flush_timeout` is at least this many busy-poll times.
pub const GRO_FLUSH_TIMEOUT_POLLS: u64 = 20;
/// Added to twice the busy-poll time to make the kernel's own busy-poll limit, µs.
const BACKSTOP_USECS: u32 = 50;

/// How the ports' NAPIs are busy polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NapiConfig {
    /// How long one `io_uring_enter` busy polls, µs.
    pub busy_poll_usecs: u32,
    /// `napi_defer_hard_irqs` set on the ports' NAPIs.
    pub defer_hard_irqs: u32,
    /// `gro_flush_timeout` set on the ports' NAPIs, ns.
    pub gro_flush_timeout_ns: u64,
}

impl NapiConfig {
    /// Busy polls of `usecs` µs, with `napi_defer_hard_irqs` 2 and a
    /// `gro_flush_timeout` of 20 polls, at least 2 ms.
    ///
    /// Why that long: `gro_flush_timeout` is the watchdog that hands a NAPI back to the
    /// softirq when nobody busy polled it for that long, and the worker does not busy
    /// poll while it still has received frames to process (a poll's batch plus the
    /// transmit work for it). When the watchdog fires first, the softirq takes the NAPI
    /// and the next busy polls find it taken: measured on veth with the 200 µs of the
    /// first experiments, forwarding swung between 0.11 and 0.64 Mpps from one run to
    /// the next; with 2 ms it was steady. It is only a safety net: a worker that keeps
    /// polling never lets it expire.
    pub fn with_busy_poll(usecs: u32) -> Self {
        let polls = u64::from(usecs) * 1000 * GRO_FLUSH_TIMEOUT_POLLS;
        NapiConfig {
            busy_poll_usecs: usecs,
            defer_hard_irqs: DEFER_HARD_IRQS,
            gro_flush_timeout_ns: polls.max(MIN_GRO_FLUSH_TIMEOUT_NS),
        }
    }
}

impl Default for NapiConfig {
    fn default() -> Self {
        NapiConfig::with_busy_poll(DEFAULT_BUSY_POLL_USECS)
    }
}

/// Why NAPI busy polling could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NapiError {
    /// io_uring could not be set up (kernel without io_uring, or disabled by
    /// `kernel.io_uring_disabled`, or a seccomp filter).
    #[error("cannot {what}: {source} (io_uring NAPI busy polling needs Linux 6.13+ with io_uring enabled)")]
    Uring {
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The netdev NAPI look-up failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// An io_uring used only to busy poll a static set of NAPI ids: one per worker, shared
/// by the worker's ports (the worker's thread is the only one that uses it).
pub struct NapiRing {
    /// Only the worker's thread locks it, once per loop iteration: never contended (the
    /// mutex makes the ring shareable by the worker's ports, not a point of contention).
    ring: Mutex<IoUring>,
    /// The timeout request that ends each busy poll (see [`NapiRing::poll`]).
    timeout: squeue::Entry,
    /// What `timeout` points to: the kernel reads it when the request is submitted.
    _ts: Box<Timespec>,
    /// NAPI ids registered (each port adds and removes its own).
    ids: AtomicUsize,
    busy_poll_usecs: u32,
}

impl std::fmt::Debug for NapiRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NapiRing")
            .field("ids", &self.len())
            .field("busy_poll_usecs", &self.busy_poll_usecs)
            .finish()
    }
}

impl NapiRing {
    /// A ring registered for static NAPI busy polling with `prefer_busy_poll` and
    /// `cfg`'s timeout, with no NAPI id yet.
    pub fn new(cfg: &NapiConfig) -> Result<Self, NapiError> {
        let ring = IoUring::new(4).map_err(|source| NapiError::Uring {
            what: "create an io_uring",
            source,
        })?;
        // The kernel's busy-poll loop ends when the timeout request completes (it
        // counts as an event), or at this limit, whichever comes first: the limit is
        // only a backstop for a late timer.
        let limit = cfg
            .busy_poll_usecs
            .saturating_mul(2)
            .saturating_add(BACKSTOP_USECS);
        let mut napi = Napi::new()
            .set_busy_poll_timeout(limit)
            .set_prefer_busy_poll(true)
            .set_tracking(NapiTracking::Static);
        ring.submitter()
            .register_napi(&mut napi)
            .map_err(|source| NapiError::Uring {
                what: "register static NAPI busy polling on the io_uring",
                source,
            })?;
        let ts = Box::new(Timespec::new().nsec(cfg.busy_poll_usecs.saturating_mul(1000)));
        let timeout = opcode::Timeout::new(&*ts).build();
        Ok(NapiRing {
            ring: Mutex::new(ring),
            timeout,
            _ts: ts,
            ids: AtomicUsize::new(0),
            busy_poll_usecs: cfg.busy_poll_usecs,
        })
    }

    /// The busy-poll timeout, µs.
    pub fn busy_poll_usecs(&self) -> u32 {
        self.busy_poll_usecs
    }

    /// NAPI ids registered.
    pub fn len(&self) -> usize {
        self.ids.load(Ordering::Relaxed)
    }

    /// Whether no NAPI id is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds NAPI `id` to the polled set.
    pub fn add(&self, id: u32) -> io::Result<()> {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match ring.submitter().register_napi_add_id(id) {
            Ok(()) => {
                self.ids.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            // Already there (two queues served by one NAPI): counted once.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes NAPI `id` from the polled set.
    pub fn remove(&self, id: u32) {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.submitter().register_napi_del_id(id).is_ok() {
            let _ = self
                .ids
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Busy polls the registered NAPIs for about the busy-poll time, in this thread: one
    /// `io_uring_enter` that submits a timeout request of that length and waits for its
    /// completion; the kernel busy polls the NAPIs while it waits, and the timer's
    /// completion ends the busy poll.
    ///
    /// Why not the usual zero-timeout wait (`GETEVENTS | EXT_ARG`, `ts = 0`): after
    /// its busy poll, that wait still sleeps on an hrtimer that has already expired,
    /// and waking from it costs ~20 µs per call on a virtual machine (measured: an
    /// empty zero-timeout wait takes 21.9 µs on the 2-core Firecracker VM, a
    /// `getppid` 80 ns). With a timeout request the busy poll itself ends when the
    /// timer fires, and the wait finds the completion without sleeping.
    ///
    /// Returns false if the ring refused the request (counted by the caller).
    #[inline]
    pub fn poll(&self) -> bool {
        let Ok(mut ring) = self.ring.try_lock() else {
            return false;
        };
        // SAFETY: the request points to `self._ts`, which lives as long as the ring and
        // is read by the kernel during this submission.
        if unsafe { ring.submission().push(&self.timeout) }.is_err() {
            // Never expected (one request in flight at a time): do not wait for it.
            ring.completion().for_each(drop);
            return false;
        }
        let r = ring.submit_and_wait(1);
        ring.completion().for_each(drop);
        match r {
            Ok(_) => true,
            Err(e) => e.raw_os_error() == Some(libc::EINTR),
        }
    }
}

/// The NAPIs serving receive queues `queues` of `ifindex`; empty when the netdev has no
/// NAPI (a veth without XDP program or GRO). See [`pick_napis`] for how a queue's NAPI
/// is found.
pub fn queue_napis(ifindex: u32, queues: &[u32]) -> Result<Vec<NapiInfo>, NapiError> {
    let mut nl = Netdev::open()?;
    let all = nl.napis(ifindex)?;
    if all.is_empty() {
        return Ok(Vec::new());
    }
    // Receive queues of the netdev (a few `queue-get`s, at start and on link changes).
    let mut rx_queues = 0;
    while rx_queues < MAX_QUEUES && nl.rx_queue(ifindex, rx_queues)?.is_some() {
        rx_queues += 1;
    }
    let mut out: Vec<NapiInfo> = Vec::new();
    for &q in queues {
        let linked = nl.rx_queue(ifindex, q)?.and_then(|qi| qi.napi_id);
        out.extend(pick_napis(&all, q, linked, rx_queues));
    }
    out.sort_by_key(|n| n.id);
    out.dedup_by_key(|n| n.id);
    Ok(out)
}

/// Most receive queues [`queue_napis`] counts.
const MAX_QUEUES: u32 = 4096;

/// The NAPIs of `all` (a netdev's) that serve receive queue `queue`:
/// - the one the driver links to the queue (`linked`, from `queue-get`), if any;
/// - else, with as many NAPIs as receive queues, the `queue`-th by id: veth links no
///   queue to its NAPIs (Linux 6.18), but creates one per receive queue, in queue order,
///   and NAPI ids only grow;
/// - else all of them (polling a NAPI that serves another worker's queue costs time,
///   not correctness: only one thread polls a NAPI at a time).
pub fn pick_napis(
    all: &[NapiInfo],
    queue: u32,
    linked: Option<u32>,
    rx_queues: u32,
) -> Vec<NapiInfo> {
    if let Some(n) = linked.and_then(|id| all.iter().find(|n| n.id == id)) {
        return vec![*n];
    }
    if all.len() == rx_queues as usize {
        let mut by_id = all.to_vec();
        by_id.sort_by_key(|n| n.id);
        if let Some(n) = by_id.get(queue as usize) {
            return vec![*n];
        }
    }
    all.to_vec()
}

/// NAPI settings changed on a netdev, restored on drop.
#[derive(Debug)]
pub struct NapiTuning {
    nl: Netdev,
    /// Per NAPI: id, old `napi_defer_hard_irqs`, old `gro_flush_timeout`.
    old: Vec<(u32, u32, u64)>,
}

impl NapiTuning {
    /// Sets `cfg`'s `napi_defer_hard_irqs` and `gro_flush_timeout` on every NAPI of
    /// `ifindex` (`napi-set`, namespace-safe unlike sysfs) and logs what it changed.
    /// `None` when the netdev has no NAPI.
    pub fn apply(ifname: &str, ifindex: u32, cfg: &NapiConfig) -> Result<Option<Self>, NapiError> {
        let mut nl = Netdev::open()?;
        let napis = nl.napis(ifindex)?;
        if napis.is_empty() {
            return Ok(None);
        }
        let mut t = NapiTuning {
            nl,
            old: Vec::new(),
        };
        for n in &napis {
            let old_defer = n.defer_hard_irqs.unwrap_or(0);
            let old_gro = n.gro_flush_timeout.unwrap_or(0);
            t.nl.set_napi(n.id, cfg.defer_hard_irqs, cfg.gro_flush_timeout_ns)?;
            t.old.push((n.id, old_defer, old_gro));
            tracing::info!(
                %ifname,
                napi = n.id,
                "{ifname}: NAPI {}: napi_defer_hard_irqs {old_defer} -> {}, \
                 gro_flush_timeout {old_gro} -> {} ns (restored on exit){}",
                n.id,
                cfg.defer_hard_irqs,
                cfg.gro_flush_timeout_ns,
                if n.is_threaded() {
                    "; NAPI is threaded: busy polling competes with its kernel thread \
                     (echo 0 > /sys/class/net/DEV/threaded)"
                } else {
                    ""
                }
            );
        }
        Ok(Some(t))
    }

    /// The NAPI ids tuned.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.old.iter().map(|&(id, _, _)| id)
    }
}

impl Drop for NapiTuning {
    fn drop(&mut self) {
        for &(id, defer, gro) in &self.old {
            // A NAPI that is gone (its netdev, or the XDP program that made it) has
            // nothing to restore.
            let _ = self.nl.set_napi(id, defer, gro);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn napi(id: u32) -> NapiInfo {
        NapiInfo {
            id,
            ifindex: 3,
            ..NapiInfo::default()
        }
    }

    #[test]
    fn a_queue_gets_its_own_napi() {
        // The dump lists NAPIs newest first; veth makes them in queue order.
        let all = [napi(2049), napi(2048)];
        let ids = |v: Vec<NapiInfo>| v.iter().map(|n| n.id).collect::<Vec<_>>();
        // Linked by the driver: that one.
        assert_eq!(ids(pick_napis(&all, 0, Some(2049), 2)), vec![2049]);
        // Unlinked, one NAPI per queue: by creation order.
        assert_eq!(ids(pick_napis(&all, 0, None, 2)), vec![2048]);
        assert_eq!(ids(pick_napis(&all, 1, None, 2)), vec![2049]);
        // Unlinked and not one per queue, or a link to an unknown NAPI: all of them.
        assert_eq!(ids(pick_napis(&all, 0, None, 4)), vec![2049, 2048]);
        assert_eq!(ids(pick_napis(&all, 0, Some(7), 4)), vec![2049, 2048]);
        assert!(pick_napis(&[], 0, None, 1).is_empty());
    }

    #[test]
    fn defaults_are_the_measured_ones() {
        let c = NapiConfig::default();
        assert_eq!(c.defer_hard_irqs, 2);
        assert_eq!(c.busy_poll_usecs, 100);
        assert_eq!(c.gro_flush_timeout_ns, 2_000_000);
        // Long polls get a proportionally long watchdog.
        assert_eq!(
            NapiConfig::with_busy_poll(500).gro_flush_timeout_ns,
            10_000_000
        );
        assert_eq!(
            NapiConfig::with_busy_poll(0).gro_flush_timeout_ns,
            2_000_000
        );
    }
}
