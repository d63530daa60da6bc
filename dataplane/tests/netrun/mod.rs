//! Shared pieces of the tests that run the real `vswitch run` binary in network
//! namespaces (`kernel_vxlan_run.rs`, `gre_run.rs`): the switch process as a guard, its
//! control socket, VM namespaces behind veth ports, pings and TCP transfers between
//! namespaces, and helpers to check underlay frames.
//!
//! The switch runs under `nsenter --net=/run/netns/NS` so that bpffs at /sys/fs/bpf stays
//! visible (`ip netns exec` would remount /sys). Not every test uses every item.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataplane::control::proto::{Reply, Response};
use vswitch_tests::netns::{veth_pair, wait_until, NetNs};
use vswitch_tests::ping::Pinger;

/// The `vswitch` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_vswitch");

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `$TMPDIR/NAME`, created empty.
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPUs this process may run on, lowest first.
pub fn cores() -> Vec<usize> {
    let mut c: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    c.sort_unstable();
    c
}

/// One `vswitch run` process in a namespace; killed (SIGKILL) on drop if still running.
pub struct Vswitch {
    child: Option<Child>,
    /// Its control socket.
    pub socket: PathBuf,
    log: PathBuf,
    name: String,
}

impl Vswitch {
    /// Writes `config` (which must name `DIR/NAME.sock` as its control socket, see
    /// [`Vswitch::socket_path`]) to `DIR/NAME.toml`, starts `vswitch run` in `ns` with
    /// its worker on `core`, and waits until its control socket answers.
    pub fn start(ns: &NetNs, dir: &Path, name: &str, config: &str, core: usize) -> Vswitch {
        Self::start_on(ns, dir, name, config, &[core])
    }

    /// [`Vswitch::start`] with one core per worker.
    pub fn start_on(ns: &NetNs, dir: &Path, name: &str, config: &str, cores: &[usize]) -> Vswitch {
        Self::start_with(ns, dir, name, config, cores, &[])
    }

    /// [`Vswitch::start_on`] with more arguments for `vswitch run`.
    pub fn start_with(
        ns: &NetNs,
        dir: &Path,
        name: &str,
        config: &str,
        cores: &[usize],
        args: &[&str],
    ) -> Vswitch {
        let cores: Vec<String> = cores.iter().map(ToString::to_string).collect();
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg("--")
            .arg(BIN)
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--cores")
            .arg(cores.join(","))
            .args(
                vswitch_tests::netns::fastpath_args()
                    .iter()
                    .filter(|_| !args.iter().any(|a| a.contains("fastpath"))),
            )
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut sw = Vswitch {
            child: Some(child),
            socket: Self::socket_path(dir, name),
            log,
            name: name.to_owned(),
        };
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            sw.ctl(&["show"]).status.success() || sw.exited()
        });
        assert!(up, "{name}: vswitch run did not come up:\n{}", sw.log());
        assert!(!sw.exited(), "{name}: vswitch run exited:\n{}", sw.log());
        sw
    }

    /// The control socket path [`Vswitch::start`] expects in the configuration.
    pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.sock"))
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// What the switch wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `vswitch ctl --socket S ARGS` (text).
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// `vswitch ctl --socket S ARGS` that must succeed; its stdout.
    pub fn ctl_text(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "{}: vswitch ctl {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `vswitch ctl --socket S ARGS --json`, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> Reply {
        let mut a = args.to_vec();
        a.push("--json");
        let text = self.ctl_text(&a);
        match serde_json::from_str::<Response>(&text).unwrap() {
            Response::Ok { reply } => reply,
            Response::Error { error } => panic!("{}: ctl {args:?}: {error:?}", self.name),
        }
    }

    /// `vswitch ctl stats`, parsed.
    pub fn stats(&self) -> dataplane::control::proto::StatsReply {
        match self.ctl_json(&["stats"]) {
            Reply::Stats(st) => st,
            other => panic!("{}: stats: not a stats reply: {other:?}", self.name),
        }
    }

    /// Sends `signal` (`HUP`, `KILL`...) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("already stopped").id();
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "{}: kill -{signal} {pid} failed", self.name);
    }

    /// SIGKILL (a crash: nothing cleaned up), and waits for the process to be gone.
    /// Returns its log.
    pub fn kill(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        self.log()
    }

    /// SIGTERM, then checks a clean exit within 10 s.
    pub fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let done = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            child.try_wait().unwrap().is_some()
        });
        if !done {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{}: vswitch run did not stop on SIGTERM:\n{}",
                self.name,
                self.log()
            );
        }
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{}: exit {status}:\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Vswitch {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

/// A "VM": `eth0` in `vm` with `mac`, `addr` (CIDR) and `mtu`, behind the switch port
/// `port` in `node`. IPv6 off and TX checksum offload off (vswitch would otherwise get
/// partial TCP/UDP checksums from the VM).
pub fn vm(node: &NetNs, port: &str, vm: &NetNs, mac: &str, addr: &str, mtu: u32) {
    veth_pair(vm, "eth0", node, port).unwrap();
    vswitch_tests::netns::fastpath_napi(vm, "eth0").unwrap();
    vm.sysctl("net.ipv6.conf.all.disable_ipv6", "1").unwrap();
    vm.ip(&[
        "link",
        "set",
        "eth0",
        "address",
        mac,
        "mtu",
        &mtu.to_string(),
    ])
    .unwrap();
    vm.ip(&["addr", "add", addr, "dev", "eth0"]).unwrap();
    vm.ethtool(&["-K", "eth0", "tx", "off"]).unwrap();
}

/// How many of `n` echo requests from `p` to `to` were answered (300 ms each).
pub fn pings(p: &Pinger, to: Ipv4Addr, n: u16) -> u16 {
    (0..n)
        .filter(|&seq| {
            p.ping(to, seq, 56, Duration::from_millis(300))
                .unwrap()
                .is_some()
        })
        .count() as u16
}

/// The byte at offset `i` of a transfer (not periodic in any small power of two).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// FNV-1a over `data`, continuing from `h`.
fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const FNV_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// Sends `len` bytes over TCP from `client_ns` to a server in `server_ns` listening on
/// `server` and checks that exactly those bytes arrived: the server answers with the
/// count and FNV-1a hash of what it read. Returns the transfer time.
pub fn tcp_transfer(
    server_ns: &NetNs,
    server: SocketAddrV4,
    client_ns: &NetNs,
    len: usize,
) -> Duration {
    let timeout = Some(Duration::from_secs(30));
    let listener = server_ns
        .run_in(|| TcpListener::bind(server))
        .unwrap()
        .unwrap();
    std::thread::scope(|s| {
        let srv = s.spawn(|| {
            let (mut c, _) = listener.accept().unwrap();
            c.set_read_timeout(timeout).unwrap();
            let (mut n, mut h) = (0usize, FNV_INIT);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let k = c.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                h = fnv(h, &buf[..k]);
                n += k;
            }
            let mut answer = (n as u64).to_be_bytes().to_vec();
            answer.extend_from_slice(&h.to_be_bytes());
            c.write_all(&answer).unwrap();
        });
        let start = Instant::now();
        let mut c = client_ns
            .run_in(|| TcpStream::connect_timeout(&server.into(), Duration::from_secs(10)))
            .unwrap()
            .unwrap();
        c.set_write_timeout(timeout).unwrap();
        c.set_read_timeout(timeout).unwrap();
        let data: Vec<u8> = (0..len).map(pattern).collect();
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = [0u8; 16];
        c.read_exact(&mut answer).unwrap();
        let took = start.elapsed();
        srv.join().unwrap();
        let n = u64::from_be_bytes(answer[..8].try_into().unwrap());
        let h = u64::from_be_bytes(answer[8..].try_into().unwrap());
        assert_eq!(n, len as u64, "the server read {n} of {len} bytes");
        assert_eq!(
            h,
            fnv(FNV_INIT, &data),
            "the server read other bytes than sent"
        );
        took
    })
}

/// The GRE header of an IPv4 payload (RFC 2890): (C, K, S bits, version, protocol, key).
pub struct GreHeader {
    /// Checksum present.
    pub c: bool,
    /// Key present.
    pub k: bool,
    /// Sequence number present.
    pub s: bool,
    /// The reserved bits after the flags (must be 0).
    pub reserved0: u16,
    /// Version (0).
    pub version: u8,
    /// Protocol type of the payload (0x6558: transparent Ethernet bridging).
    pub protocol: u16,
    /// The key when K is set.
    pub key: Option<u32>,
    /// Header length in bytes.
    pub len: usize,
}

/// Parses a GRE header (etherparse has no GRE type).
pub fn parse_gre(b: &[u8]) -> Option<GreHeader> {
    let w = u16::from_be_bytes(b.get(..2)?.try_into().ok()?);
    let (c, k, s) = (w & 0x8000 != 0, w & 0x2000 != 0, w & 0x1000 != 0);
    let protocol = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    let mut at = 4;
    if c {
        at += 4;
    }
    let key = if k {
        let v = u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        Some(v)
    } else {
        None
    };
    if s {
        at += 4;
    }
    (b.len() >= at).then_some(GreHeader {
        c,
        k,
        s,
        reserved0: (w >> 3) & 0x1ff,
        version: (w & 7) as u8,
        protocol,
        key,
        len: at,
    })
}

/// Waits (up to 10 s) until one ping from `p` to `to` is answered: ARP and learning
/// done and the switch's ports settled after start-up, so that what a test counts next
/// is forwarding, not warm-up (the first pings after start are sometimes lost).
pub fn warm_up(p: &Pinger, to: Ipv4Addr) {
    let ok = wait_until(Duration::from_secs(10), Duration::from_millis(10), || {
        matches!(p.ping(to, 0, 56, Duration::from_millis(300)), Ok(Some(_)))
    });
    assert!(ok, "no ping answered from {to} within 10 s");
}

/// UDP from 64 sockets of `from` to `to` (a namespace and its address each) on
/// `udp_port`: veth picks the queue by flow, so with two workers both queues of the
/// sender's port, each bound by its own worker's socket, carry some, and every datagram
/// arrives. `what` names the case in failures.
pub fn every_queue_forwards(
    s: &Vswitch,
    to: (&NetNs, Ipv4Addr),
    from: (&NetNs, Ipv4Addr),
    udp_port: u16,
    what: &str,
) {
    let packets = |s: &Vswitch| {
        let st = s.stats();
        let mut w: Vec<(usize, u64)> = st.workers.iter().map(|w| (w.id, w.packets)).collect();
        w.sort_unstable();
        w.into_iter().map(|(_, p)| p).collect::<Vec<u64>>()
    };
    let dst = SocketAddrV4::new(to.1, udp_port);
    let rx =
        to.0.run_in(|| std::net::UdpSocket::bind(dst))
            .unwrap()
            .unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let before = packets(s);
    let mut got = 0;
    for i in 0..64u32 {
        let tx = from
            .0
            .run_in(|| std::net::UdpSocket::bind(SocketAddrV4::new(from.1, 0)))
            .unwrap()
            .unwrap();
        tx.send_to(&i.to_be_bytes(), dst).unwrap();
        let mut buf = [0u8; 16];
        if rx.recv(&mut buf).is_ok() {
            got += 1;
        }
    }
    let after = packets(s);
    eprintln!("{what}: {got}/64 arrived; worker packets {before:?} → {after:?}");
    assert_eq!(got, 64, "{what}\n{}", s.log());
    for (w, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a > b, "worker {w} received nothing: {before:?} → {after:?}");
    }
}

/// `tshark -r FILE -T fields -e F...` (with an empty configuration), one row of
/// fields per frame. Panics with tshark's output when it refuses the file.
pub fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let conf = std::env::temp_dir().join("vswitch-tshark-empty-config");
    std::fs::create_dir_all(&conf).unwrap();
    let mut args: Vec<String> = vec!["-r".into(), file.display().to_string()];
    args.extend([
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "separator=;".into(),
    ]);
    for f in fields {
        args.extend(["-e".into(), (*f).to_owned()]);
    }
    let out = Command::new("tshark")
        .args(&args)
        .env("WIRESHARK_CONFIG_DIR", &conf)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `tshark` ({e}): run scripts/setup.sh or `apt-get install tshark`")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tshark {args:?}: {}\n{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| l.split(';').map(str::to_owned).collect())
        .collect()
}

/// A veth pair with `queues` queues each way: `a_if` in `a`, `b_if` in `b`, both up
/// (created inside `a`, the peer placed in `b`). Two workers need two queues.
pub fn veth_queues(a: &NetNs, a_if: &str, b: &NetNs, b_if: &str, queues: u32) {
    let q = queues.to_string();
    a.ip(&[
        "link",
        "add",
        a_if,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "netns",
        b.name(),
    ])
    .unwrap();
    a.ip(&["link", "set", a_if, "up"]).unwrap();
    b.ip(&["link", "set", b_if, "up"]).unwrap();
    // `a` is the VM's side: the switch port's peer.
    vswitch_tests::netns::fastpath_napi(a, a_if).unwrap();
}
