//! Packet capture: copies of one port's frames, taken by the workers while the port
//! keeps forwarding (`vswitch ctl capture`).
//!
//! # Why this shape
//!
//! A worker must not lock, allocate or make a system call per packet, capture or not,
//! and a capture must never cost the switch a frame. So:
//!
//! - Each worker's port sits in a [`Tapped`] slot. With no capture its tap is `None`
//!   and a burst costs one predictable branch on the worker's own memory, per receive
//!   and per transmit burst, never per frame.
//! - A capture gives every worker its own single-producer ring ([`ring`]): records with
//!   buffers allocated up front by the control side, recycled through two lock-free
//!   queues (`free` → worker fills → `filled` → control side writes → `free`). The
//!   worker copies at most `snaplen` bytes of each frame into a free record, with a
//!   timestamp read once per burst; with no free record the copy is skipped and counted
//!   (`capture_dropped`): the frame itself is forwarded as usual.
//! - Direction `in` is what the port received, before any rewrite; `out` is what the
//!   port accepted for transmission, after VLAN push/pop/translate and encapsulation.
//!   Outgoing frames are copied before the port takes them (after that the buffer is
//!   the port's) and only the ones it accepted are kept.
//! - Stopping needs no message to the worker: the control side's [`CaptureSession`]
//!   closes the rings when dropped, and the worker drops its tap at the next poll of
//!   the port (one relaxed load per poll, only while a tap is set). A session sees
//!   that the workers let go of its rings (a port removed, the switch stopping) and
//!   ends too.
//!
//! The switch allows one capture per port at a time; ports are captured independently.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam::queue::ArrayQueue;
use serde::{Deserialize, Serialize};

use crate::pool::{Desc, Pool};
use crate::port::{Port, BURST};

/// Default bytes kept of each frame (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 65535;
/// Largest snaplen accepted.
pub const MAX_SNAPLEN: u32 = 65535;
/// Bytes a capture buffer holds at most: no frame of a worker's pool is longer (a
/// UMEM frame is at most 4096 bytes, headroom included).
pub const MAX_COPY: usize = 4096;
/// Default records per worker ring.
pub const DEFAULT_RING: u32 = 1024;
/// Smallest ring accepted.
pub const MIN_RING: u32 = 16;
/// Largest ring accepted.
pub const MAX_RING: u32 = 65536;

/// How long a dropped session waits for the workers to let go of its rings, so that
/// their buffers are freed by the control side, not by a worker.
const RELEASE_WAIT: Duration = Duration::from_millis(500);

/// Why a capture cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The port is being captured already.
    #[error(
        "port {0:?}: a capture is already running on it (one per port at a time; stop it first)"
    )]
    Busy(String),
    /// `snaplen` out of range.
    #[error("snaplen {0}: must be 1..={MAX_SNAPLEN}")]
    Snaplen(u32),
    /// Ring size out of range.
    #[error("ring {0}: must be {MIN_RING}..={MAX_RING} records per worker")]
    Ring(u32),
    /// `count` of zero.
    #[error("count 0: give at least 1 frame, or no count to capture until stopped")]
    Count,
}

/// Which way a frame went through the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received on the port.
    In,
    /// Sent on the port.
    Out,
}

/// Which directions a capture takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Received and sent frames.
    #[default]
    Both,
    /// Received frames only.
    In,
    /// Sent frames only.
    Out,
}

impl Filter {
    /// Whether frames going `dir` are taken.
    #[inline]
    pub fn wants(self, dir: Direction) -> bool {
        match self {
            Filter::Both => true,
            Filter::In => dir == Direction::In,
            Filter::Out => dir == Direction::Out,
        }
    }

    /// `both`, `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Filter::Both => "both",
            Filter::In => "in",
            Filter::Out => "out",
        }
    }
}

/// What a capture takes and how much room it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Directions.
    pub filter: Filter,
    /// Bytes kept of each frame (the rest is counted in the record's original length).
    pub snaplen: u32,
    /// Records per worker ring.
    pub ring: u32,
    /// Frames after which the capture ends (`None`: until stopped).
    pub count: Option<u64>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            filter: Filter::Both,
            snaplen: DEFAULT_SNAPLEN,
            ring: DEFAULT_RING,
            count: None,
        }
    }
}

impl CaptureOptions {
    /// Checked options.
    pub fn new(
        filter: Filter,
        snaplen: Option<u32>,
        ring: Option<u32>,
        count: Option<u64>,
    ) -> Result<Self, CaptureError> {
        let snaplen = snaplen.unwrap_or(DEFAULT_SNAPLEN);
        if snaplen == 0 || snaplen > MAX_SNAPLEN {
            return Err(CaptureError::Snaplen(snaplen));
        }
        let ring = ring.unwrap_or(DEFAULT_RING);
        if !(MIN_RING..=MAX_RING).contains(&ring) {
            return Err(CaptureError::Ring(ring));
        }
        if count == Some(0) {
            return Err(CaptureError::Count);
        }
        Ok(CaptureOptions {
            filter,
            snaplen,
            ring,
            count,
        })
    }

    /// Bytes of one record's buffer: the snaplen, or less when no frame can be longer.
    pub fn buffer_len(&self) -> usize {
        (self.snaplen as usize).min(MAX_COPY)
    }
}

/// One captured frame: a buffer allocated when the capture started, reused.
#[derive(Debug)]
pub struct Record {
    /// Nanoseconds on the switch's clock (the workers' epoch).
    ts_ns: u64,
    dir: Direction,
    /// The frame's length on the wire.
    orig_len: u32,
    /// Bytes of it in `buf`.
    len: u32,
    buf: Box<[u8]>,
}

impl Record {
    fn new(buffer_len: usize) -> Record {
        Record {
            ts_ns: 0,
            dir: Direction::In,
            orig_len: 0,
            len: 0,
            buf: vec![0u8; buffer_len].into_boxed_slice(),
        }
    }

    #[inline]
    fn fill(&mut self, ts_ns: u64, dir: Direction, frame: &[u8]) {
        let n = frame.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&frame[..n]);
        self.ts_ns = ts_ns;
        self.dir = dir;
        self.orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.len = n as u32;
    }

    /// When it was taken: nanoseconds on the switch's clock.
    pub fn ts_ns(&self) -> u64 {
        self.ts_ns
    }

    /// Which way the frame went.
    pub fn direction(&self) -> Direction {
        self.dir
    }

    /// The frame's full length.
    pub fn orig_len(&self) -> u32 {
        self.orig_len
    }

    /// The bytes kept (at most the snaplen).
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// What a worker and the control side share for one capture.
#[derive(Debug)]
struct Shared {
    /// Records ready to fill.
    free: ArrayQueue<Record>,
    /// Records filled, oldest first.
    filled: ArrayQueue<Record>,
    /// Frames the worker copied (published once per burst).
    captured: AtomicU64,
    /// Frames the worker could not copy: no free record (published once per burst).
    dropped: AtomicU64,
    /// The control side is gone: the worker drops its tap.
    closed: AtomicBool,
}

/// A worker's end of a capture ring.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    filter: Filter,
    /// The switch's clock.
    epoch: Instant,
    /// Outgoing frames copied before the port took them, kept if it did.
    staged: [Option<Record>; BURST],
    nstaged: usize,
    captured: u64,
    dropped: u64,
}

/// The control side's end of a capture ring.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
}

/// A ring of `opts.ring` records of [`CaptureOptions::buffer_len`] bytes each, all
/// allocated here; `epoch` is the clock the worker stamps frames with.
pub fn ring(opts: &CaptureOptions, epoch: Instant) -> (Producer, Consumer) {
    let n = opts.ring.max(1) as usize;
    let free = ArrayQueue::new(n);
    for _ in 0..n {
        let _ = free.push(Record::new(opts.buffer_len()));
    }
    let shared = Arc::new(Shared {
        free,
        filled: ArrayQueue::new(n),
        captured: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    (
        Producer {
            shared: Arc::clone(&shared),
            filter: opts.filter,
            epoch,
            staged: std::array::from_fn(|_| None),
            nstaged: 0,
            captured: 0,
            dropped: 0,
        },
        Consumer { shared },
    )
}

impl Producer {
    /// Whether the control side has gone (the tap should be dropped).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Whether frames going `dir` are taken.
    #[inline]
    pub fn wants(&self, dir: Direction) -> bool {
        self.filter.wants(dir)
    }

    #[inline]
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Publishes the counters (once per burst).
    #[inline]
    fn publish(&self) {
        self.shared.captured.store(self.captured, Ordering::Relaxed);
        self.shared.dropped.store(self.dropped, Ordering::Relaxed);
    }

    /// Hands a filled record to the control side.
    #[inline]
    fn push(&mut self, r: Record) {
        match self.shared.filled.push(r) {
            Ok(()) => self.captured += 1,
            // Cannot happen (the queue holds every record); counted, never lost.
            Err(r) => {
                let _ = self.shared.free.push(r);
                self.dropped += 1;
            }
        }
    }

    /// Copies `descs` (frames going `dir`, stamped now) if the filter takes them.
    #[inline]
    pub fn record(&mut self, dir: Direction, pool: &Pool, descs: &[Desc]) {
        if !self.wants(dir) || descs.is_empty() {
            return;
        }
        let ts = self.now();
        for &d in descs {
            match self.shared.free.pop() {
                Some(mut r) => {
                    r.fill(ts, dir, pool.data(d));
                    self.push(r);
                }
                None => self.dropped += 1,
            }
        }
        self.publish();
    }

    /// Copies up to [`BURST`] outgoing frames before the port takes them; then
    /// [`Producer::commit`] keeps the ones it accepted.
    #[inline]
    pub fn stage(&mut self, pool: &Pool, descs: &[Desc]) {
        self.nstaged = descs.len().min(BURST);
        let ts = self.now();
        for (slot, &d) in self.staged.iter_mut().zip(&descs[..self.nstaged]) {
            *slot = self.shared.free.pop().map(|mut r| {
                r.fill(ts, Direction::Out, pool.data(d));
                r
            });
        }
    }

    /// Keeps the first `sent` staged frames (the port accepted them), gives the
    /// others' records back.
    #[inline]
    pub fn commit(&mut self, sent: usize) {
        for i in 0..self.nstaged {
            match self.staged[i].take() {
                Some(r) if i < sent => self.push(r),
                Some(r) => {
                    let _ = self.shared.free.push(r);
                }
                None if i < sent => self.dropped += 1,
                None => {}
            }
        }
        self.nstaged = 0;
        self.publish();
    }
}

impl Consumer {
    /// The oldest filled record.
    #[inline]
    pub fn pop(&self) -> Option<Record> {
        self.shared.filled.pop()
    }

    /// Gives a record back to the worker.
    #[inline]
    pub fn recycle(&self, r: Record) {
        // Cannot fail: the queue holds every record of the ring.
        let _ = self.shared.free.push(r);
    }

    /// Frames the worker copied.
    pub fn captured(&self) -> u64 {
        self.shared.captured.load(Ordering::Relaxed)
    }

    /// Frames the worker could not copy for lack of a free record.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether the worker let go of the ring (its tap dropped: the port removed, the
    /// switch stopping, or the ring closed).
    pub fn producer_gone(&self) -> bool {
        Arc::strong_count(&self.shared) == 1
    }

    /// Tells the worker to drop its tap.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.close();
    }
}

/// A port slot of a worker: the port and, while a capture runs, its tap. Every
/// [`Port`] call goes to the port; receive and transmit bursts are copied to the tap
/// when there is one.
#[derive(Debug)]
pub struct Tapped<P> {
    /// The port.
    pub port: P,
    tap: Option<Box<Producer>>,
}

impl<P> Tapped<P> {
    /// A port without a capture.
    pub fn new(port: P) -> Self {
        Tapped { port, tap: None }
    }

    /// Starts copying the port's frames to `tap` (replacing a previous tap).
    pub fn set_tap(&mut self, tap: Box<Producer>) {
        self.tap = Some(tap);
    }

    /// Stops copying.
    pub fn clear_tap(&mut self) {
        self.tap = None;
    }

    /// Whether a capture is set.
    pub fn is_tapped(&self) -> bool {
        self.tap.is_some()
    }
}

impl<P: Port> Port for Tapped<P> {
    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        let n = self.port.rx_burst(pool, out);
        if let Some(tap) = &mut self.tap {
            if tap.is_closed() {
                self.tap = None;
            } else if n > 0 {
                tap.record(Direction::In, pool, &out[..n]);
            }
        }
        n
    }

    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        let Some(tap) = self.tap.as_deref_mut().filter(|t| t.wants(Direction::Out)) else {
            return self.port.tx_burst(pool, frames);
        };
        let mut sent = 0;
        for chunk in frames.chunks(BURST) {
            tap.stage(pool, chunk);
            let k = self.port.tx_burst(pool, chunk);
            tap.commit(k);
            sent += k;
            if k < chunk.len() {
                break;
            }
        }
        sent
    }

    #[inline]
    fn is_up(&self) -> bool {
        self.port.is_up()
    }

    fn maintain(&mut self, pool: &mut Pool) {
        self.port.maintain(pool);
    }

    fn close(&mut self, pool: &mut Pool) {
        self.tap = None;
        self.port.close(pool);
    }

    fn kernel_rx_dropped(&mut self) -> u64 {
        self.port.kernel_rx_dropped()
    }

    #[inline]
    fn rx_waiting(&mut self) -> bool {
        self.port.rx_waiting()
    }

    #[inline]
    fn busy_poll(&mut self) -> bool {
        self.port.busy_poll()
    }
}

/// The control side of a running capture: every worker's ring of one port. Dropping
/// it stops the capture (the workers drop their taps at their next poll) and frees
/// the buffers.
#[derive(Debug)]
pub struct CaptureSession {
    port: String,
    opts: CaptureOptions,
    rings: Vec<Consumer>,
    /// The switch's clock epoch in Unix nanoseconds.
    epoch_unix_ns: u64,
    /// The switch holds a [`Weak`] of it: the port is busy while it lives.
    token: Arc<()>,
}

impl CaptureSession {
    /// A session over `rings` (one per worker) of the port named `port`; `epoch` is the
    /// clock the workers stamp frames with. The [`Weak`] tells whether it still runs.
    pub fn new(
        port: String,
        opts: CaptureOptions,
        rings: Vec<Consumer>,
        epoch: Instant,
    ) -> (CaptureSession, Weak<()>) {
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let epoch_unix = now_unix.saturating_sub(epoch.elapsed());
        let token = Arc::new(());
        let weak = Arc::downgrade(&token);
        (
            CaptureSession {
                port,
                opts,
                rings,
                epoch_unix_ns: u64::try_from(epoch_unix.as_nanos()).unwrap_or(0),
                token,
            },
            weak,
        )
    }

    /// The port's name.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// The options.
    pub fn options(&self) -> &CaptureOptions {
        &self.opts
    }

    /// Workers capturing.
    pub fn workers(&self) -> usize {
        self.rings.len()
    }

    /// Moves up to `max` filled records of every worker to `out` as (worker, record),
    /// oldest first; give each back with [`CaptureSession::recycle`].
    pub fn drain(&self, out: &mut Vec<(usize, Record)>, max: usize) {
        let start = out.len();
        for (w, ring) in self.rings.iter().enumerate() {
            for _ in 0..max {
                match ring.pop() {
                    Some(r) => out.push((w, r)),
                    None => break,
                }
            }
        }
        // Each worker's records are in order; merge the workers' by time.
        if self.rings.len() > 1 {
            out[start..].sort_by_key(|(_, r)| r.ts_ns);
        }
    }

    /// Gives worker `w`'s record back to its ring.
    pub fn recycle(&self, w: usize, r: Record) {
        if let Some(ring) = self.rings.get(w) {
            ring.recycle(r);
        }
    }

    /// A record's time in Unix nanoseconds.
    pub fn unix_ns(&self, r: &Record) -> u64 {
        self.epoch_unix_ns.saturating_add(r.ts_ns)
    }

    /// Frames the workers copied.
    pub fn captured(&self) -> u64 {
        self.rings.iter().map(Consumer::captured).sum()
    }

    /// Frames the workers could not copy (rings full): `capture_dropped`.
    pub fn dropped(&self) -> u64 {
        self.rings.iter().map(Consumer::dropped).sum()
    }

    /// Whether every worker let go of its ring: nothing more will come.
    pub fn producers_gone(&self) -> bool {
        self.rings.iter().all(Consumer::producer_gone)
    }

    /// Whether the session is the port's capture (for the switch's bookkeeping).
    pub fn is(&self, weak: &Weak<()>) -> bool {
        Weak::ptr_eq(&Arc::downgrade(&self.token), weak)
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        for r in &self.rings {
            r.close();
        }
        // Let the workers drop their taps first, so that the buffers are freed here.
        let deadline = Instant::now() + RELEASE_WAIT;
        while !self.producers_gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::port::{MemPort, TxMode};

    fn opts(filter: Filter, snaplen: u32, ring: u32) -> CaptureOptions {
        CaptureOptions::new(filter, Some(snaplen), Some(ring), None).unwrap()
    }

    fn frame(i: u8, len: usize) -> Vec<u8> {
        vec![i; len]
    }

    fn drain(c: &Consumer) -> Vec<(Direction, u32, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(r) = c.pop() {
            v.push((r.direction(), r.orig_len(), r.data().to_vec()));
            c.recycle(r);
        }
        v
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            CaptureOptions::new(Filter::Both, Some(0), None, None),
            Err(CaptureError::Snaplen(0))
        );
        assert_eq!(
            CaptureOptions::new(Filter::Both, Some(70000), None, None),
            Err(CaptureError::Snaplen(70000))
        );
        assert_eq!(
            CaptureOptions::new(Filter::Both, None, Some(8), None),
            Err(CaptureError::Ring(8))
        );
        assert_eq!(
            CaptureOptions::new(Filter::Both, None, None, Some(0)),
            Err(CaptureError::Count)
        );
        let o = CaptureOptions::new(Filter::Out, None, None, Some(3)).unwrap();
        assert_eq!((o.snaplen, o.ring, o.count), (65535, 1024, Some(3)));
        assert_eq!(o.buffer_len(), MAX_COPY);
        assert_eq!(opts(Filter::In, 64, 16).buffer_len(), 64);
    }

    #[test]
    fn records_in_order_truncated_to_snaplen() {
        let mut pool = Pool::new(8);
        let (mut p, c) = ring(&opts(Filter::Both, 20, 16), Instant::now());
        let a = pool.alloc_with(&frame(1, 60)).unwrap();
        let b = pool.alloc_with(&frame(2, 10)).unwrap();
        p.record(Direction::In, &pool, &[a, b]);
        let got = drain(&c);
        assert_eq!(
            got,
            vec![
                (Direction::In, 60, frame(1, 20)),
                (Direction::In, 10, frame(2, 10))
            ]
        );
        assert_eq!((c.captured(), c.dropped()), (2, 0));
    }

    #[test]
    fn a_full_ring_counts_drops_and_recovers() {
        let mut pool = Pool::new(64);
        let (mut p, c) = ring(&opts(Filter::In, 64, 16), Instant::now());
        let descs: Vec<Desc> = (0..20)
            .map(|i| pool.alloc_with(&frame(i, 60)).unwrap())
            .collect();
        p.record(Direction::In, &pool, &descs);
        assert_eq!((c.captured(), c.dropped()), (16, 4));
        let got = drain(&c);
        assert_eq!(got.len(), 16);
        assert_eq!(got[15].2, frame(15, 60));
        // Recycled records are used again.
        p.record(Direction::In, &pool, &descs[..3]);
        assert_eq!((c.captured(), c.dropped()), (19, 4));
        assert_eq!(drain(&c).len(), 3);
    }

    #[test]
    fn the_filter_selects_directions() {
        let mut pool = Pool::new(8);
        let (mut p, c) = ring(&opts(Filter::Out, 64, 16), Instant::now());
        let d = pool.alloc_with(&frame(7, 60)).unwrap();
        p.record(Direction::In, &pool, &[d]);
        assert!(drain(&c).is_empty());
        p.stage(&pool, &[d]);
        p.commit(1);
        assert_eq!(drain(&c), vec![(Direction::Out, 60, frame(7, 60))]);
    }

    #[test]
    fn only_frames_the_port_accepted_are_kept() {
        let mut pool = Pool::new(8);
        let (mut p, c) = ring(&opts(Filter::Both, 64, 16), Instant::now());
        let descs: Vec<Desc> = (0..3)
            .map(|i| pool.alloc_with(&frame(i, 60)).unwrap())
            .collect();
        p.stage(&pool, &descs);
        p.commit(2);
        let got = drain(&c);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].2, frame(1, 60));
        // The third record went back to the free queue: all 16 usable.
        let many: Vec<Desc> = (0..16).map(|_| descs[0]).collect();
        p.record(Direction::In, &pool, &many);
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn a_tapped_port_copies_both_ways_and_forwards_everything() {
        let mut pool = Pool::new(64);
        let mut port = Tapped::new(MemPort::new(64, TxMode::Capture));
        let (p, c) = ring(&opts(Filter::Both, 64, 16), Instant::now());
        port.set_tap(Box::new(p));
        assert!(port.port.inject(&mut pool, &frame(1, 60)));
        let mut descs = [Desc::EMPTY; BURST];
        assert_eq!(port.rx_burst(&mut pool, &mut descs), 1);
        assert_eq!(port.tx_burst(&mut pool, &descs[..1]), 1);
        assert_eq!(port.port.take_sent(), vec![frame(1, 60)]);
        let got = drain(&c);
        assert_eq!(
            got,
            vec![
                (Direction::In, 60, frame(1, 60)),
                (Direction::Out, 60, frame(1, 60))
            ]
        );
        // A full ring: frames still forwarded, copies counted as dropped.
        for i in 0..20 {
            assert!(port.port.inject(&mut pool, &frame(i, 60)));
        }
        let n = port.rx_burst(&mut pool, &mut descs);
        assert_eq!(n, 20);
        assert_eq!(port.tx_burst(&mut pool, &descs[..n]), 20);
        assert_eq!(port.port.take_sent().len(), 20);
        assert_eq!((c.captured(), c.dropped()), (18, 24));
        assert_eq!(pool.available(), 64);
        // Closing the consumer drops the tap at the next poll.
        drop(c);
        assert!(port.is_tapped());
        port.rx_burst(&mut pool, &mut descs);
        assert!(!port.is_tapped());
    }

    #[test]
    fn a_session_merges_workers_by_time_and_ends_when_workers_let_go() {
        let epoch = Instant::now();
        let o = opts(Filter::In, 64, 16);
        let (mut p0, c0) = ring(&o, epoch);
        let (mut p1, c1) = ring(&o, epoch);
        let (s, weak) = CaptureSession::new("p".into(), o, vec![c0, c1], epoch);
        assert!(weak.upgrade().is_some() && s.is(&weak));
        let mut pool = Pool::new(8);
        let d = pool.alloc_with(&frame(1, 60)).unwrap();
        p1.record(Direction::In, &pool, &[d]);
        std::thread::sleep(Duration::from_millis(2));
        p0.record(Direction::In, &pool, &[d]);
        let mut out = Vec::new();
        s.drain(&mut out, 64);
        let order: Vec<usize> = out.iter().map(|(w, _)| *w).collect();
        assert_eq!(order, vec![1, 0]);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let t = s.unix_ns(&out[0].1);
        assert!(t <= now && now - t < 10_000_000_000, "{t} vs {now}");
        for (w, r) in out {
            s.recycle(w, r);
        }
        assert!(!s.producers_gone());
        drop(p0);
        assert!(!s.producers_gone());
        drop(p1);
        assert!(s.producers_gone());
        assert_eq!((s.captured(), s.dropped()), (2, 0));
        drop(s);
        assert!(weak.upgrade().is_none());
    }
}
