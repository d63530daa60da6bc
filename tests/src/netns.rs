//! Network namespaces for tests: a guard that deletes its namespace on drop, commands run
//! inside a namespace, veth pairs between namespaces, and the root check.
//!
//! Rules these helpers keep, so that tests can run in parallel and never touch the host:
//! - Every namespace is named `PREFIX-PID-N` (the test process's pid and a process-wide
//!   counter), so parallel tests and parallel test binaries never collide.
//! - [`NetNs`] deletes its namespace in `Drop`, which also runs when a test panics.
//! - [`NetNs::new`] first deletes leftovers of the same prefix whose pid is no longer
//!   alive (a run that was killed before its guards ran).
//! - Nothing here adds an address, a route or a link in the root namespace: veth pairs are
//!   created inside a test namespace with the peer moved straight into another one.

use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The line printed when a test needs root and is not run as root.
pub const SKIP_LINE: &str = "SKIPPED: needs root (network namespaces)";

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments, has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// Returns true when running as root. Otherwise prints a loud [`SKIP_LINE`] naming `test`
/// straight to the process's stderr (not through the test harness's capture, so it shows
/// even for a passing test) and returns false: the test should return at once.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    let mut err = io::stderr().lock();
    // Nothing sensible can be done if stderr is gone.
    let _ = writeln!(
        err,
        "\n{SKIP_LINE}\n    test `{test}` did NOT run: it creates network namespaces; run it as root\n"
    );
    false
}

/// Runs `cmd args...` with no stdin and returns its stdout, or an error carrying the
/// command line, its exit status and its stderr.
pub fn run(cmd: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run `{cmd}`: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{cmd} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Moves the calling thread into the network namespace whose handle is at `path`.
/// Sockets this thread opens afterwards belong to that namespace for their whole life,
/// whichever thread uses them later.
pub fn enter(path: &Path) -> io::Result<()> {
    let f = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    // SAFETY: `f` is an open file descriptor for the whole call; setns only changes the
    // network namespace of the calling thread and reports errors through its return value.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("setns {}: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Deletes namespaces named `PREFIX-PID-N` whose PID is not a running process (leftovers
/// of a crashed or killed run). Namespaces of live processes, this one included, are left
/// alone. Returns how many were deleted.
pub fn cleanup_stale(prefix: &str) -> io::Result<usize> {
    let list = run("ip", &["netns", "list"])?;
    let own = std::process::id();
    let mut deleted = 0;
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if run("ip", &["netns", "del", name]).is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Counters of a link, as `ip -s link` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped on transmit (for a veth: its peer could not take them).
    pub tx_dropped: u64,
}

/// A named network namespace, deleted when dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `PREFIX-PID-N` with its loopback up, after deleting stale namespaces of the
    /// same prefix. `prefix` must be non-empty and made of `[a-z0-9-]`.
    pub fn new(prefix: &str) -> io::Result<Self> {
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad namespace prefix {prefix:?}"),
            ));
        }
        cleanup_stale(prefix)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        // From here on the guard owns the namespace: an error below still deletes it.
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's handle, `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// `ip -n NAME args...`; returns stdout.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        run("ip", &v)
    }

    /// `bridge -n NAME args...`; returns stdout.
    pub fn bridge(&self, args: &[&str]) -> io::Result<String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        run("bridge", &v)
    }

    /// `ip netns exec NAME cmd args...`; returns stdout. (Note: `ip netns exec` remounts
    /// /sys for the command; see [`NetNs::run_in`] for code that needs the host's mounts.)
    pub fn exec(&self, cmd: &str, args: &[&str]) -> io::Result<String> {
        let mut v = vec!["netns", "exec", self.name.as_str(), cmd];
        v.extend_from_slice(args);
        run("ip", &v)
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its result.
    /// Sockets opened by `f` stay in this namespace after the thread ends. A panic in `f`
    /// is passed on to the caller.
    pub fn run_in<F, R>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = self.path();
        std::thread::scope(|s| {
            let h = s.spawn(move || -> io::Result<R> {
                enter(&path)?;
                Ok(f())
            });
            match h.join() {
                Ok(r) => r,
                Err(payload) => std::panic::resume_unwind(payload),
            }
        })
    }

    /// Writes a sysctl of this namespace, e.g. `("net.ipv6.conf.all.disable_ipv6", "1")`.
    /// (`/proc/sys/net` shows the namespace of the thread that opens it.)
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run_in(|| {
            std::fs::write(&path, value)
                .map_err(|e| io::Error::new(e.kind(), format!("write {path}: {e}")))
        })?
    }

    /// Reads a file of `/proc/thread-self/net/` as this namespace sees it (`snmp`, `snmp6`,
    /// `dev`...). `/proc/net` itself is the *process's* namespace, so it would be wrong here.
    pub fn proc_net(&self, file: &str) -> io::Result<String> {
        let path = format!("/proc/thread-self/net/{file}");
        self.run_in(|| {
            std::fs::read_to_string(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("read {path}: {e}")))
        })?
    }

    /// A counter of `/proc/net/snmp6` (e.g. `Udp6InCsumErrors`) in this namespace.
    pub fn snmp6(&self, counter: &str) -> io::Result<u64> {
        let text = self.proc_net("snmp6")?;
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(counter)).then(|| it.next())?
            })
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no counter {counter} in snmp6")))
    }

    /// A counter of `/proc/net/snmp` (e.g. `("Udp", "InCsumErrors")`) in this namespace.
    pub fn snmp(&self, proto: &str, counter: &str) -> io::Result<u64> {
        let text = self.proc_net("snmp")?;
        let tag = format!("{proto}:");
        let mut lines = text.lines().filter(|l| l.starts_with(&tag));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            return Err(io::Error::other(format!("no {proto} lines in snmp")));
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == counter)
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no counter {proto} {counter} in snmp")))
    }

    /// The MAC address of `ifname`.
    pub fn mac(&self, ifname: &str) -> io::Result<[u8; 6]> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .and_then(parse_mac)
            .ok_or_else(|| io::Error::other(format!("no MAC for {ifname} in: {out}")))
    }

    /// The MTU of `ifname`.
    pub fn mtu(&self, ifname: &str) -> io::Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        let mut words = out.split_whitespace();
        words
            .find(|w| *w == "mtu")
            .and_then(|_| words.next())
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no MTU for {ifname} in: {out}")))
    }

    /// `ethtool args...` inside this namespace (e.g. `["-K", "a0", "tx", "off"]`).
    pub fn ethtool(&self, args: &[&str]) -> io::Result<String> {
        self.exec("ethtool", args)
    }

    /// The interface index of `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> io::Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", ifname])?;
        out.split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("no ifindex for {ifname} in: {out}")))
    }

    /// The counters of `ifname`.
    pub fn link_stats(&self, ifname: &str) -> io::Result<LinkStats> {
        let out = self.ip(&["-s", "link", "show", "dev", ifname])?;
        let bad = || io::Error::other(format!("cannot parse stats of {ifname}: {out}"));
        let nums = |after: &str| -> Option<Vec<u64>> {
            let mut lines = out.lines();
            lines.find(|l| l.trim_start().starts_with(after))?;
            lines
                .next()?
                .split_whitespace()
                .map(|n| n.parse().ok())
                .collect()
        };
        let rx = nums("RX:").ok_or_else(bad)?;
        let tx = nums("TX:").ok_or_else(bad)?;
        if rx.len() < 4 || tx.len() < 4 {
            return Err(bad());
        }
        Ok(LinkStats {
            rx_bytes: rx[0],
            rx_packets: rx[1],
            rx_errors: rx[2],
            rx_dropped: rx[3],
            tx_bytes: tx[0],
            tx_packets: tx[1],
            tx_dropped: tx[3],
        })
    }

    /// Waits until no IPv6 address of `ifname` is tentative (DAD done), at most `timeout`.
    /// This includes the link-local address, whose DAD takes a second or two unless the
    /// interface has `accept_dad` 0; see [`NetNs::wait_ipv6_addr`] to wait for one address.
    pub fn wait_ipv6_ready(&self, ifname: &str, timeout: Duration) -> io::Result<()> {
        let ok = wait_until(timeout, Duration::from_millis(20), || {
            self.ip(&["-6", "addr", "show", "dev", ifname, "tentative"])
                .map(|o| o.trim().is_empty())
                .unwrap_or(false)
        });
        if ok {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("IPv6 addresses of {ifname} still tentative after {timeout:?}"),
            ))
        }
    }

    /// Waits until `addr` is on `ifname` and usable (not tentative, DAD not failed), at most
    /// `timeout`. With `nodad` it is usable at once.
    pub fn wait_ipv6_addr(
        &self,
        ifname: &str,
        addr: Ipv6Addr,
        timeout: Duration,
    ) -> io::Result<()> {
        let want = format!("inet6 {addr}/");
        let mut last = String::new();
        let ok = wait_until(timeout, Duration::from_millis(10), || {
            last = self
                .ip(&["-6", "-o", "addr", "show", "dev", ifname])
                .unwrap_or_default();
            last.lines()
                .any(|l| l.contains(&want) && !l.contains("tentative") && !l.contains("dadfailed"))
        });
        if ok {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr} not usable on {ifname} after {timeout:?}: {last}"),
            ))
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            let _ = writeln!(io::stderr(), "warning: deleting netns {}: {e}", self.name);
        }
    }
}

/// Creates a veth pair: `a_if` in `a` and `b_if` in `b`, both up. The pair is created
/// inside `a` (never in the root namespace) with the peer placed directly in `b`.
pub fn veth_pair(a: &NetNs, a_if: &str, b: &NetNs, b_if: &str) -> io::Result<()> {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// With the fast path on ([`fastpath`]): gives veth `ifname` in `ns`, the peer of a
/// switch port, a NAPI (GRO on), without which it cannot receive the frames the fast
/// path redirects to the port. (Only there: GRO on a kernel bridge's port in front of
/// a kernel VTEP with TX offload makes it send GSO super-packets.)
pub fn fastpath_napi(ns: &NetNs, ifname: &str) -> io::Result<()> {
    if fastpath() {
        ns.ethtool(&["-K", ifname, "gro", "on"])?;
    }
    Ok(())
}

/// Whether this test run has vswitch's XDP fast path on (`VSWITCH_TEST_FASTPATH=1`):
/// `scripts/test.sh` runs the tests that start `vswitch run` once without it and once
/// with it.
pub fn fastpath() -> bool {
    std::env::var("VSWITCH_TEST_FASTPATH").is_ok_and(|v| v == "1" || v == "gro")
}

/// `vswitch run`'s arguments for this test run's fast-path mode.
pub fn fastpath_args() -> &'static [&'static str] {
    if fastpath() && std::env::var("VSWITCH_TEST_FASTPATH").is_ok_and(|v| v == "1") {
        &["--fastpath"]
    } else {
        &["--no-fastpath"]
    }
}

/// Polls `cond` every `every` until it is true or `timeout` has passed; returns the last
/// result.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff` (as `ip` and `bridge` print it).
pub fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_roundtrip() {
        let m = [0x02, 0xab, 0, 0x10, 0xff, 0x01];
        assert_eq!(fmt_mac(m), "02:ab:00:10:ff:01");
        assert_eq!(parse_mac(&fmt_mac(m)), Some(m));
        assert_eq!(parse_mac("02:ab:00:10:ff"), None);
        assert_eq!(parse_mac("02:ab:00:10:ff:01:02"), None);
        assert_eq!(parse_mac("zz:ab:00:10:ff:01"), None);
    }

    #[test]
    fn bad_prefix_refused_before_anything_runs() {
        for p in ["", "Upper", "a b", "x/y"] {
            assert_eq!(
                NetNs::new(p).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }
}
