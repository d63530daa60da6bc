//! Test helpers shared by the unit tests of this crate.

use crate::frame::Frame;
use proptest::prelude::*;

/// `bytes` in a fresh buffer with `head` bytes of headroom and `tail` of tailroom.
pub fn framed(bytes: &[u8], head: usize, tail: usize) -> Frame<Vec<u8>> {
    let mut buf = vec![0u8; head + bytes.len() + tail];
    buf[head..head + bytes.len()].copy_from_slice(bytes);
    Frame::new(buf, head, bytes.len()).unwrap()
}

/// Arbitrary bytes of a length in `min..=max`, at least 14 (an Ethernet header).
pub fn arb_frame_bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), min.max(14)..=max)
}
