//! Errors of AF_XDP port setup, with what to do about them.

use std::io;

/// Why an AF_XDP port or UMEM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The netdev does not exist (in this network namespace).
    #[error("no network device named {ifname:?} (in this network namespace)")]
    NoDevice {
        /// Interface name.
        ifname: String,
    },
    /// Missing capabilities.
    #[error("AF_XDP needs {missing} (run vswitch as root, or grant CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")]
    NoPrivilege {
        /// The capabilities missing.
        missing: String,
    },
    /// The UMEM could not be locked in memory.
    #[error("cannot register a UMEM of {bytes} bytes: locked-memory limit (RLIMIT_MEMLOCK {limit}); raise `ulimit -l` or grant CAP_IPC_LOCK")]
    Memlock {
        /// UMEM size.
        bytes: usize,
        /// The soft RLIMIT_MEMLOCK, bytes.
        limit: u64,
    },
    /// Another AF_XDP socket holds the queue, or another vswitch the interface.
    #[error("{ifname} queue {queue} is already bound by another AF_XDP program")]
    AlreadyBound {
        /// Interface name.
        ifname: String,
        /// Queue.
        queue: u32,
    },
    /// Another XDP program is attached to the interface.
    #[error("{ifname} already has the XDP program {program:?} attached by another application; detach it (`ip link set dev {ifname} xdp off`) if it is stale")]
    ForeignProgram {
        /// Interface name.
        ifname: String,
        /// The program's name.
        program: String,
    },
    /// The interface MTU does not fit a UMEM frame.
    #[error("{ifname} has MTU {mtu}, larger than the {max} a {frame_size}-byte UMEM frame allows; lower the MTU or use 4096-byte frames")]
    MtuTooLarge {
        /// Interface name.
        ifname: String,
        /// Its MTU.
        mtu: u32,
        /// The largest MTU that fits.
        max: u32,
        /// The frame size.
        frame_size: usize,
    },
    /// Any other failure of a setup step.
    #[error("AF_XDP on {ifname:?}: cannot {what}: {source}")]
    Io {
        /// The step.
        what: &'static str,
        /// Interface name (empty for the UMEM).
        ifname: String,
        /// The OS error.
        source: io::Error,
    },
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set of this thread.
fn cap_eff() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// Fails with [`XskError::NoPrivilege`] unless CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF
/// (or CAP_SYS_ADMIN) are effective.
pub(super) fn check_privileges() -> Result<(), XskError> {
    let Some(c) = cap_eff() else {
        return Ok(()); // Cannot tell: let the system calls decide.
    };
    let mut missing = Vec::new();
    if !has(c, CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(c, CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if !has(c, CAP_BPF) && !has(c, CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(XskError::NoPrivilege {
            missing: missing.join(", "),
        })
    }
}

/// The soft RLIMIT_MEMLOCK, from /proc (no unsafe needed).
fn memlock_limit() -> u64 {
    let s = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("Max locked memory"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The error for a failed UMEM registration of `bytes` bytes.
pub(super) fn umem_error(e: io::Error, bytes: usize) -> XskError {
    let ipc_lock = cap_eff().is_some_and(|c| has(c, CAP_IPC_LOCK));
    match e.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EPERM) | Some(libc::ENOBUFS) if !ipc_lock => {
            XskError::Memlock {
                bytes,
                limit: memlock_limit(),
            }
        }
        _ => XskError::Io {
            what: "register the UMEM",
            ifname: String::new(),
            source: e,
        },
    }
}
