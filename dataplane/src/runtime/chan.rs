//! In-memory ports for a running [`Switch`](super::Switch) in tests: each port is a pair
//! of channels, one the test sends received frames into, one it reads sent frames from.
//! One worker only (a channel is one queue). Ports added at runtime come from
//! "netdevs" the test creates beforehand ([`ChannelBackend::netdev`]), found by the
//! port's `ifname`.

use std::collections::HashMap;
use std::sync::Mutex;

use crossbeam::channel::{self, Receiver, Sender};

use super::{Backend, PortInfo, RuntimeError};
use crate::config::{Config, PortIdx};
use crate::control::proto::{LinkState, XdpMode};
use crate::pool::{Desc, Pool};
use crate::port::{Port, BURST};
use flowtable::PortId;

/// Frame buffers of a channel worker.
const POOL_CHUNKS: u32 = 4096;

/// The test's end of a port.
#[derive(Debug, Clone)]
pub struct PortEnd {
    /// Frames the port receives.
    pub rx: Sender<Vec<u8>>,
    /// Frames the port sent.
    pub tx: Receiver<Vec<u8>>,
}

/// The switch's end of a port.
#[derive(Debug)]
pub struct ChannelPort {
    rx: Receiver<Vec<u8>>,
    tx: Sender<Vec<u8>>,
}

impl Port for ChannelPort {
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut [Desc; BURST]) -> usize {
        let mut n = 0;
        while n < BURST {
            let Ok(f) = self.rx.try_recv() else { break };
            if let Some(d) = pool.alloc_with(&f) {
                out[n] = d;
                n += 1;
            }
        }
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, frames: &[Desc]) -> usize {
        for &d in frames {
            let _ = self.tx.send(pool.data(d).to_vec());
            pool.free(d);
        }
        frames.len()
    }
}

/// Channel ports for every port of a configuration.
#[derive(Debug)]
pub struct ChannelBackend {
    ports: Mutex<Option<Vec<ChannelPort>>>,
    /// Ports not yet in the switch, by `ifname`.
    netdevs: Mutex<HashMap<String, ChannelPort>>,
}

fn channel_port() -> (ChannelPort, PortEnd) {
    let (rx_tx, rx_rx) = channel::unbounded();
    let (tx_tx, tx_rx) = channel::unbounded();
    (
        ChannelPort {
            rx: rx_rx,
            tx: tx_tx,
        },
        PortEnd {
            rx: rx_tx,
            tx: tx_rx,
        },
    )
}

impl ChannelBackend {
    /// A backend with `n` ports, and the test's ends of them.
    pub fn new(n: usize) -> (ChannelBackend, Vec<PortEnd>) {
        let (sw, test) = (0..n).map(|_| channel_port()).unzip();
        (
            ChannelBackend {
                ports: Mutex::new(Some(sw)),
                netdevs: Mutex::new(HashMap::new()),
            },
            test,
        )
    }

    /// A "netdev" named `ifname` that a port added at runtime with that `ifname`
    /// opens; the test's end of it. Replaces an unused one of the same name.
    pub fn netdev(&self, ifname: &str) -> PortEnd {
        let (port, end) = channel_port();
        if let Ok(mut n) = self.netdevs.lock() {
            n.insert(ifname.to_owned(), port);
        }
        end
    }
}

impl PortInfo for ChannelBackend {
    fn datapath(&self) -> &str {
        "channel"
    }

    /// Channel ports are always up and have no XDP program.
    fn port_status(&self, _port: PortId) -> (LinkState, Option<XdpMode>) {
        (LinkState::Up, None)
    }
}

impl Backend for ChannelBackend {
    type Port = ChannelPort;

    fn open(&self, w: usize, cfg: &Config) -> Result<(Pool, Vec<ChannelPort>), RuntimeError> {
        let err = |m: &str| RuntimeError::Worker {
            worker: w,
            message: m.to_string(),
        };
        let mut guard = self.ports.lock().map_err(|_| err("poisoned"))?;
        let ports = guard
            .take()
            .ok_or_else(|| err("channel ports serve one worker"))?;
        if ports.len() != cfg.ports.len() {
            return Err(err("port count differs from the configuration"));
        }
        Ok((Pool::new(POOL_CHUNKS), ports))
    }

    fn open_port(
        &self,
        w: usize,
        cfg: &Config,
        port: PortIdx,
        _id: PortId,
    ) -> Result<ChannelPort, RuntimeError> {
        let p = cfg
            .port(port)
            .ok_or_else(|| RuntimeError::Invalid(format!("no port {}", port.0)))?;
        let err = |message: String| RuntimeError::Port {
            port: p.name.clone(),
            message,
        };
        if w != 0 {
            return Err(err("channel ports serve one worker".into()));
        }
        let ifname = p
            .ifname
            .as_deref()
            .ok_or_else(|| err("has no ifname: a channel port is found by it".into()))?;
        let mut netdevs = self
            .netdevs
            .lock()
            .map_err(|_| err("backend state poisoned".into()))?;
        netdevs
            .remove(ifname)
            .ok_or_else(|| err(format!("no network device named {ifname:?}")))
    }
}
