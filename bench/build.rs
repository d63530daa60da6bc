//! Compiles the BPF programs of the wire benchmark (`bpf/*.bpf.c`: the traffic generator
//! and sink, and the `xdp-redirect` switch under test) into `OUT_DIR`, where `src/wire/`
//! embeds them with `include_bytes!` (`dataplane/bpf/compile.rs` says how).

include!("../dataplane/bpf/compile.rs");

fn main() {
    if let Err(e) = compile_bpf(
        &["gen", "sink", "redirect"],
        "traffic.h",
        "the wire benchmark's BPF programs need",
    ) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
