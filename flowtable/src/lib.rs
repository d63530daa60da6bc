//! vswitch flow tables.
