//! The wire protocol of the control socket: one JSON object per line each way.
//!
//! A client writes one [`Request`] per line and reads one [`Response`] per line, in
//! order; it may send several requests on one connection. Requests are tagged by
//! `cmd`, replies by `type`:
//!
//! ```text
//! → {"cmd":"fdb-show","network":"net-a"}
//! ← {"status":"ok","reply":{"type":"fdb","entries":[{"network":"net-a","vlan":1,
//!    "mac":"fa:16:3e:00:00:01","port":"vm1","vtep":null,"age_secs":3,"static":false}]}}
//! → {"cmd":"port-del","name":"nope"}
//! ← {"status":"error","error":{"kind":"not-found","message":"port \"nope\" does not exist"}}
//! ```
//!
//! Names, MACs and addresses travel as the strings a configuration file holds: a
//! change is validated by the configuration's own validator, so a request gets the
//! same rules and the same messages as the file.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Longest request line the server reads (bytes, newline included).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Ports, networks, the underlay and the switch parameters.
    Show {},
    /// MAC table rows, of one network or of all.
    FdbShow {
        /// Only this network.
        #[serde(default)]
        network: Option<String>,
    },
    /// Removes learned entries (static ones stay): all, of a network, of a port, or
    /// of a network on a port.
    FdbFlush {
        /// Only this network.
        #[serde(default)]
        network: Option<String>,
        /// Only this port (a port name, or a remote VTEP's address).
        #[serde(default)]
        port: Option<String>,
    },
    /// Adds a static entry (or re-points the one the network has for this MAC): a
    /// `[[fdb]]` entry of the configuration.
    FdbAdd {
        /// The network.
        network: String,
        /// The MAC.
        mac: String,
        /// A local port that carries the network.
        #[serde(default)]
        port: Option<String>,
        /// A remote VTEP (vxlan/gre networks).
        #[serde(default)]
        remote: Option<String>,
    },
    /// Removes a static entry.
    FdbDel {
        /// The network.
        network: String,
        /// The MAC.
        mac: String,
    },
    /// Counters: per port, per drop reason, per worker.
    Stats {},
    /// The underlay neighbour cache.
    NeighShow {},
    /// Adds a `[[port]]`.
    PortAdd(PortSpec),
    /// Removes a `[[port]]` (and the static entries that point at it).
    PortDel {
        /// Its name.
        name: String,
    },
    /// Adds a `[[network]]`.
    NetworkAdd(NetworkSpec),
    /// Removes a `[[network]]` (and its static and ARP responder entries); refused
    /// while a port carries it.
    NetworkDel {
        /// Its name.
        name: String,
    },
    /// Reads the configuration file the switch was started with again, validates it
    /// and applies it as one change (what `SIGHUP` does); a file the validator refuses,
    /// or that changes a `[switch]` key, changes nothing.
    Reload {},
}

/// A `[[port]]` entry, with the file's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// `name`.
    pub name: String,
    /// `ifname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// `mode`: `access` or `trunk`.
    pub mode: String,
    /// `network` (access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `vlans` (trunk): wire VID, in decimal, → network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlans: Option<BTreeMap<String, String>>,
    /// `native` (trunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<String>,
    /// `mac`: port security on, with this MAC (access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `ips`: the port's addresses (with `mac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<String>>,
    /// `allowed_pairs` (with `mac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pairs: Option<Vec<PairSpec>>,
    /// `storm_control_pps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm_control_pps: Option<u32>,
}

/// One of a port's `allowed_pairs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    /// `mac` (default: the port's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `ip`: an address or a prefix.
    pub ip: String,
}

/// A `[[network]]` entry, with the file's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `name`.
    pub name: String,
    /// `segment`: local, flat, vlan, vxlan or gre.
    pub segment: String,
    /// `local_vlan` (allocated when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_vlan: Option<i64>,
    /// `id`: provider VID, VNI or GRE key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// `physnet` (flat, vlan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physnet: Option<String>,
    /// `remote_vteps` (vxlan, gre).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_vteps: Option<Vec<String>>,
    /// `mac_limit`: learned entries in the network (0 = no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_limit: Option<u32>,
}

/// One response.
// One is built per control request, never on the packet path: the size of the
// `stats` reply does not matter there, and boxing it would change every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Response {
    /// Done.
    Ok {
        /// What was asked for.
        reply: Reply,
    },
    /// Refused or failed; nothing changed.
    Error {
        /// Why.
        error: RemoteError,
    },
}

/// Why a request was refused, as sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteError {
    /// A stable word for scripts.
    pub kind: ErrorKind,
    /// A message for people.
    pub message: String,
}

/// The kinds of [`RemoteError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Not a request: bad JSON, unknown command or field, line too long.
    BadRequest,
    /// The client is not allowed (not root).
    Permission,
    /// The configuration validator refused the change.
    Invalid,
    /// A named network, port, VTEP or static entry does not exist.
    NotFound,
    /// The switch cannot take the change now (a control queue is full, too many
    /// clients, no answer in time); retry.
    Busy,
    /// The switch failed to apply a valid change.
    Failed,
}

impl ErrorKind {
    /// The word used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::Permission => "permission",
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Busy => "busy",
            ErrorKind::Failed => "failed",
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Reply {
    /// To [`Request::Show`].
    Show(ShowReply),
    /// To [`Request::FdbShow`].
    Fdb(FdbReply),
    /// To [`Request::Stats`].
    Stats(StatsReply),
    /// To [`Request::NeighShow`].
    Neigh(NeighReply),
    /// To a change.
    Done {
        /// What was done.
        message: String,
    },
}

/// `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowReply {
    /// What runs the switch: `daemon`, `offline`...
    pub datapath: String,
    /// What the workers do: `switch` (the pipeline) or `forward-only` (bursts moved
    /// between port pairs, no switching: `[switch] forward_only`).
    #[serde(default = "switch_mode")]
    pub mode: String,
    /// `[switch] workers`.
    pub workers: usize,
    /// `[switch] mac_aging_secs`.
    pub mac_aging_secs: u64,
    /// `[switch] mac_table_size`.
    pub mac_table_size: usize,
    /// `[switch] mac_limit_per_port` (0: none).
    pub mac_limit_per_port: usize,
    /// The local VTEP, if any.
    pub underlay: Option<UnderlayShow>,
    /// Networks, in configuration order.
    pub networks: Vec<NetworkShow>,
    /// Ports, in configuration order (`[[port]]`s, physnet ports, the underlay port).
    pub ports: Vec<PortShow>,
    /// Remote VTEPs (tunnel ports).
    pub vteps: Vec<IpAddr>,
}

fn switch_mode() -> String {
    "switch".into()
}

/// The local VTEP in `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnderlayShow {
    /// Its port's name.
    pub port: String,
    /// Local address.
    pub local_ip: IpAddr,
    /// Prefix length, if configured.
    pub prefix_len: Option<u8>,
    /// Gateway, if configured.
    pub gateway: Option<IpAddr>,
    /// Underlay MTU.
    pub mtu: u16,
}

/// A network in `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkShow {
    /// Name.
    pub name: String,
    /// local, flat, vlan, vxlan, gre.
    pub segment: String,
    /// Provider VID, VNI or GRE key.
    pub id: Option<u32>,
    /// Physnet (flat, vlan).
    pub physnet: Option<String>,
    /// Host-local VLAN (the FDB's key).
    pub local_vlan: u16,
    /// Usable MTU (`None`: local network, no limit).
    pub mtu: Option<u16>,
    /// Flood list of a tunnel network.
    pub remote_vteps: Vec<IpAddr>,
}

/// A port in `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortShow {
    /// Name.
    pub name: String,
    /// Netdev.
    pub ifname: Option<String>,
    /// `port`, `physnet` or `underlay`.
    pub role: String,
    /// `access` or `trunk`.
    pub mode: String,
    /// Access: its network. Trunk: its native network.
    pub network: Option<String>,
    /// Trunk: wire VID → network.
    pub vlans: Vec<(u16, String)>,
    /// Link state.
    pub link: LinkState,
    /// XDP attach mode, when the port is an AF_XDP socket.
    pub xdp_mode: Option<XdpMode>,
}

/// A port's link as the switch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkState {
    /// Forwarding.
    Up,
    /// Netdev down or gone: counted, not forwarding.
    Down,
    /// Not known (an in-memory port is always `Up`).
    Unknown,
}

/// How an AF_XDP port's XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XdpMode {
    /// In the driver.
    Native,
    /// Generic (skb) mode.
    Generic,
}

/// `fdb show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbReply {
    /// Rows sorted by network (local VLAN), then MAC.
    pub entries: Vec<FdbRow>,
}

/// One MAC table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbRow {
    /// Network name.
    pub network: String,
    /// Its local VLAN.
    pub vlan: u16,
    /// MAC address.
    pub mac: String,
    /// Local port name (`None` when behind a VTEP).
    pub port: Option<String>,
    /// Remote VTEP address (`None` when on a local port).
    pub vtep: Option<IpAddr>,
    /// Idle seconds (0 for static entries).
    pub age_secs: u64,
    /// Configured (never aged or moved) rather than learned.
    #[serde(rename = "static")]
    pub is_static: bool,
}

/// `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// Per port (configuration ports, then tunnel ports), summed over workers.
    pub ports: Vec<PortStats>,
    /// Drops by reason (every reason, zeros included), summed over workers.
    pub drops: BTreeMap<String, u64>,
    /// Per worker.
    pub workers: Vec<WorkerStats>,
    /// Switch-wide forwarding counters.
    pub totals: Totals,
    /// MAC table occupancy (one replica's view).
    pub fdb: FdbOccupancy,
    /// The same per network, every network in configuration order.
    #[serde(default)]
    pub fdb_networks: Vec<NetworkFdb>,
}

/// One port's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    /// Port name, or `vtep:ADDRESS` for a tunnel port.
    pub name: String,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the kernel dropped before the switch could receive them (AF_XDP: no
    /// fill-ring buffer, RX ring full; `XDP_STATISTICS`).
    #[serde(default)]
    pub rx_dropped: u64,
}

/// One worker's counters (what `ovs-appctl dpif-netdev/pmd-perf-show` gives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Worker number.
    pub id: usize,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// Frames received.
    pub packets: u64,
    /// Non-empty receive batches.
    pub batches: u64,
    /// Poll loop iterations (0 where not counted).
    #[serde(default)]
    pub polls: u64,
    /// Poll loop iterations that received at least one frame.
    #[serde(default)]
    pub busy_polls: u64,
    /// Frames per batch.
    pub avg_batch: Option<f64>,
    /// TSC cycles spent on polls that received frames.
    pub busy_cycles: u64,
    /// TSC cycles spent on polls that received nothing.
    pub idle_cycles: u64,
    /// `busy_cycles / packets`; `None` when no cycles were measured or no packet came.
    pub cycles_per_packet: Option<f64>,
    /// Nanoseconds spent on polls that received frames (the daemon measures time
    /// with the monotonic clock, not the TSC: 0 where not measured).
    #[serde(default)]
    pub busy_ns: u64,
    /// Nanoseconds spent on polls that received nothing.
    #[serde(default)]
    pub idle_ns: u64,
    /// `busy_ns / packets`: processing time per packet, the figure
    /// `pmd-perf-show` gives in cycles; `None` when not measured or no packet came.
    #[serde(default)]
    pub ns_per_packet: Option<f64>,
    /// Flow-cache hits.
    pub cache_hits: u64,
    /// Flow-cache misses.
    pub cache_misses: u64,
    /// `hits / (hits + misses)`, `None` before any lookup.
    pub cache_hit_rate: Option<f64>,
    /// Frames dropped (all reasons).
    pub drops: u64,
}

/// Switch-wide forwarding counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Frames forwarded to one known port.
    pub unicast: u64,
    /// Frames flooded.
    pub flooded: u64,
    /// MACs learned.
    pub learned: u64,
    /// MAC moves.
    pub moves: u64,
    /// Learning refused: table full.
    pub learn_table_full: u64,
    /// Learning refused: per-port limit.
    pub learn_port_limit: u64,
    /// Learning refused: the network's limit.
    #[serde(default)]
    pub learn_network_limit: u64,
    /// Learning refused: a port's learning rate cap.
    #[serde(default)]
    pub learn_rate_limited: u64,
    /// ARP requests answered by the ARP responder.
    pub arp_replies: u64,
    /// ARP/ND frames for the local VTEP handled.
    pub underlay_control: u64,
    /// Partial TCP/UDP checksums (a VM's TX offload) completed.
    #[serde(default)]
    pub checksums_completed: u64,
    /// Flow-cache hit rate over all workers.
    pub cache_hit_rate: Option<f64>,
    /// Frames dropped (all reasons).
    pub drops: u64,
}

/// MAC table occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbOccupancy {
    /// Entries.
    pub entries: usize,
    /// Static entries.
    pub static_entries: usize,
    /// Learned entries.
    pub learned_entries: usize,
    /// `mac_table_size`.
    pub capacity: usize,
}

/// MAC table occupancy of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFdb {
    /// Network name.
    pub network: String,
    /// Its local VLAN.
    pub vlan: u16,
    /// Entries.
    pub entries: usize,
    /// Static entries.
    pub static_entries: usize,
    /// Learned entries.
    pub learned_entries: usize,
}

/// `neigh show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighReply {
    /// Entries sorted by address.
    pub entries: Vec<NeighRow>,
}

/// One underlay neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighRow {
    /// Address.
    pub ip: IpAddr,
    /// MAC, when usable.
    pub mac: Option<String>,
    /// static, reachable, stale, incomplete, failed.
    pub state: String,
    /// Seconds since the last confirmation, since resolution started or since it
    /// failed; 0 for a static entry.
    pub age_secs: u64,
    /// Frames waiting for the resolution.
    pub queued: usize,
}

/// A rate `num / den`, `None` when `den` is 0.
pub(crate) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_json_forms() {
        let r: Request = serde_json::from_str(r#"{"cmd":"fdb-show"}"#).unwrap();
        assert_eq!(r, Request::FdbShow { network: None });
        let r: Request =
            serde_json::from_str(r#"{"cmd":"port-add","name":"p","mode":"access","network":"n"}"#)
                .unwrap();
        assert!(matches!(r, Request::PortAdd(ref p) if p.name == "p"));
        assert_eq!(
            serde_json::to_string(&Request::PortDel { name: "p".into() }).unwrap(),
            r#"{"cmd":"port-del","name":"p"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"fdb-show","netwrk":"x"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"show","x":1}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Request::Show {}).unwrap(),
            r#"{"cmd":"show"}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::Reload {}).unwrap(),
            r#"{"cmd":"reload"}"#
        );
    }

    #[test]
    fn response_json_forms() {
        let ok = Response::Ok {
            reply: Reply::Done {
                message: "done".into(),
            },
        };
        let s = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            s,
            r#"{"status":"ok","reply":{"type":"done","message":"done"}}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&s).unwrap(), ok);
        let err = Response::Error {
            error: RemoteError {
                kind: ErrorKind::NotFound,
                message: "x".into(),
            },
        };
        let s = serde_json::to_string(&err).unwrap();
        assert_eq!(
            s,
            r#"{"status":"error","error":{"kind":"not-found","message":"x"}}"#
        );
    }
}
