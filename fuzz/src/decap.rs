//! The `decap` target: any bytes through `decap_vxlan` and `decap_gre`.
//!
//! Input layout: byte 0 is a control byte, the rest is the frame.
//!
//! | bits of byte 0 | meaning                                                   |
//! |----------------|-----------------------------------------------------------|
//! | 0              | `DecapConfig::strict_reserved`                            |
//! | 1              | `DecapConfig::udp6_zero_checksum`                         |
//! | 2–3            | headroom in front of the frame: 0, 16, 32 or 64 bytes     |
//! | 4–5            | tailroom after the frame: 0, 16, 32 or 64 bytes           |
//!
//! The VXLAN port is 4789. The frame is decapsulated as VXLAN and, from a fresh copy,
//! as GRE; what a decapsulation leaves is decapsulated again (VXLAN in VXLAN, GRE in
//! VXLAN, ...) up to [`MAX_DEPTH`] times. See [`crate::check::decap_vxlan`] for what is
//! asserted: a refused packet leaves the frame byte-identical; an accepted one leaves
//! an inner frame of at least 14 bytes that is the outer bytes at the offset `parse`
//! reports, from a packet whose headers the views confirm are valid.

use encap::tunnel::{flow_hash, DecapConfig};
use encap::vxlan;
use encap::Frame;

use crate::check;

/// Decapsulations in a row at most.
pub const MAX_DEPTH: usize = 4;

/// The control byte for a configuration and room sizes (as `gen_seeds` writes it).
/// `room` values are rounded down to 0, 16, 32 or 64.
pub fn control(strict: bool, udp6_zero: bool, headroom: usize, tailroom: usize) -> u8 {
    let code = |r: usize| match r {
        0..=15 => 0u8,
        16..=31 => 1,
        32..=63 => 2,
        _ => 3,
    };
    u8::from(strict) | u8::from(udp6_zero) << 1 | code(headroom) << 2 | code(tailroom) << 4
}

/// The configuration a control byte selects.
pub fn config(ctl: u8) -> DecapConfig {
    DecapConfig {
        vxlan_port: vxlan::DEFAULT_PORT,
        strict_reserved: ctl & 1 != 0,
        udp6_zero_checksum: ctl & 2 != 0,
    }
}

fn room(code: u8) -> usize {
    [0, 16, 32, 64][usize::from(code & 3)]
}

/// Runs the target on `data`.
pub fn run(data: &[u8]) {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let cfg = config(ctl);
    let (head, tail) = (room(ctl >> 2), room(ctl >> 4));

    let mut f = crate::framed(bytes, head, tail);
    for _ in 0..MAX_DEPTH {
        let _ = flow_hash(f.data());
        if check::decap_vxlan(&mut f, &cfg).is_err() && check::decap_gre(&mut f).is_err() {
            break;
        }
    }

    // GRE first, on a fresh copy (so a packet that is both is tried both ways).
    let mut f: Frame<Vec<u8>> = crate::framed(bytes, head, tail);
    if check::decap_gre(&mut f).is_ok() {
        let _ = check::decap_vxlan(&mut f, &cfg);
    }

    // The dispatching decap agrees with the kind-specific ones: whatever it returns,
    // decapsulating the same bytes with that kind's function gives the same result.
    let mut f: Frame<Vec<u8>> = crate::framed(bytes, head, tail);
    let before = f.data().to_vec();
    match encap::tunnel::decap(&mut f, &cfg) {
        Ok(encap::tunnel::Decapsulated::Vxlan(i)) => {
            let mut g: Frame<Vec<u8>> = crate::framed(bytes, head, tail);
            assert_eq!(encap::tunnel::decap_vxlan(&mut g, &cfg), Ok(i));
            assert_eq!(g.data(), f.data());
        }
        Ok(encap::tunnel::Decapsulated::Gre(i)) => {
            let mut g: Frame<Vec<u8>> = crate::framed(bytes, head, tail);
            assert_eq!(encap::tunnel::decap_gre(&mut g), Ok(i));
            assert_eq!(g.data(), f.data());
        }
        Err(_) => assert_eq!(f.data(), &before[..], "a refused packet is left untouched"),
    }
}
