//! vswitch benchmark support: the wire benchmark harness (`vswitch-bench wire`), a library
//! so that its traffic generator and sink can be tested from `bench/tests/`.

pub mod wire;
