//! Traffic profiles of `vswitch-bench wire`: the frames the generator sends, the frames
//! that teach the switch the sink's MACs first, where the sink finds the payload, and the
//! network each switch under test is configured with.
//!
//! Every profile is one direction, generator port → sink port. Frames are IPv4/UDP from
//! 198.18.100.1 to 198.18.200.1 (flows differ by MAC only: a switch looks at nothing
//! else), with the UDP
//! checksum zero (allowed over IPv4, RFC 768) because the generator rewrites the payload
//! (sequence, timestamp) and the MACs of every frame. Host `k` of a side has MAC
//! `02:SIDE:00:0k:k:k` ([`mac`]), and the generator's flow `k` goes from generator host `k` to
//! sink host `k`.
//!
//! Tunnel profiles put the switch's underlay on one side of the rig: the sink's side for
//! encapsulation (the sink plays the remote VTEP 198.18.1.2, the switch is 198.18.1.1),
//! the generator's side for decapsulation (the generator plays the remote VTEP).

use std::fmt;
use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use encap::tunnel::{v4_params, GreOptions, GreTemplate, VxlanTemplate};
use encap::{Frame, GreKey, MacAddr, Vni};

/// VXLAN VNI / GRE key of the benchmark network.
pub const SEGMENT_ID: u32 = 5000;
/// The switch's VTEP address.
pub const LOCAL_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The remote VTEP the generator or the sink plays.
pub const REMOTE_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// The VTEPs' prefix length.
pub const VTEP_PREFIX: u8 = 24;
/// VLAN ID of the `vlan` profile, and the three VIDs of `mixed`.
pub const VID: u16 = 100;
/// The `mixed` profile's VIDs: two of known unicast, one of unknown unicast (flooded).
pub const MIXED_VIDS: [u16; 3] = [100, 200, 300];
/// UDP destination port of VXLAN (IANA's).
pub const VXLAN_PORT: u16 = 4789;
/// Side byte of generator hosts' MACs.
pub const SIDE_GEN: u8 = 0x10;
/// Side byte of sink hosts' MACs.
pub const SIDE_SINK: u8 = 0x20;
/// Side byte of MACs nobody ever sends from (the destinations of flooded frames).
pub const SIDE_UNKNOWN: u8 = 0x30;
/// The UDP destination port of test frames.
pub const TEST_UDP_PORT: u16 = 9;

/// A traffic profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Learned unicast between two access ports of one network.
    L2,
    /// Unknown unicast (never-learned destinations), flooded within the network.
    Flood,
    /// 802.1Q-tagged frames (VID 100) between two trunk ports (frames 4 bytes longer than
    /// `--size`: the tag).
    Vlan,
    /// Access port → underlay: VXLAN encapsulation over IPv4 (the sink is the remote VTEP).
    #[value(name = "vxlan-encap", alias = "vxlan")]
    VxlanEncap,
    /// Underlay → access port: VXLAN decapsulation (the generator is the remote VTEP).
    VxlanDecap,
    /// As `vxlan-encap` with GRE (key) over IPv4.
    #[value(name = "gre-encap", alias = "gre")]
    GreEncap,
    /// As `vxlan-decap` with GRE.
    GreDecap,
    /// Three networks on two trunks: VID 100 known unicast (60 %), VID 200 known unicast
    /// (30 %), VID 300 unknown unicast flooded (10 %).
    Mixed,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which tunnel a profile crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN over IPv4/UDP.
    Vxlan,
    /// GRE with a key over IPv4.
    Gre,
}

impl Tunnel {
    /// Bytes in front of the inner frame.
    pub fn overhead(self) -> usize {
        match self {
            Tunnel::Vxlan => 50,
            Tunnel::Gre => 42,
        }
    }
}

/// Where the underlay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Underlay {
    /// No tunnel: both switch ports carry the network.
    None,
    /// The sink side's switch port is the underlay (encapsulation).
    SinkSide(Tunnel),
    /// The generator side's switch port is the underlay (decapsulation).
    GenSide(Tunnel),
}

impl Profile {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::L2 => "l2",
            Profile::Flood => "flood",
            Profile::Vlan => "vlan",
            Profile::VxlanEncap => "vxlan-encap",
            Profile::VxlanDecap => "vxlan-decap",
            Profile::GreEncap => "gre-encap",
            Profile::GreDecap => "gre-decap",
            Profile::Mixed => "mixed",
        }
    }

    /// Where the profile's underlay is.
    pub fn underlay(self) -> Underlay {
        match self {
            Profile::VxlanEncap => Underlay::SinkSide(Tunnel::Vxlan),
            Profile::GreEncap => Underlay::SinkSide(Tunnel::Gre),
            Profile::VxlanDecap => Underlay::GenSide(Tunnel::Vxlan),
            Profile::GreDecap => Underlay::GenSide(Tunnel::Gre),
            _ => Underlay::None,
        }
    }

    /// The tunnel the profile crosses, if any.
    pub fn tunnel(self) -> Option<Tunnel> {
        match self.underlay() {
            Underlay::None => None,
            Underlay::SinkSide(t) | Underlay::GenSide(t) => Some(t),
        }
    }
}

/// A MAC of host `k` on side `side`: `02:SIDE:` then `k` in 32 bits, big-endian. The
/// generator rewrites the low three bytes, so flows are limited to 2²⁴.
pub fn mac(side: u8, k: u32) -> [u8; 6] {
    let b = k.to_be_bytes();
    [0x02, side, b[0], b[1], b[2], b[3]]
}

/// Frame sizes: one size, or the simple IMIX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sizes {
    /// Every frame this many bytes on the wire, FCS included (64..=1518).
    Fixed(usize),
    /// 64, 594 and 1518 bytes weighted 7:4:1 (the "simple IMIX").
    Imix,
}

impl Sizes {
    /// (size with FCS, weight) pairs.
    pub fn mix(&self) -> Vec<(usize, u32)> {
        match self {
            Sizes::Fixed(n) => vec![(*n, 1)],
            Sizes::Imix => vec![(64, 7), (594, 4), (1518, 1)],
        }
    }
}

impl fmt::Display for Sizes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sizes::Fixed(n) => write!(f, "{n}"),
            Sizes::Imix => f.write_str("imix"),
        }
    }
}

impl std::str::FromStr for Sizes {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(Sizes::Imix);
        }
        match s.parse::<usize>() {
            Ok(n) if (64..=1518).contains(&n) => Ok(Sizes::Fixed(n)),
            _ => Err(format!("frame size {s:?}: 64..=1518 or imix")),
        }
    }
}

/// One template of the generator.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole frame (no FCS).
    pub frame: Vec<u8>,
    /// Relative weight among the profile's templates.
    pub weight: u32,
}

/// Everything the harness needs to run a profile.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// The profile.
    pub profile: Profile,
    /// Frames the generator sends (interleaved by weight).
    pub streams: Vec<Template>,
    /// Where the generator writes the test payload in its frames.
    pub gen_payload: usize,
    /// Where the generator rewrites MACs with the flow's (offsets of 6-byte fields).
    pub gen_macs: Vec<usize>,
    /// A UDP source port the generator varies by flow (outer header of tunnel frames).
    pub gen_udp_sport: Option<usize>,
    /// Where the sink finds the test payload after the switch.
    pub sink_payload: usize,
    /// Frames the sink side sends first, one per flow, so that the switch learns the
    /// sink hosts' MACs (none for flooding).
    pub learn: Option<Template>,
    /// MAC fields of the learning frames rewritten per flow.
    pub learn_macs: Vec<usize>,
    /// Number of flows (hosts per side).
    pub flows: u32,
}

/// Addresses of the rig the frames need.
#[derive(Debug, Clone, Copy)]
pub struct Macs {
    /// The generator's netdev.
    pub gen: [u8; 6],
    /// The sink's netdev.
    pub sink: [u8; 6],
    /// The switch's port on the generator's side.
    pub sw_gen: [u8; 6],
    /// The switch's port on the sink's side.
    pub sw_sink: [u8; 6],
}

/// The payload the generator rewrites: magic, flow, sequence, timestamp. Test frames
/// carry at least this much UDP payload.
pub const PAYLOAD_LEN: usize = super::traffic::HEADER_LEN;

/// An IPv4/UDP frame of `size` bytes on the wire (FCS included, so `size - 4` bytes
/// here) before tagging, optionally tagged (4 bytes more: a 64-byte frame is 68 bytes
/// tagged, 1518 becomes 1522, as 802.1Q allows), UDP checksum zero.
pub fn host_frame(dst: [u8; 6], src: [u8; 6], vid: Option<u16>, size: usize) -> Result<Vec<u8>> {
    let len = size.saturating_sub(4) + vid.map_or(0, |_| 4);
    let head = 14 + vid.map_or(0, |_| 4) + 20 + 8;
    if len < head + PAYLOAD_LEN {
        bail!("a {size}-byte frame has no room for the {PAYLOAD_LEN}-byte test payload");
    }
    // The generator varies the MACs only: every flow has these addresses.
    let src_ip = [198, 18, 100, 1];
    let dst_ip = [198, 18, 200, 1];
    let builder = etherparse::PacketBuilder::ethernet2(src, dst);
    let payload = vec![0u8; len - head];
    let mut out = Vec::with_capacity(len);
    match vid {
        Some(v) => builder
            .single_vlan(etherparse::VlanId::try_new(v).context("VLAN ID")?)
            .ipv4(src_ip, dst_ip, 64)
            .udp(49152, TEST_UDP_PORT)
            .write(&mut out, &payload),
        None => builder
            .ipv4(src_ip, dst_ip, 64)
            .udp(49152, TEST_UDP_PORT)
            .write(&mut out, &payload),
    }
    .context("building a test frame")?;
    // UDP checksum zero: the generator rewrites the payload of every frame.
    let udp = head - 8;
    out[udp + 6] = 0;
    out[udp + 7] = 0;
    Ok(out)
}

/// `inner` encapsulated by `t` (VNI or key `id`) from `src` (MAC, IP) to `dst`, as a
/// VTEP sends it. Shared with `vswitch-bench pipeline`'s tunnel profiles.
pub fn encapsulate(
    t: Tunnel,
    id: u32,
    inner: &[u8],
    src: ([u8; 6], Ipv4Addr),
    dst: ([u8; 6], Ipv4Addr),
) -> Result<Vec<u8>> {
    let head = 128;
    let mut buf = vec![0u8; head + inner.len()];
    buf[head..].copy_from_slice(inner);
    let mut p = v4_params(MacAddr(src.0), MacAddr(dst.0), src.1, dst.1);
    p.mtu = super::rig::RIG_MTU as u16;
    let mut f = Frame::new(&mut buf[..], head, inner.len()).context("frame")?;
    let hash = encap::tunnel::flow_hash(inner);
    match t {
        Tunnel::Vxlan => VxlanTemplate::new(&p, VXLAN_PORT)
            .and_then(|tpl| tpl.encap(&mut f, Vni::from_bits(id), hash, 0)),
        Tunnel::Gre => GreTemplate::new(&p, GreOptions::default())
            .and_then(|tpl| tpl.encap(&mut f, GreKey::new(id), 0, 0)),
    }
    .map_err(|e| anyhow::anyhow!("encapsulating a test frame: {e:?}"))?;
    Ok(f.data().to_vec())
}

impl Traffic {
    /// The traffic of `profile` with `flows` flows of `sizes`, on a rig with `macs`.
    pub fn new(profile: Profile, sizes: &Sizes, flows: u32, macs: Macs) -> Result<Traffic> {
        if flows == 0 || flows > 1 << 24 {
            bail!("--flows {flows}: 1..=16777216");
        }
        let g = mac(SIDE_GEN, 0);
        let s = mac(SIDE_SINK, 0);
        let u = mac(SIDE_UNKNOWN, 0);
        let mut streams = Vec::new();
        let small = 64;
        match profile {
            Profile::L2 | Profile::VxlanEncap | Profile::GreEncap => {
                for (size, weight) in sizes.mix() {
                    streams.push(Template {
                        frame: host_frame(s, g, None, size)?,
                        weight,
                    });
                }
            }
            Profile::Flood => {
                for (size, weight) in sizes.mix() {
                    streams.push(Template {
                        frame: host_frame(u, g, None, size)?,
                        weight,
                    });
                }
            }
            Profile::Vlan => {
                for (size, weight) in sizes.mix() {
                    streams.push(Template {
                        frame: host_frame(s, g, Some(VID), size)?,
                        weight,
                    });
                }
            }
            Profile::Mixed => {
                for (size, weight) in sizes.mix() {
                    for (vid, share, dst) in [
                        (MIXED_VIDS[0], 6, s),
                        (MIXED_VIDS[1], 3, s),
                        (MIXED_VIDS[2], 1, u),
                    ] {
                        streams.push(Template {
                            frame: host_frame(dst, g, Some(vid), size)?,
                            weight: weight * share,
                        });
                    }
                }
            }
            Profile::VxlanDecap | Profile::GreDecap => {
                let t = profile.tunnel().context("tunnel")?;
                for (size, weight) in sizes.mix() {
                    let inner = host_frame(s, g, None, size)?;
                    let outer = encapsulate(
                        t,
                        SEGMENT_ID,
                        &inner,
                        (macs.gen, REMOTE_VTEP),
                        (macs.sw_gen, LOCAL_VTEP),
                    )?;
                    streams.push(Template {
                        frame: outer,
                        weight,
                    });
                }
            }
        }
        let tagged = matches!(profile, Profile::Vlan | Profile::Mixed);
        let inner_payload = 14 + if tagged { 4 } else { 0 } + 28;
        let (gen_payload, gen_macs, gen_udp_sport, sink_payload) = match profile.underlay() {
            Underlay::None => (inner_payload, vec![0, 6], None, inner_payload),
            Underlay::SinkSide(t) => (
                inner_payload,
                vec![0, 6],
                None,
                inner_payload + t.overhead(),
            ),
            Underlay::GenSide(t) => {
                let o = t.overhead();
                let sport = (t == Tunnel::Vxlan).then_some(14 + 20);
                (inner_payload + o, vec![o, o + 6], sport, inner_payload)
            }
        };
        // The sink hosts introduce themselves: one frame per flow from sink host k.
        let (learn, learn_macs) = match profile {
            Profile::Flood => (None, Vec::new()),
            Profile::L2 => (Some(host_frame(g, s, None, small)?), vec![0, 6]),
            Profile::Vlan => (Some(host_frame(g, s, Some(VID), small)?), vec![0, 6]),
            Profile::Mixed => (
                Some(host_frame(g, s, Some(MIXED_VIDS[0]), small)?),
                vec![0, 6],
            ),
            Profile::VxlanDecap | Profile::GreDecap => {
                (Some(host_frame(g, s, None, small)?), vec![0, 6])
            }
            Profile::VxlanEncap | Profile::GreEncap => {
                let t = profile.tunnel().context("tunnel")?;
                let inner = host_frame(g, s, None, small)?;
                let outer = encapsulate(
                    t,
                    SEGMENT_ID,
                    &inner,
                    (macs.sink, REMOTE_VTEP),
                    (macs.sw_sink, LOCAL_VTEP),
                )?;
                let o = t.overhead();
                (Some(outer), vec![o, o + 6])
            }
        };
        let learn = learn.map(|frame| Template { frame, weight: 1 });
        Ok(Traffic {
            profile,
            streams,
            gen_payload,
            gen_macs,
            gen_udp_sport,
            sink_payload,
            learn,
            learn_macs,
            flows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macs() -> Macs {
        Macs {
            gen: [2, 0, 0, 0, 0, 1],
            sink: [2, 0, 0, 0, 0, 2],
            sw_gen: [2, 0, 0, 0, 0, 3],
            sw_sink: [2, 0, 0, 0, 0, 4],
        }
    }

    #[test]
    fn every_profile_builds_and_payload_fits() {
        use clap::ValueEnum;
        for p in Profile::value_variants() {
            for sizes in [Sizes::Fixed(64), Sizes::Fixed(1518), Sizes::Imix] {
                let t = Traffic::new(*p, &sizes, 16, macs()).expect("profile");
                for s in &t.streams {
                    assert!(s.frame.len() >= t.gen_payload + PAYLOAD_LEN, "{p} {sizes}");
                    for &m in &t.gen_macs {
                        assert!(m + 6 <= s.frame.len());
                    }
                }
                // The payload offset is right: the generator side's frame parses to a UDP
                // payload starting there (inner frame for decap profiles).
                let f = &t.streams[0].frame;
                let inner = match p.underlay() {
                    Underlay::GenSide(tn) => &f[tn.overhead()..],
                    _ => &f[..],
                };
                let parsed = etherparse::SlicedPacket::from_ethernet(inner).expect("parse");
                let udp = match parsed.transport {
                    Some(etherparse::TransportSlice::Udp(u)) => u,
                    _ => panic!("{p}: not UDP"),
                };
                assert_eq!(udp.destination_port(), TEST_UDP_PORT);
                let off = udp.payload().as_ptr() as usize - f.as_ptr() as usize;
                assert_eq!(off, t.gen_payload, "{p}");
            }
        }
    }

    #[test]
    fn sixty_four_byte_frames_are_sixty_bytes_without_fcs() {
        let f = host_frame([2; 6], [4; 6], None, 64).expect("frame");
        assert_eq!(f.len(), 60);
        let f = host_frame([2; 6], [4; 6], Some(5), 64).expect("frame");
        assert_eq!(f.len(), 64, "the tag comes on top");
        assert!(host_frame([2; 6], [4; 6], Some(5), 64).is_ok());
    }

    #[test]
    fn vxlan_frames_parse_as_vxlan() {
        let t = Traffic::new(Profile::VxlanDecap, &Sizes::Fixed(64), 1, macs()).expect("t");
        let f = &t.streams[0].frame;
        let p = etherparse::SlicedPacket::from_ethernet(f).expect("parse");
        match p.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert_eq!(u.destination_port(), VXLAN_PORT);
                assert_eq!(u.checksum(), 0);
            }
            _ => panic!("not UDP"),
        }
    }
}
