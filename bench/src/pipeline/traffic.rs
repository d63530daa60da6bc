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

use core::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use dataplane::config::Config;
use encap::MacAddr;

/// A profile of traffic and the switch it runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Known unicast, access port A to access port B (N hosts behind each).
    L2,
    /// Broadcast from one access port of a network with four.
    Flood,
    /// Access port to a trunk (tag push) and back (tag pop), half each.
    Trunk,
    /// Access port to hosts behind a remote VTEP: VXLAN encapsulation over IPv4.
    VxlanEncap,
    /// VXLAN over IPv4 from a remote VTEP to hosts on an access port: decapsulation.
    VxlanDecap,
    /// As `vxlan-encap`, with GRE (key) over IPv4.
    GreEncap,
    /// As `vxlan-decap`, with GRE (key) over IPv4.
    GreDecap,
    /// A `vlan` provider network: access port to the physnet port (provider VID pushed)
    /// and back (popped), half each.
    VlanProvider,
    /// A quarter each of `l2`, `vxlan-encap`, `vxlan-decap` and `vlan-provider`, on one
    /// switch.
    Mixed,
}

impl Profile {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::L2 => "l2",
            Profile::Flood => "flood",
            Profile::Trunk => "trunk",
            Profile::VxlanEncap => "vxlan-encap",
            Profile::VxlanDecap => "vxlan-decap",
            Profile::GreEncap => "gre-encap",
            Profile::GreDecap => "gre-decap",
            Profile::VlanProvider => "vlan-provider",
            Profile::Mixed => "mixed",
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

/// The local VTEP of the tunnel profiles, and the remote one its hosts sit behind.
const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const REMOTE_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
/// VNI / GRE key of the tunnel profiles' networks.
const SEGMENT_ID: u32 = 5010;
/// Provider VID of `vlan-provider` (local VLAN 1).
pub const PROVIDER_VID: u16 = 200;

pub use vswitch_bench::wire::profile::Tunnel;

/// `inner` as the remote VTEP sends it to us (empty if it cannot be encapsulated).
pub fn encapsulate(t: Tunnel, inner: &[u8]) -> Vec<u8> {
    let remote = (REMOTE_MAC.0, REMOTE_IP);
    let local = (LOCAL_MAC.0, LOCAL_IP);
    vswitch_bench::wire::profile::encapsulate(t, SEGMENT_ID, inner, remote, local)
        .unwrap_or_default()
}

/// Hosts behind one port, learned before the measurement.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// Port index.
    pub port: u16,
    /// VID on the wire (trunk side), `None` untagged.
    pub vid: Option<u16>,
    /// MAC side byte.
    pub side: u8,
    /// Behind a remote VTEP: learned from frames arriving encapsulated.
    pub tunnel: Option<Tunnel>,
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
    /// The frames arrive encapsulated from the remote VTEP.
    pub tunnel: Option<Tunnel>,
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
    /// Where the per-flow bytes are in the frame: 0, or the inner frame's offset of an
    /// encapsulated stream.
    pub hdr_at: usize,
    /// Per flow, in sending order: the [`HDR_LEN`] bytes at `hdr_at`.
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
        let (groups, streams, toml) = profile_parts(profile, flows);
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
        let toml = format!("[switch]\nworkers = {workers}\nmac_table_size = {table}\n\n{toml}");
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
                    let f = frame(BROADCAST, mac(g.side, i), g.vid, size);
                    match g.tunnel {
                        Some(t) => (g.port, encapsulate(t, &f)),
                        None => (g.port, f),
                    }
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
                let (template, hdr_at) = match s.tunnel {
                    Some(t) => (encapsulate(t, &template), t.overhead()),
                    None => (template, 0),
                };
                Stream {
                    port: s.port,
                    egress: s.egress,
                    rewritten: s.rewritten,
                    template,
                    hdr_at,
                    hdrs,
                }
            })
            .collect()
    }
}

const fn group(port: u16, vid: Option<u16>, side: u8, tunnel: Option<Tunnel>) -> Group {
    Group {
        port,
        vid,
        side,
        tunnel,
    }
}

/// A stream of `flows` flows from `src_side` on `port` to `dst`; `egress` is where the
/// null pipeline moves it.
#[allow(clippy::too_many_arguments)]
const fn stream(
    port: u16,
    egress: u16,
    vid: Option<u16>,
    src_side: u8,
    dst: Dst,
    flows: u32,
    rewritten: bool,
    tunnel: Option<Tunnel>,
) -> StreamSpec {
    StreamSpec {
        port,
        egress,
        vid,
        src_side,
        dst,
        flows,
        rewritten,
        tunnel,
    }
}

const LOCAL_NET: &str = "[[network]]\nname = \"net-a\"\nsegment = \"local\"\nlocal_vlan = 1\n\n";

/// The underlay of the tunnel profiles: the remote VTEP's MAC is a static neighbour.
fn underlay() -> String {
    format!(
        "[underlay]\nport = \"uplink\"\nlocal_ip = \"{LOCAL_IP}/24\"\nlocal_mac = \"{LOCAL_MAC}\"\n\
         neighbors = [ {{ ip = \"{REMOTE_IP}\", mac = \"{REMOTE_MAC}\" }} ]\n\n"
    )
}

fn tunnel_net(t: Tunnel) -> String {
    let seg = match t {
        Tunnel::Vxlan => "vxlan",
        Tunnel::Gre => "gre",
    };
    format!(
        "[[network]]\nname = \"net-a\"\nsegment = \"{seg}\"\nid = {SEGMENT_ID}\nlocal_vlan = 1\n\
         remote_vteps = [\"{REMOTE_IP}\"]\n\n"
    )
}

const PROVIDER: &str = "[[physnet]]\nname = \"physnet1\"\nport = \"phys1\"\n\n";

fn provider_net(name: &str, local_vlan: u16) -> String {
    format!(
        "[[network]]\nname = \"{name}\"\nsegment = \"vlan\"\nphysnet = \"physnet1\"\n\
         id = {PROVIDER_VID}\nlocal_vlan = {local_vlan}\n\n"
    )
}

/// Hosts, streams and the configuration (without `[switch]`) of a profile.
fn profile_parts(profile: Profile, flows: u32) -> (Vec<Group>, Vec<StreamSpec>, String) {
    let half = flows / 2;
    let (a, b, c) = (0xa, 0xb, 0xc);
    match profile {
        Profile::L2 => (
            vec![group(0, None, a, None), group(1, None, b, None)],
            vec![stream(0, 1, None, a, Dst::Side(b), flows, false, None)],
            format!("{LOCAL_NET}{}", access_ports(&["a", "b"])),
        ),
        Profile::Flood => (
            vec![group(0, None, a, None)],
            vec![stream(0, 1, None, a, Dst::Broadcast, flows, false, None)],
            format!("{LOCAL_NET}{}", access_ports(&["p0", "p1", "p2", "p3"])),
        ),
        Profile::Trunk => (
            vec![group(0, None, a, None), group(1, Some(TRUNK_VID), c, None)],
            vec![
                stream(0, 1, None, a, Dst::Side(c), flows - half, true, None),
                stream(1, 0, Some(TRUNK_VID), c, Dst::Side(a), half, true, None),
            ],
            format!(
                "{LOCAL_NET}[[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n\
                 [[port]]\nname = \"t\"\nmode = \"trunk\"\nvlans = {{ {TRUNK_VID} = \"net-a\" }}\n"
            ),
        ),
        // Ports: a (0), then the underlay port (1).
        Profile::VxlanEncap | Profile::GreEncap | Profile::VxlanDecap | Profile::GreDecap => {
            let t = match profile {
                Profile::VxlanEncap | Profile::VxlanDecap => Tunnel::Vxlan,
                _ => Tunnel::Gre,
            };
            let s = if matches!(profile, Profile::VxlanEncap | Profile::GreEncap) {
                stream(0, 1, None, a, Dst::Side(c), flows, false, None)
            } else {
                stream(1, 0, None, c, Dst::Side(a), flows, false, Some(t))
            };
            (
                vec![group(0, None, a, None), group(1, None, c, Some(t))],
                vec![s],
                format!("{}{}{}", underlay(), tunnel_net(t), access_ports(&["a"])),
            )
        }
        // Ports: a (0), then the physnet port (1).
        Profile::VlanProvider => (
            vec![
                group(0, None, a, None),
                group(1, Some(PROVIDER_VID), c, None),
            ],
            vec![
                stream(0, 1, None, a, Dst::Side(c), flows - half, true, None),
                stream(1, 0, Some(PROVIDER_VID), c, Dst::Side(a), half, true, None),
            ],
            format!(
                "{PROVIDER}{}[[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n",
                provider_net("net-a", 1)
            ),
        ),
        // Ports: a, b (local network), p (provider network), v (vxlan network), then the
        // physnet port (4) and the underlay port (5).
        Profile::Mixed => {
            let q = flows / 4;
            let d = Some(Tunnel::Vxlan);
            (
                vec![
                    group(0, None, a, None),
                    group(1, None, b, None),
                    group(2, None, 0xd, None),
                    group(4, Some(PROVIDER_VID), 0xe, None),
                    group(3, None, 0xf, None),
                    group(5, None, c, d),
                ],
                vec![
                    stream(0, 1, None, a, Dst::Side(b), flows - 3 * q, false, None),
                    stream(2, 4, None, 0xd, Dst::Side(0xe), q, true, None),
                    stream(3, 5, None, 0xf, Dst::Side(c), q, false, None),
                    stream(5, 3, None, c, Dst::Side(0xf), q, false, d),
                ],
                format!(
                    "{PROVIDER}{}{LOCAL_NET}{}\
                     [[network]]\nname = \"net-v\"\nsegment = \"vxlan\"\nid = {SEGMENT_ID}\n\
                     local_vlan = 3\nremote_vteps = [\"{REMOTE_IP}\"]\n\n\
                     [[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n\
                     [[port]]\nname = \"b\"\nmode = \"access\"\nnetwork = \"net-a\"\n\n\
                     [[port]]\nname = \"p\"\nmode = \"access\"\nnetwork = \"net-p\"\n\n\
                     [[port]]\nname = \"v\"\nmode = \"access\"\nnetwork = \"net-v\"\n\n",
                    provider_net("net-p", 2),
                    underlay()
                ),
            )
        }
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
        for &p in <Profile as clap::ValueEnum>::value_variants() {
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
