//! Control-plane errors of this crate (construction and static entries). Per-frame
//! outcomes are not errors: they are [`crate::Learn`] values the caller counts.

use encap::MacAddr;

/// Why a table could not be built or a control operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    /// `aging_ns` is zero: every entry would be expired as soon as it is learned.
    #[error("MAC aging time must be greater than zero")]
    ZeroAging,
    /// `capacity` does not fit the table's 32-bit slot indices.
    #[error("mac_table_size {0} is too large (at most 1000000000)")]
    CapacityTooLarge(usize),
    /// `max_ports` is outside 1..=65536.
    #[error("max_ports {0} is out of range (1..=65536)")]
    MaxPorts(usize),
    /// A port index at or above `max_ports`.
    #[error("port {port} is out of range: the table was built for {max_ports} ports")]
    PortOutOfRange {
        /// The port given.
        port: u16,
        /// The configured number of ports.
        max_ports: usize,
    },
    /// Static entries must name a unicast, non-zero MAC (multicast is always flooded).
    #[error("static FDB entry {0} must be a unicast, non-zero MAC address")]
    NotUnicast(MacAddr),
    /// The number of workers is outside 1..=64.
    #[error("worker count {0} is out of range (1..=64)")]
    Workers(usize),
    /// A replication queue capacity of zero.
    #[error("replication queue capacity must be at least 1")]
    QueueCapacity,
    /// The control queue of a worker is full: no worker was changed; retry after the
    /// workers have polled (`WorkerFdb::apply_updates`).
    #[error("control queue of worker {worker} is full; retry after the workers poll")]
    ControlBusy {
        /// The first worker whose queue had no room.
        worker: usize,
    },
    /// The FDB's bucket array could not be mapped.
    #[error("cannot map {bytes} bytes of memory for the FDB table: {kind}")]
    TableMemory {
        /// Bytes asked for.
        bytes: usize,
        /// What the system said.
        kind: std::io::ErrorKind,
    },
    /// Flow cache size must be a power of two of at least 2.
    #[error("flow cache size {0} must be a power of two, at least 2")]
    CacheSize(usize),
}
