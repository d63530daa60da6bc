//! The report: a table for people, JSON for scripts.

use std::fmt::Write as _;

use super::traffic::Profile;
use super::worker::{Measure, Tally, WorkerResult};
use super::{Outcome, RxMode};

/// Issue 3's targets for the `l2` profile on the 2-core development machine.
const TARGET_1K_MPPS: f64 = 40.0;
const TARGET_1M_MPPS: f64 = 20.0;
const TARGET_SCALING: f64 = 1.8;
/// Issue 4: every tunnel and provider profile at 1k MACs, per worker.
const TARGET_TUNNEL_1K_MPPS: f64 = 25.0;

/// The command line that reproduces the run.
fn command(o: &Outcome) -> String {
    let a = &o.args;
    let mut s = format!(
        "vswitch-bench pipeline --profile {} --macs {} --flows {} --frame-size {} --workers {} --seconds {} --rx {}",
        a.profile.name(),
        a.macs,
        o.flows,
        a.frame_size,
        a.workers,
        a.seconds,
        a.rx.name()
    );
    if a.rx == RxMode::Ring && a.ring != super::ring::DEFAULT_RING {
        let _ = write!(s, " --ring {}", a.ring);
    }
    if a.slice_ms != 100 {
        let _ = write!(s, " --slice-ms {}", a.slice_ms);
    }
    if a.replicate_flows {
        s.push_str(" --replicate-flows");
    }
    if a.no_baseline {
        s.push_str(" --no-baseline");
    }
    s
}

fn scaling(o: &Outcome) -> Option<(f64, f64, f64)> {
    let one = o.runs.iter().find(|r| r.workers == 1)?;
    let many = o.runs.iter().find(|r| r.workers > 1)?;
    let (a, b) = (one.total_mpps(), many.total_mpps());
    (a > 0.0).then(|| (a, b, b / a))
}

/// Pass/miss lines for the targets that apply to this run.
fn targets(o: &Outcome) -> Vec<(String, bool)> {
    let mut t = Vec::new();
    let goal = match (o.args.profile, o.args.macs) {
        (Profile::L2, 1_000) => Some(TARGET_1K_MPPS),
        (Profile::L2, 1_000_000) => Some(TARGET_1M_MPPS),
        (Profile::Flood | Profile::Trunk | Profile::L2, _) => None,
        (_, 1_000) => Some(TARGET_TUNNEL_1K_MPPS),
        _ => None,
    };
    if let Some(goal) = goal {
        for r in &o.runs {
            for w in &r.per_worker {
                let mpps = w.pipe.mpps();
                t.push((
                    format!(
                        "{}, {} MACs: >= {goal} Mpps per worker: {} workers, worker {}: {mpps:.1} Mpps ({:.1} ns/frame)",
                        o.args.profile.name(),
                        o.args.macs,
                        r.workers,
                        w.id,
                        w.pipe.ns_per_frame()
                    ),
                    mpps >= goal,
                ));
            }
        }
    }
    if let (Profile::L2, Some((a, b, x))) = (o.args.profile, scaling(o)) {
        t.push((
            format!("scaling >= {TARGET_SCALING}x: {b:.1} / {a:.1} Mpps = {x:.2}x"),
            x >= TARGET_SCALING,
        ));
    }
    t
}

/// Things that make a number not mean what it seems to.
fn warnings(o: &Outcome) -> Vec<String> {
    let mut v = Vec::new();
    for r in &o.runs {
        for w in &r.per_worker {
            let t = &w.tally;
            if t.drops > 0 {
                v.push(format!(
                    "{} workers, worker {}: {} frames dropped during the measurement",
                    r.workers, w.id, t.drops
                ));
            }
            if o.args.profile != Profile::Flood && t.flooded > 0 {
                v.push(format!(
                    "{} workers, worker {}: {} frames flooded (expected known unicast only)",
                    r.workers, w.id, t.flooded
                ));
            }
            if t.rx != w.pipe.frames {
                v.push(format!(
                    "{} workers, worker {}: the pipeline counted {} frames received, the bench {}",
                    r.workers, w.id, t.rx, w.pipe.frames
                ));
            }
            let cpu = w.pipe.on_cpu().min(w.null.on_cpu());
            if cpu < 0.98 {
                v.push(format!(
                    "{} workers, worker {}: on a CPU {:.1}% of the measured time (pipeline {:.1}%, null {:.1}%): \
                     other processes took cycles, ns/frame is inflated; repeat when quiet",
                    r.workers,
                    w.id,
                    100.0 * cpu,
                    100.0 * w.pipe.on_cpu(),
                    100.0 * w.null.on_cpu()
                ));
            }
            if w.core.is_none() {
                v.push(format!(
                    "{} workers, worker {}: not pinned",
                    r.workers, w.id
                ));
            }
        }
        if r.workers > o.cores && o.cores > 0 {
            v.push(format!(
                "{} workers on {} cores: workers share cores",
                r.workers, o.cores
            ));
        }
    }
    let big = o.args.macs >= 100_000;
    let no_huge = o
        .runs
        .iter()
        .flat_map(|r| &r.per_worker)
        .all(|w| w.anon_huge_mib.unwrap_or(0) < 64);
    if big && no_huge {
        v.push(
            "the FDB replicas are not in huge pages: every lookup also misses the TLB; \
             the FDB table asks for transparent huge pages (madvise): check that \
             /sys/kernel/mm/transparent_hugepage/enabled is [madvise] or [always]"
                .to_string(),
        );
    }
    if let Some(l) = o
        .load_before
        .split_whitespace()
        .next()
        .and_then(|x| x.parse::<f64>().ok())
    {
        if l > 0.5 {
            v.push(format!(
                "load average {l} before the run: other processes may have taken cycles; repeat when quiet"
            ));
        }
    }
    v
}

/// The human-readable report.
pub fn table(o: &Outcome) -> String {
    let a = &o.args;
    let mut s = String::new();
    let _ = writeln!(s, "$ {}", command(o));
    let _ = writeln!(
        s,
        "profile {}, {} MACs per side, {} flows, {}-byte frames, rx {}, {} core(s), load average {} -> {}",
        a.profile.name(),
        a.macs,
        o.flows,
        a.frame_size,
        a.rx.name(),
        o.cores,
        o.load_before,
        o.load_after
    );
    let inject = a.rx == RxMode::Inject;
    for r in &o.runs {
        let _ = writeln!(s);
        let rx_note = match a.rx {
            RxMode::Ring => {
                let wb = r
                    .per_worker
                    .first()
                    .map_or(0, |w| w.ring.rx_write_bytes);
                let chunks = r.per_worker.first().map_or(0, |w| w.ring.chunks);
                format!(
                    "rx ring: {chunks} pre-filled chunks per worker, {wb} bytes written per received frame"
                )
            }
            RxMode::Inject => {
                "rx inject: MemPort::inject copies each frame; its time is excluded from ns/frame and shown apart".to_string()
            }
        };
        let flows = r.per_worker.first().map_or(0, |w| w.flows);
        let huge = r
            .per_worker
            .iter()
            .filter_map(|w| w.anon_huge_mib)
            .max()
            .map_or("?".to_string(), |m| format!("{m} MiB"));
        let _ = writeln!(
            s,
            "== {} worker(s) == ({flows} flows per worker; {rx_note}; {} FDB entries per replica; \
             {huge} in huge pages)",
            r.workers,
            r.per_worker.first().map_or(0, |w| w.fdb_entries)
        );
        let _ = write!(
            s,
            "{:>6} {:>4} {:>12} | {:>9} {:>7} | {:>9} {:>7} | {:>9} {:>9} |",
            "worker",
            "core",
            "frames",
            "pipe ns/f",
            "Mpps",
            "null ns/f",
            "Mpps",
            "pipe/null",
            "pipe-null"
        );
        if inject {
            let _ = write!(s, " {:>9} |", "inject ns");
        }
        let _ = writeln!(
            s,
            " {:>6} {:>6} {:>6} | {:>6} {:>15}",
            "hit%", "tx/rx", "drops", "cpu%", "@cpu pipe/null"
        );
        for w in &r.per_worker {
            row(
                &mut s,
                &w.id.to_string(),
                &core(w),
                w.pipe,
                w.null,
                &w.tally,
                inject,
            );
        }
        if r.per_worker.len() > 1 {
            let frames: u64 = r.per_worker.iter().map(|w| w.pipe.frames).sum();
            let _ = writeln!(
                s,
                "{:>6} {:>4} {:>12} | {:>9.2} {:>7.2} | {:>9.2} {:>7.2} |",
                "total",
                "",
                frames,
                1e3 / r.total_mpps().max(f64::MIN_POSITIVE),
                r.total_mpps(),
                1e3 / r.total_null_mpps().max(f64::MIN_POSITIVE),
                r.total_null_mpps()
            );
        }
    }
    if let Some((one, many, x)) = scaling(o) {
        let _ = writeln!(
            s,
            "\nscaling: {} workers {many:.2} Mpps / 1 worker {one:.2} Mpps = {x:.2}x",
            a.workers
        );
    }
    let t = targets(o);
    if !t.is_empty() {
        let _ = writeln!(s, "\ntargets (issue 3):");
        for (line, ok) in t {
            let _ = writeln!(s, "  [{}] {line}", if ok { "met " } else { "MISS" });
        }
    }
    let w = warnings(o);
    if !w.is_empty() {
        let _ = writeln!(s, "\nwarnings:");
        for line in w {
            let _ = writeln!(s, "  {line}");
        }
    }
    let _ = writeln!(
        s,
        "\nns/f = ns per received frame; Mpps = received frames per second of loop time; \
         pipe/null = ratio of ns/frame; hit% = flow-cache hits; tx/rx = frames sent per frame received; \
         cpu% = share of the measured wall time the worker thread was on a CPU; \
         @cpu = ns/frame of on-CPU time (an estimate when cpu% < 100: preemption also costs cache contents)."
    );
    s
}

fn core(w: &WorkerResult) -> String {
    w.core.map_or("-".into(), |c| c.to_string())
}

fn row(s: &mut String, id: &str, core: &str, p: Measure, n: Measure, t: &Tally, inject: bool) {
    let (pn, nn) = (p.ns_per_frame(), n.ns_per_frame());
    let _ = write!(
        s,
        "{id:>6} {core:>4} {:>12} | {pn:>9.2} {:>7.2} | {nn:>9.2} {:>7.2} | {:>8.2}x {:>9.2} |",
        p.frames,
        p.mpps(),
        n.mpps(),
        pn / nn.max(f64::MIN_POSITIVE),
        pn - nn
    );
    if inject {
        let _ = write!(s, " {:>9.2} |", p.inject_ns_per_frame());
    }
    let _ = writeln!(
        s,
        " {:>5.1}% {:>6.2} {:>6} | {:>5.1}% {:>7.2}/{:<7.2}",
        100.0 * t.hit_rate(),
        t.tx as f64 / t.rx.max(1) as f64,
        t.drops,
        100.0 * p.on_cpu().min(n.on_cpu()),
        pn * p.on_cpu(),
        nn * n.on_cpu()
    );
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn json_measure(m: &Measure) -> String {
    format!(
        "{{\"frames\":{},\"ns\":{},\"ns_per_frame\":{},\"mpps\":{},\"inject_ns\":{},\"inject_ns_per_frame\":{},\"wall_ns\":{},\"cpu_ns\":{},\"on_cpu\":{}}}",
        m.frames,
        m.ns,
        json_f(m.ns_per_frame()),
        json_f(m.mpps()),
        m.inject_ns,
        json_f(m.inject_ns_per_frame()),
        m.wall_ns,
        m.cpu_ns,
        json_f(m.on_cpu())
    )
}

/// The machine-readable report (one JSON object).
pub fn json(o: &Outcome) -> String {
    let a = &o.args;
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"command\":{},\"profile\":{},\"macs\":{},\"flows\":{},\"frame_size\":{},\"workers\":{},\"seconds\":{},\"rx\":{},\"ring\":{},\"replicate_flows\":{},\"slice_ms\":{},\"cores\":{},\"load_before\":{},\"load_after\":{},\"runs\":[",
        json_str(&command(o)),
        json_str(a.profile.name()),
        a.macs,
        o.flows,
        a.frame_size,
        a.workers,
        json_f(a.seconds),
        json_str(a.rx.name()),
        a.ring,
        a.replicate_flows,
        a.slice_ms,
        o.cores,
        json_str(&o.load_before),
        json_str(&o.load_after)
    );
    for (i, r) in o.runs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"workers\":{},\"total_mpps\":{},\"total_null_mpps\":{},\"per_worker\":[",
            r.workers,
            json_f(r.total_mpps()),
            json_f(r.total_null_mpps())
        );
        for (k, w) in r.per_worker.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            let t = &w.tally;
            let (pn, nn) = (w.pipe.ns_per_frame(), w.null.ns_per_frame());
            let _ = write!(
                s,
                "{{\"worker\":{},\"core\":{},\"pipeline\":{},\"null\":{},\"ratio\":{},\"diff_ns_per_frame\":{},\
                 \"rx\":{},\"tx\":{},\"unicast\":{},\"flooded\":{},\"drops\":{},\"cache_hits\":{},\"cache_misses\":{},\
                 \"fdb_entries\":{},\"ring_chunks\":{},\"rx_write_bytes\":{},\"flows\":{},\"anon_huge_mib\":{},\"warmup_s\":{}}}",
                w.id,
                w.core.map_or("null".into(), |c| c.to_string()),
                json_measure(&w.pipe),
                json_measure(&w.null),
                json_f(pn / nn.max(f64::MIN_POSITIVE)),
                json_f(pn - nn),
                t.rx,
                t.tx,
                t.unicast,
                t.flooded,
                t.drops,
                t.cache_hits,
                t.cache_misses,
                w.fdb_entries,
                w.ring.chunks,
                w.ring.rx_write_bytes,
                w.flows,
                w.anon_huge_mib.map_or("null".into(), |m| m.to_string()),
                json_f(w.warmup_s)
            );
        }
        s.push_str("]}");
    }
    s.push(']');
    if let Some((one, many, x)) = scaling(o) {
        let _ = write!(
            s,
            ",\"scaling\":{{\"one_worker_mpps\":{},\"workers_mpps\":{},\"ratio\":{}}}",
            json_f(one),
            json_f(many),
            json_f(x)
        );
    }
    s.push_str(",\"targets\":[");
    for (i, (line, ok)) in targets(o).iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{{\"target\":{},\"met\":{ok}}}", json_str(line));
    }
    s.push_str("],\"warnings\":[");
    for (i, line) in warnings(o).iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_str(line));
    }
    s.push_str("]}");
    s
}
