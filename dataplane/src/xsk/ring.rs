//! The four AF_XDP rings, over libxdp's inline ring functions, one batch per call.
//!
//! A ring struct is filled in by libxdp when its socket (or UMEM) is created and points
//! into memory the kernel shares with us; libxdp keeps a pointer to the struct itself
//! until the socket is deleted, so each lives in a `Box` owned by its socket.

use libxdp_sys::{xsk_ring_cons, xsk_ring_prod};

/// An unset producer ring for libxdp to fill in.
pub(super) fn empty_prod() -> xsk_ring_prod {
    xsk_ring_prod {
        cached_prod: 0,
        cached_cons: 0,
        mask: 0,
        size: 0,
        producer: std::ptr::null_mut(),
        consumer: std::ptr::null_mut(),
        ring: std::ptr::null_mut(),
        flags: std::ptr::null_mut(),
    }
}

/// An unset consumer ring for libxdp to fill in.
pub(super) fn empty_cons() -> xsk_ring_cons {
    xsk_ring_cons {
        cached_prod: 0,
        cached_cons: 0,
        mask: 0,
        size: 0,
        producer: std::ptr::null_mut(),
        consumer: std::ptr::null_mut(),
        ring: std::ptr::null_mut(),
        flags: std::ptr::null_mut(),
    }
}

/// The rings of one socket. Only a created socket makes them, so every ring is set up
/// (libxdp filled in the structs and the kernel mapped the memory they point to) for as
/// long as the socket lives; the socket owns this value.
#[derive(Debug)]
pub(super) struct Rings {
    pub(super) fill: Box<xsk_ring_prod>,
    pub(super) comp: Box<xsk_ring_cons>,
    pub(super) rx: Box<xsk_ring_cons>,
    pub(super) tx: Box<xsk_ring_prod>,
}

impl Rings {
    pub(super) fn unset() -> Self {
        Rings {
            fill: Box::new(empty_prod()),
            comp: Box::new(empty_cons()),
            rx: Box::new(empty_cons()),
            tx: Box::new(empty_prod()),
        }
    }

    /// Puts the frame addresses of `addrs` on the fill ring; returns how many fit.
    #[inline]
    pub(super) fn fill(&mut self, addrs: &[u64]) -> usize {
        let mut idx = 0u32;
        // SAFETY: the fill ring is set up (type invariant) and `&mut self` makes us its
        // only producer; reserve returns how many slots from `idx` we may write.
        let n = unsafe {
            libxdp_sys::xsk_ring_prod__reserve(&mut *self.fill, addrs.len() as u32, &mut idx)
        };
        for (i, &a) in addrs[..n as usize].iter().enumerate() {
            // SAFETY: slot `idx + i` was reserved above and is ours to write.
            unsafe { *libxdp_sys::xsk_ring_prod__fill_addr(&mut *self.fill, idx + i as u32) = a };
        }
        // SAFETY: the `n` reserved slots are written.
        unsafe { libxdp_sys::xsk_ring_prod__submit(&mut *self.fill, n) };
        n as usize
    }

    /// Free slots on the fill ring, at most `want` (libxdp may report more).
    #[inline]
    pub(super) fn fill_free(&mut self, want: u32) -> u32 {
        // SAFETY: the fill ring is set up; this only refreshes our cached consumer index.
        unsafe { libxdp_sys::xsk_prod_nb_free(&mut *self.fill, want) }.min(want)
    }

    /// The kernel asks for a wakeup to process the fill ring.
    #[inline]
    pub(super) fn fill_needs_wakeup(&self) -> bool {
        // SAFETY: the fill ring is set up; this reads its flags word.
        unsafe { libxdp_sys::xsk_ring_prod__needs_wakeup(&*self.fill) != 0 }
    }

    /// Takes completed TX frame addresses into `out`; returns how many.
    #[inline]
    pub(super) fn complete(&mut self, out: &mut [u64]) -> usize {
        let mut idx = 0u32;
        // SAFETY: the completion ring is set up and `&mut self` makes us its only consumer.
        let n =
            unsafe { libxdp_sys::xsk_ring_cons__peek(&mut *self.comp, out.len() as u32, &mut idx) };
        for (i, slot) in out[..n as usize].iter_mut().enumerate() {
            // SAFETY: entry `idx + i` was made available by the peek above.
            *slot = unsafe { *libxdp_sys::xsk_ring_cons__comp_addr(&*self.comp, idx + i as u32) };
        }
        // SAFETY: the `n` peeked entries are read.
        unsafe { libxdp_sys::xsk_ring_cons__release(&mut *self.comp, n) };
        n as usize
    }

    /// Takes received descriptors (address, length) into `out`; returns how many.
    #[inline]
    pub(super) fn receive(&mut self, out: &mut [(u64, u32)]) -> usize {
        let mut idx = 0u32;
        // SAFETY: the RX ring is set up and `&mut self` makes us its only consumer.
        let n =
            unsafe { libxdp_sys::xsk_ring_cons__peek(&mut *self.rx, out.len() as u32, &mut idx) };
        for (i, slot) in out[..n as usize].iter_mut().enumerate() {
            // SAFETY: entry `idx + i` was made available by the peek above.
            let d = unsafe { &*libxdp_sys::xsk_ring_cons__rx_desc(&*self.rx, idx + i as u32) };
            *slot = (d.addr, d.len);
        }
        // SAFETY: the `n` peeked entries are read.
        unsafe { libxdp_sys::xsk_ring_cons__release(&mut *self.rx, n) };
        n as usize
    }

    /// Whether received descriptors are waiting on the RX ring (consumes none).
    #[inline]
    pub(super) fn rx_pending(&mut self) -> bool {
        // SAFETY: the RX ring is set up and `&mut self` makes us its only consumer;
        // this only refreshes the cached producer index.
        unsafe { libxdp_sys::xsk_cons_nb_avail(&mut *self.rx, 1) > 0 }
    }

    /// Puts (address, length) descriptors on the TX ring; returns how many fit.
    #[inline]
    pub(super) fn transmit(&mut self, descs: &[(u64, u32)]) -> usize {
        let mut idx = 0u32;
        // SAFETY: the TX ring is set up and `&mut self` makes us its only producer.
        let n = unsafe {
            libxdp_sys::xsk_ring_prod__reserve(&mut *self.tx, descs.len() as u32, &mut idx)
        };
        for (i, &(addr, len)) in descs[..n as usize].iter().enumerate() {
            // SAFETY: slot `idx + i` was reserved above and is ours to write.
            let d =
                unsafe { &mut *libxdp_sys::xsk_ring_prod__tx_desc(&mut *self.tx, idx + i as u32) };
            d.addr = addr;
            d.len = len;
            d.options = 0;
        }
        // SAFETY: the `n` reserved slots are written.
        unsafe { libxdp_sys::xsk_ring_prod__submit(&mut *self.tx, n) };
        n as usize
    }

    /// Free slots on the TX ring, at most `want` (libxdp may report more).
    #[inline]
    pub(super) fn tx_free(&mut self, want: u32) -> u32 {
        // SAFETY: the TX ring is set up; this only refreshes our cached consumer index.
        unsafe { libxdp_sys::xsk_prod_nb_free(&mut *self.tx, want) }.min(want)
    }

    /// The kernel asks for a `sendto` to process the TX ring.
    #[inline]
    pub(super) fn tx_needs_wakeup(&self) -> bool {
        // SAFETY: the TX ring is set up; this reads its flags word.
        unsafe { libxdp_sys::xsk_ring_prod__needs_wakeup(&*self.tx) != 0 }
    }

    /// Frame addresses the kernel never took: the fill ring's entries it has not
    /// consumed and the TX ring's it has not sent, passed to `f`. For a socket whose
    /// netdev is gone, before deleting it (the kernel no longer touches its rings), so
    /// that the frames go back to the pool.
    pub(super) fn unconsumed(&self, mut f: impl FnMut(u64)) {
        // SAFETY: the fill ring is set up (type invariant): `producer` and `consumer`
        // point to its two index words and `ring` to `size` (a power of two) u64
        // entries, mapped for as long as the socket lives. Only the kernel writes the
        // consumer word; a volatile read sees its last value.
        unsafe {
            let fill = &*self.fill;
            if !fill.ring.is_null() {
                let cons = std::ptr::read_volatile(fill.consumer);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                let prod = fill.cached_prod;
                let ring = fill.ring.cast::<u64>();
                let mut i = cons;
                while i != prod {
                    f(*ring.add((i & fill.mask) as usize));
                    i = i.wrapping_add(1);
                }
            }
        }
        // SAFETY: as above, for the TX ring, whose entries are `xdp_desc`s.
        unsafe {
            let tx = &*self.tx;
            if !tx.ring.is_null() {
                let cons = std::ptr::read_volatile(tx.consumer);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                let prod = tx.cached_prod;
                let ring = tx.ring.cast::<libxdp_sys::xdp_desc>();
                let mut i = cons;
                while i != prod {
                    f((*ring.add((i & tx.mask) as usize)).addr);
                    i = i.wrapping_add(1);
                }
            }
        }
    }
}
