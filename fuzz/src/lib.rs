//! Harnesses of the vswitch fuzz targets.
//!
//! Each target in `fuzz_targets/` is a thin `fuzz_target!` wrapper around one `run`
//! function here, so that the seed generator (`examples/gen_seeds.rs`) and the corpus
//! replay test (`cargo test`) execute exactly what libFuzzer executes:
//!
//! - [`parse::run`]: any bytes through `encap::parse`, every header view and every
//!   Repr's parse → emit → parse round trip.
//! - [`decap::run`]: any bytes through `decap_vxlan` / `decap_gre`, checking what a
//!   success returns against the bytes and what an error leaves behind.
//! - [`ops::run`]: a structured sequence of VLAN push/pop/translate and VXLAN/GRE
//!   encap/decap on one frame, checking every operation against its inverse.
//!
//! The harnesses assert; a failed assertion is a bug in `encap` (or here).

pub mod check;
pub mod decap;
pub mod ops;
pub mod parse;

use encap::Frame;

/// Filler written into headroom and tailroom, so that bytes an operation takes from
/// them (instead of writing) are recognisable.
pub const FILL: u8 = 0xa5;

/// `bytes` in a fresh buffer with `head` bytes of headroom and `tail` bytes of
/// tailroom, both filled with [`FILL`].
pub fn framed(bytes: &[u8], head: usize, tail: usize) -> Frame<Vec<u8>> {
    let mut buf = vec![FILL; head + bytes.len() + tail];
    buf[head..head + bytes.len()].copy_from_slice(bytes);
    match Frame::new(buf, head, bytes.len()) {
        Ok(f) => f,
        Err(e) => panic!("Frame::new refused a frame that fits its buffer: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed seed through its harness, without libFuzzer (`cargo test`).
    fn replay(target: &str, run: impl Fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("corpus dir") {
            let path = e.expect("dir entry").path();
            let data = std::fs::read(&path).expect("seed");
            eprintln!("{target}: {}", path.display());
            run(&data);
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn replay_parse_corpus() {
        replay("parse", crate::parse::run);
    }

    #[test]
    fn replay_decap_corpus() {
        replay("decap", crate::decap::run);
    }

    #[test]
    fn replay_ops_corpus() {
        replay("ops", |data| {
            if let Ok(input) = crate::ops::Input::decode(data) {
                crate::ops::run(&input);
            }
        });
    }
}
