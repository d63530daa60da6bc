//! The `ops` target: a sequence of in-place operations on one frame, each checked
//! against its inverse.
//!
//! - VLAN push: the frame is the old one with the tag after the MACs; popping it (on a
//!   copy) gives the tag back and the exact old bytes (zero-padded to 60 bytes, as `pop`
//!   pads, if the old frame was shorter).
//! - VLAN pop: the frame is the old one without its outer tag (padded to 60); pushing
//!   the tag back (on a copy) gives the old bytes.
//! - VLAN translate: only the VID bits of the outer TCI change; translating back (on a
//!   copy) gives the old bytes.
//! - VXLAN / GRE encap: the outer headers are what the template says (`parse` agrees),
//!   the inner frame is untouched; decapsulating (on a copy) gives the exact inner frame
//!   and the same VNI / key / sequence number. The encapsulated frame is kept for the
//!   next operations when the op says so (nested tunnels, decap ops), else the copy.
//! - VXLAN / GRE decap of whatever the frame is: see [`crate::check`].
//! - Every refused operation leaves the frame byte-identical, and no operation panics.
//!
//! The input is decoded by a hand-written [`Arbitrary`] impl with a fixed layout, so
//! that [`Input::encode`] can write it back: the seed generator builds the `ops` seeds
//! from `Input` values instead of guessing bytes.
//!
//! Layout (integers little-endian; missing bytes read as zero):
//!
//! ```text
//! headroom u16 (mod 513) | tailroom u8 | op count u8 (mod 17) | op... | frame (rest)
//! op = kind u8 (mod 7) and its fields:
//!   0 push        flags u8 (bit 0 802.1ad, bit 1 DEI, bits 5-7 PCP), vid u16 (mod 4095, 0 = priority tag)
//!   1 pop
//!   2 translate   vid u16 (mod 4094, + 1)
//!   3 vxlan       outer, dst port u16, VNI 3 bytes big-endian, flow hash u32
//!   4 gre         outer, options u8 (bit 0 checksum, bit 1 seq), key u32, seq u32
//!   5 decap vxlan flags u8 (bit 0 strict reserved, bit 1 udp6 zero checksum), port u16
//!   6 decap gre
//! outer = flags u8 (bit 0 IPv6, bit 1 DF, bit 2 keep encapsulated), src MAC 6, dst MAC 6,
//!         src IP 16, dst IP 16 (IPv4: the first 4), ttl u8, tos u8, mtu u16, ip id u16
//! frame: truncated to 1600 bytes, zero-padded to 14
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use encap::ethernet::EtherType;
use encap::gre::GreRepr;
use encap::parse::{self, Tunnel, L3, L4};
use encap::tunnel::{
    flow_hash, source_port, DecapConfig, GreOptions, GreTemplate, OuterInfo, OuterParams,
    VxlanTemplate,
};
use encap::vlan::{self, Tpid, VlanTag, TAG_LEN};
use encap::{ipv4, ipv6, ErrorKind, Frame, GreKey, MacAddr, Pcp, VlanId, Vni, ETH_HLEN, ETH_ZLEN};

use crate::check::{self, frame_ok, Snapshot};

/// Most headroom in front of the frame.
pub const MAX_HEADROOM: usize = 512;
/// Most operations in one input.
pub const MAX_OPS: usize = 16;
/// Longest initial frame.
pub const MAX_FRAME: usize = 1600;

/// One fuzz input: a frame in a buffer and the operations to apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Bytes of headroom (at most [`MAX_HEADROOM`]).
    pub headroom: usize,
    /// Bytes of tailroom.
    pub tailroom: u8,
    /// The operations, in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
    /// The initial frame, 14 to [`MAX_FRAME`] bytes.
    pub frame: Vec<u8>,
}

/// One operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `vlan::push` of the tag.
    Push(VlanTag),
    /// `vlan::pop`.
    Pop,
    /// `vlan::translate` to the VID.
    Translate(VlanId),
    /// VXLAN encap, then decap on a copy.
    Vxlan(VxlanOp),
    /// GRE encap, then decap on a copy.
    Gre(GreOp),
    /// `decap_vxlan` of whatever the frame is.
    DecapVxlan(DecapConfig),
    /// `decap_gre` of whatever the frame is.
    DecapGre,
}

/// The outer headers of an encap op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// Template parameters (addresses of one family).
    pub params: OuterParams,
    /// IPv4 ident used when DF is clear.
    pub ip_id: u16,
    /// Keep the encapsulated frame for the next operations (else the decapsulated copy).
    pub keep: bool,
}

/// A VXLAN encap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanOp {
    /// Outer headers.
    pub outer: Outer,
    /// UDP destination port of the template (and of the decap that checks it).
    pub port: u16,
    /// The VNI.
    pub vni: Vni,
    /// Flow hash (picks the UDP source port).
    pub hash: u32,
}

/// A GRE encap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreOp {
    /// Outer headers.
    pub outer: Outer,
    /// Checksum and sequence number options.
    pub opts: GreOptions,
    /// The key.
    pub key: GreKey,
    /// The sequence number (written only with `opts.seq`).
    pub seq: u32,
}

// ---------------------------------------------------------------------------------
// Decoding (Arbitrary) and encoding.

fn take<const N: usize>(u: &mut Unstructured<'_>) -> arbitrary::Result<[u8; N]> {
    let mut b = [0u8; N];
    u.fill_buffer(&mut b)?;
    Ok(b)
}

fn take_u8(u: &mut Unstructured<'_>) -> arbitrary::Result<u8> {
    Ok(take::<1>(u)?[0])
}

fn take_u16(u: &mut Unstructured<'_>) -> arbitrary::Result<u16> {
    Ok(u16::from_le_bytes(take(u)?))
}

fn take_u32(u: &mut Unstructured<'_>) -> arbitrary::Result<u32> {
    Ok(u32::from_le_bytes(take(u)?))
}

fn vid_of(raw: u16) -> Option<VlanId> {
    VlanId::try_new(raw % 4095).ok()
}

impl Outer {
    fn decode(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        let flags = take_u8(u)?;
        let src_mac = MacAddr(take(u)?);
        let dst_mac = MacAddr(take(u)?);
        let (s, d): ([u8; 16], [u8; 16]) = (take(u)?, take(u)?);
        let (src_ip, dst_ip) = if flags & 1 != 0 {
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
        } else {
            let v4 = |a: [u8; 16]| IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
            (v4(s), v4(d))
        };
        let mut params = OuterParams::new(src_mac, dst_mac, src_ip, dst_ip);
        params.df = flags & 2 != 0;
        params.ttl = take_u8(u)?;
        params.tos = take_u8(u)?;
        params.mtu = take_u16(u)?;
        Ok(Outer {
            params,
            ip_id: take_u16(u)?,
            keep: flags & 4 != 0,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let p = &self.params;
        let v6 = matches!(p.src_ip, IpAddr::V6(_));
        out.push(u8::from(v6) | u8::from(p.df) << 1 | u8::from(self.keep) << 2);
        out.extend_from_slice(&p.src_mac.0);
        out.extend_from_slice(&p.dst_mac.0);
        for a in [p.src_ip, p.dst_ip] {
            let b = match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    b
                }
            };
            out.extend_from_slice(&b);
        }
        out.extend_from_slice(&[p.ttl, p.tos]);
        out.extend_from_slice(&p.mtu.to_le_bytes());
        out.extend_from_slice(&self.ip_id.to_le_bytes());
    }
}

impl Op {
    /// Number of operation kinds.
    const KINDS: u8 = 7;

    fn decode(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        Ok(match take_u8(u)? % Self::KINDS {
            0 => {
                let flags = take_u8(u)?;
                Op::Push(VlanTag {
                    tpid: if flags & 1 != 0 {
                        Tpid::Dot1Ad
                    } else {
                        Tpid::Dot1Q
                    },
                    dei: flags & 2 != 0,
                    pcp: Pcp::from_bits(flags >> 5),
                    vid: vid_of(take_u16(u)?),
                })
            }
            1 => Op::Pop,
            2 => Op::Translate(match VlanId::try_new(take_u16(u)? % 4094 + 1) {
                Ok(v) => v,
                Err(e) => unreachable!("{e}"),
            }),
            3 => {
                let outer = Outer::decode(u)?;
                let port = take_u16(u)?;
                let [a, b, c] = take(u)?;
                Op::Vxlan(VxlanOp {
                    outer,
                    port,
                    vni: Vni::from_bits(u32::from_be_bytes([0, a, b, c])),
                    hash: take_u32(u)?,
                })
            }
            4 => {
                let outer = Outer::decode(u)?;
                let o = take_u8(u)?;
                Op::Gre(GreOp {
                    outer,
                    opts: GreOptions {
                        checksum: o & 1 != 0,
                        seq: o & 2 != 0,
                    },
                    key: GreKey::new(take_u32(u)?),
                    seq: take_u32(u)?,
                })
            }
            5 => {
                let flags = take_u8(u)?;
                Op::DecapVxlan(DecapConfig {
                    strict_reserved: flags & 1 != 0,
                    udp6_zero_checksum: flags & 2 != 0,
                    vxlan_port: take_u16(u)?,
                })
            }
            _ => Op::DecapGre,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Push(t) => {
                out.push(0);
                out.push(
                    u8::from(t.tpid == Tpid::Dot1Ad) | u8::from(t.dei) << 1 | t.pcp.get() << 5,
                );
                out.extend_from_slice(&t.vid.map_or(0, VlanId::get).to_le_bytes());
            }
            Op::Pop => out.push(1),
            Op::Translate(v) => {
                out.push(2);
                out.extend_from_slice(&(v.get() - 1).to_le_bytes());
            }
            Op::Vxlan(v) => {
                out.push(3);
                v.outer.encode(out);
                out.extend_from_slice(&v.port.to_le_bytes());
                out.extend_from_slice(&v.vni.get().to_be_bytes()[1..]);
                out.extend_from_slice(&v.hash.to_le_bytes());
            }
            Op::Gre(g) => {
                out.push(4);
                g.outer.encode(out);
                out.push(u8::from(g.opts.checksum) | u8::from(g.opts.seq) << 1);
                out.extend_from_slice(&g.key.get().to_le_bytes());
                out.extend_from_slice(&g.seq.to_le_bytes());
            }
            Op::DecapVxlan(c) => {
                out.push(5);
                out.push(u8::from(c.strict_reserved) | u8::from(c.udp6_zero_checksum) << 1);
                out.extend_from_slice(&c.vxlan_port.to_le_bytes());
            }
            Op::DecapGre => out.push(6),
        }
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let headroom = usize::from(take_u16(u)?) % (MAX_HEADROOM + 1);
        let tailroom = take_u8(u)?;
        let n = usize::from(take_u8(u)?) % (MAX_OPS + 1);
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            ops.push(Op::decode(u)?);
        }
        let mut frame = u.bytes(u.len())?.to_vec();
        frame.truncate(MAX_FRAME);
        if frame.len() < ETH_HLEN {
            frame.resize(ETH_HLEN, 0);
        }
        Ok(Input {
            headroom,
            tailroom,
            ops,
            frame,
        })
    }
}

impl Input {
    /// The bytes that decode to this input (for one with at most [`MAX_OPS`] ops, at
    /// most [`MAX_HEADROOM`] headroom and a frame of 14 to [`MAX_FRAME`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.headroom <= MAX_HEADROOM && self.ops.len() <= MAX_OPS);
        assert!((ETH_HLEN..=MAX_FRAME).contains(&self.frame.len()));
        let mut out = Vec::new();
        out.extend_from_slice(&(self.headroom as u16).to_le_bytes());
        out.push(self.tailroom);
        out.push(self.ops.len() as u8);
        for op in &self.ops {
            op.encode(&mut out);
        }
        out.extend_from_slice(&self.frame);
        out
    }

    /// Decodes `data` as the fuzz target does.
    pub fn decode(data: &[u8]) -> arbitrary::Result<Self> {
        Input::arbitrary_take_rest(Unstructured::new(data))
    }
}

// ---------------------------------------------------------------------------------
// Running.

/// Runs the operations of `input`; returns, per operation, whether it succeeded.
pub fn run(input: &Input) -> Vec<bool> {
    let mut f = crate::framed(&input.frame, input.headroom, usize::from(input.tailroom));
    let mut done = Vec::with_capacity(input.ops.len());
    for op in &input.ops {
        frame_ok(&f);
        let h = flow_hash(f.data());
        assert!(source_port(h) >= encap::tunnel::SRC_PORT_MIN);
        let ok = match op {
            Op::Push(tag) => push(&mut f, *tag),
            Op::Pop => pop(&mut f),
            Op::Translate(vid) => translate(&mut f, *vid),
            Op::Vxlan(v) => vxlan(&mut f, v),
            Op::Gre(g) => gre(&mut f, g),
            Op::DecapVxlan(cfg) => check::decap_vxlan(&mut f, cfg).is_ok(),
            Op::DecapGre => check::decap_gre(&mut f).is_ok(),
        };
        done.push(ok);
    }
    frame_ok(&f);
    done
}

/// `b` zero-padded to `min` bytes.
fn padded(b: &[u8], min: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    if v.len() < min {
        v.resize(min, 0);
    }
    v
}

fn push(f: &mut Frame<Vec<u8>>, tag: VlanTag) -> bool {
    let before = Snapshot::of(f);
    let old = before.data();
    if let Err(e) = vlan::push(f, tag) {
        before.assert_unchanged(f, "vlan::push", &e);
        assert!(
            before.headroom() < TAG_LEN && e.kind == ErrorKind::NoHeadroom,
            "vlan::push refused with {TAG_LEN}+ bytes of headroom: {e}"
        );
        return false;
    }
    frame_ok(f);
    let mut expect = old[..12].to_vec();
    expect.extend_from_slice(&tag.tpid.value().to_be_bytes());
    expect.extend_from_slice(&tag.tci().to_be_bytes());
    expect.extend_from_slice(&old[12..]);
    assert_eq!(f.data(), &expect[..], "vlan::push result");
    assert_eq!(f.head(), before.head - TAG_LEN);
    assert_eq!(f.tailroom(), before.tailroom());
    assert_eq!(vlan::outer_tag(f.data()), Ok(Some(tag)));

    // push → pop restores the frame.
    let mut g = f.clone();
    let snap = Snapshot::of(&g);
    match vlan::pop(&mut g) {
        Ok(t) => {
            assert_eq!(t, tag, "pop after push returned another tag");
            assert_eq!(g.data(), &padded(old, ETH_ZLEN)[..], "push → pop differs");
            assert_eq!(g.head(), before.head);
        }
        Err(e) => {
            snap.assert_unchanged(&g, "vlan::pop after push", &e);
            assert_eq!(e.kind, ErrorKind::NoTailroom, "pop after push: {e}");
            assert!(old.len() < ETH_ZLEN && ETH_ZLEN - old.len() > before.tailroom());
        }
    }
    true
}

fn pop(f: &mut Frame<Vec<u8>>) -> bool {
    let before = Snapshot::of(f);
    let old = before.data();
    let outer = vlan::outer_tag(old);
    let tag = match vlan::pop(f) {
        Ok(t) => t,
        Err(e) => {
            before.assert_unchanged(f, "vlan::pop", &e);
            if let Ok(Some(_)) = outer {
                let new_len = old.len() - TAG_LEN;
                assert!(
                    e.kind == ErrorKind::NoTailroom
                        && new_len < ETH_ZLEN
                        && ETH_ZLEN - new_len > before.tailroom(),
                    "vlan::pop refused a tagged frame: {e}"
                );
            }
            return false;
        }
    };
    frame_ok(f);
    assert_eq!(outer, Ok(Some(tag)), "vlan::pop returned another tag");
    let mut expect = old[..12].to_vec();
    expect.extend_from_slice(&old[12 + TAG_LEN..]);
    assert_eq!(f.data(), &padded(&expect, ETH_ZLEN)[..], "vlan::pop result");
    assert_eq!(f.head(), before.head + TAG_LEN);

    // pop → push restores the frame (with the padding pop added).
    let mut g = f.clone();
    if let Err(e) = vlan::push(&mut g, tag) {
        panic!("push into the headroom pop freed failed: {e}");
    }
    assert_eq!(
        g.data(),
        &padded(old, ETH_ZLEN + TAG_LEN)[..],
        "pop → push differs"
    );
    true
}

fn translate(f: &mut Frame<Vec<u8>>, vid: VlanId) -> bool {
    let before = Snapshot::of(f);
    let old = before.data();
    let outer = vlan::outer_tag(old);
    let was = match vlan::translate(f, vid) {
        Ok(t) => t,
        Err(e) => {
            before.assert_unchanged(f, "vlan::translate", &e);
            assert!(
                !matches!(outer, Ok(Some(_))),
                "vlan::translate refused a tagged frame: {e}"
            );
            return false;
        }
    };
    frame_ok(f);
    assert_eq!(outer, Ok(Some(was)), "vlan::translate returned another tag");
    let now = VlanTag {
        vid: Some(vid),
        ..was
    };
    let mut expect = old.to_vec();
    expect[ETH_HLEN..ETH_HLEN + 2].copy_from_slice(&now.tci().to_be_bytes());
    assert_eq!(f.data(), &expect[..], "vlan::translate result");
    assert_eq!((f.head(), f.len()), (before.head, before.len));
    assert_eq!(vlan::outer_tag(f.data()), Ok(Some(now)));

    // translate → translate back restores the frame (a priority tag cannot come back).
    if let Some(v) = was.vid {
        let mut g = f.clone();
        assert_eq!(vlan::translate(&mut g, v), Ok(now));
        assert_eq!(g.data(), old, "translate → translate back differs");
    }
    true
}

/// Checks common to both encaps: a refusal is the MTU's or the headroom's, and leaves
/// the frame as it was; a success prepends `overhead` bytes and leaves the rest alone.
fn encap_result(
    f: &Frame<Vec<u8>>,
    before: &Snapshot,
    r: Result<(), encap::Error>,
    what: &str,
    overhead: usize,
    max_inner: usize,
    mtu: u16,
) -> bool {
    frame_ok(f);
    let inner = before.data();
    if let Err(e) = r {
        before.assert_unchanged(f, what, &e);
        if inner.len() > max_inner {
            assert!(
                matches!(e.kind, ErrorKind::TooBig { .. }),
                "{what}: {e} for a frame over the MTU"
            );
        } else {
            assert_eq!(e.kind, ErrorKind::NoHeadroom, "{what}: {e}");
            assert!(
                before.headroom() < overhead,
                "{what}: {e} with enough headroom"
            );
        }
        return false;
    }
    assert!(
        inner.len() <= max_inner,
        "{what} built a packet over the MTU"
    );
    assert_eq!(f.head(), before.head - overhead);
    assert_eq!(f.len(), before.len + overhead);
    assert!(f.len() - ETH_HLEN <= usize::from(mtu));
    assert_eq!(
        &f.data()[overhead..],
        inner,
        "{what} changed the inner frame"
    );
    assert_eq!(
        &f.buffer()[before.head + before.len..],
        &before.buf[before.head + before.len..],
        "{what} wrote into the tailroom"
    );
    true
}

/// The outer IP header of an encapsulated frame against the template parameters.
fn check_outer_ip(data: &[u8], o: &Outer, proto: u8, what: &str) {
    let p = &o.params;
    match p.src_ip {
        IpAddr::V4(_) => {
            let ip = ipv4::Packet::new_checked(&data[ETH_HLEN..]).expect("outer IPv4");
            assert!(ip.verify_checksum(), "{what}: outer IPv4 checksum");
            assert_eq!(usize::from(ip.total_len()), data.len() - ETH_HLEN);
            assert_eq!(ip.dont_frag(), p.df);
            assert!(!ip.is_fragment());
            assert_eq!(ip.ident(), if p.df { 0 } else { o.ip_id }, "{what}: ident");
            assert_eq!((ip.ttl(), ip.tos(), ip.protocol()), (p.ttl, p.tos, proto));
        }
        IpAddr::V6(_) => {
            let ip = ipv6::Packet::new_checked(&data[ETH_HLEN..]).expect("outer IPv6");
            assert_eq!(
                usize::from(ip.payload_len()),
                data.len() - ETH_HLEN - ipv6::HEADER_LEN
            );
            assert_eq!(
                (ip.hop_limit(), ip.traffic_class(), ip.next_header()),
                (p.ttl, p.tos, proto)
            );
        }
    }
}

/// What decapsulation read of the outer headers is what the template wrote.
fn check_outer_info(info: &OuterInfo, p: &OuterParams, what: &str) {
    assert_eq!(
        (info.src_mac(), info.dst_mac(), info.src_ip(), info.dst_ip()),
        (p.src_mac, p.dst_mac, p.src_ip, p.dst_ip),
        "{what}: outer addresses"
    );
    assert_eq!((info.ttl(), info.tos()), (p.ttl, p.tos), "{what}: TTL/TOS");
    assert_eq!(info.is_ipv6(), p.src_ip.is_ipv6());
}

fn vxlan(f: &mut Frame<Vec<u8>>, op: &VxlanOp) -> bool {
    let what = "VxlanTemplate::encap";
    let p = &op.outer.params;
    let t = match VxlanTemplate::new(p, op.port) {
        Ok(t) => t,
        Err(e) => panic!("VxlanTemplate::new refused one address family: {e}"),
    };
    let v6 = matches!(p.src_ip, IpAddr::V6(_));
    assert_eq!(t.overhead(), if v6 { 70 } else { 50 });
    let before = Snapshot::of(f);
    let inner = before.data();
    assert_eq!(
        t.check_mtu(inner.len()).is_ok(),
        inner.len() <= t.max_inner_len()
    );
    let r = t.encap(f, op.vni, op.hash, op.outer.ip_id);
    if !encap_result(f, &before, r, what, t.overhead(), t.max_inner_len(), p.mtu) {
        return false;
    }
    let data = f.data();
    check_outer_ip(data, &op.outer, ipv4::protocol::UDP, what);
    let parsed = match parse::parse(data, op.port) {
        Ok(x) => x,
        Err(e) => panic!("parse refused a VXLAN packet just built: {e}"),
    };
    assert_eq!(
        parsed.tunnel,
        Some(Tunnel::Vxlan {
            vni: op.vni,
            inner_offset: t.overhead()
        })
    );
    assert_eq!(
        parsed.l4,
        L4::Udp {
            src_port: source_port(op.hash),
            dst_port: op.port
        }
    );
    assert!(
        matches!(parsed.l3, L3::Ip { src, dst, protocol: 17, fragment: false, .. }
            if src == p.src_ip && dst == p.dst_ip),
        "{:?}",
        parsed.l3
    );

    // encap → decap restores the inner frame.
    let mut g = f.clone();
    let cfg = DecapConfig {
        vxlan_port: op.port,
        strict_reserved: true,
        udp6_zero_checksum: false,
    };
    let info = match check::decap_vxlan(&mut g, &cfg) {
        Ok(i) => i,
        Err(e) => panic!("decap_vxlan refused what VxlanTemplate::encap built: {e}"),
    };
    assert_eq!(info.vni, op.vni, "VNI changed across encap → decap");
    assert_eq!(info.src_port, source_port(op.hash));
    check_outer_info(&info.outer, p, "VXLAN encap → decap");
    assert_eq!(g.data(), inner, "encap → decap changed the inner frame");
    assert_eq!(g.head(), before.head);
    if !op.outer.keep {
        *f = g;
    }
    true
}

fn gre(f: &mut Frame<Vec<u8>>, op: &GreOp) -> bool {
    let what = "GreTemplate::encap";
    let p = &op.outer.params;
    let t = match GreTemplate::new(p, op.opts) {
        Ok(t) => t,
        Err(e) => panic!("GreTemplate::new refused one address family: {e}"),
    };
    let v6 = matches!(p.src_ip, IpAddr::V6(_));
    let extra = 4 * (usize::from(op.opts.checksum) + usize::from(op.opts.seq));
    assert_eq!(t.overhead(), if v6 { 62 } else { 42 } + extra);
    let before = Snapshot::of(f);
    let inner = before.data();
    assert_eq!(
        t.check_mtu(inner.len()).is_ok(),
        inner.len() <= t.max_inner_len()
    );
    let r = t.encap(f, op.key, op.seq, op.outer.ip_id);
    if !encap_result(f, &before, r, what, t.overhead(), t.max_inner_len(), p.mtu) {
        return false;
    }
    let data = f.data();
    check_outer_ip(data, &op.outer, ipv4::protocol::GRE, what);
    let seq = op.opts.seq.then_some(op.seq);
    let parsed = match parse::parse(data, 0) {
        Ok(x) => x,
        Err(e) => panic!("parse refused a GRE packet just built: {e}"),
    };
    assert_eq!(
        parsed.l4,
        L4::Gre(GreRepr {
            checksum: op.opts.checksum,
            key: Some(op.key),
            seq,
            protocol: EtherType::TransparentEthernetBridging,
        })
    );
    assert_eq!(
        parsed.tunnel,
        Some(Tunnel::Gre {
            key: Some(op.key),
            inner_offset: t.overhead()
        })
    );

    // encap → decap restores the inner frame.
    let mut g = f.clone();
    let info = match check::decap_gre(&mut g) {
        Ok(i) => i,
        Err(e) => panic!("decap_gre refused what GreTemplate::encap built: {e}"),
    };
    assert_eq!(info.key, Some(op.key), "key changed across encap → decap");
    assert_eq!(
        info.seq, seq,
        "sequence number changed across encap → decap"
    );
    check_outer_info(&info.outer, p, "GRE encap → decap");
    assert_eq!(g.data(), inner, "encap → decap changed the inner frame");
    assert_eq!(g.head(), before.head);
    if !op.outer.keep {
        *f = g;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip() {
        let p = OuterParams::new(
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            "2001:db8::1".parse().expect("addr"),
            "2001:db8::2".parse().expect("addr"),
        );
        let input = Input {
            headroom: 300,
            tailroom: 7,
            ops: vec![
                Op::Push(VlanTag {
                    tpid: Tpid::Dot1Ad,
                    pcp: Pcp::from_bits(5),
                    dei: true,
                    vid: VlanId::try_new(4094).ok(),
                }),
                Op::Translate(VlanId::try_new(1).expect("vid")),
                Op::Vxlan(VxlanOp {
                    outer: Outer {
                        params: p,
                        ip_id: 9,
                        keep: true,
                    },
                    port: 4789,
                    vni: Vni::from_bits(0xabcdef),
                    hash: 0xdead_beef,
                }),
                Op::DecapVxlan(DecapConfig::default()),
                Op::Pop,
                Op::DecapGre,
            ],
            frame: (0..100).collect(),
        };
        assert_eq!(Input::decode(&input.encode()), Ok(input));
    }
}
