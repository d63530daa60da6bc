//! A sequence of VLAN push/pop/translate and VXLAN/GRE encap/decap operations on
//! one frame, each checked against its inverse. See `vswitch_fuzz::ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_fuzz::ops::{run, Input};

fuzz_target!(|input: Input| {
    run(&input);
});
