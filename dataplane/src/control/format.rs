//! Replies as text for people (`vswitch ctl` without `--json`): aligned tables in the
//! manner of `ovs-appctl fdb/show` and `dpif-netdev/pmd-perf-show`.

use std::fmt::Write as _;

use super::proto::{
    FastpathReply, FdbReply, LinkState, NeighReply, Reply, ShowReply, StatsReply, XdpMode,
};

/// A reply as text, ending with a newline.
pub fn reply(r: &Reply) -> String {
    match r {
        Reply::Show(s) => show(s),
        Reply::Fdb(f) => fdb(f),
        Reply::Stats(s) => stats(s),
        Reply::Neigh(n) => neigh(n),
        Reply::Fastpath(f) => fastpath(f),
        Reply::Done { message } => format!("{message}\n"),
        Reply::Capture(c) => format!(
            "capturing on {} ({}, snaplen {}, {} worker ring(s) of {})\n",
            c.port,
            c.filter.as_str(),
            c.snaplen,
            c.workers,
            c.ring
        ),
    }
}

/// Left-aligned columns separated by two spaces; numeric columns right-aligned.
struct Table {
    head: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(cols: &[(&'static str, bool)]) -> Table {
        Table {
            head: cols.iter().map(|c| c.0).collect(),
            right: cols.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String, indent: &str) {
        let mut w: Vec<usize> = self.head.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(x) = w.get_mut(i) {
                    *x = (*x).max(c.chars().count());
                }
            }
        }
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let mut s = String::from(indent);
            for (i, c) in cells.enumerate() {
                let width = w.get(i).copied().unwrap_or(0);
                if i > 0 {
                    s.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    let _ = write!(s, "{c:>width$}");
                } else {
                    let _ = write!(s, "{c:<width$}");
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(out, &mut self.head.iter().copied());
        for r in &self.rows {
            line(out, &mut r.iter().map(String::as_str));
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn show(s: &ShowReply) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "vswitch ({}{}): {} worker(s), MAC aging {} s, MAC table {} entries, per-port limit {}",
        s.datapath,
        if s.mode == "switch" {
            String::new()
        } else {
            format!(", {}", s.mode)
        },
        s.workers,
        s.mac_aging_secs,
        s.mac_table_size,
        if s.mac_limit_per_port == 0 {
            "none".to_owned()
        } else {
            s.mac_limit_per_port.to_string()
        }
    );
    if let Some(u) = &s.underlay {
        let ip = match u.prefix_len {
            Some(l) => format!("{}/{l}", u.local_ip),
            None => u.local_ip.to_string(),
        };
        let _ = writeln!(
            o,
            "underlay: port {}, local VTEP {ip}, gateway {}, MTU {}",
            u.port,
            opt(u.gateway),
            u.mtu
        );
    }
    o.push_str("networks:\n");
    let mut t = Table::new(&[
        ("name", false),
        ("segment", false),
        ("id", true),
        ("physnet", false),
        ("local VLAN", true),
        ("MTU", true),
        ("remote VTEPs", false),
    ]);
    for n in &s.networks {
        let vteps: Vec<String> = n.remote_vteps.iter().map(ToString::to_string).collect();
        t.row(vec![
            n.name.clone(),
            n.segment.clone(),
            opt(n.id),
            opt(n.physnet.clone()),
            n.local_vlan.to_string(),
            opt(n.mtu),
            if vteps.is_empty() {
                "-".into()
            } else {
                vteps.join(",")
            },
        ]);
    }
    t.render(&mut o, "  ");
    o.push_str("ports:\n");
    let mut t = Table::new(&[
        ("name", false),
        ("ifname", false),
        ("role", false),
        ("mode", false),
        ("networks", false),
        ("link", false),
        ("xdp", false),
    ]);
    for p in &s.ports {
        let mut nets: Vec<String> = p.vlans.iter().map(|(v, n)| format!("{v}={n}")).collect();
        match (&p.network, p.mode.as_str()) {
            (Some(n), "access") => nets.push(n.clone()),
            (Some(n), _) => nets.push(format!("native={n}")),
            (None, _) => {}
        }
        t.row(vec![
            p.name.clone(),
            opt(p.ifname.clone()),
            p.role.clone(),
            p.mode.clone(),
            if nets.is_empty() {
                "-".into()
            } else {
                nets.join(",")
            },
            match p.link {
                LinkState::Up => "up",
                LinkState::Down => "down",
                LinkState::Unknown => "?",
            }
            .into(),
            match p.xdp_mode {
                Some(XdpMode::Native) => "native",
                Some(XdpMode::Generic) => "generic",
                None => "-",
            }
            .into(),
        ]);
    }
    t.render(&mut o, "  ");
    if !s.vteps.is_empty() {
        let v: Vec<String> = s.vteps.iter().map(ToString::to_string).collect();
        let _ = writeln!(o, "remote VTEPs: {}", v.join(", "));
    }
    o
}

fn fdb(f: &FdbReply) -> String {
    let mut o = String::new();
    let mut t = Table::new(&[
        ("port", false),
        ("VLAN", true),
        ("MAC", false),
        ("Age", true),
        ("type", false),
        ("network", false),
    ]);
    for e in &f.entries {
        let port = match (&e.port, e.vtep) {
            (Some(p), _) => p.clone(),
            (None, Some(ip)) => format!("vtep:{ip}"),
            (None, None) => "?".into(),
        };
        t.row(vec![
            port,
            e.vlan.to_string(),
            e.mac.clone(),
            if e.is_static {
                "-".into()
            } else {
                e.age_secs.to_string()
            },
            if e.is_static { "static" } else { "learned" }.into(),
            e.network.clone(),
        ]);
    }
    t.render(&mut o, " ");
    o
}

fn stats(s: &StatsReply) -> String {
    let mut o = String::new();
    o.push_str("ports:\n");
    let mut t = Table::new(&[
        ("port", false),
        ("rx frames", true),
        ("rx bytes", true),
        ("tx frames", true),
        ("tx bytes", true),
        ("rx dropped (kernel)", true),
    ]);
    for p in &s.ports {
        t.row(vec![
            p.name.clone(),
            p.rx_frames.to_string(),
            p.rx_bytes.to_string(),
            p.tx_frames.to_string(),
            p.tx_bytes.to_string(),
            p.rx_dropped.to_string(),
        ]);
    }
    t.render(&mut o, "  ");
    let _ = writeln!(o, "drops: {} in all", s.totals.drops);
    for (reason, n) in s.drops.iter().filter(|(_, n)| **n > 0) {
        let _ = writeln!(o, "  {reason:<22} {n:>12}");
    }
    o.push_str("workers:\n");
    let mut t = Table::new(&[
        ("worker", true),
        ("core", true),
        ("packets", true),
        ("batches", true),
        ("pkts/batch", true),
        ("busy cycles", true),
        ("idle cycles", true),
        ("cycles/pkt", true),
        ("busy ms", true),
        ("idle ms", true),
        ("ns/pkt", true),
        ("cache hit rate", true),
        ("drops", true),
    ]);
    for w in &s.workers {
        t.row(vec![
            w.id.to_string(),
            opt(w.core),
            w.packets.to_string(),
            w.batches.to_string(),
            w.avg_batch
                .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
            w.busy_cycles.to_string(),
            w.idle_cycles.to_string(),
            w.cycles_per_packet
                .map_or_else(|| "-".into(), |v| format!("{v:.0}")),
            (w.busy_ns / 1_000_000).to_string(),
            (w.idle_ns / 1_000_000).to_string(),
            w.ns_per_packet
                .map_or_else(|| "-".into(), |v| format!("{v:.0}")),
            pct(w.cache_hit_rate),
            w.drops.to_string(),
        ]);
    }
    t.render(&mut o, "  ");
    let x = &s.totals;
    let _ = writeln!(
        o,
        "forwarding: unicast {}, flooded {}, learned {}, moves {}, flow-cache hit rate {}",
        x.unicast,
        x.flooded,
        x.learned,
        x.moves,
        pct(x.cache_hit_rate)
    );
    let _ = writeln!(
        o,
        "learning refused: table full {}, port limit {}, network limit {}, rate cap {}; ARP replies {}, underlay ARP/ND {}",
        x.learn_table_full,
        x.learn_port_limit,
        x.learn_network_limit,
        x.learn_rate_limited,
        x.arp_replies,
        x.underlay_control
    );
    let _ = writeln!(o, "checksums completed {}", x.checksums_completed);
    if let Some(f) = &s.fastpath {
        fastpath_counters(&mut o, f);
    }
    let _ = writeln!(
        o,
        "MAC table: {} entries ({} static, {} learned) of {}",
        s.fdb.entries, s.fdb.static_entries, s.fdb.learned_entries, s.fdb.capacity
    );
    o
}

fn neigh(n: &NeighReply) -> String {
    let mut o = String::new();
    let mut t = Table::new(&[
        ("IP", false),
        ("MAC", false),
        ("state", false),
        ("age", true),
        ("queued", true),
    ]);
    for e in &n.entries {
        t.row(vec![
            e.ip.to_string(),
            opt(e.mac.clone()),
            e.state.clone(),
            e.age_secs.to_string(),
            e.queued.to_string(),
        ]);
    }
    t.render(&mut o, "");
    o
}

fn fastpath_counters(o: &mut String, f: &crate::fastpath::FastPathStats) {
    let _ = writeln!(
        o,
        "fast path: hits {}, misses {}, flows {}, source MACs {}, offers {} ({} dropped, {} stale), installs {} ({} failed)",
        f.get("hits"),
        f.get("misses"),
        f.flows,
        f.macs,
        f.offers,
        f.offers_dropped,
        f.offers_stale,
        f.installs,
        f.install_errors
    );
    let punts: Vec<String> = f
        .program
        .iter()
        .filter(|(n, v)| n.starts_with("punt_") && *v > 0)
        .map(|(n, v)| format!("{} {v}", &n[5..]))
        .collect();
    let _ = writeln!(
        o,
        "fast path punts: {}",
        if punts.is_empty() {
            "none".into()
        } else {
            punts.join(", ")
        }
    );
}

fn fastpath(f: &FastpathReply) -> String {
    let mut o = String::new();
    let Some(s) = &f.stats else {
        return "fast path: off\n".into();
    };
    fastpath_counters(&mut o, s);
    let mut t = Table::new(&[
        ("in port", true),
        ("in segment", false),
        ("destination", false),
        ("out port", true),
        ("rewrite", false),
        ("out segment", false),
        ("VLAN", true),
        ("valid", false),
        ("idle s", true),
    ]);
    // How a frame is tagged or encapsulated: "VID 10", "VNI 5010", "GRE key 7", "-".
    let seg = |vid: Option<u16>, vni: Option<u32>, key: Option<u32>| -> String {
        match (vid, vni, key) {
            (Some(v), _, _) => format!("VID {v}"),
            (_, Some(v), _) => format!("VNI {v}"),
            (_, _, Some(k)) => format!("GRE key {k}"),
            _ => "-".into(),
        }
    };
    for r in &f.flows {
        t.row(vec![
            r.in_port.to_string(),
            seg(r.vid_in, r.vni_in, r.gre_key_in),
            r.dst.clone(),
            r.out_port.to_string(),
            r.op.clone(),
            seg(r.vid_out, r.vni_out, r.gre_key_out),
            r.vlan.to_string(),
            if r.valid { "yes" } else { "no" }.into(),
            r.idle_secs
                .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
        ]);
    }
    t.render(&mut o, "");
    if !f.ports.is_empty() {
        o.push('\n');
        let mut t = Table::new(&[
            ("port", true),
            ("netdev", false),
            ("egress", false),
            ("in devmap", false),
        ]);
        for p in &f.ports {
            t.row(vec![
                p.port.to_string(),
                p.ifname.clone(),
                p.state.clone(),
                if p.in_devmap { "yes" } else { "no" }.into(),
            ]);
        }
        t.render(&mut o, "");
    }
    o
}
