//! `vswitch-bench`: benchmark harnesses that drive the real switch.
//!
//! - `vswitch-bench pipeline`: the switching pipeline over in-memory ports, per worker,
//!   next to a null pipeline measured in the same run ([`pipeline`]).

mod pipeline;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pipeline(args) => pipeline::main(args),
    }
}
