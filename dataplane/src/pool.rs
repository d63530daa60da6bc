//! Frame buffers: a fixed set of equal chunks, each holding one frame with headroom in
//! front of it, and small `Copy` descriptors that name a frame inside them.
//!
//! This is the shape of an AF_XDP UMEM, so the pipeline works the same over in-memory
//! ports (tests, replay, benchmarks) and AF_XDP ports: a descriptor moves from an RX
//! queue to a TX queue without copying the frame; a copy is made only when a frame goes
//! to several ports (flooding). The pool is owned by one worker: no lock, and after
//! construction no allocation.

use encap::Frame;

/// Bytes per chunk.
pub const CHUNK_SIZE: usize = 2048;
/// Headroom left in front of a received frame (room for VXLAN over IPv6 and tags).
pub const HEADROOM: usize = 256;
/// Largest frame a chunk can hold after the headroom.
pub const MAX_FRAME: usize = CHUNK_SIZE - HEADROOM;
/// Distance between two chunks: one cache line more than a chunk, so that the frames of
/// a batch (all at the same offset in their chunks) spread over every cache set instead
/// of two L1 sets.
const CHUNK_STRIDE: usize = CHUNK_SIZE + 64;

/// A frame in the pool: chunk number, offset of its first byte in the chunk, length.
/// Only a [`Pool`] makes them, so their bounds always hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    chunk: u32,
    head: u16,
    len: u16,
}

/// A pool of frame chunks with a free list.
#[derive(Debug)]
pub struct Pool {
    mem: Box<[u8]>,
    free: Vec<u32>,
    chunks: u32,
}

impl Pool {
    /// A pool of `chunks` chunks of [`CHUNK_SIZE`] bytes.
    pub fn new(chunks: u32) -> Self {
        Pool {
            mem: vec![0u8; chunks as usize * CHUNK_STRIDE].into_boxed_slice(),
            free: (0..chunks).rev().collect(),
            chunks,
        }
    }

    /// Chunks in the pool.
    pub fn capacity(&self) -> u32 {
        self.chunks
    }

    /// Chunks free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes a free chunk and copies `bytes` into it after the headroom. `None` when the
    /// pool is empty or the frame does not fit.
    pub fn alloc_with(&mut self, bytes: &[u8]) -> Option<Desc> {
        if bytes.len() > MAX_FRAME {
            return None;
        }
        let chunk = self.free.pop()?;
        let d = Desc {
            chunk,
            head: HEADROOM as u16,
            len: bytes.len() as u16,
        };
        self.chunk_mut(chunk)[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
        Some(d)
    }

    /// A copy of `d` in a new chunk, with the same headroom.
    pub fn clone_desc(&mut self, d: Desc) -> Option<Desc> {
        let chunk = self.free.pop()?;
        let (h, l) = (usize::from(d.head), usize::from(d.len));
        let src = d.chunk as usize * CHUNK_STRIDE;
        let dst = chunk as usize * CHUNK_STRIDE;
        self.mem.copy_within(src + h..src + h + l, dst + h);
        Some(Desc { chunk, ..d })
    }

    /// Returns the chunk of `d` to the pool.
    pub fn free(&mut self, d: Desc) {
        debug_assert!(d.chunk < self.chunks);
        if self.free.len() < self.chunks as usize {
            self.free.push(d.chunk);
        }
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self, d: Desc) -> &[u8] {
        let base = d.chunk as usize * CHUNK_STRIDE;
        let (h, l) = (usize::from(d.head), usize::from(d.len));
        &self.mem[base + h..base + h + l]
    }

    /// The frame as a handle for in-place operations; write its head and length back
    /// with [`Desc::settle`].
    #[inline]
    pub fn frame(&mut self, d: Desc) -> Frame<&mut [u8]> {
        Frame::clamped(
            self.chunk_mut(d.chunk),
            usize::from(d.head),
            usize::from(d.len),
        )
    }

    /// A descriptor for a frame that a port wrote into `chunk` at `head`, checked
    /// against the pool's bounds.
    #[inline]
    pub fn desc(&self, chunk: u32, head: u16, len: u16) -> Option<Desc> {
        (chunk < self.chunks && usize::from(head) + usize::from(len) <= CHUNK_SIZE)
            .then_some(Desc { chunk, head, len })
    }

    #[inline]
    fn chunk_mut(&mut self, chunk: u32) -> &mut [u8] {
        let base = chunk as usize * CHUNK_STRIDE;
        &mut self.mem[base..base + CHUNK_SIZE]
    }
}

impl Desc {
    /// A placeholder for unused array slots: chunk 0, empty.
    pub const EMPTY: Desc = Desc {
        chunk: 0,
        head: 0,
        len: 0,
    };

    /// Chunk index.
    #[inline]
    pub fn chunk(self) -> u32 {
        self.chunk
    }

    /// Frame length.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        usize::from(self.len)
    }

    /// The descriptor of `frame` after an in-place operation.
    #[inline]
    pub fn settle<B: AsRef<[u8]>>(self, frame: &Frame<B>) -> Desc {
        Desc {
            chunk: self.chunk,
            head: frame.head() as u16,
            len: frame.len() as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_clone_free() {
        let mut p = Pool::new(2);
        let a = p.alloc_with(&[1, 2, 3]).unwrap();
        assert_eq!(p.data(a), &[1, 2, 3]);
        let b = p.clone_desc(a).unwrap();
        assert_ne!(a.chunk, b.chunk);
        assert_eq!(p.data(b), &[1, 2, 3]);
        assert!(p.clone_desc(a).is_none());
        p.free(a);
        assert_eq!(p.available(), 1);
        let mut f = p.frame(b);
        encap::vlan::push(
            &mut f,
            encap::vlan::VlanTag::dot1q(encap::VlanId::try_new(5).unwrap()),
        )
        .unwrap_err();
        assert!(p.alloc_with(&[0; MAX_FRAME + 1]).is_none());
    }
}
