//! Compiles the XDP fast path (`bpf/fastpath.bpf.c`) into `OUT_DIR`, where
//! `src/fastpath/` embeds it with `include_bytes!` (`bpf/compile.rs` says how).

include!("bpf/compile.rs");

fn main() {
    if let Err(e) = compile_bpf(&["fastpath"], "fastpath.h", "the XDP fast path needs") {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
