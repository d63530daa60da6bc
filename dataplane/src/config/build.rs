//! Validation: the spanned TOML structs in, a [`Config`] of indexes and bounded
//! types out. Checks run in file order (switch, networks, ports, static entries;
//! within an entry, key by key), and the first failure is returned.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use encap::{MacAddr, VlanId};
use serde::Deserialize;
use toml::de::DeTable;
use toml::Spanned;

use super::error::{ConfigError, ErrorKind};
use super::locate::{entry_context, line_of, toml_error};
use super::raw::{RawConfig, RawFdb, RawNetwork, RawPort, RawSwitch};
use super::{
    Config, FdbTarget, NetIdx, Network, Port, PortIdx, PortMode, PortRole, Segment, StaticFdb,
    SwitchParams, MAX_MAC_AGING_SECS, MAX_MAC_TABLE_SIZE, MAX_NETWORKS, MAX_PORTS, MAX_WORKERS,
    MIN_MAC_AGING_SECS,
};

/// Parses and validates `text`, naming it `file` in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| toml_error(file, text, &e, true))?;
    let cx = Cx { file, text };
    check_shape(doc.get_ref(), &cx)?;
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| toml_error(file, text, &e, false))?;
    let switch = switch_params(raw.switch.as_ref(), &cx)?;
    let (networks, net_names) = networks(&raw.network, &cx)?;
    let (ports, port_names) = ports(&raw.port, &net_names, &cx)?;
    let static_fdb = static_fdb(&raw.fdb, &net_names, &port_names, &ports, &networks, &cx)?;
    Ok(Config {
        switch,
        networks,
        ports,
        static_fdb,
        underlay: None,
        physnets: Vec::new(),
        vteps: Vec::new(),
        arp: Vec::new(),
        source: None,
    })
}

/// Checks that `[switch]` is a table and `[[network]]`, `[[port]]`, `[[fdb]]`
/// arrays of tables. Serde would otherwise accept `[[switch]]` as a struct
/// written as a sequence, or report a `[network]` table as "expected a sequence".
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
            "network" | "port" | "fdb" => {
                let Some(entries) = v.get_ref().as_array() else {
                    let expected = match name {
                        "network" => "an array of tables: write [[network]] for each network",
                        "port" => "an array of tables: write [[port]] for each port",
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
    Ok(p)
}

/// Names to indexes, with the byte offset of the definition for duplicate messages.
type Names<'a, I> = HashMap<&'a str, (I, usize)>;

fn segment(cx: &Cx<'_>, v: &Spanned<String>, context: &str) -> Result<Segment, ConfigError> {
    let kind = match v.get_ref().as_str() {
        "local" => return Ok(Segment::Local),
        s @ ("flat" | "vlan" | "vxlan" | "gre") => ErrorKind::UnsupportedSegment(s.to_owned()),
        s => ErrorKind::UnknownSegment(s.to_owned()),
    };
    Err(cx.err(v.span(), context, Some("segment"), kind))
}

fn networks<'a>(
    raw: &'a [Spanned<RawNetwork>],
    cx: &Cx<'_>,
) -> Result<(Vec<Network>, Names<'a, NetIdx>), ConfigError> {
    let mut names: Names<'a, NetIdx> = HashMap::new();
    // Explicit VLANs, by VID: (network name, byte offset).
    let mut taken: HashMap<u16, (&str, usize)> = HashMap::new();
    let mut explicit: Vec<Option<VlanId>> = Vec::with_capacity(raw.len());
    let mut out_partial: Vec<(String, Segment)> = Vec::with_capacity(raw.len());
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
        let seg = segment(cx, &n.segment, &context)?;
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
        explicit.push(vlan);
        out_partial.push((name.to_owned(), seg));
    }
    let vlans = allocate_local_vlans(&explicit);
    let networks = out_partial
        .into_iter()
        .zip(explicit.iter().zip(vlans))
        .map(|((name, segment), (explicit, local_vlan))| Network {
            name,
            segment,
            local_vlan,
            local_vlan_allocated: explicit.is_none(),
            remote_vteps: Vec::new(),
        })
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

fn ports<'a>(
    raw: &'a [Spanned<RawPort>],
    nets: &Names<'_, NetIdx>,
    cx: &Cx<'_>,
) -> Result<(Vec<Port>, Names<'a, PortIdx>), ConfigError> {
    let mut names: Names<'a, PortIdx> = HashMap::new();
    let mut ports = Vec::with_capacity(raw.len());
    for (i, rp) in raw.iter().enumerate() {
        let p = rp.get_ref();
        let name = p.name.get_ref().as_str();
        let context = entry_context("port", i, Some(name));
        if i >= MAX_PORTS {
            let kind = ErrorKind::TooManyPorts { max: MAX_PORTS };
            return Err(cx.err(rp.span(), &context, None, kind));
        }
        check_name(cx, &p.name, &context, "name")?;
        if let Some(&(_, first)) = names.get(name) {
            let kind = ErrorKind::DuplicateName {
                what: "port",
                first_line: cx.line_at(first),
            };
            return Err(cx.err(p.name.span(), &context, Some("name"), kind));
        }
        let idx = PortIdx(u16::try_from(i).unwrap_or(u16::MAX));
        names.insert(name, (idx, p.name.span().start));
        if let Some(ifname) = &p.ifname {
            if !valid_ifname(ifname.get_ref()) {
                let kind = ErrorKind::InvalidIfname {
                    name: ifname.get_ref().clone(),
                };
                return Err(cx.err(ifname.span(), &context, Some("ifname"), kind));
            }
        }
        let mode = port_mode(cx, rp, nets, &context)?;
        ports.push(Port {
            name: name.to_owned(),
            ifname: p.ifname.as_ref().map(|s| s.get_ref().clone()),
            mode,
            role: PortRole::Local,
        });
    }
    Ok((ports, names))
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

fn static_fdb(
    raw: &[Spanned<RawFdb>],
    nets: &Names<'_, NetIdx>,
    port_names: &Names<'_, PortIdx>,
    ports: &[Port],
    networks: &[Network],
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
        let Some(mac) = parse_mac(f.mac.get_ref()) else {
            let kind = ErrorKind::InvalidMac(f.mac.get_ref().clone());
            return Err(cx.err(f.mac.span(), &context, Some("mac"), kind));
        };
        if !mac.is_unicast() {
            let kind = ErrorKind::NotUnicast(mac);
            return Err(cx.err(f.mac.span(), &context, Some("mac"), kind));
        }
        let port = lookup(
            cx,
            port_names,
            &f.port,
            &context,
            "port",
            ErrorKind::NoSuchPort,
        )?;
        let carries = ports
            .get(port.index())
            .is_some_and(|p| p.mode.carries(network));
        if !carries {
            let kind = ErrorKind::PortNotInNetwork {
                network: networks
                    .get(network.index())
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
            };
            return Err(cx.err(f.port.span(), &context, Some("port"), kind));
        }
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
            target: FdbTarget::Port(port),
        });
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
}
