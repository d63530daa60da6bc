//! Test frame templates: Ethernet + IPv4 + UDP with room for the test header.

use std::net::Ipv4Addr;

use super::layout::HEADER_LEN;
use super::TrafficError;

/// An Ethernet/IPv4/UDP test frame: what [`Udp4Template::build`] makes into a
/// [`Stream`](super::Stream) template. Its UDP checksum is 0 ("none", allowed over IPv4),
/// so the generator may rewrite the source port and the test header without fixing a
/// checksum; the IPv4 header checksum is computed. Addresses used by vswitch's tests and
/// benchmarks come from 198.18.0.0/15 (RFC 2544 benchmarking).
///
/// ```text
///  0      6      12   14            34     36     38   40  42          66
///  +------+------+----+-------------+------+------+----+---+-----------+------+
///  | dst  | src  |0800| IPv4 (20 B) |sport |dport |len |0  |test header| pad  |
///  +------+------+----+-------------+------+------+----+---+-----------+------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp4Template {
    /// Destination MAC (offset [`Udp4Template::DST_MAC_OFFSET`]).
    pub dst_mac: [u8; 6],
    /// Source MAC (offset [`Udp4Template::SRC_MAC_OFFSET`]).
    pub src_mac: [u8; 6],
    /// IPv4 source address.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination address.
    pub dst_ip: Ipv4Addr,
    /// UDP source port (offset [`Udp4Template::UDP_SPORT_OFFSET`]).
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// Frame length without FCS, at least [`Udp4Template::MIN_LEN`] (66).
    pub frame_len: usize,
}

impl Udp4Template {
    /// Offset of the destination MAC.
    pub const DST_MAC_OFFSET: usize = 0;
    /// Offset of the source MAC.
    pub const SRC_MAC_OFFSET: usize = 6;
    /// Offset of the UDP source port.
    pub const UDP_SPORT_OFFSET: usize = 34;
    /// Offset of the UDP payload, where the test header goes.
    pub const PAYLOAD_OFFSET: usize = 42;
    /// Shortest frame: headers and the test header.
    pub const MIN_LEN: usize = Self::PAYLOAD_OFFSET + HEADER_LEN;
    /// Longest frame built (a 1500-byte IP packet).
    pub const MAX_LEN: usize = 1514;

    /// The frame's bytes. Payload bytes after the test header are zero.
    pub fn build(&self) -> Result<Vec<u8>, TrafficError> {
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&self.frame_len) {
            return Err(TrafficError::Config(format!(
                "UDP/IPv4 frame length {} is not in {}..={}",
                self.frame_len,
                Self::MIN_LEN,
                Self::MAX_LEN
            )));
        }
        let mut f = vec![0u8; self.frame_len];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (self.frame_len - 14) as u16;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = 17; // UDP
        ip[12..16].copy_from_slice(&self.src_ip.octets());
        ip[16..20].copy_from_slice(&self.dst_ip.octets());
        let csum = ipv4_checksum(ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        let udp = &mut f[34..42];
        udp[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        udp[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
        // udp[6..8]: checksum 0 = none.
        Ok(f)
    }
}

/// The Internet checksum of an IPv4 header whose checksum field is zero.
fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(len: usize) -> Udp4Template {
        Udp4Template {
            dst_mac: [0x02, 0, 0, 0, 0, 2],
            src_mac: [0x02, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(198, 18, 0, 1),
            dst_ip: Ipv4Addr::new(198, 19, 0, 1),
            src_port: 1024,
            dst_port: 9,
            frame_len: len,
        }
    }

    #[test]
    fn builds_valid_udp4() {
        let f = t(66).build().unwrap();
        assert_eq!(f.len(), 66);
        assert_eq!(ipv4_checksum(&f[14..34]), 0, "header checksum verifies");
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 52);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 32);
        assert_eq!(&f[34..36], &1024u16.to_be_bytes());
    }

    #[test]
    fn refuses_short_and_long() {
        assert!(t(65).build().is_err());
        assert!(t(1515).build().is_err());
        assert!(t(1514).build().is_ok());
    }
}
