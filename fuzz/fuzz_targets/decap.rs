//! Any bytes (a control byte, then the frame) through `decap_vxlan` and
//! `decap_gre`. See `vswitch_fuzz::decap`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vswitch_fuzz::decap::run(data));
