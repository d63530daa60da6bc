//! UMEM memory and its registration with the kernel.
//!
//! [`UmemArea`] is the memory: an anonymous mapping of `frames × frame_size` bytes that
//! a [`Pool`](crate::pool::Pool) owns and cuts into chunks. [`Umem`] is its registration
//! (libxdp's `xsk_umem`), shared by every socket of the worker; sockets hold it, so it is
//! deleted after the last of them.
//!
//! Who may touch a frame: the pool, for the chunks on its free list and those named by
//! descriptors it handed out; the kernel, for the chunks on a fill ring (until they come
//! back on an RX ring) and on a TX ring (until they come back on a completion ring). The
//! ports keep that protocol, so the pool never reads a chunk the kernel may be writing.
//! The kernel pins the registered pages: unmapping the area while a socket is still open
//! leaves the kernel writing into its own pinned pages, never into someone else's memory.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use libxdp_sys::{xsk_ring_cons, xsk_ring_prod, xsk_umem, xsk_umem_config};

use super::ring::{empty_cons, empty_prod};

/// The memory of a UMEM: `frames` frames of `frame_size` bytes, page aligned.
#[derive(Debug)]
pub struct UmemArea {
    ptr: NonNull<u8>,
    len: usize,
    frames: u32,
    frame_size: usize,
}

// SAFETY: the area is plain memory owned by this value alone; moving it to another
// thread moves that ownership (the kernel's access is governed by the rings, not by the
// thread that owns the area).
unsafe impl Send for UmemArea {}

impl UmemArea {
    /// Maps `frames` frames of `frame_size` bytes (a power of two from 2048 to 4096).
    pub fn new(frames: u32, frame_size: usize) -> io::Result<Self> {
        if !(2048..=4096).contains(&frame_size) || !frame_size.is_power_of_two() || frames == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("UMEM of {frames} frames of {frame_size} bytes: the frame size must be 2048 or 4096"),
            ));
        }
        let len = frames as usize * frame_size;
        // SAFETY: an anonymous private mapping with no address hint touches no existing
        // memory; the result is checked before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(UmemArea {
            ptr,
            len,
            frames,
            frame_size,
        })
    }

    /// Frames in the area.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// The whole area, read-only.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes owned by `self`, and the
        // borrow of `self` keeps it mapped. The kernel writes only to frames the pool has
        // handed to a fill ring, which the pool does not read until they come back (see
        // the module documentation).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole area, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and the exclusive borrow of `self` makes this the only
        // reference into the area on the user's side.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length and no reference into it
        // outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Ring sizes of a UMEM and its sockets (powers of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSizes {
    /// Fill ring entries per socket.
    pub fill: u32,
    /// Completion ring entries per socket.
    pub comp: u32,
    /// RX ring entries per socket.
    pub rx: u32,
    /// TX ring entries per socket.
    pub tx: u32,
}

impl Default for RingSizes {
    fn default() -> Self {
        RingSizes {
            fill: 1024,
            comp: 1024,
            rx: 1024,
            tx: 1024,
        }
    }
}

pub(super) struct UmemInner {
    ptr: NonNull<xsk_umem>,
    // The fill/completion pair libxdp saved at creation for the first socket: it keeps
    // pointers to them until that socket exists (or until the UMEM is deleted).
    _saved: (Box<xsk_ring_prod>, Box<xsk_ring_cons>),
    pub(super) frame_size: usize,
    pub(super) sizes: RingSizes,
}

impl std::fmt::Debug for UmemInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UmemInner")
            .field("frame_size", &self.frame_size)
            .field("sizes", &self.sizes)
            .finish_non_exhaustive()
    }
}

impl Drop for UmemInner {
    fn drop(&mut self) {
        // SAFETY: every socket holds a `Umem`, so none is left; the saved rings are still
        // alive (fields are dropped after this).
        unsafe { libxdp_sys::xsk_umem__delete(self.ptr.as_ptr()) };
    }
}

/// A UMEM registration, shared by the sockets of one worker. libxdp's socket creation and
/// deletion walk per-UMEM state it does not lock: the mutex serialises them.
#[derive(Debug, Clone)]
pub struct Umem {
    pub(super) inner: Arc<Mutex<UmemInner>>,
}

// SAFETY: the raw UMEM pointer is only used under the mutex (socket creation/deletion)
// and in `Drop` of the last handle; libxdp's UMEM state is not tied to a thread.
unsafe impl Send for UmemInner {}

impl Umem {
    /// Registers `area` as a UMEM with `sizes` for the rings of its sockets. Errors are
    /// the raw OS error (ENOMEM/EPERM: locked-memory limit).
    pub fn register(area: &UmemArea, sizes: RingSizes) -> io::Result<Self> {
        let mut fill = Box::new(empty_prod());
        let mut comp = Box::new(empty_cons());
        let cfg = xsk_umem_config {
            fill_size: sizes.fill,
            comp_size: sizes.comp,
            frame_size: area.frame_size as u32,
            frame_headroom: 0,
            flags: 0,
        };
        let mut umem: *mut xsk_umem = ptr::null_mut();
        // SAFETY: `area` is a live page-aligned mapping of `len` bytes which the kernel
        // pins on registration; the ring structs are heap allocated and kept in the
        // returned value for as long as libxdp may refer to them; `cfg` outlives the call.
        let rc = unsafe {
            libxdp_sys::xsk_umem__create(
                &mut umem,
                area.ptr.as_ptr().cast(),
                area.len as u64,
                &mut *fill,
                &mut *comp,
                &cfg,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        let ptr =
            NonNull::new(umem).ok_or_else(|| io::Error::other("xsk_umem__create returned null"))?;
        Ok(Umem {
            inner: Arc::new(Mutex::new(UmemInner {
                ptr,
                _saved: (fill, comp),
                frame_size: area.frame_size,
                sizes,
            })),
        })
    }
}

impl UmemInner {
    pub(super) fn as_ptr(&self) -> *mut xsk_umem {
        self.ptr.as_ptr()
    }
}
