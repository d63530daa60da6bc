//! `vswitch-bench`: benchmark harnesses that drive the real switch.
//!
//! - `vswitch-bench pipeline`: the switching pipeline over in-memory ports, per worker,
//!   next to a null pipeline measured in the same run ([`pipeline`]).
//! - `vswitch-bench wire`: switches under test (vswitch with and without its XDP fast
//!   path, its forward-only mode, the Linux bridge, Open vSwitch, a bare XDP redirect) on
//!   veth pairs between a BPF generator and an XDP sink ([`wire`]).

mod pipeline;

use vswitch_bench::wire;

use clap::{Parser, Subcommand};

/// vswitch benchmarks.
#[derive(Debug, Parser)]
#[command(name = "vswitch-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The switching pipeline in Mpps and ns/frame per worker, with a null pipeline
    /// (read the header, move the descriptor) measured in the same run.
    Pipeline(pipeline::Args),
    /// Switches under test (vswitch with and without its XDP fast path, its forward-only
    /// mode, the Linux bridge, Open vSwitch, a bare XDP redirect) between a generator and
    /// a sink on veth pairs in network namespaces.
    Wire(Box<wire::Args>),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pipeline(args) => pipeline::main(args),
        Command::Wire(args) => wire::main(*args),
    }
}
