//! AF_XDP ports: sockets on a UMEM (memory) shared by all the ports of a worker.
//!
//! Why this shape: a worker's frames live in one UMEM ([`UmemArea`], cut into chunks by
//! the worker's [`Pool`]), and every socket of the worker (one per netdev queue) is
//! created on its own registration of that memory ([`Umem`]: no socket depends on
//! another staying bound, so any port's netdev can go and come back). A frame received
//! on one port and sent on another therefore moves as a descriptor (the UMEM address
//! goes from one socket's RX ring to another's TX ring) and is copied only when the
//! pipeline floods it.
//!
//! How: [`XskPort::open`] checks privileges, mounts bpffs if needed, takes a
//! per-interface lock, detects and replaces a program left behind by a crashed run,
//! attaches libxdp's XSKMAP redirect program (native mode where the driver supports it,
//! generic otherwise; [`XskPort::mode`] says which) and binds one socket per queue,
//! each entered into the program's map once it exists. Dropping the
//! port detaches the program and deletes the sockets. With several workers, each binds
//! its own queue of a netdev: the netdev is taken once ([`XskAttach`]) and its program
//! detached when the last worker's port closes ([`XskBackend`] does this for the
//! running switch).
//!
//! We drive libxdp (`libxdp-sys`) directly rather than through `xsk-rs`'s queues: those
//! only transmit from a frame's original data offset, while the pipeline rewrites in
//! headroom (VLAN push, VXLAN encap move a frame's start) and needs to put any address
//! on the TX ring; and the pool needs the UMEM's base, which `xsk-rs` does not expose.
//!
//! Sizing: a worker's UMEM has [`pool_frames`] frames: every ring of every socket
//! full at once, plus a few bursts per socket for the pipeline's floods and replies.
//! The running switch opens its ports through [`XskBackend`].
//!
//! Link changes: a port of the running switch follows its netdev
//! ([`XskPort::following`]). Its worker checks the netdev once a second (two interface
//! ioctls in [`Port::maintain`](crate::port::Port::maintain), nothing per packet): down
//! or without carrier, the port is marked down (frames for it dropped as `port_down`,
//! nothing polled); gone (or replaced: its index changed), the frames the kernel held on
//! the sockets' fill and TX rings go back to the pool, the sockets are deleted and the
//! program forgotten (not detached: the index may name another device by then); when a
//! netdev of the same name is there again, it is taken and bound as at start, on the
//! worker's same UMEM. Each change is logged once, by worker 0's port, which also keeps
//! the [`XskLink`] that `ctl show` reports.
//!
//! NAPI busy polling ([`napi`](self)): each worker busy polls the NAPIs of its queues
//! from its own thread through an io_uring (one system call per loop, only when it has
//! no received frame left), so that on veth the kernel's copy-mode receive work runs on
//! the worker's core rather than the sender's; the NAPI ids come from the netdev
//! generic-netlink family (`genl`).
//!
//! Unsafe code is confined to [`umem`](self) (the mapping), `ring` (the four rings),
//! `socket` (libxdp handles), `sys` (a few system calls), `genl` (the netlink socket) and
//! `napi` (queueing the timeout request); [`XskPort`] is safe code.

mod backend;
mod error;
mod genl;
mod napi;
mod port;
mod ring;
mod socket;
mod sys;
mod umem;

pub use backend::{
    netdev_mac, netdev_running, netdev_rx_queues, pool_frames, OpenedPort, XskBackend,
};
pub use error::XskError;
pub use genl::{NapiInfo, Netdev, NetlinkError, QueueInfo};
pub use napi::{pick_napis, queue_napis, NapiConfig, NapiError, NapiRing, NapiTuning};
pub use port::{FastSteer, XskAttach, XskConfig, XskLink, XskPort, XskStats};
pub use socket::XdpMode;
pub use umem::{RingSizes, Umem, UmemArea};

use crate::pool::Pool;

/// A worker's pool on a fresh UMEM of `frames` frames of `frame_size` bytes, and the
/// UMEM registration its ports are opened on.
pub fn umem_pool(
    frames: u32,
    frame_size: usize,
    sizes: RingSizes,
) -> Result<(Pool, Umem), XskError> {
    error::check_privileges()?;
    let area = UmemArea::new(frames, frame_size).map_err(|e| XskError::Io {
        what: "map the UMEM",
        ifname: String::new(),
        source: e,
    })?;
    let umem = Umem::register(&area, sizes)
        .map_err(|e| error::umem_error(e, frames as usize * frame_size))?;
    Ok((Pool::on_umem(area), umem))
}
