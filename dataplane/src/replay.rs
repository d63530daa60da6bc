//! `vswitch replay`: the real pipeline run offline over pcap files.
//!
//! Inputs are merged in timestamp order across files (ties: in the order the inputs are
//! given, then file order) and switched one frame at a time with the pcap timestamp as
//! the clock, so aging is testable. Every port gets an output file `DIR/PORT.pcap` with
//! the frames it sent, in order, stamped with the time of the frame that caused them.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;

use crate::config::{Config, PortIdx};
use crate::counters::Counters;
use crate::offline::{OfflineError, OfflineSwitch};

/// One `--input PORT=FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The port's name in the configuration.
    pub port: String,
    /// A pcap or pcapng file of Ethernet frames.
    pub path: PathBuf,
}

impl std::str::FromStr for Input {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (port, path) = s
            .split_once('=')
            .ok_or_else(|| format!("expected PORT=FILE.pcap, got {s:?}"))?;
        if port.is_empty() || path.is_empty() {
            return Err(format!("expected PORT=FILE.pcap, got {s:?}"));
        }
        Ok(Input {
            port: port.to_string(),
            path: PathBuf::from(path),
        })
    }
}

/// Replay failures.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input names a port the configuration does not have.
    #[error("--input {0}: no port named {0:?} in the configuration")]
    UnknownPort(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A capture could not be parsed.
    #[error("{path}: {message}")]
    Pcap {
        /// The file.
        path: PathBuf,
        /// What the pcap reader said.
        message: String,
    },
    /// The switch could not be built.
    #[error(transparent)]
    Switch(#[from] OfflineError),
}

/// A frame read from an input.
#[derive(Debug)]
struct InFrame {
    ts: Duration,
    input: usize,
    seq: usize,
    data: Vec<u8>,
}

/// What a replay did.
#[derive(Debug)]
pub struct Report {
    /// Frames read from the inputs.
    pub frames_in: u64,
    /// Frames written, per port name.
    pub frames_out: Vec<(String, u64)>,
    /// The pipeline's counters at the end.
    pub counters: Counters,
}

fn read_frames(path: &Path, input: usize, out: &mut Vec<InFrame>) -> Result<(), ReplayError> {
    let io = |source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    };
    let pcap_err = |e: pcap_file::PcapError| ReplayError::Pcap {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| BufReader::new(f).read_to_end(&mut bytes))
        .map_err(io)?;
    let magic = bytes.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
    if magic == Some([0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = PcapNgReader::new(&bytes[..]).map_err(pcap_err)?;
        while let Some(block) = r.next_block() {
            if let Block::EnhancedPacket(p) = block.map_err(pcap_err)? {
                out.push(InFrame {
                    ts: p.timestamp,
                    input,
                    seq: out.len(),
                    data: p.data.into_owned(),
                });
            }
        }
    } else {
        let mut r = PcapReader::new(&bytes[..]).map_err(pcap_err)?;
        if r.header().datalink != DataLink::ETHERNET {
            return Err(ReplayError::Pcap {
                path: path.to_path_buf(),
                message: format!("link type {:?} is not Ethernet", r.header().datalink),
            });
        }
        while let Some(p) = r.next_packet() {
            let p = p.map_err(pcap_err)?;
            out.push(InFrame {
                ts: p.timestamp,
                input,
                seq: out.len(),
                data: p.data.into_owned(),
            });
        }
    }
    Ok(())
}

/// Reads a pcap or pcapng file: (timestamp in ns, frame) in file order.
pub fn read_pcap(path: &Path) -> Result<Vec<(u64, Vec<u8>)>, ReplayError> {
    let mut frames = Vec::new();
    read_frames(path, 0, &mut frames)?;
    Ok(frames
        .into_iter()
        .map(|f| (u64::try_from(f.ts.as_nanos()).unwrap_or(u64::MAX), f.data))
        .collect())
}

/// Replays `inputs` through a switch built from `config`, writing `out_dir/PORT.pcap`
/// for every port.
pub fn replay(config: Config, inputs: &[Input], out_dir: &Path) -> Result<Report, ReplayError> {
    let mut frames = Vec::new();
    let mut ports = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let p = config
            .port_by_name(&input.port)
            .ok_or_else(|| ReplayError::UnknownPort(input.port.clone()))?;
        ports.push(p);
        read_frames(&input.path, i, &mut frames)?;
    }
    frames.sort_by_key(|f| (f.ts, f.input, f.seq));

    std::fs::create_dir_all(out_dir).map_err(|source| ReplayError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let names: Vec<String> = config.ports.iter().map(|p| p.name.clone()).collect();
    let mut writers = Vec::with_capacity(names.len());
    for name in &names {
        let path = out_dir.join(format!("{name}.pcap"));
        let file = File::create(&path).map_err(|source| ReplayError::Io {
            path: path.clone(),
            source,
        })?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..Default::default()
        };
        let w = PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| {
            ReplayError::Pcap {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        writers.push((path, w, 0u64));
    }

    let mut sw = OfflineSwitch::new(config)?;
    for f in &frames {
        let now = u64::try_from(f.ts.as_nanos()).unwrap_or(u64::MAX);
        let out = sw.inject(ports[f.input], &f.data, now);
        for (PortIdx(p), data) in out.sent {
            let Some((path, w, count)) = writers.get_mut(usize::from(p)) else {
                continue;
            };
            let pkt = PcapPacket::new(f.ts, data.len() as u32, &data);
            w.write_packet(&pkt).map_err(|e| ReplayError::Pcap {
                path: path.clone(),
                message: e.to_string(),
            })?;
            *count += 1;
        }
    }
    let mut frames_out = Vec::with_capacity(writers.len());
    for ((path, w, count), name) in writers.into_iter().zip(names) {
        let mut inner = w.into_writer();
        std::io::Write::flush(&mut inner).map_err(|source| ReplayError::Io { path, source })?;
        frames_out.push((name, count));
    }
    Ok(Report {
        frames_in: frames.len() as u64,
        frames_out,
        counters: sw.pipeline().counters().clone(),
    })
}
