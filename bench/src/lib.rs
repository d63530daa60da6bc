//! vswitch benchmark support.

pub mod wire;
