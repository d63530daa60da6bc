//! Frame buffers: a fixed set of equal chunks, each holding one frame with headroom in
//! front of it, and small `Copy` descriptors that name a frame inside them.
//!
//! This is the shape of an AF_XDP UMEM, so the pipeline works the same over in-memory
//! ports (tests, replay, benchmarks) and AF_XDP ports: a descriptor moves from an RX
//! queue to a TX queue without copying the frame; a copy is made only when a frame goes
//! to several ports (flooding). The pool is owned by one worker: no lock, and after
//! construction no allocation.
//!
//! The chunks live either on the heap ([`Pool::new`]: tests, replay, benchmarks) or in
//! the memory of an AF_XDP UMEM ([`Pool::on_umem`]): then a chunk is a UMEM frame, a
//! descriptor's chunk and head are the frame address the rings carry, and the same pool
//! serves every socket of the worker. The pool owns the chunks on its free list and the
//! ones named by descriptors it handed out; an AF_XDP port takes chunks from the free
//! list for its fill ring ([`Pool::take_chunk`]) and gives them back from its completion
//! ring ([`Pool::free_chunk`]).

use encap::Frame;

use crate::xsk::UmemArea;

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

/// Where a pool's chunks live.
#[derive(Debug)]
enum Backing {
    /// Heap memory, chunks [`CHUNK_STRIDE`] apart.
    Heap(Box<[u8]>),
    /// A UMEM's frames, one chunk per frame.
    Umem(UmemArea),
}

impl Backing {
    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Heap(m) => m,
            Backing::Umem(u) => u.as_slice(),
        }
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Backing::Heap(m) => m,
            Backing::Umem(u) => u.as_mut_slice(),
        }
    }
}

/// A pool of frame chunks with a free list.
#[derive(Debug)]
pub struct Pool {
    mem: Backing,
    free: Vec<u32>,
    chunks: u32,
    /// Bytes usable per chunk ([`CHUNK_SIZE`], or the UMEM frame size).
    chunk_size: usize,
    /// Distance between two chunks.
    stride: usize,
}

impl Pool {
    /// A pool of `chunks` chunks of [`CHUNK_SIZE`] bytes.
    pub fn new(chunks: u32) -> Self {
        Pool {
            mem: Backing::Heap(vec![0u8; chunks as usize * CHUNK_STRIDE].into_boxed_slice()),
            free: (0..chunks).rev().collect(),
            chunks,
            chunk_size: CHUNK_SIZE,
            stride: CHUNK_STRIDE,
        }
    }

    /// A pool over the frames of a UMEM: one chunk per frame, every chunk free. Frames
    /// keep [`HEADROOM`] in front of the data (the kernel's `XDP_PACKET_HEADROOM`).
    pub fn on_umem(area: UmemArea) -> Self {
        let chunks = area.frames();
        let frame = area.frame_size();
        Pool {
            mem: Backing::Umem(area),
            free: (0..chunks).rev().collect(),
            chunks,
            chunk_size: frame,
            stride: frame,
        }
    }

    /// Bytes per chunk: [`CHUNK_SIZE`] on the heap, the frame size on a UMEM.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Largest frame a chunk holds after the headroom.
    pub fn max_frame(&self) -> usize {
        self.chunk_size - HEADROOM
    }

    /// Takes a free chunk for a port to receive into (an AF_XDP fill ring).
    #[inline]
    pub fn take_chunk(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Gives back a chunk taken with [`Pool::take_chunk`] or named by a descriptor the
    /// pool handed out (an AF_XDP completion ring).
    #[inline]
    pub fn free_chunk(&mut self, chunk: u32) {
        debug_assert!(chunk < self.chunks);
        if chunk < self.chunks && self.free.len() < self.chunks as usize {
            self.free.push(chunk);
        }
    }

    /// The byte offset of a chunk's start in the pool's memory: on a UMEM, the frame
    /// address of the fill ring.
    #[inline]
    pub fn chunk_addr(&self, chunk: u32) -> u64 {
        chunk as u64 * self.stride as u64
    }

    /// The descriptor of the frame at byte offset `addr` (a UMEM address from an RX
    /// ring) of `len` bytes; `None` if it is out of bounds or crosses a chunk.
    #[inline]
    pub fn desc_at(&self, addr: u64, len: u32) -> Option<Desc> {
        let stride = self.stride as u64;
        let chunk = u32::try_from(addr / stride).ok()?;
        let head = u16::try_from(addr % stride).ok()?;
        self.desc(chunk, head, u16::try_from(len).ok()?)
    }

    /// The byte offset of `d`'s first byte in the pool's memory: on a UMEM, the address
    /// a TX descriptor carries.
    #[inline]
    pub fn addr(&self, d: Desc) -> u64 {
        self.chunk_addr(d.chunk) + u64::from(d.head)
    }

    /// The chunk that holds byte offset `addr` (a UMEM address from a completion ring).
    #[inline]
    pub fn chunk_of(&self, addr: u64) -> Option<u32> {
        u32::try_from(addr / self.stride as u64)
            .ok()
            .filter(|&c| c < self.chunks)
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
        if bytes.len() > self.max_frame() {
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
        let src = d.chunk as usize * self.stride;
        let dst = chunk as usize * self.stride;
        self.mem
            .bytes_mut()
            .copy_within(src + h..src + h + l, dst + h);
        Some(Desc { chunk, ..d })
    }

    /// Returns the chunk of `d` to the pool.
    pub fn free(&mut self, d: Desc) {
        self.free_chunk(d.chunk);
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self, d: Desc) -> &[u8] {
        let base = d.chunk as usize * self.stride;
        let (h, l) = (usize::from(d.head), usize::from(d.len));
        &self.mem.bytes()[base + h..base + h + l]
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
        (chunk < self.chunks && usize::from(head) + usize::from(len) <= self.chunk_size)
            .then_some(Desc { chunk, head, len })
    }

    #[inline]
    fn chunk_mut(&mut self, chunk: u32) -> &mut [u8] {
        let (base, size) = (chunk as usize * self.stride, self.chunk_size);
        &mut self.mem.bytes_mut()[base..base + size]
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

    #[test]
    fn addresses_round_trip() {
        let mut p = Pool::new(4);
        let c = p.take_chunk().unwrap();
        let d = p.desc_at(p.chunk_addr(c) + HEADROOM as u64, 60).unwrap();
        assert_eq!((d.chunk(), d.len()), (c, 60));
        assert_eq!(p.addr(d), p.chunk_addr(c) + HEADROOM as u64);
        assert_eq!(p.chunk_of(p.addr(d)), Some(c));
        assert!(p
            .desc_at(p.chunk_addr(c) + CHUNK_SIZE as u64 - 10, 60)
            .is_none());
        assert!(p.chunk_of(p.chunk_addr(4)).is_none());
        p.free_chunk(c);
        assert_eq!(p.available(), 4);
    }
}
