//! `vswitch-bench wire`: the switch between veth pairs, with generator and sink in XDP.

pub mod traffic;
