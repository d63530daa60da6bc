//! `vswitch`: the virtual switch's command line.
//!
//! Logs are `tracing` events on stderr, filtered by `--log-level`, else `VSWITCH_LOG`,
//! else `RUST_LOG` (both take `tracing-subscriber` filter directives such as
//! `info,dataplane::xsk=debug`), else `info`. What a command prints for its user
//! (`ctl` replies, `trace`, `check-config`, `demo`, the `replay` summary) is output,
//! not logs, and is printed as before.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use dataplane::capture::Filter;
use dataplane::config::{Config, DEFAULT_CONTROL_SOCKET};
use dataplane::control::proto::{NetworkSpec, PairSpec, PortSpec, Request, Response};
use dataplane::offline::OfflineSwitch;
use dataplane::replay::{self, Input};
use encap::MacAddr;

#[derive(Debug, Parser)]
#[command(
    name = "vswitch",
    version,
    about = "Userspace virtual switch for Neutron br-int/br-tun"
)]
struct Cli {
    /// Log level (default: VSWITCH_LOG or RUST_LOG filter directives, else info).
    #[arg(long, global = true, value_enum)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    const fn directive(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Environment variables read for log filter directives, in order.
const LOG_ENV: [&str; 2] = ["VSWITCH_LOG", "RUST_LOG"];

/// Installs the stderr log subscriber: `--log-level`, else the first of [`LOG_ENV`]
/// that is set and not empty, else `info`. Colours only on a terminal (a log file or
/// the journal gets plain text).
fn init_logs(level: Option<LogLevel>) -> Result<()> {
    let (directives, from) = match level {
        Some(l) => (l.directive().to_owned(), "--log-level"),
        None => LOG_ENV
            .iter()
            .find_map(|&v| {
                std::env::var(v)
                    .ok()
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| (s, v))
            })
            .unwrap_or_else(|| ("info".to_owned(), "the default")),
    };
    let filter = EnvFilter::builder().parse(&directives).with_context(|| {
        format!("{from}: {directives:?} is not a log filter (e.g. info, or info,dataplane=debug)")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Switch a small two-tenant cloud in memory and show what happens (no netdevs needed).
    Demo,
    /// Validate a configuration and print it resolved (local VLANs allocated, defaults explicit).
    CheckConfig {
        /// The configuration file.
        config: PathBuf,
    },
    /// Run the real pipeline offline over pcap files; write DIR/PORT.pcap for every port.
    Replay {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// PORT=FILE.pcap: frames received on PORT (repeatable; ties in time go in this order).
        #[arg(long = "input", required = true)]
        inputs: Vec<Input>,
        /// Where to write one pcap per port.
        #[arg(long)]
        output_dir: PathBuf,
    },
    /// Show what the pipeline does with a frame, stage by stage.
    Trace {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The ingress port's name.
        #[arg(long)]
        port: String,
        /// The frame as hex (spaces and colons allowed).
        #[arg(long, conflicts_with = "pcap", required_unless_present = "pcap")]
        frame: Option<String>,
        /// Trace every frame of this pcap in order (each learns as the switch would).
        #[arg(long)]
        pcap: Option<PathBuf>,
    },
    /// Run the switch on its netdevs (AF_XDP) in the foreground; SIGINT/SIGTERM stop it,
    /// SIGHUP reloads the configuration file (as `vswitch ctl reload`).
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Cores to pin the workers to, in worker order (default: the last `workers` cores).
        #[arg(long, value_delimiter = ',')]
        cores: Vec<usize>,
        /// Forward-only ("null") mode: each worker moves every received burst from port
        /// 2i to port 2i+1 and back (ports in configuration order), with no switching;
        /// the same as `[switch] forward_only = true`.
        #[arg(long)]
        forward_only: bool,
        /// The XDP fast path on (the same as `[switch] fastpath = true`).
        #[arg(long, conflicts_with = "no_fastpath")]
        fastpath: bool,
        /// No XDP fast path: every frame goes to the workers (the same as
        /// `[switch] fastpath = false`).
        #[arg(long)]
        no_fastpath: bool,
    },
    /// Inspect or change a running switch through its control socket.
    Ctl(CtlArgs),
}

#[derive(Debug, clap::Args)]
struct CtlArgs {
    /// The control socket.
    #[arg(long, global = true, default_value = DEFAULT_CONTROL_SOCKET)]
    socket: PathBuf,
    /// Print the switch's JSON response instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: CtlCmd,
}

#[derive(Debug, Subcommand)]
enum CtlCmd {
    /// Ports (mode, networks, link, XDP mode), networks, local VLANs, the underlay.
    Show,
    /// The MAC table.
    Fdb {
        #[command(subcommand)]
        cmd: FdbCmd,
    },
    /// Counters: per port, drops by reason, per worker (cycles, flow-cache hit rate).
    Stats,
    /// The underlay neighbour cache.
    Neigh {
        #[command(subcommand)]
        cmd: NeighCmd,
    },
    /// The XDP fast path: counters and flow entries.
    Fastpath {
        #[command(subcommand)]
        cmd: FastpathCmd,
    },
    /// Add or remove a [[port]].
    Port {
        #[command(subcommand)]
        cmd: PortCmd,
    },
    /// Add or remove a [[network]].
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Read the configuration file again and apply it (a refused file changes nothing).
    Reload,
    /// Capture a port's frames to a pcap file while it forwards; Ctrl-C stops.
    Capture(CaptureArgs),
}

#[derive(Debug, clap::Args)]
struct CaptureArgs {
    /// The port's name.
    port: String,
    /// Stop after N frames.
    #[arg(long, short = 'c', value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Only frames received on the port (in) or sent on it (out); default both.
    #[arg(long, value_enum)]
    filter: Option<FilterArg>,
    /// Bytes kept of each frame.
    #[arg(long, short = 's', default_value_t = dataplane::capture::DEFAULT_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(dataplane::capture::MAX_SNAPLEN)))]
    snaplen: u32,
    /// Records per worker ring (frames a worker can hold before the reader catches up).
    #[arg(long, value_parser = clap::value_parser!(u32).range(
        i64::from(dataplane::capture::MIN_RING)..=i64::from(dataplane::capture::MAX_RING)))]
    ring: Option<u32>,
    /// The pcap file to write (nanosecond timestamps, Ethernet), or `-` for stdout.
    #[arg(short = 'w', long = "write")]
    write: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FilterArg {
    /// Received on the port, before any rewrite.
    In,
    /// Sent on the port, after VLAN and tunnel rewrites.
    Out,
}

#[derive(Debug, Subcommand)]
enum FdbCmd {
    /// MAC, network, port or VTEP, age, static/learned.
    Show {
        /// Only this network.
        #[arg(long)]
        network: Option<String>,
    },
    /// Remove learned entries (all, or of a network and/or a port).
    Flush {
        /// Only this network.
        #[arg(long)]
        network: Option<String>,
        /// Only this port (a port name or a remote VTEP address).
        #[arg(long)]
        port: Option<String>,
    },
    /// Add (or re-point) a static entry.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["port", "remote"])))]
    Add {
        /// The network.
        #[arg(long)]
        network: String,
        /// The MAC address.
        #[arg(long)]
        mac: String,
        /// A local port carrying the network.
        #[arg(long)]
        port: Option<String>,
        /// A remote VTEP (vxlan/gre networks).
        #[arg(long)]
        remote: Option<String>,
    },
    /// Remove a static entry.
    Del {
        /// The network.
        #[arg(long)]
        network: String,
        /// The MAC address.
        #[arg(long)]
        mac: String,
    },
}

#[derive(Debug, Subcommand)]
enum FastpathCmd {
    /// Counters, then every flow entry: ports, destination, rewrite, valid, idle.
    Show,
}

#[derive(Debug, Subcommand)]
enum NeighCmd {
    /// IP, MAC, state, age, frames waiting.
    Show,
}

#[derive(Debug, Subcommand)]
enum PortCmd {
    /// Add a port: `--network N` (access) or `--vlan VID=N... [--native N]` (trunk).
    Add {
        /// Its name.
        name: String,
        /// The netdev.
        #[arg(long)]
        ifname: Option<String>,
        /// access or trunk (default: trunk when --vlan or --native is given).
        #[arg(long)]
        mode: Option<String>,
        /// Access port: its network.
        #[arg(long)]
        network: Option<String>,
        /// Trunk: VID=NETWORK (repeatable).
        #[arg(long = "vlan")]
        vlans: Vec<String>,
        /// Trunk: the network of untagged frames.
        #[arg(long)]
        native: Option<String>,
        /// Port security: the VM's MAC (only it, and the allowed pairs, may send).
        #[arg(long)]
        mac: Option<String>,
        /// Port security: an address of the VM (repeatable; with --mac).
        #[arg(long = "ip")]
        ips: Vec<String>,
        /// Port security: an allowed address pair, IP[/LEN][,MAC] (repeatable; with --mac).
        #[arg(long = "allowed-pair")]
        allowed_pairs: Vec<String>,
        /// Storm control: flooded frames per second from this port (0 = no limit).
        #[arg(long)]
        storm_control_pps: Option<u32>,
    },
    /// Remove a port (and the static entries on it).
    Del {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum NetworkCmd {
    /// Add a network.
    Add {
        /// Its name.
        name: String,
        /// local, flat, vlan, vxlan or gre.
        #[arg(long)]
        segment: String,
        /// Provider VID (vlan), VNI (vxlan) or key (gre).
        #[arg(long)]
        id: Option<i64>,
        /// The physical network (flat, vlan).
        #[arg(long)]
        physnet: Option<String>,
        /// Its local VLAN (allocated when omitted).
        #[arg(long)]
        local_vlan: Option<i64>,
        /// A remote VTEP of the flood list (repeatable; vxlan, gre).
        #[arg(long = "remote-vtep")]
        remote_vteps: Vec<String>,
        /// Learned entries in the network (0 = no limit).
        #[arg(long)]
        mac_limit: Option<u32>,
    },
    /// Remove a network (refused while a port carries it).
    Del {
        /// Its name.
        name: String,
    },
}

fn ctl_request(cmd: CtlCmd) -> Result<Request> {
    Ok(match cmd {
        CtlCmd::Capture(a) => Request::Capture {
            port: a.port,
            filter: match a.filter {
                None => Filter::Both,
                Some(FilterArg::In) => Filter::In,
                Some(FilterArg::Out) => Filter::Out,
            },
            snaplen: Some(a.snaplen),
            count: a.count,
            ring: a.ring,
        },
        CtlCmd::Show => Request::Show {},
        CtlCmd::Stats => Request::Stats {},
        CtlCmd::Reload => Request::Reload {},
        CtlCmd::Neigh {
            cmd: NeighCmd::Show,
        } => Request::NeighShow {},
        CtlCmd::Fastpath {
            cmd: FastpathCmd::Show,
        } => Request::FastpathShow {},
        CtlCmd::Fdb { cmd } => match cmd {
            FdbCmd::Show { network } => Request::FdbShow { network },
            FdbCmd::Flush { network, port } => Request::FdbFlush { network, port },
            FdbCmd::Add {
                network,
                mac,
                port,
                remote,
            } => Request::FdbAdd {
                network,
                mac,
                port,
                remote,
            },
            FdbCmd::Del { network, mac } => Request::FdbDel { network, mac },
        },
        CtlCmd::Port { cmd } => match cmd {
            PortCmd::Add {
                name,
                ifname,
                mode,
                network,
                vlans,
                native,
                mac,
                ips,
                allowed_pairs,
                storm_control_pps,
            } => {
                let trunk = !vlans.is_empty() || native.is_some();
                let mode = mode.unwrap_or_else(|| if trunk { "trunk" } else { "access" }.into());
                let vlans = if vlans.is_empty() {
                    None
                } else {
                    let mut map = std::collections::BTreeMap::new();
                    for v in vlans {
                        let Some((vid, net)) = v.split_once('=') else {
                            bail!("--vlan {v:?}: expected VID=NETWORK, e.g. --vlan 10=net-a");
                        };
                        map.insert(vid.trim().to_owned(), net.trim().to_owned());
                    }
                    Some(map)
                };
                let allowed_pairs = (!allowed_pairs.is_empty()).then(|| {
                    allowed_pairs
                        .iter()
                        .map(|p| match p.split_once(',') {
                            Some((ip, mac)) => PairSpec {
                                mac: Some(mac.trim().to_owned()),
                                ip: ip.trim().to_owned(),
                            },
                            None => PairSpec {
                                mac: None,
                                ip: p.trim().to_owned(),
                            },
                        })
                        .collect()
                });
                Request::PortAdd(PortSpec {
                    name,
                    ifname,
                    mode,
                    network,
                    vlans,
                    native,
                    mac,
                    ips: (!ips.is_empty()).then_some(ips),
                    allowed_pairs,
                    storm_control_pps,
                })
            }
            PortCmd::Del { name } => Request::PortDel { name },
        },
        CtlCmd::Network { cmd } => match cmd {
            NetworkCmd::Add {
                name,
                segment,
                id,
                physnet,
                local_vlan,
                remote_vteps,
                mac_limit,
            } => Request::NetworkAdd(NetworkSpec {
                name,
                segment,
                local_vlan,
                id,
                physnet,
                remote_vteps: (!remote_vteps.is_empty()).then_some(remote_vteps),
                mac_limit,
            }),
            NetworkCmd::Del { name } => Request::NetworkDel { name },
        },
    })
}

/// `vswitch ctl`: prints the reply; the switch's refusal is an error (exit 1).
fn ctl(args: CtlArgs) -> Result<()> {
    if let CtlCmd::Capture(a) = &args.cmd {
        let (write, snaplen) = (a.write.clone(), a.snaplen);
        let request = ctl_request(args.cmd)?;
        return capture(&args.socket, &request, &write, snaplen, args.json);
    }
    let request = ctl_request(args.cmd)?;
    let response = dataplane::control::client::call(&args.socket, &request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    }
    match response {
        Response::Ok { reply } => {
            if !args.json {
                print!("{}", dataplane::control::format::reply(&reply));
            }
            Ok(())
        }
        Response::Error { error } => bail!("{} ({})", error.message, error.kind.as_str()),
    }
}

/// The pcap's destination, shared by the pcap writer and the loop that flushes it.
#[derive(Clone)]
struct SharedOut(std::rc::Rc<std::cell::RefCell<Box<dyn std::io::Write>>>);

impl std::io::Write for SharedOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().write(b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// How long a stopped capture waits for the switch's last frames and end record.
const CAPTURE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `vswitch ctl capture`: writes the frames the switch streams as a pcap file (or to
/// stdout, flushed per frame; a file is flushed whenever the stream pauses), until the
/// count, Ctrl-C (a second one quits at once), or the end of the port; then a summary
/// on stderr (with `--json`, also the start reply and the end record as JSON).
fn capture(
    socket: &std::path::Path,
    request: &Request,
    write: &std::path::Path,
    snaplen: u32,
    json: bool,
) -> Result<()> {
    use dataplane::control::client::{CaptureStream, ClientError};
    use dataplane::control::proto::{CaptureItem, Reply};
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, PcapError, TsResolution};
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal, once the flag is set, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .with_context(|| format!("registering signal {sig}"))?;
    }
    let (mut stream, response) = CaptureStream::open(socket, request)?;
    let started = match response {
        Response::Ok {
            reply: Reply::Capture(c),
        } => c,
        Response::Ok { reply } => bail!("unexpected reply to capture: {reply:?}"),
        Response::Error { error } => bail!("{} ({})", error.message, error.kind.as_str()),
    };
    // The output is opened once the switch has accepted: a refused capture leaves no file.
    let to_stdout = write.as_os_str() == "-";
    let out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        let f = std::fs::File::create(write)
            .with_context(|| format!("creating {}", write.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    let out = SharedOut(std::rc::Rc::new(std::cell::RefCell::new(out)));
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        snaplen,
        ts_resolution: TsResolution::NanoSecond,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(out.clone(), header).context("writing the pcap header")?;
    // The header at once: a reader sees a valid (empty) capture from the start.
    out.clone()
        .flush()
        .with_context(|| format!("writing {}", write.display()))?;
    eprint!(
        "vswitch: {}",
        dataplane::control::format::reply(&Reply::Capture(started.clone()))
    );
    let broken = |e: &PcapError| matches!(e, PcapError::IoError(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
    let mut written = 0u64;
    let mut give_up: Option<Instant> = None;
    let end = loop {
        if stop.load(Ordering::Relaxed) && give_up.is_none() {
            stream.stop();
            give_up = Some(Instant::now() + CAPTURE_STOP_WAIT);
        }
        if give_up.is_some_and(|t| Instant::now() > t) {
            break None;
        }
        match stream.recv() {
            Ok(Some(CaptureItem::Frame(f))) => {
                if started.count.is_some_and(|c| written >= c) {
                    continue;
                }
                let pkt = PcapPacket::new(Duration::from_nanos(f.ts_unix_ns), f.orig_len, &f.data);
                let r = w.write_packet(&pkt).map(|_| ()).and_then(|()| {
                    if to_stdout {
                        out.clone().flush().map_err(PcapError::IoError)
                    } else {
                        Ok(())
                    }
                });
                match r {
                    Ok(()) => written += 1,
                    // The reader of stdout is gone (`| head`): stop quietly.
                    Err(e) if broken(&e) => {
                        stop.store(true, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e).context(format!("writing {}", write.display())),
                }
            }
            Ok(Some(CaptureItem::End(e))) => break Some(e),
            // Quiet for a moment: what was written reaches the file.
            Ok(None) => match out.clone().flush() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    stop.store(true, Ordering::Relaxed);
                }
                r => r.with_context(|| format!("writing {}", write.display()))?,
            },
            // The switch stopped without an end record.
            Err(ClientError::Closed(_)) => break None,
            Err(e) => return Err(e.into()),
        }
    };
    drop(w);
    match out.clone().flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.with_context(|| format!("writing {}", write.display()))?,
    }
    if json {
        // The start reply and the end record, as the switch sent them (on stderr: stdout
        // may be the pcap).
        eprintln!("{}", serde_json::to_string(&started)?);
        if let Some(e) = &end {
            eprintln!("{}", serde_json::to_string(e)?);
        }
    }
    match end {
        Some(e) => eprintln!(
            "vswitch: {written} frame(s) captured on {}, {} not captured by the switch              (capture_dropped: ring full){}",
            started.port,
            e.capture_dropped,
            match e.reason {
                dataplane::control::proto::CaptureEndReason::Closed => {
                    "; the port was removed or the switch stopped"
                }
                _ => "",
            }
        ),
        None => eprintln!(
            "vswitch: {written} frame(s) captured on {}; the switch sent no summary",
            started.port
        ),
    }
    Ok(())
}

fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if digits.len() % 2 != 0 {
        bail!("--frame: odd number of hex digits");
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .with_context(|| format!("--frame: {:?} is not hex", &digits[i..i + 2]))
        })
        .collect()
}

/// The cores the workers are pinned to: `--cores`, or the last `workers` cores this
/// process may run on.
fn worker_cores(workers: usize, given: Vec<usize>) -> Result<Vec<usize>> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if !given.is_empty() {
        if given.len() != workers {
            bail!(
                "--cores names {} core(s) for {workers} worker(s): give one core per worker",
                given.len()
            );
        }
        if let Some(c) = given
            .iter()
            .find(|c| !allowed.is_empty() && !allowed.contains(c))
        {
            bail!("--cores: core {c} is not available to this process (allowed: {allowed:?})");
        }
        return Ok(given);
    }
    if allowed.len() < workers {
        bail!(
            "{workers} workers but only {} core(s) available: lower [switch] workers or give --cores",
            allowed.len()
        );
    }
    Ok(allowed[allowed.len() - workers..].to_vec())
}

/// Moves this thread (start-up, the control socket, port changes), and the threads it
/// starts before pinning their own, off the workers' cores where other cores are
/// allowed: a poll-mode worker's core is its own, and a control thread scheduled there
/// would stall it for a time slice (the workers pin themselves to their cores). Logged;
/// best effort.
fn keep_off_worker_cores(workers: &[usize]) {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let others: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .filter(|c| !workers.contains(c))
        .collect();
    if others.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for &c in &others {
        if set.set(c).is_err() {
            return;
        }
    }
    match sched_setaffinity(Pid::from_raw(0), &set) {
        Ok(()) => info!(
            control_cores = ?others,
            worker_cores = ?workers,
            "control and housekeeping on cores {others:?}, workers on {workers:?}"
        ),
        Err(e) => warn!(
            error = %e,
            "could not keep housekeeping off the workers' cores: {e}"
        ),
    }
}

/// What `vswitch run` adds to the file's configuration, at start and at each reload:
/// `--forward-only`, `--no-fastpath`, and the underlay's `local_mac` from its netdev when the file
/// leaves it out. Returns the MAC read and its netdev, if one was.
fn complete(cfg: &mut Config, flags: RunFlags) -> Result<Option<(MacAddr, String)>> {
    cfg.switch.forward_only |= flags.forward_only;
    cfg.switch.fastpath = (cfg.switch.fastpath || flags.fastpath) && !flags.no_fastpath;
    let underlay_if = cfg.underlay.as_ref().and_then(|u| {
        u.local_mac
            .is_none()
            .then(|| cfg.port(u.port).and_then(|p| p.ifname.clone()))
            .flatten()
    });
    let (Some(ifname), Some(u)) = (underlay_if, cfg.underlay.as_mut()) else {
        return Ok(None);
    };
    let mac = dataplane::xsk::netdev_mac(&ifname)
        .with_context(|| format!("underlay: reading the MAC address of {ifname}"))?;
    u.local_mac = Some(mac);
    Ok(Some((mac, ifname)))
}

/// Reloads the configuration after a SIGHUP, as `ctl reload` does, and logs the outcome.
fn reload_on_sighup(switch: &mut dataplane::runtime::Switch) {
    match dataplane::control::handle(switch, Request::Reload {}) {
        Response::Ok { reply } => {
            let what = dataplane::control::format::reply(&reply);
            info!("SIGHUP: {}", what.trim_end());
        }
        Response::Error { error } => warn!(
            kind = error.kind.as_str(),
            "SIGHUP: reload refused, nothing changed: {}", error.message
        ),
    }
}

/// `vswitch run`: opens the ports, starts the workers, serves the control socket in
/// this thread until SIGINT/SIGTERM (reloading the file on SIGHUP), then stops
/// everything (programs detached, socket removed).
/// `vswitch run`'s flags that override the file's configuration.
#[derive(Debug, Clone, Copy)]
struct RunFlags {
    forward_only: bool,
    fastpath: bool,
    no_fastpath: bool,
}

fn run_switch(config: PathBuf, cores: Vec<usize>, flags: RunFlags) -> Result<()> {
    use dataplane::metrics::{scrape_control, MetricsServer};
    use dataplane::runtime::{StartOptions, Switch};
    use dataplane::xsk::XskBackend;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    // First: a SIGHUP from now on sets a flag the control loop checks (the default
    // action would end the process).
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("registering SIGHUP")?;
    let mut cfg = Config::from_file(&config)?;
    let cores = worker_cores(cfg.switch.workers, cores)?;
    keep_off_worker_cores(&cores);
    if let Some((mac, ifname)) = complete(&mut cfg, flags)? {
        info!(%mac, %ifname, "underlay local_mac {mac} (from {ifname})");
    }
    XskBackend::check(&cfg)?;
    // Fail before opening anything if another vswitch answers on the socket.
    let server = dataplane::control::ControlServer::bind(&cfg.switch.control_socket)?;
    // The same for the metrics port (leaving no socket file behind).
    let metrics = match cfg.metrics.listen.map(MetricsServer::bind).transpose() {
        Ok(m) => m,
        Err(e) => {
            server.close();
            return Err(e.into());
        }
    };
    let backend = Arc::new(XskBackend::default());
    let mut switch = Switch::start(
        cfg,
        Arc::clone(&backend),
        &StartOptions {
            cores: cores.clone(),
        },
    )?;
    for p in backend.opened() {
        info!(
            port = %p.name,
            ifname = %p.ifname,
            xdp_mode = %p.mode,
            "port {} on {}: AF_XDP, XDP {} mode{}",
            p.name,
            p.ifname,
            p.mode,
            if p.replaced_stale {
                " (replaced a stale XDP program left by a crashed run)"
            } else {
                ""
            }
        );
    }
    switch.set_completion(Box::new(move |c: &mut Config| {
        complete(c, flags).map(drop).map_err(|e| format!("{e:#}"))
    }));
    let stop = switch.stop_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .with_context(|| format!("registering signal {sig}"))?;
    }
    let (mut handle, queue) = server.start()?;
    let mut metrics = match metrics {
        Some(m) => {
            let m = m.start(scrape_control(handle.local_client()))?;
            info!(
                listen = %m.local_addr(),
                "metrics on http://{}/metrics",
                m.local_addr()
            );
            Some(m)
        }
        None => None,
    };
    if switch.forward_only() {
        let names: Vec<&str> = switch
            .config()
            .ports
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let pairs: Vec<String> = names
            .chunks(2)
            .map(|c| match c {
                [a, b] => format!("{a}<->{b}"),
                [a] => format!("{a} (no peer: dropped)"),
                _ => String::new(),
            })
            .collect();
        info!("forward-only mode, no switching: {}", pairs.join(", "));
    } else if switch.fastpath().is_some() {
        info!("XDP fast path on: established unicast flows are forwarded in the kernel");
    } else {
        info!("XDP fast path off: the workers forward every frame");
    }
    info!(
        workers = cores.len(),
        cores = ?cores,
        control_socket = %handle.path().display(),
        "running, {} worker(s) on cores {cores:?}, control socket {}",
        cores.len(),
        handle.path().display()
    );
    while !switch.stopping() {
        queue.serve_timeout(&mut switch, Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            reload_on_sighup(&mut switch);
        }
    }
    info!("stopping");
    if let Some(m) = metrics.as_mut() {
        m.shutdown();
    }
    handle.shutdown();
    switch.shutdown();
    drop(backend);
    info!("stopped (XDP programs detached, control socket removed)");
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run {
            config,
            cores,
            forward_only,
            fastpath,
            no_fastpath,
        } => run_switch(
            config,
            cores,
            RunFlags {
                forward_only,
                fastpath,
                no_fastpath,
            },
        )?,
        Cmd::Ctl(args) => ctl(args)?,
        Cmd::Demo => print!("{}", dataplane::demo::run()?),
        Cmd::CheckConfig { config } => {
            let cfg = Config::from_file(&config)?;
            print!("{}", cfg.render());
        }
        Cmd::Replay {
            config,
            inputs,
            output_dir,
        } => {
            let cfg = Config::from_file(&config)?;
            let report = replay::replay(cfg, &inputs, &output_dir)?;
            eprintln!("replayed {} frames", report.frames_in);
            for (port, n) in &report.frames_out {
                eprintln!(
                    "  {port}: {n} frames -> {}",
                    output_dir.join(format!("{port}.pcap")).display()
                );
            }
            let c = &report.counters;
            eprintln!(
                "  unicast {} flooded {} learned {} moves {} dropped {}",
                c.unicast,
                c.flooded,
                c.learned,
                c.moves,
                c.total_drops()
            );
            for r in dataplane::counters::DropReason::ALL {
                if c.dropped(r) > 0 {
                    eprintln!("    drop {r}: {}", c.dropped(r));
                }
            }
        }
        Cmd::Trace {
            config,
            port,
            frame,
            pcap,
        } => {
            let cfg = Config::from_file(&config)?;
            let p = cfg.port_by_name(&port).with_context(|| {
                format!("--port {port:?}: no such port in {}", config.display())
            })?;
            let mut sw = OfflineSwitch::new(cfg)?;
            let frames: Vec<(u64, Vec<u8>)> = match (frame, pcap) {
                (Some(hex), _) => vec![(0, parse_hex(&hex)?)],
                (None, Some(path)) => replay::read_pcap(&path)?,
                (None, None) => bail!("give --frame HEX or --pcap FILE"),
            };
            for (i, (now, f)) in frames.iter().enumerate() {
                if frames.len() > 1 {
                    println!("--- frame {} ---", i + 1);
                }
                print!("{}", dataplane::trace::trace(&mut sw, p, f, *now));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.cmd, Cmd::Run { .. });
    if daemon {
        // Before any thread exists: libxdp reads it when it loads a program, and its
        // multi-program dispatcher does not load on the kernels we run on.
        std::env::set_var("LIBXDP_SKIP_DISPATCHER", "1");
    }
    if let Err(e) = init_logs(cli.log_level) {
        eprintln!("vswitch: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The daemon's end is a log event; another command's error is its output.
        Err(e) if daemon => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("vswitch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
