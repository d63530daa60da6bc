//! The control plane: inspect and change a running switch through a Unix socket
//! (`vswitch ctl`, as `ovs-appctl` / `ovs-vsctl` do for Open vSwitch).
//!
//! # Why this shape
//!
//! The switch's workers poll their rings and must never wait for an operator. So
//! the control plane never touches a worker: the [`server`] thread reads requests
//! from clients and hands them, through a bounded channel, to whoever owns the
//! switch's control state (the daemon's main thread; a test thread for an
//! [`OfflineSwitch`](crate::offline::OfflineSwitch)); that owner answers them at its
//! own pace ([`RequestQueue::serve_pending`], never blocking) through the
//! [`ControlTarget`] trait. Changes reach the workers the way they always do: FDB
//! changes through [`flowtable::FdbControl`]'s lanes, configuration changes as new
//! tables the workers pick up between batches.
//!
//! The switch implements a small, typed trait ([`ControlTarget`]: configuration,
//! FDB rows, flush, neighbour rows, counters, apply a configuration); everything
//! that is the same for every switch lives here: names ↔ indexes, configuration
//! edits validated by the file's own validator ([`edit`]), what a change keeps
//! ([`diff`]), replies ([`proto`]) and their human form ([`format`]).
//!
//! # Modules
//!
//! - [`proto`]: requests and replies, one JSON object per line.
//! - [`server`]: the socket (mode 0600, root only, stale-socket recovery).
//! - [`client`]: one request, one reply (`vswitch ctl`).
//! - [`edit`], [`diff`]: configuration changes and what they keep.
//! - [`format`]: replies as tables for people.

pub mod client;
pub mod diff;
pub mod edit;
pub mod format;
pub mod proto;
pub mod server;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use flowtable::{FdbEntry, FlushFilter, PortId};

use crate::capture::{CaptureOptions, CaptureSession, Filter};
use crate::config::{Config, ConfigError, PortIdx, PortMode, PortRole, Segment};
use crate::counters::{Counters, DropReason};
use crate::pipeline::{PortLayout, PortOwner};
use crate::underlay::NeighborEntry;

pub use diff::ConfigDiff;
pub use proto::{ErrorKind, Reply, Request, Response};
pub use server::{ControlServer, LocalClient, RequestQueue, ServerError, ServerHandle};

use proto::{
    ratio, CaptureReply, FdbOccupancy, FdbReply, FdbRow, LinkState, NeighReply, NeighRow,
    NetworkFdb, NetworkShow, PortShow, PortStats, RemoteError, ShowReply, StatsReply, Totals,
    UnderlayShow, WorkerStats, XdpMode,
};

/// One nanosecond-clock second.
const SEC: u64 = 1_000_000_000;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not a valid request.
    #[error("{0}")]
    BadRequest(String),
    /// The configuration validator refused the change.
    #[error("{0}")]
    Invalid(ConfigError),
    /// A name that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Try again later (a control queue is full).
    #[error("{0}")]
    Busy(String),
    /// A valid change could not be applied.
    #[error("{0}")]
    Failed(String),
}

impl ControlError {
    /// Its kind on the wire.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ControlError::BadRequest(_) => ErrorKind::BadRequest,
            ControlError::Invalid(_) => ErrorKind::Invalid,
            ControlError::NotFound(_) => ErrorKind::NotFound,
            ControlError::Busy(_) => ErrorKind::Busy,
            ControlError::Failed(_) => ErrorKind::Failed,
        }
    }

    fn to_remote(&self) -> RemoteError {
        RemoteError {
            kind: self.kind(),
            message: self.to_string(),
        }
    }
}

impl From<flowtable::FdbError> for ControlError {
    fn from(e: flowtable::FdbError) -> Self {
        match e {
            flowtable::FdbError::ControlBusy { .. } => ControlError::Busy(e.to_string()),
            e => ControlError::Failed(e.to_string()),
        }
    }
}

/// One worker's counters as the switch samples them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSample {
    /// Worker number.
    pub id: usize,
    /// The core it is pinned to.
    pub core: Option<usize>,
    /// Its pipeline counters (per FDB port: configuration ports, then tunnel ports).
    pub counters: Counters,
    /// Non-empty receive batches.
    pub batches: u64,
    /// Poll loop iterations (0 where not counted).
    pub polls: u64,
    /// Poll loop iterations that received at least one frame.
    pub busy_polls: u64,
    /// TSC cycles of polls that received frames (0 where not measured).
    pub busy_cycles: u64,
    /// TSC cycles of polls that received nothing (0 where not measured).
    pub idle_cycles: u64,
    /// Wall-clock nanoseconds of polls that received frames (0 where not measured).
    pub busy_ns: u64,
    /// Wall-clock nanoseconds of polls that received nothing (0 where not measured).
    pub idle_ns: u64,
    /// Per port number: frames the kernel dropped before this worker received them
    /// (AF_XDP `XDP_STATISTICS`; empty where there is no kernel).
    pub kernel_rx_dropped: Vec<u64>,
}

/// The switch's counters as the switch samples them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchSample {
    /// One per worker.
    pub workers: Vec<WorkerSample>,
    /// MAC table entries, static entries (one replica's view).
    pub fdb_entries: usize,
    /// Static entries among them.
    pub fdb_static: usize,
    /// The same per local VLAN that has entries (one replica's view), sorted by VLAN.
    pub fdb_vlans: Vec<VlanOccupancy>,
}

/// MAC table entries of one local VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanOccupancy {
    /// The local VLAN (one network's).
    pub vlan: encap::VlanId,
    /// Entries.
    pub entries: usize,
    /// Static entries among them.
    pub static_entries: usize,
}

impl VlanOccupancy {
    /// Counts `entries` per VLAN, sorted by VLAN.
    pub fn count<'a>(entries: impl IntoIterator<Item = &'a FdbEntry>) -> Vec<VlanOccupancy> {
        let mut by_vlan: BTreeMap<u16, VlanOccupancy> = BTreeMap::new();
        for e in entries {
            let o = by_vlan.entry(e.vlan.get()).or_insert(VlanOccupancy {
                vlan: e.vlan,
                entries: 0,
                static_entries: 0,
            });
            o.entries += 1;
            o.static_entries += usize::from(e.is_static);
        }
        by_vlan.into_values().collect()
    }
}

/// What a switch gives the control plane. The daemon and
/// [`OfflineSwitch`](crate::offline::OfflineSwitch) implement it; [`handle`] does the
/// rest (names, validation, replies).
pub trait ControlTarget {
    /// The configuration in force.
    fn config(&self) -> &Config;

    /// What runs the switch (`offline`, `af_xdp`...), for `show`.
    fn datapath(&self) -> &str;

    /// A port's link state and XDP mode. In-memory ports: up, no XDP.
    fn port_status(&self, _port: PortIdx) -> (LinkState, Option<XdpMode>) {
        (LinkState::Unknown, None)
    }

    /// The numbers of the configuration's ports and tunnel ports in FDB entries and
    /// counters. A switch whose ports never change numbers them densely.
    fn port_layout(&self) -> PortLayout {
        PortLayout::dense(self.config())
    }

    /// The live MAC table entries (one replica's, in any order).
    fn fdb_entries(&self) -> Vec<FdbEntry>;

    /// Removes the learned entries `filter` selects, on every worker.
    fn fdb_flush(&mut self, filter: FlushFilter) -> Result<(), ControlError>;

    /// The counters.
    fn stats(&self) -> SwitchSample;

    /// The underlay neighbour cache (one worker's).
    fn neighbors(&self) -> Vec<NeighborEntry>;

    /// Completes a configuration read again from the file for a reload with what the
    /// switch took from elsewhere at start (its command line, its netdevs), as it did
    /// then, so that a reload changes only what the file changed. Default: nothing.
    fn complete_config(&self, _new: &mut Config) -> Result<(), ControlError> {
        Ok(())
    }

    /// Replaces the configuration with `new`, already validated. The learned
    /// entries [`ConfigDiff::carry`] keeps must survive; a change to static entries
    /// only ([`ConfigDiff::statics_only`]) should go through the FDB's control lanes.
    /// On error nothing may have changed.
    fn apply_config(&mut self, new: Config) -> Result<(), ControlError>;

    /// The XDP fast path, if the switch runs one. Default: none.
    fn fastpath(&self) -> Option<std::sync::Arc<crate::fastpath::FastPath>> {
        None
    }

    /// Starts capturing the frames of `port` (see [`crate::capture`]); the capture
    /// runs until the session is dropped. Default: refused.
    fn start_capture(
        &mut self,
        _port: PortIdx,
        _opts: CaptureOptions,
    ) -> Result<CaptureSession, ControlError> {
        Err(ControlError::Failed(format!(
            "the {} switch cannot capture: capture needs a running switch (vswitch run)",
            self.datapath()
        )))
    }
}

/// What the switch's owner answers a call with: a response, or for a capture the
/// running session with its reply, which the connection's thread streams.
#[derive(Debug)]
pub enum Answer {
    /// The response to send.
    Response(Response),
    /// A capture that started: send the reply, then stream the session.
    Capture(CaptureSession, CaptureReply),
}

/// Answers one call: [`handle`], and captures.
pub fn answer(t: &mut dyn ControlTarget, req: Request) -> Answer {
    match req {
        Request::Capture {
            port,
            filter,
            snaplen,
            count,
            ring,
        } => match start_capture(t, &port, filter, snaplen, count, ring) {
            Ok((session, reply)) => Answer::Capture(session, reply),
            Err(e) => Answer::Response(Response::Error {
                error: e.to_remote(),
            }),
        },
        req => Answer::Response(handle(t, req)),
    }
}

fn start_capture(
    t: &mut dyn ControlTarget,
    port: &str,
    filter: Filter,
    snaplen: Option<u32>,
    count: Option<u64>,
    ring: Option<u32>,
) -> Result<(CaptureSession, CaptureReply), ControlError> {
    let opts = CaptureOptions::new(filter, snaplen, ring, count)
        .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    let Some(idx) = t.config().port_by_name(port) else {
        let vtep = port.strip_prefix("vtep:").unwrap_or(port);
        let hint = match (vtep.parse::<IpAddr>(), &t.config().underlay) {
            (Ok(_), Some(u)) => t.config().port(u.port).map_or_else(String::new, |p| {
                format!(
                    " (a tunnel's packets cross the underlay port {:?}: capture it)",
                    p.name
                )
            }),
            _ => String::new(),
        };
        return Err(ControlError::NotFound(format!(
            "port {port:?} does not exist{hint}"
        )));
    };
    let session = t.start_capture(idx, opts)?;
    let reply = CaptureReply {
        port: port.to_owned(),
        filter: opts.filter,
        snaplen: opts.snaplen,
        ring: opts.ring,
        workers: session.workers(),
        count: opts.count,
    };
    Ok((session, reply))
}

/// Answers one request.
pub fn handle(t: &mut dyn ControlTarget, req: Request) -> Response {
    match dispatch(t, req) {
        Ok(reply) => Response::Ok { reply },
        Err(e) => Response::Error {
            error: e.to_remote(),
        },
    }
}

fn done(message: String) -> Result<Reply, ControlError> {
    Ok(Reply::Done { message })
}

fn dispatch(t: &mut dyn ControlTarget, req: Request) -> Result<Reply, ControlError> {
    match req {
        Request::Show {} => Ok(Reply::Show(show(t))),
        Request::FdbShow { network } => fdb_show(t, network.as_deref()).map(Reply::Fdb),
        Request::FdbFlush { network, port } => {
            let cfg = t.config();
            let vlan = match &network {
                Some(n) => Some(network_vlan(cfg, n)?),
                None => None,
            };
            let layout = t.port_layout();
            let p = match &port {
                Some(p) => Some(fdb_port_by_name(cfg, &layout, p)?),
                None => None,
            };
            let filter = match (vlan, p) {
                (None, None) => FlushFilter::All,
                (Some(v), None) => FlushFilter::Vlan(v),
                (None, Some(p)) => FlushFilter::Port(p),
                (Some(v), Some(p)) => FlushFilter::VlanPort(v, p),
            };
            t.fdb_flush(filter)?;
            let mut what = String::from("flushed learned entries");
            if let Some(n) = network {
                what.push_str(&format!(" of network {n}"));
            }
            if let Some(p) = port {
                what.push_str(&format!(" on port {p}"));
            }
            done(what)
        }
        Request::FdbAdd {
            network,
            mac,
            port,
            remote,
        } => {
            let new = edit::fdb_add(
                t.config(),
                &network,
                &mac,
                port.as_deref(),
                remote.as_deref(),
            )?;
            t.apply_config(new)?;
            let to = port.or(remote).unwrap_or_default();
            done(format!("static entry {mac} in network {network} -> {to}"))
        }
        Request::FdbDel { network, mac } => {
            let new = edit::fdb_del(t.config(), &network, &mac)?;
            t.apply_config(new)?;
            done(format!("removed static entry {mac} from network {network}"))
        }
        Request::Stats {} => Ok(Reply::Stats(stats(t))),
        Request::NeighShow {} => Ok(Reply::Neigh(neigh(t))),
        Request::FastpathShow {} => Ok(Reply::Fastpath(fastpath(t))),
        Request::PortAdd(spec) => {
            let new = edit::port_add(t.config(), &spec)?;
            t.apply_config(new)?;
            done(format!("added port {}", spec.name))
        }
        Request::PortDel { name } => {
            let new = edit::port_del(t.config(), &name)?;
            t.apply_config(new)?;
            done(format!("removed port {name}"))
        }
        Request::NetworkAdd(spec) => {
            let new = edit::network_add(t.config(), &spec)?;
            let vlan = new
                .network_by_name(&spec.name)
                .and_then(|n| new.network(n))
                .map(|n| n.local_vlan.get());
            t.apply_config(new)?;
            match vlan {
                Some(v) => done(format!("added network {} (local VLAN {v})", spec.name)),
                None => done(format!("added network {}", spec.name)),
            }
        }
        Request::NetworkDel { name } => {
            let new = edit::network_del(t.config(), &name)?;
            t.apply_config(new)?;
            done(format!("removed network {name}"))
        }
        Request::Reload {} => reload(t),
        Request::Capture { .. } => Err(ControlError::BadRequest(
            "capture streams frames: send it over the control socket, on a connection of its own"
                .into(),
        )),
    }
}

/// Reads the switch's file again: validated as at start ([`Config::from_file`]),
/// completed by the switch, refused if it changes a key read at start only
/// ([`Config::check_reload`]), then applied as one change. On any error nothing changed.
fn reload(t: &mut dyn ControlTarget) -> Result<Reply, ControlError> {
    let Some(path) = t.config().source.clone() else {
        return Err(ControlError::BadRequest(
            "reload: this switch was not started from a configuration file".into(),
        ));
    };
    let (mut new, text) = Config::from_file_text(&path).map_err(ControlError::Invalid)?;
    new.keep_local_vlans(t.config());
    t.complete_config(&mut new)?;
    t.config()
        .check_reload(&new, &text)
        .map_err(ControlError::Invalid)?;
    let what = diff::summary(t.config(), &new);
    if new != *t.config() {
        t.apply_config(new)?;
    }
    done(format!("reloaded {}: {what}", path.display()))
}

fn network_vlan(cfg: &Config, name: &str) -> Result<encap::VlanId, ControlError> {
    cfg.network_by_name(name)
        .and_then(|n| cfg.network(n))
        .map(|n| n.local_vlan)
        .ok_or_else(|| ControlError::NotFound(format!("network {name:?} does not exist")))
}

/// A port name, or a remote VTEP's address (its tunnel port).
fn fdb_port_by_name(cfg: &Config, layout: &PortLayout, name: &str) -> Result<PortId, ControlError> {
    if let Some(id) = cfg.port_by_name(name).and_then(|p| layout.port(p)) {
        return Ok(id);
    }
    let vtep = name.strip_prefix("vtep:").unwrap_or(name);
    if let Ok(ip) = vtep.parse::<IpAddr>() {
        let v = cfg.vteps.iter().position(|&x| x == ip);
        if let Some(id) = v.and_then(|v| layout.vteps.get(v)) {
            return Ok(*id);
        }
    }
    Err(ControlError::NotFound(format!(
        "port {name:?} does not exist (give a port name or a remote VTEP address)"
    )))
}

/// A FDB port as (port name, VTEP address).
fn fdb_port_label(
    cfg: &Config,
    layout: &PortLayout,
    port: PortId,
) -> (Option<String>, Option<IpAddr>) {
    match layout.owner(port) {
        Some(PortOwner::Port(p)) => match cfg.port(p) {
            Some(p) => (Some(p.name.clone()), None),
            None => (Some(format!("#{}", port.0)), None),
        },
        Some(PortOwner::Vtep(v)) => match cfg.vteps.get(v.index()) {
            Some(&ip) => (None, Some(ip)),
            None => (Some(format!("#{}", port.0)), None),
        },
        None => (Some(format!("#{}", port.0)), None),
    }
}

fn show(t: &dyn ControlTarget) -> ShowReply {
    let cfg = t.config();
    let net_name = |n: crate::config::NetIdx| {
        cfg.network(n)
            .map_or_else(|| format!("#{}", n.0), |n| n.name.clone())
    };
    let networks = cfg
        .networks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (id, physnet) = match n.segment {
                Segment::Local => (None, None),
                Segment::Flat { physnet } => (None, Some(physnet)),
                Segment::Vlan { physnet, vid } => (Some(u32::from(vid.get())), Some(physnet)),
                Segment::Vxlan { vni } => (Some(vni.get()), None),
                Segment::Gre { key } => (Some(key.get()), None),
            };
            NetworkShow {
                name: n.name.clone(),
                segment: n.segment.as_str().to_owned(),
                id,
                physnet: physnet.and_then(|p| cfg.physnet(p)).map(|p| p.name.clone()),
                local_vlan: n.local_vlan.get(),
                mtu: cfg.network_mtu(crate::config::NetIdx(i as u16)),
                remote_vteps: n.remote_vteps.iter().filter_map(|&v| cfg.vtep(v)).collect(),
            }
        })
        .collect();
    let ports = cfg
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (link, xdp_mode) = t.port_status(PortIdx(i as u16));
            let (mode, network, vlans) = match &p.mode {
                PortMode::Access { network } => ("access", Some(net_name(*network)), Vec::new()),
                PortMode::Trunk { vlans, native } => (
                    "trunk",
                    native.map(net_name),
                    vlans.iter().map(|&(v, n)| (v.get(), net_name(n))).collect(),
                ),
            };
            PortShow {
                name: p.name.clone(),
                ifname: p.ifname.clone(),
                role: match p.role {
                    PortRole::Local => "port",
                    PortRole::Physnet(_) => "physnet",
                    PortRole::Underlay => "underlay",
                }
                .to_owned(),
                mode: mode.to_owned(),
                network,
                vlans,
                link,
                xdp_mode,
            }
        })
        .collect();
    let underlay = cfg.underlay.as_ref().map(|u| UnderlayShow {
        port: cfg
            .port(u.port)
            .map_or_else(String::new, |p| p.name.clone()),
        local_ip: u.local_ip,
        prefix_len: u.prefix_len,
        gateway: u.gateway,
        mtu: u.mtu,
    });
    ShowReply {
        datapath: t.datapath().to_owned(),
        mode: if cfg.switch.forward_only {
            "forward-only"
        } else {
            "switch"
        }
        .to_owned(),
        workers: cfg.switch.workers,
        mac_aging_secs: cfg.switch.mac_aging.as_secs(),
        mac_table_size: cfg.switch.mac_table_size,
        mac_limit_per_port: cfg.switch.mac_limit_per_port,
        underlay,
        networks,
        ports,
        vteps: cfg.vteps.clone(),
    }
}

fn fdb_show(t: &dyn ControlTarget, network: Option<&str>) -> Result<FdbReply, ControlError> {
    let cfg = t.config();
    let only = match network {
        Some(n) => Some(network_vlan(cfg, n)?),
        None => None,
    };
    let by_vlan: BTreeMap<u16, &str> = cfg
        .networks
        .iter()
        .map(|n| (n.local_vlan.get(), n.name.as_str()))
        .collect();
    let layout = t.port_layout();
    // Labels once per port number, not once per row.
    let labels: HashMap<PortId, (Option<String>, Option<IpAddr>)> = layout
        .ports
        .iter()
        .chain(&layout.vteps)
        .map(|&id| (id, fdb_port_label(cfg, &layout, id)))
        .collect();
    let mut rows: Vec<(u16, u64, FdbRow)> = t
        .fdb_entries()
        .into_iter()
        .filter(|e| only.is_none_or(|v| v == e.vlan))
        .map(|e| {
            let (port, vtep) = labels
                .get(&e.port)
                .cloned()
                .unwrap_or_else(|| (Some(format!("#{}", e.port.0)), None));
            let vlan = e.vlan.get();
            let row = FdbRow {
                network: by_vlan
                    .get(&vlan)
                    .map_or_else(|| format!("vlan-{vlan}"), |n| (*n).to_owned()),
                vlan,
                mac: e.mac.to_string(),
                port,
                vtep,
                age_secs: e.age_ns / SEC,
                is_static: e.is_static,
            };
            (vlan, e.mac.to_u64(), row)
        })
        .collect();
    rows.sort_by_key(|(v, m, _)| (*v, *m));
    Ok(FdbReply {
        entries: rows.into_iter().map(|(_, _, r)| r).collect(),
    })
}

fn stats(t: &dyn ControlTarget) -> StatsReply {
    let cfg = t.config();
    let sample = t.stats();
    let layout = t.port_layout();
    let mut sum = Counters::new(layout.slots());
    for w in &sample.workers {
        sum.merge(&w.counters);
    }
    // Configuration ports in order, then tunnel ports; numbers no port has are left out.
    let names = cfg
        .ports
        .iter()
        .map(|p| p.name.clone())
        .zip(&layout.ports)
        .chain(
            cfg.vteps
                .iter()
                .map(|ip| format!("vtep:{ip}"))
                .zip(&layout.vteps),
        );
    let fp = t.fastpath();
    let ports = names
        .map(|(name, id)| {
            let c = sum.ports.get(id.index()).copied().unwrap_or_default();
            // Frames the fast path forwarded never reached a worker.
            let f = fp.as_ref().map_or([0; 4], |fp| fp.port_counters(*id));
            PortStats {
                name,
                rx_frames: c.rx_frames + f[0],
                rx_bytes: c.rx_bytes + f[1],
                tx_frames: c.tx_frames + f[2],
                tx_bytes: c.tx_bytes + f[3],
                rx_dropped: sample
                    .workers
                    .iter()
                    .filter_map(|w| w.kernel_rx_dropped.get(id.index()))
                    .sum(),
            }
        })
        .collect();
    let drops = DropReason::ALL
        .iter()
        .map(|&r| (r.name().to_owned(), sum.dropped(r)))
        .collect();
    let workers = sample
        .workers
        .iter()
        .map(|w| {
            let c = &w.counters;
            let packets: u64 = c.ports.iter().map(|p| p.rx_frames).sum();
            WorkerStats {
                id: w.id,
                core: w.core,
                packets,
                batches: w.batches,
                polls: w.polls,
                busy_polls: w.busy_polls,
                avg_batch: ratio(packets, w.batches),
                busy_cycles: w.busy_cycles,
                idle_cycles: w.idle_cycles,
                cycles_per_packet: if w.busy_cycles == 0 {
                    None
                } else {
                    ratio(w.busy_cycles, packets)
                },
                busy_ns: w.busy_ns,
                idle_ns: w.idle_ns,
                ns_per_packet: if w.busy_ns == 0 {
                    None
                } else {
                    ratio(w.busy_ns, packets)
                },
                cache_hits: c.cache_hits,
                cache_misses: c.cache_misses,
                cache_hit_rate: ratio(c.cache_hits, c.cache_hits + c.cache_misses),
                drops: c.total_drops(),
            }
        })
        .collect();
    // Every network, in configuration order, with 0 where it has no entry.
    let fdb_networks = cfg
        .networks
        .iter()
        .map(|n| {
            // `fdb_vlans` is sorted by VLAN.
            let v = &sample.fdb_vlans;
            let o = v
                .binary_search_by_key(&n.local_vlan, |o| o.vlan)
                .ok()
                .and_then(|i| v.get(i));
            let (entries, static_entries) = o.map_or((0, 0), |o| (o.entries, o.static_entries));
            NetworkFdb {
                network: n.name.clone(),
                vlan: n.local_vlan.get(),
                entries,
                static_entries,
                learned_entries: entries.saturating_sub(static_entries),
            }
        })
        .collect();
    let fastpath = fp.map(|fp| fp.stats());
    StatsReply {
        ports,
        drops,
        workers,
        totals: Totals {
            unicast: sum.unicast + fastpath.as_ref().map_or(0, |f| f.get("hits")),
            flooded: sum.flooded,
            learned: sum.learned,
            moves: sum.moves,
            learn_table_full: sum.learn_table_full,
            learn_port_limit: sum.learn_port_limit,
            learn_network_limit: sum.learn_network_limit,
            learn_rate_limited: sum.learn_rate_limited,
            arp_replies: sum.arp_replies,
            underlay_control: sum.underlay_control,
            checksums_completed: sum.checksums_completed,
            cache_hit_rate: ratio(sum.cache_hits, sum.cache_hits + sum.cache_misses),
            drops: sum.total_drops(),
        },
        fdb: FdbOccupancy {
            entries: sample.fdb_entries,
            static_entries: sample.fdb_static,
            learned_entries: sample.fdb_entries.saturating_sub(sample.fdb_static),
            capacity: cfg.switch.mac_table_size,
        },
        fdb_networks,
        fastpath,
    }
}

fn fastpath(t: &dyn ControlTarget) -> proto::FastpathReply {
    match t.fastpath() {
        Some(fp) => proto::FastpathReply {
            enabled: true,
            stats: Some(fp.stats()),
            flows: fp.flows(),
            ports: fp.ports(),
        },
        None => proto::FastpathReply {
            enabled: false,
            stats: None,
            flows: Vec::new(),
            ports: Vec::new(),
        },
    }
}

fn neigh(t: &dyn ControlTarget) -> NeighReply {
    let mut entries: Vec<NeighRow> = t
        .neighbors()
        .into_iter()
        .map(|n| NeighRow {
            ip: n.ip,
            mac: n.mac.map(|m| m.to_string()),
            state: n.state.name().to_owned(),
            age_secs: n.age_ns / SEC,
            queued: n.queued,
        })
        .collect();
    entries.sort_by_key(|e| e.ip);
    NeighReply { entries }
}
