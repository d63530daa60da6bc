//! A zero-copy in-memory port for the benchmark: received frames come from a ring of
//! chunks filled once, before the timed loop, so the measurement contains no frame copy.
//!
//! [`MemPort::inject`](dataplane::port::MemPort::inject) copies every frame into a chunk
//! (the NIC's DMA, in effect); at 40 Mpps that copy would cost as much as the switching.
//! [`RingPort`] implements the same [`Port`] trait the pipeline is generic over, so no
//! dataplane API is needed: its receive burst hands out the next 32 descriptors of its
//! ring, and a send returns nothing to any queue — the ring re-issues its chunks in
//! order, and by the time it wraps the pipeline has long sent them (a poll switches and
//! flushes a burst before it receives the next). What a send must do:
//!
//! - a chunk of a ring whose frame was rewritten (a tag pushed or popped: the descriptor
//!   no longer has its original head and length) gets its first [`HDR_LEN`] bytes back,
//!   which is all a push or pop touches;
//! - a chunk that is not a ring's (a flood copy) goes back to the pool.
//!
//! A ring has a fixed size, like a NIC's receive queue (`--ring`, 1024 by default), so
//! that a worker's memory footprint does not depend on how the flows are split between
//! workers. With at most that many flows, chunk `k` holds flow `k % flows` for good;
//! with more, each receive writes the next flow's [`HDR_LEN`]-byte header into the chunk,
//! as a NIC would: 16 bytes instead of the whole frame, the same in the pipeline and the
//! null pipeline (and reported).

use std::rc::Rc;

use dataplane::pool::{Desc, Pool};
use dataplane::port::{Port, BURST};

use super::traffic::{Hdr, Stream, HDR_LEN};

/// Default chunks per ring (a common NIC receive queue size).
pub const DEFAULT_RING: usize = 1024;
/// Fewest chunks of a ring: two bursts, so a burst never holds a chunk twice.
pub const MIN_RING: usize = 2 * BURST;

/// What a chunk is to the ports of one worker (one byte: the lookup on every send
/// stays in L1).
const POOL: u8 = 0;
/// A ring's chunk, refilled on receive or never rewritten: nothing to do on send.
const KEEP: u8 = 1;
/// A ring's chunk holding its frame for good: restore its header if a rewrite moved it.
const RESTORE: u8 = 2;

/// Which chunks belong to the rings of one worker's ports (shared by its ports).
#[derive(Debug)]
pub struct Chunks {
    /// Per chunk: [`POOL`], [`KEEP`] or [`RESTORE`].
    owner: Box<[u8]>,
    /// Per chunk: its descriptor as filled, and its first bytes ([`RESTORE`] chunks).
    orig: Box<[(Desc, Hdr)]>,
}

/// A port whose receive side replays a ring of pre-filled chunks.
#[derive(Debug)]
pub struct RingPort {
    ring: Box<[Desc]>,
    next: usize,
    feed: Box<[Hdr]>,
    /// Where the fed bytes go in a frame.
    feed_at: usize,
    next_hdr: usize,
    chunks: Rc<Chunks>,
    /// Frames sent to this port.
    pub tx_frames: u64,
    /// Ring chunks whose header was restored after a rewrite.
    pub restored: u64,
}

/// How the rings of a worker were laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct RingInfo {
    /// Chunks in the rings.
    pub chunks: usize,
    /// Bytes written into a chunk per received frame (0: static rings).
    pub rx_write_bytes: usize,
}

/// Chunks needed in a pool for the rings of `streams`, `ring` chunks each.
pub fn ring_chunks(streams: &[Stream], ring: usize) -> usize {
    streams.len() * ring.max(MIN_RING)
}

/// Builds `ports` ports, with a ring of `ring` chunks for each stream on its ingress
/// port, from `pool` (whose chunks must all be free).
pub fn build(
    ports: usize,
    streams: &[Stream],
    ring: usize,
    pool: &mut Pool,
) -> Option<(Vec<RingPort>, RingInfo)> {
    let ring_len = ring.max(MIN_RING);
    let mut owner = vec![POOL; pool.capacity() as usize];
    let mut orig = vec![(Desc::EMPTY, [0u8; HDR_LEN]); pool.capacity() as usize];
    let mut rings: Vec<(Vec<Desc>, Vec<Hdr>, usize)> =
        (0..ports).map(|_| Default::default()).collect();
    let mut info = RingInfo::default();
    let mut frame = Vec::new();
    for s in streams {
        let fed = s.hdrs.len() > ring_len;
        let (ring, feed, feed_at) = rings.get_mut(usize::from(s.port))?;
        *feed_at = s.hdr_at;
        for k in 0..ring_len {
            let hdr = *s.hdrs.get(k % s.hdrs.len())?;
            frame.clear();
            frame.extend_from_slice(&s.template);
            frame
                .get_mut(s.hdr_at..s.hdr_at + HDR_LEN)?
                .copy_from_slice(&hdr);
            let d = pool.alloc_with(&frame)?;
            let c = d.chunk() as usize;
            owner[c] = if fed || !s.rewritten { KEEP } else { RESTORE };
            orig[c] = (d, hdr);
            ring.push(d);
        }
        if fed {
            feed.extend_from_slice(&s.hdrs);
            info.rx_write_bytes = HDR_LEN;
        }
        info.chunks += ring.len();
    }
    let chunks = Rc::new(Chunks {
        owner: owner.into_boxed_slice(),
        orig: orig.into_boxed_slice(),
    });
    let ports = rings
        .into_iter()
        .map(|(ring, feed, feed_at)| RingPort {
            ring: ring.into_boxed_slice(),
            next: 0,
            feed: feed.into_boxed_slice(),
            feed_at,
            next_hdr: 0,
            chunks: Rc::clone(&chunks),
            tx_frames: 0,
            restored: 0,
        })
        .collect();
    Some((ports, info))
}

impl Port for RingPort {
    #[inline(always)]
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        let len = self.ring.len();
        if len == 0 {
            return 0;
        }
        for slot in out.iter_mut() {
            let d = self.ring[self.next];
            self.next += 1;
            if self.next == len {
                self.next = 0;
            }
            if !self.feed.is_empty() {
                // The feed is read in order, but under the switch's random FDB traffic
                // the hardware prefetcher does not keep up: ask for the headers of the
                // burst after next (a NIC's DMA would not cost the CPU these loads).
                let ahead = (self.next_hdr + 2 * BURST) % self.feed.len();
                mem_prefetch::prefetch_read_data::<_, 3>(&self.feed[ahead]);
                let hdr = &self.feed[self.next_hdr];
                self.next_hdr += 1;
                if self.next_hdr == self.feed.len() {
                    self.next_hdr = 0;
                }
                let at = self.feed_at;
                if let Some(b) = pool.frame(d).data_mut().get_mut(at..at + HDR_LEN) {
                    b.copy_from_slice(hdr);
                }
            }
            *slot = d;
        }
        BURST
    }

    #[inline(always)]
    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        let chunks = &*self.chunks;
        for &d in frames {
            let c = d.chunk() as usize;
            match chunks.owner.get(c).copied().unwrap_or(POOL) {
                KEEP => {}
                RESTORE => {
                    if let Some(&(orig, hdr)) = chunks.orig.get(c) {
                        if d != orig {
                            pool.frame(orig).data_mut()[..HDR_LEN].copy_from_slice(&hdr);
                            self.restored += 1;
                        }
                    }
                }
                _ => pool.free(d),
            }
        }
        self.tx_frames += frames.len() as u64;
        frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::traffic::{Profile, Spec};

    #[test]
    fn rings_recycle_and_restore() {
        let spec = Spec::new(Profile::Trunk, 10, 10, 60, 1).unwrap();
        let streams = spec.streams_for(0, 1);
        let mut pool = Pool::new(ring_chunks(&streams, 64) as u32 + 8);
        let (mut ports, info) = build(2, &streams, 64, &mut pool).unwrap();
        assert_eq!(info.chunks, 2 * 64);
        assert_eq!(pool.available(), 8);
        let mut descs = [Desc::EMPTY; BURST];
        assert_eq!(ports[1].rx_burst(&mut pool, &mut descs), BURST);
        let before = pool.data(descs[0]).to_vec();
        let mut f = pool.frame(descs[0]);
        encap::vlan::pop(&mut f).unwrap();
        let popped = descs[0].settle(&f);
        let copy = pool.alloc_with(&[0; 60]).unwrap();
        ports[0].tx_burst(&mut pool, &[popped, copy]);
        assert_eq!(pool.data(descs[0]), &before[..]);
        assert_eq!((ports[0].restored, pool.available()), (1, 8));
    }
}
