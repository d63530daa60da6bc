//! Files and processes shared by the replay-based tests (`scenarios.rs`, `tunnels.rs`):
//! pcap reading and writing, scratch and golden directories, the `vswitch` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;

pub fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

pub fn bless() -> bool {
    std::env::var_os("VSWITCH_BLESS").is_some_and(|v| v == "1")
}

/// A fresh scratch directory for `name`.
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenarios")
        .join(name);
    if d.exists() {
        let _ = fs::remove_dir_all(&d);
    }
    fs::create_dir_all(&d).unwrap();
    d
}

/// Writes an Ethernet pcap (µs timestamps), with the header `vswitch replay` writes.
pub fn write_pcap(path: &Path, frames: &[(u64, Vec<u8>)]) {
    let file = fs::File::create(path).unwrap();
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::new(file), header).unwrap();
    for (t, f) in frames {
        let len = u32::try_from(f.len()).unwrap();
        w.write_packet(&PcapPacket::new(Duration::from_micros(*t), len, f))
            .unwrap();
    }
    w.into_writer().flush().unwrap();
}

/// Reads a pcap: (timestamp µs, frame), checking that nothing was truncated.
pub fn read_pcap(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapReader::new(file).unwrap();
    assert_eq!(
        r.header().datalink,
        DataLink::ETHERNET,
        "{}",
        path.display()
    );
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len(), "{}", path.display());
        v.push((
            u64::try_from(p.timestamp.as_micros()).unwrap(),
            p.data.into_owned(),
        ));
    }
    v
}

/// Runs the compiled `vswitch` binary.
pub fn vswitch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .output()
        .unwrap()
}
