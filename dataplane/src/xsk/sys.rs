//! The few system calls the AF_XDP ports make besides libxdp's: interface lookups, the
//! bpffs mount, the per-interface lock and the ring wakeups.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The interface index of `ifname` in the calling thread's network namespace.
pub(super) fn ifindex(ifname: &str) -> io::Result<u32> {
    let c = CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// The MTU of `ifname` (SIOCGIFMTU on a throwaway socket of the thread's namespace).
pub(super) fn mtu(ifname: &str) -> io::Result<u32> {
    let ifr = ifreq_ioctl(ifname, libc::SIOCGIFMTU, |_| {})?;
    // SAFETY: SIOCGIFMTU succeeded, so the union holds `ifru_mtu`.
    let m = unsafe { ifr.ifr_ifru.ifru_mtu };
    u32::try_from(m).map_err(|_| io::Error::other("negative MTU"))
}

/// Mounts bpffs at `path` unless a bpffs is already there. Returns true if it mounted.
pub(super) fn ensure_bpffs(path: &str) -> io::Result<bool> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `statfs` is plain data for which all zeroes is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-parameter.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(false);
    }
    let fs = c"bpf";
    // SAFETY: all strings are NUL-terminated and outlive the call; no data argument.
    let rc = unsafe { libc::mount(fs.as_ptr(), c.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// Takes an exclusive `flock` on `f` without waiting; false if someone else holds it.
pub(super) fn try_lock(f: &File) -> io::Result<bool> {
    // SAFETY: `f` is an open file for the whole call.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Asks the kernel to process the TX ring of socket `fd` (a zero-length `sendto`).
/// Returns the errno of a failure the caller should count (EAGAIN/EBUSY/ENOBUFS are
/// transient: the ring is processed again on the next kick).
#[inline]
pub(super) fn kick_tx(fd: RawFd) -> Option<i32> {
    // SAFETY: a zero-length send with no buffer and no address reads no memory.
    let rc = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    (rc < 0).then(|| io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// The kernel's drop counters of AF_XDP socket `fd` (`getsockopt(SOL_XDP,
/// XDP_STATISTICS)`, cumulative since the socket was created): frames it dropped
/// before they reached the RX ring (no fill-ring buffer, or too long), frames the full
/// RX ring could not take, and invalid descriptors.
pub(super) fn xdp_statistics(fd: RawFd) -> io::Result<libc::xdp_statistics> {
    // SAFETY: `xdp_statistics` is plain data for which all zeroes is a valid value.
    let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live locals of the sizes passed; the kernel writes at
    // most `len` bytes into `st` and the new length into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&raw mut st).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Asks the kernel to process the fill ring of socket `fd` (a zero-length `recvfrom`).
#[inline]
pub(super) fn kick_rx(fd: RawFd) {
    // SAFETY: a zero-length receive with no buffer and no address writes no memory.
    unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

/// Runs the interface ioctl `req` on `ifname` with `req`'s union set by `set` (on a
/// throwaway socket of the calling thread's network namespace: sysfs may show another
/// namespace's devices, an ioctl never does) and returns the filled-in `ifreq`.
fn ifreq_ioctl(
    ifname: &str,
    req: libc::Ioctl,
    set: impl FnOnce(&mut libc::ifreq),
) -> io::Result<libc::ifreq> {
    let name = ifname.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: creating a socket has no memory preconditions; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ifreq` is plain data for which all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = s as libc::c_char;
    }
    set(&mut ifr);
    // SAFETY: `fd` is our open socket and `ifr` a valid `ifreq` with a NUL-terminated
    // name; where `set` stored a pointer, it points to memory the caller keeps alive
    // and sized for `req`.
    let rc = unsafe { libc::ioctl(fd, req, &mut ifr) };
    let err = io::Error::last_os_error();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(ifr)
}

/// The hardware (MAC) address of `ifname` in the calling thread's namespace.
pub(super) fn hwaddr(ifname: &str) -> io::Result<[u8; 6]> {
    let ifr = ifreq_ioctl(ifname, libc::SIOCGIFHWADDR, |_| {})?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the union holds `ifru_hwaddr`.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = b as u8;
    }
    Ok(mac)
}

/// The interface flags of `ifname` (`IFF_UP`, `IFF_RUNNING`...).
pub(super) fn if_flags(ifname: &str) -> io::Result<i32> {
    let ifr = ifreq_ioctl(ifname, libc::SIOCGIFFLAGS, |_| {})?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds `ifru_flags`.
    Ok(i32::from(unsafe { ifr.ifr_ifru.ifru_flags }))
}

/// `struct ethtool_channels` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `ETHTOOL_GCHANNELS`.
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// Whether `ifname` is administratively up with its carrier on; `None` if it is gone.
pub(super) fn running(ifname: &str) -> Option<bool> {
    let f = if_flags(ifname).ok()?;
    if f & libc::IFF_UP == 0 {
        return Some(false);
    }
    // The carrier as the driver has it now; `IFF_RUNNING` (the operational state) only
    // where the driver does not report it.
    match carrier(ifname) {
        Ok(Some(c)) => Some(c),
        _ => Some(f & libc::IFF_RUNNING != 0),
    }
}

/// `ETHTOOL_GLINK`: the carrier, as `struct ethtool_value`.
const ETHTOOL_GLINK: u32 = 0x0a;

/// `struct ethtool_value` (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Whether `ifname` has carrier now (`ethtool`'s "Link detected", the driver's own
/// state), or `None` if the driver does not say. Unlike `IFF_RUNNING`, which follows
/// the RFC 2863 operational state that the kernel's link watch updates up to a second
/// later (and a moment of carrier loss while a port is set up can leave it stale for
/// that long), this is what a redirect to the device depends on.
fn carrier(ifname: &str) -> io::Result<Option<bool>> {
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GLINK,
        data: 0,
    };
    Ok(ethtool(ifname, &mut v)?.then_some(v.data != 0))
}

/// Runs the `SIOCETHTOOL` command whose structure (command word first) is `cmd`, which
/// the driver fills in; false if the driver does not support it.
fn ethtool<T>(ifname: &str, cmd: &mut T) -> io::Result<bool> {
    let data: *mut T = cmd;
    match ifreq_ioctl(ifname, libc::SIOCETHTOOL, |ifr| {
        ifr.ifr_ifru.ifru_data = data.cast();
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The receive queues of `ifname` an AF_XDP socket can bind to (`ethtool -l`: the
/// larger of the RX-only and combined channel counts, which counts veth's queues
/// once), or `None` if the driver does not report channels.
pub(super) fn rx_queues(ifname: &str) -> io::Result<Option<u32>> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    Ok(ethtool(ifname, &mut ch)?.then(|| ch.rx_count.max(ch.combined_count).max(1)))
}
