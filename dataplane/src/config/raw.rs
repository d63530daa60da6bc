//! The TOML file as written: every value keeps its byte span so that validation
//! can point at the line. Nothing outside `config` sees these types.
//!
//! Integers are read as `i64` (TOML's integer type) and range-checked by
//! validation, so that `workers = -1` gets a message with the range instead of
//! serde's "expected u64". Strings that name things (networks, ports, segment
//! types, port modes, MACs) are checked there too, with messages of our own.
//! The shape of the top level (`[switch]` a table, `[[network]]`... arrays of
//! tables) is checked before these are deserialized, see `build::check_shape`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawConfig {
    #[serde(default)]
    pub switch: Option<Spanned<RawSwitch>>,
    #[serde(default)]
    pub underlay: Option<Spanned<RawUnderlay>>,
    #[serde(default)]
    pub physnet: Vec<Spanned<RawPhysnet>>,
    #[serde(default)]
    pub network: Vec<Spanned<RawNetwork>>,
    #[serde(default)]
    pub port: Vec<Spanned<RawPort>>,
    #[serde(default)]
    pub fdb: Vec<Spanned<RawFdb>>,
    #[serde(default)]
    pub arp: Vec<Spanned<RawArp>>,
    #[serde(default)]
    pub metrics: Option<Spanned<RawMetrics>>,
}

/// `[metrics]`: the Prometheus listener; absent = off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawMetrics {
    pub listen: Option<Spanned<String>>,
}

/// `[switch]`: every key optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSwitch {
    pub workers: Option<Spanned<i64>>,
    pub mac_aging_secs: Option<Spanned<i64>>,
    pub mac_table_size: Option<Spanned<i64>>,
    pub mac_limit_per_port: Option<Spanned<i64>>,
    pub control_socket: Option<Spanned<String>>,
    pub forward_only: Option<Spanned<bool>>,
    pub napi_busy_poll: Option<Spanned<bool>>,
    pub napi_busy_poll_usecs: Option<Spanned<i64>>,
    pub mac_learn_rate_per_port: Option<Spanned<i64>>,
    pub storm_control_pps: Option<Spanned<i64>>,
    pub fastpath: Option<Spanned<bool>>,
}

/// `[underlay]`: the local VTEP. Addresses are strings, parsed by validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawUnderlay {
    pub port: Spanned<String>,
    pub ifname: Option<Spanned<String>>,
    pub local_ip: Spanned<String>,
    pub local_mac: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
    pub df: Option<Spanned<bool>>,
    pub vxlan_port: Option<Spanned<i64>>,
    pub neighbors: Option<Spanned<Vec<Spanned<RawNeighbor>>>>,
}

/// One of `[underlay] neighbors`: `{ ip = "...", mac = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawNeighbor {
    pub ip: Spanned<String>,
    pub mac: Spanned<String>,
}

/// `[[physnet]]`: a physical network and the port that reaches it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPhysnet {
    pub name: Spanned<String>,
    pub port: Spanned<String>,
    pub ifname: Option<Spanned<String>>,
    pub mtu: Option<Spanned<i64>>,
}

/// `[[network]]`: which of `id`, `physnet` and `remote_vteps` are allowed depends
/// on `segment`, checked by validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawNetwork {
    pub name: Spanned<String>,
    pub segment: Spanned<String>,
    pub local_vlan: Option<Spanned<i64>>,
    pub id: Option<Spanned<i64>>,
    pub physnet: Option<Spanned<String>>,
    pub remote_vteps: Option<Spanned<Vec<Spanned<String>>>>,
    pub mac_limit: Option<Spanned<i64>>,
}

/// `vlans = { 10 = "net-a" }`: TOML keys are strings, parsed as VIDs by validation.
pub(super) type RawVlans = BTreeMap<Spanned<String>, Spanned<String>>;

/// `[[port]]`: which keys are allowed depends on `mode`, checked by validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPort {
    pub name: Spanned<String>,
    pub ifname: Option<Spanned<String>>,
    pub mode: Spanned<String>,
    pub network: Option<Spanned<String>>,
    pub vlans: Option<Spanned<RawVlans>>,
    pub native: Option<Spanned<String>>,
    pub mac: Option<Spanned<String>>,
    pub ips: Option<Spanned<Vec<Spanned<String>>>>,
    pub allowed_pairs: Option<Spanned<Vec<Spanned<RawPair>>>>,
    pub storm_control_pps: Option<Spanned<i64>>,
}

/// One of `[[port]] allowed_pairs`: `{ mac = "...", ip = "10.0.0.0/24" }` (`mac`
/// defaults to the port's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPair {
    pub mac: Option<Spanned<String>>,
    pub ip: Spanned<String>,
}

/// `[[fdb]]`: a static MAC entry on a local `port` or a `remote` VTEP (exactly one,
/// checked by validation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawFdb {
    pub network: Spanned<String>,
    pub mac: Spanned<String>,
    pub port: Option<Spanned<String>>,
    pub remote: Option<Spanned<String>>,
}

/// `[[arp]]`: an l2population ARP responder entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawArp {
    pub network: Spanned<String>,
    pub ip: Spanned<String>,
    pub mac: Spanned<String>,
}
