//! `vswitch-bench wire`: a switch under test between a generator port and a sink port on
//! real netdevs, measured the same way for every switch (this project's, with and without
//! its XDP fast path, the Linux bridge, Open vSwitch, vswitch's own forward-only `null`
//! mode, and a bare XDP redirect between the two ports).
//!
//! # How a run goes
//! 1. The rig ([`rig`]): namespaces GEN, SWITCH, SINK and veth pairs, plus a bare pair
//!    GEN ⇄ SINK; torn down at the end, on error and on Ctrl-C.
//! 2. The ceiling: the generator straight into the sink over the bare pair, for each
//!    frame size, printed first: no switch can be measured above it.
//! 3. For every profile × frame size × flow count, `--reps` rounds in which each switch
//!    is set up, taught the sink's MACs (one frame per flow from the sink side), warmed
//!    up (the generator's flows once each), measured, and torn down: switches alternate
//!    (A B A B ...) so drift cancels. A measurement is a trial at the offered rate
//!    (`--rate`, default as fast as the generator goes) or, with `--search`, the
//!    RFC 2544 zero-loss throughput found by binary search followed by a trial at
//!    `--latency-at` of that rate for `--hold` seconds, where latency is taken.
//! 4. A table (median of the rounds, min–max spread, ratio to the first switch), and
//!    optionally `--json` (every raw sample) and `--plot` (SVG).
//!
//! # What is counted
//! - offered: frames the generator's XDP program transmitted;
//! - forwarded: test frames (the generator's magic at the profile's payload offset) the
//!   sink's XDP program counted, so nothing but the measured traffic is counted;
//! - loss: offered − forwarded;
//! - cycles per packet: the switch's own busy cycles (`ctl stats` for vswitch, the PMD's
//!   processing cycles for OVS), and the switch core's busy time from `/proc/stat`
//!   turned into cycles at the nominal clock, for every switch;
//! - latency: generator timestamp → sink, sampled in the sink, in an HDR histogram.

pub mod churn;
pub mod plot;
pub mod profile;
pub mod redirect;
pub mod report;
pub mod rig;
pub mod sut;
pub mod traffic;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use profile::{Macs, Profile, Sizes, Traffic};
use rig::{Rig, CEIL_GEN_IF, CEIL_SINK_IF, GEN_IF, SINK_IF, SW_GEN_IF, SW_SINK_IF};
use sut::{Kind, Running, SutOptions, SwitchCounters};
use traffic::{GenConfig, Generator, Sink, SinkConfig, SinkCounters, Stream};

/// `vswitch-bench wire` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Switches under test, measured alternately; ratios are to the first. `xdp-redirect`
    /// (the in-kernel ceiling) runs on the `l2` profile only and is skipped on others.
    #[arg(long = "switch", value_enum, value_delimiter = ',', default_values_t = [Kind::VswitchFast, Kind::Vswitch, Kind::KernelBridge, Kind::XdpRedirect])]
    pub switches: Vec<Kind>,
    /// Traffic profiles.
    #[arg(long = "profile", value_enum, value_delimiter = ',', default_values_t = [Profile::L2])]
    pub profiles: Vec<Profile>,
    /// Frame sizes on the wire, FCS included (64..=1518), or `imix`.
    #[arg(long = "size", value_delimiter = ',', default_values_t = [Sizes::Fixed(64)])]
    pub sizes: Vec<Sizes>,
    /// Flows: distinct host pairs (MAC pairs), 1..=16777216.
    #[arg(long = "flows", value_delimiter = ',', default_values_t = [1u32])]
    pub flows: Vec<u32>,
    /// Seconds per trial.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Rounds (each switch once per round).
    #[arg(long, default_value_t = 3)]
    pub reps: u32,
    /// Offered rate in Mpps (default: as fast as the generator goes).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Find the zero-loss throughput by binary search (RFC 2544).
    #[arg(long)]
    pub search: bool,
    /// Loss tolerated by `--search`, as a fraction (0.001 = 0.1 %).
    #[arg(long, default_value_t = 0.0)]
    pub loss_tolerance: f64,
    /// Binary-search steps.
    #[arg(long, default_value_t = 7)]
    pub search_steps: u32,
    /// With `--search`: the fraction of the zero-loss rate of the latency trial.
    #[arg(long, default_value_t = 0.9)]
    pub latency_at: f64,
    /// With `--search`: seconds of the latency trial (default: `--seconds`).
    #[arg(long)]
    pub hold: Option<f64>,
    /// The sink samples the latency of one test frame in this many.
    #[arg(long, default_value_t = 64)]
    pub latency_sample: u32,
    /// Core of the generator and the sink.
    #[arg(long, default_value_t = 0)]
    pub gen_core: usize,
    /// Core of the switch under test (and all of its kernel work).
    #[arg(long, default_value_t = 1)]
    pub switch_core: usize,
    /// The vswitch binary (default: `vswitch` next to this program).
    #[arg(long)]
    pub vswitch: Option<PathBuf>,
    /// Extra `[switch]` lines for vswitch's configuration, e.g.
    /// `--vswitch-opt 'napi_busy_poll = false'`.
    #[arg(long = "vswitch-opt")]
    pub vswitch_opts: Vec<String>,
    /// Install Debian's Open vSwitch (apt-get) if `ovs` is asked for and missing.
    #[arg(long)]
    pub install_ovs: bool,
    /// Write every raw sample to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw throughput vs frame size and vs flows, and latency CDFs, to this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Check that the counters agree (generated = forwarded + dropped, per sink and per
    /// the switch's own counters) and fail otherwise; for CI's smoke run, at a rate
    /// the switches carry without loss.
    #[arg(long)]
    pub check: bool,
    /// The soak: while every vswitch trial runs, change its configuration through the
    /// control socket every 100 ms (a network added and removed, static entries added
    /// and removed in the profile's networks), and sample its resident memory. With
    /// `--search` and `--check`, the hold trial (at `--latency-at` of the zero-loss
    /// rate) must lose no frame and grow vswitch's RSS by at most 1 MiB.
    #[arg(long)]
    pub churn: bool,
    /// With `--churn --check`: the loss the hold trial may have, as a fraction (the
    /// goal is 0; every lost frame must still be counted hop by hop).
    #[arg(long, default_value_t = 0.0)]
    pub soak_max_loss: f64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One measured trial.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Switch.
    pub switch: String,
    /// Profile.
    pub profile: String,
    /// Frame size (or `imix`).
    pub size: String,
    /// Flows.
    pub flows: u32,
    /// Round.
    pub rep: u32,
    /// What the trial was: `max` (as fast as offered), `search` step, `hold`, `ceiling`.
    pub kind: String,
    /// Offered rate asked for, pps (`None` = unpaced).
    pub target_pps: Option<f64>,
    /// Seconds the generator ran.
    pub seconds: f64,
    /// Frames the generator sent.
    pub offered: u64,
    /// Frames the generator's veth could not hand to its peer (ring full, too long).
    pub gen_xmit_errors: Option<u64>,
    /// Frames that vanished without a counter (the peer had no NAPI).
    pub gen_unaccounted: Option<u64>,
    /// Test frames the sink counted.
    pub forwarded: u64,
    /// Bytes of those frames (no FCS).
    pub forwarded_bytes: u64,
    /// Frames the switch says it dropped (vswitch: `ctl stats`, its own drops and the
    /// kernel's drops on the way to its AF_XDP sockets; the kernel's switches: the
    /// generator-side port's `rx_dropped`).
    pub switch_drops: Option<u64>,
    /// Frames that reached the switch's generator-side port (vswitch: `ctl stats`, the
    /// frames it received plus those the kernel dropped on the way to its sockets;
    /// others: the port's `rx_packets`).
    pub switch_rx: Option<u64>,
    /// Frames the switch sent on its sink-side port.
    pub switch_tx: Option<u64>,
    /// vswitch's drops over the trial by reason (`kernel_rx`: the kernel's, on the way to
    /// its AF_XDP sockets).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub drop_reasons: std::collections::BTreeMap<String, u64>,
    /// Frames the sink-side veth could not hand to the sink (its `tx_dropped`).
    pub egress_dropped: Option<u64>,
    /// Frames the sink received that were not test frames (the switch's own, e.g. ARP).
    pub sink_other: u64,
    /// Reordered/duplicated test frames seen by the sink.
    pub reordered: u64,
    /// Switch's own busy cycles per forwarded frame.
    pub switch_cycles_per_packet: Option<f64>,
    /// Switch core's busy cycles (from /proc/stat) per forwarded frame.
    pub core_cycles_per_packet: Option<f64>,
    /// Latency samples the sink's ring had no room for.
    pub latency_lost: u64,
    /// Latency percentiles in ns: p50, p99, p99.9, max (`None` without samples).
    pub latency_ns: Option<[u64; 4]>,
    /// Latency CDF points (ns, fraction) for plots.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency_cdf: Vec<(u64, f64)>,
    /// vswitch's resident memory at the start and the end of the trial, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<[u64; 2]>,
    /// Configuration changes applied during the trial (`--churn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_changes: Option<u64>,
}

impl Sample {
    /// Offered Mpps.
    pub fn offered_mpps(&self) -> f64 {
        self.offered as f64 / self.seconds.max(1e-9) / 1e6
    }
    /// Forwarded Mpps.
    pub fn forwarded_mpps(&self) -> f64 {
        self.forwarded as f64 / self.seconds.max(1e-9) / 1e6
    }
    /// Forwarded Gbit/s on the wire (frame + FCS + preamble + inter-frame gap).
    pub fn forwarded_gbps(&self) -> f64 {
        (self.forwarded_bytes + 24 * self.forwarded) as f64 * 8.0 / self.seconds.max(1e-9) / 1e9
    }
    /// Loss fraction.
    pub fn loss(&self) -> f64 {
        if self.offered == 0 {
            0.0
        } else {
            self.offered.saturating_sub(self.forwarded) as f64 / self.offered as f64
        }
    }
}

/// The result of one switch in one round of one case.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The trial at the asked rate (or the hold trial after a search).
    pub main: Sample,
    /// Zero-loss throughput found by `--search`, pps.
    pub zero_loss_pps: Option<f64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The command line.
    pub command: String,
    /// Kernel release.
    pub kernel: String,
    /// Nominal CPU clock (MHz) used to turn time into cycles.
    pub cpu_mhz: f64,
    /// The harness's ceiling per frame size (generator → sink, no switch).
    pub ceiling: Vec<Sample>,
    /// Every trial.
    pub samples: Vec<Sample>,
    /// Per case and switch: the outcome of every round.
    pub outcomes: Vec<Outcome>,
}

/// Runs `vswitch-bench wire`.
pub fn main(args: Args) -> Result<()> {
    if !vswitch_tests::netns::is_root() {
        bail!("vswitch-bench wire needs root: it creates network namespaces and attaches XDP programs");
    }
    validate(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    if args.switches.contains(&Kind::Ovs) {
        ensure_ovs(args.install_ovs)?;
    }
    let vswitch = match &args.vswitch {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory for vswitch-bench")?
            .join("vswitch"),
    };
    if args.switches.iter().any(|k| k.is_vswitch()) && !vswitch.exists() {
        bail!(
            "{} not found: build it (cargo build --release) or give --vswitch",
            vswitch.display()
        );
    }
    let tmp = std::env::temp_dir().join(format!("vswitch-bench-wire-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let sut_opts = SutOptions {
        vswitch,
        tmp: tmp.clone(),
        vswitch_extra: args.vswitch_opts.clone(),
        churn: args.churn,
    };
    let result = run(&args, &sut_opts, &stop);
    let _ = std::fs::remove_dir_all(&tmp);
    let report = result?;
    report::print_table(&report, &args.switches);
    if let Some(path) = &args.json {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(f, &report).context("writing JSON")?;
        println!("raw samples: {}", path.display());
    }
    if let Some(path) = &args.plot {
        plot::draw(&report, &args, path)?;
        println!("plot: {}", path.display());
    }
    if args.check {
        report::check(&report, args.soak_max_loss)?;
    }
    Ok(())
}

fn validate(args: &Args) -> Result<()> {
    if args.switches.is_empty()
        || args.profiles.is_empty()
        || args.sizes.is_empty()
        || args.flows.is_empty()
    {
        bail!("nothing to measure");
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds: 0..=3600");
    }
    if args.reps == 0 {
        bail!("--reps: at least 1");
    }
    if !(0.0..1.0).contains(&args.loss_tolerance) {
        bail!("--loss-tolerance: a fraction in [0, 1)");
    }
    if !(args.latency_at > 0.0 && args.latency_at <= 1.0) {
        bail!("--latency-at: a fraction in (0, 1]");
    }
    if let Some(r) = args.rate {
        if r.is_nan() || r <= 0.0 {
            bail!("--rate: Mpps > 0");
        }
    }
    if args.gen_core == args.switch_core {
        bail!("--gen-core and --switch-core must differ");
    }
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    for c in [args.gen_core, args.switch_core] {
        if !cores.iter().any(|id| id.id == c) {
            bail!("core {c} is not available to this process");
        }
    }
    Ok(())
}

fn ensure_ovs(install: bool) -> Result<()> {
    if which("ovs-vswitchd") {
        return Ok(());
    }
    if !install {
        bail!("ovs-vswitchd is not installed: add --install-ovs to install Debian's openvswitch-switch, or leave ovs out of --switch");
    }
    eprintln!("installing openvswitch-switch (apt-get)...");
    let st = std::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "openvswitch-switch",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !st.success() || !which("ovs-vswitchd") {
        bail!("installing openvswitch-switch failed ({st})");
    }
    Ok(())
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// Fails with "interrupted" once Ctrl-C was pressed.
fn check_stop(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `d`, waking early (with an error) on Ctrl-C.
fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check_stop(stop)?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

struct Case {
    profile: Profile,
    sizes: Sizes,
    flows: u32,
}

fn run(args: &Args, sut_opts: &SutOptions, stop: &AtomicBool) -> Result<RunReport> {
    let rig = Rig::new(args.gen_core, args.switch_core).context("building the rig")?;
    let macs = Macs {
        gen: rig.mac(&rig.gen, GEN_IF)?,
        sink: rig.mac(&rig.sink, SINK_IF)?,
        sw_gen: rig.mac(&rig.sw, SW_GEN_IF)?,
        sw_sink: rig.mac(&rig.sw, SW_SINK_IF)?,
    };
    let mut cases = Vec::new();
    for &profile in &args.profiles {
        for sizes in &args.sizes {
            for &flows in &args.flows {
                cases.push(Case {
                    profile,
                    sizes: sizes.clone(),
                    flows,
                });
            }
        }
    }
    let trials_per = if args.search {
        u64::from(args.search_steps) + 2
    } else {
        1
    };
    let total = cases.len() as u64 * u64::from(args.reps) * args.switches.len() as u64 * trials_per
        + args.sizes.len() as u64;
    let bar = progress(total, args.quiet);
    let mut report = RunReport {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        cpu_mhz: rig.cpu_mhz,
        ceiling: Vec::new(),
        samples: Vec::new(),
        outcomes: Vec::new(),
    };

    // The ceiling: generator → sink over the bare pair, per frame size.
    for sizes in &args.sizes {
        check_stop(stop)?;
        bar.set_message(format!("ceiling {sizes}"));
        let t = Traffic::new(Profile::L2, sizes, 1, macs)?;
        let mut sink = Sink::attach(&SinkConfig {
            netns: rig.sink.path(),
            ifname: CEIL_SINK_IF.to_owned(),
            payload_offset: t.gen_payload,
            latency_sample_every: args.latency_sample,
            pass_other: false,
        })?;
        let gen = gen_config(&rig, CEIL_GEN_IF, &t, None);
        let mut s = trial(&rig, &gen, &mut sink, None, args.seconds, stop)?;
        s.switch = "ceiling".into();
        s.kind = "ceiling".into();
        s.profile = "-".into();
        s.size = sizes.to_string();
        bar.println(format!(
            "ceiling ({sizes} B, generator → sink over a bare veth pair): {:.3} Mpps offered, {:.3} Mpps received",
            s.offered_mpps(),
            s.forwarded_mpps()
        ));
        bar.inc(1);
        report.ceiling.push(s);
    }

    for case in &cases {
        let unsupported: Vec<_> = args
            .switches
            .iter()
            .filter_map(|k| k.unsupported(case.profile).map(|why| (*k, why)))
            .collect();
        for (k, why) in &unsupported {
            bar.println(format!("skipping {k} on {}: {why}", case.profile));
        }
        let traffic = Traffic::new(case.profile, &case.sizes, case.flows, macs)?;
        for rep in 0..args.reps {
            for &kind in &args.switches {
                if unsupported.iter().any(|(k, _)| *k == kind) {
                    bar.inc(trials_per);
                    continue;
                }
                check_stop(stop)?;
                bar.set_message(format!(
                    "{kind} {} {} B {} flows, round {}",
                    case.profile,
                    case.sizes,
                    case.flows,
                    rep + 1
                ));
                let outcome = measure(args, &rig, sut_opts, kind, &traffic, case, rep, stop, &bar)
                    .with_context(|| {
                        format!(
                            "{kind} on {} {} B {} flows",
                            case.profile, case.sizes, case.flows
                        )
                    })?;
                report.outcomes.push(outcome);
            }
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

fn progress(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn gen_config(rig: &Rig, ifname: &str, t: &Traffic, rate_pps: Option<f64>) -> GenConfig {
    let ns = if ifname == SINK_IF {
        rig.sink.path()
    } else {
        rig.gen.path()
    };
    GenConfig {
        netns: ns,
        ifname: ifname.to_owned(),
        core: Some(rig.gen_core),
        streams: t
            .streams
            .iter()
            .map(|s| Stream {
                template: s.frame.clone(),
                weight: s.weight,
            })
            .collect(),
        payload_offset: t.gen_payload,
        mac_fields: t.gen_macs.clone(),
        udp_sport_field: t.gen_udp_sport,
        flows: t.flows,
        rate_pps,
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    args: &Args,
    rig: &Rig,
    sut_opts: &SutOptions,
    kind: Kind,
    t: &Traffic,
    case: &Case,
    rep: u32,
    stop: &AtomicBool,
    bar: &indicatif::ProgressBar,
) -> Result<Outcome> {
    let running = Running::start(kind, case.profile, rig, sut_opts)?;
    // The null switch and the bare redirect forward frames unchanged: the payload stays
    // where it was sent.
    let sink_payload = if kind.forwards_unchanged() {
        t.gen_payload
    } else {
        t.sink_payload
    };
    let mut sink = Sink::attach(&SinkConfig {
        netns: rig.sink.path(),
        ifname: SINK_IF.to_owned(),
        payload_offset: sink_payload,
        latency_sample_every: args.latency_sample,
        pass_other: false,
    })?;
    // Teach the switch the sink hosts' MACs, then let the generator's flows go once.
    if let Some(learn) = &t.learn {
        let cfg = GenConfig {
            netns: rig.sink.path(),
            ifname: SINK_IF.to_owned(),
            core: Some(rig.gen_core),
            streams: vec![Stream {
                template: learn.frame.clone(),
                weight: 1,
            }],
            payload_offset: learn.frame.len().saturating_sub(profile::PAYLOAD_LEN),
            mac_fields: t.learn_macs.clone(),
            udp_sport_field: None,
            flows: t.flows,
            rate_pps: Some(learn_rate(kind)),
        };
        traffic::send_burst(&cfg, u64::from(t.flows))?;
    }
    let warm = gen_config(rig, GEN_IF, t, Some(learn_rate(kind)));
    traffic::send_burst(&warm, u64::from(t.flows).max(1000))?;
    sleep_or_stop(Duration::from_millis(200), stop)?;
    let _ = sink.drain_latency(&mut new_histogram()?);

    let label = |mut s: Sample, what: &str| {
        s.switch = kind.name().into();
        s.profile = case.profile.name().into();
        s.size = case.sizes.to_string();
        s.flows = case.flows;
        s.rep = rep;
        s.kind = what.into();
        s
    };
    let outcome;
    if args.search {
        // Upper bound: what the switch forwards when offered everything.
        let top = label(
            trial(
                rig,
                &gen_config(rig, GEN_IF, t, None),
                &mut sink,
                Some(&running),
                args.seconds,
                stop,
            )?,
            "search",
        );
        bar.inc(1);
        // A switch offered everything forwards at most its capacity: search below a
        // little above what it forwarded then.
        let mut hi = top.forwarded_mpps() * 1.1 * 1e6;
        let mut lo = 0.0f64;
        let mut best = if top.loss() <= args.loss_tolerance {
            top.forwarded_mpps() * 1e6
        } else {
            0.0
        };
        if best == 0.0 {
            for _ in 0..args.search_steps {
                let mid = (lo + hi) / 2.0;
                let s = label(
                    trial(
                        rig,
                        &gen_config(rig, GEN_IF, t, Some(mid)),
                        &mut sink,
                        Some(&running),
                        args.seconds,
                        stop,
                    )?,
                    "search",
                );
                bar.inc(1);
                if s.loss() <= args.loss_tolerance {
                    lo = mid;
                    best = best.max(mid);
                } else {
                    hi = mid;
                }
            }
        } else {
            bar.inc(u64::from(args.search_steps));
        }
        let rate = (best * args.latency_at).max(1000.0);
        let hold = args.hold.unwrap_or(args.seconds);
        let main = label(
            trial(
                rig,
                &gen_config(rig, GEN_IF, t, Some(rate)),
                &mut sink,
                Some(&running),
                hold,
                stop,
            )?,
            "hold",
        );
        bar.inc(1);
        outcome = Outcome {
            main,
            zero_loss_pps: Some(best),
        };
    } else {
        let rate = args.rate.map(|r| r * 1e6);
        let main = label(
            trial(
                rig,
                &gen_config(rig, GEN_IF, t, rate),
                &mut sink,
                Some(&running),
                args.seconds,
                stop,
            )?,
            "max",
        );
        bar.inc(1);
        outcome = Outcome {
            main,
            zero_loss_pps: None,
        };
    }
    drop(sink);
    running.stop()?;
    Ok(outcome)
}

/// Rate of the learning bursts: slow enough for any switch to learn every MAC.
fn learn_rate(kind: Kind) -> f64 {
    match kind {
        Kind::Ovs => 50_000.0,
        _ => 200_000.0,
    }
}

fn new_histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).context("histogram")
}

/// The sink's and the switch's counters at one quiet instant. They are read one after
/// the other, and a frame the switch sends on its own (or one still in flight) between
/// the two reads would be counted on one side only: read both twice, a few milliseconds
/// apart, until neither moved.
fn snapshot(
    rig: &Rig,
    sink: &Sink,
    sw: Option<&Running>,
) -> Result<(SinkCounters, Option<SwitchCounters>)> {
    let read = || -> Result<_> {
        Ok((
            sink.read()?,
            sw.map(|r| r.counters(rig)).transpose()?.flatten(),
        ))
    };
    let mut last = read()?;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(5));
        let now = read()?;
        let frames = |c: &Option<SwitchCounters>| {
            c.as_ref()
                .map(|c| (c.rx, c.rx_dropped, c.tx, c.drops, c.tx_dropped))
        };
        if now.0 == last.0 && frames(&now.1) == frames(&last.1) {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// One trial: the generator runs `seconds` at `rate` (pps; `None` = unpaced); the sink's,
/// the switch's and the switch core's counters are read around it.
fn trial(
    rig: &Rig,
    gen: &GenConfig,
    sink: &mut Sink,
    sw: Option<&Running>,
    seconds: f64,
    stop: &AtomicBool,
) -> Result<Sample> {
    let mut hist = new_histogram()?;
    let _ = sink.drain_latency(&mut hist);
    hist.reset();
    sink.reset_flows(gen.flows)?;
    let (s0, c0) = snapshot(rig, sink, sw)?;
    let pid = sw.and_then(Running::pid);
    let rss0 = pid.map(churn::rss_kib).transpose()?;
    let churning = match sw {
        Some(r) if r.churn => {
            let socket = r
                .socket()
                .context("--churn: vswitch has no control socket")?;
            Some(churn::Churn::start(socket.to_owned())?)
        }
        _ => None,
    };
    let t0 = rig::cpu_busy_ticks(rig.switch_core)?;
    let g = Generator::start(gen.clone())?;
    // Drain the latency samples as the trial runs (the sink's ring holds a few seconds'
    // worth at full rate).
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut run = Ok(());
    while Instant::now() < end {
        if let Err(e) = check_stop(stop) {
            run = Err(e);
            break;
        }
        sink.drain_latency(&mut hist)?;
        std::thread::sleep((end - Instant::now().min(end)).min(Duration::from_millis(100)));
    }
    let rep = g.stop()?;
    let config_changes = churning.map(churn::Churn::stop).transpose()?;
    run?;
    if !rep.dispatcher_pinned {
        eprintln!(
            "warning: the generator could not pin its program in the XDP dispatcher (lo of {} busy): its rate is far below its ceiling",
            gen.netns.display()
        );
    }
    // Let the last frames through the switch.
    std::thread::sleep(Duration::from_millis(100));
    let t1 = rig::cpu_busy_ticks(rig.switch_core)?;
    let (s1, c1) = snapshot(rig, sink, sw)?;
    let rss1 = pid.map(churn::rss_kib).transpose()?;
    sink.drain_latency(&mut hist)?;
    let forwarded = s1.test_frames.saturating_sub(s0.test_frames);
    let mhz = rig.cpu_mhz;
    let per = |cycles: f64| (forwarded > 0 && cycles > 0.0).then(|| cycles / forwarded as f64);
    let core_cycles = (t1.saturating_sub(t0)) as f64 / rig::USER_HZ as f64 * mhz * 1e6;
    let drop_reasons: std::collections::BTreeMap<String, u64> = match (&c0, &c1) {
        (Some(a), Some(b)) => b
            .reasons
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.saturating_sub(a.reasons.get(k).copied().unwrap_or(0)),
                )
            })
            .filter(|(_, v)| *v > 0)
            .collect(),
        _ => Default::default(),
    };
    let (switch_rx, switch_tx, switch_drops, egress_dropped, switch_cycles) = match (c0, c1) {
        (Some(a), Some(b)) => (
            Some(b.rx.saturating_sub(a.rx) + b.rx_dropped.saturating_sub(a.rx_dropped)),
            Some(b.tx.saturating_sub(a.tx)),
            Some(b.drops.saturating_sub(a.drops) + b.rx_dropped.saturating_sub(a.rx_dropped)),
            Some(b.tx_dropped.saturating_sub(a.tx_dropped)),
            match (a.busy_cycles, b.busy_cycles) {
                (Some(x), Some(y)) => per(y.saturating_sub(x) as f64),
                _ => None,
            },
        ),
        _ => (None, None, None, None, None),
    };
    let latency_ns = (!hist.is_empty()).then(|| {
        [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
        ]
    });
    let latency_cdf = if hist.is_empty() {
        Vec::new()
    } else {
        (0..=100)
            .map(|i| {
                let q = 1.0 - 10f64.powf(-(f64::from(i) / 25.0));
                (hist.value_at_quantile(q), q)
            })
            .collect()
    };
    Ok(Sample {
        switch: String::new(),
        profile: String::new(),
        size: String::new(),
        flows: gen.flows,
        rep: 0,
        kind: String::new(),
        target_pps: gen.rate_pps,
        seconds: rep.elapsed.as_secs_f64(),
        offered: rep.frames,
        gen_xmit_errors: rep.veth.map(|v| v.xdp_xmit_errors),
        gen_unaccounted: rep.unaccounted(),
        forwarded,
        forwarded_bytes: s1.test_bytes.saturating_sub(s0.test_bytes),
        switch_drops,
        switch_rx,
        switch_tx,
        egress_dropped,
        drop_reasons,
        sink_other: s1.other_frames.saturating_sub(s0.other_frames),
        reordered: s1.late.saturating_sub(s0.late),
        latency_lost: s1.latency_lost.saturating_sub(s0.latency_lost),
        switch_cycles_per_packet: switch_cycles,
        core_cycles_per_packet: if sw.is_some() { per(core_cycles) } else { None },
        latency_ns,
        latency_cdf,
        rss_kib: rss0.zip(rss1).map(|(a, b)| [a, b]),
        config_changes,
    })
}
