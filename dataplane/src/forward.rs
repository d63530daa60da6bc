//! Forward-only ("null") mode: the workers, ports and sockets of the switch with no
//! switching logic, to measure what the ports themselves can carry.
//!
//! # Why
//!
//! A benchmark of the switch needs its ceiling: how many frames per second the same
//! workers move over the same AF_XDP sockets when they do nothing but move them. The
//! [`Forwarder`] is that: each worker receives a burst from port `2i` and hands the
//! same descriptors to port `2i + 1` (and back), in the worker's shared UMEM, without
//! reading a byte of the frames: no parsing, no learning, no lookup, no rewrite. The
//! last port of an odd number has no peer: its frames are received and dropped,
//! counted as [`DropReason::NoPeer`].
//!
//! It is a separate engine, chosen when the worker starts
//! ([`SwitchParams::forward_only`](crate::config::SwitchParams::forward_only)), not a
//! mode inside the [`Pipeline`](crate::pipeline::Pipeline): the pipeline's per-packet
//! path has no test for it. It keeps the same per-port and per-reason [`Counters`] as
//! the pipeline, so `ctl stats` reads the same for both.

use flowtable::PortId;

use crate::counters::{Counters, DropReason};
use crate::pool::{Desc, Pool};
use crate::port::{Port, BURST};

/// What one poll did: frames received, and bursts they came in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polled {
    /// Frames received.
    pub packets: usize,
    /// Non-empty receive bursts.
    pub batches: usize,
}

/// One worker's forward-only engine: port pairs, and counters.
#[derive(Debug)]
pub struct Forwarder {
    /// `(a, b)`: what `a` receives is sent on `b`, and the other way round.
    pairs: Vec<(PortId, PortId)>,
    /// The last of an odd number of ports: its frames are dropped.
    lonely: Option<PortId>,
    counters: Counters,
}

impl Forwarder {
    /// A forwarder over the ports numbered `order` (configuration order): `order[2i]`
    /// and `order[2i + 1]` are paired. `slots` is the size of the port-number space
    /// (the per-port counters' length).
    pub fn new(order: &[PortId], slots: usize) -> Self {
        let mut f = Forwarder {
            pairs: Vec::new(),
            lonely: None,
            counters: Counters::new(slots),
        };
        f.set_ports(order, slots);
        f
    }

    /// Pairs the ports anew (ports added or removed): `order` and `slots` as in
    /// [`Forwarder::new`]. Counters of ports that stay are kept.
    pub fn set_ports(&mut self, order: &[PortId], slots: usize) {
        let mut chunks = order.chunks_exact(2);
        self.pairs = chunks.by_ref().map(|c| (c[0], c[1])).collect();
        self.lonely = chunks.remainder().first().copied();
        let slots = slots.max(order.iter().map(|p| p.index() + 1).max().unwrap_or(0));
        if self.counters.ports.len() < slots {
            self.counters.ports.resize(slots, Default::default());
        }
    }

    /// The port pairs.
    pub fn pairs(&self) -> &[(PortId, PortId)] {
        &self.pairs
    }

    /// The port without a peer, if the number of ports is odd.
    pub fn lonely(&self) -> Option<PortId> {
        self.lonely
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The counters, for the worker (a removed port's are zeroed).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// Receives one burst from every port and sends it on the port's peer.
    pub fn poll<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool) -> Polled {
        let mut descs = [Desc::EMPTY; BURST];
        let mut polled = Polled::default();
        for k in 0..self.pairs.len() {
            let (a, b) = self.pairs[k];
            self.pass(ports, pool, a, Some(b), &mut descs, &mut polled);
            self.pass(ports, pool, b, Some(a), &mut descs, &mut polled);
        }
        if let Some(l) = self.lonely {
            self.pass(ports, pool, l, None, &mut descs, &mut polled);
        }
        polled
    }

    /// One burst from `from` to `to` (dropped as [`DropReason::NoPeer`] without one).
    #[inline]
    fn pass<P: Port>(
        &mut self,
        ports: &mut [P],
        pool: &mut Pool,
        from: PortId,
        to: Option<PortId>,
        descs: &mut [Desc; BURST],
        polled: &mut Polled,
    ) {
        let Some(src) = ports.get_mut(from.index()) else {
            return;
        };
        let n = src.rx_burst(pool, descs);
        if n == 0 {
            return;
        }
        polled.packets += n;
        polled.batches += 1;
        let batch = &descs[..n];
        if let Some(pc) = self.counters.ports.get_mut(from.index()) {
            pc.rx_frames += n as u64;
            pc.rx_bytes += batch.iter().map(|d| d.len() as u64).sum::<u64>();
        }
        let (sent, reason) = match to.and_then(|t| ports.get_mut(t.index())) {
            Some(dst) if dst.is_up() => (dst.tx_burst(pool, batch), DropReason::TxFull),
            Some(_) => (0, DropReason::PortDown),
            None if to.is_none() => (0, DropReason::NoPeer),
            None => (0, DropReason::NoPort),
        };
        if let Some(pc) = to.and_then(|t| self.counters.ports.get_mut(t.index())) {
            pc.tx_frames += sent as u64;
            pc.tx_bytes += batch[..sent].iter().map(|d| d.len() as u64).sum::<u64>();
        }
        for &d in &batch[sent..] {
            self.counters.drop(reason);
            pool.free(d);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::port::{MemPort, TxMode};

    fn frame(i: u8) -> Vec<u8> {
        vec![i; 60]
    }

    #[test]
    fn pairs_forward_both_ways_and_the_odd_port_drops() {
        let mut pool = Pool::new(256);
        let mut ports: Vec<MemPort> = (0..5).map(|_| MemPort::new(64, TxMode::Capture)).collect();
        let order: Vec<PortId> = (0..5).map(PortId).collect();
        let mut f = Forwarder::new(&order, 5);
        assert_eq!(f.pairs(), &[(PortId(0), PortId(1)), (PortId(2), PortId(3))]);
        assert_eq!(f.lonely(), Some(PortId(4)));
        for i in 0..3 {
            assert!(ports[0].inject(&mut pool, &frame(i)));
        }
        assert!(ports[1].inject(&mut pool, &frame(10)));
        assert!(ports[3].inject(&mut pool, &frame(30)));
        assert!(ports[4].inject(&mut pool, &frame(40)));
        assert!(ports[4].inject(&mut pool, &frame(41)));
        let polled = f.poll(&mut ports, &mut pool);
        assert_eq!(
            polled,
            Polled {
                packets: 7,
                batches: 4
            }
        );
        // The frames arrive unchanged, in order, on the peer.
        assert_eq!(ports[1].take_sent(), vec![frame(0), frame(1), frame(2)]);
        assert_eq!(ports[0].take_sent(), vec![frame(10)]);
        assert_eq!(ports[2].take_sent(), vec![frame(30)]);
        assert!(ports[3].take_sent().is_empty());
        assert!(ports[4].take_sent().is_empty());
        let c = f.counters();
        assert_eq!((c.ports[0].rx_frames, c.ports[0].tx_frames), (3, 1));
        assert_eq!((c.ports[1].rx_frames, c.ports[1].tx_frames), (1, 3));
        assert_eq!(c.ports[1].tx_bytes, 180);
        assert_eq!(c.ports[4].rx_frames, 2);
        assert_eq!(c.dropped(DropReason::NoPeer), 2);
        assert_eq!(c.total_drops(), 2);
        // Nothing switched: no learning, no flooding counted.
        assert_eq!((c.learned, c.flooded, c.unicast), (0, 0, 0));
        // Every buffer is back.
        assert_eq!(pool.available(), 256);
    }

    #[test]
    fn pairs_follow_the_given_order() {
        let mut pool = Pool::new(16);
        let mut ports: Vec<MemPort> = (0..4).map(|_| MemPort::new(8, TxMode::Capture)).collect();
        // Ports 3 and 0 are a pair, then 1 and 2.
        let mut f = Forwarder::new(&[PortId(3), PortId(0), PortId(1), PortId(2)], 4);
        assert!(ports[3].inject(&mut pool, &frame(1)));
        f.poll(&mut ports, &mut pool);
        assert_eq!(ports[0].take_sent(), vec![frame(1)]);
        // Re-paired: 0 alone (dropped), nothing else.
        f.set_ports(&[PortId(0)], 4);
        assert!(ports[0].inject(&mut pool, &frame(2)));
        f.poll(&mut ports, &mut pool);
        assert_eq!(f.counters().dropped(DropReason::NoPeer), 1);
        assert_eq!(pool.available(), 16);
    }
}
