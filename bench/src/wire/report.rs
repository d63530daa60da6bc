//! The table at the end of a run, and the counter checks of `--check`.

use anyhow::{bail, Result};

use super::sut::Kind;
use super::{Outcome, RunReport, Sample};

/// Median and spread of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Stat {
    /// Of `v` (`None` when empty).
    pub fn of(mut v: Vec<f64>) -> Option<Stat> {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Spread as ± half the range relative to the median, in percent.
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / 2.0 / self.median * 100.0
        }
    }
}

/// One row: a switch on one case, over its rounds.
#[derive(Debug, Clone)]
pub struct Row {
    /// Case: profile, size, flows.
    pub case: (String, String, u32),
    /// Switch.
    pub switch: String,
    /// Forwarded Mpps (main trials).
    pub mpps: Stat,
    /// Offered Mpps.
    pub offered: Stat,
    /// Gbit/s.
    pub gbps: Stat,
    /// Loss fraction.
    pub loss: Stat,
    /// Zero-loss Mpps (search).
    pub zero_loss: Option<Stat>,
    /// Switch's own cycles per packet.
    pub switch_cpp: Option<Stat>,
    /// Switch core's cycles per packet.
    pub core_cpp: Option<Stat>,
    /// Latency (median over rounds of p50, p99, p99.9, max), µs.
    pub latency_us: Option<[f64; 4]>,
}

/// The rows of a report, in case order then switch order.
pub fn rows(report: &RunReport, switches: &[Kind]) -> Vec<Row> {
    let mut cases: Vec<(String, String, u32)> = Vec::new();
    for o in &report.outcomes {
        let c = (o.main.profile.clone(), o.main.size.clone(), o.main.flows);
        if !cases.contains(&c) {
            cases.push(c);
        }
    }
    let mut rows = Vec::new();
    for c in cases {
        for k in switches {
            let os: Vec<&Outcome> = report
                .outcomes
                .iter()
                .filter(|o| {
                    o.main.switch == k.name()
                        && (o.main.profile.clone(), o.main.size.clone(), o.main.flows) == c
                })
                .collect();
            if os.is_empty() {
                continue;
            }
            let f = |g: &dyn Fn(&Sample) -> Option<f64>| {
                Stat::of(os.iter().filter_map(|o| g(&o.main)).collect())
            };
            let Some(mpps) = f(&|s| Some(s.forwarded_mpps())) else {
                continue;
            };
            let latency_us = {
                let ls: Vec<[u64; 4]> = os.iter().filter_map(|o| o.main.latency_ns).collect();
                (!ls.is_empty()).then(|| {
                    let mut out = [0.0; 4];
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = Stat::of(ls.iter().map(|l| l[i] as f64 / 1000.0).collect())
                            .map_or(0.0, |s| s.median);
                    }
                    out
                })
            };
            rows.push(Row {
                case: c.clone(),
                switch: k.name().to_owned(),
                mpps,
                offered: f(&|s| Some(s.offered_mpps())).unwrap_or(mpps),
                gbps: f(&|s| Some(s.forwarded_gbps())).unwrap_or(mpps),
                loss: f(&|s| Some(s.loss())).unwrap_or(mpps),
                zero_loss: Stat::of(
                    os.iter()
                        .filter_map(|o| o.zero_loss_pps.map(|p| p / 1e6))
                        .collect(),
                ),
                switch_cpp: f(&|s| s.switch_cycles_per_packet),
                core_cpp: f(&|s| s.core_cycles_per_packet),
                latency_us,
            });
        }
    }
    rows
}

/// Prints the table (and the ceiling above it).
pub fn print_table(report: &RunReport, switches: &[Kind]) {
    println!();
    for c in &report.ceiling {
        println!(
            "ceiling {:>5} B: {:.3} Mpps (generator → sink over a bare veth pair, no switch)",
            c.size,
            c.forwarded_mpps()
        );
    }
    let rows = rows(report, switches);
    if rows.is_empty() {
        println!("no measurements");
        return;
    }
    let search = rows.iter().any(|r| r.zero_loss.is_some());
    // Wide enough for "vswitch (XDP fast path)" when it is there.
    let sw_w = rows
        .iter()
        .map(|r| r.switch.chars().count())
        .max()
        .unwrap_or(0)
        .max(14);
    println!();
    let mut head = format!(
        "{:<12} {:>5} {:>7} {:<sw_w$} {:>8} {:>15} {:>6} {:>7} {:>6}",
        "profile",
        "size",
        "flows",
        "switch",
        "offered",
        "forwarded Mpps",
        "Gbit/s",
        "loss%",
        "ratio"
    );
    if search {
        head.push_str(&format!(" {:>10} {:>6}", "0-loss Mpps", "ratio"));
    }
    head.push_str(&format!(
        " {:>9} {:>9} {:>28}",
        "sw cyc/p", "core cyc/p", "latency µs p50/p99/p99.9/max"
    ));
    println!("{head}");
    println!("{}", "-".repeat(head.chars().count()));
    // The first switch's row of the current case: (case, Mpps, zero-loss Mpps).
    type Base = ((String, String, u32), f64, Option<f64>);
    let mut first: Option<Base> = None;
    for r in &rows {
        if first.as_ref().map(|f| &f.0) != Some(&r.case) {
            first = Some((r.case.clone(), r.mpps.median, r.zero_loss.map(|z| z.median)));
        }
        let (_, base, zbase) = first.clone().unwrap_or_default();
        let ratio = |v: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}×", v / b)
            } else {
                "-".into()
            }
        };
        let mut line = format!(
            "{:<12} {:>5} {:>7} {:<sw_w$} {:>8.3} {:>8.3} ±{:>4.1}% {:>6.2} {:>7.3} {:>6}",
            r.case.0,
            r.case.1,
            r.case.2,
            r.switch,
            r.offered.median,
            r.mpps.median,
            r.mpps.spread_pct(),
            r.gbps.median,
            r.loss.median * 100.0,
            ratio(r.mpps.median, base),
        );
        if search {
            match (r.zero_loss, zbase) {
                (Some(z), Some(b)) => {
                    line.push_str(&format!(" {:>10.3} {:>6}", z.median, ratio(z.median, b)))
                }
                _ => line.push_str(&format!(" {:>10} {:>6}", "-", "-")),
            }
        }
        let cpp = |s: Option<Stat>| s.map_or("-".to_owned(), |s| format!("{:.0}", s.median));
        line.push_str(&format!(" {:>9} {:>9}", cpp(r.switch_cpp), cpp(r.core_cpp)));
        match r.latency_us {
            Some(l) => line.push_str(&format!(
                " {:>28}",
                format!("{:.1}/{:.1}/{:.1}/{:.1}", l[0], l[1], l[2], l[3])
            )),
            None => line.push_str(&format!(" {:>28}", "-")),
        }
        println!("{line}");
    }
    for o in &report.outcomes {
        let m = &o.main;
        if let Some(changes) = m.config_changes {
            let rss = m
                .rss_kib
                .map_or_else(|| "-".to_owned(), |[a, b]| format!("{a} → {b} KiB"));
            println!(
                "soak {} {} {} round {}: {} trial {:.0} s at {:.3} Mpps{}: generated {}, forwarded {}, lost {}; {changes} configuration changes; vswitch RSS {rss}",
                m.profile,
                m.size,
                m.flows,
                m.rep + 1,
                m.kind,
                m.seconds,
                m.offered_mpps(),
                o.zero_loss_pps
                    .map(|z| format!(" ({:.0} % of zero-loss {:.3})", m.offered as f64 / m.seconds / z * 100.0, z / 1e6))
                    .unwrap_or_default(),
                m.offered,
                m.forwarded,
                m.offered.saturating_sub(m.forwarded),
            );
        }
    }
    println!(
        "\nmedian of the rounds, ± half the min-max range; ratio to the first switch of each case; \
         cycles at the nominal {:.0} MHz; Gbit/s on the wire (frame + FCS + preamble + gap)",
        report.cpu_mhz
    );
}

/// `--check`: the counters agree hop by hop. The generator's veth delivered what the
/// generator sent minus what it refused (and counted); the switch received exactly that;
/// the sink counted what the switch sent minus what the sink-side veth dropped; and for
/// vswitch (its own counters): received = sent + dropped, so generated = forwarded +
/// dropped. Also: nothing reordered, latency samples present and none lost.
pub fn check(report: &RunReport, soak_max_loss: f64) -> Result<()> {
    let mut bad = Vec::new();
    for c in &report.ceiling {
        // Unpaced: the generator outruns the sink and the veth counts what it refused.
        let refused = c.gen_xmit_errors.unwrap_or(0) + c.gen_unaccounted.unwrap_or(0);
        if c.forwarded + refused != c.offered {
            bad.push(format!(
                "ceiling {}: sent {} != counted by the sink {} + refused by the veth {refused}",
                c.size, c.offered, c.forwarded
            ));
        }
    }
    for o in &report.outcomes {
        let s = &o.main;
        let who = format!(
            "{} {} {} B {} flows round {}",
            s.switch,
            s.profile,
            s.size,
            s.flows,
            s.rep + 1
        );
        if s.offered == 0 {
            bad.push(format!("{who}: the generator sent nothing"));
        }
        // Hop by hop: generator → its veth → the switch → the sink-side veth → the sink.
        let refused = s.gen_xmit_errors.unwrap_or(0) + s.gen_unaccounted.unwrap_or(0);
        let delivered = s.offered.saturating_sub(refused);
        if let (Some(rx), Some(tx), Some(drops), Some(egress)) =
            (s.switch_rx, s.switch_tx, s.switch_drops, s.egress_dropped)
        {
            if rx != delivered {
                bad.push(format!(
                    "{who}: the generator's veth delivered {delivered} ({} sent, {refused} refused) but the switch received {rx}",
                    s.offered
                ));
            }
            // Frames the switch makes itself (ARP...) reach the sink as "other" frames.
            // Inside the kernel's switches (bridge, VXLAN device, OVS) not every drop has a
            // counter on the two ports: only vswitch's own accounting must balance.
            let ours = [Kind::Vswitch, Kind::VswitchFast, Kind::Null]
                .iter()
                .any(|k| s.switch == k.name());
            if ours && tx + drops != rx + s.sink_other {
                bad.push(format!(
                    "{who}: the switch received {rx} (+{} of its own) but sent {tx} and dropped {drops}",
                    s.sink_other
                ));
            }
            if s.forwarded + s.sink_other + egress != tx {
                bad.push(format!(
                    "{who}: the switch sent {tx} but the sink counted {} test + {} other frames and the veth dropped {egress}",
                    s.forwarded, s.sink_other
                ));
            }
            let dropped = refused + drops + egress;
            if ours && s.offered != s.forwarded + dropped {
                bad.push(format!(
                    "{who}: generated {} != forwarded {} + dropped {dropped}",
                    s.offered, s.forwarded
                ));
            }
        } else if s.offered != s.forwarded + refused {
            bad.push(format!(
                "{who}: generated {} != forwarded {} + refused {refused}",
                s.offered, s.forwarded
            ));
        }
        // The soak: the hold trial under configuration churn loses nothing and does
        // not grow the switch.
        if let (Some(changes), "hold") = (s.config_changes, s.kind.as_str()) {
            let lost = s.offered.saturating_sub(s.forwarded);
            if lost as f64 > soak_max_loss * s.offered as f64 {
                bad.push(format!(
                    "{who}: soak lost {} of {} frames under {changes} configuration changes",
                    s.offered.saturating_sub(s.forwarded),
                    s.offered
                ));
            }
            if let Some([a, b]) = s.rss_kib {
                if b > a + 1024 {
                    bad.push(format!("{who}: vswitch's RSS grew from {a} to {b} KiB"));
                }
            }
        }
        if s.reordered != 0 {
            bad.push(format!("{who}: {} frames reordered", s.reordered));
        }
        if s.latency_lost != 0 {
            bad.push(format!("{who}: {} latency samples lost", s.latency_lost));
        }
        if s.latency_ns.is_none() {
            bad.push(format!("{who}: no latency sample"));
        }
    }
    if bad.is_empty() {
        println!("check: PASS — generated = forwarded + dropped for every trial, sink and switch counters agree");
        Ok(())
    } else {
        for b in &bad {
            eprintln!("check: FAIL — {b}");
        }
        bail!("{} counter check(s) failed", bad.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_median_and_spread() {
        let s = Stat::of(vec![3.0, 1.0, 2.0]).expect("stat");
        assert_eq!(s.median, 2.0);
        assert_eq!((s.min, s.max), (1.0, 3.0));
        assert_eq!(s.spread_pct(), 50.0);
        assert_eq!(Stat::of(vec![1.0, 3.0]).map(|s| s.median), Some(2.0));
        assert!(Stat::of(vec![]).is_none());
    }
}
