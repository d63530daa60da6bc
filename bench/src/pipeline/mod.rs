//! `vswitch-bench pipeline`: the real switching pipeline over in-memory ports, in Mpps
//! and ns/frame per worker, next to a *null pipeline* measured in the same run.
//!
//! # What is measured
//!
//! Each worker owns what a poll-mode worker owns — a [`Pipeline`](dataplane::pipeline::Pipeline)
//! over tables compiled from a generated configuration, its replica of a
//! [`flowtable::FdbGroup`], a [`Pool`](dataplane::pool::Pool) and one port per
//! configured port — on its own thread pinned to core `w % ncores`. Before the timed
//! part every host is learned (by every replica), the flow cache is warm and every
//! frame is built. The timed part alternates slices (100 ms by default) of:
//!
//! - **pipeline**: `Pipeline::poll` over all ports, frames counted as received;
//! - **null**: receive a burst from each port, read each frame's Ethernet header, hand
//!   the burst to the egress port — the cost of moving descriptors with no switching.
//!
//! Both see the same ports, frames and receive cost, so `pipeline − null` is the cost
//! of switching alone and `pipeline / null` how many times the bare forwarding loop
//! it takes. Every worker starts each slice together (a barrier), so `--workers 2`
//! measures two cores switching at once; with more than one worker the run is
//! preceded by the same run with one worker, and the report gives the scaling.
//!
//! # Receiving without copying
//!
//! `--rx ring` (default) uses [`ring::RingPort`]: frames are written into chunks once,
//! and each receive burst re-issues 32 of them (see that module). `--rx inject` uses
//! [`MemPort`](dataplane::port::MemPort)s refilled with `MemPort::inject`, which copies
//! every frame: the copy is timed apart and reported as `inject ns/frame`, and both
//! kinds of loop pay it equally.

pub mod report;
pub mod ring;
pub mod traffic;
pub mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use dataplane::pipeline::Tables;
use flowtable::{FdbConfig, FdbGroup, ReplicaConfig};

use traffic::{Profile, Spec};
use worker::{Shared, WorkerResult};

/// How ingress ports get their frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RxMode {
    /// Pre-filled chunks re-issued by the port: no copy per frame.
    Ring,
    /// `MemPort::inject`: one copy per frame, timed apart.
    Inject,
}

impl RxMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            RxMode::Ring => "ring",
            RxMode::Inject => "inject",
        }
    }
}

/// `vswitch-bench pipeline` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Traffic profile: l2 (learned unicast access→access), flood (broadcast in a network
    /// of 4 ports), trunk (access→trunk tag push and trunk→access tag pop, half each).
    #[arg(long, value_enum, default_value = "l2")]
    pub profile: Profile,
    /// Hosts (MACs) per side, all learned before measuring; `k` = 1000, `M` = 1000000.
    #[arg(long, default_value = "1k", value_parser = parse_count)]
    pub macs: u32,
    /// Distinct flows (source, destination) in the traffic, in total [default: --macs].
    #[arg(long, value_parser = parse_count)]
    pub flows: Option<u32>,
    /// Frame size at ingress, bytes (60..=1514; a trunk's tagged frames include the tag).
    #[arg(long, default_value_t = 60)]
    pub frame_size: usize,
    /// Poll-mode workers, each pinned to core (w % cores).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Measured seconds of each kind, pipeline and null, alternating in slices: 2×S wall
    /// per run (and per worker count).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Receive path: ring (zero copy) or inject (MemPort::inject, one copy per frame).
    #[arg(long, value_enum, default_value = "ring")]
    pub rx: RxMode,
    /// Chunks per receive ring with --rx ring (per ingress port and worker, like a NIC
    /// queue): with at most that many flows per worker no frame is written while timed.
    #[arg(long, default_value_t = ring::DEFAULT_RING)]
    pub ring: usize,
    /// Length of one timed slice, ms (pipeline and null alternate by slice).
    #[arg(long, default_value_t = 100)]
    pub slice_ms: u64,
    /// Every worker sends all the flows, as the one-worker run does, instead of its
    /// 1/W share (RSS-like, the default): the scaling then compares identical per-worker
    /// work and shows contention alone, without the gain of a smaller working set.
    #[arg(long)]
    pub replicate_flows: bool,
    /// With --workers > 1, skip the one-worker reference run (no scaling figure).
    #[arg(long)]
    pub no_baseline: bool,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Print the generated switch configuration first.
    #[arg(long)]
    pub show_config: bool,
}

/// `1000`, `1k`, `64k`, `1M`.
fn parse_count(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1_000u64),
        None => match s.strip_suffix('M') {
            Some(n) => (n, 1_000_000),
            None => (s, 1),
        },
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|e| format!("{s:?}: {e} (a count, e.g. 1000, 1k, 1M)"))?;
    u32::try_from(n * mult).map_err(|_| format!("{s:?}: too large"))
}

/// One run: a switch with `workers` workers.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Workers.
    pub workers: usize,
    /// Per worker, in order.
    pub per_worker: Vec<WorkerResult>,
}

impl RunResult {
    /// Pipeline Mpps of all workers together.
    pub fn total_mpps(&self) -> f64 {
        self.per_worker.iter().map(|w| w.pipe.mpps()).sum()
    }

    /// Null-pipeline Mpps of all workers together.
    pub fn total_null_mpps(&self) -> f64 {
        self.per_worker.iter().map(|w| w.null.mpps()).sum()
    }
}

/// Everything a report needs.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The options.
    pub args: Args,
    /// Flows in total (resolved default).
    pub flows: u32,
    /// Cores found.
    pub cores: usize,
    /// `/proc/loadavg` before and after.
    pub load_before: String,
    /// `/proc/loadavg` after.
    pub load_after: String,
    /// The runs, one worker first when there are two.
    pub runs: Vec<RunResult>,
}

/// Runs the benchmark and prints its report.
pub fn main(args: Args) -> Result<()> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds {}: must be in (0, 3600]", args.seconds);
    }
    if args.workers == 0 || args.workers > 64 {
        bail!("--workers {}: must be 1..=64", args.workers);
    }
    if !(ring::MIN_RING..=1 << 20).contains(&args.ring) {
        bail!("--ring {}: must be {}..=1048576", args.ring, ring::MIN_RING);
    }
    if args.slice_ms == 0 {
        bail!("--slice-ms must be > 0");
    }
    let flows = args.flows.unwrap_or(args.macs);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let load_before = loadavg();
    let counts = if args.workers > 1 && !args.no_baseline {
        vec![1, args.workers]
    } else {
        vec![args.workers]
    };
    let mut runs = Vec::new();
    for &workers in &counts {
        let spec = Spec::new(args.profile, args.macs, flows, args.frame_size, workers)?;
        if args.show_config && runs.is_empty() {
            eprintln!("# generated configuration\n{}", spec.toml);
        }
        eprintln!(
            "vswitch-bench: {} workers: learning {} MACs, warming up, then {} s of pipeline and {} s of null",
            workers,
            spec.expected_fdb(),
            args.seconds,
            args.seconds
        );
        runs.push(run(&spec, workers, &args, &cores)?);
    }
    let outcome = Outcome {
        flows,
        cores: cores.len(),
        load_before,
        load_after: loadavg(),
        runs,
        args,
    };
    if outcome.args.json {
        println!("{}", report::json(&outcome));
    } else {
        print!("{}", report::table(&outcome));
    }
    Ok(())
}

/// Builds the switch for `spec` with `workers` workers and measures it.
fn run(
    spec: &Spec,
    workers: usize,
    args: &Args,
    cores: &[core_affinity::CoreId],
) -> Result<RunResult> {
    let cfg = &spec.config;
    let fdb_cfg = FdbConfig {
        capacity: cfg.switch.mac_table_size,
        per_port_limit: u32::try_from(cfg.switch.mac_limit_per_port).unwrap_or(u32::MAX),
        aging_ns: u64::try_from(cfg.switch.mac_aging.as_nanos()).unwrap_or(u64::MAX),
        max_ports: (cfg.ports.len() + cfg.vteps.len()).max(1),
    };
    let group = FdbGroup::new(workers, fdb_cfg, ReplicaConfig::default())?;
    let tables = Tables::compile(cfg, 1);
    let shared = Shared {
        spec,
        workers,
        rx: args.rx,
        ring: args.ring,
        replicate: args.replicate_flows,
        seconds: args.seconds,
        slice: Duration::from_millis(args.slice_ms),
        epoch: Instant::now(),
        learned: AtomicUsize::new(0),
        abort: AtomicBool::new(false),
        barrier: Barrier::new(workers),
    };
    let results: Vec<Result<WorkerResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = group
            .workers
            .into_iter()
            .enumerate()
            .map(|(id, fdb)| {
                let (tables, shared) = (tables.clone(), &shared);
                let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
                std::thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn_scoped(s, move || worker::run(shared, id, fdb, tables, core))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(anyhow!("worker panicked"))),
                Err(e) => Err(e.into()),
            })
            .collect()
    });
    let per_worker = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(RunResult {
        workers,
        per_worker,
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(profile: Profile, rx: RxMode, workers: usize) -> Args {
        Args {
            profile,
            macs: 100,
            flows: None,
            frame_size: 64,
            workers,
            seconds: 0.02,
            rx,
            ring: 64,
            slice_ms: 10,
            replicate_flows: false,
            no_baseline: false,
            json: false,
            show_config: false,
        }
    }

    /// Every profile, both receive paths, one and two workers: frames are switched the
    /// way the profile says, none is dropped, and the counts agree.
    #[test]
    fn profiles_switch_what_they_claim() {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        for &profile in <Profile as clap::ValueEnum>::value_variants() {
            for rx in [RxMode::Ring, RxMode::Inject] {
                for workers in [1, 2] {
                    let a = args(profile, rx, workers);
                    let spec = Spec::new(profile, a.macs, a.macs, a.frame_size, workers).unwrap();
                    let r = run(&spec, workers, &a, &cores).unwrap();
                    let what = format!("{profile:?} {rx:?} {workers}");
                    for w in &r.per_worker {
                        let t = &w.tally;
                        assert!(w.pipe.frames > 0 && w.null.frames > 0, "{what}");
                        assert_eq!(t.rx, w.pipe.frames, "{what}");
                        assert_eq!(t.drops, 0, "{what}");
                        assert_eq!(w.fdb_entries, spec.expected_fdb(), "{what}");
                        match profile {
                            Profile::Flood => {
                                assert_eq!(t.flooded, t.rx, "{what}");
                                assert_eq!(t.tx, 3 * t.rx, "{what}");
                            }
                            _ => {
                                assert_eq!(t.unicast, t.rx, "{what}");
                                assert_eq!(t.tx, t.rx, "{what}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1k"), Ok(1000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("4096"), Ok(4096));
        assert!(parse_count("x").is_err());
        assert!(parse_count("5000M").is_err());
    }
}
