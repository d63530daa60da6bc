//! Validation: the spanned TOML structs in, a [`Config`] of indexes and bounded
//! types out. Checks run section by section (switch, underlay, physnets,
//! networks, ports, then the physnet and underlay ports, static entries, ARP
//! entries; within an entry, key by key), and the first failure is returned.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use encap::{GreKey, MacAddr, VlanId, Vni};
use serde::Deserialize;
use toml::de::DeTable;
use toml::Spanned;

use super::error::{ConfigError, ErrorKind};
use super::locate::{entry_context, line_of, toml_error};
use super::raw::{
    RawArp, RawConfig, RawFdb, RawMetrics, RawNetwork, RawPhysnet, RawPort, RawSwitch, RawUnderlay,
};
use super::{
    AllowedPair, ArpEntry, Config, FdbTarget, MetricsParams, NetIdx, Network, Physnet, PhysnetIdx,
    Port, PortIdx, PortMode, PortPolicy, PortRole, PortSecurity, Segment, StaticFdb, SwitchParams,
    Underlay, VtepIdx, DEFAULT_MTU, DEFAULT_VXLAN_PORT, MAX_MAC_AGING_SECS, MAX_MAC_TABLE_SIZE,
    MAX_NAPI_BUSY_POLL_USECS, MAX_NETWORKS, MAX_PORTS, MAX_UNDERLAY_MTU, MAX_WORKERS,
    MIN_MAC_AGING_SECS, MIN_PHYSNET_MTU, MIN_UNDERLAY_MTU_V4, MIN_UNDERLAY_MTU_V6,
};

/// Parses and validates `text`, naming it `file` in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| toml_error(file, text, &e, true))?;
    let cx = Cx { file, text };
    check_shape(doc.get_ref(), &cx)?;
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| toml_error(file, text, &e, false))?;
    let switch = switch_params(raw.switch.as_ref(), &cx)?;
    let underlay = underlay(raw.underlay.as_ref(), &cx)?;
    let (physnets, physnet_names) = physnets(&raw.physnet, &cx)?;
    // Ports and VTEPs share the u16 id space; a file with too many ports gets
    // that error below, so VTEPs are then not limited here.
    let n_ports = raw.port.len() + raw.physnet.len() + usize::from(raw.underlay.is_some());
    let mut vteps = Vteps {
        list: Vec::new(),
        index: HashMap::new(),
        max: MAX_PORTS.checked_sub(n_ports).unwrap_or(usize::MAX),
    };
    let (networks, net_names) = networks(
        &raw.network,
        &physnet_names,
        underlay.as_ref(),
        &mut vteps,
        &cx,
    )?;
    let mut ports = ports(&raw.port, &net_names, &cx)?;
    let physnets = ports.add_physnets(physnets, &networks, &cx)?;
    let underlay = match (underlay, raw.underlay.as_ref()) {
        (Some(mut u), Some(ru)) => {
            u.port = ports.add_underlay(ru.get_ref(), &cx)?;
            Some(u)
        }
        _ => None,
    };
    let static_fdb = static_fdb(
        &raw.fdb,
        &net_names,
        &ports,
        &networks,
        underlay.as_ref(),
        &mut vteps,
        &cx,
    )?;
    let arp = arp(&raw.arp, &net_names, &cx)?;
    let metrics = metrics_params(raw.metrics.as_ref(), &cx)?;
    Ok(Config {
        switch,
        networks,
        ports: ports.list,
        static_fdb,
        underlay,
        physnets,
        vteps: vteps.list,
        arp,
        metrics,
        source: None,
    })
}

/// Checks that `[switch]` and `[underlay]` are tables and `[[network]]`,
/// `[[port]]`, `[[fdb]]`, `[[physnet]]`, `[[arp]]` arrays of tables. Serde would
/// otherwise accept `[[switch]]` as a struct written as a sequence, or report a
/// `[network]` table as "expected a sequence".
fn check_shape(doc: &DeTable<'_>, cx: &Cx<'_>) -> Result<(), ConfigError> {
    for (k, v) in doc.iter() {
        let name = k.get_ref().as_ref();
        let wrong = |span, context: &str, expected| {
            let key = context.is_empty().then_some(name);
            cx.err(span, context, key, ErrorKind::WrongShape { expected })
        };
        match name {
            "switch" if !v.get_ref().is_table() => {
                return Err(wrong(k.span(), "", "a table: write [switch]"));
            }
            "metrics" if !v.get_ref().is_table() => {
                return Err(wrong(k.span(), "", "a table: write [metrics]"));
            }
            "underlay" if !v.get_ref().is_table() => {
                return Err(wrong(
                    k.span(),
                    "",
                    "a table: write [underlay] (one local VTEP)",
                ));
            }
            "network" | "port" | "fdb" | "physnet" | "arp" => {
                let Some(entries) = v.get_ref().as_array() else {
                    let expected = match name {
                        "network" => "an array of tables: write [[network]] for each network",
                        "port" => "an array of tables: write [[port]] for each port",
                        "physnet" => {
                            "an array of tables: write [[physnet]] for each physical network"
                        }
                        "arp" => "an array of tables: write [[arp]] for each entry",
                        _ => "an array of tables: write [[fdb]] for each entry",
                    };
                    return Err(wrong(k.span(), "", expected));
                };
                for (i, e) in entries.iter().enumerate() {
                    if !e.get_ref().is_table() {
                        let context = entry_context(name, i, None);
                        return Err(wrong(e.span(), &context, "a table"));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// What an error needs to say where it is.
struct Cx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Cx<'_> {
    /// Line of a byte offset. Scans the text: call it for errors only, never per entry.
    fn line_at(&self, offset: usize) -> u32 {
        line_of(self.text, offset)
    }

    fn err(
        &self,
        span: Range<usize>,
        context: &str,
        key: Option<&str>,
        kind: ErrorKind,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: Some(self.line_at(span.start)),
            context: (!context.is_empty()).then(|| context.to_owned()),
            key: key.map(str::to_owned),
            kind,
        }
    }
}

/// Largest rate (per second) of the rate limits: storm control, learning.
const MAX_RATE: u32 = 100_000_000;

/// Checks an integer is in `min..=max` (every range of the schema is within `u32`).
fn int_in(
    cx: &Cx<'_>,
    v: &Spanned<i64>,
    (min, max, why): (u32, u32, &'static str),
    context: &str,
    key: &str,
) -> Result<u32, ConfigError> {
    let value = *v.get_ref();
    match u32::try_from(value) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(cx.err(
            v.span(),
            context,
            Some(key),
            ErrorKind::OutOfRange {
                value,
                min,
                max,
                why,
            },
        )),
    }
}

/// A limit as the `u32` that [`int_in`] takes (all of ours fit).
fn limit(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A range-checked value as `usize` (lossless on the 32- and 64-bit targets we build for).
fn to_usize(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Checks a name: not empty, no control characters.
fn check_name(
    cx: &Cx<'_>,
    v: &Spanned<String>,
    context: &str,
    key: &str,
) -> Result<(), ConfigError> {
    let s = v.get_ref();
    let kind = if s.is_empty() {
        ErrorKind::Empty
    } else if s.chars().any(char::is_control) {
        ErrorKind::ControlCharacter
    } else {
        return Ok(());
    };
    Err(cx.err(v.span(), context, Some(key), kind))
}

/// Linux's `dev_valid_name`: 1..IFNAMSIZ bytes, not `.`/`..`, no `/`, `:` or whitespace.
fn valid_ifname(s: &str) -> bool {
    (1..16).contains(&s.len())
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

fn switch_params(
    raw: Option<&Spanned<RawSwitch>>,
    cx: &Cx<'_>,
) -> Result<SwitchParams, ConfigError> {
    const CX: &str = "[switch]";
    let mut p = SwitchParams::default();
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Ok(p);
    };
    if let Some(v) = &raw.workers {
        let range = (1, limit(MAX_WORKERS), "");
        p.workers = to_usize(int_in(cx, v, range, CX, "workers")?);
    }
    if let Some(v) = &raw.mac_aging_secs {
        let range = (
            MIN_MAC_AGING_SECS,
            MAX_MAC_AGING_SECS,
            " (Open vSwitch's range; values outside it are rejected, not clamped)",
        );
        let secs = int_in(cx, v, range, CX, "mac_aging_secs")?;
        p.mac_aging = Duration::from_secs(secs.into());
    }
    if let Some(v) = &raw.mac_table_size {
        let range = (1, limit(MAX_MAC_TABLE_SIZE), "");
        p.mac_table_size = to_usize(int_in(cx, v, range, CX, "mac_table_size")?);
    }
    if let Some(v) = &raw.mac_limit_per_port {
        let range = (0, limit(MAX_MAC_TABLE_SIZE), " (0 = no per-port limit)");
        p.mac_limit_per_port = to_usize(int_in(cx, v, range, CX, "mac_limit_per_port")?);
    }
    if let Some(v) = &raw.control_socket {
        check_name(cx, v, CX, "control_socket")?;
        p.control_socket = PathBuf::from(v.get_ref());
    }
    if let Some(v) = &raw.forward_only {
        p.forward_only = *v.get_ref();
    }
    if let Some(v) = &raw.napi_busy_poll {
        p.napi_busy_poll = *v.get_ref();
    }
    if let Some(v) = &raw.fastpath {
        p.fastpath = *v.get_ref();
    }
    if let Some(v) = &raw.napi_busy_poll_usecs {
        let range = (0, MAX_NAPI_BUSY_POLL_USECS, "");
        p.napi_busy_poll_usecs = int_in(cx, v, range, CX, "napi_busy_poll_usecs")?;
    }
    if let Some(v) = &raw.mac_learn_rate_per_port {
        let range = (0, MAX_RATE, " (new MACs per second per port; 0 = no cap)");
        p.mac_learn_rate_per_port = int_in(cx, v, range, CX, "mac_learn_rate_per_port")?;
    }
    if let Some(v) = &raw.storm_control_pps {
        let range = (
            0,
            MAX_RATE,
            " (flooded frames per second per port; 0 = no limit)",
        );
        p.storm_control_pps = int_in(cx, v, range, CX, "storm_control_pps")?;
    }
    Ok(p)
}

/// `[metrics]`: `listen` as a socket address. Literal addresses only: a host name
/// would make the file's meaning depend on a resolver at start-up.
fn metrics_params(
    raw: Option<&Spanned<RawMetrics>>,
    cx: &Cx<'_>,
) -> Result<MetricsParams, ConfigError> {
    const CX: &str = "[metrics]";
    let mut p = MetricsParams::default();
    let Some(v) = raw.and_then(|r| r.get_ref().listen.as_ref()) else {
        return Ok(p);
    };
    match v.get_ref().parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => p.listen = Some(a),
        _ => {
            let kind = ErrorKind::InvalidListen(v.get_ref().clone());
            return Err(cx.err(v.span(), CX, Some("listen"), kind));
        }
    }
    Ok(p)
}

/// Names to indexes, with the byte offset of the definition for duplicate messages.
type Names<'a, I> = HashMap<&'a str, (I, usize)>;

/// A segment type as written, before its keys are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SegmentType {
    Local,
    Flat,
    Vlan,
    Vxlan,
    Gre,
}

impl SegmentType {
    const fn as_str(self) -> &'static str {
        match self {
            SegmentType::Local => "local",
            SegmentType::Flat => "flat",
            SegmentType::Vlan => "vlan",
            SegmentType::Vxlan => "vxlan",
            SegmentType::Gre => "gre",
        }
    }

    const fn is_tunnel(self) -> bool {
        matches!(self, SegmentType::Vxlan | SegmentType::Gre)
    }
}

fn segment_type(
    cx: &Cx<'_>,
    v: &Spanned<String>,
    context: &str,
) -> Result<SegmentType, ConfigError> {
    Ok(match v.get_ref().as_str() {
        "local" => SegmentType::Local,
        "flat" => SegmentType::Flat,
        "vlan" => SegmentType::Vlan,
        "vxlan" => SegmentType::Vxlan,
        "gre" => SegmentType::Gre,
        s => {
            let kind = ErrorKind::UnknownSegment(s.to_owned());
            return Err(cx.err(v.span(), context, Some("segment"), kind));
        }
    })
}

/// The remote VTEPs met so far, in order of first mention.
struct Vteps {
    list: Vec<IpAddr>,
    index: HashMap<IpAddr, VtepIdx>,
    /// How many the port ids leave room for.
    max: usize,
}

impl Vteps {
    /// The index of `ip`, added if new.
    fn intern(
        &mut self,
        cx: &Cx<'_>,
        ip: IpAddr,
        span: Range<usize>,
        context: &str,
        key: &str,
    ) -> Result<VtepIdx, ConfigError> {
        if let Some(&idx) = self.index.get(&ip) {
            return Ok(idx);
        }
        if self.list.len() >= self.max {
            let kind = ErrorKind::TooManyVteps { max: self.max };
            return Err(cx.err(span, context, Some(key), kind));
        }
        // `max` <= MAX_PORTS - 1 when it limits anything, so the index fits.
        let idx = VtepIdx(u16::try_from(self.list.len()).unwrap_or(u16::MAX));
        self.list.push(ip);
        self.index.insert(ip, idx);
        Ok(idx)
    }
}

/// Where a segment id or physnet was first used: (network name, byte offset).
type Taken<'a, K> = HashMap<K, (&'a str, usize)>;

fn networks<'a>(
    raw: &'a [Spanned<RawNetwork>],
    physnets: &Names<'_, PhysnetIdx>,
    underlay: Option<&Underlay>,
    vteps: &mut Vteps,
    cx: &Cx<'_>,
) -> Result<(Vec<Network>, Names<'a, NetIdx>), ConfigError> {
    let mut names: Names<'a, NetIdx> = HashMap::new();
    // Explicit VLANs, by VID: (network name, byte offset).
    let mut taken: HashMap<u16, (&str, usize)> = HashMap::new();
    let mut vnis: Taken<'a, u32> = HashMap::new();
    let mut gre_keys: Taken<'a, u32> = HashMap::new();
    let mut provider_vids: Taken<'a, (PhysnetIdx, u16)> = HashMap::new();
    let mut flats: Taken<'a, PhysnetIdx> = HashMap::new();
    let mut explicit: Vec<Option<VlanId>> = Vec::with_capacity(raw.len());
    let mut out_partial: Vec<(String, Segment, Vec<VtepIdx>, u32)> = Vec::with_capacity(raw.len());
    for (i, rn) in raw.iter().enumerate() {
        let n = rn.get_ref();
        let name = n.name.get_ref().as_str();
        let context = entry_context("network", i, Some(name));
        if i >= MAX_NETWORKS {
            let kind = ErrorKind::TooManyNetworks { max: MAX_NETWORKS };
            return Err(cx.err(rn.span(), &context, None, kind));
        }
        check_name(cx, &n.name, &context, "name")?;
        let idx = NetIdx(u16::try_from(i).unwrap_or(u16::MAX));
        if let Some(&(_, first)) = names.get(name) {
            let kind = ErrorKind::DuplicateName {
                what: "network",
                first_line: cx.line_at(first),
            };
            return Err(cx.err(n.name.span(), &context, Some("name"), kind));
        }
        names.insert(name, (idx, n.name.span().start));
        let ty = segment_type(cx, &n.segment, &context)?;
        let word = ty.as_str();
        if ty.is_tunnel() && underlay.is_none() {
            let kind = ErrorKind::NeedsUnderlay { segment: word };
            return Err(cx.err(n.segment.span(), &context, Some("segment"), kind));
        }
        let vlan = match &n.local_vlan {
            None => None,
            Some(v) => {
                let range = (VlanId::MIN.into(), VlanId::MAX.into(), "");
                let value = int_in(cx, v, range, &context, "local_vlan")?;
                // In 1..=4094, so this and `VlanId::try_new` below succeed.
                let vid = u16::try_from(value).unwrap_or(0);
                if let Some(&(other, first)) = taken.get(&vid) {
                    let kind = ErrorKind::DuplicateLocalVlan {
                        vlan: vid,
                        other: other.to_owned(),
                        other_line: cx.line_at(first),
                    };
                    return Err(cx.err(v.span(), &context, Some("local_vlan"), kind));
                }
                taken.insert(vid, (name, v.span().start));
                VlanId::try_new(vid).ok()
            }
        };
        // `id`: its range depends on the segment type; local and flat have none.
        let id_range: Option<(u32, u32, &'static str)> = match ty {
            SegmentType::Local | SegmentType::Flat => None,
            SegmentType::Vlan => Some((VlanId::MIN.into(), VlanId::MAX.into(), " (provider VID)")),
            SegmentType::Vxlan => Some((1, Vni::MAX, " (VNI; 0 is not a VNI Neutron allocates)")),
            SegmentType::Gre => Some((1, u32::MAX, " (GRE key)")),
        };
        let id = match (&n.id, id_range) {
            (Some(v), None) => {
                let kind = ErrorKind::NotAllowedForSegment {
                    segment: word,
                    hint:
                        ": only vlan (provider VID), vxlan (VNI) and gre (key) networks have an id",
                };
                return Err(cx.err(v.span(), &context, Some("id"), kind));
            }
            (None, Some(_)) => {
                let hint = match ty {
                    SegmentType::Vlan => ": the provider VID, 1..=4094",
                    SegmentType::Vxlan => ": the VNI, 1..=16777215",
                    _ => ": the GRE key, 1..=4294967295",
                };
                let kind = ErrorKind::RequiredForSegment {
                    segment: word,
                    hint,
                };
                return Err(cx.err(rn.span(), &context, Some("id"), kind));
            }
            (Some(v), Some(range)) => Some((int_in(cx, v, range, &context, "id")?, v.span())),
            (None, None) => None,
        };
        // `physnet`: flat and vlan only, and it must exist.
        let physnet = match (
            &n.physnet,
            matches!(ty, SegmentType::Flat | SegmentType::Vlan),
        ) {
            (Some(v), false) => {
                let kind = ErrorKind::NotAllowedForSegment {
                    segment: word,
                    hint: ": only flat and vlan networks are on a physnet",
                };
                return Err(cx.err(v.span(), &context, Some("physnet"), kind));
            }
            (None, true) => {
                let kind = ErrorKind::RequiredForSegment {
                    segment: word,
                    hint: ": the [[physnet]] it is on",
                };
                return Err(cx.err(rn.span(), &context, Some("physnet"), kind));
            }
            (Some(v), true) => Some((
                lookup(
                    cx,
                    physnets,
                    v,
                    &context,
                    "physnet",
                    ErrorKind::NoSuchPhysnet,
                )?,
                v.span(),
            )),
            (None, false) => None,
        };
        let seg = match (ty, id, physnet) {
            (SegmentType::Flat, _, Some((physnet, span))) => {
                if let Some(&(other, first)) = flats.get(&physnet) {
                    let kind = ErrorKind::DuplicateFlat {
                        other: other.to_owned(),
                        other_line: cx.line_at(first),
                    };
                    return Err(cx.err(span, &context, Some("physnet"), kind));
                }
                flats.insert(physnet, (name, span.start));
                Segment::Flat { physnet }
            }
            (SegmentType::Vlan, Some((id, span)), Some((physnet, _))) => {
                // In 1..=4094 (checked above).
                let vid = u16::try_from(id).unwrap_or(0);
                if let Some(&(other, first)) = provider_vids.get(&(physnet, vid)) {
                    let kind = ErrorKind::DuplicateProviderVid {
                        vid,
                        other: other.to_owned(),
                        other_line: cx.line_at(first),
                    };
                    return Err(cx.err(span, &context, Some("id"), kind));
                }
                provider_vids.insert((physnet, vid), (name, span.start));
                let Ok(vid) = VlanId::try_new(vid) else {
                    // Unreachable: `id` was checked to be in 1..=4094.
                    let kind = ErrorKind::OutOfRange {
                        value: id.into(),
                        min: VlanId::MIN.into(),
                        max: VlanId::MAX.into(),
                        why: "",
                    };
                    return Err(cx.err(span, &context, Some("id"), kind));
                };
                Segment::Vlan { physnet, vid }
            }
            (SegmentType::Vxlan, Some((id, span)), _) => {
                if let Some(&(other, first)) = vnis.get(&id) {
                    let kind = ErrorKind::DuplicateVni {
                        vni: id,
                        other: other.to_owned(),
                        other_line: cx.line_at(first),
                    };
                    return Err(cx.err(span, &context, Some("id"), kind));
                }
                vnis.insert(id, (name, span.start));
                Segment::Vxlan {
                    vni: Vni::from_bits(id),
                }
            }
            (SegmentType::Gre, Some((id, span)), _) => {
                if let Some(&(other, first)) = gre_keys.get(&id) {
                    let kind = ErrorKind::DuplicateGreKey {
                        key: id,
                        other: other.to_owned(),
                        other_line: cx.line_at(first),
                    };
                    return Err(cx.err(span, &context, Some("id"), kind));
                }
                gre_keys.insert(id, (name, span.start));
                Segment::Gre {
                    key: GreKey::new(id),
                }
            }
            // Local, and (unreachable) combinations the checks above exclude.
            _ => Segment::Local,
        };
        // `remote_vteps`: vxlan and gre only (which have an underlay, checked above).
        let mut remote_vteps = Vec::new();
        match (&n.remote_vteps, underlay) {
            (Some(list), Some(u)) if ty.is_tunnel() => {
                let mut seen: HashMap<IpAddr, usize> = HashMap::new();
                for (j, v) in list.get_ref().iter().enumerate() {
                    let key = format!("remote_vteps.{j}");
                    let ip = remote_ip(cx, v, u, &context, &key)?;
                    if let Some(&first) = seen.get(&ip) {
                        let kind = ErrorKind::DuplicateAddress {
                            ip,
                            first_line: cx.line_at(first),
                        };
                        return Err(cx.err(v.span(), &context, Some(&key), kind));
                    }
                    seen.insert(ip, v.span().start);
                    remote_vteps.push(vteps.intern(cx, ip, v.span(), &context, &key)?);
                }
            }
            (Some(list), _) => {
                let kind = ErrorKind::NotAllowedForSegment {
                    segment: word,
                    hint: ": only vxlan and gre networks have remote VTEPs",
                };
                return Err(cx.err(list.span(), &context, Some("remote_vteps"), kind));
            }
            (None, _) => {}
        }
        let mac_limit = match &n.mac_limit {
            Some(v) => {
                let range = (0, limit(MAX_MAC_TABLE_SIZE), " (0 = no limit)");
                int_in(cx, v, range, &context, "mac_limit")?
            }
            None => 0,
        };
        explicit.push(vlan);
        out_partial.push((name.to_owned(), seg, remote_vteps, mac_limit));
    }
    let vlans = allocate_local_vlans(&explicit);
    let networks = out_partial
        .into_iter()
        .zip(explicit.iter().zip(vlans))
        .map(
            |((name, segment, remote_vteps, mac_limit), (explicit, local_vlan))| Network {
                name,
                segment,
                local_vlan,
                local_vlan_allocated: explicit.is_none(),
                remote_vteps,
                mac_limit,
            },
        )
        .collect();
    Ok((networks, names))
}

/// Keeps every explicit VLAN; gives each `None`, in order, the lowest VLAN that is
/// neither explicit nor already given. Needs at most [`MAX_NETWORKS`] entries and
/// distinct explicit VLANs (checked by the caller); the result has `explicit.len()`
/// distinct VLANs.
pub(super) fn allocate_local_vlans(explicit: &[Option<VlanId>]) -> Vec<VlanId> {
    let mut used = [false; VlanId::MAX as usize + 1];
    for v in explicit.iter().flatten() {
        if let Some(u) = used.get_mut(usize::from(v.get())) {
            *u = true;
        }
    }
    let mut next = VlanId::MIN;
    let mut out = Vec::with_capacity(explicit.len());
    for e in explicit {
        let vlan = match e {
            Some(v) => *v,
            None => {
                while used.get(usize::from(next)).copied().unwrap_or(false) {
                    next += 1;
                }
                // Fewer than 4095 networks and distinct explicit VLANs leave `next` <= 4094.
                let Ok(v) = VlanId::try_new(next) else { break };
                next += 1;
                v
            }
        };
        out.push(vlan);
    }
    out
}

fn lookup<I: Copy>(
    cx: &Cx<'_>,
    names: &Names<'_, I>,
    v: &Spanned<String>,
    context: &str,
    key: &str,
    missing: fn(String) -> ErrorKind,
) -> Result<I, ConfigError> {
    match names.get(v.get_ref().as_str()) {
        Some(&(idx, _)) => Ok(idx),
        None => Err(cx.err(v.span(), context, Some(key), missing(v.get_ref().clone()))),
    }
}

/// The ports built so far, with what duplicate checks need.
struct Ports<'a> {
    list: Vec<Port>,
    /// Port names (one name space for `[[port]]`s, physnet ports and the underlay port).
    names: Names<'a, PortIdx>,
    /// Netdev names, each opened by one port.
    ifnames: HashMap<&'a str, (PortIdx, usize)>,
    /// How an error names the entry that defines each port: `port "vm1"`,
    /// `physnet "physnet1"`, `[underlay]`.
    owners: Vec<String>,
}

impl<'a> Ports<'a> {
    /// The next index, or an error at `span` when the ports are full.
    fn next_idx(
        &self,
        cx: &Cx<'_>,
        span: Range<usize>,
        context: &str,
    ) -> Result<PortIdx, ConfigError> {
        match u16::try_from(self.list.len()) {
            Ok(i) if self.list.len() < MAX_PORTS => Ok(PortIdx(i)),
            _ => {
                let kind = ErrorKind::TooManyPorts { max: MAX_PORTS };
                Err(cx.err(span, context, None, kind))
            }
        }
    }

    /// Checks and records `ifname` for port `idx`.
    fn claim_ifname(
        &mut self,
        cx: &Cx<'_>,
        ifname: Option<&'a Spanned<String>>,
        idx: PortIdx,
        context: &str,
    ) -> Result<(), ConfigError> {
        let Some(ifname) = ifname else {
            return Ok(());
        };
        if !valid_ifname(ifname.get_ref()) {
            let kind = ErrorKind::InvalidIfname {
                name: ifname.get_ref().clone(),
            };
            return Err(cx.err(ifname.span(), context, Some("ifname"), kind));
        }
        if let Some(&(other, first)) = self.ifnames.get(ifname.get_ref().as_str()) {
            let kind = ErrorKind::DuplicateIfname {
                other: self.owner(other),
                other_line: cx.line_at(first),
            };
            return Err(cx.err(ifname.span(), context, Some("ifname"), kind));
        }
        self.ifnames
            .insert(ifname.get_ref(), (idx, ifname.span().start));
        Ok(())
    }

    fn owner(&self, idx: PortIdx) -> String {
        self.owners.get(idx.index()).cloned().unwrap_or_default()
    }

    /// Adds the port of a physnet or the underlay, named by `port` in the entry
    /// `context`.
    fn add_infra(
        &mut self,
        cx: &Cx<'_>,
        port: &'a Spanned<String>,
        ifname: Option<&'a Spanned<String>>,
        role: PortRole,
        mode: PortMode,
        context: &str,
    ) -> Result<PortIdx, ConfigError> {
        let idx = self.next_idx(cx, port.span(), context)?;
        let name = port.get_ref().as_str();
        if let Some(&(other, first)) = self.names.get(name) {
            let kind = ErrorKind::PortNameTaken {
                other: self.owner(other),
                other_line: cx.line_at(first),
            };
            return Err(cx.err(port.span(), context, Some("port"), kind));
        }
        self.names.insert(name, (idx, port.span().start));
        self.owners.push(context.to_owned());
        self.claim_ifname(cx, ifname, idx, context)?;
        self.list.push(Port {
            name: name.to_owned(),
            ifname: ifname.map(|s| s.get_ref().clone()),
            mode,
            role,
            policy: PortPolicy::default(),
        });
        Ok(idx)
    }

    /// Adds one port per physnet (in file order) and returns the physnets. A
    /// physnet port is a trunk of its vlan networks (provider VID) with its flat
    /// network as native.
    fn add_physnets(
        &mut self,
        physnets: Vec<PhysnetIn<'a>>,
        networks: &[Network],
        cx: &Cx<'_>,
    ) -> Result<Vec<Physnet>, ConfigError> {
        let mut out = Vec::with_capacity(physnets.len());
        for (i, p) in physnets.into_iter().enumerate() {
            let pidx = PhysnetIdx(u16::try_from(i).unwrap_or(u16::MAX));
            let mut vlans = Vec::new();
            let mut native = None;
            for (n, net) in networks.iter().enumerate() {
                let nidx = NetIdx(u16::try_from(n).unwrap_or(u16::MAX));
                match net.segment {
                    Segment::Vlan { physnet, vid } if physnet == pidx => vlans.push((vid, nidx)),
                    Segment::Flat { physnet } if physnet == pidx => native = Some(nidx),
                    _ => {}
                }
            }
            vlans.sort_unstable_by_key(|&(vid, _)| vid);
            let mode = PortMode::Trunk { vlans, native };
            let role = PortRole::Physnet(pidx);
            let port = self.add_infra(cx, p.port, p.ifname, role, mode, &p.context)?;
            out.push(Physnet {
                name: p.name.to_owned(),
                port,
                mtu: p.mtu,
            });
        }
        Ok(out)
    }

    /// Adds the underlay port, last: a trunk that carries no network at L2.
    fn add_underlay(&mut self, raw: &'a RawUnderlay, cx: &Cx<'_>) -> Result<PortIdx, ConfigError> {
        let mode = PortMode::Trunk {
            vlans: Vec::new(),
            native: None,
        };
        let ifname = raw.ifname.as_ref();
        self.add_infra(cx, &raw.port, ifname, PortRole::Underlay, mode, UNDERLAY)
    }
}

fn ports<'a>(
    raw: &'a [Spanned<RawPort>],
    nets: &Names<'_, NetIdx>,
    cx: &Cx<'_>,
) -> Result<Ports<'a>, ConfigError> {
    let mut ports = Ports {
        list: Vec::with_capacity(raw.len()),
        names: HashMap::new(),
        ifnames: HashMap::new(),
        owners: Vec::with_capacity(raw.len()),
    };
    for (i, rp) in raw.iter().enumerate() {
        let p = rp.get_ref();
        let name = p.name.get_ref().as_str();
        let context = entry_context("port", i, Some(name));
        let idx = ports.next_idx(cx, rp.span(), &context)?;
        check_name(cx, &p.name, &context, "name")?;
        if let Some(&(_, first)) = ports.names.get(name) {
            let kind = ErrorKind::DuplicateName {
                what: "port",
                first_line: cx.line_at(first),
            };
            return Err(cx.err(p.name.span(), &context, Some("name"), kind));
        }
        ports.names.insert(name, (idx, p.name.span().start));
        ports.owners.push(context.clone());
        ports.claim_ifname(cx, p.ifname.as_ref(), idx, &context)?;
        let mode = port_mode(cx, rp, nets, &context)?;
        let policy = port_policy(cx, p, &mode, &context)?;
        ports.list.push(Port {
            name: name.to_owned(),
            ifname: p.ifname.as_ref().map(|s| s.get_ref().clone()),
            mode,
            role: PortRole::Local,
            policy,
        });
    }
    Ok(ports)
}

/// Port security (`mac`, `ips`, `allowed_pairs`: access ports) and storm control.
fn port_policy(
    cx: &Cx<'_>,
    p: &RawPort,
    mode: &PortMode,
    context: &str,
) -> Result<PortPolicy, ConfigError> {
    let storm_control_pps = match &p.storm_control_pps {
        Some(v) => {
            let range = (0, MAX_RATE, " (flooded frames per second; 0 = no limit)");
            Some(int_in(cx, v, range, context, "storm_control_pps")?)
        }
        None => None,
    };
    let Some(mac) = &p.mac else {
        for (key, span) in [
            ("ips", p.ips.as_ref().map(Spanned::span)),
            ("allowed_pairs", p.allowed_pairs.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                return Err(cx.err(span, context, Some(key), ErrorKind::NeedsPortMac));
            }
        }
        return Ok(PortPolicy {
            security: None,
            storm_control_pps,
        });
    };
    if matches!(mode, PortMode::Trunk { .. }) {
        let kind = ErrorKind::NotAllowedForMode {
            mode: "a trunk",
            hint: ": port security (mac, ips, allowed_pairs) is for access (VM) ports",
        };
        return Err(cx.err(mac.span(), context, Some("mac"), kind));
    }
    let mac = unicast_mac(cx, mac, context, "mac")?;
    let mut allowed: Vec<AllowedPair> = Vec::new();
    let mut push = |pair: AllowedPair| {
        if !allowed.contains(&pair) {
            allowed.push(pair);
        }
    };
    for (j, v) in p.ips.iter().flat_map(|l| l.get_ref().iter()).enumerate() {
        let key = format!("ips.{j}");
        let ip = parse_ip(cx, v, context, &key)?;
        if !is_host_ip(ip) {
            return Err(cx.err(v.span(), context, Some(&key), ErrorKind::NotUnicastIp(ip)));
        }
        push(AllowedPair {
            mac,
            ip: ipnet::IpNet::from(ip),
        });
    }
    let pairs = p.allowed_pairs.iter().flat_map(|l| l.get_ref().iter());
    for (j, rp) in pairs.enumerate() {
        let pair = rp.get_ref();
        let pair_mac = match &pair.mac {
            Some(m) => unicast_mac(cx, m, context, &format!("allowed_pairs.{j}.mac"))?,
            None => mac,
        };
        let key = format!("allowed_pairs.{j}.ip");
        let text = pair.ip.get_ref();
        let ip = text
            .parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                let kind = ErrorKind::InvalidPrefix(text.clone());
                cx.err(pair.ip.span(), context, Some(&key), kind)
            })?;
        push(AllowedPair {
            mac: pair_mac,
            ip: ip.trunc(),
        });
    }
    Ok(PortPolicy {
        security: Some(PortSecurity { mac, allowed }),
        storm_control_pps,
    })
}

fn port_mode(
    cx: &Cx<'_>,
    rp: &Spanned<RawPort>,
    nets: &Names<'_, NetIdx>,
    context: &str,
) -> Result<PortMode, ConfigError> {
    let p = rp.get_ref();
    match p.mode.get_ref().as_str() {
        "access" => {
            const ACCESS: &str = "an access";
            const HINT: &str =
                ": an access port carries one network, untagged; use mode = \"trunk\" for VLANs";
            for (key, span) in [
                ("vlans", p.vlans.as_ref().map(Spanned::span)),
                ("native", p.native.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    let kind = ErrorKind::NotAllowedForMode {
                        mode: ACCESS,
                        hint: HINT,
                    };
                    return Err(cx.err(span, context, Some(key), kind));
                }
            }
            let Some(net) = &p.network else {
                return Err(cx.err(
                    rp.span(),
                    context,
                    Some("network"),
                    ErrorKind::AccessWithoutNetwork,
                ));
            };
            let network = lookup(cx, nets, net, context, "network", ErrorKind::NoSuchNetwork)?;
            Ok(PortMode::Access { network })
        }
        "trunk" => {
            if let Some(net) = &p.network {
                let kind = ErrorKind::NotAllowedForMode {
                    mode: "a trunk",
                    hint: ": use \"vlans\" for tagged networks and \"native\" for the untagged one",
                };
                return Err(cx.err(net.span(), context, Some("network"), kind));
            }
            let mut vlans: Vec<(VlanId, NetIdx)> = Vec::new();
            if let Some(raw_vlans) = &p.vlans {
                // In file order, so that the first error reported is the first in the file.
                let mut entries: Vec<_> = raw_vlans.get_ref().iter().collect();
                entries.sort_by_key(|(k, _)| k.span().start);
                let mut seen: HashMap<u16, usize> = HashMap::new();
                for (k, v) in entries {
                    let key = format!("vlans.{}", k.get_ref());
                    let vid = parse_vid(cx, k, context, &key)?;
                    if let Some(&first) = seen.get(&vid.get()) {
                        let kind = ErrorKind::DuplicateVid {
                            vid: vid.get(),
                            first_line: cx.line_at(first),
                        };
                        return Err(cx.err(k.span(), context, Some(&key), kind));
                    }
                    seen.insert(vid.get(), k.span().start);
                    let net = lookup(cx, nets, v, context, &key, ErrorKind::NoSuchNetwork)?;
                    vlans.push((vid, net));
                }
            }
            vlans.sort_unstable_by_key(|&(vid, _)| vid);
            let native = match &p.native {
                None => None,
                Some(n) => Some(lookup(
                    cx,
                    nets,
                    n,
                    context,
                    "native",
                    ErrorKind::NoSuchNetwork,
                )?),
            };
            Ok(PortMode::Trunk { vlans, native })
        }
        other => Err(cx.err(
            p.mode.span(),
            context,
            Some("mode"),
            ErrorKind::UnknownMode(other.to_owned()),
        )),
    }
}

/// A `vlans` key: decimal digits only, 1..=4094.
fn parse_vid(
    cx: &Cx<'_>,
    k: &Spanned<String>,
    context: &str,
    key: &str,
) -> Result<VlanId, ConfigError> {
    let s = k.get_ref();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(cx.err(
            k.span(),
            context,
            Some(key),
            ErrorKind::InvalidVid(s.clone()),
        ));
    }
    let value = s.parse::<i64>().unwrap_or(i64::MAX);
    let range = (VlanId::MIN.into(), VlanId::MAX.into(), "");
    let v = int_in(cx, &Spanned::new(k.span(), value), range, context, key)?;
    // In range, so both conversions succeed.
    let vid = u16::try_from(v).unwrap_or(0);
    VlanId::try_new(vid).map_err(|_| {
        cx.err(
            k.span(),
            context,
            Some(key),
            ErrorKind::InvalidVid(s.clone()),
        )
    })
}

/// A MAC in text: six pairs of hex digits separated by `:` or `-`.
fn parse_mac(s: &str) -> Option<MacAddr> {
    // `MacAddr::from_str` uses `u8::from_str_radix`, which also takes a sign ("+f").
    if !s
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'-')
    {
        return None;
    }
    s.parse().ok()
}

/// A MAC that must be unicast and non-zero.
fn unicast_mac(
    cx: &Cx<'_>,
    v: &Spanned<String>,
    context: &str,
    key: &str,
) -> Result<MacAddr, ConfigError> {
    let Some(mac) = parse_mac(v.get_ref()) else {
        let kind = ErrorKind::InvalidMac(v.get_ref().clone());
        return Err(cx.err(v.span(), context, Some(key), kind));
    };
    if !mac.is_unicast() {
        return Err(cx.err(v.span(), context, Some(key), ErrorKind::NotUnicast(mac)));
    }
    Ok(mac)
}

/// Neither unspecified, nor multicast, nor the IPv4 limited broadcast.
fn is_host_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast(),
        IpAddr::V6(a) => !a.is_unspecified() && !a.is_multicast(),
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// An address in text (no prefix, no zone).
fn parse_ip(
    cx: &Cx<'_>,
    v: &Spanned<String>,
    context: &str,
    key: &str,
) -> Result<IpAddr, ConfigError> {
    v.get_ref().parse().map_err(|_| {
        let kind = ErrorKind::InvalidIp(v.get_ref().clone());
        cx.err(v.span(), context, Some(key), kind)
    })
}

/// The address of another host on the underlay: a unicast address of
/// `local_ip`'s family, not `local_ip` itself.
fn remote_ip(
    cx: &Cx<'_>,
    v: &Spanned<String>,
    u: &Underlay,
    context: &str,
    key: &str,
) -> Result<IpAddr, ConfigError> {
    let ip = parse_ip(cx, v, context, key)?;
    let kind = if ip.is_ipv4() != u.local_ip.is_ipv4() {
        ErrorKind::WrongFamily {
            expected: family(u.local_ip),
        }
    } else if !is_host_ip(ip) {
        ErrorKind::NotUnicastIp(ip)
    } else if ip == u.local_ip {
        ErrorKind::IsLocalIp(ip)
    } else {
        return Ok(ip);
    };
    Err(cx.err(v.span(), context, Some(key), kind))
}

/// `IP` or `IP/len` (len in decimal, at most 32 for IPv4 and 128 for IPv6).
fn parse_prefixed(s: &str) -> Option<(IpAddr, Option<u8>)> {
    let Some((ip, len)) = s.split_once('/') else {
        return Some((s.parse().ok()?, None));
    };
    let ip: IpAddr = ip.parse().ok()?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, Some(len)))
}

/// Whether `a` and `b` (same family) share their first `len` bits.
fn same_prefix(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The entry context of `[underlay]` errors.
const UNDERLAY: &str = "[underlay]";

/// `[underlay]` with every key checked; its `port` is set once ports are built.
fn underlay(
    raw: Option<&Spanned<RawUnderlay>>,
    cx: &Cx<'_>,
) -> Result<Option<Underlay>, ConfigError> {
    const CX: &str = UNDERLAY;
    let Some(raw) = raw.map(Spanned::get_ref) else {
        return Ok(None);
    };
    check_name(cx, &raw.port, CX, "port")?;
    if let Some(ifname) = &raw.ifname {
        if !valid_ifname(ifname.get_ref()) {
            let kind = ErrorKind::InvalidIfname {
                name: ifname.get_ref().clone(),
            };
            return Err(cx.err(ifname.span(), CX, Some("ifname"), kind));
        }
    }
    let Some((local_ip, prefix_len)) = parse_prefixed(raw.local_ip.get_ref()) else {
        let kind = ErrorKind::InvalidLocalIp(raw.local_ip.get_ref().clone());
        return Err(cx.err(raw.local_ip.span(), CX, Some("local_ip"), kind));
    };
    if !is_host_ip(local_ip) {
        let kind = ErrorKind::NotUnicastIp(local_ip);
        return Err(cx.err(raw.local_ip.span(), CX, Some("local_ip"), kind));
    }
    let local_mac = match &raw.local_mac {
        Some(v) => Some(unicast_mac(cx, v, CX, "local_mac")?),
        None => None,
    };
    let mut u = Underlay {
        port: PortIdx(u16::MAX),
        local_ip,
        prefix_len,
        local_mac,
        gateway: None,
        mtu: DEFAULT_MTU,
        df: true,
        vxlan_port: DEFAULT_VXLAN_PORT,
        neighbors: Vec::new(),
    };
    if let Some(v) = &raw.gateway {
        let gw = remote_ip(cx, v, &u, CX, "gateway")?;
        let bad = match prefix_len {
            None => Some(ErrorKind::GatewayWithoutPrefix),
            Some(len) if !same_prefix(gw, local_ip, len) => Some(ErrorKind::GatewayOffLink(gw)),
            Some(_) => None,
        };
        if let Some(kind) = bad {
            return Err(cx.err(v.span(), CX, Some("gateway"), kind));
        }
        u.gateway = Some(gw);
    }
    if let Some(v) = &raw.mtu {
        let range = if local_ip.is_ipv4() {
            (MIN_UNDERLAY_MTU_V4, " (IPv4 underlay)")
        } else {
            (MIN_UNDERLAY_MTU_V6, " (IPv6 underlay)")
        };
        let range = (range.0.into(), MAX_UNDERLAY_MTU.into(), range.1);
        let mtu = int_in(cx, v, range, CX, "mtu")?;
        u.mtu = u16::try_from(mtu).unwrap_or(DEFAULT_MTU);
    }
    if let Some(v) = &raw.df {
        u.df = *v.get_ref();
    }
    if let Some(v) = &raw.vxlan_port {
        let port = int_in(cx, v, (1, u16::MAX.into(), ""), CX, "vxlan_port")?;
        u.vxlan_port = u16::try_from(port).unwrap_or(DEFAULT_VXLAN_PORT);
    }
    if let Some(list) = &raw.neighbors {
        let mut seen: HashMap<IpAddr, usize> = HashMap::new();
        for (j, rn) in list.get_ref().iter().enumerate() {
            let n = rn.get_ref();
            let key = format!("neighbors.{j}.ip");
            let ip = remote_ip(cx, &n.ip, &u, CX, &key)?;
            if let Some(&first) = seen.get(&ip) {
                let kind = ErrorKind::DuplicateAddress {
                    ip,
                    first_line: cx.line_at(first),
                };
                return Err(cx.err(n.ip.span(), CX, Some(&key), kind));
            }
            seen.insert(ip, n.ip.span().start);
            let mac = unicast_mac(cx, &n.mac, CX, &format!("neighbors.{j}.mac"))?;
            u.neighbors.push((ip, mac));
        }
    }
    Ok(Some(u))
}

/// A `[[physnet]]` checked, before its port is added.
struct PhysnetIn<'a> {
    name: &'a str,
    port: &'a Spanned<String>,
    ifname: Option<&'a Spanned<String>>,
    mtu: u16,
    context: String,
}

fn physnets<'a>(
    raw: &'a [Spanned<RawPhysnet>],
    cx: &Cx<'_>,
) -> Result<(Vec<PhysnetIn<'a>>, Names<'a, PhysnetIdx>), ConfigError> {
    let mut names: Names<'a, PhysnetIdx> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, rp) in raw.iter().enumerate() {
        let p = rp.get_ref();
        let name = p.name.get_ref().as_str();
        let context = entry_context("physnet", i, Some(name));
        // Each physnet has a port: the port limit bounds them.
        let Ok(idx) = u16::try_from(i).map(PhysnetIdx) else {
            let kind = ErrorKind::TooManyPorts { max: MAX_PORTS };
            return Err(cx.err(rp.span(), &context, None, kind));
        };
        check_name(cx, &p.name, &context, "name")?;
        if let Some(&(_, first)) = names.get(name) {
            let kind = ErrorKind::DuplicateName {
                what: "physnet",
                first_line: cx.line_at(first),
            };
            return Err(cx.err(p.name.span(), &context, Some("name"), kind));
        }
        names.insert(name, (idx, p.name.span().start));
        check_name(cx, &p.port, &context, "port")?;
        let mtu = match &p.mtu {
            None => DEFAULT_MTU,
            Some(v) => {
                let range = (MIN_PHYSNET_MTU.into(), u16::MAX.into(), "");
                let mtu = int_in(cx, v, range, &context, "mtu")?;
                u16::try_from(mtu).unwrap_or(DEFAULT_MTU)
            }
        };
        out.push(PhysnetIn {
            name,
            port: &p.port,
            ifname: p.ifname.as_ref(),
            mtu,
            context,
        });
    }
    Ok((out, names))
}

fn static_fdb(
    raw: &[Spanned<RawFdb>],
    nets: &Names<'_, NetIdx>,
    ports: &Ports<'_>,
    networks: &[Network],
    underlay: Option<&Underlay>,
    vteps: &mut Vteps,
    cx: &Cx<'_>,
) -> Result<Vec<StaticFdb>, ConfigError> {
    let mut seen: HashMap<(NetIdx, MacAddr), usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, rf) in raw.iter().enumerate() {
        let f = rf.get_ref();
        let context = entry_context("fdb", i, None);
        let network = lookup(
            cx,
            nets,
            &f.network,
            &context,
            "network",
            ErrorKind::NoSuchNetwork,
        )?;
        let net = networks.get(network.index());
        let mac = unicast_mac(cx, &f.mac, &context, "mac")?;
        let target = match (&f.port, &f.remote) {
            (Some(_), Some(r)) => {
                let kind = ErrorKind::FdbTarget(", not both");
                return Err(cx.err(r.span(), &context, Some("remote"), kind));
            }
            (None, None) => {
                return Err(cx.err(rf.span(), &context, None, ErrorKind::FdbTarget("")));
            }
            (Some(p), None) => {
                let port = lookup(cx, &ports.names, p, &context, "port", ErrorKind::NoSuchPort)?;
                let carries = ports
                    .list
                    .get(port.index())
                    .is_some_and(|p| p.mode.carries(network));
                if !carries {
                    let kind = ErrorKind::PortNotInNetwork {
                        network: net.map(|n| n.name.clone()).unwrap_or_default(),
                    };
                    return Err(cx.err(p.span(), &context, Some("port"), kind));
                }
                FdbTarget::Port(port)
            }
            (None, Some(r)) => {
                // A tunnel network implies an underlay (checked with the networks).
                let segment = net.map_or(Segment::Local, |n| n.segment);
                let Some(u) = underlay.filter(|_| segment.is_tunnel()) else {
                    let kind = ErrorKind::NotAllowedForSegment {
                        segment: segment.as_str(),
                        hint: ": `remote` is for vxlan and gre networks",
                    };
                    return Err(cx.err(r.span(), &context, Some("remote"), kind));
                };
                let ip = remote_ip(cx, r, u, &context, "remote")?;
                FdbTarget::Remote(vteps.intern(cx, ip, r.span(), &context, "remote")?)
            }
        };
        if let Some(&first) = seen.get(&(network, mac)) {
            let kind = ErrorKind::DuplicateStaticEntry {
                mac,
                first_line: cx.line_at(first),
            };
            return Err(cx.err(f.mac.span(), &context, Some("mac"), kind));
        }
        seen.insert((network, mac), f.mac.span().start);
        out.push(StaticFdb {
            network,
            mac,
            target,
        });
    }
    Ok(out)
}

fn arp(
    raw: &[Spanned<RawArp>],
    nets: &Names<'_, NetIdx>,
    cx: &Cx<'_>,
) -> Result<Vec<ArpEntry>, ConfigError> {
    let mut seen: HashMap<(NetIdx, Ipv4Addr), usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, ra) in raw.iter().enumerate() {
        let a = ra.get_ref();
        let context = entry_context("arp", i, None);
        let network = lookup(
            cx,
            nets,
            &a.network,
            &context,
            "network",
            ErrorKind::NoSuchNetwork,
        )?;
        let ip = match parse_ip(cx, &a.ip, &context, "ip")? {
            IpAddr::V4(ip) if is_host_ip(IpAddr::V4(ip)) => ip,
            IpAddr::V4(ip) => {
                let kind = ErrorKind::NotUnicastIp(IpAddr::V4(ip));
                return Err(cx.err(a.ip.span(), &context, Some("ip"), kind));
            }
            ip @ IpAddr::V6(_) => {
                return Err(cx.err(a.ip.span(), &context, Some("ip"), ErrorKind::ArpNotIpv4(ip)));
            }
        };
        let mac = unicast_mac(cx, &a.mac, &context, "mac")?;
        if let Some(&first) = seen.get(&(network, ip)) {
            let kind = ErrorKind::DuplicateArpEntry {
                ip,
                first_line: cx.line_at(first),
            };
            return Err(cx.err(a.ip.span(), &context, Some("ip"), kind));
        }
        seen.insert((network, ip), a.ip.span().start);
        out.push(ArpEntry { network, ip, mac });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u16) -> VlanId {
        VlanId::try_new(n).unwrap()
    }

    #[test]
    fn allocation_skips_explicit_and_is_lowest_first() {
        let got = allocate_local_vlans(&[None, Some(v(2)), None, Some(v(1)), None]);
        assert_eq!(got, vec![v(3), v(2), v(4), v(1), v(5)]);
    }

    #[test]
    fn allocation_fills_all_4094() {
        let mut e = vec![None; MAX_NETWORKS];
        e[0] = Some(v(4094));
        let got = allocate_local_vlans(&e);
        assert_eq!(got.len(), MAX_NETWORKS);
        assert_eq!(got[0], v(4094));
        assert_eq!(got[1], v(1));
        assert_eq!(got[MAX_NETWORKS - 1], v(4093));
    }

    #[test]
    fn ifnames() {
        assert!(valid_ifname("tap-vm1"));
        assert!(valid_ifname("abcdefghijklmno"));
        assert!(!valid_ifname("abcdefghijklmnop"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname(".."));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("eth0:1"));
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("fa:16:3e:00:00:01"),
            Some(MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 1]))
        );
        assert_eq!(
            parse_mac("FA-16-3E-00-00-01"),
            Some(MacAddr::new([0xfa, 0x16, 0x3e, 0, 0, 1]))
        );
        assert_eq!(parse_mac("+a:16:3e:00:00:01"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00"), None);
        assert_eq!(parse_mac("fa:16:3e:00:00:01:02"), None);
        assert_eq!(parse_mac("fa163e000001"), None);
    }

    #[test]
    fn prefixed_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_prefixed("10.0.0.1"), Some((ip("10.0.0.1"), None)));
        assert_eq!(
            parse_prefixed("10.0.0.1/0"),
            Some((ip("10.0.0.1"), Some(0)))
        );
        assert_eq!(
            parse_prefixed("10.0.0.1/032"),
            Some((ip("10.0.0.1"), Some(32)))
        );
        assert_eq!(parse_prefixed("::1/128"), Some((ip("::1"), Some(128))));
        for bad in [
            "10.0.0.1/33",
            "::1/129",
            "10.0.0.1/",
            "10.0.0.1/+1",
            "10.0.0.1/0008",
            "x/8",
            "10.0.0.1/8/8",
        ] {
            assert_eq!(parse_prefixed(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_prefix(ip("10.0.0.1"), ip("10.0.0.254"), 24));
        assert!(!same_prefix(ip("10.0.0.1"), ip("10.0.1.1"), 24));
        assert!(same_prefix(ip("10.0.0.1"), ip("200.0.0.1"), 0));
        assert!(!same_prefix(ip("10.0.0.1"), ip("10.0.0.2"), 32));
        assert!(same_prefix(ip("2001:db8::1"), ip("2001:db8::ffff"), 64));
        assert!(!same_prefix(ip("2001:db8::1"), ip("2001:db9::1"), 32));
        assert!(same_prefix(ip("2001:db8::1"), ip("::"), 0));
        assert!(!same_prefix(ip("10.0.0.1"), ip("::"), 0));
    }
}
