//! vswitch dataplane.
