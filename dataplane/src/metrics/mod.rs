//! Prometheus metrics of a running switch (`[metrics] listen`).
//!
//! # Why this shape
//!
//! The numbers a scrape shows are the numbers `vswitch ctl stats` shows: the metrics
//! thread asks the switch's owner for a `stats` reply through the control queue
//! ([`LocalClient`]), exactly as a `ctl` client does, and formats it ([`expo`]). So
//! there is one way to read the counters (per-worker snapshots, summed on the control
//! side, STYLE.md principle 13), the workers are never asked by two readers, and a
//! slow or stuck scrape costs the workers nothing: the control thread answers when it
//! gets to it, and the scrape gives up after [`SCRAPE_TIMEOUT`] with a `503`.
//!
//! The listener ([`http`]) is a small HTTP/1.x server on its own thread, started
//! from the control thread and so kept off the workers' cores like it. It is off
//! unless configured; it has no authentication, so bind it to loopback or a
//! management network.
//!
//! # Modules
//!
//! - [`expo`]: the text exposition format 0.0.4 and the metric families.
//! - [`http`]: the listener.

pub mod expo;
pub mod http;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::control::proto::{Reply, Request, Response};
use crate::control::LocalClient;

pub use expo::{render, CONTENT_TYPE};
pub use http::{MetricsHandle, MetricsServer, ScrapeResult};

/// How long a scrape waits for the switch's answer (Prometheus' default scrape
/// timeout is 10 s).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A system call failed.
    #[error("metrics listener {addr}: {what}: {source}")]
    Io {
        /// The address in `[metrics] listen`.
        addr: SocketAddr,
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// A scrape that asks the switch through `client` and renders its `stats` reply.
pub fn scrape_control(client: LocalClient) -> impl FnMut() -> ScrapeResult + Send + 'static {
    move || match client.call(Request::Stats {}, SCRAPE_TIMEOUT) {
        Response::Ok {
            reply: Reply::Stats(s),
        } => Ok(render(&s)),
        Response::Ok { .. } => Err("the switch answered with something else than stats".into()),
        Response::Error { error } => Err(error.message),
    }
}
