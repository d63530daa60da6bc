//! In-memory ports for a running [`Switch`](super::Switch) in tests: each port is a pair
//! of channels, one the test sends received frames into, one it reads sent frames from.
//! One worker only (a channel is one queue).

use std::sync::Mutex;

use crossbeam::channel::{self, Receiver, Sender};

use super::{Backend, PortInfo, RuntimeError};
use crate::config::Config;
use crate::config::PortIdx;
use crate::control::proto::{LinkState, XdpMode};
use crate::pool::{Desc, Pool};
use crate::port::{Port, BURST};

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
}

impl ChannelBackend {
    /// A backend with `n` ports, and the test's ends of them.
    pub fn new(n: usize) -> (ChannelBackend, Vec<PortEnd>) {
        let (mut sw, mut test) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (rx_tx, rx_rx) = channel::unbounded();
            let (tx_tx, tx_rx) = channel::unbounded();
            sw.push(ChannelPort {
                rx: rx_rx,
                tx: tx_tx,
            });
            test.push(PortEnd {
                rx: rx_tx,
                tx: tx_rx,
            });
        }
        (
            ChannelBackend {
                ports: Mutex::new(Some(sw)),
            },
            test,
        )
    }
}

impl PortInfo for ChannelBackend {
    fn datapath(&self) -> &str {
        "channel"
    }

    /// Channel ports are always up and have no XDP program.
    fn port_status(&self, _port: PortIdx) -> (LinkState, Option<XdpMode>) {
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
}
