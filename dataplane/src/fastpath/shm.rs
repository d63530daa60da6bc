//! The generations the XDP program checks, as memory shared with it: the `fp_gens`
//! array map (`BPF_F_MMAPABLE`) mapped into the process, so that an FDB replica bumps a
//! VLAN's generation with one atomic add, without a syscall.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use super::abi::{FP_GENS, FP_GEN_CFG, FP_GEN_NEIGH};

/// The mapped `fp_gens` array: `FP_GENS` u64s (per local VLAN, then the configuration's).
#[derive(Debug)]
pub struct SharedGens {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only accessed through `AtomicU64`s, which any thread may use;
// it lives until `Drop`, which runs once, when no reference is left.
unsafe impl Send for SharedGens {}
// SAFETY: as above: shared access is atomic.
unsafe impl Sync for SharedGens {}

impl SharedGens {
    /// Maps the array map `fd` (created with `BPF_F_MMAPABLE`, `FP_GENS` u64 values).
    pub fn map(fd: BorrowedFd<'_>) -> io::Result<SharedGens> {
        let len = FP_GENS as usize;
        let bytes = len * std::mem::size_of::<u64>();
        // SAFETY: a fresh shared mapping of the map's whole value area (an array map of
        // 8-byte values is laid out as a plain array and may be mapped from offset 0 up
        // to its size); nothing else in the process refers to that address range.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<AtomicU64>()).ok_or_else(|| io::Error::other("mmap"))?;
        Ok(SharedGens { ptr, len })
    }

    fn slots(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` maps `len` u64s, 8-byte aligned (page aligned), for as long as
        // `self` lives; the BPF program and other threads only access them atomically
        // too (aligned 8-byte loads and stores are atomic on the targets we build for).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The generation of local VLAN `vlan`.
    #[inline]
    pub fn vlan(&self, vlan: u16) -> u64 {
        self.slots()[usize::from(vlan & 0x0fff)].load(Ordering::Acquire)
    }

    /// Bumps local VLAN `vlan`'s generation: every fast-path entry of the VLAN is stale.
    #[inline]
    pub fn bump_vlan(&self, vlan: u16) {
        self.slots()[usize::from(vlan & 0x0fff)].fetch_add(1, Ordering::AcqRel);
    }

    /// The underlay neighbours' generation.
    #[inline]
    pub fn neigh(&self) -> u64 {
        self.slots()[FP_GEN_NEIGH as usize].load(Ordering::Acquire)
    }

    /// A remote VTEP's next hop changed: every encap entry is stale.
    pub fn bump_neigh(&self) {
        self.slots()[FP_GEN_NEIGH as usize].fetch_add(1, Ordering::AcqRel);
    }

    /// The configuration's generation.
    pub fn cfg(&self) -> u64 {
        self.slots()[FP_GEN_CFG as usize].load(Ordering::Acquire)
    }

    /// Sets the configuration's generation (the tables' generation the workers stamp
    /// their offers with).
    pub fn set_cfg(&self, g: u64) {
        self.slots()[FP_GEN_CFG as usize].store(g, Ordering::Release);
    }
}

impl flowtable::GenSink for SharedGens {
    #[inline]
    fn bump(&self, vlan: u16) {
        self.bump_vlan(vlan);
    }
}

impl Drop for SharedGens {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference to it outlives
        // `self` (`slots` borrows `self`).
        unsafe {
            libc::munmap(
                self.ptr.as_ptr().cast(),
                self.len * std::mem::size_of::<u64>(),
            );
        }
    }
}
