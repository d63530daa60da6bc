//! Any bytes through `encap::parse`, every header view and every Repr's
//! parse → emit → parse round trip. See `vswitch_fuzz::parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| vswitch_fuzz::parse::run(data));
