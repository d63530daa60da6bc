//! An `AF_PACKET`/`SOCK_RAW` socket bound to one interface inside a namespace: sends and
//! receives whole Ethernet frames, as a userspace switch port would.
//!
//! The socket is opened on a thread that entered the namespace ([`NetNs::run_in`]), so it
//! stays bound to that namespace's device whichever thread uses it afterwards. Our own
//! transmissions are not looped back to us (`PACKET_IGNORE_OUTGOING`), and each received
//! frame comes with the kernel's `tpacket_auxdata`, which tells whether its checksum was
//! left unfinished by checksum offload (`TP_STATUS_CSUMNOTREADY`: the sender's stack
//! handed over a *partial* checksum that a NIC would have completed).

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// Largest frame [`RawSocket::recv_frame`] accepts (bigger ones are an error).
pub const MAX_FRAME: usize = 65536;

/// A received frame and what the kernel said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxFrame {
    /// The frame, Ethernet header first (a VLAN tag the kernel stripped is *not* put
    /// back: see `vlan_tci`).
    pub data: Vec<u8>,
    /// `PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_MULTICAST`, `PACKET_OTHERHOST`...
    pub pkt_type: u8,
    /// `TP_STATUS_CSUMNOTREADY`: the L4 checksum is partial (offload), not final.
    pub csum_not_ready: bool,
    /// `TP_STATUS_CSUM_VALID`: the kernel already verified the L4 checksum.
    pub csum_valid: bool,
    /// The VLAN tag the kernel took out of the frame, if any.
    pub vlan_tci: Option<u16>,
}

/// An `AF_PACKET` raw socket bound to one interface.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: u32,
    ifname: String,
}

fn cvt(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    val: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `val` is a live c_int and the length passed is its size; the kernel only
    // reads that many bytes. `fd` is an open socket owned by the caller.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&val as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(rc, "setsockopt").map(drop)
}

impl RawSocket {
    /// Opens a raw socket bound to `ifname` inside `ns`.
    pub fn open(ns: &NetNs, ifname: &str) -> io::Result<Self> {
        ns.run_in(|| Self::open_here(ifname))?
    }

    /// Opens a raw socket bound to `ifname` in the calling thread's namespace.
    pub fn open_here(ifname: &str) -> io::Result<Self> {
        let cname = CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("no interface {ifname}: {e}"),
            ));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        };
        let raw = cvt(raw, "socket(AF_PACKET)")?;
        // SAFETY: `raw` is a fresh descriptor returned by socket(2) that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        )?;
        setsockopt_int(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, 1)?;
        // SAFETY: sockaddr_ll is plain old data for which all-zero bytes are a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is exactly its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        cvt(rc, "bind(AF_PACKET)")?;
        let s = RawSocket {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
        };
        // Frames of other interfaces may have been queued between socket() and bind().
        s.drain()?;
        Ok(s)
    }

    /// The interface this socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one whole frame (Ethernet header first, no FCS) out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is a valid readable buffer of `frame.len()` bytes for the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("send on {}: {e}", self.ifname),
            ));
        }
        if n as usize != frame.len() {
            return Err(io::Error::other(format!(
                "short send on {}: {n} of {}",
                self.ifname,
                frame.len()
            )));
        }
        Ok(())
    }

    /// Waits up to `timeout` for a frame and returns its bytes, or `None` on timeout.
    pub fn recv(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        Ok(self.recv_frame(timeout)?.map(|f| f.data))
    }

    /// Waits up to `timeout` for a frame and returns it with the kernel's metadata, or
    /// `None` on timeout.
    pub fn recv_frame(&self, timeout: Duration) -> io::Result<Option<RxFrame>> {
        if !self.wait_readable(timeout)? {
            return Ok(None);
        }
        self.recv_now()
    }

    /// Receives frames until `pred` accepts one (returned) or `timeout` passes (`None`).
    /// Frames refused by `pred` are dropped.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&RxFrame) -> bool,
    ) -> io::Result<Option<RxFrame>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_frame(left)? {
                Some(f) if pred(&f) => return Ok(Some(f)),
                Some(_) => {}
                None => return Ok(None),
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    /// Discards every frame already queued; returns how many.
    pub fn drain(&self) -> io::Result<usize> {
        let mut n = 0;
        while self.wait_readable(Duration::ZERO)? {
            if self.recv_now()?.is_none() {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// poll(2) for POLLIN, retrying on EINTR; true if readable before `timeout`.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Round up so that a sub-millisecond wait does not become a busy loop.
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd and the count passed is 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("poll on {}: {e}", self.ifname),
                ));
            }
            if rc > 0 {
                if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                    return Err(io::Error::other(format!(
                        "poll on {}: revents {:#x}",
                        self.ifname, pfd.revents
                    )));
                }
                return Ok(true);
            }
            if left.is_zero() || Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// One non-blocking recvmsg(2) with the auxdata control message.
    fn recv_now(&self) -> io::Result<Option<RxFrame>> {
        let mut buf = vec![0u8; MAX_FRAME];
        // u64 elements keep the control buffer aligned for cmsghdr.
        let mut cbuf = [0u64; 16];
        // SAFETY: sockaddr_ll is plain old data for which all-zero bytes are valid.
        let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data for which all-zero bytes are valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&cbuf);
        // SAFETY: every pointer in `msg` points to a live buffer of the stated length
        // (`buf`, `cbuf`, `from`, `iov`), all outliving the call.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("recvmsg on {}: {e}", self.ifname),
            ));
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(io::Error::other(format!(
                "frame of {n} bytes on {} is larger than {MAX_FRAME}",
                self.ifname
            )));
        }
        buf.truncate(n);
        let mut rx = RxFrame {
            data: buf,
            pkt_type: from.sll_pkttype,
            csum_not_ready: false,
            csum_valid: false,
            vlan_tci: None,
        };
        // SAFETY: `msg` was filled in by recvmsg: CMSG_FIRSTHDR/CMSG_NXTHDR walk only the
        // `msg_controllen` bytes the kernel wrote into `cbuf`.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: `cmsg` is non-null and points inside `cbuf` (see above).
            let hdr = unsafe { &*cmsg };
            if hdr.cmsg_level == libc::SOL_PACKET && hdr.cmsg_type == libc::PACKET_AUXDATA {
                // SAFETY: a PACKET_AUXDATA message carries one tpacket_auxdata; it may be
                // unaligned in the buffer, hence read_unaligned.
                let aux: libc::tpacket_auxdata = unsafe {
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::tpacket_auxdata>())
                };
                rx.csum_not_ready = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
                rx.csum_valid = aux.tp_status & libc::TP_STATUS_CSUM_VALID != 0;
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    rx.vlan_tci = Some(aux.tp_vlan_tci);
                }
            }
            // SAFETY: as for CMSG_FIRSTHDR: `msg` and `cmsg` describe `cbuf`.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        Ok(Some(rx))
    }
}
