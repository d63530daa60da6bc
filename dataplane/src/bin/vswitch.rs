//! `vswitch`: the virtual switch's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use dataplane::config::Config;
use dataplane::offline::OfflineSwitch;
use dataplane::replay::{self, Input};

#[derive(Debug, Parser)]
#[command(
    name = "vswitch",
    version,
    about = "Userspace virtual switch for Neutron br-int/br-tun"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
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

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vswitch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
