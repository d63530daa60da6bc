//! The control socket end to end: a control server in front of an `OfflineSwitch` in
//! this process, on a socket in a temporary directory, and the compiled `vswitch ctl`
//! run against it for every command, as text and as `--json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use dataplane::config::Config;
use dataplane::control::server::{peer_allowed, ControlServer, ServerError, ServerHandle};
use dataplane::offline::OfflineSwitch;
use serde_json::Value;

const CONFIG: &str = r#"
[switch]
mac_aging_secs = 300

[underlay]
port = "uplink"
local_ip = "198.18.0.1/24"
local_mac = "02:00:00:00:00:01"
neighbors = [ { ip = "198.18.0.2", mac = "02:00:00:00:00:02" } ]

[[network]]
name = "net-a"
segment = "local"

[[network]]
name = "net-b"
segment = "vxlan"
id = 5010
remote_vteps = ["198.18.0.2"]

[[port]]
name = "vm1"
mode = "access"
network = "net-a"

[[port]]
name = "vm2"
mode = "access"
network = "net-a"

[[port]]
name = "vm3"
mode = "access"
network = "net-b"

[[port]]
name = "trunk1"
mode = "trunk"
vlans = { 10 = "net-a" }

[[fdb]]
network = "net-b"
mac = "fa:16:3e:00:00:99"
remote = "198.18.0.2"
"#;

const SEC: u64 = 1_000_000_000;

fn mac(last: u8) -> [u8; 6] {
    [0xfa, 0x16, 0x3e, 0, 0, last]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x88;
    f[13] = 0xb5;
    f
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory (mode 0755, so that `nobody` can reach the socket when a
/// test opens it up), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("vswitch-ctl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A control server in front of an offline switch that has learned vm1's and vm2's
/// MACs (fa:16:3e:00:00:01 and :02) in net-a and one in net-b behind vm3 (:03).
struct Harness {
    dir: TempDir,
    sock: PathBuf,
    stop: Arc<AtomicBool>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    fn start() -> Harness {
        Harness::start_with(Config::from_str(CONFIG, "ctl-test.toml").unwrap())
    }

    fn start_with(cfg: Config) -> Harness {
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let vm1 = sw.config().port_by_name("vm1").unwrap();
        let vm2 = sw.config().port_by_name("vm2").unwrap();
        let vm3 = sw.config().port_by_name("vm3").unwrap();
        sw.inject(vm1, &frame([0xff; 6], mac(1)), SEC);
        sw.inject(vm2, &frame(mac(1), mac(2)), 2 * SEC);
        sw.inject(vm1, &frame(mac(2), mac(1)), 3 * SEC);
        sw.inject(vm3, &frame([0xff; 6], mac(3)), 4 * SEC);
        let dir = TempDir::new();
        let sock = dir.0.join("run").join("vswitch.sock");
        let server = ControlServer::bind(&sock).unwrap();
        let (handle, queue) = server.start().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                queue.serve_timeout(&mut sw, Duration::from_millis(20));
            }
        });
        Harness {
            dir,
            sock,
            stop,
            handle: Some(handle),
            thread: Some(thread),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vswitch"))
            .arg("ctl")
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{args:?} failed: {err}\n{out}");
        out
    }

    /// Runs a command with `--json` that must succeed; its reply.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let v: Value = serde_json::from_str(&self.ok(&a)).unwrap();
        assert_eq!(v["status"], "ok", "{v}");
        v["reply"].clone()
    }

    /// Runs a command that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{args:?} succeeded: {err}");
        err
    }

    fn fdb(&self) -> Vec<(String, String, String, bool)> {
        let r = self.json(&["fdb", "show"]);
        r["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let place = match e["port"].as_str() {
                    Some(p) => p.to_owned(),
                    None => format!("vtep:{}", e["vtep"].as_str().unwrap()),
                };
                (
                    e["network"].as_str().unwrap().to_owned(),
                    e["mac"].as_str().unwrap().to_owned(),
                    place,
                    e["static"].as_bool().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut h) = self.handle.take() {
            h.shutdown();
        }
        assert!(!self.sock.exists(), "socket not removed");
        let _ = &self.dir;
    }
}

fn row(net: &str, m: u8, place: &str, is_static: bool) -> (String, String, String, bool) {
    (
        net.into(),
        format!("fa:16:3e:00:00:{m:02x}"),
        place.into(),
        is_static,
    )
}

#[test]
fn show() {
    let h = Harness::start();
    let out = h.ok(&["show"]);
    assert!(out.contains("vswitch (offline): 1 worker(s)"), "{out}");
    assert!(
        out.contains("underlay: port uplink, local VTEP 198.18.0.1/24"),
        "{out}"
    );
    for s in [
        "net-a", "net-b", "vxlan", "5010", "vm1", "trunk1", "10=net-a", "up",
    ] {
        assert!(out.contains(s), "{s} missing:\n{out}");
    }
    let r = h.json(&["show"]);
    assert_eq!(r["type"], "show");
    assert_eq!(r["networks"][1]["id"], 5010);
    assert_eq!(r["networks"][1]["mtu"], 1450);
    assert_eq!(r["ports"][0]["name"], "vm1");
    assert_eq!(r["ports"][0]["link"], "up");
    assert_eq!(r["ports"][4]["role"], "underlay");
    assert_eq!(r["vteps"][0], "198.18.0.2");
}

#[test]
fn fdb_show_flush_add_del() {
    let h = Harness::start();
    let out = h.ok(&["fdb", "show"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("port") && lines[0].contains("MAC") && lines[0].contains("Age"));
    assert!(
        out.contains("fa:16:3e:00:00:01") && out.contains("learned"),
        "{out}"
    );
    assert!(out.contains("vtep:198.18.0.2"), "{out}");
    assert_eq!(
        h.fdb(),
        vec![
            row("net-a", 1, "vm1", false),
            row("net-a", 2, "vm2", false),
            row("net-b", 3, "vm3", false),
            row("net-b", 0x99, "vtep:198.18.0.2", true),
        ]
    );
    let r = h.json(&["fdb", "show", "--network", "net-b"]);
    assert_eq!(r["entries"].as_array().unwrap().len(), 2);
    assert!(h
        .fails(&["fdb", "show", "--network", "nope"])
        .contains("network \"nope\" does not exist (not-found)"));

    // Flush one port's learned entries.
    let out = h.ok(&["fdb", "flush", "--port", "vm1"]);
    assert!(out.contains("flushed learned entries on port vm1"), "{out}");
    assert!(!h.fdb().contains(&row("net-a", 1, "vm1", false)));
    assert!(h.fdb().contains(&row("net-a", 2, "vm2", false)));

    // A static entry on a local port: statics-only change, learned state untouched.
    let out = h.ok(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "FA:16:3E:00:00:10",
        "--port",
        "trunk1",
    ]);
    assert!(out.contains("static entry"), "{out}");
    assert!(h.fdb().contains(&row("net-a", 0x10, "trunk1", true)));
    assert!(h.fdb().contains(&row("net-a", 2, "vm2", false)));
    // Re-pointed.
    h.json(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:10",
        "--port",
        "vm2",
    ]);
    assert!(h.fdb().contains(&row("net-a", 0x10, "vm2", true)));
    assert!(!h.fdb().contains(&row("net-a", 0x10, "trunk1", true)));
    // A static entry behind a new VTEP: a new tunnel port, the whole FDB renumbered;
    // learned entries survive.
    h.ok(&[
        "fdb",
        "add",
        "--network",
        "net-b",
        "--mac",
        "fa:16:3e:00:00:20",
        "--remote",
        "198.18.0.7",
    ]);
    let fdb = h.fdb();
    assert!(
        fdb.contains(&row("net-b", 0x20, "vtep:198.18.0.7", true)),
        "{fdb:?}"
    );
    assert!(fdb.contains(&row("net-a", 2, "vm2", false)), "{fdb:?}");
    assert!(fdb.contains(&row("net-b", 3, "vm3", false)), "{fdb:?}");
    // Refused by the validator: remote on a local network; not unicast.
    let err = h.fails(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:21",
        "--remote",
        "198.18.0.7",
    ]);
    assert!(
        err.contains("fdb add: ") && err.contains("(invalid)"),
        "{err}"
    );
    let err = h.fails(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "01:00:5e:00:00:01",
        "--port",
        "vm1",
    ]);
    assert!(err.contains("(invalid)"), "{err}");
    let err = h.fails(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:22",
        "--port",
        "vm3",
    ]);
    assert!(err.contains("(invalid)"), "{err}");
    // Delete.
    h.ok(&[
        "fdb",
        "del",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:10",
    ]);
    assert!(!h.fdb().iter().any(|r| r.1 == "fa:16:3e:00:00:10"));
    let err = h.fails(&[
        "fdb",
        "del",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:10",
    ]);
    assert!(
        err.contains("no static entry") && err.contains("(not-found)"),
        "{err}"
    );
    // Flush everything learned: statics stay.
    h.json(&["fdb", "flush"]);
    assert!(h.fdb().iter().all(|r| r.3));
    assert!(!h.fdb().is_empty());
}

#[test]
fn stats_and_neigh() {
    let h = Harness::start();
    let out = h.ok(&["stats"]);
    for s in [
        "ports:",
        "rx frames",
        "vm1",
        "vtep:198.18.0.2",
        "workers:",
        "cycles/pkt",
        "flow-cache hit rate",
        "MAC table: 4 entries (1 static, 3 learned)",
    ] {
        assert!(out.contains(s), "{s} missing:\n{out}");
    }
    let r = h.json(&["stats"]);
    assert_eq!(r["type"], "stats");
    assert_eq!(r["ports"][0]["name"], "vm1");
    assert_eq!(r["ports"][0]["rx_frames"], 2);
    assert_eq!(r["ports"][0]["rx_bytes"], 120);
    assert_eq!(r["workers"][0]["packets"], 4);
    assert_eq!(r["workers"][0]["batches"], 4);
    assert_eq!(r["workers"][0]["busy_cycles"], 0);
    assert!(r["workers"][0]["cycles_per_packet"].is_null());
    assert!(r["totals"]["cache_hit_rate"].is_number());
    assert_eq!(r["drops"]["malformed"], 0);
    assert_eq!(r["fdb"]["capacity"], 50000);

    let out = h.ok(&["neigh", "show"]);
    assert!(
        out.contains("198.18.0.2") && out.contains("02:00:00:00:00:02") && out.contains("static"),
        "{out}"
    );
    let r = h.json(&["neigh", "show"]);
    assert_eq!(r["entries"][0]["state"], "static");
}

#[test]
fn ports_and_networks() {
    let h = Harness::start();
    // A new port renumbers nothing before it but every port after; learned state of
    // the untouched network stays on the right ports, counters follow their port.
    let out = h.ok(&[
        "port",
        "add",
        "vm9",
        "--network",
        "net-a",
        "--ifname",
        "tap-vm9",
    ]);
    assert_eq!(out, "added port vm9\n");
    let r = h.json(&["show"]);
    let names: Vec<&str> = r["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vm1", "vm2", "vm3", "trunk1", "vm9", "uplink"]);
    let fdb = h.fdb();
    assert!(fdb.contains(&row("net-a", 1, "vm1", false)), "{fdb:?}");
    assert!(fdb.contains(&row("net-b", 3, "vm3", false)), "{fdb:?}");
    assert!(
        fdb.contains(&row("net-b", 0x99, "vtep:198.18.0.2", true)),
        "{fdb:?}"
    );
    let s = h.json(&["stats"]);
    assert_eq!(s["ports"][0]["rx_frames"], 2);
    assert_eq!(s["ports"][4]["name"], "vm9");
    assert_eq!(s["ports"][4]["rx_frames"], 0);
    // A trunk.
    h.ok(&[
        "port", "add", "t2", "--vlan", "20=net-a", "--vlan", "30=net-b", "--native", "net-a",
    ]);
    let out = h.ok(&["show"]);
    assert!(out.contains("20=net-a,30=net-b,native=net-a"), "{out}");

    // Refused with the validator's messages; nothing changes.
    let err = h.fails(&["port", "add", "vm10", "--network", "net-x"]);
    assert!(
        err.contains(
            "port add: port \"vm10\": key \"network\": network \"net-x\" does not exist (invalid)"
        ),
        "{err}"
    );
    let err = h.fails(&["port", "add", "vm1", "--network", "net-a"]);
    assert!(err.contains("(invalid)") && err.contains("vm1"), "{err}");
    let err = h.fails(&[
        "port",
        "add",
        "vm11",
        "--mode",
        "bridge",
        "--network",
        "net-a",
    ]);
    assert!(err.contains("(invalid)"), "{err}");
    let err = h.fails(&["port", "add", "vm12", "--vlan", "5000=net-a"]);
    assert!(err.contains("(invalid)"), "{err}");
    assert!(h
        .fails(&["port", "add", "vm12", "--vlan", "x"])
        .contains("expected VID=NETWORK"));
    assert_eq!(h.json(&["show"])["ports"].as_array().unwrap().len(), 7);

    // Removing a port drops its learned entries only.
    h.ok(&["port", "del", "vm1"]);
    let fdb = h.fdb();
    assert!(!fdb.iter().any(|r| r.2 == "vm1"), "{fdb:?}");
    assert!(fdb.contains(&row("net-a", 2, "vm2", false)), "{fdb:?}");
    assert!(fdb.contains(&row("net-b", 3, "vm3", false)), "{fdb:?}");
    let s = h.json(&["stats"]);
    assert_eq!(s["ports"][0]["name"], "vm2");
    assert_eq!(s["ports"][0]["rx_frames"], 1);
    assert!(h
        .fails(&["port", "del", "vm1"])
        .contains("port \"vm1\" does not exist (not-found)"));
    assert!(h
        .fails(&["port", "del", "uplink"])
        .contains("the underlay's port"));

    // Networks.
    let out = h.ok(&[
        "network",
        "add",
        "net-c",
        "--segment",
        "vxlan",
        "--id",
        "5020",
        "--remote-vtep",
        "198.18.0.3",
    ]);
    assert!(out.contains("added network net-c (local VLAN 3)"), "{out}");
    let fdb = h.fdb();
    assert!(fdb.contains(&row("net-a", 2, "vm2", false)), "{fdb:?}");
    assert!(fdb.contains(&row("net-b", 3, "vm3", false)), "{fdb:?}");
    let err = h.fails(&[
        "network",
        "add",
        "net-d",
        "--segment",
        "vxlan",
        "--id",
        "5010",
    ]);
    assert!(
        err.contains("network add: ") && err.contains("(invalid)"),
        "{err}"
    );
    let err = h.fails(&["network", "add", "net-d", "--segment", "vlan", "--id", "10"]);
    assert!(err.contains("(invalid)"), "{err}");
    let err = h.fails(&["network", "del", "net-a"]);
    assert!(err.contains("does not exist (invalid)"), "{err}");
    assert!(h.fails(&["network", "del", "nope"]).contains("(not-found)"));
    h.ok(&[
        "network",
        "add",
        "net-e",
        "--segment",
        "local",
        "--local-vlan",
        "100",
    ]);
    let r = h.json(&["network", "del", "net-c"]);
    assert_eq!(r["type"], "done");
    let nets: Vec<String> = h.json(&["show"])["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}/{}", n["name"].as_str().unwrap(), n["local_vlan"]))
        .collect();
    assert_eq!(nets, ["net-a/1", "net-b/2", "net-e/100"]);
    // net-b loses its static entry with the network.
    h.ok(&["port", "del", "vm3"]);
    h.ok(&["port", "del", "t2"]);
    h.ok(&["network", "del", "net-b"]);
    let fdb = h.fdb();
    assert_eq!(fdb, vec![row("net-a", 2, "vm2", false)]);
}

#[test]
fn bad_commands() {
    let h = Harness::start();
    // Rejected by the command line itself (clap: exit 2).
    let o = h.run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = h.run(&[
        "fdb",
        "add",
        "--network",
        "net-a",
        "--mac",
        "fa:16:3e:00:00:01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = h.run(&[
        "fdb",
        "add",
        "--network",
        "a",
        "--mac",
        "m",
        "--port",
        "p",
        "--remote",
        "r",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // No socket.
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(["ctl", "--socket", "/nonexistent/vswitch.sock", "show"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such socket (is vswitch running?"), "{err}");
    // Raw protocol: bad JSON, unknown command, unknown field, then a good request on
    // the same connection.
    let mut s = UnixStream::connect(&h.sock).unwrap();
    let replies = raw(
        &mut s,
        &[
            "{not json",
            r#"{"cmd":"reboot"}"#,
            r#"{"cmd":"show","x":1}"#,
            r#"{"cmd":"stats"}"#,
        ],
    );
    for r in &replies[..3] {
        assert_eq!(r["status"], "error", "{r}");
        assert_eq!(r["error"]["kind"], "bad-request", "{r}");
    }
    assert_eq!(replies[3]["reply"]["type"], "stats");
    // A line longer than the limit.
    let long = format!(r#"{{"cmd":"show","pad":"{}"}}"#, "x".repeat(70_000));
    let r = raw(&mut s, &[&long]);
    assert_eq!(r[0]["error"]["kind"], "bad-request");
}

fn raw(s: &mut UnixStream, lines: &[&str]) -> Vec<Value> {
    use std::io::{BufRead, BufReader, Write};
    for l in lines {
        // A server that refused a line (too long) answers and closes at once: the rest of
        // that line may then meet a closed socket, while its answer is still there to read.
        let sent = s.write_all(l.as_bytes()).and_then(|()| s.write_all(b"\n"));
        if let Err(e) = sent {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            break;
        }
    }
    let mut r = BufReader::new(s.try_clone().unwrap());
    lines
        .iter()
        .map(|_| {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            serde_json::from_str(&line).unwrap()
        })
        .collect()
}

#[test]
fn socket_mode_and_stale_socket() {
    let h = Harness::start();
    let mode = std::fs::metadata(&h.sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // A second server on a live socket is refused; the first keeps serving.
    match ControlServer::bind(&h.sock) {
        Err(ServerError::InUse(p)) => assert_eq!(p, h.sock),
        other => panic!("expected InUse, got {other:?}"),
    }
    h.ok(&["show"]);

    // A socket left by a crashed run (bound, never unlinked) is replaced.
    let dir = TempDir::new();
    let path = dir.0.join("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = ControlServer::bind(&path).unwrap();
    assert_eq!(server.path(), path);
    drop(server);
    // A file that is not a socket is never removed.
    let file = dir.0.join("file");
    std::fs::write(&file, "keep").unwrap();
    assert!(matches!(
        ControlServer::bind(&file),
        Err(ServerError::NotASocket(_))
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn peer_policy() {
    assert!(peer_allowed(0, 0));
    assert!(!peer_allowed(65534, 0));
    assert!(!peer_allowed(1000, 0));
    // An unprivileged server accepts its own user (and root).
    assert!(peer_allowed(1000, 1000));
    assert!(peer_allowed(0, 1000));
    assert!(!peer_allowed(1001, 1000));
}

/// Runs `vswitch ctl show` as `nobody` (uid/gid 65534) with `setpriv`, or `None` when
/// that is not possible here (not root, no setpriv).
fn as_nobody(sock: &Path) -> Option<Output> {
    if nix::unistd::geteuid().as_raw() != 0 {
        return None;
    }
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_vswitch"))
        .args(["ctl", "--socket"])
        .arg(sock)
        .arg("show")
        .output()
        .ok()
}

#[test]
fn non_root_client_is_refused() {
    let h = Harness::start();
    let Some(o) = as_nobody(&h.sock) else {
        eprintln!("skipped: needs root and setpriv");
        return;
    };
    // Mode 0600: the file system refuses.
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(
        err.contains("permission denied (the control socket is for root)"),
        "{err}"
    );
    // Opened up: the server's SO_PEERCRED check refuses.
    for p in [h.sock.parent().unwrap(), &h.sock] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let o = as_nobody(&h.sock).unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    assert!(
        err.contains("uid 65534 is not root") && err.contains("(permission)"),
        "{err}"
    );
    // Root still gets through.
    h.ok(&["show"]);
}

/// `ctl reload`: the switch's file read again, applied with what it keeps, refused
/// files changing nothing.
#[test]
fn reload() {
    // A switch configured from text has no file to read again.
    let h = Harness::start();
    let err = h.fails(&["reload"]);
    assert!(
        err.contains("not started from a configuration file"),
        "{err}"
    );
    drop(h);

    let files = TempDir::new();
    let file = files.0.join("sw.toml");
    let fname = file.display().to_string();
    std::fs::write(&file, CONFIG).unwrap();
    let h = Harness::start_with(Config::from_file(&file).unwrap());
    let before = h.fdb();
    assert_eq!(h.ok(&["reload"]), format!("reloaded {fname}: no change\n"));
    // A network before the others (allocated VLANs stay where they were) and a port on it.
    let v2 = CONFIG.replace(
        "[[network]]\nname = \"net-a\"",
        "[[network]]\nname = \"net-c\"\nsegment = \"local\"\n\n[[port]]\nname = \"vm9\"\nmode = \"access\"\nnetwork = \"net-c\"\n\n[[network]]\nname = \"net-a\"",
    );
    std::fs::write(&file, &v2).unwrap();
    let out = h.ok(&["reload"]);
    assert_eq!(
        out,
        format!("reloaded {fname}: networks added: net-c; ports added: vm9\n")
    );
    let show = h.json(&["show"]);
    let vlan = |n: &str| {
        show["networks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .map(|x| x["local_vlan"].as_u64().unwrap())
    };
    assert_eq!(
        (vlan("net-a"), vlan("net-b"), vlan("net-c")),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(
        h.fdb(),
        before,
        "learned entries of untouched networks lost"
    );

    // Refused: each names the file, line and key; nothing changes.
    let bad = [
        (
            v2.replace("[switch]\n", "[switch]\nworkers = 2\n"),
            format!(
                "{fname}:3: [switch]: key \"workers\": changed from 1 to 2, which takes a restart"
            ),
        ),
        (
            v2.replace("mac_aging_secs = 300", "mac_aging_secs = 60"),
            format!("{fname}:3: [switch]: key \"mac_aging_secs\": changed from 300 to 60"),
        ),
        (
            v2.replace("network = \"net-c\"", "network = \"net-x\""),
            format!("{fname}:18: port \"vm9\": key \"network\": network \"net-x\" does not exist"),
        ),
        (format!("{v2}\n[[port]\n"), format!("{fname}:")),
    ];
    for (text, want) in &bad {
        std::fs::write(&file, text).unwrap();
        let err = h.fails(&["reload"]);
        assert!(err.contains(want.as_str()), "want {want:?} in {err}");
        assert!(err.contains("(invalid)"), "{err}");
        assert_eq!(
            h.json(&["show"]),
            show,
            "a refused reload changed the switch"
        );
        assert_eq!(h.fdb(), before);
    }
    // The [switch] keys compiled into the tables do change.
    let v3 = v2.replace("[switch]\n", "[switch]\nstorm_control_pps = 1000\n");
    std::fs::write(&file, &v3).unwrap();
    let out = h.ok(&["reload"]);
    assert_eq!(out, format!("reloaded {fname}: [switch] changed\n"));
    assert_eq!(h.fdb(), before);
}
