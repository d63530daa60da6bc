//! The one error type of the configuration layer.
//!
//! Every error names the file and, whenever the input has one, the line, the
//! entry (`port "vm1"`) and the key (`network`) it is about, so that the
//! message alone is enough to fix the file:
//!
//! ```text
//! vswitch.toml:12: port "vm1": key "network": network "net-x" does not exist
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use encap::MacAddr;

/// A configuration was rejected. Displays as `FILE:LINE: ENTRY: key "KEY": WHAT`.
///
/// Kept at most 128 bytes (clippy's `result_large_err`), so that callers can
/// embed it in their own errors: hence `u32` lines, and names that are already
/// in `context` or on the line are not repeated in `kind`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", self.prefix())]
pub struct ConfigError {
    /// The file name (or the name given to [`super::Config::from_str`]).
    pub file: String,
    /// 1-based line of the offending key or value; `None` when the file could not be read.
    pub line: Option<u32>,
    /// The entry the error is in: `[switch]`, `network "net-a"`, `port "vm1"`, `port #3`
    /// (an entry without a usable name, 1-based), `fdb #2`; `None` at the top level.
    pub context: Option<String>,
    /// The key within the entry, dotted below it (`vlans.20`); `None` when the error is
    /// about the entry as a whole or the file.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl ConfigError {
    fn prefix(&self) -> String {
        let mut s = self.file.clone();
        if let Some(line) = self.line {
            s.push(':');
            s.push_str(&line.to_string());
        }
        s.push_str(": ");
        if let Some(c) = &self.context {
            s.push_str(c);
            s.push_str(": ");
        }
        if let Some(k) = &self.key {
            s.push_str("key \"");
            s.push_str(k);
            s.push_str("\": ");
        }
        s
    }
}

/// What is wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {message}")]
    Read {
        /// The I/O error kind.
        io: io::ErrorKind,
        /// The I/O error as text.
        message: String,
    },
    /// The text is not valid TOML (reported by the `toml` crate).
    #[error("TOML syntax: {0}")]
    Syntax(String),
    /// A key the schema does not have (a typo, or a key of a later version).
    #[error("unknown key ({0})")]
    UnknownKey(String),
    /// A required key is absent.
    #[error("missing required key")]
    MissingKey,
    /// A value of the wrong TOML type, or a string that is not one of the allowed words.
    #[error("{0}")]
    Invalid(String),
    /// A number outside its range.
    #[error("{value} is out of range {min}..={max}{why}")]
    OutOfRange {
        /// The value given.
        value: i64,
        /// Smallest value accepted.
        min: u32,
        /// Largest value accepted.
        max: u32,
        /// Why the range is what it is (empty, or starting with " (").
        why: &'static str,
    },
    /// An empty string where a value is needed.
    #[error("must not be empty")]
    Empty,
    /// A name with control characters.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// A netdev name Linux would refuse.
    #[error("invalid interface name {name:?}: 1 to 15 bytes, not \".\" or \"..\", without '/', ':' or whitespace")]
    InvalidIfname {
        /// The name given.
        name: String,
    },
    /// A table where an array of tables belongs, or the other way round.
    #[error("must be {expected}")]
    WrongShape {
        /// What belongs there.
        expected: &'static str,
    },
    /// A `mode` that is not a port mode.
    #[error("unknown port mode '{0}': expected access or trunk")]
    UnknownMode(String),
    /// A `segment` that is not a segment type at all.
    #[error("unknown segment type '{0}': expected one of local, flat, vlan, vxlan, gre")]
    UnknownSegment(String),
    /// A key the network's segment type requires is absent.
    #[error("required on a {segment} network{hint}")]
    RequiredForSegment {
        /// The segment type (`vlan`, `vxlan`...).
        segment: &'static str,
        /// What the key is (empty, or starting with ": ").
        hint: &'static str,
    },
    /// A key the network's segment type does not take.
    #[error("not allowed on a {segment} network{hint}")]
    NotAllowedForSegment {
        /// The segment type.
        segment: &'static str,
        /// Which segment types take it (empty, or starting with ": ").
        hint: &'static str,
    },
    /// A vxlan or gre network in a file without `[underlay]`.
    #[error("a {segment} network needs an [underlay] section (the local VTEP)")]
    NeedsUnderlay {
        /// The segment type.
        segment: &'static str,
    },
    /// A `[switch]` key whose new value only a restart applies (a reload refuses it).
    #[error(
        "changed from {running} to {new}, which takes a restart of vswitch (read at start only)"
    )]
    NeedsRestart {
        /// The value the switch runs with.
        running: Box<str>,
        /// The value in the file.
        new: Box<str>,
    },
    /// Two vxlan networks with one VNI.
    #[error("VNI {vni} is already used by network {other:?} (line {other_line})")]
    DuplicateVni {
        /// The VNI.
        vni: u32,
        /// The network that has it first.
        other: String,
        /// Where that network sets it.
        other_line: u32,
    },
    /// Two gre networks with one key.
    #[error("GRE key {key} is already used by network {other:?} (line {other_line})")]
    DuplicateGreKey {
        /// The key.
        key: u32,
        /// The network that has it first.
        other: String,
        /// Where that network sets it.
        other_line: u32,
    },
    /// Two vlan networks with one provider VID on one physnet.
    #[error("provider VID {vid} on this physnet is already used by network {other:?} (line {other_line})")]
    DuplicateProviderVid {
        /// The VID.
        vid: u16,
        /// The network that has it first.
        other: String,
        /// Where that network sets it.
        other_line: u32,
    },
    /// Two flat networks on one physnet.
    #[error("this physnet already has a flat network: {other:?} (line {other_line}); at most one per physnet")]
    DuplicateFlat {
        /// The flat network already on the physnet.
        other: String,
        /// Where that network names the physnet.
        other_line: u32,
    },
    /// A reference to a physnet that is not defined.
    #[error("physnet {0:?} does not exist")]
    NoSuchPhysnet(String),
    /// A port name (of a physnet or the underlay) already used by another port.
    #[error("port name already used by {other} (line {other_line}): ports, physnet ports and the underlay port share one name space")]
    PortNameTaken {
        /// The entry that has it too (`port "p"`, `physnet "physnet1"`, `[underlay]`).
        other: String,
        /// Where that entry names it.
        other_line: u32,
    },
    /// A netdev opened by two ports.
    #[error("interface already used by {other} (line {other_line})")]
    DuplicateIfname {
        /// The entry that has it too.
        other: String,
        /// Where that entry names it.
        other_line: u32,
    },
    /// Text that is not an IP address.
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
    /// A listen address that is not `IP:PORT` with a non-zero port.
    #[error("invalid listen address {0:?}: expected IP:PORT with a port in 1..=65535, e.g. \"127.0.0.1:9417\" or \"[::1]:9417\"")]
    InvalidListen(String),
    /// `local_ip` that is neither `IP` nor `IP/len` with a valid length.
    #[error("invalid address {0:?}: expected IP or IP/prefix-length (at most 32 for IPv4, 128 for IPv6)")]
    InvalidLocalIp(String),
    /// An address of the other family than the underlay's `local_ip`.
    #[error("must be an {expected} address, the family of the underlay's local_ip")]
    WrongFamily {
        /// `IPv4` or `IPv6`.
        expected: &'static str,
    },
    /// The underlay's own address where another host's belongs.
    #[error("{0} is the underlay's local_ip")]
    IsLocalIp(IpAddr),
    /// An unspecified, multicast or broadcast address where a host's belongs.
    #[error(
        "{0} is not a unicast address (unspecified, multicast and broadcast addresses are refused)"
    )]
    NotUnicastIp(IpAddr),
    /// One address twice in one list.
    #[error("{ip} is listed twice (first at line {first_line})")]
    DuplicateAddress {
        /// The address.
        ip: IpAddr,
        /// Where it is first listed.
        first_line: u32,
    },
    /// A `gateway` while `local_ip` has no prefix.
    #[error("a gateway needs local_ip with a /prefix-length: without one every VTEP is on-link")]
    GatewayWithoutPrefix,
    /// A `gateway` outside `local_ip`'s prefix.
    #[error("the gateway {0} is not inside local_ip's prefix, so it is not on-link")]
    GatewayOffLink(IpAddr),
    /// Both `port` and `remote` in a static entry, or neither.
    #[error(
        "a static entry has exactly one of `port` (a local port) and `remote` (a remote VTEP){0}"
    )]
    FdbTarget(&'static str),
    /// More remote VTEPs than port ids left.
    #[error("too many remote VTEPs: ports and VTEPs share 65535 ids, {max} are left for VTEPs")]
    TooManyVteps {
        /// VTEPs allowed with this many ports.
        max: usize,
    },
    /// An IPv6 address in an `[[arp]]` entry.
    #[error("the ARP responder is IPv4 only (as in Neutron): {0} is not an IPv4 address")]
    ArpNotIpv4(IpAddr),
    /// Two `[[arp]]` entries for one (network, IP).
    #[error("duplicate ARP entry for {ip} in this network (first at line {first_line})")]
    DuplicateArpEntry {
        /// The address.
        ip: Ipv4Addr,
        /// Where the first entry is.
        first_line: u32,
    },
    /// Two entries of the same kind with one name (the name is in the error's context).
    #[error("duplicate {what} name (first defined at line {first_line})")]
    DuplicateName {
        /// `network`, `port` or `physnet`.
        what: &'static str,
        /// Line of the first definition.
        first_line: u32,
    },
    /// Two networks with one explicit `local_vlan`.
    #[error("local VLAN {vlan} is already used by network {other:?} (line {other_line})")]
    DuplicateLocalVlan {
        /// The VLAN.
        vlan: u16,
        /// The network that has it first.
        other: String,
        /// Where that network sets it.
        other_line: u32,
    },
    /// More networks than local VLANs.
    #[error("too many networks: at most {max}, one local VLAN each")]
    TooManyNetworks {
        /// The limit.
        max: usize,
    },
    /// More ports than port indexes.
    #[error("too many ports: at most {max}")]
    TooManyPorts {
        /// The limit.
        max: usize,
    },
    /// A reference to a network that is not defined.
    #[error("network {0:?} does not exist")]
    NoSuchNetwork(String),
    /// A reference to a port that is not defined.
    #[error("port {0:?} does not exist")]
    NoSuchPort(String),
    /// An access port without `network`.
    #[error("an access port needs a network")]
    AccessWithoutNetwork,
    /// A key that the port's mode does not take.
    #[error("not allowed on {mode} port{hint}")]
    NotAllowedForMode {
        /// `an access` or `a trunk`.
        mode: &'static str,
        /// What to do instead (empty, or starting with ": ").
        hint: &'static str,
    },
    /// A `vlans` key that is not a decimal number.
    #[error("VLAN id {0:?} is not a decimal number")]
    InvalidVid(String),
    /// The same VID twice in one trunk's `vlans` (written differently, like `10` and `010`).
    #[error("VLAN id {vid} is listed twice on this trunk (first at line {first_line})")]
    DuplicateVid {
        /// The VID.
        vid: u16,
        /// Where it is first listed.
        first_line: u32,
    },
    /// Text that is not an address or a prefix (`10.0.0.5`, `10.0.0.0/24`, `fd00::/64`).
    #[error("invalid IP address or prefix {0:?}: expected an address or address/prefix length")]
    InvalidPrefix(String),
    /// Port security keys (`ips`, `allowed_pairs`) without the port's `mac`.
    #[error("needs the port's mac (port security is on when a port has one)")]
    NeedsPortMac,
    /// Text that is not a MAC address.
    #[error("invalid MAC address {0:?}: expected six hex pairs like fa:16:3e:00:00:01")]
    InvalidMac(String),
    /// A multicast, broadcast or all-zero address where only unicast makes sense.
    #[error("MAC address {0} is not unicast: expected a unicast, non-zero address")]
    NotUnicast(MacAddr),
    /// A static entry on a port (the key's value) that does not carry the entry's network.
    #[error("the port is not in network {network:?}")]
    PortNotInNetwork {
        /// The network.
        network: String,
    },
    /// Two static entries for one (network, MAC).
    #[error("duplicate static entry for {mac} in this network (first at line {first_line})")]
    DuplicateStaticEntry {
        /// The address.
        mac: MacAddr,
        /// Where the first entry is.
        first_line: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_small_enough_to_return() {
        assert!(core::mem::size_of::<ConfigError>() < 128);
    }
}
