//! ICMP echo ("ping") from inside a namespace, with a raw ICMP socket, so the tests need
//! no `ping` binary. Root only (raw sockets need `CAP_NET_RAW`).

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::netns::NetNs;

/// A raw `IPPROTO_ICMP` socket that belongs to one namespace.
#[derive(Debug)]
pub struct Pinger {
    fd: OwnedFd,
    ident: u16,
}

/// Internet checksum of `data` (RFC 1071).
pub fn inet_checksum(data: &[u8]) -> u16 {
    encap::checksum::checksum(data)
}

impl Pinger {
    /// Opens the socket inside `ns`. `ident` is the echo identifier used for every request.
    pub fn open(ns: &NetNs, ident: u16) -> io::Result<Self> {
        ns.run_in(|| Self::open_here(ident))?
    }

    /// Opens the socket in the calling thread's namespace.
    pub fn open_here(ident: u16) -> io::Result<Self> {
        // SAFETY: plain socket(2) call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMP,
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("socket(AF_INET, SOCK_RAW, ICMP): {e}"),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor returned by socket(2) that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Pinger { fd, ident })
    }

    /// Sends one echo request with sequence `seq` and `payload_len` bytes of payload to `dst`
    /// and waits up to `timeout` for the matching reply. Returns the round-trip time, or
    /// `None` on timeout.
    pub fn ping(
        &self,
        dst: Ipv4Addr,
        seq: u16,
        payload_len: usize,
        timeout: Duration,
    ) -> io::Result<Option<Duration>> {
        let mut req = vec![8u8, 0, 0, 0];
        req.extend_from_slice(&self.ident.to_be_bytes());
        req.extend_from_slice(&seq.to_be_bytes());
        req.extend((0..payload_len).map(|i| i as u8));
        let c = inet_checksum(&req);
        req[2..4].copy_from_slice(&c.to_be_bytes());

        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let start = Instant::now();
        // SAFETY: `req` and `sin` are live for the call and the lengths passed are theirs.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&sin as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("sendto {dst}: {e}")));
        }

        let deadline = start + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `pfd` is one valid pollfd and the count passed is 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if rc == 0 {
                continue;
            }
            // SAFETY: `buf` is a live writable buffer of `buf.len()` bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.is_reply(&buf[..n as usize], dst, seq, payload_len) {
                return Ok(Some(start.elapsed()));
            }
        }
    }

    /// A raw ICMP socket reads whole IPv4 packets: is this our echo reply, intact?
    fn is_reply(&self, pkt: &[u8], from: Ipv4Addr, seq: u16, payload_len: usize) -> bool {
        if pkt.len() < 20 || pkt[0] >> 4 != 4 {
            return false;
        }
        let hl = usize::from(pkt[0] & 0x0f) * 4;
        if pkt.len() < hl + 8 || Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]) != from {
            return false;
        }
        let icmp = &pkt[hl..];
        icmp[0] == 0
            && icmp[1] == 0
            && icmp[4..6] == self.ident.to_be_bytes()
            && icmp[6..8] == seq.to_be_bytes()
            && icmp.len() == 8 + payload_len
            && inet_checksum(icmp) == 0
    }
}
