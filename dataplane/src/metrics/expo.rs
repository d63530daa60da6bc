//! The Prometheus text exposition format, version 0.0.4: what `GET /metrics` returns.
//!
//! ```text
//! # HELP vswitch_port_rx_frames_total Frames received on the port, all workers.
//! # TYPE vswitch_port_rx_frames_total counter
//! vswitch_port_rx_frames_total{port="vm1"} 1042
//! vswitch_port_rx_frames_total{port="vtep:198.18.0.2"} 7
//! ```
//!
//! Each family is written whole (`# HELP`, `# TYPE`, then every sample) so that no
//! name appears twice; counter names end in `_total` (in 0.0.4 the `# TYPE` line
//! carries the full name). Label values are escaped (`\\`, `\"`, `\n`), and so is help
//! text (`\\`, `\n`). Every number comes from one [`StatsReply`], the answer `vswitch
//! ctl stats` prints, so the two never disagree about what a counter means.

use std::fmt::Write as _;

use crate::control::proto::{PortStats, StatsReply, WorkerStats};

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (reset when the switch restarts); the name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// A ratio or a time in seconds.
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(u64::try_from(v).unwrap_or(u64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// Text in the exposition format, family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// The samples of one family, written by [`Exposition::family`]'s closure.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    /// One sample with `labels` (name, value), in order.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                debug_assert!(valid_label_name(k), "label name {k:?}");
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_value(self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) if v.is_nan() => self.out.push_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                self.out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
            }
            // Rust prints finite floats in plain decimal, which the format accepts.
            Value::Float(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
    }
}

impl Exposition {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the `# HELP` and `# TYPE` lines of `name`, then the samples `samples`
    /// writes. A counter's name must end in `_total`.
    pub fn family(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &str,
        samples: impl FnOnce(&mut Family<'_>),
    ) {
        debug_assert!(valid_metric_name(name), "metric name {name:?}");
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"), "{name}");
        let _ = write!(self.out, "# HELP {name} ");
        escape_help(&mut self.out, help);
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
        samples(&mut Family {
            out: &mut self.out,
            name,
        });
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &'static str, kind: Kind, help: &str, v: impl Into<Value>) {
        self.family(name, kind, help, |f| f.sample(&[], v));
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    !s.starts_with("__")
        && c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: `\` → `\\`, newline → `\n`.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// One nanosecond in seconds.
const NS: f64 = 1e-9;

/// Every metric of the switch, from one `ctl stats` answer.
pub fn render(s: &StatsReply) -> String {
    use Kind::{Counter, Gauge};
    let mut e = Exposition::new();
    e.family(
        "vswitch_build_info",
        Gauge,
        "The vswitch version (always 1).",
        |f| f.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64),
    );

    // Ports (configuration ports, then tunnel ports named vtep:ADDRESS).
    type PortGet = fn(&PortStats) -> u64;
    let ports: [(&'static str, &str, PortGet); 5] = [
        (
            "vswitch_port_rx_frames_total",
            "Frames received on the port, all workers.",
            |p| p.rx_frames,
        ),
        (
            "vswitch_port_rx_bytes_total",
            "Bytes received on the port, all workers.",
            |p| p.rx_bytes,
        ),
        (
            "vswitch_port_tx_frames_total",
            "Frames sent on the port, all workers.",
            |p| p.tx_frames,
        ),
        (
            "vswitch_port_tx_bytes_total",
            "Bytes sent on the port, all workers.",
            |p| p.tx_bytes,
        ),
        (
            "vswitch_port_rx_dropped_total",
            "Frames the kernel dropped before the switch received them \
             (AF_XDP XDP_STATISTICS: no fill-ring buffer, RX ring full).",
            |p| p.rx_dropped,
        ),
    ];
    for (name, help, get) in ports {
        e.family(name, Counter, help, |f| {
            for p in &s.ports {
                f.sample(&[("port", &p.name)], get(p));
            }
        });
    }

    e.family(
        "vswitch_drops_total",
        Counter,
        "Frames the pipeline did not deliver, by reason, all workers.",
        |f| {
            for (reason, n) in &s.drops {
                f.sample(&[("reason", reason)], *n);
            }
        },
    );

    // Workers.
    let ids: Vec<String> = s.workers.iter().map(|w| w.id.to_string()).collect();
    e.family(
        "vswitch_worker_core",
        Gauge,
        "The CPU core the worker is pinned to.",
        |f| {
            for (w, id) in s.workers.iter().zip(&ids) {
                if let Some(c) = w.core {
                    f.sample(&[("worker", id)], c);
                }
            }
        },
    );
    type WorkerGet = fn(&WorkerStats) -> Value;
    let workers: [(&'static str, Kind, &str, WorkerGet); 11] = [
        (
            "vswitch_worker_frames_total",
            Counter,
            "Frames the worker received.",
            |w| w.packets.into(),
        ),
        (
            "vswitch_worker_batches_total",
            Counter,
            "Non-empty receive batches of the worker.",
            |w| w.batches.into(),
        ),
        (
            "vswitch_worker_polls_total",
            Counter,
            "Poll loop iterations of the worker.",
            |w| w.polls.into(),
        ),
        (
            "vswitch_worker_busy_polls_total",
            Counter,
            "Poll loop iterations that received at least one frame.",
            |w| w.busy_polls.into(),
        ),
        (
            "vswitch_worker_busy_cycles_total",
            Counter,
            "CPU cycles of polls that received frames (from busy time and the CPU clock).",
            |w| w.busy_cycles.into(),
        ),
        (
            "vswitch_worker_idle_cycles_total",
            Counter,
            "CPU cycles of polls that received nothing (from idle time and the CPU clock).",
            |w| w.idle_cycles.into(),
        ),
        (
            "vswitch_worker_busy_seconds_total",
            Counter,
            "Time of polls that received frames.",
            |w| (w.busy_ns as f64 * NS).into(),
        ),
        (
            "vswitch_worker_idle_seconds_total",
            Counter,
            "Time of polls that received nothing.",
            |w| (w.idle_ns as f64 * NS).into(),
        ),
        (
            "vswitch_worker_drops_total",
            Counter,
            "Frames the worker dropped, all reasons.",
            |w| w.drops.into(),
        ),
        (
            "vswitch_worker_flow_cache_hits_total",
            Counter,
            "Flow-cache hits of the worker.",
            |w| w.cache_hits.into(),
        ),
        (
            "vswitch_worker_flow_cache_misses_total",
            Counter,
            "Flow-cache misses of the worker (stale entries included).",
            |w| w.cache_misses.into(),
        ),
    ];
    for (name, kind, help, get) in workers {
        e.family(name, kind, help, |f| {
            for (w, id) in s.workers.iter().zip(&ids) {
                f.sample(&[("worker", id)], get(w));
            }
        });
    }
    e.family(
        "vswitch_worker_flow_cache_hit_ratio",
        Gauge,
        "Flow-cache hits / lookups of the worker since start (absent before any lookup).",
        |f| {
            for (w, id) in s.workers.iter().zip(&ids) {
                if let Some(r) = w.cache_hit_rate {
                    f.sample(&[("worker", id)], r);
                }
            }
        },
    );

    // Forwarding and learning, switch-wide.
    let t = &s.totals;
    e.single(
        "vswitch_unicast_frames_total",
        Counter,
        "Frames forwarded to one known port.",
        t.unicast,
    );
    e.single(
        "vswitch_flooded_frames_total",
        Counter,
        "Frames flooded (once per frame, not per copy).",
        t.flooded,
    );
    e.single(
        "vswitch_mac_learned_total",
        Counter,
        "MAC addresses learned.",
        t.learned,
    );
    e.single(
        "vswitch_mac_moves_total",
        Counter,
        "Learned MAC addresses that moved to another port.",
        t.moves,
    );
    e.family(
        "vswitch_mac_learn_refused_total",
        Counter,
        "Learning refused, by reason (table full, port or network limit, rate cap).",
        |f| {
            f.sample(&[("reason", "table_full")], t.learn_table_full);
            f.sample(&[("reason", "port_limit")], t.learn_port_limit);
            f.sample(&[("reason", "network_limit")], t.learn_network_limit);
            f.sample(&[("reason", "rate_limited")], t.learn_rate_limited);
        },
    );
    e.single(
        "vswitch_arp_replies_total",
        Counter,
        "ARP requests answered by the l2population ARP responder.",
        t.arp_replies,
    );
    e.single(
        "vswitch_underlay_control_frames_total",
        Counter,
        "ARP/ND frames for the local VTEP handled on the underlay port.",
        t.underlay_control,
    );
    e.single(
        "vswitch_checksums_completed_total",
        Counter,
        "Partial TCP/UDP checksums (a sender's TX offload) completed.",
        t.checksums_completed,
    );

    // The XDP fast path, when on.
    if let Some(fp) = &s.fastpath {
        e.family(
            "vswitch_fastpath_frames_total",
            Counter,
            "Frames the XDP fast path saw, by outcome: hits (forwarded in the kernel; encap and \
             decap are subsets), misses (no entry: to the workers), punt_* (an entry, but the \
             workers decide: stale, source unknown or moved, refresh, checksum, short, MTU, \
             egress not ready, other).",
            |f| {
                for (outcome, n) in &fp.program {
                    f.sample(&[("outcome", outcome)], *n);
                }
            },
        );
        e.single(
            "vswitch_fastpath_flows",
            Gauge,
            "Flow entries installed in the XDP fast path.",
            fp.flows,
        );
        e.single(
            "vswitch_fastpath_source_macs",
            Gauge,
            "Source MAC entries installed in the XDP fast path.",
            fp.macs,
        );
        e.single(
            "vswitch_fastpath_offers_total",
            Counter,
            "Known-unicast decisions the workers offered to the fast path.",
            fp.offers,
        );
    }

    // Flow cache, all workers.
    let hits: u64 = s.workers.iter().map(|w| w.cache_hits).sum();
    let misses: u64 = s.workers.iter().map(|w| w.cache_misses).sum();
    e.single(
        "vswitch_flow_cache_hits_total",
        Counter,
        "Flow-cache hits, all workers.",
        hits,
    );
    e.single(
        "vswitch_flow_cache_misses_total",
        Counter,
        "Flow-cache misses, all workers.",
        misses,
    );
    e.family(
        "vswitch_flow_cache_hit_ratio",
        Gauge,
        "Flow-cache hits / lookups since start, all workers (absent before any lookup).",
        |f| {
            if let Some(r) = t.cache_hit_rate {
                f.sample(&[], r);
            }
        },
    );

    // MAC table.
    e.family(
        "vswitch_fdb_entries",
        Gauge,
        "MAC table entries, by kind.",
        |f| {
            f.sample(&[("kind", "learned")], s.fdb.learned_entries);
            f.sample(&[("kind", "static")], s.fdb.static_entries);
        },
    );
    e.single(
        "vswitch_fdb_capacity",
        Gauge,
        "Learned entries the MAC table holds at most ([switch] mac_table_size).",
        s.fdb.capacity,
    );
    e.family(
        "vswitch_fdb_network_entries",
        Gauge,
        "MAC table entries of one network, by kind.",
        |f| {
            for n in &s.fdb_networks {
                f.sample(
                    &[("network", &n.network), ("kind", "learned")],
                    n.learned_entries,
                );
                f.sample(
                    &[("network", &n.network), ("kind", "static")],
                    n.static_entries,
                );
            }
        },
    );
    e.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::control::proto::{FdbOccupancy, NetworkFdb, PortStats, Totals, WorkerStats};
    use crate::counters::DropReason;

    #[test]
    fn escapes_labels_and_help() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "a \\ b\nc \"q\"", |f| {
            f.sample(&[("port", "a\"b\\c\nd"), ("k", "")], 3u64);
            f.sample(&[], 0.25);
            f.sample(&[], f64::INFINITY);
            f.sample(&[], f64::NAN);
        });
        assert_eq!(
            e.finish(),
            "# HELP x_total a \\\\ b\\nc \"q\"\n# TYPE x_total counter\n\
             x_total{port=\"a\\\"b\\\\c\\nd\",k=\"\"} 3\nx_total 0.25\nx_total +Inf\nx_total NaN\n"
        );
    }

    #[test]
    fn small_values_are_plain_decimals() {
        let mut e = Exposition::new();
        e.single("t_seconds", Kind::Gauge, "t", 1e-9);
        assert!(e.finish().ends_with("t_seconds 0.000000001\n"));
    }

    /// A reply with two workers (one unpinned, one without lookups), a port name that
    /// needs escaping and a tunnel port.
    fn reply() -> StatsReply {
        let port = |name: &str, n: u64| PortStats {
            name: name.into(),
            rx_frames: n,
            rx_bytes: n * 100,
            tx_frames: n + 1,
            tx_bytes: (n + 1) * 100,
            rx_dropped: n / 2,
        };
        let worker = |id: usize, core: Option<usize>, hits: u64, misses: u64| WorkerStats {
            id,
            core,
            packets: 10 * (id as u64 + 1),
            batches: 3,
            polls: 1000,
            busy_polls: 3,
            avg_batch: None,
            busy_cycles: 5000,
            idle_cycles: 9000,
            cycles_per_packet: None,
            busy_ns: 1_500_000_000,
            idle_ns: 250,
            ns_per_packet: None,
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            drops: 2,
        };
        let drops: BTreeMap<String, u64> = DropReason::ALL
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name().to_owned(), i as u64))
            .collect();
        StatsReply {
            ports: vec![
                port("vm1", 10),
                port("we\"ird\\ name\n", 4),
                port("vtep:198.18.0.2", 7),
            ],
            drops,
            workers: vec![worker(0, Some(1), 3, 1), worker(1, None, 0, 0)],
            totals: Totals {
                unicast: 11,
                flooded: 12,
                learned: 13,
                moves: 14,
                learn_table_full: 15,
                learn_port_limit: 16,
                learn_network_limit: 20,
                learn_rate_limited: 21,
                arp_replies: 17,
                underlay_control: 18,
                checksums_completed: 19,
                cache_hit_rate: Some(0.75),
                drops: 4,
            },
            fdb: FdbOccupancy {
                entries: 5,
                static_entries: 2,
                learned_entries: 3,
                capacity: 50_000,
            },
            fdb_networks: vec![NetworkFdb {
                network: "net-a".into(),
                vlan: 1,
                entries: 5,
                static_entries: 2,
                learned_entries: 3,
            }],
            fastpath: None,
        }
    }

    fn value(text: &str, line_start: &str) -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"));
        line.rsplit(' ').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn fast_path_counters_are_exported_when_on() {
        let mut r = reply();
        assert!(!render(&r).contains("vswitch_fastpath"));
        r.fastpath = Some(crate::fastpath::FastPathStats {
            program: vec![("hits".into(), 7), ("punt_src_moved".into(), 2)],
            flows: 3,
            macs: 4,
            offers: 5,
            ..Default::default()
        });
        let text = render(&r);
        vswitch_tests::prom::check_layout(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            value(&text, "vswitch_fastpath_frames_total{outcome=\"hits\"}"),
            "7"
        );
        assert_eq!(
            value(
                &text,
                "vswitch_fastpath_frames_total{outcome=\"punt_src_moved\"}"
            ),
            "2"
        );
        assert_eq!(value(&text, "vswitch_fastpath_flows "), "3");
        assert_eq!(value(&text, "vswitch_fastpath_offers_total "), "5");
    }

    #[test]
    fn render_is_well_formed_and_complete() {
        let text = render(&reply());
        vswitch_tests::prom::check_layout(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Every drop reason, zeros included.
        for r in DropReason::ALL {
            let v = value(&text, &format!("vswitch_drops_total{{reason=\"{r}\"}}"));
            assert_eq!(v, (r as u64).to_string());
        }
        assert_eq!(
            value(
                &text,
                "vswitch_port_rx_frames_total{port=\"we\\\"ird\\\\ name\\n\"}"
            ),
            "4"
        );
        assert_eq!(
            value(
                &text,
                "vswitch_port_rx_dropped_total{port=\"vtep:198.18.0.2\"}"
            ),
            "3"
        );
        assert_eq!(
            value(&text, "vswitch_worker_busy_seconds_total{worker=\"0\"}"),
            "1.5"
        );
        assert_eq!(value(&text, "vswitch_worker_core{worker=\"0\"}"), "1");
        assert!(
            !text.contains("vswitch_worker_core{worker=\"1\"}"),
            "{text}"
        );
        assert_eq!(
            value(&text, "vswitch_worker_flow_cache_hit_ratio{worker=\"0\"}"),
            "0.75"
        );
        assert!(
            !text.contains("vswitch_worker_flow_cache_hit_ratio{worker=\"1\"}"),
            "no ratio without lookups\n{text}"
        );
        assert_eq!(value(&text, "vswitch_flow_cache_hits_total "), "3");
        assert_eq!(value(&text, "vswitch_flow_cache_misses_total "), "1");
        assert_eq!(
            value(
                &text,
                "vswitch_fdb_network_entries{network=\"net-a\",kind=\"static\"}"
            ),
            "2"
        );
        assert_eq!(value(&text, "vswitch_fdb_entries{kind=\"learned\"}"), "3");
        assert_eq!(
            value(
                &text,
                "vswitch_mac_learn_refused_total{reason=\"port_limit\"}"
            ),
            "16"
        );
        assert_eq!(
            value(
                &text,
                "vswitch_mac_learn_refused_total{reason=\"rate_limited\"}"
            ),
            "21"
        );
    }

    #[test]
    fn the_official_parser_reads_it_back() {
        let r = reply();
        let text = render(&r);
        let Some(parsed) = vswitch_tests::prom::official_parse(&text) else {
            eprintln!("SKIPPED: the_official_parser_reads_it_back: python3-prometheus-client is not installed (scripts/setup.sh installs it)");
            return;
        };
        let samples = parsed.unwrap_or_else(|e| panic!("{e}\n{text}"));
        let rx = |port: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == "vswitch_port_rx_frames_total"
                        && s.labels.get("port").map(String::as_str) == Some(port)
                })
                .map(|s| (s.value, s.kind.clone()))
        };
        // The escaped name comes back as it was.
        assert_eq!(rx("we\"ird\\ name\n"), Some((4.0, "counter".to_owned())));
        assert_eq!(rx("vm1"), Some((10.0, "counter".to_owned())));
        let lines = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples.len(), lines, "every sample parsed");
    }

    /// The numbers of an offline switch's `ctl stats` answer, through the exposition.
    #[test]
    fn offline_switch_stats_render() {
        use crate::control::proto::{Reply, Request, Response};
        use crate::offline::OfflineSwitch;
        let cfg = crate::config::Config::from_str(
            "[[network]]\nname = \"m\"\nsegment = \"local\"\n\
             [[network]]\nname = \"n\"\nsegment = \"local\"\n\
             [[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"n\"\n\
             [[port]]\nname = \"b\"\nmode = \"access\"\nnetwork = \"n\"\n",
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut sw = OfflineSwitch::new(cfg).unwrap_or_else(|e| panic!("{e}"));
        let frame = |src: u8, dst: u8| {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
            f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f
        };
        let a = sw.config().port_by_name("a").unwrap_or_else(|| panic!("a"));
        let b = sw.config().port_by_name("b").unwrap_or_else(|| panic!("b"));
        sw.inject(a, &frame(1, 2), 0);
        sw.inject(b, &frame(2, 1), 1);
        sw.inject(a, &frame(1, 2), 2);
        let Response::Ok {
            reply: Reply::Stats(s),
        } = crate::control::handle(&mut sw, Request::Stats {})
        else {
            panic!("no stats reply");
        };
        let text = render(&s);
        vswitch_tests::prom::check_layout(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            value(&text, "vswitch_port_rx_frames_total{port=\"a\"}"),
            "2"
        );
        assert_eq!(
            value(&text, "vswitch_port_tx_frames_total{port=\"a\"}"),
            "1"
        );
        assert_eq!(
            value(
                &text,
                "vswitch_fdb_network_entries{network=\"n\",kind=\"learned\"}"
            ),
            "2"
        );
        // A network without entries is there, with zeros.
        assert_eq!(
            value(
                &text,
                "vswitch_fdb_network_entries{network=\"m\",kind=\"learned\"}"
            ),
            "0"
        );
        assert_eq!(value(&text, "vswitch_flooded_frames_total "), "1");
        assert_eq!(value(&text, "vswitch_unicast_frames_total "), "2");
    }
}
