//! vswitch dataplane: ports, the switching pipeline, workers and the control plane.
//!
//! - [`capture`]: packet capture from the running workers (`vswitch ctl capture`).
//! - [`config`]: the TOML configuration, validated and resolved.
//! - [`pool`]: frame buffers and descriptors (the shape of an AF_XDP UMEM).
//! - [`port`]: batched receive/send over descriptors; in-memory ports.
//! - [`counters`]: per-worker counters and drop reasons.
//! - [`pipeline`]: the switching stages over a batch (br-int's NORMAL).
//! - [`fastpath`]: the XDP fast path: established flows forwarded inside the kernel.
//! - [`forward`]: forward-only ("null") mode: bursts moved between port pairs, no
//!   switching.
//! - [`offline`]: the whole switch over in-memory ports, driven frame by frame.
//! - [`replay`], [`trace`]: `vswitch replay` and `vswitch trace`.
//! - [`control`]: the control socket and what `vswitch ctl` asks of a switch.
//! - [`metrics`]: Prometheus metrics of a running switch, from the `ctl stats` answer.
//! - [`underlay`]: the neighbour cache and ARP/ND handling of the tunnel underlay.
//! - [`xsk`]: AF_XDP ports on a UMEM shared by a worker's sockets.

pub mod capture;
pub mod config;
pub mod control;
pub mod counters;
pub mod demo;
pub mod fastpath;
pub mod forward;
pub mod metrics;
pub mod offline;
pub mod pipeline;
pub mod pool;
pub mod port;
pub mod replay;
pub mod runtime;
pub mod trace;
pub mod underlay;
pub mod xsk;
