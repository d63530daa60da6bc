//! The netdev generic-netlink family, as far as NAPI busy polling needs it: which NAPI
//! instance serves a receive queue (`queue-get`), the NAPIs of a netdev (`napi-get`
//! dump) and their interrupt deferral settings (`napi-set`).
//!
//! Why by hand: the messages are a 16-byte header, a 4-byte generic header and a few
//! `u32`/`u64` attributes; the netlink crates (`neli`, `netlink-packet-generic`) know
//! nothing of the netdev family either, so they would save little and add their own
//! attribute-definition machinery. Parsing is pure functions over byte slices (unit
//! tested below); the socket is one `AF_NETLINK` datagram socket per lookup, in the
//! calling thread's network namespace (unlike `/sys/class/net`, which shows the
//! namespace sysfs was mounted in). Nothing here runs per packet.
//!
//! ```text
//!  0               4       6       8              12              16
//! +---------------+-------+-------+---------------+---------------+
//! | nlmsg_len     | type  | flags | seq           | pid           |  nlmsghdr
//! +-------+-------+-------+-------+---------------+---------------+
//! | cmd   | ver   | rsvd  |  then attributes: | len u16 | type u16 | value, padded to 4 |
//! +-------+-------+-------+
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Errors of a netdev-family request.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A socket call failed.
    #[error("generic netlink: cannot {what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel answered the request with an error.
    #[error("generic netlink {what}: {source}")]
    Kernel {
        /// The request.
        what: &'static str,
        /// The errno the kernel returned.
        source: io::Error,
    },
    /// The kernel has no netdev family (older than 6.3).
    #[error("the kernel has no \"netdev\" generic netlink family (Linux 6.3 or later needed)")]
    NoFamily,
    /// A message or attribute was shorter than its header says.
    #[error("generic netlink: malformed {what} at byte {at}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// Offset in the received datagram.
        at: usize,
    },
}

/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// `GENL_ID_CTRL`: the controller family, which resolves family names.
const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID`.
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME`.
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `NLA_TYPE_MASK`: attribute type without the nested/byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Header sizes.
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;

/// How long a reply may take before the request fails (`EAGAIN`).
const RECV_TIMEOUT_SECS: libc::time_t = 2;

/// `linux/netdev.h` commands.
mod cmd {
    pub const QUEUE_GET: u8 = 10;
    pub const NAPI_GET: u8 = 11;
    pub const NAPI_SET: u8 = 14;
}

/// `NETDEV_A_NAPI_*`.
mod napi_attr {
    pub const IFINDEX: u16 = 1;
    pub const ID: u16 = 2;
    pub const PID: u16 = 4;
    pub const DEFER_HARD_IRQS: u16 = 5;
    pub const GRO_FLUSH_TIMEOUT: u16 = 6;
    pub const THREADED: u16 = 8;
}

/// `NETDEV_A_QUEUE_*`.
mod queue_attr {
    pub const ID: u16 = 1;
    pub const IFINDEX: u16 = 2;
    pub const TYPE: u16 = 3;
    pub const NAPI_ID: u16 = 4;
}

/// `NETDEV_QUEUE_TYPE_RX`.
const QUEUE_TYPE_RX: u32 = 0;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One NAPI instance as `napi-get` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NapiInfo {
    /// The NAPI id (what io_uring busy polling is registered with).
    pub id: u32,
    /// The netdev it belongs to.
    pub ifindex: u32,
    /// Its kernel thread, when NAPI is threaded.
    pub pid: Option<u32>,
    /// `napi_defer_hard_irqs` of this NAPI (Linux 6.13+).
    pub defer_hard_irqs: Option<u32>,
    /// `gro_flush_timeout` of this NAPI, ns (Linux 6.13+).
    pub gro_flush_timeout: Option<u64>,
    /// Whether it runs in a kernel thread (Linux 6.18+; else inferred from `pid`).
    pub threaded: Option<bool>,
}

impl NapiInfo {
    /// Whether the NAPI runs in its own kernel thread.
    pub fn is_threaded(&self) -> bool {
        self.threaded.unwrap_or(self.pid.is_some())
    }
}

/// One queue as `queue-get` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueInfo {
    /// Queue index.
    pub id: u32,
    /// The netdev.
    pub ifindex: u32,
    /// 0 = RX, 1 = TX.
    pub kind: u32,
    /// The NAPI serving it, if the driver links queues to NAPIs.
    pub napi_id: Option<u32>,
}

/// A netlink message as received: its type, sequence number and payload (after `nlmsghdr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Msg<'a> {
    pub ty: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The netlink messages of one datagram.
pub(super) fn messages(buf: &[u8]) -> Result<Vec<Msg<'_>>, NetlinkError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let bad = NetlinkError::Malformed {
            what: "message header",
            at,
        };
        let len = u32_at(buf, at).ok_or(NetlinkError::Malformed {
            what: "message header",
            at,
        })? as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(bad);
        }
        out.push(Msg {
            ty: u16_at(buf, at + 4).unwrap_or(0),
            seq: u32_at(buf, at + 8).unwrap_or(0),
            payload: &buf[at + NLMSG_HDRLEN..at + len],
        });
        at += align4(len);
    }
    Ok(out)
}

/// The attributes of a payload (type without flags, value), stopping with an error at
/// one whose length runs past the end.
pub(super) fn attrs(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, NetlinkError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLA_HDRLEN <= buf.len() {
        let len = u16_at(buf, at).unwrap_or(0) as usize;
        let ty = u16_at(buf, at + 2).unwrap_or(0) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || at + len > buf.len() {
            return Err(NetlinkError::Malformed {
                what: "attribute",
                at,
            });
        }
        out.push((ty, &buf[at + NLA_HDRLEN..at + len]));
        at += align4(len);
    }
    Ok(out)
}

/// A `u32` attribute value.
fn val_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.try_into().ok()?))
}

/// A `u16` attribute value.
fn val_u16(v: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(v.try_into().ok()?))
}

/// An `NLA_UINT` value: 4 or 8 bytes.
fn val_uint(v: &[u8]) -> Option<u64> {
    match v.len() {
        4 => val_u32(v).map(u64::from),
        8 => Some(u64::from_ne_bytes(v.try_into().ok()?)),
        _ => None,
    }
}

/// The errno of an `NLMSG_ERROR` payload (0 is an acknowledgement).
pub(super) fn error_code(payload: &[u8]) -> Option<i32> {
    Some(u32_at(payload, 0)? as i32)
}

/// The generic-netlink attributes of a reply's payload (after the 4-byte `genlmsghdr`).
fn genl_attrs(payload: &[u8]) -> Result<Vec<(u16, &[u8])>, NetlinkError> {
    attrs(payload.get(GENL_HDRLEN..).unwrap_or(&[]))
}

/// The family id in a `CTRL_CMD_GETFAMILY` reply's payload.
pub(super) fn parse_family_id(payload: &[u8]) -> Result<Option<u16>, NetlinkError> {
    Ok(genl_attrs(payload)?
        .into_iter()
        .find(|&(t, _)| t == CTRL_ATTR_FAMILY_ID)
        .and_then(|(_, v)| val_u16(v)))
}

/// A `napi-get` reply's payload.
pub(super) fn parse_napi(payload: &[u8]) -> Result<NapiInfo, NetlinkError> {
    let mut n = NapiInfo::default();
    for (t, v) in genl_attrs(payload)? {
        match t {
            napi_attr::IFINDEX => n.ifindex = val_u32(v).unwrap_or(0),
            napi_attr::ID => n.id = val_u32(v).unwrap_or(0),
            napi_attr::PID => n.pid = val_u32(v),
            napi_attr::DEFER_HARD_IRQS => n.defer_hard_irqs = val_u32(v),
            napi_attr::GRO_FLUSH_TIMEOUT => n.gro_flush_timeout = val_uint(v),
            napi_attr::THREADED => n.threaded = val_uint(v).map(|t| t != 0),
            _ => {}
        }
    }
    Ok(n)
}

/// A `queue-get` reply's payload.
pub(super) fn parse_queue(payload: &[u8]) -> Result<QueueInfo, NetlinkError> {
    let mut q = QueueInfo::default();
    for (t, v) in genl_attrs(payload)? {
        match t {
            queue_attr::ID => q.id = val_u32(v).unwrap_or(0),
            queue_attr::IFINDEX => q.ifindex = val_u32(v).unwrap_or(0),
            queue_attr::TYPE => q.kind = val_u32(v).unwrap_or(0),
            queue_attr::NAPI_ID => q.napi_id = val_u32(v),
            _ => {}
        }
    }
    Ok(q)
}

/// A request being built: header, generic header, attributes.
#[derive(Debug)]
pub(super) struct Request {
    buf: Vec<u8>,
}

impl Request {
    pub(super) fn new(family: u16, flags: u16, seq: u32, cmd: u8, version: u8) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&family.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[cmd, version, 0, 0]);
        Request { buf }
    }

    pub(super) fn attr(mut self, ty: u16, value: &[u8]) -> Self {
        let len = NLA_HDRLEN + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A generic-netlink socket bound to the netdev family, in the calling thread's
/// network namespace.
#[derive(Debug)]
pub struct Netdev {
    fd: OwnedFd,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl Netdev {
    /// Opens a socket and resolves the netdev family.
    pub fn open() -> Result<Self, NetlinkError> {
        // SAFETY: creating a socket has no memory preconditions; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(NetlinkError::Io {
                what: "open a socket",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` is a socket we just created and own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // A kernel that never answers must not hang start-up or a worker's re-attach.
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT_SECS,
            tv_usec: 0,
        };
        // SAFETY: `fd` is open; the option value is a `timeval` that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(NetlinkError::Io {
                what: "set a receive timeout",
                source: io::Error::last_os_error(),
            });
        }
        let mut s = Netdev {
            fd,
            family: GENL_ID_CTRL,
            seq: 0,
            buf: vec![0; 32 * 1024],
        };
        let req = Request::new(GENL_ID_CTRL, 0, s.next_seq(), CTRL_CMD_GETFAMILY, 1)
            .attr(CTRL_ATTR_FAMILY_NAME, b"netdev\0");
        let mut family = None;
        let r = s.transact(req, "resolve the netdev family", |p| {
            family = parse_family_id(p)?;
            Ok(())
        });
        match r {
            Err(NetlinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::ENOENT) =>
            {
                return Err(NetlinkError::NoFamily)
            }
            r => r?,
        }
        s.family = family.ok_or(NetlinkError::NoFamily)?;
        Ok(s)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// The NAPI instances of `ifindex` (`napi-get` dump).
    pub fn napis(&mut self, ifindex: u32) -> Result<Vec<NapiInfo>, NetlinkError> {
        let req = Request::new(self.family, NLM_F_DUMP, self.next_seq(), cmd::NAPI_GET, 1)
            .attr(napi_attr::IFINDEX, &ifindex.to_ne_bytes());
        let mut out = Vec::new();
        self.transact(req, "napi-get", |p| {
            let n = parse_napi(p)?;
            if n.ifindex == ifindex && n.id != 0 {
                out.push(n);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Receive queue `queue` of `ifindex` (`queue-get`); `None` if it does not exist.
    pub fn rx_queue(
        &mut self,
        ifindex: u32,
        queue: u32,
    ) -> Result<Option<QueueInfo>, NetlinkError> {
        let req = Request::new(self.family, 0, self.next_seq(), cmd::QUEUE_GET, 1)
            .attr(queue_attr::IFINDEX, &ifindex.to_ne_bytes())
            .attr(queue_attr::TYPE, &QUEUE_TYPE_RX.to_ne_bytes())
            .attr(queue_attr::ID, &queue.to_ne_bytes());
        let mut out = None;
        let r = self.transact(req, "queue-get", |p| {
            out = Some(parse_queue(p)?);
            Ok(())
        });
        match r {
            Err(NetlinkError::Kernel { source, .. })
                if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) =>
            {
                Ok(None)
            }
            r => r.map(|()| out),
        }
    }

    /// Sets `napi_defer_hard_irqs` and `gro_flush_timeout` (ns) of NAPI `id`
    /// (`napi-set`, Linux 6.13+).
    pub fn set_napi(
        &mut self,
        id: u32,
        defer_hard_irqs: u32,
        gro_flush_timeout: u64,
    ) -> Result<(), NetlinkError> {
        let req = Request::new(self.family, NLM_F_ACK, self.next_seq(), cmd::NAPI_SET, 1)
            .attr(napi_attr::ID, &id.to_ne_bytes())
            .attr(napi_attr::DEFER_HARD_IRQS, &defer_hard_irqs.to_ne_bytes())
            .attr(
                napi_attr::GRO_FLUSH_TIMEOUT,
                &gro_flush_timeout.to_ne_bytes(),
            );
        self.transact(req, "napi-set", |_| Ok(()))
    }

    /// Sends `req` and hands each reply's payload to `each` until the request is done:
    /// `NLMSG_DONE` for a dump, an acknowledgement or the single reply otherwise.
    fn transact(
        &mut self,
        req: Request,
        what: &'static str,
        mut each: impl FnMut(&[u8]) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        let bytes = req.finish();
        let dump = u16_at(&bytes, 6).is_some_and(|f| f & NLM_F_DUMP == NLM_F_DUMP);
        let ack = u16_at(&bytes, 6).is_some_and(|f| f & NLM_F_ACK != 0);
        let seq = u32_at(&bytes, 8).unwrap_or(0);
        // SAFETY: `sockaddr_nl` is plain data for which all zeroes is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `bytes` and `sa` are valid for the lengths given and outlive the call.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                std::ptr::addr_of!(sa).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(NetlinkError::Io {
                what: "send a request",
                source: io::Error::last_os_error(),
            });
        }
        loop {
            // SAFETY: `self.buf` is valid for writes of its length for the whole call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetlinkError::Io {
                    what: "receive a reply",
                    source: e,
                });
            }
            let got = &self.buf[..n as usize];
            for m in messages(got)? {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = error_code(m.payload).unwrap_or(-libc::EPROTO);
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(NetlinkError::Kernel {
                            what,
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    _ => {
                        each(m.payload)?;
                        if !dump && !ack {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply datagram: header of `ty`/`seq`, generic header, attributes.
    fn reply(ty: u16, seq: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut r = Request::new(ty, 0, seq, 0, 1);
        for &(t, v) in attrs {
            r = r.attr(t, v);
        }
        r.finish()
    }

    #[test]
    fn request_layout() {
        let b = Request::new(0x1c, NLM_F_DUMP, 7, cmd::NAPI_GET, 1)
            .attr(napi_attr::IFINDEX, &5u32.to_ne_bytes())
            .finish();
        // 16 header + 4 genl + 8 attribute.
        assert_eq!(b.len(), 28);
        assert_eq!(u32_at(&b, 0), Some(28));
        assert_eq!(u16_at(&b, 4), Some(0x1c));
        assert_eq!(u16_at(&b, 6), Some(NLM_F_DUMP | NLM_F_REQUEST));
        assert_eq!(u32_at(&b, 8), Some(7));
        assert_eq!(&b[16..20], &[cmd::NAPI_GET, 1, 0, 0]);
        assert_eq!(u16_at(&b, 20), Some(8));
        assert_eq!(u16_at(&b, 22), Some(napi_attr::IFINDEX));
        assert_eq!(u32_at(&b, 24), Some(5));
    }

    #[test]
    fn attributes_are_padded() {
        let b = Request::new(GENL_ID_CTRL, 0, 1, CTRL_CMD_GETFAMILY, 1)
            .attr(CTRL_ATTR_FAMILY_NAME, b"netdev\0")
            .attr(CTRL_ATTR_FAMILY_ID, &0x1cu16.to_ne_bytes())
            .finish();
        // "netdev\0" is 7 bytes: 4 + 7 = 11, padded to 12; the u16 attribute 6 -> 8.
        assert_eq!(b.len(), 16 + 4 + 12 + 8);
        let a = attrs(&b[20..]).unwrap();
        assert_eq!(a, vec![(2, &b"netdev\0"[..]), (1, &[0x1c, 0][..])]);
        assert_eq!(parse_family_id(&b[16..]).unwrap(), Some(0x1c));
    }

    #[test]
    fn napi_reply() {
        let b = reply(
            0x1c,
            3,
            &[
                (napi_attr::IFINDEX, &9u32.to_ne_bytes()),
                (napi_attr::ID, &8201u32.to_ne_bytes()),
                (napi_attr::DEFER_HARD_IRQS, &0u32.to_ne_bytes()),
                // NLA_UINT: 8 bytes here, 4 below.
                (napi_attr::GRO_FLUSH_TIMEOUT, &200_000u64.to_ne_bytes()),
                (napi_attr::THREADED, &0u32.to_ne_bytes()),
                (99, &[1, 2, 3]), // unknown: skipped
            ],
        );
        let m = messages(&b).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].ty, m[0].seq), (0x1c, 3));
        let n = parse_napi(m[0].payload).unwrap();
        assert_eq!(
            n,
            NapiInfo {
                id: 8201,
                ifindex: 9,
                pid: None,
                defer_hard_irqs: Some(0),
                gro_flush_timeout: Some(200_000),
                threaded: Some(false),
            }
        );
        assert!(!n.is_threaded());
        // A kernel before 6.18 reports a threaded NAPI by its thread's pid only.
        let b = reply(
            0x1c,
            3,
            &[
                (napi_attr::ID, &1u32.to_ne_bytes()),
                (napi_attr::PID, &42u32.to_ne_bytes()),
                (napi_attr::GRO_FLUSH_TIMEOUT, &5u32.to_ne_bytes()),
            ],
        );
        let n = parse_napi(&b[16..]).unwrap();
        assert_eq!((n.pid, n.gro_flush_timeout), (Some(42), Some(5)));
        assert!(n.is_threaded());
    }

    #[test]
    fn queue_reply() {
        let b = reply(
            0x1c,
            1,
            &[
                (queue_attr::ID, &1u32.to_ne_bytes()),
                (queue_attr::IFINDEX, &4u32.to_ne_bytes()),
                (queue_attr::TYPE, &QUEUE_TYPE_RX.to_ne_bytes()),
                (queue_attr::NAPI_ID, &8195u32.to_ne_bytes()),
            ],
        );
        let q = parse_queue(&b[16..]).unwrap();
        assert_eq!(
            q,
            QueueInfo {
                id: 1,
                ifindex: 4,
                kind: 0,
                napi_id: Some(8195)
            }
        );
        // A queue no NAPI serves has no napi-id attribute.
        let b = reply(0x1c, 1, &[(queue_attr::ID, &0u32.to_ne_bytes())]);
        assert_eq!(parse_queue(&b[16..]).unwrap().napi_id, None);
    }

    #[test]
    fn several_messages_and_done() {
        let mut d = reply(0x1c, 5, &[(napi_attr::ID, &1u32.to_ne_bytes())]);
        d.extend(reply(0x1c, 5, &[(napi_attr::ID, &2u32.to_ne_bytes())]));
        let mut done = Request::new(NLMSG_DONE, 0, 5, 0, 0).finish();
        done.truncate(NLMSG_HDRLEN + 4);
        done[..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        d.extend(&done);
        let m = messages(&d).unwrap();
        let ids: Vec<u32> = m[..2]
            .iter()
            .map(|m| parse_napi(m.payload).unwrap().id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(m[2].ty, NLMSG_DONE);
    }

    #[test]
    fn error_reply() {
        let mut e = Request::new(NLMSG_ERROR, 0, 2, 0, 0).finish();
        e[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        let m = messages(&e).unwrap();
        assert_eq!(error_code(m[0].payload), Some(-libc::ENOENT));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let b = reply(0x1c, 1, &[(napi_attr::ID, &1u32.to_ne_bytes())]);
        for cut in 0..b.len() {
            // A message shorter than its header says: refused, never a panic.
            let _ = messages(&b[..cut]);
        }
        let mut long = b.clone();
        long[0] = 200; // says 200 bytes, has 28
        assert!(matches!(
            messages(&long),
            Err(NetlinkError::Malformed { at: 0, .. })
        ));
        let mut bad_attr = b.clone();
        bad_attr[20] = 60; // attribute longer than the message
        let m = messages(&bad_attr).unwrap();
        assert!(parse_napi(m[0].payload).is_err());
        // Wrong-size values are ignored, not misread.
        let b = reply(0x1c, 1, &[(napi_attr::ID, &[1, 2])]);
        assert_eq!(parse_napi(&b[16..]).unwrap().id, 0);
    }
}
