//! `--churn`: the configuration of the vswitch under test changes through its control
//! socket while a trial runs, as a cloud's agent changes it while tenants' traffic
//! flows. Every 100 ms one step of a cycle: a network added, a static entry added to
//! each of the profile's networks (a MAC no test frame uses, on a port that carries the
//! network: the network's FDB generation moves, so every cached decision of the
//! workers is revalidated), the entries removed, the network's entries flushed and the
//! network removed. The profile's own networks and ports never change, so not one of
//! their frames may be lost to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dataplane::control::client;
use dataplane::control::proto::{NetworkSpec, Reply, Request, Response};

/// Time between two steps.
const STEP: Duration = Duration::from_millis(100);

/// A running churn thread.
#[derive(Debug)]
pub struct Churn {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<u64>>,
}

fn call(socket: &Path, req: &Request) -> Result<Reply> {
    match client::call(socket, req).with_context(|| format!("ctl {req:?}"))? {
        Response::Ok { reply } => Ok(reply),
        Response::Error { error } => bail!("ctl {req:?}: {}", error.message),
    }
}

/// The profile's networks, each with a port that carries it.
fn networks(socket: &Path) -> Result<Vec<(String, String)>> {
    let Reply::Show(show) = call(socket, &Request::Show {})? else {
        bail!("ctl show: unexpected reply");
    };
    let mut out = Vec::new();
    for n in &show.networks {
        let carrier = show.ports.iter().find(|p| {
            p.role == "port"
                && (p.network.as_deref() == Some(n.name.as_str())
                    || p.vlans.iter().any(|(_, v)| *v == n.name))
        });
        if let Some(p) = carrier {
            out.push((n.name.clone(), p.name.clone()));
        }
    }
    Ok(out)
}

impl Churn {
    /// Starts changing the configuration of the switch behind `socket`.
    pub fn start(socket: PathBuf) -> Result<Churn> {
        let nets = networks(&socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("churn".into())
            .spawn(move || -> Result<u64> {
                let mut changes = 0u64;
                let mut cycle = 0u32;
                while !flag.load(Ordering::Relaxed) {
                    let name = format!("churn-{cycle}");
                    let mac = format!("02:5a:00:00:{:02x}:{:02x}", (cycle >> 8) as u8, cycle as u8);
                    let mut steps: Vec<Request> = vec![Request::NetworkAdd(NetworkSpec {
                        name: name.clone(),
                        segment: "local".into(),
                        ..NetworkSpec::default()
                    })];
                    for (net, port) in &nets {
                        steps.push(Request::FdbAdd {
                            network: net.clone(),
                            mac: mac.clone(),
                            port: Some(port.clone()),
                            remote: None,
                        });
                    }
                    for (net, _) in &nets {
                        steps.push(Request::FdbDel {
                            network: net.clone(),
                            mac: mac.clone(),
                        });
                    }
                    steps.push(Request::FdbFlush {
                        network: Some(name.clone()),
                        port: None,
                    });
                    steps.push(Request::NetworkDel { name });
                    for req in steps {
                        call(&socket, &req)?;
                        changes += 1;
                        std::thread::sleep(STEP);
                    }
                    cycle = cycle.wrapping_add(1);
                }
                Ok(changes)
            })
            .context("starting the churn thread")?;
        Ok(Churn { stop, handle })
    }

    /// Stops after the current cycle (which leaves the configuration as it found it)
    /// and returns how many changes were applied.
    pub fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => bail!("the churn thread panicked"),
        }
    }
}

/// The resident set of process `pid`, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}
