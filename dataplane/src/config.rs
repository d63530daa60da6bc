//! The switch configuration: a TOML file turned into validated, index-based types.
//!
//! # Why this shape
//!
//! The packet path must never look at names or strings (STYLE.md, principle 4):
//! it works with [`NetIdx`], [`PortIdx`], [`VlanId`] and [`MacAddr`]. So the file
//! is parsed and *checked completely* here, once, on the control path, and what
//! leaves this module is a [`Config`] in which every reference is an index that
//! is known to be valid and every bounded value has its type. Nothing else in
//! the switch sees TOML.
//!
//! Errors are for people editing a file: each names the file, the line, the
//! entry and the key ([`ConfigError`]), e.g.
//!
//! ```text
//! vswitch.toml:12: port "vm1": key "network": network "net-x" does not exist
//! ```
//!
//! # The file
//!
//! `examples/vswitch.toml` is a complete, commented example. In short:
//!
//! ```toml
//! [switch]                    # optional, as is each key in it
//! workers = 1                 # poll-mode workers, 1..=1024
//! mac_aging_secs = 300        # idle aging of learned MACs, 15..=3600 (OVS's range)
//! mac_table_size = 50000      # learned entries in the whole switch, >= 1
//! mac_limit_per_port = 0      # learned entries per port, 0 = no limit
//! control_socket = "/run/vswitch/vswitch.sock"
//! forward_only = false        # true: move bursts port 2i <-> 2i+1, no switching
//! napi_busy_poll = true       # AF_XDP: the worker runs its ports' NAPIs (io_uring)
//! napi_busy_poll_usecs = 100  # busy-poll time per worker loop, 0..=10000 µs
//!
//! [underlay]                  # the local VTEP (needed by vxlan/gre networks)
//! port = "uplink"             # its port's name; not repeated as a [[port]]
//! ifname = "eth1"             # optional
//! local_ip = "198.18.0.1/24"  # IPv4 or IPv6, optional /prefix
//! local_mac = "02:00:00:00:00:01"   # optional (replay needs it)
//! gateway = "198.18.0.254"    # optional, inside the prefix
//! mtu = 1500                  # default 1500
//! df = true                   # default true
//! vxlan_port = 4789           # default 4789
//! neighbors = [ { ip = "198.18.0.2", mac = "02:00:00:00:00:02" } ]   # optional
//!
//! [[physnet]]                 # Neutron bridge_mappings
//! name = "physnet1"
//! port = "phys1"              # its port's name; not repeated as a [[port]]
//! ifname = "eth2"             # optional
//! mtu = 1500                  # default 1500
//!
//! [[network]]
//! name = "net-a"
//! segment = "local"           # local | flat | vlan | vxlan | gre
//! local_vlan = 1              # optional: allocated when omitted
//!
//! [[network]]
//! name = "net-b"
//! segment = "vxlan"
//! id = 5010                   # vlan: provider VID; vxlan: VNI; gre: key
//! remote_vteps = ["198.18.0.2"]   # vxlan/gre: the flood list
//!
//! [[network]]
//! name = "net-p"
//! segment = "vlan"
//! id = 100
//! physnet = "physnet1"        # flat and vlan
//!
//! [[port]]
//! name = "vm1"
//! ifname = "tap-vm1"          # optional
//! mode = "access"
//! network = "net-a"
//!
//! [[port]]
//! name = "trunk1"
//! mode = "trunk"
//! vlans = { 10 = "net-a" }    # wire VID -> network
//! native = "net-a"            # optional: network of untagged frames
//!
//! [[fdb]]
//! network = "net-a"
//! mac = "fa:16:3e:00:00:01"
//! port = "vm1"                # or, on vxlan/gre networks, remote = "198.18.0.2"
//!
//! [[arp]]                     # l2population ARP responder
//! network = "net-b"
//! ip = "10.1.0.2"
//! mac = "fa:16:3e:00:00:02"
//!
//! [metrics]                   # optional: absent = no metrics listener
//! listen = "127.0.0.1:9417"   # Prometheus text on GET /metrics
//! ```
//!
//! # Rules and choices
//!
//! - Unknown keys are errors (a typo must not silently fall back to a default),
//!   including inside `neighbors`' inline tables.
//! - `mac_aging_secs` outside 15..=3600 is **rejected**, not clamped as Open vSwitch
//!   does: a value the switch would not use should not be accepted silently.
//! - `workers` is limited to 1..=1024, `mac_table_size` to 1..=2³²−1,
//!   `mac_limit_per_port` to 0..=2³²−1; a per-port limit above the table size is
//!   allowed (the table size then bounds it).
//! - Local VLANs: networks that set `local_vlan` keep it (1..=4094, each at most
//!   once); the others get, in file order, the lowest VLAN not yet taken. An
//!   explicit VLAN always wins, wherever it is in the file, so adding a network with
//!   an explicit VLAN never moves another explicit one. At most 4094 networks.
//!   Every network has one, whatever its segment.
//! - Names (of networks, ports and physnets) are non-empty and without control
//!   characters; networks, physnets and ports have separate name spaces. `ifname`
//!   follows Linux's rules (1 to 15 bytes, not `.`/`..`, no `/`, `:` or
//!   whitespace), and no two ports (of any kind) have the same `ifname`.
//! - Ports: [`Config::ports`] is the `[[port]]`s in file order, then one port per
//!   `[[physnet]]` in file order ([`PortRole::Physnet`]), then the underlay's port
//!   last ([`PortRole::Underlay`]). All of them share one name space: a physnet or
//!   underlay `port` equal to another port's name is an error naming both entries.
//!   At most 65535 ports, and ports + remote VTEPs <= 65535 (they share the `u16`
//!   port ids of the pipeline).
//! - A physnet's port is a trunk: `vlans` are the (provider VID, network) of the
//!   vlan networks on the physnet sorted by VID, `native` its flat network if any.
//!   The underlay's port is a trunk with neither: it carries no network at L2.
//!   `[[port]]`s may carry networks of any segment (the VM ports of a vxlan network
//!   are access ports of its local VLAN).
//! - Trunks: VIDs are 1..=4094 written in decimal; one VID maps to one network
//!   (`10` and `010` are the same VID and rejected together). Several VIDs may map
//!   to the same network, as Open vSwitch allows: all of them are accepted on
//!   ingress and the lowest is used on egress ([`PortMode::egress`]). The native
//!   network may also be listed in `vlans`: its frames leave untagged and are
//!   accepted both untagged and with that VID. A trunk with neither `vlans` nor
//!   `native` is valid and carries nothing.
//! - Segments: `id` is required by vlan (provider VID, 1..=4094), vxlan (VNI,
//!   1..=16777215: 0 is refused, as Neutron never allocates it) and gre (key,
//!   1..=2³²−1), and refused on local and flat. `physnet` is required by flat and
//!   vlan (an existing `[[physnet]]`) and refused otherwise. `remote_vteps` is
//!   allowed on vxlan and gre only (optional, may be empty). vxlan and gre need
//!   `[underlay]`. Unique: the VNI among vxlan networks, the key among gre networks
//!   (a VNI may equal a key), (physnet, VID) among vlan networks, one flat network
//!   per physnet; the error names the other network and its line.
//! - Remote addresses (`remote_vteps`, `[[fdb]] remote`, `gateway`, `neighbors`):
//!   of the family of `local_ip`, not `local_ip` itself, not unspecified, multicast
//!   or 255.255.255.255; each at most once per list. Off-link VTEPs are not checked
//!   against the prefix: they are reached through the gateway, or by ARP/ND.
//!   List elements are named by a 0-based index in errors (`remote_vteps.1`,
//!   `neighbors.0.mac`), as TOML paths are.
//! - `[underlay]`: `port` and `local_ip` are required. `local_ip` is `IP` or
//!   `IP/len` (len <= 32 or <= 128; host bits are accepted, as `ip addr` does) and
//!   a unicast address. `local_mac` is unicast and non-zero. `gateway` needs a
//!   prefix on `local_ip` and must lie inside it. `mtu` is 576..=9216 over IPv4,
//!   1280..=9216 over IPv6 (default 1500); `df` defaults to true; `vxlan_port` is
//!   1..=65535 (default 4789). An `[underlay]` without tunnel networks is valid.
//! - `[[physnet]]`: `name` unique, `port` required, `mtu` 68..=65535 (default 1500).
//! - [`Config::vteps`]: the distinct addresses of every vxlan/gre network's
//!   `remote_vteps` (networks in file order), then of `[[fdb]]` remotes, in order of
//!   first mention; [`Network::remote_vteps`] and [`FdbTarget::Remote`] index it.
//! - Static FDB entries take unicast, non-zero MACs and exactly one of `port` (a
//!   port that carries the entry's network) and `remote` (a remote VTEP address, on
//!   vxlan/gre networks only); one entry per (network, MAC). The same MAC may be
//!   static in several networks.
//! - `[[arp]]`: an existing network (any segment), an IPv4 address (an IPv6 one is
//!   refused: the ARP responder is IPv4, as in Neutron) that is not unspecified,
//!   multicast or broadcast, a unicast non-zero MAC; one entry per (network, IP).
//! - Usable MTU ([`Config::network_mtu`], printed by `check-config`): Neutron's
//!   formula, underlay MTU − 50 (vxlan over IPv4) / − 70 (over IPv6), − 42 / − 62
//!   (gre with key); flat and vlan: the physnet's MTU; local: no limit.
//! - `[metrics]`: `listen` is `IPv4:PORT` or `[IPv6]:PORT` (no host names: nothing
//!   is resolved), port 1..=65535. Without `listen` (or without `[metrics]`) there
//!   is no listener. Any address is accepted; the README says to keep it on
//!   loopback or a management network (the endpoint has no authentication).
//! - `[switch]`, `[underlay]` and `[metrics]` are tables and `[[network]]`, `[[port]]`,
//!   `[[fdb]]`, `[[physnet]]`, `[[arp]]` are arrays of tables (writing `[[switch]]`
//!   or `[network]` is an error that says so); all are optional. An empty file is
//!   a valid switch with no networks and no ports.
//!
//! # Extending the schema
//!
//! A new key is a field in `raw.rs` (spanned, optional unless it must be there), a
//! check in `build.rs` that turns it into a typed value of [`Config`] (with the
//! key's name in its errors), a line in `render.rs` so that `check-config` shows it,
//! and a commented line in `examples/vswitch.toml`; the round-trip proptest then
//! covers it once its generator draws it. A new section is a field of `RawConfig`
//! and an entry in `check_shape` (and in `locate::NAMED_ENTRIES` if its entries
//! have a `name`).

mod build;
mod error;
mod locate;
mod raw;
mod render;

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use encap::{GreKey, MacAddr, VlanId, Vni};

pub use error::{ConfigError, ErrorKind};

/// Default `[switch] workers`.
pub const DEFAULT_WORKERS: usize = 1;
/// Most poll-mode workers accepted.
pub const MAX_WORKERS: usize = 1024;
/// Default `[switch] mac_aging_secs` (Open vSwitch's).
pub const DEFAULT_MAC_AGING_SECS: u32 = 300;
/// Shortest `mac_aging_secs` accepted (Open vSwitch's lower clamp).
pub const MIN_MAC_AGING_SECS: u32 = 15;
/// Longest `mac_aging_secs` accepted (Open vSwitch's upper clamp).
pub const MAX_MAC_AGING_SECS: u32 = 3600;
/// Default `[switch] mac_table_size` (the value Neutron configures on br-int).
pub const DEFAULT_MAC_TABLE_SIZE: usize = 50_000;
/// Largest `mac_table_size` (and `mac_limit_per_port`) accepted.
pub const MAX_MAC_TABLE_SIZE: usize = u32::MAX as usize;
/// Default `[switch] napi_busy_poll_usecs`.
pub const DEFAULT_NAPI_BUSY_POLL_USECS: u32 = 100;
/// Largest `[switch] napi_busy_poll_usecs`.
pub const MAX_NAPI_BUSY_POLL_USECS: u32 = 10_000;
/// Default `[switch] control_socket`.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vswitch/vswitch.sock";
/// Most networks: one local VLAN each.
pub const MAX_NETWORKS: usize = 4094;
/// Most ports: `PortIdx(0..=65534)`, so `u16::MAX` is never a valid port.
/// Remote VTEPs share this space: ports + VTEPs <= `MAX_PORTS`.
pub const MAX_PORTS: usize = u16::MAX as usize;
/// Default `[underlay] mtu` and `[[physnet]] mtu`.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest `[underlay] mtu` over IPv4 (RFC 791's minimum datagram every host takes).
pub const MIN_UNDERLAY_MTU_V4: u16 = 576;
/// Smallest `[underlay] mtu` over IPv6 (RFC 8200's minimum link MTU).
pub const MIN_UNDERLAY_MTU_V6: u16 = 1280;
/// Largest `[underlay] mtu` (a common jumbo-frame limit of NICs and switches).
pub const MAX_UNDERLAY_MTU: u16 = 9216;
/// Smallest `[[physnet]] mtu` (RFC 791's minimum IPv4 MTU).
pub const MIN_PHYSNET_MTU: u16 = 68;
/// Default `[underlay] vxlan_port` (IANA's; the Linux kernel's own default is 8472).
pub const DEFAULT_VXLAN_PORT: u16 = 4789;
/// Outer headers of VXLAN over IPv4: Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
pub const VXLAN_OVERHEAD_V4: u16 = 50;
/// Outer headers of VXLAN over IPv6: Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8.
pub const VXLAN_OVERHEAD_V6: u16 = 70;
/// Outer headers of GRE with key over IPv4: Ethernet 14 + IPv4 20 + GRE 8.
pub const GRE_OVERHEAD_V4: u16 = 42;
/// Outer headers of GRE with key over IPv6: Ethernet 14 + IPv6 40 + GRE 8.
pub const GRE_OVERHEAD_V6: u16 = 62;

// The defaults obey the limits they are checked against.
const _: () = {
    assert!(DEFAULT_WORKERS >= 1 && DEFAULT_WORKERS <= MAX_WORKERS);
    assert!(DEFAULT_MAC_AGING_SECS >= MIN_MAC_AGING_SECS);
    assert!(DEFAULT_MAC_AGING_SECS <= MAX_MAC_AGING_SECS);
    assert!(DEFAULT_MAC_TABLE_SIZE >= 1 && DEFAULT_MAC_TABLE_SIZE <= MAX_MAC_TABLE_SIZE);
    assert!(DEFAULT_MTU >= MIN_UNDERLAY_MTU_V6 && DEFAULT_MTU <= MAX_UNDERLAY_MTU);
    assert!(DEFAULT_MTU >= MIN_PHYSNET_MTU);
    // The overheads never exceed the smallest underlay MTU.
    assert!(VXLAN_OVERHEAD_V4 < MIN_UNDERLAY_MTU_V4 && VXLAN_OVERHEAD_V6 < MIN_UNDERLAY_MTU_V6);
};

/// A validated switch configuration. The rest of the switch consumes only this.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `[switch]`, with defaults filled in.
    pub switch: SwitchParams,
    /// The networks in file order; [`NetIdx`] indexes this.
    pub networks: Vec<Network>,
    /// The ports in file order; [`PortIdx`] indexes this.
    pub ports: Vec<Port>,
    /// Static MAC entries in file order.
    pub static_fdb: Vec<StaticFdb>,
    /// `[underlay]`: the local VTEP, when the file has one (required by vxlan/gre
    /// networks).
    pub underlay: Option<Underlay>,
    /// `[[physnet]]` in file order (Neutron's `bridge_mappings`); [`PhysnetIdx`]
    /// indexes this.
    pub physnets: Vec<Physnet>,
    /// Every distinct remote VTEP address named in a network's `remote_vteps` or in a
    /// `[[fdb]]` entry's `remote`, in order of first mention; [`VtepIdx`] indexes this.
    /// Each is one tunnel "port" of the switch, as in Open vSwitch.
    pub vteps: Vec<IpAddr>,
    /// `[[arp]]`: l2population ARP responder entries, in file order.
    pub arp: Vec<ArpEntry>,
    /// `[metrics]`: the Prometheus listener.
    pub metrics: MetricsParams,
    /// The file it was read from, if it was read by [`Config::from_file`].
    pub source: Option<PathBuf>,
}

/// `[metrics]`: where `vswitch run` serves Prometheus metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsParams {
    /// The listener's address; `None` (the default): no listener.
    pub listen: Option<SocketAddr>,
}

/// Switch-wide parameters (`[switch]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchParams {
    /// Poll-mode workers, 1..=[`MAX_WORKERS`].
    pub workers: usize,
    /// An entry idle this long is gone; whole seconds in 15..=3600.
    pub mac_aging: Duration,
    /// Learned entries in the whole switch, >= 1.
    pub mac_table_size: usize,
    /// Learned entries per port; 0 = no per-port limit.
    pub mac_limit_per_port: usize,
    /// The control socket's path.
    pub control_socket: PathBuf,
    /// Forward-only ("null") mode: each worker moves every received burst from port
    /// `2i` to port `2i + 1` and back, with no parsing, learning or lookup (the AF_XDP
    /// ceiling of the rig). `vswitch run --forward-only` sets it too.
    pub forward_only: bool,
    /// AF_XDP ports: each worker busy polls its queues' NAPIs from its own thread
    /// (io_uring static NAPI busy polling), so the kernel's receive work for them runs
    /// on the worker's core. Falls back, with a logged reason, where unsupported.
    pub napi_busy_poll: bool,
    /// How long one busy poll runs, µs, 0..=[`MAX_NAPI_BUSY_POLL_USECS`].
    pub napi_busy_poll_usecs: u32,
    /// New MACs each port may teach the switch per second; 0 = no cap. Past it a new
    /// source is forwarded but not learned (counted), so a port that sprays random
    /// source MACs cannot churn the table.
    pub mac_learn_rate_per_port: u32,
    /// Storm control default of every port: flooded frames (broadcast, multicast,
    /// unknown unicast) a port may send into the switch per second; 0 = no limit.
    pub storm_control_pps: u32,
    /// The XDP fast path (see [`crate::fastpath`]): established known-unicast flows are
    /// forwarded inside the kernel, the workers take the rest. Off by default: a veth
    /// port's peer must have a NAPI (GRO on, or an XDP program) to receive redirected
    /// frames. `vswitch run --fastpath` / `--no-fastpath` override it.
    pub fastpath: bool,
}

impl Default for SwitchParams {
    fn default() -> Self {
        SwitchParams {
            workers: DEFAULT_WORKERS,
            mac_aging: Duration::from_secs(u64::from(DEFAULT_MAC_AGING_SECS)),
            mac_table_size: DEFAULT_MAC_TABLE_SIZE,
            mac_limit_per_port: 0,
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            forward_only: false,
            napi_busy_poll: true,
            napi_busy_poll_usecs: DEFAULT_NAPI_BUSY_POLL_USECS,
            mac_learn_rate_per_port: 0,
            storm_control_pps: 0,
            fastpath: false,
        }
    }
}

/// Index of a network in [`Config::networks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetIdx(pub u16);

impl NetIdx {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a port in [`Config::ports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortIdx(pub u16);

impl PortIdx {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a physical network in [`Config::physnets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhysnetIdx(pub u16);

impl PhysnetIdx {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a remote VTEP in [`Config::vteps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VtepIdx(pub u16);

impl VtepIdx {
    /// The index as `usize`.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// One tenant broadcast domain (`[[network]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Its name, unique among networks.
    pub name: String,
    /// How it leaves the host.
    pub segment: Segment,
    /// Its host-local VLAN, unique among networks.
    pub local_vlan: VlanId,
    /// `true` when `local_vlan` was not in the file and was allocated.
    pub local_vlan_allocated: bool,
    /// vxlan/gre: the flood list (head-end replication), in file order, each once;
    /// empty for other segments.
    pub remote_vteps: Vec<VtepIdx>,
    /// Learned entries in this network; 0 = no limit (`mac_limit`).
    pub mac_limit: u32,
}

/// How a network crosses hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// This host only.
    Local,
    /// Untagged on a physical network (at most one flat network per physnet).
    Flat {
        /// The physical network.
        physnet: PhysnetIdx,
    },
    /// 802.1Q-tagged with a provider VID on a physical network ((physnet, vid) unique).
    Vlan {
        /// The physical network.
        physnet: PhysnetIdx,
        /// The provider VID.
        vid: VlanId,
    },
    /// A VXLAN overlay over the underlay (VNI unique among vxlan networks).
    Vxlan {
        /// The VNI.
        vni: Vni,
    },
    /// A GRE overlay over the underlay (key unique among gre networks).
    Gre {
        /// The GRE key.
        key: GreKey,
    },
}

impl Segment {
    /// The word used in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Segment::Local => "local",
            Segment::Flat { .. } => "flat",
            Segment::Vlan { .. } => "vlan",
            Segment::Vxlan { .. } => "vxlan",
            Segment::Gre { .. } => "gre",
        }
    }

    /// Whether the network is carried by tunnels over the underlay.
    pub const fn is_tunnel(self) -> bool {
        matches!(self, Segment::Vxlan { .. } | Segment::Gre { .. })
    }
}

/// `[underlay]`: the local VTEP and the port that carries tunnel traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The underlay port in [`Config::ports`] (role [`PortRole::Underlay`]).
    pub port: PortIdx,
    /// The local VTEP address.
    pub local_ip: IpAddr,
    /// The on-link prefix length; `None`: every VTEP is on-link.
    pub prefix_len: Option<u8>,
    /// The source MAC of tunnel frames; `None`: the netdev's own (replay requires it).
    pub local_mac: Option<MacAddr>,
    /// Next hop for VTEPs outside the prefix (same family as `local_ip`, on-link).
    pub gateway: Option<IpAddr>,
    /// Underlay MTU: no frame larger than this (IP packet) is sent.
    pub mtu: u16,
    /// DF on outer IPv4.
    pub df: bool,
    /// VXLAN UDP destination port (default 4789).
    pub vxlan_port: u16,
    /// Static neighbours (same family as `local_ip`), never expired.
    pub neighbors: Vec<(IpAddr, MacAddr)>,
}

/// `[[physnet]]`: one physical network and the port that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Physnet {
    /// Its name, unique among physnets.
    pub name: String,
    /// Its port in [`Config::ports`] (role [`PortRole::Physnet`]).
    pub port: PortIdx,
    /// The MTU of the physical network: the usable MTU of its flat and vlan
    /// networks (68..=65535, default 1500).
    pub mtu: u16,
}

/// An l2population ARP responder entry (`[[arp]]`): IPv4 only, as in Neutron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpEntry {
    /// The network.
    pub network: NetIdx,
    /// The IPv4 address asked for.
    pub ip: Ipv4Addr,
    /// The answer.
    pub mac: MacAddr,
}

/// A switch port (`[[port]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name, unique among ports.
    pub name: String,
    /// The netdev to open, when there is one (replay does not use it).
    pub ifname: Option<String>,
    /// Which networks it carries and how they are tagged. A physnet port is a trunk
    /// of its vlan networks (provider VID) with its flat network as native; the
    /// underlay port is a trunk that carries nothing at L2.
    pub mode: PortMode,
    /// Where it came from in the file.
    pub role: PortRole,
    /// Port security and storm control.
    pub policy: PortPolicy,
}

/// What a port may send into the switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortPolicy {
    /// Neutron port security (`mac`, `ips`, `allowed_pairs`): access ports only.
    pub security: Option<PortSecurity>,
    /// Storm control: flooded frames per second from this port; `None` = the
    /// `[switch]` default, `Some(0)` = no limit.
    pub storm_control_pps: Option<u32>,
}

/// Neutron's port security of a VM port (`port_security_enabled`, its fixed IPs and
/// `allowed_address_pairs`): the source MACs and addresses the port may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSecurity {
    /// The port's MAC (`mac`).
    pub mac: MacAddr,
    /// Allowed (source MAC, source prefix) pairs: `mac` with each of `ips` (host
    /// prefixes), then `allowed_pairs`, each once.
    pub allowed: Vec<AllowedPair>,
}

/// One allowed (MAC, IP prefix) pair of a secured port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedPair {
    /// The source MAC.
    pub mac: MacAddr,
    /// Source addresses allowed with it.
    pub ip: ipnet::IpNet,
}

/// What a port is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// A `[[port]]`.
    Local,
    /// The port of `[[physnet]]` number `.0`.
    Physnet(PhysnetIdx),
    /// The `[underlay]` port.
    Underlay,
}

/// How a port carries networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// One network, untagged.
    Access {
        /// The network.
        network: NetIdx,
    },
    /// Networks by 802.1Q VID, and optionally one untagged.
    Trunk {
        /// Wire VID → network, sorted by VID, each VID once.
        vlans: Vec<(VlanId, NetIdx)>,
        /// The network of untagged and priority-tagged frames; without one they are dropped.
        native: Option<NetIdx>,
    },
}

/// How a frame of a network leaves a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EgressTag {
    /// Without an 802.1Q tag.
    Untagged,
    /// With this VID.
    Tagged(VlanId),
}

impl PortMode {
    /// The network of a frame received with outer VID `vid` (`None`: untagged or
    /// priority-tagged), or `None` if the port does not accept it. This is the
    /// reference for the pipeline's classification, not its hot-path form.
    pub fn ingress(&self, vid: Option<VlanId>) -> Option<NetIdx> {
        match (self, vid) {
            (PortMode::Access { network }, None) => Some(*network),
            (PortMode::Access { .. }, Some(_)) => None,
            (PortMode::Trunk { native, .. }, None) => *native,
            (PortMode::Trunk { vlans, .. }, Some(vid)) => vlans
                .binary_search_by_key(&vid, |&(v, _)| v)
                .ok()
                .and_then(|i| vlans.get(i))
                .map(|&(_, n)| n),
        }
    }

    /// How a frame of `net` leaves the port, or `None` if the port does not carry
    /// `net`. A trunk's native network leaves untagged even if also in `vlans`;
    /// a network reached by several VIDs leaves with the lowest.
    pub fn egress(&self, net: NetIdx) -> Option<EgressTag> {
        match self {
            PortMode::Access { network } => (*network == net).then_some(EgressTag::Untagged),
            PortMode::Trunk { vlans, native } => {
                if *native == Some(net) {
                    Some(EgressTag::Untagged)
                } else {
                    vlans
                        .iter()
                        .find(|&&(_, n)| n == net)
                        .map(|&(v, _)| EgressTag::Tagged(v))
                }
            }
        }
    }

    /// Whether the port carries `net`.
    pub fn carries(&self, net: NetIdx) -> bool {
        self.egress(net).is_some()
    }
}

/// A static MAC entry (`[[fdb]]`): never aged, never moved by learning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StaticFdb {
    /// The network.
    pub network: NetIdx,
    /// A unicast, non-zero address.
    pub mac: MacAddr,
    /// Where it is.
    pub target: FdbTarget,
}

/// Where a static entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdbTarget {
    /// A port that carries the network (`port = "..."`).
    Port(PortIdx),
    /// A remote VTEP of a vxlan/gre network (`remote = "..."`, l2population).
    Remote(VtepIdx),
}

impl Config {
    /// Reads and validates a file; errors name it as given.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Config::from_file_text(path).map(|(c, _)| c)
    }

    /// [`Config::from_file`], also returning the text that was read (for the lines of
    /// [`Config::check_reload`]'s errors).
    pub fn from_file_text(path: impl AsRef<Path>) -> Result<(Config, String), ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            context: None,
            key: None,
            kind: ErrorKind::Read {
                io: e.kind(),
                message: e.to_string(),
            },
        })?;
        let mut config = Config::from_str(&text, &file)?;
        config.source = Some(path.to_path_buf());
        Ok((config, text))
    }

    /// For a reload of a switch running `running`: a network whose local VLAN the file
    /// leaves to allocation keeps the one it has in `running` (matched by name) unless
    /// an explicit `local_vlan` of this file takes it, so that a network added before it
    /// does not move it (which would flush its learned MACs); the others get the lowest
    /// free VLANs, in file order.
    pub fn keep_local_vlans(&mut self, running: &Config) {
        let explicit: std::collections::HashSet<VlanId> = self
            .networks
            .iter()
            .filter(|n| !n.local_vlan_allocated)
            .map(|n| n.local_vlan)
            .collect();
        let mut kept = std::collections::HashSet::new();
        let wanted: Vec<Option<VlanId>> = self
            .networks
            .iter()
            .map(|n| {
                if !n.local_vlan_allocated {
                    return Some(n.local_vlan);
                }
                let old = running
                    .network_by_name(&n.name)
                    .and_then(|i| running.network(i))
                    .map(|o| o.local_vlan)
                    .filter(|v| !explicit.contains(v))?;
                kept.insert(old).then_some(old)
            })
            .collect();
        let vlans = build::allocate_local_vlans(&wanted);
        for (n, v) in self.networks.iter_mut().zip(vlans) {
            n.local_vlan = v;
        }
    }

    /// Refuses `new`, read from `text`, as a reload of a switch running `self` when it
    /// changes a `[switch]` key applied only when the switch starts: workers, table
    /// size, per-port limit, aging, the control socket, forward-only mode, NAPI busy
    /// polling, the fast path; or `[metrics] listen`. (`mac_learn_rate_per_port` and `storm_control_pps`
    /// are compiled into the tables and change with a reload.) The error names the file,
    /// the key's line (the section header's when the new file leaves the key out) and
    /// the key.
    pub fn check_reload(&self, new: &Config, text: &str) -> Result<(), ConfigError> {
        // No `..`: a new `[switch]` key must be sorted into one kind or the other here.
        let SwitchParams {
            workers,
            mac_aging,
            mac_table_size,
            mac_limit_per_port,
            control_socket,
            forward_only,
            napi_busy_poll,
            napi_busy_poll_usecs,
            mac_learn_rate_per_port: _,
            storm_control_pps: _,
            fastpath,
        } = &self.switch;
        let b = &new.switch;
        let s = |v: &dyn std::fmt::Display| v.to_string();
        let changed: Option<(&str, String, String)> = if *workers != b.workers {
            Some(("workers", s(workers), s(&b.workers)))
        } else if *forward_only != b.forward_only {
            Some(("forward_only", s(forward_only), s(&b.forward_only)))
        } else if *mac_aging != b.mac_aging {
            let (x, y) = (mac_aging.as_secs(), b.mac_aging.as_secs());
            Some(("mac_aging_secs", s(&x), s(&y)))
        } else if *mac_table_size != b.mac_table_size {
            Some(("mac_table_size", s(mac_table_size), s(&b.mac_table_size)))
        } else if *mac_limit_per_port != b.mac_limit_per_port {
            let (x, y) = (s(mac_limit_per_port), s(&b.mac_limit_per_port));
            Some(("mac_limit_per_port", x, y))
        } else if *control_socket != b.control_socket {
            let v = |p: &Path| format!("{:?}", p.display().to_string());
            Some(("control_socket", v(control_socket), v(&b.control_socket)))
        } else if *napi_busy_poll != b.napi_busy_poll {
            Some(("napi_busy_poll", s(napi_busy_poll), s(&b.napi_busy_poll)))
        } else if *fastpath != b.fastpath {
            Some(("fastpath", s(fastpath), s(&b.fastpath)))
        } else if *napi_busy_poll_usecs != b.napi_busy_poll_usecs {
            let (x, y) = (s(napi_busy_poll_usecs), s(&b.napi_busy_poll_usecs));
            Some(("napi_busy_poll_usecs", x, y))
        } else {
            None
        };
        let MetricsParams { listen } = &self.metrics;
        let changed = changed.map(|(k, x, y)| ("switch", k, x, y)).or_else(|| {
            let v = |a: &Option<SocketAddr>| a.map_or_else(|| "none".into(), |a| a.to_string());
            (*listen != new.metrics.listen)
                .then(|| ("metrics", "listen", v(listen), v(&new.metrics.listen)))
        });
        let Some((section, key, running, value)) = changed else {
            return Ok(());
        };
        Err(ConfigError {
            file: new
                .source
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            line: locate::key_line(text, section, key),
            context: Some(format!("[{section}]")),
            key: Some(key.into()),
            kind: ErrorKind::NeedsRestart {
                running: running.into(),
                new: value.into(),
            },
        })
    }

    /// Validates `text`; errors name it `name_for_errors`. [`Config::source`] is `None`.
    pub fn from_str(text: &str, name_for_errors: &str) -> Result<Config, ConfigError> {
        build::parse(text, name_for_errors)
    }

    /// The network called `name`.
    pub fn network_by_name(&self, name: &str) -> Option<NetIdx> {
        let i = self.networks.iter().position(|n| n.name == name)?;
        u16::try_from(i).ok().map(NetIdx)
    }

    /// The port called `name`.
    pub fn port_by_name(&self, name: &str) -> Option<PortIdx> {
        let i = self.ports.iter().position(|p| p.name == name)?;
        u16::try_from(i).ok().map(PortIdx)
    }

    /// Whether `other` has the same ports, by name and netdev, in the same order (what a
    /// running switch can reconfigure without reopening its ports).
    pub fn same_ports(&self, other: &Config) -> bool {
        self.ports.len() == other.ports.len()
            && self
                .ports
                .iter()
                .zip(&other.ports)
                .all(|(a, b)| a.name == b.name && a.ifname == b.ifname)
    }

    /// The network at `idx`.
    pub fn network(&self, idx: NetIdx) -> Option<&Network> {
        self.networks.get(idx.index())
    }

    /// The port at `idx`.
    pub fn port(&self, idx: PortIdx) -> Option<&Port> {
        self.ports.get(idx.index())
    }

    /// The physnet called `name`.
    pub fn physnet_by_name(&self, name: &str) -> Option<PhysnetIdx> {
        let i = self.physnets.iter().position(|p| p.name == name)?;
        u16::try_from(i).ok().map(PhysnetIdx)
    }

    /// The physnet at `idx`.
    pub fn physnet(&self, idx: PhysnetIdx) -> Option<&Physnet> {
        self.physnets.get(idx.index())
    }

    /// The address of the remote VTEP at `idx`.
    pub fn vtep(&self, idx: VtepIdx) -> Option<IpAddr> {
        self.vteps.get(idx.index()).copied()
    }

    /// The largest frame payload (IP packet) a network carries, Neutron's formula:
    /// vxlan = underlay MTU − 50 (IPv4 underlay) / − 70 (IPv6); gre (with key) =
    /// underlay MTU − 42 / − 62; flat and vlan = the physnet's MTU. `None` for a
    /// local network (no limit), and for an index or reference out of range (only
    /// hand-built configs have those).
    pub fn network_mtu(&self, net: NetIdx) -> Option<u16> {
        let n = self.network(net)?;
        let tunnel = |v4: u16, v6: u16| {
            let u = self.underlay.as_ref()?;
            let overhead = if u.local_ip.is_ipv4() { v4 } else { v6 };
            Some(u.mtu.saturating_sub(overhead))
        };
        match n.segment {
            Segment::Local => None,
            Segment::Flat { physnet } | Segment::Vlan { physnet, .. } => {
                self.physnet(physnet).map(|p| p.mtu)
            }
            Segment::Vxlan { .. } => tunnel(VXLAN_OVERHEAD_V4, VXLAN_OVERHEAD_V6),
            Segment::Gre { .. } => tunnel(GRE_OVERHEAD_V4, GRE_OVERHEAD_V6),
        }
    }

    /// The resolved configuration as TOML, for `vswitch check-config`: every default
    /// explicit, every local VLAN written out (allocated ones marked by a comment).
    ///
    /// Parsing the output gives [`Config::pinned`]`()`: the same configuration, with
    /// every local VLAN now explicit and no `source`.
    pub fn render(&self) -> String {
        render::Rendered(self).to_string()
    }

    /// This configuration as it parses back from [`Config::render`]: `source` is
    /// `None` and no local VLAN is marked allocated.
    pub fn pinned(&self) -> Config {
        let mut c = self.clone();
        c.source = None;
        for n in &mut c.networks {
            n.local_vlan_allocated = false;
        }
        c
    }
}
