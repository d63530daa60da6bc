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
//!
//! # Capture stream
//!
//! A `capture` request is the last one of its connection: after its `capture` reply
//! line the server sends binary records until the capture ends, then closes. Integers
//! are big-endian:
//!
//! ```text
//! frame: 'F' | dir (0 in, 1 out) | 0 0 | caplen u32 | orig_len u32 | Unix time ns u64 | caplen bytes
//! end:   'E' | 0 0 0 | len u32 | len bytes of JSON (CaptureEnd)
//! ```
//!
//! The client stops a capture by shutting down its side of the connection (the server
//! then sends the end record) or by closing it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::capture::{Direction, Filter, MAX_SNAPLEN};

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
    /// The XDP fast path's entries and counters.
    FastpathShow {},
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
    /// or that changes a key read at start only (`[switch] workers`...), changes nothing.
    Reload {},
    /// Captures a port's frames: the reply is followed by the capture stream (see the
    /// module documentation).
    Capture {
        /// The port's name.
        port: String,
        /// Directions (default both).
        #[serde(default)]
        filter: Filter,
        /// Bytes kept of each frame (default 65535).
        #[serde(default)]
        snaplen: Option<u32>,
        /// Frames after which the capture ends (default: until stopped).
        #[serde(default)]
        count: Option<u64>,
        /// Records per worker ring (default 1024).
        #[serde(default)]
        ring: Option<u32>,
    },
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
    /// To [`Request::FastpathShow`].
    Fastpath(FastpathReply),
    /// To a change.
    Done {
        /// What was done.
        message: String,
    },
    /// To [`Request::Capture`]: the capture runs, its stream follows.
    Capture(CaptureReply),
}

/// The XDP fast path: whether it is on, its counters and its flow entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FastpathReply {
    /// On (its program attached to the ports).
    pub enabled: bool,
    /// Counters (when on).
    pub stats: Option<crate::fastpath::FastPathStats>,
    /// Flow entries (when on).
    pub flows: Vec<crate::fastpath::FlowRow>,
    /// Ports and their redirect state (when on).
    #[serde(default)]
    pub ports: Vec<crate::fastpath::PortRow>,
}

/// A capture that started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureReply {
    /// The port.
    pub port: String,
    /// Directions.
    pub filter: Filter,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Records per worker ring.
    pub ring: u32,
    /// Workers capturing (one ring each).
    pub workers: usize,
    /// Frames after which it ends.
    pub count: Option<u64>,
}

/// Why a capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaptureEndReason {
    /// The requested count was reached.
    Count,
    /// The client stopped it.
    Stopped,
    /// The port was removed or the switch is stopping.
    Closed,
}

/// The last record of a capture stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureEnd {
    /// Frames sent to the client.
    pub captured: u64,
    /// Frames the workers could not copy because their ring was full (the frames
    /// themselves were forwarded).
    pub capture_dropped: u64,
    /// Why it ended.
    pub reason: CaptureEndReason,
}

/// One frame of a capture stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureFrame {
    /// Received or sent on the port.
    pub direction: Direction,
    /// When the worker took it, in Unix nanoseconds.
    pub ts_unix_ns: u64,
    /// Its full length.
    pub orig_len: u32,
    /// The bytes kept.
    pub data: Vec<u8>,
}

/// A record of a capture stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureItem {
    /// A frame.
    Frame(CaptureFrame),
    /// The end.
    End(CaptureEnd),
}

/// Tag of a frame record.
pub const CAPTURE_FRAME: u8 = b'F';
/// Tag of the end record.
pub const CAPTURE_END: u8 = b'E';
/// Bytes of a frame record's header.
pub const CAPTURE_FRAME_HEADER: usize = 20;
/// Bytes of the end record's header.
const CAPTURE_END_HEADER: usize = 8;
/// Longest end record's JSON.
const MAX_END_JSON: u32 = 64 * 1024;

/// A capture stream that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// An unknown record tag.
    #[error("capture stream: unknown record type {0:#04x}")]
    Tag(u8),
    /// A frame longer than any snaplen, or shorter than its own capture.
    #[error("capture stream: frame of {caplen} bytes (original {orig_len}): not a capture record")]
    Length {
        /// Bytes kept.
        caplen: u32,
        /// Original length.
        orig_len: u32,
    },
    /// An unknown direction.
    #[error("capture stream: direction {0}")]
    Direction(u8),
    /// An end record that is not one.
    #[error("capture stream: end record: {0}")]
    End(String),
}

/// The header of a frame record carrying `caplen` bytes.
pub fn capture_frame_header(
    direction: Direction,
    ts_unix_ns: u64,
    orig_len: u32,
    caplen: u32,
) -> [u8; CAPTURE_FRAME_HEADER] {
    let mut h = [0u8; CAPTURE_FRAME_HEADER];
    h[0] = CAPTURE_FRAME;
    h[1] = match direction {
        Direction::In => 0,
        Direction::Out => 1,
    };
    h[4..8].copy_from_slice(&caplen.to_be_bytes());
    h[8..12].copy_from_slice(&orig_len.to_be_bytes());
    h[12..20].copy_from_slice(&ts_unix_ns.to_be_bytes());
    h
}

/// The end record.
pub fn capture_end_record(end: &CaptureEnd) -> Vec<u8> {
    let json = serde_json::to_vec(end).unwrap_or_default();
    let mut r = Vec::with_capacity(CAPTURE_END_HEADER + json.len());
    r.extend_from_slice(&[CAPTURE_END, 0, 0, 0]);
    r.extend_from_slice(&(json.len() as u32).to_be_bytes());
    r.extend_from_slice(&json);
    r
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Parses the record at the front of `buf`: the record and the bytes it took, or
/// `None` when `buf` does not hold all of it yet.
pub fn decode_capture_item(buf: &[u8]) -> Result<Option<(CaptureItem, usize)>, StreamError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    match tag {
        CAPTURE_FRAME => {
            if buf.len() < CAPTURE_FRAME_HEADER {
                return Ok(None);
            }
            let direction = match buf[1] {
                0 => Direction::In,
                1 => Direction::Out,
                d => return Err(StreamError::Direction(d)),
            };
            let caplen = be32(&buf[4..]);
            let orig_len = be32(&buf[8..]);
            if caplen > MAX_SNAPLEN || caplen > orig_len {
                return Err(StreamError::Length { caplen, orig_len });
            }
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&buf[12..20]);
            let end = CAPTURE_FRAME_HEADER + caplen as usize;
            let Some(data) = buf.get(CAPTURE_FRAME_HEADER..end) else {
                return Ok(None);
            };
            let frame = CaptureFrame {
                direction,
                ts_unix_ns: u64::from_be_bytes(ts),
                orig_len,
                data: data.to_vec(),
            };
            Ok(Some((CaptureItem::Frame(frame), end)))
        }
        CAPTURE_END => {
            if buf.len() < CAPTURE_END_HEADER {
                return Ok(None);
            }
            let len = be32(&buf[4..]);
            if len > MAX_END_JSON {
                return Err(StreamError::End(format!("{len} bytes")));
            }
            let end = CAPTURE_END_HEADER + len as usize;
            let Some(json) = buf.get(CAPTURE_END_HEADER..end) else {
                return Ok(None);
            };
            let e = serde_json::from_slice(json).map_err(|e| StreamError::End(e.to_string()))?;
            Ok(Some((CaptureItem::End(e), end)))
        }
        t => Err(StreamError::Tag(t)),
    }
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
    /// The XDP fast path's counters, when it is on (its frames are in `ports` and
    /// `totals.unicast` too).
    #[serde(default)]
    pub fastpath: Option<crate::fastpath::FastPathStats>,
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
    fn capture_request_json_forms() {
        let r: Request = serde_json::from_str(r#"{"cmd":"capture","port":"p1"}"#).unwrap();
        assert_eq!(
            r,
            Request::Capture {
                port: "p1".into(),
                filter: Filter::Both,
                snaplen: None,
                count: None,
                ring: None
            }
        );
        let r: Request =
            serde_json::from_str(r#"{"cmd":"capture","port":"p1","filter":"out","count":5}"#)
                .unwrap();
        assert!(matches!(
            r,
            Request::Capture {
                filter: Filter::Out,
                count: Some(5),
                ..
            }
        ));
        assert!(
            serde_json::from_str::<Request>(r#"{"cmd":"capture","port":"p","filter":"up"}"#)
                .is_err()
        );
    }

    #[test]
    fn capture_records_round_trip_in_pieces() {
        let data = [0xabu8; 42];
        let mut stream =
            capture_frame_header(Direction::Out, 1_700_000_000_123_456_789, 60, 42).to_vec();
        stream.extend_from_slice(&data);
        let end = CaptureEnd {
            captured: 1,
            capture_dropped: 7,
            reason: CaptureEndReason::Count,
        };
        stream.extend(capture_end_record(&end));
        // Every prefix short of a record asks for more.
        for cut in 0..CAPTURE_FRAME_HEADER + 42 {
            assert_eq!(decode_capture_item(&stream[..cut]).unwrap(), None, "{cut}");
        }
        let (item, used) = decode_capture_item(&stream).unwrap().unwrap();
        assert_eq!(
            item,
            CaptureItem::Frame(CaptureFrame {
                direction: Direction::Out,
                ts_unix_ns: 1_700_000_000_123_456_789,
                orig_len: 60,
                data: data.to_vec(),
            })
        );
        let rest = &stream[used..];
        assert_eq!(decode_capture_item(&rest[..rest.len() - 1]).unwrap(), None);
        let (item, used2) = decode_capture_item(rest).unwrap().unwrap();
        assert_eq!(item, CaptureItem::End(end));
        assert_eq!(used2, rest.len());
    }

    #[test]
    fn bad_capture_records_are_errors() {
        assert_eq!(decode_capture_item(b"X"), Err(StreamError::Tag(b'X')));
        let mut h = capture_frame_header(Direction::In, 0, 10, 20);
        assert!(matches!(
            decode_capture_item(&h),
            Err(StreamError::Length { .. })
        ));
        h = capture_frame_header(Direction::In, 0, 100_000, 70_000);
        assert!(decode_capture_item(&h).is_err());
        h = capture_frame_header(Direction::In, 0, 10, 10);
        h[1] = 9;
        assert_eq!(decode_capture_item(&h), Err(StreamError::Direction(9)));
        let mut e = vec![CAPTURE_END, 0, 0, 0, 0, 0, 0, 2];
        e.extend_from_slice(b"{]");
        assert!(matches!(decode_capture_item(&e), Err(StreamError::End(_))));
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
