//! Checks shared by the harnesses: frame invariants, "an error changes nothing", and
//! decapsulation results cross-checked against `encap::parse` and the header views.

use core::net::IpAddr;

use encap::ethernet::{self, EtherType};
use encap::parse::{self, Tunnel, L3, L4};
use encap::tunnel::{self, DecapConfig, GreInfo, OuterInfo, VxlanInfo};
use encap::{gre, ipv4, ipv6, udp, vxlan, Error, Frame, ETH_HLEN};

/// A frame's whole buffer, head and length, taken before an operation.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The whole buffer (headroom and tailroom included).
    pub buf: Vec<u8>,
    /// Offset of the frame.
    pub head: usize,
    /// Length of the frame.
    pub len: usize,
}

impl Snapshot {
    /// Takes a snapshot of `f`.
    pub fn of(f: &Frame<Vec<u8>>) -> Self {
        Snapshot {
            buf: f.buffer().clone(),
            head: f.head(),
            len: f.len(),
        }
    }

    /// The frame's bytes as they were.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.head..self.head + self.len]
    }

    /// Headroom as it was.
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Tailroom as it was.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.head - self.len
    }

    /// Asserts `f` is byte-for-byte what it was (buffer, head and length): what every
    /// refused operation must leave.
    pub fn assert_unchanged(&self, f: &Frame<Vec<u8>>, what: &str, err: &Error) {
        assert_eq!(
            (f.head(), f.len()),
            (self.head, self.len),
            "{what} failed ({err}) but moved the frame"
        );
        assert!(
            f.buffer() == &self.buf,
            "{what} failed ({err}) but wrote into the buffer"
        );
    }
}

/// The invariants every `Frame` keeps whatever was done to it.
pub fn frame_ok(f: &Frame<Vec<u8>>) {
    let cap = f.buffer().len();
    assert!(f.head() + f.len() <= cap, "frame outside its buffer");
    assert_eq!(f.head() + f.len() + f.tailroom(), cap);
    assert_eq!(f.headroom(), f.head());
    assert_eq!(f.data().len(), f.len());
}

/// After a successful decap: the frame must be a window of what it was, at least an
/// Ethernet header long; returns its offset in the outer frame.
fn inner_window(before: &Snapshot, f: &Frame<Vec<u8>>, what: &str) -> usize {
    assert!(
        f.len() >= ETH_HLEN,
        "{what}: inner frame of {} bytes",
        f.len()
    );
    assert!(f.head() >= before.head, "{what}: frame start moved back");
    let off = f.head() - before.head;
    assert!(
        off + f.len() <= before.len,
        "{what}: inner frame [{off}, +{}) beyond the outer frame of {}",
        f.len(),
        before.len
    );
    assert_eq!(
        f.data(),
        &before.data()[off..off + f.len()],
        "{what}: inner frame is not the outer bytes at offset {off}"
    );
    off
}

/// What `parse` says of a packet that decap accepted, with the outer IP header's end.
struct Outer {
    parsed: parse::Parsed,
    /// Offset of the outer UDP/GRE header.
    l4: usize,
    /// End of the outer IP packet (Ethernet padding excluded).
    ip_end: usize,
}

/// Checks the outer Ethernet and IP headers of a packet `decap_*` accepted, with the
/// views, independently of `decap_*` itself: no tag, IPv4 with a good header checksum
/// and not a fragment, or IPv6; `info` must be what the headers say.
fn outer_checks(outer: &[u8], port: u16, proto: u8, info: &OuterInfo, what: &str) -> Outer {
    let parsed = match parse::parse(outer, port) {
        Ok(p) => p,
        Err(e) => panic!("{what} accepted a packet that parse refuses: {e}"),
    };
    assert_eq!(
        parsed.l2.tag_count(),
        0,
        "{what} accepted a tagged outer frame"
    );
    assert_eq!(parsed.l2.l3_offset, ETH_HLEN);
    let eth = ethernet::Packet::new_unchecked(outer);
    assert_eq!((info.src_mac(), info.dst_mac()), (eth.src(), eth.dst()));
    let L3::Ip {
        src,
        dst,
        protocol,
        l4_offset,
        fragment,
    } = parsed.l3
    else {
        panic!("{what} accepted a non-IP packet: {:?}", parsed.l3)
    };
    assert!(!fragment, "{what} accepted a fragment");
    assert_eq!(protocol, proto, "{what} accepted another IP protocol");
    assert_eq!((info.src_ip(), info.dst_ip()), (src, dst));
    assert_eq!(info.is_ipv6(), src.is_ipv6());
    let bits = match src {
        IpAddr::V4(a) => a.to_ipv6_mapped().to_bits(),
        IpAddr::V6(a) => a.to_bits(),
    };
    assert_eq!(info.src_ip_bits(), bits, "{what}: src_ip_bits");
    let l3 = &outer[ETH_HLEN..];
    let ip_end = match parsed.l2.ethertype {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(l3).expect("parse accepted this IPv4 header");
            assert_eq!(ip.version(), 4);
            assert!(ip.verify_checksum(), "{what}: bad IPv4 checksum accepted");
            assert!(!ip.is_fragment(), "{what}: IPv4 fragment accepted");
            assert_eq!((info.ttl(), info.tos()), (ip.ttl(), ip.tos()));
            ETH_HLEN + usize::from(ip.total_len())
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(l3).expect("parse accepted this IPv6 header");
            assert_eq!(ip.version(), 6);
            assert_eq!(
                (info.ttl(), info.tos()),
                (ip.hop_limit(), ip.traffic_class())
            );
            ETH_HLEN + ipv6::HEADER_LEN + usize::from(ip.payload_len())
        }
        other => panic!("{what} accepted EtherType {other:?}"),
    };
    assert!(l4_offset <= ip_end && ip_end <= outer.len());
    Outer {
        parsed,
        l4: l4_offset,
        ip_end,
    }
}

/// `decap_vxlan` on `f`, with every check that does not need to know the packet: an
/// error leaves the frame as it was, a success leaves a window of the outer bytes that
/// `parse` and the header views agree is the inner frame of a valid VXLAN packet.
pub fn decap_vxlan(f: &mut Frame<Vec<u8>>, cfg: &DecapConfig) -> Result<VxlanInfo, Error> {
    let before = Snapshot::of(f);
    let r = tunnel::decap_vxlan(f, cfg);
    frame_ok(f);
    assert!(
        f.buffer() == &before.buf,
        "decap_vxlan wrote into the buffer"
    );
    let info = match r {
        Ok(info) => info,
        Err(e) => {
            before.assert_unchanged(f, "decap_vxlan", &e);
            return Err(e);
        }
    };
    let what = "decap_vxlan";
    let off = inner_window(&before, f, what);
    let outer = before.data();
    let o = outer_checks(
        outer,
        cfg.vxlan_port,
        ipv4::protocol::UDP,
        &info.outer,
        what,
    );
    assert_eq!(
        o.parsed.tunnel,
        Some(Tunnel::Vxlan {
            vni: info.vni,
            inner_offset: off
        }),
        "{what} and parse disagree"
    );
    let u = udp::Packet::new_checked(&outer[o.l4..o.ip_end]).expect("parse accepted this UDP");
    assert_eq!(u.dst_port(), cfg.vxlan_port);
    assert_eq!(u.src_port(), info.src_port);
    assert_eq!(
        off + f.len(),
        o.l4 + usize::from(u.len()),
        "{what}: inner frame does not end where the UDP datagram does"
    );
    match (info.outer.src_ip(), info.outer.dst_ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => assert!(
            u.checksum() == 0 || u.verify_checksum_v4(s, d),
            "{what}: bad UDP checksum accepted"
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            if u.checksum() == 0 {
                assert!(
                    cfg.udp6_zero_checksum,
                    "{what}: zero UDP/IPv6 checksum accepted"
                );
            } else {
                assert!(
                    u.verify_checksum_v6(&s, &d),
                    "{what}: bad UDP checksum accepted"
                );
            }
        }
        _ => panic!("{what}: mixed address families"),
    }
    let v = vxlan::Packet::new_checked(u.payload()).expect("parse accepted this VXLAN");
    assert!(v.i_flag(), "{what}: VXLAN without the I flag accepted");
    assert!(
        !(cfg.strict_reserved && v.reserved_set()),
        "{what}: reserved bits accepted in strict mode"
    );
    assert_eq!(v.vni(), info.vni);
    Ok(info)
}

/// `decap_gre` on `f`, checked like [`decap_vxlan`].
pub fn decap_gre(f: &mut Frame<Vec<u8>>) -> Result<GreInfo, Error> {
    let before = Snapshot::of(f);
    let r = tunnel::decap_gre(f);
    frame_ok(f);
    assert!(f.buffer() == &before.buf, "decap_gre wrote into the buffer");
    let info = match r {
        Ok(info) => info,
        Err(e) => {
            before.assert_unchanged(f, "decap_gre", &e);
            return Err(e);
        }
    };
    let what = "decap_gre";
    let off = inner_window(&before, f, what);
    let outer = before.data();
    // The port only matters for UDP; any value does here.
    let o = outer_checks(outer, 0, ipv4::protocol::GRE, &info.outer, what);
    assert_eq!(
        o.parsed.tunnel,
        Some(Tunnel::Gre {
            key: info.key,
            inner_offset: off
        }),
        "{what} and parse disagree"
    );
    let L4::Gre(repr) = o.parsed.l4 else {
        panic!("{what}: parse found no GRE header: {:?}", o.parsed.l4)
    };
    assert_eq!(repr.protocol, EtherType::TransparentEthernetBridging);
    assert_eq!((repr.key, repr.seq), (info.key, info.seq));
    assert_eq!(
        off + f.len(),
        o.ip_end,
        "{what}: inner frame does not end where the IP packet does"
    );
    let g = gre::Packet::new_checked(&outer[o.l4..o.ip_end]).expect("parse accepted this GRE");
    assert_eq!(g.version(), 0);
    assert!(!g.has_routing());
    assert!(g.verify_checksum(), "{what}: bad GRE checksum accepted");
    assert_eq!(o.l4 + g.header_len(), off);
    Ok(info)
}
