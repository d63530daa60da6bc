//! Ports: batched receive and send over frame descriptors.
//!
//! A port hands the worker up to [`BURST`] received frames at a time and takes frames to
//! send as a slice of descriptors, one call per port per batch. [`MemPort`] keeps frames in
//! memory: tests, `vswitch replay` and the benchmarks drive the real pipeline through it.
//! AF_XDP ports implement the same trait over a UMEM.

use std::collections::VecDeque;

use crate::pool::{Desc, Pool};

/// Frames per receive burst.
pub const BURST: usize = 32;

/// A switch port as the worker sees it.
pub trait Port {
    /// Receives up to [`BURST`] frames; returns how many were written to `out`.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize;

    /// Sends `frames`, taking ownership of the ones it accepts (a prefix); returns how many
    /// it accepted. The caller frees the rest and counts them as dropped.
    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize;

    /// Whether the port forwards: frames for a port that is down are dropped (counted
    /// as [`DropReason::PortDown`](crate::counters::DropReason::PortDown)) without a
    /// call to [`Port::tx_burst`].
    fn is_up(&self) -> bool {
        true
    }

    /// Housekeeping the worker runs about once a second, never per packet: an AF_XDP
    /// port checks its netdev here (marks itself down, re-opens it when it is back).
    fn maintain(&mut self, _pool: &mut Pool) {}

    /// The port is being removed from a running switch: give the frames it holds back
    /// to `pool` (an AF_XDP port's fill and transmit rings) before it is dropped.
    fn close(&mut self, _pool: &mut Pool) {}

    /// Frames the kernel dropped before this port could receive them, since it was
    /// opened (AF_XDP: no fill-ring buffer, RX ring full); read for `ctl stats`, never
    /// per packet. Default: 0.
    fn kernel_rx_dropped(&mut self) -> u64 {
        0
    }

    /// Whether frames the kernel already delivered wait on this port's receive rings
    /// (see [`poll_kernel`]). Default: no.
    #[inline]
    fn rx_waiting(&mut self) -> bool {
        false
    }

    /// Runs one busy poll of the kernel's receive work for the worker's ports if this
    /// port carries the worker's busy-poll ring (AF_XDP ports with NAPI busy polling:
    /// one system call for all of them); returns whether it did. Default: no.
    #[inline]
    fn busy_poll(&mut self) -> bool {
        false
    }
}

/// A worker's port array has holes where a running switch removed a port (and at the
/// numbers of tunnel ports): a hole receives nothing, sends nothing and is down.
impl<P: Port> Port for Option<P> {
    #[inline]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        match self {
            Some(p) => p.rx_burst(pool, out),
            None => 0,
        }
    }

    #[inline]
    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        match self {
            Some(p) => p.tx_burst(pool, frames),
            None => 0,
        }
    }

    #[inline]
    fn is_up(&self) -> bool {
        self.as_ref().is_some_and(Port::is_up)
    }

    fn maintain(&mut self, pool: &mut Pool) {
        if let Some(p) = self {
            p.maintain(pool);
        }
    }

    fn close(&mut self, pool: &mut Pool) {
        if let Some(p) = self {
            p.close(pool);
        }
    }

    fn kernel_rx_dropped(&mut self) -> u64 {
        self.as_mut().map_or(0, Port::kernel_rx_dropped)
    }

    #[inline]
    fn rx_waiting(&mut self) -> bool {
        self.as_mut().is_some_and(Port::rx_waiting)
    }

    #[inline]
    fn busy_poll(&mut self) -> bool {
        self.as_mut().is_some_and(Port::busy_poll)
    }
}

/// Kernel work for a worker's ports, run in the worker's thread once per loop iteration
/// before they are polled (never per packet): the first port that carries the worker's
/// busy-poll ring runs one busy poll of the ports' NAPIs, unless a port still has
/// received frames waiting (the worker first catches up with what the last poll brought
/// in).
#[inline]
pub fn poll_kernel<P: Port>(ports: &mut [P]) {
    if ports.iter_mut().any(|p| p.rx_waiting()) {
        return;
    }
    for p in ports {
        if p.busy_poll() {
            return;
        }
    }
}

/// What a [`MemPort`] does with frames sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Copy each frame out (see [`MemPort::take_sent`]) and free its chunk.
    Capture,
    /// Count and free: no allocation, for benchmarks and allocation tests.
    Discard,
}

/// An in-memory port.
#[derive(Debug)]
pub struct MemPort {
    rx: VecDeque<Desc>,
    rx_capacity: usize,
    mode: TxMode,
    sent: Vec<Vec<u8>>,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

impl MemPort {
    /// A port whose receive queue holds up to `rx_capacity` frames.
    pub fn new(rx_capacity: usize, mode: TxMode) -> Self {
        MemPort {
            rx: VecDeque::with_capacity(rx_capacity),
            rx_capacity,
            mode,
            sent: Vec::new(),
            tx_frames: 0,
            tx_bytes: 0,
        }
    }

    /// Queues `bytes` as a received frame; false when the queue or the pool is full or
    /// the frame is too large for a chunk.
    pub fn inject(&mut self, pool: &mut Pool, bytes: &[u8]) -> bool {
        if self.rx.len() == self.rx_capacity {
            return false;
        }
        match pool.alloc_with(bytes) {
            Some(d) => {
                self.rx.push_back(d);
                true
            }
            None => false,
        }
    }

    /// Frames waiting to be received.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// The frames sent since the last call, in order (capture mode).
    pub fn take_sent(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.sent)
    }
}

impl Port for MemPort {
    fn rx_burst(&mut self, _pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        let n = self.rx.len().min(BURST);
        for (slot, d) in out.iter_mut().zip(self.rx.drain(..n)) {
            *slot = d;
        }
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        for &d in frames {
            self.tx_frames += 1;
            self.tx_bytes += d.len() as u64;
            if self.mode == TxMode::Capture {
                self.sent.push(pool.data(d).to_vec());
            }
            pool.free(d);
        }
        frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_receive_send() {
        let mut pool = Pool::new(4);
        let mut p = MemPort::new(2, TxMode::Capture);
        assert!(p.inject(&mut pool, &[1; 60]));
        assert!(p.inject(&mut pool, &[2; 60]));
        assert!(!p.inject(&mut pool, &[3; 60]), "rx queue full");
        let mut descs = [pool.desc(0, 0, 0).unwrap(); BURST];
        assert_eq!(p.rx_burst(&mut pool, &mut descs), 2);
        assert_eq!(pool.available(), 2);
        assert_eq!(p.tx_burst(&mut pool, &descs[..2]), 2);
        assert_eq!(pool.available(), 4);
        let sent = p.take_sent();
        assert_eq!(sent, vec![vec![1; 60], vec![2; 60]]);
    }
}
