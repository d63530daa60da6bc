//! Scenario tests of the switching core (issue 3), through the real command line.
//!
//! Each scenario is a configuration, a timed sequence of frames received on named ports,
//! and for every frame what must happen to it: forwarded to one port, flooded to a set of
//! ports, or dropped for a reason, with the exact bytes each port must send. The test
//!
//! 1. writes `tests/golden/NAME/vswitch.toml` and `tests/golden/NAME/in/PORT.pcap` (built
//!    here, deterministically; pcap timestamps drive the switch clock);
//! 2. runs `vswitch replay --config ... --input PORT=FILE ... --output-dir TMP` with the
//!    compiled binary;
//! 3. compares every `TMP/PORT.pcap`, frame by frame and timestamp by timestamp, with
//!    the frames the scenario expects. The expectations are written out byte by byte
//!    from the rules ("the same frame without its tag, zero-padded to 60 bytes"), never
//!    computed by the pipeline;
//! 4. compares every `TMP/PORT.pcap` byte for byte with the committed golden file
//!    `tests/golden/NAME/expected/PORT.pcap` (one per configured port, possibly empty);
//! 5. checks the counters twice: the summary the CLI prints on stderr (`unicast ..
//!    flooded .. learned .. moves ..` and `drop REASON: N` lines), and the full
//!    [`Counters`](dataplane::counters::Counters) of the same replay run as a library.
//!
//! `VSWITCH_BLESS=1 cargo test -p dataplane --test scenarios` rewrites the golden
//! files from the scenarios' expectations (not from the switch's output), so a blessed
//! golden file is what a correct switch writes.
//!
//! Timestamps are in microseconds (the resolution of a classic pcap file), and every
//! frame of a scenario has its own, so the order across input files is unambiguous.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod pcapio;

use pcapio::{bless, golden_root, read_pcap, tmp_dir, vswitch, write_pcap};

use dataplane::config::Config;
use dataplane::counters::DropReason;
use dataplane::replay::{self, Input};

// ---------------------------------------------------------------------------------------
// Time, addresses, frames
// ---------------------------------------------------------------------------------------

/// One second in pcap timestamps (µs).
const S: u64 = 1_000_000;

type Mac = [u8; 6];

const BCAST: Mac = [0xff; 6];
/// EtherType of the test frames (IEEE local experimental).
const ETYPE: u16 = 0x88b5;
const TPID_C: u16 = 0x8100;
const TPID_S: u16 = 0x88a8;

/// A Neutron-style unicast MAC `fa:16:3e:00:00:NN`.
const fn m(n: u8) -> Mac {
    [0xfa, 0x16, 0x3e, 0x00, 0x00, n]
}

/// An 802.1Q TCI.
const fn tci(pcp: u8, dei: bool, vid: u16) -> u16 {
    ((pcp as u16) << 13) | ((dei as u16) << 12) | vid
}

/// A payload of `len` bytes starting with `id`, never zero (so padding shows).
fn payload(id: u16, len: usize) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    (0..len)
        .map(|i| match i {
            0 => hi,
            1 => lo,
            _ => 0x80 | (i as u8 & 0x7f),
        })
        .collect()
}

/// An Ethernet frame under construction: addresses, tags (outermost first), EtherType,
/// payload.
#[derive(Debug, Clone)]
struct Eth {
    dst: Mac,
    src: Mac,
    tags: Vec<(u16, u16)>,
    ethertype: u16,
    payload: Vec<u8>,
    id: u16,
}

impl Eth {
    /// A 60-byte untagged frame (46 bytes of payload marked with `id`).
    fn new(dst: Mac, src: Mac, id: u16) -> Eth {
        Eth {
            dst,
            src,
            tags: Vec::new(),
            ethertype: ETYPE,
            payload: payload(id, 46),
            id,
        }
    }

    /// The same frame with `len` bytes of payload.
    fn sized(mut self, len: usize) -> Eth {
        self.payload = payload(self.id, len);
        self
    }

    /// The same frame with another EtherType and payload.
    fn carrying(mut self, ethertype: u16, payload: Vec<u8>) -> Eth {
        self.ethertype = ethertype;
        self.payload = payload;
        self
    }

    /// Adds a tag inside the ones already there.
    fn tag(mut self, tpid: u16, tci: u16) -> Eth {
        self.tags.push((tpid, tci));
        self
    }

    /// Adds an 802.1Q tag (`vid` 0: a priority tag).
    fn q(self, vid: u16, pcp: u8, dei: bool) -> Eth {
        self.tag(TPID_C, tci(pcp, dei, vid))
    }

    /// The frame as received: exactly these bytes, no padding.
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.dst);
        b.extend_from_slice(&self.src);
        for &(tpid, tci) in &self.tags {
            b.extend_from_slice(&tpid.to_be_bytes());
            b.extend_from_slice(&tci.to_be_bytes());
        }
        b.extend_from_slice(&self.ethertype.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }

    /// What an access port (or a trunk's native network) must send: the frame without
    /// any tag, zero-padded to 60 bytes.
    fn untagged(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.dst);
        b.extend_from_slice(&self.src);
        b.extend_from_slice(&self.ethertype.to_be_bytes());
        b.extend_from_slice(&self.payload);
        if b.len() < 60 {
            b.resize(60, 0);
        }
        b
    }

    /// What a trunk must send for a frame of at least 60 bytes: exactly one 802.1Q tag
    /// with this TCI in place of whatever tag the frame arrived with.
    fn tagged(&self, vid: u16, pcp: u8, dei: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.dst);
        b.extend_from_slice(&self.src);
        b.extend_from_slice(&TPID_C.to_be_bytes());
        b.extend_from_slice(&tci(pcp, dei, vid).to_be_bytes());
        b.extend_from_slice(&self.ethertype.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }
}

/// An ARP request `who-has tpa tell spa` from `sha`, padded to 46 bytes as hosts send it.
fn arp_request(sha: Mac, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01];
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&tpa);
    p.resize(46, 0);
    p
}

/// An ARP reply `spa is-at sha` to `tha`/`tpa`, padded to 46 bytes.
fn arp_reply(sha: Mac, spa: [u8; 4], tha: Mac, tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02];
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa);
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa);
    p.resize(46, 0);
    p
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

// ---------------------------------------------------------------------------------------
// Configuration text
// ---------------------------------------------------------------------------------------

/// Builds a configuration file.
#[derive(Debug, Default)]
struct Cfg {
    switch: Vec<String>,
    body: String,
}

impl Cfg {
    fn new() -> Cfg {
        Cfg::default()
    }

    /// A `[switch]` key, e.g. `"mac_aging_secs = 15"`.
    fn switch(mut self, kv: &str) -> Cfg {
        self.switch.push(kv.to_string());
        self
    }

    fn net(mut self, name: &str, local_vlan: Option<u16>) -> Cfg {
        let _ = write!(
            self.body,
            "\n[[network]]\nname = \"{name}\"\nsegment = \"local\"\n"
        );
        if let Some(v) = local_vlan {
            let _ = writeln!(self.body, "local_vlan = {v}");
        }
        self
    }

    fn access(mut self, name: &str, net: &str) -> Cfg {
        let _ = write!(
            self.body,
            "\n[[port]]\nname = \"{name}\"\nmode = \"access\"\nnetwork = \"{net}\"\n"
        );
        self
    }

    fn trunk(mut self, name: &str, vlans: &[(u16, &str)], native: Option<&str>) -> Cfg {
        let v: Vec<String> = vlans
            .iter()
            .map(|(vid, n)| format!("{vid} = \"{n}\""))
            .collect();
        let _ = write!(
            self.body,
            "\n[[port]]\nname = \"{name}\"\nmode = \"trunk\"\nvlans = {{ {} }}\n",
            v.join(", ")
        );
        if let Some(n) = native {
            let _ = writeln!(self.body, "native = \"{n}\"");
        }
        self
    }

    fn fdb(mut self, net: &str, mac: Mac, port: &str) -> Cfg {
        let mac: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(
            self.body,
            "\n[[fdb]]\nnetwork = \"{net}\"\nmac = \"{}\"\nport = \"{port}\"\n",
            mac.join(":")
        );
        self
    }

    fn text(&self, title: &str) -> String {
        let mut s = format!("# Scenario {title:?}: written by dataplane/tests/scenarios.rs.\n");
        if !self.switch.is_empty() {
            s.push_str("\n[switch]\n");
            for kv in &self.switch {
                s.push_str(kv);
                s.push('\n');
            }
        }
        s.push_str(&self.body);
        s
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// What must happen to one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Forwarded to one known port.
    Unicast,
    /// Flooded (whatever the number of copies, possibly none).
    Flood,
    /// Dropped and counted under this reason.
    Drop(DropReason),
}

#[derive(Debug)]
struct Step {
    /// Receive time, µs.
    t: u64,
    port: &'static str,
    frame: Vec<u8>,
    fate: Fate,
    /// Frames each port must send because of this one.
    out: Vec<(&'static str, Vec<u8>)>,
}

/// A scenario: configuration, frames, expectations.
#[derive(Debug)]
struct Scenario {
    name: &'static str,
    config: String,
    steps: Vec<Step>,
    /// Expected `learned` counter (new FDB entries, re-learning after expiry included).
    learned: u64,
    /// Expected `moves` counter.
    moves: u64,
    /// Expected `learn_port_limit` counter.
    port_limit: u64,
    /// Expected `learn_table_full` counter.
    table_full: u64,
}

impl Scenario {
    fn new(name: &'static str, cfg: Cfg) -> Scenario {
        Scenario {
            name,
            config: cfg.text(name),
            steps: Vec::new(),
            learned: 0,
            moves: 0,
            port_limit: 0,
            table_full: 0,
        }
    }

    fn step(
        &mut self,
        t: u64,
        port: &'static str,
        frame: &Eth,
        fate: Fate,
        out: Vec<(&'static str, Vec<u8>)>,
    ) {
        self.steps.push(Step {
            t,
            port,
            frame: frame.bytes(),
            fate,
            out,
        });
    }

    /// `frame` received on `port` at `t` must leave on `to` only, as `out`.
    fn unicast(&mut self, t: u64, port: &'static str, frame: &Eth, to: &'static str, out: Vec<u8>) {
        self.step(t, port, frame, Fate::Unicast, vec![(to, out)]);
    }

    /// `frame` received on `port` at `t` must be flooded: exactly these copies.
    fn flood(
        &mut self,
        t: u64,
        port: &'static str,
        frame: &Eth,
        out: Vec<(&'static str, Vec<u8>)>,
    ) {
        self.step(t, port, frame, Fate::Flood, out);
    }

    /// `frame` received on `port` at `t` must go nowhere and be counted under `why`.
    fn drop(&mut self, t: u64, port: &'static str, frame: &Eth, why: DropReason) {
        self.step(t, port, frame, Fate::Drop(why), Vec::new());
    }

    /// Like [`Scenario::drop`] for raw bytes (frames [`Eth`] cannot describe).
    fn drop_raw(&mut self, t: u64, port: &'static str, bytes: Vec<u8>, why: DropReason) {
        self.steps.push(Step {
            t,
            port,
            frame: bytes,
            fate: Fate::Drop(why),
            out: Vec::new(),
        });
    }

    fn count(&self, f: impl Fn(Fate) -> bool) -> u64 {
        self.steps.iter().filter(|s| f(s.fate)).count() as u64
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.count(|f| f == Fate::Drop(r))
    }

    /// Runs the scenario (see the module docs) and checks everything.
    fn run(&self) {
        let config = Config::from_str(&self.config, self.name)
            .unwrap_or_else(|e| panic!("{}: scenario configuration rejected: {e}", self.name));
        let ports: Vec<&str> = config.ports.iter().map(|p| p.name.as_str()).collect();

        // The scenario itself must be well formed.
        for w in self.steps.windows(2) {
            assert!(
                w[0].t < w[1].t,
                "{}: timestamps must increase strictly ({} then {})",
                self.name,
                w[0].t,
                w[1].t
            );
        }
        for s in &self.steps {
            assert!(
                ports.contains(&s.port),
                "{}: no port {:?}",
                self.name,
                s.port
            );
            for (p, _) in &s.out {
                assert!(ports.contains(p), "{}: no port {p:?}", self.name);
            }
            let mut seen: Vec<&str> = s.out.iter().map(|(p, _)| *p).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), s.out.len(), "{}: one copy per port", self.name);
            assert!(
                !seen.contains(&s.port),
                "{}: a frame never goes back out its ingress port",
                self.name
            );
            match s.fate {
                Fate::Unicast => assert_eq!(s.out.len(), 1, "{}", self.name),
                Fate::Drop(_) => assert!(s.out.is_empty(), "{}", self.name),
                Fate::Flood => {}
            }
        }

        // Files: configuration, inputs, (blessed) expectations.
        let dir = golden_root().join(self.name);
        let in_dir = dir.join("in");
        let exp_dir = dir.join("expected");
        if in_dir.exists() {
            fs::remove_dir_all(&in_dir).unwrap();
        }
        fs::create_dir_all(&in_dir).unwrap();
        fs::create_dir_all(&exp_dir).unwrap();
        let config_path = dir.join("vswitch.toml");
        fs::write(&config_path, &self.config).unwrap();

        let mut inputs: Vec<Input> = Vec::new();
        for &p in &ports {
            let frames: Vec<(u64, Vec<u8>)> = self
                .steps
                .iter()
                .filter(|s| s.port == p)
                .map(|s| (s.t, s.frame.clone()))
                .collect();
            if frames.is_empty() {
                continue;
            }
            let path = in_dir.join(format!("{p}.pcap"));
            write_pcap(&path, &frames);
            inputs.push(Input {
                port: p.to_string(),
                path,
            });
        }

        let mut expected: BTreeMap<&str, Vec<(u64, Vec<u8>)>> =
            ports.iter().map(|&p| (p, Vec::new())).collect();
        for s in &self.steps {
            for (p, f) in &s.out {
                expected.get_mut(p).unwrap().push((s.t, f.clone()));
            }
        }
        if bless() {
            for (p, frames) in &expected {
                write_pcap(&exp_dir.join(format!("{p}.pcap")), frames);
            }
        }

        // The real command line.
        let out_dir = tmp_dir(self.name).join("cli");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vswitch"));
        cmd.arg("replay").arg("--config").arg(&config_path);
        for i in &inputs {
            cmd.arg("--input")
                .arg(format!("{}={}", i.port, i.path.display()));
        }
        cmd.arg("--output-dir").arg(&out_dir);
        let run = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(
            run.status.success(),
            "{}: vswitch replay failed: {stderr}",
            self.name
        );

        // 1. Every port's output, frame by frame, against the scenario.
        for (p, want) in &expected {
            let got_path = out_dir.join(format!("{p}.pcap"));
            let got = read_pcap(&got_path);
            compare_frames(self.name, p, &got, want, &self.steps);
        }

        // 2. Byte for byte against the committed golden files.
        for p in &ports {
            let got = fs::read(out_dir.join(format!("{p}.pcap"))).unwrap();
            let golden_path = exp_dir.join(format!("{p}.pcap"));
            let golden = fs::read(&golden_path).unwrap_or_else(|e| {
                panic!(
                    "{}: {}: {e} (run with VSWITCH_BLESS=1 to write it)",
                    self.name,
                    golden_path.display()
                )
            });
            assert!(
                got == golden,
                "{}: port {p}: replay output differs from the golden file {}",
                self.name,
                golden_path.display()
            );
        }

        // 3. The CLI's counter summary.
        let summary = parse_summary(&stderr);
        let unicast = self.count(|f| f == Fate::Unicast);
        let flooded = self.count(|f| f == Fate::Flood);
        assert_eq!(
            summary.frames_in,
            self.steps.len() as u64,
            "{}: frames in\n{stderr}",
            self.name
        );
        assert_eq!(
            (
                summary.unicast,
                summary.flooded,
                summary.learned,
                summary.moves
            ),
            (unicast, flooded, self.learned, self.moves),
            "{}: (unicast, flooded, learned, moves) on stderr\n{stderr}",
            self.name
        );
        let want_drops: BTreeMap<String, u64> = DropReason::ALL
            .iter()
            .filter(|&&r| self.drops(r) > 0)
            .map(|&r| (r.name().to_string(), self.drops(r)))
            .collect();
        assert_eq!(
            summary.drops, want_drops,
            "{}: drop lines on stderr\n{stderr}",
            self.name
        );
        assert_eq!(
            summary.dropped,
            want_drops.values().sum::<u64>(),
            "{}: total drops\n{stderr}",
            self.name
        );

        // 4. The same replay as a library: every counter.
        let lib_dir = tmp_dir(self.name).join("lib");
        let report = replay::replay(Config::from_file(&config_path).unwrap(), &inputs, &lib_dir)
            .unwrap_or_else(|e| panic!("{}: replay: {e}", self.name));
        let c = &report.counters;
        for r in DropReason::ALL {
            assert_eq!(c.dropped(r), self.drops(r), "{}: drops for {r}", self.name);
        }
        assert_eq!(c.unicast, unicast, "{}: unicast", self.name);
        assert_eq!(c.flooded, flooded, "{}: flooded", self.name);
        assert_eq!(c.learned, self.learned, "{}: learned", self.name);
        assert_eq!(c.moves, self.moves, "{}: moves", self.name);
        assert_eq!(
            c.learn_port_limit, self.port_limit,
            "{}: learn_port_limit",
            self.name
        );
        assert_eq!(
            c.learn_table_full, self.table_full,
            "{}: learn_table_full",
            self.name
        );
        for (i, &p) in ports.iter().enumerate() {
            let rx = self.steps.iter().filter(|s| s.port == p).count() as u64;
            let tx = expected[p].len() as u64;
            assert_eq!(
                c.ports[i].rx_frames, rx,
                "{}: port {p} rx_frames",
                self.name
            );
            assert_eq!(
                c.ports[i].tx_frames, tx,
                "{}: port {p} tx_frames",
                self.name
            );
            let tx_bytes: u64 = expected[p].iter().map(|(_, f)| f.len() as u64).sum();
            assert_eq!(
                c.ports[i].tx_bytes, tx_bytes,
                "{}: port {p} tx_bytes",
                self.name
            );
        }
        for (name, n) in &report.frames_out {
            assert_eq!(
                *n,
                expected[name.as_str()].len() as u64,
                "{}: {name}",
                self.name
            );
        }
    }
}

fn compare_frames(
    scenario: &str,
    port: &str,
    got: &[(u64, Vec<u8>)],
    want: &[(u64, Vec<u8>)],
    steps: &[Step],
) {
    let describe = |t: u64| {
        steps
            .iter()
            .find(|s| s.t == t)
            .map_or("?".to_string(), |s| {
                format!("frame received on {} at {}.{:06} s", s.port, t / S, t % S)
            })
    };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "{scenario}: port {port}: output frame #{i}\n  expected ({}): {} bytes {}\n  got      ({}): {} bytes {}",
            describe(w.0),
            w.1.len(),
            hex(&w.1),
            describe(g.0),
            g.1.len(),
            hex(&g.1),
        );
    }
    if got.len() != want.len() {
        let list = |v: &[(u64, Vec<u8>)]| {
            v.iter()
                .map(|(t, f)| format!("    {} ({} bytes)", describe(*t), f.len()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "{scenario}: port {port}: {} frames sent, {} expected\n  expected:\n{}\n  got:\n{}",
            got.len(),
            want.len(),
            list(want),
            list(got)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Files and processes
// ---------------------------------------------------------------------------------------

/// What `vswitch replay` printed on stderr.
#[derive(Debug, Default)]
struct Summary {
    frames_in: u64,
    unicast: u64,
    flooded: u64,
    learned: u64,
    moves: u64,
    dropped: u64,
    drops: BTreeMap<String, u64>,
}

fn parse_summary(stderr: &str) -> Summary {
    let mut s = Summary::default();
    let mut saw_totals = false;
    let num = |w: Option<&str>| -> u64 {
        w.and_then(|w| w.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad number in replay summary:\n{stderr}"))
    };
    for line in stderr.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("replayed ") {
            s.frames_in = num(rest.split_whitespace().next());
        } else if let Some(rest) = l.strip_prefix("drop ") {
            let (reason, n) = rest
                .split_once(':')
                .unwrap_or_else(|| panic!("bad drop line {line:?}"));
            s.drops.insert(reason.to_string(), num(Some(n)));
        } else if l.starts_with("unicast ") {
            let w: Vec<&str> = l.split_whitespace().collect();
            for pair in w.chunks(2) {
                let v = num(pair.get(1).copied());
                match pair[0] {
                    "unicast" => s.unicast = v,
                    "flooded" => s.flooded = v,
                    "learned" => s.learned = v,
                    "moves" => s.moves = v,
                    "dropped" => s.dropped = v,
                    other => panic!("unknown counter {other:?} in {line:?}"),
                }
            }
            saw_totals = true;
        }
    }
    assert!(saw_totals, "no counter summary on stderr:\n{stderr}");
    s
}

// ---------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------

/// Three access ports of one network: the first frame floods, the reply goes straight
/// back (its destination was learned from the first frame), and from then on both
/// directions are unicast, including the direction whose flood decision was cached.
#[test]
fn access_unicast_after_learning() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .access("vm3", "net-a");
    let mut sc = Scenario::new("access_unicast_after_learning", cfg);
    let (a, b, c) = (m(0x0a), m(0x0b), m(0x0c));

    let f = Eth::new(b, a, 1);
    sc.flood(
        S,
        "vm1",
        &f,
        vec![("vm2", f.untagged()), ("vm3", f.untagged())],
    );
    let f = Eth::new(a, b, 2);
    sc.unicast(2 * S, "vm2", &f, "vm1", f.untagged());
    let f = Eth::new(b, a, 3);
    sc.unicast(3 * S, "vm1", &f, "vm2", f.untagged());
    let f = Eth::new(a, c, 4);
    sc.unicast(4 * S, "vm3", &f, "vm1", f.untagged());
    let f = Eth::new(c, a, 5);
    sc.unicast(5 * S, "vm1", &f, "vm3", f.untagged());
    let f = Eth::new(a, b, 6);
    sc.unicast(6 * S, "vm2", &f, "vm1", f.untagged());
    let f = Eth::new(b, a, 7);
    sc.unicast(7 * S, "vm1", &f, "vm2", f.untagged());
    sc.learned = 3;
    sc.run();
}

/// Broadcast and unknown unicast flood to the network's other ports and nowhere else.
/// net-a and net-b hold the same MACs and the same IP addresses (an ARP exchange that
/// is byte for byte identical in both) and share a trunk; net-c's port hears nothing.
#[test]
fn flood_stays_in_network() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .net("net-b", None)
        .net("net-c", None)
        .access("a1", "net-a")
        .access("a2", "net-a")
        .access("b1", "net-b")
        .access("b2", "net-b")
        .access("c1", "net-c")
        .trunk("trunk", &[(10, "net-a"), (20, "net-b")], None);
    let mut sc = Scenario::new("flood_stays_in_network", cfg);
    let (m1, m2, m3, m9) = (m(1), m(2), m(3), m(9));
    let (ip1, ip2) = ([10, 0, 0, 1], [10, 0, 0, 2]);

    // The same ARP request in both networks.
    let req = Eth::new(BCAST, m1, 0).carrying(0x0806, arp_request(m1, ip1, ip2));
    sc.flood(
        S,
        "a1",
        &req,
        vec![("a2", req.untagged()), ("trunk", req.tagged(10, 0, false))],
    );
    sc.flood(
        2 * S,
        "b1",
        &req,
        vec![("b2", req.untagged()), ("trunk", req.tagged(20, 0, false))],
    );
    // The same ARP reply in both networks: each goes to its own network's m1.
    let rep = Eth::new(m1, m2, 0).carrying(0x0806, arp_reply(m2, ip2, m1, ip1));
    sc.unicast(3 * S, "a2", &rep, "a1", rep.untagged());
    sc.unicast(4 * S, "b2", &rep, "b1", rep.untagged());
    // Unknown unicast in each network.
    let f = Eth::new(m9, m1, 5);
    sc.flood(
        5 * S,
        "a1",
        &f,
        vec![("a2", f.untagged()), ("trunk", f.tagged(10, 0, false))],
    );
    let f = Eth::new(m9, m3, 6).q(20, 0, false);
    sc.flood(
        6 * S,
        "trunk",
        &f,
        vec![("b1", f.untagged()), ("b2", f.untagged())],
    );
    // m1 is known in both networks, on different ports.
    let f = Eth::new(m1, m3, 7).q(10, 0, false);
    sc.unicast(7 * S, "trunk", &f, "a1", f.untagged());
    let f = Eth::new(m3, m1, 8);
    sc.unicast(8 * S, "b1", &f, "trunk", f.tagged(20, 0, false));
    let f = Eth::new(m3, m2, 9);
    sc.unicast(9 * S, "a2", &f, "trunk", f.tagged(10, 0, false));
    // net-c's only port: a broadcast has nowhere to go.
    let f = Eth::new(BCAST, m1, 10);
    sc.flood(10 * S, "c1", &f, vec![]);
    // m1 in net-a, net-b and net-c: three entries, no move.
    sc.learned = 7;
    sc.moves = 0;
    sc.run();
}

/// Multicast destinations (IPv4, IPv6, any group bit) always flood, also on a cache
/// hit, and are never learned.
#[test]
fn multicast_floods() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .net("net-b", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .access("vm3", "net-a")
        .access("vm4", "net-b")
        .trunk("trunk", &[(100, "net-a"), (200, "net-b")], None);
    let mut sc = Scenario::new("multicast_floods", cfg);
    let (a, b, c) = (m(0x0a), m(0x0b), m(0x0c));
    let mdns = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let all_nodes = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
    let group = [0x03, 0x00, 0x00, 0x00, 0x00, 0x07];

    let f = Eth::new(mdns, a, 1);
    let all_but_vm1 = |f: &Eth| {
        vec![
            ("vm2", f.untagged()),
            ("vm3", f.untagged()),
            ("trunk", f.tagged(100, 0, false)),
        ]
    };
    sc.flood(S, "vm1", &f, all_but_vm1(&f));
    let f = Eth::new(all_nodes, b, 2);
    sc.flood(
        2 * S,
        "vm2",
        &f,
        vec![
            ("vm1", f.untagged()),
            ("vm3", f.untagged()),
            ("trunk", f.tagged(100, 0, false)),
        ],
    );
    let f = Eth::new(group, c, 3).q(100, 6, false);
    sc.flood(
        3 * S,
        "trunk",
        &f,
        vec![
            ("vm1", f.untagged()),
            ("vm2", f.untagged()),
            ("vm3", f.untagged()),
        ],
    );
    // The same flow again: a cache hit, still a flood.
    let f = Eth::new(mdns, a, 4);
    sc.flood(4 * S, "vm1", &f, all_but_vm1(&f));
    // Multicast in net-b reaches net-b's ports only.
    let f = Eth::new(mdns, a, 5);
    sc.flood(5 * S, "vm4", &f, vec![("trunk", f.tagged(200, 0, false))]);
    sc.learned = 4;
    sc.run();
}

/// A frame never leaves through the port it came in on: a destination learned on the
/// ingress port (two hosts behind one port) drops the frame and counts `same_port`,
/// on a cache miss and on a hit.
#[test]
fn never_back_out_ingress_port() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("hub", "net-a")
        .access("vm1", "net-a")
        .trunk("trunk", &[(7, "net-a")], None);
    let mut sc = Scenario::new("never_back_out_ingress_port", cfg);
    let (a, b, c, d, e) = (m(0x0a), m(0x0b), m(0x0c), m(0x0d), m(0x0e));

    let f = Eth::new(BCAST, a, 1);
    sc.flood(
        S,
        "hub",
        &f,
        vec![("vm1", f.untagged()), ("trunk", f.tagged(7, 0, false))],
    );
    sc.drop(2 * S, "hub", &Eth::new(a, b, 2), DropReason::SamePort);
    sc.drop(3 * S, "hub", &Eth::new(a, b, 3), DropReason::SamePort);
    let f = Eth::new(a, c, 4);
    sc.unicast(4 * S, "vm1", &f, "hub", f.untagged());
    // The same behind a trunk.
    let f = Eth::new(BCAST, d, 5).q(7, 0, false);
    sc.flood(
        5 * S,
        "trunk",
        &f,
        vec![("hub", f.untagged()), ("vm1", f.untagged())],
    );
    sc.drop(
        6 * S,
        "trunk",
        &Eth::new(d, e, 6).q(7, 0, false),
        DropReason::SamePort,
    );
    // b was learned on hub by the dropped frames: they were received, just not sent back.
    sc.drop(7 * S, "hub", &Eth::new(b, a, 7), DropReason::SamePort);
    // And the others still reach e and b.
    let f = Eth::new(e, c, 8);
    sc.unicast(8 * S, "vm1", &f, "trunk", f.tagged(7, 0, false));
    let f = Eth::new(b, c, 9);
    sc.unicast(9 * S, "vm1", &f, "hub", f.untagged());
    sc.learned = 5;
    sc.run();
}

/// An access port drops a frame tagged with a non-zero VID (no VLAN hopping, whatever
/// the VID) and does not learn from it; it accepts a priority-tagged frame (VID 0),
/// which leaves untagged on access ports and with the network's VID on trunks, keeping
/// PCP and DEI.
#[test]
fn access_port_vlan_hopping_and_priority_tags() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .net("net-b", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .access("vm3", "net-b")
        .trunk("trunk", &[(100, "net-a"), (200, "net-b")], None);
    let mut sc = Scenario::new("access_port_vlan_hopping_and_priority_tags", cfg);
    let (a, b, c) = (m(0x0a), m(0x0b), m(0x0c));

    // Tagged with net-a's trunk VID, with net-b's, with any other: dropped.
    sc.drop(
        S,
        "vm1",
        &Eth::new(BCAST, a, 1).q(100, 0, false),
        DropReason::TaggedOnAccess,
    );
    sc.drop(
        2 * S,
        "vm1",
        &Eth::new(BCAST, a, 2).q(200, 0, false),
        DropReason::TaggedOnAccess,
    );
    sc.drop(
        3 * S,
        "vm1",
        &Eth::new(c, a, 3).q(1, 3, false),
        DropReason::TaggedOnAccess,
    );
    // Reserved VID 4095 on an access port: dropped.
    sc.drop(
        4 * S,
        "vm1",
        &Eth::new(BCAST, a, 4).q(4095, 0, false),
        DropReason::ReservedVid,
    );
    // a was not learned from any of them: a frame to it floods.
    let f = Eth::new(a, b, 5);
    sc.flood(
        5 * S,
        "vm2",
        &f,
        vec![("vm1", f.untagged()), ("trunk", f.tagged(100, 0, false))],
    );
    // net-b heard nothing of the hopping attempts; its own traffic is fine.
    let f = Eth::new(BCAST, c, 6);
    sc.flood(6 * S, "vm3", &f, vec![("trunk", f.tagged(200, 0, false))]);
    // Priority-tagged: accepted, PCP kept on the trunk.
    let f = Eth::new(BCAST, a, 7).q(0, 5, false);
    sc.flood(
        7 * S,
        "vm1",
        &f,
        vec![("vm2", f.untagged()), ("trunk", f.tagged(100, 5, false))],
    );
    // PCP and DEI kept; unknown unicast.
    let f = Eth::new(c, a, 8).q(0, 3, true);
    sc.flood(
        8 * S,
        "vm1",
        &f,
        vec![("vm2", f.untagged()), ("trunk", f.tagged(100, 3, true))],
    );
    // a was learned from the priority-tagged frame.
    let f = Eth::new(a, b, 9);
    sc.unicast(9 * S, "vm2", &f, "vm1", f.untagged());
    // A priority-tagged frame to a known destination: on an access port, untagged.
    let f = Eth::new(b, a, 10).q(0, 7, false);
    sc.unicast(10 * S, "vm1", &f, "vm2", f.untagged());
    let e = m(0x0e);
    let f = Eth::new(m(0x0d), e, 11).q(100, 0, false);
    sc.flood(
        11 * S,
        "trunk",
        &f,
        vec![("vm1", f.untagged()), ("vm2", f.untagged())],
    );
    // ... and on a trunk, the network's VID with the PCP and DEI it came with.
    let f = Eth::new(e, a, 12).q(0, 6, true);
    sc.unicast(12 * S, "vm1", &f, "trunk", f.tagged(100, 6, true));
    sc.learned = 4;
    sc.run();
}

/// Trunk ingress: by VID; unknown VID and VID 4095 dropped; untagged and priority-tagged
/// frames to the native network, which leaves the trunk untagged (and is accepted with
/// its own VID too when listed in `vlans`); a trunk without a native network drops
/// untagged and priority-tagged frames. Maximum-size frames keep their size.
#[test]
fn trunk_ingress() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .net("net-b", None)
        .net("net-c", None)
        .access("va", "net-a")
        .access("vb", "net-b")
        .access("vc", "net-c")
        .trunk(
            "tr",
            &[(10, "net-a"), (20, "net-b"), (30, "net-c")],
            Some("net-c"),
        )
        .trunk("tr2", &[(10, "net-a"), (33, "net-c")], None);
    let mut sc = Scenario::new("trunk_ingress", cfg);
    let (a, b, c, d) = (m(0x0a), m(0x0b), m(0x0c), m(0x0d));

    let f = Eth::new(BCAST, a, 1).q(10, 2, false);
    sc.flood(
        S,
        "tr",
        &f,
        vec![("va", f.untagged()), ("tr2", f.tagged(10, 2, false))],
    );
    let f = Eth::new(BCAST, a, 2).q(20, 0, false);
    sc.flood(2 * S, "tr", &f, vec![("vb", f.untagged())]);
    sc.drop(
        3 * S,
        "tr",
        &Eth::new(BCAST, a, 3).q(99, 0, false),
        DropReason::UnknownVid,
    );
    sc.drop(
        4 * S,
        "tr",
        &Eth::new(BCAST, a, 4).q(4095, 0, false),
        DropReason::ReservedVid,
    );
    // Untagged, priority-tagged and VID 30 all belong to the native net-c; tr2 carries
    // net-c as VID 33 (PCP and DEI kept, PCP 0 for an untagged frame).
    let f = Eth::new(BCAST, c, 5);
    sc.flood(
        5 * S,
        "tr",
        &f,
        vec![("vc", f.untagged()), ("tr2", f.tagged(33, 0, false))],
    );
    let f = Eth::new(BCAST, c, 6).q(0, 6, true);
    sc.flood(
        6 * S,
        "tr",
        &f,
        vec![("vc", f.untagged()), ("tr2", f.tagged(33, 6, true))],
    );
    let f = Eth::new(BCAST, c, 7).q(30, 1, false);
    sc.flood(
        7 * S,
        "tr",
        &f,
        vec![("vc", f.untagged()), ("tr2", f.tagged(33, 1, false))],
    );
    // Native leaves the trunk untagged: unknown unicast, then broadcast, then known.
    let f = Eth::new(d, m(0x0e), 8);
    sc.flood(
        8 * S,
        "vc",
        &f,
        vec![("tr", f.untagged()), ("tr2", f.tagged(33, 0, false))],
    );
    let f = Eth::new(BCAST, m(0x0e), 9).q(0, 5, false);
    sc.flood(
        9 * S,
        "vc",
        &f,
        vec![("tr", f.untagged()), ("tr2", f.tagged(33, 5, false))],
    );
    let f = Eth::new(c, m(0x0e), 10);
    sc.unicast(10 * S, "vc", &f, "tr", f.untagged());
    // A trunk without native drops untagged and priority-tagged frames, and VIDs it
    // does not carry.
    sc.drop(11 * S, "tr2", &Eth::new(BCAST, b, 11), DropReason::NoNative);
    sc.drop(
        12 * S,
        "tr2",
        &Eth::new(BCAST, b, 12).q(0, 4, false),
        DropReason::NoNative,
    );
    sc.drop(
        13 * S,
        "tr2",
        &Eth::new(BCAST, b, 13).q(20, 0, false),
        DropReason::UnknownVid,
    );
    sc.drop(
        14 * S,
        "tr2",
        &Eth::new(BCAST, b, 14).q(4095, 0, false),
        DropReason::ReservedVid,
    );
    // b was never learned from the dropped frames.
    let f = Eth::new(b, a, 15);
    sc.flood(
        15 * S,
        "va",
        &f,
        vec![
            ("tr", f.tagged(10, 0, false)),
            ("tr2", f.tagged(10, 0, false)),
        ],
    );
    // Largest frames: 1500 bytes of payload, tagged (1518) in, untagged (1514) out.
    let f = Eth::new(BCAST, m(0x0f), 16).sized(1500).q(10, 0, false);
    sc.flood(
        16 * S,
        "tr2",
        &f,
        vec![("va", f.untagged()), ("tr", f.tagged(10, 0, false))],
    );
    assert_eq!(f.bytes().len(), 1518);
    assert_eq!(f.untagged().len(), 1514);
    // Tagged in, native (untagged) out.
    let f = Eth::new(BCAST, m(0x1c), 17).q(33, 5, true);
    sc.flood(
        17 * S,
        "tr2",
        &f,
        vec![("vc", f.untagged()), ("tr", f.untagged())],
    );
    let f = Eth::new(m(0x1c), m(0x0e), 18);
    sc.unicast(18 * S, "vc", &f, "tr2", f.tagged(33, 0, false));
    // a (net-a) learned on tr then va; c, e and 1c (net-c); f (net-a).
    sc.learned = 6;
    sc.moves = 1;
    sc.run();
}

/// Trunk egress: an untagged frame gets a tag with the network's VID and PCP 0; a
/// tagged frame between two trunks that carry the network under different VIDs is
/// translated, keeping PCP and DEI; a network reached by two VIDs leaves with the
/// lowest and is accepted on both.
#[test]
fn trunk_egress_push_and_translate() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .net("net-b", None)
        .access("vm1", "net-a")
        .access("vm2", "net-b")
        .trunk("tra", &[(10, "net-a")], None)
        .trunk("trb", &[(200, "net-a"), (300, "net-b")], None)
        .trunk("trc", &[(40, "net-a"), (41, "net-a")], None);
    let mut sc = Scenario::new("trunk_egress_push_and_translate", cfg);
    let (a, b, c, d) = (m(0x0a), m(0x0b), m(0x0c), m(0x0d));

    let f = Eth::new(BCAST, a, 1);
    sc.flood(
        S,
        "vm1",
        &f,
        vec![
            ("tra", f.tagged(10, 0, false)),
            ("trb", f.tagged(200, 0, false)),
            ("trc", f.tagged(40, 0, false)),
        ],
    );
    let f = Eth::new(BCAST, b, 2).q(10, 5, true);
    sc.flood(
        2 * S,
        "tra",
        &f,
        vec![
            ("vm1", f.untagged()),
            ("trb", f.tagged(200, 5, true)),
            ("trc", f.tagged(40, 5, true)),
        ],
    );
    let f = Eth::new(b, c, 3).q(200, 7, false);
    sc.unicast(3 * S, "trb", &f, "tra", f.tagged(10, 7, false));
    let f = Eth::new(a, d, 4).q(41, 2, false);
    sc.unicast(4 * S, "trc", &f, "vm1", f.untagged());
    let f = Eth::new(d, a, 5);
    sc.unicast(5 * S, "vm1", &f, "trc", f.tagged(40, 0, false));
    let f = Eth::new(c, d, 6).q(40, 1, true);
    sc.unicast(6 * S, "trc", &f, "trb", f.tagged(200, 1, true));
    let f = Eth::new(BCAST, m(0x1b), 7).q(300, 4, false);
    sc.flood(7 * S, "trb", &f, vec![("vm2", f.untagged())]);
    let f = Eth::new(BCAST, m(0x2b), 8);
    sc.flood(8 * S, "vm2", &f, vec![("trb", f.tagged(300, 0, false))]);
    let f = Eth::new(m(0x1b), m(0x2b), 9);
    sc.unicast(9 * S, "vm2", &f, "trb", f.tagged(300, 0, false));
    // A maximum-size untagged frame (1514 bytes) leaves a trunk as 1518 bytes.
    let f = Eth::new(c, a, 10).sized(1500);
    assert_eq!(f.bytes().len(), 1514);
    sc.unicast(10 * S, "vm1", &f, "trb", f.tagged(200, 0, false));
    sc.learned = 6;
    sc.run();
}

/// Short frames leave access ports zero-padded to 60 bytes, whether they arrived short
/// and untagged or became short when their tag was popped; longer frames are not
/// touched. A short untagged frame pushed onto a trunk is padded to 60 before the tag
/// goes on (64 bytes on the wire).
#[test]
fn egress_padding() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .trunk("tr", &[(10, "net-a")], None);
    let mut sc = Scenario::new("egress_padding", cfg);
    let (a, b, c) = (m(0x0a), m(0x0b), m(0x0c));
    // The untagged frame padded to 60, then tagged.
    let padded_then_tagged = |f: &Eth, vid: u16| {
        let mut v = f.untagged();
        let t = tci(0, false, vid).to_be_bytes();
        v.splice(12..12, [0x81, 0x00, t[0], t[1]]);
        v
    };

    // An ARP-sized frame (42 bytes).
    let f = Eth::new(BCAST, a, 1).sized(28);
    assert_eq!(f.bytes().len(), 42);
    sc.flood(
        S,
        "vm1",
        &f,
        vec![("vm2", f.untagged()), ("tr", padded_then_tagged(&f, 10))],
    );
    // A bare header (14 bytes).
    let f = Eth::new(b, a, 2).sized(0);
    sc.flood(
        2 * S,
        "vm1",
        &f,
        vec![("vm2", f.untagged()), ("tr", padded_then_tagged(&f, 10))],
    );
    // 50 bytes tagged: 46 after the pop, padded to 60.
    let f = Eth::new(a, b, 3).sized(32).q(10, 0, false);
    assert_eq!(f.bytes().len(), 50);
    sc.unicast(3 * S, "tr", &f, "vm1", f.untagged());
    // 28 bytes tagged, flooded to two access ports.
    let f = Eth::new(BCAST, b, 4).sized(10).q(10, 3, false);
    sc.flood(
        4 * S,
        "tr",
        &f,
        vec![("vm1", f.untagged()), ("vm2", f.untagged())],
    );
    // Exactly 60 and 61 bytes: unchanged.
    let f = Eth::new(a, c, 5);
    assert_eq!(f.bytes().len(), 60);
    sc.unicast(5 * S, "vm2", &f, "vm1", f.bytes());
    let f = Eth::new(a, c, 6).sized(47);
    sc.unicast(6 * S, "vm2", &f, "vm1", f.bytes());
    // 64 bytes tagged: 60 after the pop, nothing added.
    let f = Eth::new(c, b, 7).q(10, 0, false);
    sc.unicast(7 * S, "tr", &f, "vm2", f.untagged());
    assert_eq!(f.untagged(), Eth::new(c, b, 7).bytes());
    sc.learned = 3;
    for s in &sc.steps {
        for (p, out) in &s.out {
            assert!(out.len() >= 60, "port {p}: {} bytes", out.len());
        }
    }
    sc.run();
}

/// A MAC seen on port A then on port B moves at once (counted): unicast to it goes to
/// B, including from an ingress whose decision to A was cached; then back.
#[test]
fn mac_move() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a");
    let mut sc = Scenario::new("mac_move", cfg);
    let (mv, x, y) = (m(0x10), m(0x11), m(0x12));

    let f = Eth::new(BCAST, mv, 1);
    sc.flood(
        S,
        "p1",
        &f,
        vec![("p2", f.untagged()), ("p3", f.untagged())],
    );
    let f = Eth::new(mv, x, 2);
    sc.unicast(2 * S, "p3", &f, "p1", f.untagged());
    // The VM migrates to p2.
    let f = Eth::new(BCAST, mv, 3);
    sc.flood(
        3 * S,
        "p2",
        &f,
        vec![("p1", f.untagged()), ("p3", f.untagged())],
    );
    let f = Eth::new(mv, x, 4);
    sc.unicast(4 * S, "p3", &f, "p2", f.untagged());
    let f = Eth::new(mv, y, 5);
    sc.unicast(5 * S, "p1", &f, "p2", f.untagged());
    // And back to p1, with a unicast frame this time.
    let f = Eth::new(x, mv, 6);
    sc.unicast(6 * S, "p1", &f, "p3", f.untagged());
    let f = Eth::new(mv, x, 7);
    sc.unicast(7 * S, "p3", &f, "p1", f.untagged());
    let f = Eth::new(mv, y, 8);
    sc.drop(8 * S, "p1", &f, DropReason::SamePort);
    sc.learned = 3;
    sc.moves = 2;
    sc.run();
}

/// A static entry: unicast goes to its port before any learning; a frame from that MAC
/// on another port is dropped (`static_move`) and the entry stays; a frame from it on
/// its own port is fine; it never ages; the same MAC may be static elsewhere in another
/// network.
#[test]
fn static_fdb_entry() {
    let st = m(0x53);
    let cfg = Cfg::new()
        .switch("mac_aging_secs = 15")
        .net("net-a", None)
        .net("net-b", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .access("vm3", "net-a")
        .access("vm4", "net-b")
        .trunk("tr", &[(10, "net-a"), (20, "net-b")], None)
        .fdb("net-a", st, "vm1")
        .fdb("net-b", st, "tr");
    let mut sc = Scenario::new("static_fdb_entry", cfg);
    let (b, c) = (m(0x0b), m(0x0c));

    let f = Eth::new(st, b, 1);
    sc.unicast(S, "vm2", &f, "vm1", f.untagged());
    let f = Eth::new(st, b, 2);
    sc.unicast(2 * S, "vm4", &f, "tr", f.tagged(20, 0, false));
    // The static MAC on another port: dropped, not moved.
    sc.drop(
        3 * S,
        "vm3",
        &Eth::new(BCAST, st, 3),
        DropReason::StaticMove,
    );
    sc.drop(
        4 * S,
        "tr",
        &Eth::new(b, st, 4).q(10, 0, false),
        DropReason::StaticMove,
    );
    let f = Eth::new(st, b, 5);
    sc.unicast(5 * S, "vm2", &f, "vm1", f.untagged());
    // From its own port: forwarded as usual.
    let f = Eth::new(BCAST, st, 6);
    sc.flood(
        6 * S,
        "vm1",
        &f,
        vec![
            ("vm2", f.untagged()),
            ("vm3", f.untagged()),
            ("tr", f.tagged(10, 0, false)),
        ],
    );
    let f = Eth::new(b, st, 7);
    sc.unicast(7 * S, "vm1", &f, "vm2", f.untagged());
    // Toward its own port from its own port: same_port.
    sc.drop(8 * S, "vm1", &Eth::new(st, c, 8), DropReason::SamePort);
    // Long after any aging (15 s): still there, in both networks.
    let f = Eth::new(st, b, 9);
    sc.unicast(1000 * S, "vm3", &f, "vm1", f.untagged());
    let f = Eth::new(st, c, 10).q(20, 0, false);
    sc.drop(1001 * S, "tr", &f, DropReason::SamePort);
    let f = Eth::new(st, c, 11);
    sc.unicast(1002 * S, "vm4", &f, "tr", f.tagged(20, 0, false));
    // b (net-a) at 1 s; b (net-b) at 2 s; c (net-a) at 8 s; b (net-a, relearned on vm3
    // after aging) at 1000 s; c (net-b) on tr at 1001 s, moved to vm4 at 1002 s.
    sc.learned = 5;
    sc.moves = 1;
    sc.run();
}

/// Aging with `mac_aging_secs = 15` (the minimum): an entry idle for 15 s is gone (the
/// frame floods again, although the unicast decision was cached), one idle for 14.999999 s
/// is kept, and one refreshed in time is kept.
#[test]
fn mac_aging() {
    let cfg = Cfg::new()
        .switch("mac_aging_secs = 15")
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a");
    let mut sc = Scenario::new("mac_aging", cfg);
    let (a, b, c) = (m(0x0a), m(0x0b), m(0x0c));

    let f = Eth::new(BCAST, a, 1);
    sc.flood(
        S,
        "p1",
        &f,
        vec![("p2", f.untagged()), ("p3", f.untagged())],
    );
    let f = Eth::new(BCAST, b, 2);
    sc.flood(
        S + S / 2,
        "p2",
        &f,
        vec![("p1", f.untagged()), ("p3", f.untagged())],
    );
    let f = Eth::new(a, c, 3);
    sc.unicast(2 * S, "p3", &f, "p1", f.untagged());
    let f = Eth::new(b, c, 4);
    sc.unicast(3 * S, "p3", &f, "p2", f.untagged());
    // b refreshed at 10 s (its frame to c is known: c seen at 3 s).
    let f = Eth::new(c, b, 5);
    sc.unicast(10 * S, "p2", &f, "p3", f.untagged());
    // a, last seen at 1 s: known 1 µs before 16 s, gone at 16 s.
    let f = Eth::new(a, c, 6);
    sc.unicast(16 * S - 1, "p3", &f, "p1", f.untagged());
    let f = Eth::new(a, c, 7);
    sc.flood(
        16 * S,
        "p3",
        &f,
        vec![("p1", f.untagged()), ("p2", f.untagged())],
    );
    // b, first seen at 1.5 s but refreshed at 10 s: still known at 16.5 s and 24.9 s.
    let f = Eth::new(b, c, 8);
    sc.unicast(16 * S + S / 2, "p3", &f, "p2", f.untagged());
    // a comes back: learned again.
    let f = Eth::new(c, a, 9);
    sc.unicast(17 * S, "p1", &f, "p3", f.untagged());
    let f = Eth::new(a, c, 10);
    sc.unicast(18 * S, "p3", &f, "p1", f.untagged());
    let f = Eth::new(b, c, 11);
    sc.unicast(25 * S - 1, "p3", &f, "p2", f.untagged());
    // b idle since 10 s: gone at 25 s.
    let f = Eth::new(b, c, 12);
    sc.flood(
        25 * S,
        "p3",
        &f,
        vec![("p1", f.untagged()), ("p2", f.untagged())],
    );
    sc.learned = 4;
    sc.run();
}

/// `mac_limit_per_port = 2`: a third MAC from a port is not learned (counted), its
/// frames are still forwarded, traffic to it floods; other ports are unaffected; once
/// the port's entries expire it learns again.
#[test]
fn mac_limit_per_port() {
    let cfg = Cfg::new()
        .switch("mac_aging_secs = 15")
        .switch("mac_limit_per_port = 2")
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a");
    let mut sc = Scenario::new("mac_limit_per_port", cfg);
    let (a1, a2, a3, b, c) = (m(0xa1), m(0xa2), m(0xa3), m(0x0b), m(0x0c));
    let both =
        |f: &Eth, x: &'static str, y: &'static str| vec![(x, f.untagged()), (y, f.untagged())];

    let f = Eth::new(BCAST, a1, 1);
    sc.flood(S, "p1", &f, both(&f, "p2", "p3"));
    let f = Eth::new(BCAST, a2, 2);
    sc.flood(2 * S, "p1", &f, both(&f, "p2", "p3"));
    // The third MAC: forwarded, not learned.
    let f = Eth::new(BCAST, a3, 3);
    sc.flood(3 * S, "p1", &f, both(&f, "p2", "p3"));
    let f = Eth::new(a1, b, 4);
    sc.unicast(4 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(a2, b, 5);
    sc.unicast(5 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(a3, b, 6);
    sc.flood(6 * S, "p2", &f, both(&f, "p1", "p3"));
    let f = Eth::new(a3, c, 7);
    sc.flood(7 * S, "p3", &f, both(&f, "p1", "p2"));
    // a3 again, with a known destination: forwarded, still not learned.
    let f = Eth::new(b, a3, 8);
    sc.unicast(8 * S, "p1", &f, "p2", f.untagged());
    let f = Eth::new(c, a1, 9);
    sc.unicast(9 * S, "p1", &f, "p3", f.untagged());
    let f = Eth::new(a3, b, 10);
    sc.flood(10 * S, "p2", &f, both(&f, "p1", "p3"));
    // At 30 s a1 (9 s) and a2 (2 s) have expired: p1 has room again.
    let f = Eth::new(BCAST, a3, 11);
    sc.flood(30 * S, "p1", &f, both(&f, "p2", "p3"));
    let f = Eth::new(a3, b, 12);
    sc.unicast(31 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(a1, b, 13);
    sc.flood(32 * S, "p2", &f, both(&f, "p1", "p3"));
    // a1, a2, b, c; then a3 at 30 s and b again at 31 s.
    sc.learned = 6;
    sc.port_limit = 2;
    sc.run();
}

/// `mac_table_size = 3`: when the table is full a new MAC is learned by evicting, OVS
/// style, the oldest entry of the port with the most entries if that port has more than
/// the learner, else the learner's own oldest (so a port flooding new MACs recycles its
/// own and never starves a quieter port); expired entries are reclaimed before any live
/// one is evicted. This is the policy documented in `flowtable::fdb`. A cached decision
/// toward an evicted MAC is not served again.
#[test]
fn mac_table_size_limit() {
    let cfg = Cfg::new()
        .switch("mac_aging_secs = 15")
        .switch("mac_table_size = 3")
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a");
    let mut sc = Scenario::new("mac_table_size_limit", cfg);
    let (a1, a2, a3, a4) = (m(0xa1), m(0xa2), m(0xa3), m(0xa4));
    let (b1, b2, b3, c1) = (m(0xb1), m(0xb2), m(0xb3), m(0xc1));
    let both =
        |f: &Eth, x: &'static str, y: &'static str| vec![(x, f.untagged()), (y, f.untagged())];

    let f = Eth::new(BCAST, a1, 1);
    sc.flood(S, "p1", &f, both(&f, "p2", "p3"));
    // (p2, a1) -> p1 is cached here.
    let f = Eth::new(a1, b1, 2);
    sc.unicast(2 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(BCAST, a2, 3);
    sc.flood(3 * S, "p1", &f, both(&f, "p2", "p3"));
    // Full (a1, a2 on p1; b1 on p2). a3 on p1, the busiest port: p1 recycles its own
    // oldest, a1.
    let f = Eth::new(b1, a3, 4);
    sc.unicast(4 * S, "p1", &f, "p2", f.untagged());
    let f = Eth::new(a1, b1, 5);
    sc.flood(5 * S, "p2", &f, both(&f, "p1", "p3"));
    // c1 on p3 (no entries): p1 has the most (a2, a3), its oldest, a2, goes.
    let f = Eth::new(b1, c1, 6);
    sc.unicast(6 * S, "p3", &f, "p2", f.untagged());
    let f = Eth::new(a2, b1, 7);
    sc.flood(7 * S, "p2", &f, both(&f, "p1", "p3"));
    let f = Eth::new(a3, b1, 8);
    sc.unicast(8 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(c1, b1, 9);
    sc.unicast(9 * S, "p2", &f, "p3", f.untagged());
    let f = Eth::new(b1, c1, 10);
    sc.unicast(10 * S, "p3", &f, "p2", f.untagged());
    // One entry per port; b2 on p2, among the busiest: p2 recycles b1.
    let f = Eth::new(a3, b2, 11);
    sc.unicast(11 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(b1, c1, 12);
    sc.flood(12 * S, "p3", &f, both(&f, "p1", "p2"));
    let f = Eth::new(b2, a3, 13);
    sc.unicast(13 * S, "p1", &f, "p2", f.untagged());
    let f = Eth::new(c1, a3, 14);
    sc.unicast(14 * S, "p1", &f, "p3", f.untagged());
    // At 27 s b2 (11 s) and c1 (12 s) have expired: a full table reclaims the oldest
    // expired entry first, so a3 (14 s) stays although p1 is among the busiest.
    let f = Eth::new(BCAST, a4, 15);
    sc.flood(27 * S, "p1", &f, both(&f, "p2", "p3"));
    let f = Eth::new(a3, b3, 16);
    sc.unicast(28 * S, "p2", &f, "p1", f.untagged());
    let f = Eth::new(a4, b3, 17);
    sc.unicast(29 * S, "p2", &f, "p1", f.untagged());
    sc.learned = 8;
    sc.run();
}

/// Multicast, broadcast and all-zero source MACs: dropped (`invalid_source`), never
/// learned.
#[test]
fn invalid_source_dropped() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .trunk("tr", &[(10, "net-a")], None);
    let mut sc = Scenario::new("invalid_source_dropped", cfg);
    let b = m(0x0b);
    let mcast = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
    let mcast6 = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];

    sc.drop(
        S,
        "p1",
        &Eth::new(BCAST, mcast, 1),
        DropReason::InvalidSource,
    );
    sc.drop(
        2 * S,
        "p1",
        &Eth::new(b, BCAST, 2),
        DropReason::InvalidSource,
    );
    sc.drop(
        3 * S,
        "p1",
        &Eth::new(b, [0; 6], 3),
        DropReason::InvalidSource,
    );
    sc.drop(
        4 * S,
        "tr",
        &Eth::new(b, mcast6, 4).q(10, 0, false),
        DropReason::InvalidSource,
    );
    sc.drop(
        5 * S,
        "p1",
        &Eth::new(b, [0x03, 0, 0, 0, 0, 1], 5),
        DropReason::InvalidSource,
    );
    // None of them was learned: frames to them flood (a multicast destination would
    // flood anyway; the zero MAC is a unicast destination).
    let f = Eth::new([0; 6], b, 6);
    sc.flood(
        6 * S,
        "p2",
        &f,
        vec![("p1", f.untagged()), ("tr", f.tagged(10, 0, false))],
    );
    let f = Eth::new(mcast, b, 7);
    sc.flood(
        7 * S,
        "p2",
        &f,
        vec![("p1", f.untagged()), ("tr", f.tagged(10, 0, false))],
    );
    sc.learned = 1;
    sc.run();
}

/// 802.1ad S-tags and QinQ (two tags) are dropped (`unsupported_tag`) on trunks
/// and access ports alike.
#[test]
fn qinq_and_802_1ad_dropped() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("vm1", "net-a")
        .access("vm2", "net-a")
        .trunk("tr", &[(10, "net-a"), (20, "net-a")], Some("net-a"));
    let mut sc = Scenario::new("qinq_and_802_1ad_dropped", cfg);
    let (a, b) = (m(0x0a), m(0x0b));
    let u = DropReason::UnsupportedTag;

    sc.drop(
        S,
        "tr",
        &Eth::new(BCAST, a, 1).tag(TPID_S, 10).q(20, 0, false),
        u,
    );
    sc.drop(2 * S, "tr", &Eth::new(BCAST, a, 2).tag(TPID_S, 10), u);
    sc.drop(
        3 * S,
        "tr",
        &Eth::new(BCAST, a, 3).q(10, 0, false).q(20, 0, false),
        u,
    );
    sc.drop(4 * S, "tr", &Eth::new(BCAST, a, 4).tag(TPID_S, 0), u);
    sc.drop(5 * S, "vm1", &Eth::new(BCAST, a, 5).tag(TPID_S, 0), u);
    sc.drop(
        6 * S,
        "vm1",
        &Eth::new(BCAST, a, 6).q(0, 0, false).q(10, 0, false),
        u,
    );
    sc.drop(
        7 * S,
        "vm1",
        &Eth::new(BCAST, a, 7).q(0, 0, false).q(0, 0, false),
        u,
    );
    // The control frame: accepted.
    let f = Eth::new(a, b, 8).q(10, 0, false);
    sc.flood(
        8 * S,
        "tr",
        &f,
        vec![("vm1", f.untagged()), ("vm2", f.untagged())],
    );
    sc.learned = 1;
    sc.run();
}

/// QinQ with three tags is still QinQ: dropped as `unsupported_tag`.
#[test]
fn triple_tagged_is_unsupported_tag() {
    let cfg = Cfg::new().net("net-a", None).access("vm1", "net-a").trunk(
        "tr",
        &[(10, "net-a")],
        Some("net-a"),
    );
    let mut sc = Scenario::new("triple_tagged_is_unsupported_tag", cfg);
    let f = Eth::new(BCAST, m(0x0a), 1)
        .tag(TPID_S, 10)
        .q(20, 0, false)
        .q(30, 0, false);
    sc.drop(S, "tr", &f, DropReason::UnsupportedTag);
    sc.run();
}

/// Frames shorter than an Ethernet header (and tagged frames cut inside their tag) are
/// dropped as `malformed`; the switch carries on.
#[test]
fn malformed_dropped() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .trunk("tr", &[(10, "net-a")], Some("net-a"));
    let mut sc = Scenario::new("malformed_dropped", cfg);
    let a = m(0x0a);
    let full = Eth::new(BCAST, a, 1).q(10, 0, false).bytes();

    sc.drop_raw(S, "p1", Vec::new(), DropReason::Malformed);
    sc.drop_raw(2 * S, "p1", vec![0xff], DropReason::Malformed);
    sc.drop_raw(3 * S, "p1", full[..13].to_vec(), DropReason::Malformed);
    sc.drop_raw(4 * S, "tr", full[..13].to_vec(), DropReason::Malformed);
    // A tag with no room for the EtherType after it.
    sc.drop_raw(5 * S, "tr", full[..16].to_vec(), DropReason::Malformed);
    sc.drop_raw(6 * S, "tr", full[..17].to_vec(), DropReason::Malformed);
    // 14 bytes is a frame: padded to 60 on the way out.
    let f = Eth::new(BCAST, a, 7).sized(0);
    sc.flood(
        7 * S,
        "p1",
        &f,
        vec![("p2", f.untagged()), ("tr", f.untagged())],
    );
    // 18 bytes tagged: a frame, the tag popped (native net-a is untagged).
    let f = Eth::new(m(0x0b), m(0x0c), 8).sized(0).q(10, 0, false);
    sc.flood(
        8 * S,
        "tr",
        &f,
        vec![("p1", f.untagged()), ("p2", f.untagged())],
    );
    sc.learned = 2;
    sc.run();
}

/// A MAC that moves onto a port that is at its `mac_limit_per_port` must not keep
/// pointing at the port it left: the issue says a MAC that moves "re-points at once".
/// Whether the move evicts the port's own oldest entry (and unicasts to the new port) or
/// forgets the MAC (and floods), frames to it must reach the port it is on now.
#[test]
fn mac_move_onto_port_at_limit() {
    let cfg = Cfg::new()
        .switch("mac_limit_per_port = 1")
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a");
    let config = Config::from_str(&cfg.text("mac_move_onto_port_at_limit"), "t.toml").unwrap();
    let port = |n: &str| config.port_by_name(n).unwrap();
    let (p1, p2, p3) = (port("p1"), port("p2"), port("p3"));
    let mut sw = dataplane::offline::OfflineSwitch::new(config).unwrap();
    let (a, x, c) = (m(0x0a), m(0x01), m(0x0c));
    let ns = |t: u64| t * 1000;

    sw.inject(p1, &Eth::new(BCAST, a, 1).bytes(), ns(S));
    sw.inject(p2, &Eth::new(BCAST, x, 2).bytes(), ns(2 * S));
    // The VM with MAC a migrates from p1 to p2, which already holds its one MAC (x).
    sw.inject(p2, &Eth::new(BCAST, a, 3).bytes(), ns(3 * S));
    let out = sw.inject(p3, &Eth::new(a, c, 4).bytes(), ns(4 * S));
    let to: Vec<_> = out.sent.iter().map(|(p, _)| *p).collect();
    assert!(
        to.contains(&p2),
        "a frame to a MAC now on p2 went to {to:?} (p1 = {p1:?}, p2 = {p2:?}): {:?}",
        out.action
    );
}

/// No frame leaves shorter than the 60-byte minimum (REFERENCE.md: "Minimum frame 60
/// bytes without FCS"): a short priority-tagged frame from an access port, or a short
/// tagged frame from a trunk, whose tag is rewritten for another trunk must be padded
/// like an untagged frame pushed onto a trunk is.
#[test]
fn trunk_egress_never_below_60_bytes() {
    let cfg = Cfg::new()
        .net("net-a", None)
        .access("vm1", "net-a")
        .trunk("tr1", &[(10, "net-a")], None)
        .trunk("tr2", &[(100, "net-a")], None);
    let config =
        Config::from_str(&cfg.text("trunk_egress_never_below_60_bytes"), "t.toml").unwrap();
    let port = |n: &str| config.port_by_name(n).unwrap();
    let (vm1, tr1, tr2) = (port("vm1"), port("tr1"), port("tr2"));
    let mut sw = dataplane::offline::OfflineSwitch::new(config).unwrap();

    let check = |sent: &[(dataplane::config::PortIdx, Vec<u8>)], f: &Eth, to, want: Vec<u8>| {
        let (_, got) = sent
            .iter()
            .find(|(p, _)| *p == to)
            .unwrap_or_else(|| panic!("nothing sent to {to:?}"));
        assert!(
            got.len() >= 60
                && got[..want.len()] == want[..]
                && got[want.len()..].iter().all(|&b| b == 0),
            "{} bytes in, {} bytes out: {}",
            f.bytes().len(),
            got.len(),
            hex(got)
        );
    };
    // 28 bytes, priority-tagged, from an access port.
    let f = Eth::new(BCAST, m(0x0a), 1).sized(10).q(0, 5, false);
    let out = sw.inject(vm1, &f.bytes(), 1_000_000_000);
    check(&out.sent, &f, tr1, f.tagged(10, 5, false));
    check(&out.sent, &f, tr2, f.tagged(100, 5, false));
    // 40 bytes, tagged, from a trunk to the other trunk.
    let f = Eth::new(BCAST, m(0x0b), 2).sized(22).q(10, 3, true);
    let out = sw.inject(tr1, &f.bytes(), 2_000_000_000);
    check(&out.sent, &f, tr2, f.tagged(100, 3, true));
    assert_eq!(
        out.sent.iter().find(|(p, _)| *p == vm1).unwrap().1,
        f.untagged()
    );
}

/// `vswitch replay`: frames with the same timestamp in different inputs are switched in
/// the order of the `--input` options, which decides what is learned first.
#[test]
fn replay_ties_follow_input_order() {
    let config = Cfg::new()
        .net("net-a", None)
        .access("p1", "net-a")
        .access("p2", "net-a")
        .access("p3", "net-a")
        .text("replay_ties_follow_input_order");
    let dir = tmp_dir("replay_ties_follow_input_order");
    let cfg_path = dir.join("vswitch.toml");
    fs::write(&cfg_path, config).unwrap();
    let (a, b) = (m(0x0a), m(0x0b));
    let from_a = Eth::new(BCAST, a, 1);
    let from_b = Eth::new(a, b, 2);
    let (in1, in2) = (dir.join("p1.pcap"), dir.join("p2.pcap"));
    write_pcap(&in1, &[(S, from_a.bytes())]);
    write_pcap(&in2, &[(S, from_b.bytes())]);

    let run = |first: (&str, &Path), second: (&str, &Path), out: &Path| {
        let o = vswitch(&[
            "replay",
            "--config",
            cfg_path.to_str().unwrap(),
            "--input",
            &format!("{}={}", first.0, first.1.display()),
            "--input",
            &format!("{}={}", second.0, second.1.display()),
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let read = |p: &str| -> Vec<Vec<u8>> {
            read_pcap(&out.join(format!("{p}.pcap")))
                .into_iter()
                .map(|(t, f)| {
                    assert_eq!(t, S);
                    f
                })
                .collect()
        };
        (read("p1"), read("p2"), read("p3"))
    };

    // p1 first: a is learned, b's frame to a is unicast.
    let (o1, o2, o3) = run(("p1", &in1), ("p2", &in2), &dir.join("out12"));
    assert_eq!(o1, vec![from_b.untagged()]);
    assert_eq!(o2, vec![from_a.untagged()]);
    assert_eq!(o3, vec![from_a.untagged()]);
    // p2 first: b's frame to a floods.
    let (o1, o2, o3) = run(("p2", &in2), ("p1", &in1), &dir.join("out21"));
    assert_eq!(o1, vec![from_b.untagged()]);
    assert_eq!(o2, vec![from_a.untagged()]);
    assert_eq!(o3, vec![from_b.untagged(), from_a.untagged()]);

    // An input naming a port the configuration does not have: an error, exit non-zero.
    let o = vswitch(&[
        "replay",
        "--config",
        cfg_path.to_str().unwrap(),
        "--input",
        &format!("nope={}", in1.display()),
        "--output-dir",
        dir.join("out-err").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"));
}

// ---------------------------------------------------------------------------------------
// vswitch trace
// ---------------------------------------------------------------------------------------

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vswitch.toml")
}

/// The lines of `vswitch trace` that start with `stage:`.
fn stage<'a>(out: &'a str, stage: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(&format!("{stage}:")))
        .collect()
}

fn trace(port: &str, frame: &Eth) -> String {
    let cfg = example_config();
    let out = vswitch(&[
        "trace",
        "--config",
        cfg.to_str().unwrap(),
        "--port",
        port,
        "--frame",
        &hex(&frame.bytes()),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vswitch trace failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[track_caller]
fn one<'a>(out: &'a str, name: &str) -> &'a str {
    let l = stage(out, name);
    assert_eq!(l.len(), 1, "one {name} line expected:\n{out}");
    l[0]
}

#[track_caller]
fn has(line: &str, words: &[&str]) {
    for w in words {
        assert!(line.contains(w), "{line:?} should contain {w:?}");
    }
}

/// `vswitch trace` on examples/vswitch.toml: a flood, a unicast to a static entry, a
/// classification drop and a forwarding drop, stage by stage.
#[test]
fn trace_stages() {
    // Flood: vm1 (net-a) → broadcast: vm3 untagged, trunk1 with VID 10.
    let out = trace("vm1", &Eth::new(BCAST, m(0x0a), 1));
    has(
        one(&out, "Frame"),
        &[
            "60 bytes",
            "fa:16:3e:00:00:0a",
            "ff:ff:ff:ff:ff:ff",
            "untagged",
        ],
    );
    has(one(&out, "Ingress"), &["vm1", "access", "net-a"]);
    has(one(&out, "Classify"), &["net-a", "1"]);
    has(
        one(&out, "Learn"),
        &["fa:16:3e:00:00:0a", "net-a", "new", "vm1"],
    );
    has(one(&out, "Forward"), &["broadcast", "flood", "net-a"]);
    let outputs = stage(&out, "Output");
    assert_eq!(outputs.len(), 2, "{out}");
    let vm3 = outputs.iter().find(|l| l.contains("\"vm3\"")).expect(&out);
    has(vm3, &["untagged", "60 bytes"]);
    let trunk = outputs
        .iter()
        .find(|l| l.contains("\"trunk1\""))
        .expect(&out);
    has(trunk, &["VID 10", "64 bytes"]);
    assert!(
        !out.contains("\"vm2\"") && !out.contains("Output: port \"vm1\""),
        "{out}"
    );
    has(one(&out, "Decision"), &["flood", "2"]);

    // Trunk ingress to net-b, unknown unicast: to vm2 untagged only.
    let out = trace("trunk1", &Eth::new(m(0x99), m(0x0b), 2).q(20, 3, false));
    has(one(&out, "Frame"), &["VID 20", "PCP 3"]);
    has(one(&out, "Classify"), &["net-b", "2"]);
    has(one(&out, "Forward"), &["unknown unicast", "flood", "net-b"]);
    has(one(&out, "Output"), &["\"vm2\"", "untagged", "60 bytes"]);
    has(one(&out, "Decision"), &["flood", "1"]);

    // Unicast to the static entry fa:16:3e:00:00:01 on vm1.
    let out = trace("vm3", &Eth::new(m(0x01), m(0x0c), 3));
    has(
        one(&out, "Forward"),
        &["fa:16:3e:00:00:01", "vm1", "unicast"],
    );
    has(one(&out, "Output"), &["\"vm1\"", "untagged"]);
    has(one(&out, "Decision"), &["unicast", "vm1"]);

    // Classification drop: a VID-tagged frame on an access port.
    let out = trace("vm1", &Eth::new(BCAST, m(0x0a), 4).q(10, 0, false));
    has(one(&out, "Classify"), &["drop", "tagged_on_access"]);
    has(one(&out, "Decision"), &["drop", "tagged_on_access"]);
    assert!(stage(&out, "Output").is_empty(), "{out}");
    assert!(stage(&out, "Forward").is_empty(), "{out}");

    // Forwarding drop: to the static entry's own port.
    let out = trace("vm1", &Eth::new(m(0x01), m(0x0a), 5));
    has(one(&out, "Classify"), &["net-a"]);
    has(
        one(&out, "Forward"),
        &["fa:16:3e:00:00:01", "drop", "same_port"],
    );
    has(one(&out, "Decision"), &["drop", "same_port"]);
    assert!(stage(&out, "Output").is_empty(), "{out}");

    // Static move: the static MAC from another port.
    let out = trace("vm3", &Eth::new(BCAST, m(0x01), 6));
    has(one(&out, "Decision"), &["drop", "static_move"]);
    assert!(stage(&out, "Output").is_empty(), "{out}");

    // Reserved VID on a trunk.
    let out = trace("trunk1", &Eth::new(BCAST, m(0x0b), 7).q(4095, 0, false));
    has(one(&out, "Decision"), &["drop", "reserved_vid"]);
}

/// `vswitch trace --pcap`: frames are traced in order and learn as the switch would.
#[test]
fn trace_pcap_learns() {
    let dir = tmp_dir("trace_pcap_learns");
    let pcap = dir.join("in.pcap");
    let (a, b) = (m(0x0a), m(0x0b));
    write_pcap(
        &pcap,
        &[
            (S, Eth::new(BCAST, a, 1).bytes()),
            (2 * S, Eth::new(b, a, 2).bytes()),
            (3 * S, Eth::new(BCAST, b, 3).bytes()),
        ],
    );
    let cfg = example_config();
    let out = vswitch(&[
        "trace",
        "--config",
        cfg.to_str().unwrap(),
        "--port",
        "vm3",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let frames: Vec<&str> = stdout.split("--- frame ").skip(1).collect();
    assert_eq!(frames.len(), 3, "{stdout}");
    has(
        one(frames[0], "Learn"),
        &["fa:16:3e:00:00:0a", "new", "vm3"],
    );
    has(
        one(frames[1], "Learn"),
        &["fa:16:3e:00:00:0a", "refreshed", "vm3"],
    );
    has(one(frames[1], "Forward"), &["unknown unicast", "flood"]);
    has(
        one(frames[2], "Learn"),
        &["fa:16:3e:00:00:0b", "new", "vm3"],
    );
    has(one(frames[2], "Decision"), &["flood", "2"]);
}

// ---------------------------------------------------------------------------------------
// vswitch check-config
// ---------------------------------------------------------------------------------------

/// The example configuration is valid; the resolved configuration printed re-parses to
/// the same switch, with the allocated VLANs written out, and is itself stable.
#[test]
fn check_config_example() {
    let path = example_config();
    let out = vswitch(&["check-config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "check-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = Config::from_file(&path).unwrap();
    let resolved = Config::from_str(&stdout, "check-config output")
        .unwrap_or_else(|e| panic!("output does not re-parse: {e}\n{stdout}"));
    assert_eq!(resolved, original.pinned());
    let vlan = |name: &str| {
        let n = resolved.network_by_name(name).unwrap();
        resolved.network(n).unwrap().local_vlan.get()
    };
    assert_eq!(
        (vlan("net-a"), vlan("net-b"), vlan("net-c"), vlan("net-d")),
        (1, 2, 3, 4)
    );

    // Checking the output again prints it unchanged.
    let dir = tmp_dir("check_config_example");
    let again = dir.join("resolved.toml");
    fs::write(&again, &stdout).unwrap();
    let out2 = vswitch(&["check-config", again.to_str().unwrap()]);
    assert!(out2.status.success());
    let twice = String::from_utf8_lossy(&out2.stdout).into_owned();
    assert_eq!(
        Config::from_str(&twice, "check-config output").unwrap(),
        resolved
    );
    // Only the header comment (which names the file read) differs.
    let body = |s: &str| -> Vec<String> {
        s.lines()
            .skip_while(|l| l.starts_with('#'))
            .map(|l| l.split(" #").next().unwrap_or(l).trim_end().to_string())
            .collect()
    };
    assert_eq!(body(&twice), body(&stdout));
}

/// A broken configuration: non-zero exit, nothing on stdout, an error naming the file
/// and the line.
#[test]
fn check_config_errors_name_file_and_line() {
    let dir = tmp_dir("check_config_errors");
    let cases: [(&str, &str, u32, &[&str]); 5] = [
        (
            "missing_network.toml",
            "[[network]]\nname = \"net-a\"\nsegment = \"local\"\n\n[[port]]\nname = \"vm1\"\nmode = \"access\"\nnetwork = \"net-x\"\n",
            8,
            &["net-x", "network"],
        ),
        (
            "unknown_key.toml",
            "[switch]\nworkers = 1\nmac_agin_secs = 30\n",
            3,
            &["mac_agin_secs"],
        ),
        (
            "vid_out_of_range.toml",
            "[[network]]\nname = \"net-a\"\nsegment = \"local\"\n\n[[port]]\nname = \"tr\"\nmode = \"trunk\"\nvlans = { 4095 = \"net-a\" }\n",
            8,
            &["4095"],
        ),
        (
            "duplicate_port.toml",
            "[[network]]\nname = \"net-a\"\nsegment = \"local\"\n\n[[port]]\nname = \"vm1\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n[[port]]\nname = \"vm1\"\nmode = \"access\"\nnetwork = \"net-a\"\n",
            11,
            &["vm1"],
        ),
        (
            "aging_too_short.toml",
            "[switch]\nmac_aging_secs = 14\n",
            2,
            &["mac_aging_secs"],
        ),
    ];
    for (file, text, line, words) in cases {
        let path = dir.join(file);
        fs::write(&path, text).unwrap();
        let out = vswitch(&["check-config", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{file}: accepted");
        assert!(out.stdout.is_empty(), "{file}: printed a configuration");
        let at = format!("{}:{line}", path.display());
        assert!(
            stderr.contains(&at),
            "{file}: {stderr:?} should name {at:?}"
        );
        for w in words {
            assert!(
                stderr.contains(w),
                "{file}: {stderr:?} should contain {w:?}"
            );
        }
    }
}
