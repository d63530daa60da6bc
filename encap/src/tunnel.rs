//! VXLAN and GRE encapsulation from per-tunnel templates, and validated decapsulation.
//!
//! A tunnel (one local VTEP toward one remote VTEP) has a template: the outer Ethernet,
//! IPv4 or IPv6, and UDP+VXLAN or GRE headers, built once when the tunnel is configured.
//! Encapsulation copies the template into the frame's headroom and patches what varies per
//! packet — lengths, the IPv4 checksum (from a precomputed partial sum, RFC 1624 style),
//! the UDP source port (from the inner flow hash), the VNI or key — so the payload never
//! moves and no header is built field by field on the hot path (VPP's `vxlan/encap.c`).
//!
//! Decapsulation validates the outer headers — IPv4 header checksum, fragments, options
//! (refused), length fields, the UDP checksum when present (always over IPv6), the VXLAN I flag, the GRE
//! version and routing bits — and strips them, leaving the inner frame; what it read of the
//! outer headers is returned for the caller's checks (is the destination our VTEP, is the
//! source a known remote).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::{self, EtherType, EthernetRepr};
use crate::frame::Frame;
use crate::gre::{self, GreRepr};
use crate::ipv4::{self, protocol, Ipv4Repr};
use crate::ipv6::{self, Ipv6Repr};
use crate::types::{GreKey, MacAddr, Vni};
use crate::udp::{self, UdpRepr};
use crate::vxlan::{self, VxlanRepr};
use crate::ETH_HLEN;

/// Longest template: Ethernet + IPv6 + UDP + VXLAN (or Ethernet + IPv6 + the longest GRE).
pub const MAX_TEMPLATE_LEN: usize = ETH_HLEN + ipv6::HEADER_LEN + 16;

/// First UDP source port used for VXLAN entropy (RFC 7348 §5: 49152–65535).
pub const SRC_PORT_MIN: u16 = 49152;

/// What the outer headers of a tunnel are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterParams {
    /// Our underlay MAC.
    pub src_mac: MacAddr,
    /// The next hop's MAC (the remote VTEP, or the gateway).
    pub dst_mac: MacAddr,
    /// Local VTEP address.
    pub src_ip: IpAddr,
    /// Remote VTEP address (same family as `src_ip`).
    pub dst_ip: IpAddr,
    /// IPv4 TTL / IPv6 hop limit. Default 64.
    pub ttl: u8,
    /// IPv4 DSCP/ECN / IPv6 traffic class. Default 0.
    pub tos: u8,
    /// IPv4 don't-fragment bit. Default set (Neutron `df_default`).
    pub df: bool,
    /// Underlay IP MTU: no outer IP packet larger than this is built. Default 1500.
    pub mtu: u16,
}

impl OuterParams {
    /// Parameters with the defaults: TTL 64, TOS 0, DF set, MTU 1500.
    pub fn new(src_mac: MacAddr, dst_mac: MacAddr, src_ip: IpAddr, dst_ip: IpAddr) -> Self {
        OuterParams {
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            ttl: 64,
            tos: 0,
            df: true,
            mtu: 1500,
        }
    }
}

/// Outer Ethernet + IP part of a template, with what is needed to patch it.
#[derive(Debug, Clone, Copy)]
struct Outer {
    hdr: [u8; MAX_TEMPLATE_LEN],
    /// Whole template length (outer Ethernet to the end of VXLAN/GRE).
    len: usize,
    /// Offset of the UDP/GRE header.
    l4: usize,
    v6: bool,
    df: bool,
    mtu: u16,
    /// IPv4: sum of the header with total length, ident and checksum zero.
    /// IPv6: sum of the UDP pseudo-header with length zero.
    base: u64,
    src: IpAddr,
    dst: IpAddr,
}

impl Outer {
    fn new(p: &OuterParams, proto: u8, l4_len: usize) -> Result<Self, Error> {
        let mut hdr = [0u8; MAX_TEMPLATE_LEN];
        let (ethertype, ip_len) = match (p.src_ip, p.dst_ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (EtherType::Ipv4, ipv4::HEADER_LEN),
            (IpAddr::V6(_), IpAddr::V6(_)) => (EtherType::Ipv6, ipv6::HEADER_LEN),
            _ => return Err(Error::new(Layer::Tunnel, ErrorKind::BadValue)),
        };
        EthernetRepr {
            dst: p.dst_mac,
            src: p.src_mac,
            ethertype,
        }
        .emit(&mut ethernet::Packet::new_unchecked(&mut hdr[..]));
        let ip = &mut hdr[ETH_HLEN..];
        let base = match (p.src_ip, p.dst_ip) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut r = Ipv4Repr::new(s, d, proto, 0);
                r.ttl = p.ttl;
                r.tos = p.tos;
                r.dont_frag = p.df;
                let mut pkt = ipv4::Packet::new_unchecked(&mut *ip);
                r.emit(&mut pkt);
                pkt.set_total_len(0);
                pkt.set_checksum(0);
                checksum::accumulate(0, &ip[..ipv4::HEADER_LEN])
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                Ipv6Repr {
                    src: s,
                    dst: d,
                    next_header: proto,
                    payload_len: 0,
                    hop_limit: p.ttl,
                    traffic_class: p.tos,
                    flow_label: 0,
                }
                .emit(&mut ipv6::Packet::new_unchecked(&mut *ip));
                checksum::pseudo_v6(&s, &d, proto, 0)
            }
            _ => return Err(Error::new(Layer::Tunnel, ErrorKind::BadValue)),
        };
        Ok(Outer {
            hdr,
            len: ETH_HLEN + ip_len + l4_len,
            l4: ETH_HLEN + ip_len,
            v6: matches!(p.src_ip, IpAddr::V6(_)),
            df: p.df,
            mtu: p.mtu,
            base,
            src: p.src_ip,
            dst: p.dst_ip,
        })
    }

    /// Size of the outer IP packet for an inner frame of `inner` bytes.
    #[inline]
    fn ip_size(&self, inner: usize) -> usize {
        self.len - ETH_HLEN + inner
    }

    #[inline]
    fn check_mtu(&self, inner: usize) -> Result<(), Error> {
        let size = self.ip_size(inner);
        if size > usize::from(self.mtu) {
            return Err(Error::new(
                Layer::Tunnel,
                ErrorKind::TooBig {
                    len: crate::error::sat16(size),
                    mtu: self.mtu,
                },
            ));
        }
        Ok(())
    }

    /// Copies the template in front of the frame and patches the IP header. Returns the
    /// encapsulated frame's bytes.
    #[inline]
    fn push<'f, B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &'f mut Frame<B>,
        ip_id: u16,
    ) -> Result<&'f mut [u8], Error> {
        let inner = frame.len();
        self.check_mtu(inner)?;
        // The MTU bounds the size, so it fits a u16.
        let ip_size = self.ip_size(inner) as u16;
        frame
            .push_front(self.len)?
            .copy_from_slice(&self.hdr[..self.len]);
        let data = frame.data_mut();
        let ip = &mut data[ETH_HLEN..];
        if self.v6 {
            let payload = ip_size - ipv6::HEADER_LEN as u16;
            ip[4..6].copy_from_slice(&payload.to_be_bytes());
        } else {
            let id = if self.df { 0 } else { ip_id };
            ip[2..4].copy_from_slice(&ip_size.to_be_bytes());
            ip[4..6].copy_from_slice(&id.to_be_bytes());
            let c = !checksum::fold(self.base + u64::from(ip_size) + u64::from(id));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        Ok(data)
    }
}

/// A VXLAN tunnel's template: outer Ethernet + IPv4/IPv6 + UDP + VXLAN.
#[derive(Debug, Clone, Copy)]
pub struct VxlanTemplate {
    outer: Outer,
    /// The IPv6 pseudo-header and the template's UDP + VXLAN words (source port, length
    /// and VNI zero) as one native-order sum: the UDP checksum is then computed without
    /// reading back the header just written (reading freshly stored bytes stalls on
    /// store forwarding), with a single fold.
    l4_sum: u64,
}

impl VxlanTemplate {
    /// Builds the template for `params` and UDP destination port `dst_port`
    /// ([`vxlan::DEFAULT_PORT`] is 4789). Mixed address families are refused.
    pub fn new(params: &OuterParams, dst_port: u16) -> Result<Self, Error> {
        let mut outer = Outer::new(params, protocol::UDP, udp::HEADER_LEN + vxlan::HEADER_LEN)?;
        let l4 = outer.l4;
        UdpRepr {
            src_port: SRC_PORT_MIN,
            dst_port,
            payload_len: 0,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut outer.hdr[l4..]));
        VxlanRepr {
            vni: Vni::from_bits(0),
        }
        .emit(&mut vxlan::Packet::new_unchecked(
            &mut outer.hdr[l4 + udp::HEADER_LEN..],
        ));
        let mut words = [0u8; 16];
        words.copy_from_slice(&outer.hdr[l4..l4 + 16]);
        words[0..2].fill(0); // source port
        words[4..6].fill(0); // length
        let be = checksum::accumulate(outer.base, &words);
        Ok(VxlanTemplate {
            outer,
            l4_sum: checksum::native_word(checksum::fold(be)),
        })
    }

    /// Bytes added in front of the inner frame: 50 over IPv4, 70 over IPv6.
    #[inline]
    pub fn overhead(&self) -> usize {
        self.outer.len
    }

    /// Checks, before encapsulating, that an inner frame of `inner_len` bytes fits the
    /// underlay MTU once encapsulated.
    #[inline]
    pub fn check_mtu(&self, inner_len: usize) -> Result<(), Error> {
        self.outer.check_mtu(inner_len)
    }

    /// Largest inner frame (Ethernet header included) that fits the underlay MTU.
    #[inline]
    pub fn max_inner_len(&self) -> usize {
        usize::from(self.outer.mtu).saturating_sub(self.outer.len - ETH_HLEN)
    }

    /// The outer headers as [`VxlanTemplate::encap`] writes them, before the per-frame
    /// fields (IP total length, ID and checksum, UDP source port and length, VNI) are
    /// set: for a copy of the encapsulation elsewhere (the XDP fast path).
    pub fn header(&self) -> &[u8] {
        &self.outer.hdr[..self.outer.len]
    }

    /// Whether the outer IP is IPv6.
    pub fn is_v6(&self) -> bool {
        self.outer.v6
    }

    /// Whether the outer IPv4 header has DF set (then its ID is always 0).
    pub fn df(&self) -> bool {
        self.outer.df
    }

    /// The underlay IP MTU.
    pub fn mtu(&self) -> u16 {
        self.outer.mtu
    }

    /// Encapsulates the frame in place with `vni`. `flow_hash` picks the UDP source
    /// port (use [`flow_hash`] of the inner frame, computed once per flow); `ip_id` is
    /// used only when DF is clear (with DF set the ID is 0, RFC 6864). Nothing is written
    /// if the frame does not fit the MTU or the headroom.
    #[inline]
    pub fn encap<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &mut Frame<B>,
        vni: Vni,
        flow_hash: u32,
        ip_id: u16,
    ) -> Result<(), Error> {
        let o = &self.outer;
        // Over IPv6 the UDP checksum is mandatory (RFC 7348 §6, RFC 8200 §8.1): sum the
        // inner frame before the headers are written in front of it.
        let inner_sum = if o.v6 {
            checksum::sum_native(0, frame.data())
        } else {
            0
        };
        let data = o.push(frame, ip_id)?;
        let udp_len = (data.len() - o.l4) as u16;
        let sport = source_port(flow_hash);
        let v = vni.get();
        let l4 = &mut data[o.l4..];
        l4[0..2].copy_from_slice(&sport.to_be_bytes());
        l4[4..6].copy_from_slice(&udp_len.to_be_bytes());
        l4[12..15].copy_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
        if o.v6 {
            let sum = self.l4_sum
                + 2 * checksum::native_word(udp_len) // pseudo-header and UDP length field
                + checksum::native_word(sport)
                + checksum::native_word((v >> 8) as u16) // VNI bytes 0-1
                + checksum::native_word(((v & 0xff) << 8) as u16) // VNI byte 2, reserved
                + inner_sum;
            let c = !u16::from_be(checksum::fold(sum));
            l4[6..8].copy_from_slice(&checksum::nonzero(c).to_be_bytes());
        }
        Ok(())
    }

    /// Remote VTEP address.
    pub fn remote(&self) -> IpAddr {
        self.outer.dst
    }

    /// Local VTEP address.
    pub fn local(&self) -> IpAddr {
        self.outer.src
    }
}

/// GRE options of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GreOptions {
    /// Send a checksum (C bit).
    pub checksum: bool,
    /// Send sequence numbers (S bit).
    pub seq: bool,
}

/// A GRE tunnel's template: outer Ethernet + IPv4/IPv6 + GRE with a key, protocol 0x6558.
#[derive(Debug, Clone, Copy)]
pub struct GreTemplate {
    outer: Outer,
    opts: GreOptions,
}

impl GreTemplate {
    /// Builds the template. Every Neutron GRE network carries its segment id as the key,
    /// so the K bit is always set.
    pub fn new(params: &OuterParams, opts: GreOptions) -> Result<Self, Error> {
        let repr = GreRepr {
            checksum: opts.checksum,
            key: Some(GreKey::new(0)),
            seq: opts.seq.then_some(0),
            protocol: EtherType::TransparentEthernetBridging,
        };
        let mut outer = Outer::new(params, protocol::GRE, repr.buffer_len())?;
        let l4 = outer.l4;
        repr.emit(&mut gre::Packet::new_unchecked(&mut outer.hdr[l4..]));
        Ok(GreTemplate { outer, opts })
    }

    /// Bytes added in front of the inner frame: 42 over IPv4, 62 over IPv6, +4 each for
    /// checksum and sequence number.
    #[inline]
    pub fn overhead(&self) -> usize {
        self.outer.len
    }

    /// Checks that an inner frame of `inner_len` bytes fits the MTU once encapsulated.
    #[inline]
    pub fn check_mtu(&self, inner_len: usize) -> Result<(), Error> {
        self.outer.check_mtu(inner_len)
    }

    /// Largest inner frame that fits the underlay MTU.
    #[inline]
    pub fn max_inner_len(&self) -> usize {
        usize::from(self.outer.mtu).saturating_sub(self.outer.len - ETH_HLEN)
    }

    /// The outer headers as [`GreTemplate::encap`] writes them, before the per-frame
    /// fields (IP length, ID and checksum, key, sequence number, GRE checksum) are set:
    /// for a copy of the encapsulation elsewhere (the XDP fast path).
    pub fn header(&self) -> &[u8] {
        &self.outer.hdr[..self.outer.len]
    }

    /// Whether the outer IP is IPv6.
    pub fn is_v6(&self) -> bool {
        self.outer.v6
    }

    /// Whether the outer IPv4 header has DF set (then its ID is always 0).
    pub fn df(&self) -> bool {
        self.outer.df
    }

    /// The GRE options it sends with.
    pub fn options(&self) -> GreOptions {
        self.opts
    }

    /// Encapsulates the frame in place with `key`; `seq` is written when sequence numbers
    /// are on, `ip_id` used only when DF is clear.
    #[inline]
    pub fn encap<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &mut Frame<B>,
        key: GreKey,
        seq: u32,
        ip_id: u16,
    ) -> Result<(), Error> {
        let o = &self.outer;
        let data = o.push(frame, ip_id)?;
        let g = &mut data[o.l4..];
        let mut at = gre::BASE_LEN + 4 * usize::from(self.opts.checksum);
        g[at..at + 4].copy_from_slice(&key.get().to_be_bytes());
        at += 4;
        if self.opts.seq {
            g[at..at + 4].copy_from_slice(&seq.to_be_bytes());
        }
        if self.opts.checksum {
            gre::Packet::new_unchecked(g).fill_checksum();
        }
        Ok(())
    }

    /// Remote VTEP address.
    pub fn remote(&self) -> IpAddr {
        self.outer.dst
    }
}

/// How received tunnel packets are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecapConfig {
    /// UDP destination port that carries VXLAN (default 4789).
    pub vxlan_port: u16,
    /// Refuse VXLAN headers with reserved bits set (the kernel's and OVS's behaviour).
    /// Off by default, as RFC 7348 says to ignore them.
    pub strict_reserved: bool,
    /// Accept a zero UDP checksum over IPv6 (RFC 6935; the kernel's `udp6zerocsumrx`).
    /// Off by default.
    pub udp6_zero_checksum: bool,
}

impl Default for DecapConfig {
    fn default() -> Self {
        DecapConfig {
            vxlan_port: vxlan::DEFAULT_PORT,
            strict_reserved: false,
            udp6_zero_checksum: false,
        }
    }
}

/// What decapsulation read of the outer headers.
///
/// Addresses are kept as aligned integers (an IPv4 address as its IPv4-mapped IPv6 form)
/// so that the result moves through registers; byte-array addresses made the hot path
/// stall on store forwarding. The accessors give the usual types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterInfo {
    src_ip: u128,
    dst_ip: u128,
    src_mac: u64,
    dst_mac: u64,
    v6: bool,
    ttl: u8,
    tos: u8,
}

impl OuterInfo {
    /// The remote VTEP (outer source address).
    #[inline]
    pub fn src_ip(&self) -> IpAddr {
        Self::addr(self.src_ip, self.v6)
    }
    /// The local VTEP as addressed (outer destination address).
    #[inline]
    pub fn dst_ip(&self) -> IpAddr {
        Self::addr(self.dst_ip, self.v6)
    }
    /// The outer source address as 128 bits (IPv4 mapped into `::ffff:0:0/96`): a cheap
    /// lookup key.
    #[inline]
    pub fn src_ip_bits(&self) -> u128 {
        self.src_ip
    }
    /// The outer destination address as 128 bits, like [`OuterInfo::src_ip_bits`].
    #[inline]
    pub fn dst_ip_bits(&self) -> u128 {
        self.dst_ip
    }
    /// Outer source MAC.
    #[inline]
    pub fn src_mac(&self) -> MacAddr {
        MacAddr::from_u64(self.src_mac)
    }
    /// Outer destination MAC.
    #[inline]
    pub fn dst_mac(&self) -> MacAddr {
        MacAddr::from_u64(self.dst_mac)
    }
    /// The underlay is IPv6.
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }
    /// TTL or hop limit.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.ttl
    }
    /// DSCP/ECN or traffic class.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.tos
    }

    #[inline]
    fn addr(bits: u128, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from_bits(bits))
        } else {
            IpAddr::V4(Ipv4Addr::from_bits(bits as u32))
        }
    }
}

/// A decapsulated VXLAN packet's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanInfo {
    /// The VNI.
    pub vni: Vni,
    /// The outer UDP source port (the sender's flow entropy).
    pub src_port: u16,
    /// Outer headers.
    pub outer: OuterInfo,
}

/// A decapsulated GRE packet's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreInfo {
    /// The key, if the packet had one.
    pub key: Option<GreKey>,
    /// The sequence number, if the packet had one.
    pub seq: Option<u32>,
    /// Outer headers.
    pub outer: OuterInfo,
}

/// Where the outer headers are, as found by [`outer_l4`]: plain offsets, so that the hot
/// path moves integers, not address enums.
struct OuterL4 {
    /// IPv6 (else IPv4) outer header at `ETH_HLEN`.
    v6: bool,
    /// Start of the UDP/GRE header.
    start: usize,
    /// End of the IP packet (padding excluded).
    end: usize,
}

impl OuterL4 {
    /// Whether the UDP checksum of `datagram` verifies, pseudo-header included: one
    /// native-order sum over the addresses and the datagram, folded once (a sum that
    /// verifies folds to 0xffff in either byte order).
    #[inline(always)]
    fn udp_checksum_ok(&self, data: &[u8], datagram: &[u8]) -> bool {
        let addrs = if self.v6 {
            &data[ETH_HLEN + 8..ETH_HLEN + 40]
        } else {
            &data[ETH_HLEN + 12..ETH_HLEN + 20]
        };
        let acc = checksum::sum_native(0, addrs)
            + checksum::native_word(u16::from(protocol::UDP))
            + checksum::native_word(datagram.len() as u16);
        if checksum::fold(checksum::sum_native(acc, datagram)) == 0xffff {
            return true;
        }
        // A checksum field holding the pseudo-header sum alone is a *partial* checksum:
        // what a sender with TX checksum offload leaves for the NIC to complete (Linux's
        // CHECKSUM_PARTIAL), which reaches us uncompleted over a veth or tap. The kernel
        // trusts such a packet from a local device; so do we.
        datagram.len() >= 8 && u16::from_ne_bytes([datagram[6], datagram[7]]) == checksum::fold(acc)
    }

    /// What the caller gets to see of the outer headers.
    #[inline(always)]
    fn info(&self, data: &[u8]) -> OuterInfo {
        let ip = &data[ETH_HLEN..];
        let word = |r: core::ops::Range<usize>| {
            let mut w = [0u8; 16];
            w[16 - r.len()..].copy_from_slice(&ip[r]);
            u128::from_be_bytes(w)
        };
        const MAPPED: u128 = 0xffff << 32;
        let (src_ip, dst_ip, ttl, tos) = if self.v6 {
            let p = ipv6::Packet::new_unchecked(ip);
            (word(8..24), word(24..40), p.hop_limit(), p.traffic_class())
        } else {
            let p = ipv4::Packet::new_unchecked(ip);
            (
                MAPPED | word(12..16),
                MAPPED | word(16..20),
                p.ttl(),
                p.tos(),
            )
        };
        let eth = ethernet::Packet::new_unchecked(data);
        OuterInfo {
            src_ip,
            dst_ip,
            src_mac: eth.src().to_u64(),
            dst_mac: eth.dst().to_u64(),
            v6: self.v6,
            ttl,
            tos,
        }
    }
}

/// Validates the outer Ethernet and IP headers of `data` and finds the `proto` header.
#[inline(always)]
fn outer_l4(data: &[u8], proto: u8) -> Result<OuterL4, Error> {
    let eth = ethernet::Packet::new_checked(data)?;
    match eth.ethertype() {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(&data[ETH_HLEN..])?;
            if ip.version() != 4 {
                return Err(Error::new(Layer::Ipv4, ErrorKind::BadVersion));
            }
            if !ip.verify_checksum() {
                return Err(Error::new(Layer::Ipv4, ErrorKind::BadChecksum));
            }
            if ip.is_fragment() {
                return Err(Error::new(Layer::Ipv4, ErrorKind::Fragment));
            }
            if ip.protocol() != proto {
                return Err(Error::new(Layer::Ipv4, ErrorKind::NotMatched));
            }
            if ip.header_len() != ipv4::HEADER_LEN {
                // Options a VTEP does not act on (source routes, timestamps) are refused,
                // as Open vSwitch's native tunnels do, rather than silently ignored.
                return Err(Error::new(Layer::Ipv4, ErrorKind::Unsupported));
            }
            Ok(OuterL4 {
                v6: false,
                start: ETH_HLEN + ip.header_len(),
                end: ETH_HLEN + usize::from(ip.total_len()),
            })
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(&data[ETH_HLEN..])?;
            if ip.version() != 6 {
                return Err(Error::new(Layer::Ipv6, ErrorKind::BadVersion));
            }
            let (next, off) = ip.upper_layer()?;
            if next != proto {
                return Err(Error::new(Layer::Ipv6, ErrorKind::NotMatched));
            }
            Ok(OuterL4 {
                v6: true,
                start: ETH_HLEN + off,
                end: ETH_HLEN + ipv6::HEADER_LEN + usize::from(ip.payload_len()),
            })
        }
        _ => Err(Error::new(Layer::Ethernet, ErrorKind::NotMatched)),
    }
}

/// Strips everything but `start..end` of the frame; the inner frame must hold at least
/// an Ethernet header.
#[inline(always)]
fn keep_inner<B: AsRef<[u8]> + AsMut<[u8]>>(
    frame: &mut Frame<B>,
    start: usize,
    end: usize,
) -> Result<(), Error> {
    let inner = end.saturating_sub(start);
    if inner < ETH_HLEN {
        return Err(Error::truncated(Layer::Ethernet, ETH_HLEN, inner));
    }
    frame.pull_front(start)?;
    frame.truncate(inner);
    Ok(())
}

/// Validates a VXLAN packet and strips its outer headers, leaving the inner frame. On an
/// error the frame is left untouched. `NotMatched` errors mean "not VXLAN" (another
/// protocol or port), the others a malformed or refused VXLAN packet.
#[inline]
pub fn decap_vxlan<B: AsRef<[u8]> + AsMut<[u8]>>(
    frame: &mut Frame<B>,
    cfg: &DecapConfig,
) -> Result<VxlanInfo, Error> {
    let data = frame.data();
    let l4 = outer_l4(data, protocol::UDP)?;
    let u = udp::Packet::new_checked(&data[l4.start..l4.end])?;
    if u.dst_port() != cfg.vxlan_port {
        return Err(Error::new(Layer::Udp, ErrorKind::NotMatched));
    }
    let csum = u.checksum();
    if csum == 0 {
        // RFC 7348: a zero checksum over IPv4 is accepted; over IPv6 only when allowed.
        if l4.v6 && !cfg.udp6_zero_checksum {
            return Err(Error::new(Layer::Udp, ErrorKind::BadChecksum));
        }
    } else if !l4.udp_checksum_ok(data, &data[l4.start..l4.start + usize::from(u.len())]) {
        return Err(Error::new(Layer::Udp, ErrorKind::BadChecksum));
    }
    let v = vxlan::Packet::new_checked(u.payload())?;
    let repr = VxlanRepr::parse(&v, cfg.strict_reserved)?;
    let info = VxlanInfo {
        vni: repr.vni,
        src_port: u.src_port(),
        outer: l4.info(data),
    };
    let start = l4.start + udp::HEADER_LEN + vxlan::HEADER_LEN;
    let end = l4.start + usize::from(u.len());
    keep_inner(frame, start, end)?;
    Ok(info)
}

/// Validates a GRE packet (version 0, no routing, protocol 0x6558, checksum when
/// present) and strips its outer headers. On an error the frame is left untouched.
#[inline]
pub fn decap_gre<B: AsRef<[u8]> + AsMut<[u8]>>(frame: &mut Frame<B>) -> Result<GreInfo, Error> {
    let data = frame.data();
    let l4 = outer_l4(data, protocol::GRE)?;
    let g = gre::Packet::new_checked(&data[l4.start..l4.end])?;
    let repr = GreRepr::parse(&g)?;
    if repr.protocol != EtherType::TransparentEthernetBridging {
        return Err(Error::new(Layer::Gre, ErrorKind::NotMatched));
    }
    if !g.verify_checksum() {
        return Err(Error::new(Layer::Gre, ErrorKind::BadChecksum));
    }
    let info = GreInfo {
        key: repr.key,
        seq: repr.seq,
        outer: l4.info(data),
    };
    keep_inner(frame, l4.start + repr.buffer_len(), l4.end)?;
    Ok(info)
}

/// A decapsulated tunnel packet of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decapsulated {
    /// VXLAN.
    Vxlan(VxlanInfo),
    /// GRE (transparent Ethernet bridging).
    Gre(GreInfo),
}

impl Decapsulated {
    /// What decapsulation read of the outer headers.
    #[inline]
    pub fn outer(&self) -> OuterInfo {
        match self {
            Decapsulated::Vxlan(i) => i.outer,
            Decapsulated::Gre(i) => i.outer,
        }
    }
}

/// Decapsulates a VXLAN or a GRE packet, whichever it is: GRE is tried first when the
/// outer header says so (IPv4 protocol or IPv6 next header 47), VXLAN first otherwise,
/// so that the usual packet is parsed once. A `NotMatched` error means it is neither;
/// other errors, a malformed tunnel packet. On an error the frame is left untouched.
#[inline]
pub fn decap<B: AsRef<[u8]> + AsMut<[u8]>>(
    frame: &mut Frame<B>,
    cfg: &DecapConfig,
) -> Result<Decapsulated, Error> {
    let data = frame.data();
    let gre_first = match data.get(12..14) {
        Some([0x08, 0x00]) => data.get(23) == Some(&protocol::GRE),
        Some([0x86, 0xdd]) => data.get(20) == Some(&protocol::GRE),
        _ => false,
    };
    if gre_first {
        if let Ok(info) = decap_gre(frame) {
            return Ok(Decapsulated::Gre(info));
        }
    }
    match decap_vxlan(frame, cfg) {
        Ok(info) => Ok(Decapsulated::Vxlan(info)),
        Err(e) if e.kind == ErrorKind::NotMatched => decap_gre(frame).map(Decapsulated::Gre),
        Err(e) => Err(e),
    }
}

/// The UDP source port for a flow hash: 49152–65535, both halves of the hash mixed in.
#[inline]
pub fn source_port(hash: u32) -> u16 {
    SRC_PORT_MIN | ((hash ^ (hash >> 16)) as u16 & 0x3fff)
}

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    // A multiply-fold step (as in wyhash/foldhash): fast, and good enough to spread
    // flows over 14 bits of port; not meant to resist chosen inputs.
    let m = u128::from(h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15_u128 | 1 << 64);
    (m as u64) ^ ((m >> 64) as u64)
}

#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().saturating_sub(at).min(8);
    w[..n].copy_from_slice(&b[at..at + n]);
    u64::from_be_bytes(w)
}

/// A hash of the inner frame's flow: Ethernet addresses and type, and for IPv4/IPv6 the
/// addresses, protocol and TCP/UDP/SCTP ports (not for fragments). Stable for a flow,
/// varied across flows; works on any bytes.
///
/// The fields are folded into two lanes with rotations (independent of each other, so
/// the CPU computes them in parallel) and mixed once at the end: one multiply on the
/// critical path instead of one per field.
#[inline]
pub fn flow_hash(inner: &[u8]) -> u32 {
    if inner.len() < ETH_HLEN {
        return mix(0, u64_at(inner, 0)) as u32;
    }
    // Lane a: L2 (and the protocol); lane b: L3/L4.
    let mut a = u64_at(inner, 0) ^ (u64_at(inner, 6) >> 16).rotate_left(23);
    let mut b = 0u64;
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([inner[12], inner[13]]);
    for _ in 0..2 {
        if (ethertype == 0x8100 || ethertype == 0x88a8) && inner.len() >= off + 6 {
            let vid = u16::from_be_bytes([inner[off + 2], inner[off + 3]]) & 0x0fff;
            a ^= u64::from(vid).rotate_left(41 + off as u32);
            off += 4;
            ethertype = u16::from_be_bytes([inner[off], inner[off + 1]]);
        }
    }
    a ^= u64::from(ethertype) << 48;
    let l3 = &inner[off + 2..];
    let (proto, l4) = match ethertype {
        0x0800 if l3.len() >= 20 => {
            b ^= u64_at(l3, 12);
            let frag = u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff != 0;
            let hl = usize::from(l3[0] & 0x0f) * 4;
            (if frag { 0 } else { l3[9] }, hl)
        }
        0x86dd if l3.len() >= 40 => {
            b ^= u64_at(l3, 8) ^ u64_at(l3, 16).rotate_left(13);
            b ^= u64_at(l3, 24).rotate_left(29) ^ u64_at(l3, 32).rotate_left(47);
            (l3[6], 40)
        }
        _ => (0, 0),
    };
    a ^= u64::from(proto) << 40;
    if matches!(proto, 6 | 17 | 132) && l3.len() >= l4 + 4 {
        b ^= (u64_at(l3, l4) >> 32).rotate_left(7);
    }
    let h = mix(a, mix(b, 0x5bd1_e995));
    (h ^ (h >> 32)) as u32
}

/// The local and remote VTEPs of an IPv4 template (convenience for tests and tools).
pub fn v4_params(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr) -> OuterParams {
    OuterParams::new(src_mac, dst_mac, src.into(), dst.into())
}

/// The local and remote VTEPs of an IPv6 template (convenience for tests and tools).
pub fn v6_params(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr) -> OuterParams {
    OuterParams::new(src_mac, dst_mac, src.into(), dst.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{arb_frame_bytes, framed};
    use crate::vlan::{self, VlanTag};
    use crate::VlanId;
    use proptest::prelude::*;

    const LMAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const RMAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    fn v4() -> OuterParams {
        v4_params(
            LMAC,
            RMAC,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        )
    }

    fn v6() -> OuterParams {
        v6_params(
            LMAC,
            RMAC,
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    }

    /// A 60-byte broadcast ARP request as the inner frame.
    fn inner_arp() -> Vec<u8> {
        let mut f = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x16, 0x3e, 0, 0, 1, 0x08, 0x06,
        ];
        f.extend_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 1, 0xfa, 0x16, 0x3e, 0, 0, 1, 10, 0, 0, 1,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f.resize(60, 0);
        f
    }

    #[test]
    fn vxlan_v4_golden() {
        let t = VxlanTemplate::new(&v4(), 4789).unwrap();
        assert_eq!(t.overhead(), 50);
        let inner = inner_arp();
        let mut f = framed(&inner, 64, 0);
        t.encap(&mut f, Vni::try_new(5010).unwrap(), 0x1234_5678, 99)
            .unwrap();
        let d = f.data();
        let sport = source_port(0x1234_5678).to_be_bytes();
        #[rustfmt::skip]
        let mut expect = vec![
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
            // IPv4: len 96, id 0 (DF set), TTL 64, UDP, checksum filled below.
            0x45, 0x00, 0x00, 96, 0x00, 0x00, 0x40, 0x00, 64, 17, 0, 0,
            198, 18, 0, 1, 198, 18, 0, 2,
            // UDP: sport, 4789, len 76, checksum 0.
            sport[0], sport[1], 0x12, 0xb5, 0, 76, 0, 0,
            // VXLAN: I flag, VNI 5010.
            0x08, 0, 0, 0, 0x00, 0x13, 0x92, 0x00,
        ];
        let c = checksum::checksum(&expect[14..34]);
        expect[24..26].copy_from_slice(&c.to_be_bytes());
        expect.extend_from_slice(&inner);
        assert_eq!(d, &expect[..]);
        assert!((49152..=65535).contains(&u16::from_be_bytes(sport)));
    }

    #[test]
    fn df_clear_uses_ident() {
        let mut p = v4();
        p.df = false;
        let t = VxlanTemplate::new(&p, 4789).unwrap();
        let mut f = framed(&inner_arp(), 64, 0);
        t.encap(&mut f, Vni::try_new(1).unwrap(), 0, 0xabcd)
            .unwrap();
        let ip = ipv4::Packet::new_checked(&f.data()[14..]).unwrap();
        assert_eq!(ip.ident(), 0xabcd);
        assert!(!ip.dont_frag());
        assert!(ip.verify_checksum());
    }

    #[test]
    fn vxlan_v6_checksum_and_lengths() {
        let t = VxlanTemplate::new(&v6(), 4789).unwrap();
        assert_eq!(t.overhead(), 70);
        let mut f = framed(&inner_arp(), 80, 0);
        t.encap(&mut f, Vni::try_new(7).unwrap(), 5, 0).unwrap();
        let d = f.data();
        let ip = ipv6::Packet::new_checked(&d[14..]).unwrap();
        assert_eq!(usize::from(ip.payload_len()), 60 + 16);
        assert_eq!(ip.next_header(), 17);
        assert_eq!(ip.hop_limit(), 64);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_ne!(u.checksum(), 0);
        assert!(u.verify_checksum_v6(&ip.src(), &ip.dst()));
    }

    #[test]
    fn gre_golden_and_options() {
        let t = GreTemplate::new(&v4(), GreOptions::default()).unwrap();
        assert_eq!(t.overhead(), 42);
        let inner = inner_arp();
        let mut f = framed(&inner, 64, 0);
        t.encap(&mut f, GreKey::new(0x0102_0304), 0, 0).unwrap();
        let d = f.data();
        assert_eq!(&d[34..42], &[0x20, 0x00, 0x65, 0x58, 1, 2, 3, 4]);
        assert_eq!(d[23], 47);
        assert_eq!(&d[42..], &inner[..]);
        let full = GreTemplate::new(
            &v6(),
            GreOptions {
                checksum: true,
                seq: true,
            },
        )
        .unwrap();
        assert_eq!(full.overhead(), 70);
        let mut f = framed(&inner, 80, 0);
        full.encap(&mut f, GreKey::new(9), 41, 0).unwrap();
        let info = decap_gre(&mut f).unwrap();
        assert_eq!(info.key, Some(GreKey::new(9)));
        assert_eq!(info.seq, Some(41));
        assert_eq!(f.data(), &inner[..]);
    }

    #[test]
    fn mtu_is_enforced_before_writing() {
        let t = VxlanTemplate::new(&v4(), 4789).unwrap();
        // Tenant MTU 1450: a 1464-byte inner frame (1450 + 14) fits exactly.
        assert_eq!(t.max_inner_len(), 1464);
        assert!(t.check_mtu(1464).is_ok());
        let e = t.check_mtu(1465).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::TooBig {
                len: 1501,
                mtu: 1500
            }
        );
        let inner = vec![0u8; 1465];
        let mut f = framed(&inner, 64, 0);
        assert!(t.encap(&mut f, Vni::try_new(1).unwrap(), 0, 0).is_err());
        assert_eq!(f.data(), &inner[..]);
        let mut f = framed(&inner[..100], 49, 0);
        assert_eq!(
            t.encap(&mut f, Vni::try_new(1).unwrap(), 0, 0)
                .unwrap_err()
                .kind,
            ErrorKind::NoHeadroom
        );
        assert_eq!(
            GreTemplate::new(&v6(), GreOptions::default())
                .unwrap()
                .max_inner_len(),
            1500 - 48
        );
    }

    #[test]
    fn mixed_families_refused() {
        let mut p = v4();
        p.dst_ip = "2001:db8::2".parse().unwrap();
        assert!(VxlanTemplate::new(&p, 4789).is_err());
    }

    fn encapped(params: &OuterParams) -> Frame<Vec<u8>> {
        let t = VxlanTemplate::new(params, 4789).unwrap();
        let mut f = framed(&inner_arp(), 80, 8);
        t.encap(&mut f, Vni::try_new(5010).unwrap(), 3, 0).unwrap();
        f
    }

    #[test]
    fn decap_dispatches_on_the_packet() {
        let cfg = DecapConfig::default();
        let vx = encapped(&v4()).data().to_vec();
        let got = decap(&mut framed(&vx, 0, 0), &cfg).unwrap();
        assert!(matches!(got, Decapsulated::Vxlan(i) if i.vni.get() == 5010));
        let t = GreTemplate::new(&v4(), GreOptions::default()).unwrap();
        let mut g = framed(&inner_arp(), 80, 8);
        t.encap(&mut g, GreKey::new(7), 0, 0).unwrap();
        let gre = g.data().to_vec();
        let got = decap(&mut framed(&gre, 0, 0), &cfg).unwrap();
        assert!(matches!(got, Decapsulated::Gre(i) if i.key == Some(GreKey::new(7))));
        assert_eq!(got.outer().src_ip(), v4().src_ip);
        // Neither: NotMatched, and the frame untouched.
        let arp = inner_arp();
        let mut f = framed(&arp, 0, 0);
        let e = decap(&mut f, &cfg).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotMatched);
        assert_eq!(f.data(), &arp[..]);
    }

    fn decap_err(bytes: &[u8], cfg: &DecapConfig) -> Error {
        let mut f = framed(bytes, 0, 0);
        let e = decap_vxlan(&mut f, cfg).unwrap_err();
        assert_eq!(f.data(), bytes, "a refused packet is left untouched");
        e
    }

    #[test]
    fn decap_rejections() {
        let cfg = DecapConfig::default();
        let good = encapped(&v4()).data().to_vec();
        let mut b = good.clone();
        b[24] ^= 1; // IPv4 checksum
        assert_eq!(
            decap_err(&b, &cfg),
            Error::new(Layer::Ipv4, ErrorKind::BadChecksum)
        );
        // Fragment: MF set (checksum fixed up).
        let mut b = good.clone();
        b[20] |= 0x20;
        let mut ip = ipv4::Packet::new_unchecked(&mut b[14..]);
        ip.fill_checksum();
        assert_eq!(decap_err(&b, &cfg).kind, ErrorKind::Fragment);
        // Truncated: the IP total length claims more than is there.
        assert!(matches!(
            decap_err(&good[..good.len() - 1], &cfg).kind,
            ErrorKind::Truncated { .. }
        ));
        // UDP checksum present and wrong.
        let mut b = good.clone();
        b[40] = 0x12;
        b[41] = 0x34;
        assert_eq!(
            decap_err(&b, &cfg),
            Error::new(Layer::Udp, ErrorKind::BadChecksum)
        );
        // UDP checksum present and right: accepted.
        let mut b = good.clone();
        let mut ff = framed(&b, 0, 0);
        {
            let d = ff.data_mut();
            let (s, t) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
            udp::Packet::new_unchecked(&mut d[34..]).fill_checksum_v4(s, t);
        }
        b.copy_from_slice(ff.data());
        assert!(decap_vxlan(&mut framed(&b, 0, 0), &cfg).is_ok());
        // I flag missing.
        let mut b = good.clone();
        b[42] = 0;
        assert_eq!(
            decap_err(&b, &cfg),
            Error::new(Layer::Vxlan, ErrorKind::BadValue)
        );
        // Reserved bits: ignored by default, refused when strict.
        let mut b = good.clone();
        b[49] = 1;
        assert!(decap_vxlan(&mut framed(&b, 0, 0), &cfg).is_ok());
        let strict = DecapConfig {
            strict_reserved: true,
            ..cfg
        };
        assert_eq!(
            decap_err(&b, &strict),
            Error::new(Layer::Vxlan, ErrorKind::Reserved)
        );
        // Another port: not VXLAN.
        let other = DecapConfig {
            vxlan_port: 8472,
            ..cfg
        };
        assert_eq!(
            decap_err(&good, &other),
            Error::new(Layer::Udp, ErrorKind::NotMatched)
        );
        // Outer IPv4 options (here a NOP word inserted after the header): refused.
        let mut b = good[..34].to_vec();
        b.extend_from_slice(&[1, 1, 1, 0]);
        b.extend_from_slice(&good[34..]);
        b[14] = 0x46;
        let total = u16::from_be_bytes([b[16], b[17]]) + 4;
        b[16..18].copy_from_slice(&total.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut b[14..]).fill_checksum();
        assert_eq!(
            decap_err(&b, &cfg),
            Error::new(Layer::Ipv4, ErrorKind::Unsupported)
        );
        // IPv6 with a zero UDP checksum: refused unless allowed.
        let mut b6 = encapped(&v6()).data().to_vec();
        b6[60] = 0;
        b6[61] = 0;
        assert_eq!(
            decap_err(&b6, &cfg),
            Error::new(Layer::Udp, ErrorKind::BadChecksum)
        );
        let zero_ok = DecapConfig {
            udp6_zero_checksum: true,
            ..cfg
        };
        assert!(decap_vxlan(&mut framed(&b6, 0, 0), &zero_ok).is_ok());
        // A partial checksum (the pseudo-header sum alone, as a sender with TX checksum
        // offload leaves it) is accepted; any other wrong value is not.
        let mut partial = encapped(&v6()).data().to_vec();
        let udp_len = u16::from_be_bytes([partial[58], partial[59]]);
        let pseudo = checksum::fold(
            checksum::sum_native(0, &partial[22..54])
                + checksum::native_word(u16::from(protocol::UDP))
                + checksum::native_word(udp_len),
        );
        partial[60..62].copy_from_slice(&pseudo.to_ne_bytes());
        assert!(decap_vxlan(&mut framed(&partial, 0, 0), &cfg).is_ok());
        partial[61] ^= 1;
        assert_eq!(
            decap_err(&partial, &cfg),
            Error::new(Layer::Udp, ErrorKind::BadChecksum)
        );
    }

    #[test]
    fn decap_strips_ethernet_padding() {
        // A GRE packet carrying a 14-byte inner frame is padded by Ethernet to 60 bytes.
        let t = GreTemplate::new(&v4(), GreOptions::default()).unwrap();
        let inner = [0xaau8; 14];
        let mut f = framed(&inner, 64, 16);
        t.encap(&mut f, GreKey::new(1), 0, 0).unwrap();
        f.pad_to(70).unwrap();
        decap_gre(&mut f).unwrap();
        assert_eq!(f.data(), &inner[..]);
    }

    #[test]
    fn flow_hash_is_per_flow() {
        let mut a = inner_arp();
        let h1 = flow_hash(&a);
        assert_eq!(h1, flow_hash(&a));
        a[11] ^= 1;
        assert_ne!(h1, flow_hash(&a));
        // Ports spread: 256 flows that differ in one MAC byte use many source ports.
        let mut ports = std::collections::HashSet::new();
        for i in 0..=255u8 {
            a[11] = i;
            ports.insert(source_port(flow_hash(&a)));
        }
        assert!(ports.len() > 200, "{}", ports.len());
    }

    fn arb_inner() -> impl Strategy<Value = Vec<u8>> {
        (arb_frame_bytes(14, 1464), prop::option::of(1u16..=4094)).prop_map(|(mut f, vid)| {
            if let Some(v) = vid {
                let mut fr = framed(&f, 4, 0);
                vlan::push(&mut fr, VlanTag::dot1q(VlanId::try_new(v).unwrap())).unwrap();
                f = fr.data().to_vec();
                f.truncate(1464);
            }
            f
        })
    }

    proptest! {
        #[test]
        fn vxlan_roundtrip(inner in arb_inner(), v6u: bool, vni in 0u32..=Vni::MAX, h: u32, df: bool, id: u16) {
            let mut p = if v6u { v6() } else { v4() };
            p.df = df;
            let t = VxlanTemplate::new(&p, 4789).unwrap();
            let mut f = framed(&inner, 128, 0);
            match t.encap(&mut f, Vni::try_new(vni).unwrap(), h, id) {
                Ok(()) => {
                    prop_assert!(f.len() - 14 <= 1500);
                    let info = decap_vxlan(&mut f, &DecapConfig::default()).unwrap();
                    prop_assert_eq!(info.vni.get(), vni);
                    prop_assert_eq!(info.src_port, source_port(h));
                    prop_assert_eq!(info.outer.src_ip(), p.src_ip);
                    prop_assert_eq!(f.data(), &inner[..]);
                }
                Err(e) => {
                    let too_big = matches!(e.kind, ErrorKind::TooBig { .. });
                    prop_assert!(too_big);
                    prop_assert!(inner.len() > t.max_inner_len());
                }
            }
        }

        #[test]
        fn gre_roundtrip(inner in arb_inner(), v6u: bool, key: u32, seq: u32, c: bool, s: bool) {
            let p = if v6u { v6() } else { v4() };
            let t = GreTemplate::new(&p, GreOptions { checksum: c, seq: s }).unwrap();
            let mut f = framed(&inner, 128, 0);
            if t.encap(&mut f, GreKey::new(key), seq, 0).is_ok() {
                let info = decap_gre(&mut f).unwrap();
                prop_assert_eq!(info.key, Some(GreKey::new(key)));
                prop_assert_eq!(info.seq, s.then_some(seq));
                prop_assert_eq!(f.data(), &inner[..]);
            } else {
                prop_assert!(inner.len() > t.max_inner_len());
            }
        }

        #[test]
        fn decap_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut f = framed(&b, 0, 0);
            let _ = decap_vxlan(&mut f, &DecapConfig::default());
            let _ = decap_gre(&mut f);
            let _ = flow_hash(f.data());
        }

        #[test]
        fn decap_of_mutated_packets_never_panics(idx in 0usize..110, val: u8, v6u: bool) {
            let mut b = encapped(&if v6u { v6() } else { v4() }).data().to_vec();
            let i = idx % b.len();
            b[i] = val;
            let mut f = framed(&b, 0, 0);
            let _ = decap_vxlan(&mut f, &DecapConfig::default());
        }
    }
}
