//! UMEM memory and its registrations with the kernel.
//!
//! [`UmemArea`] is the memory: an anonymous mapping of `frames × frame_size` bytes that
//! a [`Pool`](crate::pool::Pool) owns and cuts into chunks. [`Umem`] is the worker's
//! handle for registering it with the kernel: **each socket has a registration of its
//! own** (libxdp's `xsk_umem`, whose descriptor is the socket's), all of the same
//! memory at the same offsets, so a descriptor received on one socket is valid on every
//! other socket of the worker and a frame still moves between ports without a copy.
//!
//! Why not one registration shared by the sockets (`XDP_SHARED_UMEM`): the kernel binds
//! a sharing socket through the UMEM's owner, the socket that registered it, and refuses
//! (`EBADF`) when that socket is no longer bound. The owner is the first port's first
//! socket, and libxdp keeps its descriptor open until the UMEM goes, unbound once its
//! netdev has gone: the first port's netdev, removed and created again, could never be
//! bound again, nor could any port added after that. A registration per socket has no
//! owner to lose: a socket and its registration are created and closed together, and
//! closing them releases the queue. The price is that the kernel accounts the pinned
//! area once per socket against `RLIMIT_MEMLOCK` (nothing for a process with
//! CAP_IPC_LOCK, as vswitch runs); the pages themselves are pinned, not copied.
//!
//! The mapping is reference counted: the pool holds it, and so does every registration,
//! so it is unmapped only when the pool and every socket are gone and the kernel can
//! never be left with a registration of memory that is no longer ours.
//!
//! Who may touch a frame: the pool, for the chunks on its free list and those named by
//! descriptors it handed out; the kernel, for the chunks on a fill ring (until they come
//! back on an RX ring) and on a TX ring (until they come back on a completion ring). The
//! ports keep that protocol, so the pool never reads a chunk the kernel may be writing.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use libxdp_sys::{xsk_ring_cons, xsk_ring_prod, xsk_umem, xsk_umem_config};

use super::ring::{empty_cons, empty_prod};

/// An anonymous mapping, unmapped when the last holder drops it.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; `Mapping` itself never reads or writes it (the
// pool does, through the `UmemArea` it owns exclusively, and the kernel does, through
// the rings), so sharing the handle between threads shares no Rust-visible access.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`: no method of `Mapping` touches the memory.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `UmemArea::new` with this length; this is the
        // last handle, so neither the pool nor any registration refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The memory of a UMEM: `frames` frames of `frame_size` bytes, page aligned.
#[derive(Debug)]
pub struct UmemArea {
    map: Arc<Mapping>,
    frames: u32,
    frame_size: usize,
}

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
            map: Arc::new(Mapping { ptr, len }),
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
        // SAFETY: the mapping of `len` readable bytes lives while `self` holds its handle,
        // and the borrow of `self` keeps it. The other handles (registrations) never
        // dereference it. The kernel writes only to frames the pool has handed to a fill
        // ring, which the pool does not read until they come back (module documentation).
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }

    /// The whole area, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `UmemArea` is not `Clone` and the registrations never
        // dereference the mapping, so the exclusive borrow of `self` makes this the only
        // reference into the area on the user's side.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) }
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

/// One registration of the area (libxdp's `xsk_umem`), for one socket: the socket
/// created on it takes the registration's descriptor as its own. Deleted (its
/// descriptor closed, the socket released) on drop, after its socket.
pub(super) struct Registration {
    ptr: NonNull<xsk_umem>,
    // The fill/completion pair libxdp saved at creation for the first socket: it keeps
    // pointers to them until that socket exists (or until the UMEM is deleted).
    _saved: (Box<xsk_ring_prod>, Box<xsk_ring_cons>),
    // Keeps the registered pages ours until the kernel lets go of them.
    _map: Arc<Mapping>,
    pub(super) sizes: RingSizes,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("sizes", &self.sizes)
            .finish_non_exhaustive()
    }
}

// SAFETY: a registration is used by one socket, which is used by one thread at a time
// (`&mut`), or by nobody yet (the spare one, behind a mutex); libxdp's UMEM state is not
// tied to a thread.
unsafe impl Send for Registration {}

impl Registration {
    fn new(map: &Arc<Mapping>, frame_size: usize, sizes: RingSizes) -> io::Result<Self> {
        let mut fill = Box::new(empty_prod());
        let mut comp = Box::new(empty_cons());
        let cfg = xsk_umem_config {
            fill_size: sizes.fill,
            comp_size: sizes.comp,
            frame_size: frame_size as u32,
            frame_headroom: 0,
            flags: 0,
        };
        let mut umem: *mut xsk_umem = ptr::null_mut();
        // SAFETY: `map` is a live page-aligned mapping of `len` bytes which the kernel
        // pins on registration and which the returned value keeps mapped; the ring
        // structs are heap allocated and kept in the returned value for as long as libxdp
        // may refer to them; `cfg` outlives the call.
        let rc = unsafe {
            libxdp_sys::xsk_umem__create(
                &mut umem,
                map.ptr.as_ptr().cast(),
                map.len as u64,
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
        Ok(Registration {
            ptr,
            _saved: (fill, comp),
            _map: Arc::clone(map),
            sizes,
        })
    }

    pub(super) fn as_ptr(&self) -> *mut xsk_umem {
        self.ptr.as_ptr()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the socket created on it (if any) holds it and deletes itself first, so
        // libxdp's count of its sockets is 0; the saved rings and the mapping are still
        // alive (fields are dropped after this). This closes the registration's
        // descriptor, which releases the socket's queue.
        unsafe { libxdp_sys::xsk_umem__delete(self.ptr.as_ptr()) };
    }
}

/// A worker's UMEM: the area and how to register it for each of the worker's sockets.
/// Cloned into every port of the worker (each socket takes a registration of its own).
#[derive(Debug, Clone)]
pub struct Umem {
    map: Arc<Mapping>,
    frame_size: usize,
    sizes: RingSizes,
    /// The registration made by [`Umem::register`], for the first socket: a
    /// locked-memory limit too small for the area is then reported at start.
    spare: Arc<Mutex<Option<Registration>>>,
}

impl Umem {
    /// Registers `area` once with `sizes` for the rings of its sockets (the first
    /// socket takes that registration; later ones make their own). Errors are the raw OS
    /// error (ENOMEM/EPERM/ENOBUFS: locked-memory limit).
    pub fn register(area: &UmemArea, sizes: RingSizes) -> io::Result<Self> {
        let first = Registration::new(&area.map, area.frame_size, sizes)?;
        Ok(Umem {
            map: Arc::clone(&area.map),
            frame_size: area.frame_size,
            sizes,
            spare: Arc::new(Mutex::new(Some(first))),
        })
    }

    /// Bytes registered (the area's size).
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Whether the area is empty (never: an area has at least one frame).
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// A registration for a new socket: the spare one if nobody took it, else a new one.
    pub(super) fn registration(&self) -> io::Result<Registration> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        match spare {
            Some(r) => Ok(r),
            None => Registration::new(&self.map, self.frame_size, self.sizes),
        }
    }
}
