//! The rig: three network namespaces joined by veth pairs, and a bare pair for the
//! harness's own ceiling.
//!
//! ```text
//!   GEN ns                 SWITCH ns                   SINK ns
//!   gen0  ══ veth ══  swp0 [switch under test] swp1  ══ veth ══  sink0
//!   genc0 ══════════════════ veth (no switch) ══════════════════  sinkc0
//! ```
//!
//! Every namespace is a [`NetNs`] guard (named `vsb-ROLE-PID-N`, deleted on drop, stale
//! ones of a killed run deleted at the next start), so the rig is gone when the harness
//! returns, errors or is interrupted (the harness turns Ctrl-C into an error that unwinds
//! through the guards). Nothing is added to the root namespace. IPv6 is off in every
//! namespace so that no router or neighbour solicitation joins the measured traffic.
//!
//! CPUs: the generator and the sink run on `gen_core`; the switch under test and all of
//! its kernel work on `switch_core`. The sink's veth NAPI is threaded, pinned to
//! `gen_core` (counting frames is never charged to the switch) and real-time (it
//! preempts the generator as soon as frames arrive, so the sink's ring never
//! overflows because the generator held the core).

use std::time::Duration;

use anyhow::{Context, Result};
use vswitch_tests::netns::{self, veth_pair, NetNs};

/// Generator-side netdev (generator namespace).
pub const GEN_IF: &str = "gen0";
/// The switch's port facing the generator.
pub const SW_GEN_IF: &str = "swp0";
/// The switch's port facing the sink.
pub const SW_SINK_IF: &str = "swp1";
/// Sink-side netdev (sink namespace).
pub const SINK_IF: &str = "sink0";
/// The ceiling pair: generator end.
pub const CEIL_GEN_IF: &str = "genc0";
/// The ceiling pair: sink end.
pub const CEIL_SINK_IF: &str = "sinkc0";
/// MTU of every veth: room for a 1518-byte frame plus a tunnel header.
pub const RIG_MTU: u32 = 1600;

/// The namespaces and netdevs of one run.
#[derive(Debug)]
pub struct Rig {
    /// Generator namespace.
    pub gen: NetNs,
    /// Switch namespace.
    pub sw: NetNs,
    /// Sink namespace.
    pub sink: NetNs,
    /// Core of the generator and the sink.
    pub gen_core: usize,
    /// Core of the switch under test.
    pub switch_core: usize,
    /// The CPU's nominal clock, MHz ([`cpu_mhz`], read once), to turn time into cycles.
    pub cpu_mhz: f64,
}

impl Rig {
    /// Builds the rig.
    pub fn new(gen_core: usize, switch_core: usize) -> Result<Rig> {
        let gen = NetNs::new("vsb-gen").context("creating the generator namespace")?;
        let sw = NetNs::new("vsb-sw").context("creating the switch namespace")?;
        let sink = NetNs::new("vsb-sink").context("creating the sink namespace")?;
        let rig = Rig {
            gen,
            sw,
            sink,
            gen_core,
            switch_core,
            cpu_mhz: cpu_mhz(),
        };
        for ns in [&rig.gen, &rig.sw, &rig.sink] {
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        veth_pair(&rig.gen, GEN_IF, &rig.sw, SW_GEN_IF).context("veth gen0-swp0")?;
        veth_pair(&rig.sw, SW_SINK_IF, &rig.sink, SINK_IF).context("veth swp1-sink0")?;
        veth_pair(&rig.gen, CEIL_GEN_IF, &rig.sink, CEIL_SINK_IF).context("veth genc0-sinkc0")?;
        for (ns, ifname) in rig.links() {
            ns.ip(&["link", "set", ifname, "mtu", &RIG_MTU.to_string()])?;
        }
        // The sink sides count in XDP (the sink's program gives them a NAPI); make that
        // NAPI a thread on the generator's core.
        // It runs SCHED_FIFO: when frames arrive it takes the core from the generator at
        // once, so the sink is never what loses frames (it only counts and drops them).
        for ifname in [SINK_IF, CEIL_SINK_IF] {
            rig.sink.ethtool(&["-K", ifname, "gro", "on"])?;
            rig.threaded_napi(&rig.sink, ifname, rig.gen_core)?;
            for pid in napi_threads(&format!("napi/{ifname}-")) {
                netns::run("chrt", &["-f", "-p", "10", &pid.to_string()])
                    .with_context(|| format!("making the sink's NAPI thread {pid} SCHED_FIFO"))?;
            }
        }
        Ok(rig)
    }

    /// Every (namespace, netdev) of the rig.
    pub fn links(&self) -> [(&NetNs, &'static str); 6] {
        [
            (&self.gen, GEN_IF),
            (&self.sw, SW_GEN_IF),
            (&self.sw, SW_SINK_IF),
            (&self.sink, SINK_IF),
            (&self.gen, CEIL_GEN_IF),
            (&self.sink, CEIL_SINK_IF),
        ]
    }

    /// A netdev's MAC.
    pub fn mac(&self, ns: &NetNs, ifname: &str) -> Result<[u8; 6]> {
        ns.mac(ifname).with_context(|| format!("MAC of {ifname}"))
    }

    /// Turns `ifname`'s NAPI into a kernel thread pinned to `core` (GRO or an XDP
    /// program must have given it a NAPI first).
    pub fn threaded_napi(&self, ns: &NetNs, ifname: &str, core: usize) -> Result<()> {
        set_sysfs(ns.name(), ifname, "threaded", "1")?;
        pin_napi_threads(ifname, core)
    }
}

/// Writes `/sys/class/net/IFNAME/ATTR` as `ns` sees it.
/// (`ns` by name: a switch's teardown holds only the name.)
pub fn set_sysfs(ns: &str, ifname: &str, attr: &str, value: &str) -> Result<()> {
    let path = format!("/sys/class/net/{ifname}/{attr}");
    let write = format!("echo {value} > {path}");
    netns::run("ip", &["netns", "exec", ns, "sh", "-c", &write])
        .with_context(|| format!("writing {value} to {path} in {ns}"))?;
    Ok(())
}

/// Pins the NAPI kernel threads of `ifname` (`napi/IFNAME-ID`) to `core`. The threads
/// appear a moment after `threaded` is set.
pub fn pin_napi_threads(ifname: &str, core: usize) -> Result<()> {
    let prefix = format!("napi/{ifname}-");
    let mut found = Vec::new();
    netns::wait_until(Duration::from_secs(2), Duration::from_millis(20), || {
        found = napi_threads(&prefix);
        !found.is_empty()
    });
    if found.is_empty() {
        anyhow::bail!("no NAPI thread {prefix}* appeared");
    }
    for pid in found {
        netns::run("taskset", &["-pc", &core.to_string(), &pid.to_string()])
            .with_context(|| format!("pinning NAPI thread {pid} of {ifname}"))?;
    }
    Ok(())
}

/// Pids of kernel threads whose name starts with `prefix`. Thread names are 15 bytes,
/// so an interface's threads from several namespaces look alike: the rig's interface
/// names are unique to the rig (`swp0`...), and every such thread is pinned alike.
fn napi_threads(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        comm.trim_end().starts_with(prefix).then_some(pid)
    })
    .collect()
}

/// Busy ticks ([`USER_HZ`]) of one CPU from `/proc/stat`: user, nice, system, irq,
/// softirq and steal.
pub fn cpu_busy_ticks(core: usize) -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let name = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .with_context(|| format!("/proc/stat has no {name}"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| v.get(i))
        .sum();
    Ok(busy)
}

/// Ticks per second of `/proc/stat` (`USER_HZ`, fixed at 100 by Linux's user ABI).
pub const USER_HZ: u64 = 100;

/// The CPU's nominal frequency in MHz, from `/proc/cpuinfo` (to turn time into cycles).
pub fn cpu_mhz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}
