//! vswitch benchmark support.
