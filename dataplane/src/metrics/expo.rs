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

use crate::control::proto::StatsReply;

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
    let ports: [(
        &'static str,
        &str,
        fn(&crate::control::proto::PortStats) -> u64,
    ); 5] = [
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
    type WorkerGet = fn(&crate::control::proto::WorkerStats) -> Value;
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
        "Learning refused, by reason.",
        |f| {
            f.sample(&[("reason", "table_full")], t.learn_table_full);
            f.sample(&[("reason", "port_limit")], t.learn_port_limit);
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
