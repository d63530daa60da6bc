//! AF_XDP sockets, each on its own registration of the worker's UMEM, and the XDP program that steers a netdev's queues
//! to them (libxdp's default XSKMAP redirect program, loaded from the copy embedded in
//! libxdp and attached by us, so that the mode and the lifetime are ours to choose).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};

use libxdp_sys::{xdp_multiprog, xdp_program, xsk_socket, xsk_socket_config};

use super::ring::Rings;
use super::umem::Registration;

/// `XDP_USE_NEED_WAKEUP` bind flag.
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// libxdp's name for its default AF_XDP program.
pub(super) const XSK_PROG_NAME: &str = "xsk_def_prog";

/// One AF_XDP socket bound to a netdev queue, on its own registration of the worker's
/// UMEM (whose descriptor is the socket's: see `umem`).
#[derive(Debug)]
pub(super) struct Socket {
    // Field order is drop order: the rings, then the registration (closing the
    // descriptor), after `Drop` has deleted the socket.
    ptr: NonNull<xsk_socket>,
    fd: RawFd,
    queue: u32,
    rings: Rings,
    _reg: Registration,
}

// SAFETY: the socket and its rings are used by one thread at a time (`&mut self`); the
// kernel state behind them is not tied to a thread.
unsafe impl Send for Socket {}

impl Socket {
    /// Creates a socket on `ifname` queue `queue` on `reg`, a registration no socket has
    /// used, without loading any XDP program. Errors are the raw OS error (EBUSY: the
    /// queue is bound by another socket); the registration is deleted with the socket.
    pub(super) fn new(ifname: &str, queue: u32, reg: Registration) -> io::Result<Self> {
        let name =
            CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut rings = Rings::unset();
        let cfg = xsk_socket_config {
            rx_size: reg.sizes.rx,
            tx_size: reg.sizes.tx,
            __bindgen_anon_1: libxdp_sys::xsk_socket_config__bindgen_ty_1 {
                libxdp_flags: libxdp_sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
            },
            xdp_flags: 0,
            bind_flags: XDP_USE_NEED_WAKEUP,
        };
        let mut xsk: *mut xsk_socket = ptr::null_mut();
        // SAFETY: the registration is live and used by this socket alone (so libxdp's
        // unlocked per-UMEM bookkeeping is not shared: it makes the registration's
        // descriptor the socket's, binding it as the UMEM's owner); it and the boxed ring
        // structs move into the returned socket, which deletes the socket before dropping
        // them; `name` and `cfg` outlive the call.
        let rc = unsafe {
            libxdp_sys::xsk_socket__create_shared(
                &mut xsk,
                name.as_ptr(),
                queue,
                reg.as_ptr(),
                &mut *rings.rx,
                &mut *rings.tx,
                &mut *rings.fill,
                &mut *rings.comp,
                &cfg,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        let ptr = NonNull::new(xsk)
            .ok_or_else(|| io::Error::other("xsk_socket__create returned null"))?;
        // SAFETY: `ptr` is the socket just created.
        let fd = unsafe { libxdp_sys::xsk_socket__fd(ptr.as_ptr()) };
        Ok(Socket {
            ptr,
            fd,
            queue,
            rings,
            _reg: reg,
        })
    }

    /// The netdev queue it is bound to.
    pub(super) fn queue(&self) -> u32 {
        self.queue
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(super) fn rings(&mut self) -> &mut Rings {
        &mut self.rings
    }

    pub(super) fn rings_ref(&self) -> &Rings {
        &self.rings
    }

    /// Points entry `queue` of the XSKMAP `map_fd` at this socket.
    pub(super) fn insert_into(&self, map_fd: RawFd) -> io::Result<()> {
        // SAFETY: the socket is live and `map_fd` is an fd the caller owns.
        let rc = unsafe { libxdp_sys::xsk_socket__update_xskmap(self.ptr.as_ptr(), map_fd) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the socket is live and deleted once; its rings and registration are
        // fields, dropped after this, so everything libxdp dereferences is still alive.
        // The registration keeps the descriptor open until it drops.
        unsafe { libxdp_sys::xsk_socket__delete(self.ptr.as_ptr()) };
    }
}

/// The XDP mode a program is attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (`xdpdrv`).
    Native,
    /// Generic, on the skb (`xdpgeneric`).
    Generic,
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        })
    }
}

/// libxdp's error convention: a pointer that may encode a negative errno.
fn check_ptr<T>(p: *mut T) -> Result<NonNull<T>, i32> {
    // SAFETY: libxdp_get_error only inspects the pointer value.
    let e = unsafe { libxdp_sys::libxdp_get_error(p.cast_const().cast()) };
    if e != 0 {
        return Err(-(e as i32));
    }
    NonNull::new(p).ok_or(libc::ENOENT)
}

/// The program attached to a netdev, as found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Attached {
    /// None.
    Nothing,
    /// A single program of this name.
    Program(String),
    /// Several programs behind libxdp's dispatcher.
    Dispatcher,
}

/// What is attached to `ifindex`.
pub(super) fn attached(ifindex: u32) -> io::Result<Attached> {
    // SAFETY: the call takes an interface index and returns an owned handle or an error.
    let mp = unsafe { libxdp_sys::xdp_multiprog__get_from_ifindex(ifindex as i32) };
    let mp = match check_ptr(mp) {
        Ok(mp) => mp,
        Err(libc::ENOENT) => return Ok(Attached::Nothing),
        Err(e) => return Err(io::Error::from_raw_os_error(e)),
    };
    let r = Multiprog(mp).describe();
    Ok(r)
}

/// Detaches whatever is attached to `ifindex`.
pub(super) fn detach_all(ifindex: u32) -> io::Result<()> {
    // SAFETY: as in `attached`.
    let mp = unsafe { libxdp_sys::xdp_multiprog__get_from_ifindex(ifindex as i32) };
    let mp = match check_ptr(mp) {
        Ok(mp) => Multiprog(mp),
        Err(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(io::Error::from_raw_os_error(e)),
    };
    // SAFETY: `mp` is a live handle.
    let rc = unsafe { libxdp_sys::xdp_multiprog__detach(mp.0.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok(())
}

struct Multiprog(NonNull<xdp_multiprog>);

impl Multiprog {
    fn describe(&self) -> Attached {
        // SAFETY: `self.0` is a live handle.
        let legacy = unsafe { libxdp_sys::xdp_multiprog__is_legacy(self.0.as_ptr()) };
        if !legacy {
            return Attached::Dispatcher;
        }
        // SAFETY: as above; the main program belongs to the handle.
        let main = unsafe { libxdp_sys::xdp_multiprog__main_prog(self.0.as_ptr()) };
        if main.is_null() {
            return Attached::Nothing;
        }
        // SAFETY: `main` is live while `self` is; the name is a NUL-terminated string it owns.
        let name = unsafe { CStr::from_ptr(libxdp_sys::xdp_program__name(main)) };
        Attached::Program(name.to_string_lossy().into_owned())
    }
}

impl Drop for Multiprog {
    fn drop(&mut self) {
        // SAFETY: closed once; nothing derived from it outlives it.
        unsafe { libxdp_sys::xdp_multiprog__close(self.0.as_ptr()) };
    }
}

/// libxdp's XSKMAP redirect program attached to one netdev; detached on drop.
#[derive(Debug)]
pub(super) struct XdpProgram {
    prog: NonNull<xdp_program>,
    ifindex: u32,
    mode: XdpMode,
    map_fd: RawFd,
}

// SAFETY: the handle is only used from the thread that owns this value.
unsafe impl Send for XdpProgram {}

impl XdpProgram {
    /// Loads the redirect program and attaches it to `ifindex`: native mode, or generic
    /// if the driver refuses native. Errors carry the native attempt's errno when both fail.
    pub(super) fn attach(ifindex: u32) -> io::Result<Self> {
        let file = c"xsk_def_xdp_prog.o";
        // SAFETY: `file` is NUL-terminated; null section and options ask for defaults.
        let p = unsafe {
            libxdp_sys::xdp_program__find_file(file.as_ptr(), ptr::null(), ptr::null_mut())
        };
        let prog = check_ptr(p).map_err(io::Error::from_raw_os_error)?;
        let mut this = XdpProgram {
            prog,
            ifindex,
            mode: XdpMode::Native,
            map_fd: -1,
        };
        // SAFETY: `prog` is a live, loaded-on-attach program handle.
        let rc = unsafe {
            libxdp_sys::xdp_program__attach(
                prog.as_ptr(),
                ifindex as i32,
                libxdp_sys::xdp_attach_mode_XDP_MODE_NATIVE,
                0,
            )
        };
        if rc != 0 {
            // SAFETY: as above.
            let rc2 = unsafe {
                libxdp_sys::xdp_program__attach(
                    prog.as_ptr(),
                    ifindex as i32,
                    libxdp_sys::xdp_attach_mode_XDP_MODE_SKB,
                    0,
                )
            };
            if rc2 != 0 {
                // Not attached: close without detaching.
                // SAFETY: closed once, here; `forget` keeps Drop from using it again.
                unsafe { libxdp_sys::xdp_program__close(prog.as_ptr()) };
                std::mem::forget(this);
                return Err(io::Error::from_raw_os_error(-rc));
            }
            this.mode = XdpMode::Generic;
        }
        let map = c"xsks_map";
        // SAFETY: the program is loaded (attached above), so its object and maps exist;
        // `map` is NUL-terminated.
        this.map_fd = unsafe {
            libxdp_sys::bpf_object__find_map_fd_by_name(
                libxdp_sys::xdp_program__bpf_obj(prog.as_ptr()),
                map.as_ptr(),
            )
        };
        if this.map_fd < 0 {
            return Err(io::Error::from_raw_os_error(-this.map_fd));
        }
        Ok(this)
    }

    pub(super) fn mode(&self) -> XdpMode {
        self.mode
    }

    pub(super) fn map_fd(&self) -> RawFd {
        self.map_fd
    }

    /// The netdev is gone: drop only closes the program (its interface index may be
    /// taken by another device, which must keep its own program).
    pub(super) fn disown(&mut self) {
        self.ifindex = 0;
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        let mode = match self.mode {
            XdpMode::Native => libxdp_sys::xdp_attach_mode_XDP_MODE_NATIVE,
            XdpMode::Generic => libxdp_sys::xdp_attach_mode_XDP_MODE_SKB,
        };
        // SAFETY: the program is attached in `mode` (unless disowned: its netdev is
        // gone) and the handle is live; it is detached and closed once.
        unsafe {
            if self.ifindex != 0 {
                libxdp_sys::xdp_program__detach(self.prog.as_ptr(), self.ifindex as i32, mode, 0);
            }
            libxdp_sys::xdp_program__close(self.prog.as_ptr());
        }
    }
}
