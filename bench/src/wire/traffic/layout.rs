//! Byte layouts shared with `bench/bpf/traffic.h`: the test header in the frames and the
//! values of the programs' maps. Map values are encoded field by field (host byte order,
//! C struct layout), never by casting.

/// `TRAFFIC_MAGIC`: the first four bytes of the test header, `"VSWT"`.
pub const MAGIC: u32 = 0x5457_5356;
/// Length of the test header the generator writes at the payload offset.
pub const HEADER_LEN: usize = 24;
/// Highest offset of a configured field (`TRAFFIC_MAX_OFF`).
pub const MAX_OFFSET: usize = 2047;
/// Most MAC fields the generator rewrites (`TRAFFIC_MAX_MAC_FIELDS`).
pub const MAX_MAC_FIELDS: usize = 4;
/// Flows the sink checks the order of (`TRAFFIC_MAX_FLOWS`); frames of higher flow
/// indices are counted but not order-checked.
pub const MAX_CHECKED_FLOWS: u32 = 65536;
/// Most flows: the flow index is 24 bits (MAC offsets, and the header's index field).
pub const MAX_FLOWS: u32 = 1 << 24;
/// Most streams: the stream index is the high byte of the header's index field.
pub const MAX_STREAMS: usize = 256;

pub(super) const HDR_OFF_INDEX: usize = 4;

/// Writes magic and stream index into a template's test header (bytes 0..8); the
/// generator program fills in flow, sequence and timestamp.
pub(super) fn write_header(frame: &mut [u8], off: usize, stream: u8) {
    if let Some(h) = frame.get_mut(off..off + HEADER_LEN) {
        h.fill(0);
        h[..4].copy_from_slice(&MAGIC.to_ne_bytes());
        h[HDR_OFF_INDEX..HDR_OFF_INDEX + 4]
            .copy_from_slice(&(u32::from(stream) << 24).to_ne_bytes());
    }
}

/// `struct gen_config`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct GenConfigValue {
    pub payload_off: u32,
    pub flows: u32,
    pub n_mac: u32,
    pub sport_off: u32,
    pub sport_base: u32,
    pub gen_ifindex: u32,
    pub mac_off: [u32; MAX_MAC_FIELDS],
    pub mac_low: [u32; MAX_MAC_FIELDS],
}

impl GenConfigValue {
    pub fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(56);
        for x in [
            self.payload_off,
            self.flows,
            self.n_mac,
            self.sport_off,
            self.sport_base,
            self.gen_ifindex,
        ]
        .into_iter()
        .chain(self.mac_off)
        .chain(self.mac_low)
        {
            v.extend_from_slice(&x.to_ne_bytes());
        }
        v
    }
}

/// `struct gen_state`: the sequence number of the last frame written, the next flow.
pub(super) fn gen_state_bytes(seq: u64, flow: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&flow.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v
}

/// The `seq` field of a `struct gen_state` value.
pub(super) fn gen_state_seq(value: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(value.get(..8)?.try_into().ok()?))
}

/// `struct sink_config`.
pub(super) fn sink_config_bytes(payload_off: u32, sample_every: u32, pass_other: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    for x in [payload_off, sample_every, u32::from(pass_other), 0] {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    v
}

/// Number of u64 fields of `struct sink_counters`.
pub(super) const SINK_COUNTERS: usize = 9;

/// A `struct sink_counters` value as its u64 fields, in declaration order.
pub(super) fn sink_counters(value: &[u8]) -> Option<[u64; SINK_COUNTERS]> {
    let mut out = [0u64; SINK_COUNTERS];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u64::from_ne_bytes(value.get(i * 8..i * 8 + 8)?.try_into().ok()?);
    }
    Some(out)
}

/// `struct lat_sample`: (latency in ns, sequence number).
pub(super) fn lat_sample(value: &[u8]) -> Option<(u64, u64)> {
    let lat = u64::from_ne_bytes(value.get(..8)?.try_into().ok()?);
    let seq = u64::from_ne_bytes(value.get(8..16)?.try_into().ok()?);
    Some((lat, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_config_matches_c_layout() {
        // 6 u32 + 2 * 4 u32 = 56 bytes, no padding.
        assert_eq!(GenConfigValue::default().to_bytes().len(), 56);
        assert_eq!(gen_state_bytes(1, 2).len(), 16);
        assert_eq!(sink_config_bytes(42, 64, true).len(), 16);
    }

    #[test]
    fn header_written_in_place() {
        let mut f = vec![0xffu8; 80];
        write_header(&mut f, 42, 3);
        assert_eq!(&f[42..46], b"VSWT");
        assert_eq!(u32::from_ne_bytes(f[46..50].try_into().unwrap()), 3 << 24);
        assert!(f[50..66].iter().all(|&b| b == 0));
        assert_eq!(f[41], 0xff);
        assert_eq!(f[66], 0xff);
    }
}
