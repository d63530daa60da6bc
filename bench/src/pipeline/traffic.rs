//! What a profile is made of: the switch configuration (generated TOML, parsed by
//! [`Config::from_str`] like any file), the MACs to learn before measuring, and the
//! per-worker streams of frames, all generated before the timed loop.
//!
//! MACs are locally administered unicast addresses `02:SS:ii:ii:ii:ii`: `SS` is the side
//! (which port the host sits behind), `ii` its index. A *flow* is a (source, destination)
//! pair entering one port; flow `j` of a stream goes from host `j % N` of the source side
//! to host `(j + j / N) % N` of the destination side, so up to N² flows are distinct.
//! Workers take the flows `j ≡ w (mod W)`, as RSS would spread them over queues, in an
//! order shuffled once with a fixed seed.

use anyhow::{bail, Context, Result};
use dataplane::config::Config;

/// A profile of traffic and the switch it runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Known unicast, access port A to access port B (N hosts behind each).
    L2,
    /// Broadcast from one access port of a network with four.
    Flood,
    /// Access port to a trunk (tag push) and back (tag pop), half each.
    Trunk,
}

impl Profile {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::L2 => "l2",
            Profile::Flood => "flood",
            Profile::Trunk => "trunk",
        }
    }
}

/// VID of the network on the trunk (its local VLAN is 1: the translation is real).
pub const TRUNK_VID: u16 = 100;
/// Bytes of a frame's start that differ per flow or that a rewrite may change: the MACs
/// and the following four bytes (a tag, or the EtherType and two payload bytes).
pub const HDR_LEN: usize = 16;
/// A frame's first [`HDR_LEN`] bytes.
pub type Hdr = [u8; HDR_LEN];

const BROADCAST: [u8; 6] = [0xff; 6];

/// Hosts behind one port, learned before the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// Port index.
    pub port: u16,
    /// VID on the wire (trunk side), `None` untagged.
    pub vid: Option<u16>,
    /// MAC side byte.
    pub side: u8,
}

/// Where a stream's frames go.
#[derive(Debug, Clone, Copy)]
pub enum Dst {
    /// To the hosts of a side (known unicast once learned).
    Side(u8),
    /// To ff:ff:ff:ff:ff:ff.
    Broadcast,
}

/// Frames entering one port.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    /// Ingress port.
    pub port: u16,
    /// Where the null pipeline moves them (the port the switch sends unicast to).
    pub egress: u16,
    /// VID on the wire, `None` untagged.
    pub vid: Option<u16>,
    /// Source hosts' side.
    pub src_side: u8,
    /// Destinations.
    pub dst: Dst,
    /// Distinct flows in the stream (all workers).
    pub flows: u32,
    /// Whether the switch rewrites these frames (a tag pushed or popped).
    pub rewritten: bool,
}

/// A profile instantiated with its sizes.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Hosts per side.
    pub macs: u32,
    /// Frame size on the wire at ingress.
    pub frame_size: usize,
    /// The switch.
    pub config: Config,
    /// The generated TOML (shown with `--show-config`).
    pub toml: String,
    /// Hosts to learn before measuring.
    pub groups: Vec<Group>,
    /// The measured traffic.
    pub streams: Vec<StreamSpec>,
}

/// One worker's share of a stream, ready to send.
#[derive(Debug, Clone)]
pub struct Stream {
    /// Ingress port.
    pub port: u16,
    /// The null pipeline's egress port.
    pub egress: u16,
    /// Whether the switch rewrites these frames (a tag pushed or popped).
    pub rewritten: bool,
    /// A whole frame (the headers of the first flow).
    pub template: Vec<u8>,
    /// Per flow, in sending order: the first [`HDR_LEN`] bytes.
    pub hdrs: Vec<Hdr>,
}

/// A MAC of host `i` on side `side`.
pub fn mac(side: u8, i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, side, b[0], b[1], b[2], b[3]]
}

/// A frame of `size` bytes (at least 60) with EtherType IPv4 after the optional tag.
pub fn frame(dst: [u8; 6], src: [u8; 6], vid: Option<u16>, size: usize) -> Vec<u8> {
    let mut f = vec![0u8; size.max(60)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    let mut at = 12;
    if let Some(v) = vid {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&(v & 0xfff).to_be_bytes());
        at = 16;
    }
    f[at..at + 2].copy_from_slice(&0x0800u16.to_be_bytes());
    // A plausible IPv4 header start (version/IHL, then the total length): not parsed by
    // the switch, only there so that captures look sane.
    f[at + 2] = 0x45;
    let ip_len = (f.len() - at - 2) as u16;
    f[at + 4..at + 6].copy_from_slice(&ip_len.to_be_bytes());
    f
}

impl Spec {
    /// The switch and traffic of `profile` with `macs` hosts per side and `flows` flows in
    /// total, for `workers` workers.
    pub fn new(
        profile: Profile,
        macs: u32,
        flows: u32,
        frame_size: usize,
        workers: usize,
    ) -> Result<Spec> {
        if !(60..=1514).contains(&frame_size) {
            bail!("--frame-size {frame_size}: must be 60..=1514");
        }
        if macs == 0 || macs > 1 << 24 {
            bail!("--macs {macs}: must be 1..=16777216");
        }
        let (groups, streams, toml) = match profile {
            Profile::L2 => (
                vec![
                    Group {
                        port: 0,
                        vid: None,
                        side: 0xa,
                    },
                    Group {
                        port: 1,
                        vid: None,
                        side: 0xb,
                    },
                ],
                vec![StreamSpec {
                    port: 0,
                    egress: 1,
                    vid: None,
                    src_side: 0xa,
                    dst: Dst::Side(0xb),
                    flows,
                    rewritten: false,
                }],
                access_ports(&["a", "b"]),
            ),
            Profile::Flood => (
                vec![Group {
                    port: 0,
                    vid: None,
                    side: 0xa,
                }],
                vec![StreamSpec {
                    port: 0,
                    egress: 1,
                    vid: None,
                    src_side: 0xa,
                    dst: Dst::Broadcast,
                    flows,
                    rewritten: false,
                }],
                access_ports(&["p0", "p1", "p2", "p3"]),
            ),
            Profile::Trunk => {
                let half = flows / 2;
                (
                    vec![
                        Group {
                            port: 0,
                            vid: None,
                            side: 0xa,
                        },
                        Group {
                            port: 1,
                            vid: Some(TRUNK_VID),
                            side: 0xc,
                        },
                    ],
                    vec![
                        StreamSpec {
                            port: 0,
                            egress: 1,
                            vid: None,
                            src_side: 0xa,
                            dst: Dst::Side(0xc),
                            flows: flows - half,
                            rewritten: true,
                        },
                        StreamSpec {
                            port: 1,
                            egress: 0,
                            vid: Some(TRUNK_VID),
                            src_side: 0xc,
                            dst: Dst::Side(0xa),
                            flows: half,
                            rewritten: true,
                        },
                    ],
                    format!(
                        "[[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n\
                         [[port]]\nname = \"t\"\nmode = \"trunk\"\nvlans = {{ {TRUNK_VID} = \"net-a\" }}\n"
                    ),
                )
            }
        };
        for s in &streams {
            if (s.flows as usize) < workers {
                bail!(
                    "--flows {flows}: each of the {} stream(s) needs at least one flow per worker",
                    streams.len()
                );
            }
        }
        // Room for every host with a margin, so that nothing is evicted.
        let table = groups.len() as u64 * u64::from(macs) + 64;
        let toml = format!(
            "[switch]\nworkers = {workers}\nmac_table_size = {table}\n\n\
             [[network]]\nname = \"net-a\"\nsegment = \"local\"\nlocal_vlan = 1\n\n{toml}"
        );
        let config = Config::from_str(&toml, "<vswitch-bench>")
            .with_context(|| format!("generated configuration:\n{toml}"))?;
        Ok(Spec {
            macs,
            frame_size,
            config,
            toml,
            groups,
            streams,
        })
    }

    /// Learned entries every replica holds once warm.
    pub fn expected_fdb(&self) -> usize {
        self.groups.len() * self.macs as usize
    }

    /// Worker `w`'s share of the learning frames: `(port, frame)` for hosts `i ≡ w`.
    pub fn learn_frames(
        &self,
        w: usize,
        workers: usize,
    ) -> impl Iterator<Item = (u16, Vec<u8>)> + '_ {
        self.groups.iter().flat_map(move |g| {
            (0..self.macs)
                .filter(move |i| *i as usize % workers == w)
                .map(move |i| {
                    let size = if g.vid.is_some() { 64 } else { 60 };
                    (g.port, frame(BROADCAST, mac(g.side, i), g.vid, size))
                })
        })
    }

    /// Worker `w`'s streams.
    pub fn streams_for(&self, w: usize, workers: usize) -> Vec<Stream> {
        self.streams
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let n = self.macs;
                let mut hdrs: Vec<Hdr> = (0..s.flows)
                    .filter(|j| *j as usize % workers == w)
                    .map(|j| {
                        let src = mac(s.src_side, j % n);
                        let dst = match s.dst {
                            Dst::Side(side) => mac(side, (j % n + j / n) % n),
                            Dst::Broadcast => BROADCAST,
                        };
                        let f = frame(dst, src, s.vid, 60);
                        let mut h = [0u8; HDR_LEN];
                        h.copy_from_slice(&f[..HDR_LEN]);
                        h
                    })
                    .collect();
                shuffle(&mut hdrs, 0x5eed ^ (w as u64) << 8 ^ k as u64);
                let mut template = frame(BROADCAST, BROADCAST, s.vid, self.frame_size);
                if let Some(h) = hdrs.first() {
                    template[..HDR_LEN].copy_from_slice(h);
                }
                Stream {
                    port: s.port,
                    egress: s.egress,
                    rewritten: s.rewritten,
                    template,
                    hdrs,
                }
            })
            .collect()
    }
}

fn access_ports(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("[[port]]\nname = \"{n}\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n"))
        .collect()
}

/// Fisher–Yates with splitmix64: the same order on every run.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_split() {
        for p in [Profile::L2, Profile::Flood, Profile::Trunk] {
            let s = Spec::new(p, 1000, 1000, 64, 2).unwrap();
            let total: usize = (0..2)
                .map(|w| {
                    s.streams_for(w, 2)
                        .iter()
                        .map(|x| x.hdrs.len())
                        .sum::<usize>()
                })
                .sum();
            assert_eq!(total, 1000, "{p:?}");
            let learn: usize = (0..2).map(|w| s.learn_frames(w, 2).count()).sum();
            assert_eq!(learn, s.expected_fdb());
        }
    }

    #[test]
    fn flows_are_distinct() {
        let s = Spec::new(Profile::L2, 10, 100, 60, 1).unwrap();
        let mut h = s.streams_for(0, 1).remove(0).hdrs;
        h.sort_unstable();
        h.dedup();
        assert_eq!(h.len(), 100);
    }
}
