//! [`Config`] back to TOML: what `vswitch check-config` prints. Every default is
//! written out and every local VLAN too, so that the output is the configuration
//! the switch runs, and parsing it gives [`Config::pinned`]. The ports of physnets
//! and of the underlay are written in their sections, not as `[[port]]`s, and each
//! network's usable MTU is a comment.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::{Config, FdbTarget, NetIdx, PhysnetIdx, PortIdx, PortMode, PortRole, Segment, VtepIdx};

/// Formats a [`Config`] as TOML.
pub(super) struct Rendered<'a>(pub &'a Config);

/// A TOML basic string: `"` and `\` escaped, control characters as `\uXXXX`.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() => write!(f, "\\u{:04X}", u32::from(c))?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

impl Rendered<'_> {
    fn net(&self, idx: NetIdx) -> Quoted<'_> {
        // An index out of range renders as "", which does not parse back: only
        // hand-built configs can have one.
        Quoted(
            self.0
                .networks
                .get(idx.index())
                .map_or("", |n| n.name.as_str()),
        )
    }

    fn port(&self, idx: PortIdx) -> Quoted<'_> {
        Quoted(
            self.0
                .ports
                .get(idx.index())
                .map_or("", |p| p.name.as_str()),
        )
    }

    fn physnet(&self, idx: PhysnetIdx) -> Quoted<'_> {
        Quoted(
            self.0
                .physnets
                .get(idx.index())
                .map_or("", |p| p.name.as_str()),
        )
    }

    fn vtep(&self, idx: VtepIdx) -> String {
        self.0
            .vteps
            .get(idx.index())
            .map(IpAddr::to_string)
            .unwrap_or_default()
    }

    /// `port = ...` and, when the port has one, `ifname = ...`.
    fn port_keys(&self, f: &mut fmt::Formatter<'_>, idx: PortIdx) -> fmt::Result {
        writeln!(f, "port = {}", self.port(idx))?;
        if let Some(ifname) = self
            .0
            .ports
            .get(idx.index())
            .and_then(|p| p.ifname.as_ref())
        {
            writeln!(f, "ifname = {}", Quoted(ifname))?;
        }
        Ok(())
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        match &c.source {
            Some(p) => writeln!(f, "# vswitch configuration resolved from {}", p.display())?,
            None => writeln!(f, "# vswitch configuration, resolved")?,
        }
        let s = &c.switch;
        writeln!(f, "\n[switch]")?;
        writeln!(f, "workers = {}", s.workers)?;
        writeln!(f, "mac_aging_secs = {}", s.mac_aging.as_secs())?;
        writeln!(f, "mac_table_size = {}", s.mac_table_size)?;
        writeln!(f, "mac_limit_per_port = {}", s.mac_limit_per_port)?;
        let socket = s.control_socket.to_string_lossy();
        writeln!(f, "control_socket = {}", Quoted(&socket))?;
        writeln!(f, "forward_only = {}", s.forward_only)?;
        writeln!(f, "napi_busy_poll = {}", s.napi_busy_poll)?;
        writeln!(f, "napi_busy_poll_usecs = {}", s.napi_busy_poll_usecs)?;
        writeln!(f, "mac_learn_rate_per_port = {}", s.mac_learn_rate_per_port)?;
        writeln!(f, "storm_control_pps = {}", s.storm_control_pps)?;
        writeln!(f, "fastpath = {}", s.fastpath)?;
        if let Some(listen) = c.metrics.listen {
            writeln!(f, "\n[metrics]")?;
            writeln!(f, "listen = \"{listen}\"")?;
        }
        if let Some(u) = &c.underlay {
            writeln!(f, "\n[underlay]")?;
            self.port_keys(f, u.port)?;
            match u.prefix_len {
                Some(len) => writeln!(f, "local_ip = \"{}/{len}\"", u.local_ip)?,
                None => writeln!(f, "local_ip = \"{}\"", u.local_ip)?,
            }
            if let Some(mac) = u.local_mac {
                writeln!(f, "local_mac = \"{mac}\"")?;
            }
            if let Some(gw) = u.gateway {
                writeln!(f, "gateway = \"{gw}\"")?;
            }
            writeln!(f, "mtu = {}", u.mtu)?;
            writeln!(f, "df = {}", u.df)?;
            writeln!(f, "vxlan_port = {}", u.vxlan_port)?;
            f.write_str("neighbors = [")?;
            for (i, (ip, mac)) in u.neighbors.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                write!(f, "{sep}\n  {{ ip = \"{ip}\", mac = \"{mac}\" }}")?;
            }
            let end = if u.neighbors.is_empty() { "" } else { ",\n" };
            writeln!(f, "{end}]")?;
        }
        for p in &c.physnets {
            writeln!(f, "\n[[physnet]]")?;
            writeln!(f, "name = {}", Quoted(&p.name))?;
            self.port_keys(f, p.port)?;
            writeln!(f, "mtu = {}", p.mtu)?;
        }
        for (i, n) in c.networks.iter().enumerate() {
            writeln!(f, "\n[[network]]")?;
            writeln!(f, "name = {}", Quoted(&n.name))?;
            writeln!(f, "segment = {}", Quoted(n.segment.as_str()))?;
            match n.segment {
                Segment::Local => {}
                Segment::Flat { physnet } => writeln!(f, "physnet = {}", self.physnet(physnet))?,
                Segment::Vlan { physnet, vid } => {
                    writeln!(f, "id = {vid}")?;
                    writeln!(f, "physnet = {}", self.physnet(physnet))?;
                }
                Segment::Vxlan { vni } => writeln!(f, "id = {vni}")?,
                Segment::Gre { key } => writeln!(f, "id = {key}")?,
            }
            let note = if n.local_vlan_allocated {
                "  # allocated"
            } else {
                ""
            };
            writeln!(f, "local_vlan = {}{note}", n.local_vlan)?;
            if n.mac_limit != 0 {
                writeln!(f, "mac_limit = {}", n.mac_limit)?;
            }
            if n.segment.is_tunnel() {
                f.write_str("remote_vteps = [")?;
                for (j, v) in n.remote_vteps.iter().enumerate() {
                    let sep = if j == 0 { "" } else { ", " };
                    write!(f, "{sep}\"{}\"", self.vtep(*v))?;
                }
                f.write_str("]\n")?;
            }
            let idx = NetIdx(u16::try_from(i).unwrap_or(u16::MAX));
            match c.network_mtu(idx) {
                Some(mtu) => writeln!(f, "# mtu {mtu}")?,
                None if n.segment == Segment::Local => writeln!(f, "# mtu: no limit (local)")?,
                None => writeln!(f, "# mtu: unknown (no underlay or physnet)")?,
            }
        }
        for p in c.ports.iter().filter(|p| p.role == PortRole::Local) {
            writeln!(f, "\n[[port]]")?;
            writeln!(f, "name = {}", Quoted(&p.name))?;
            if let Some(ifname) = &p.ifname {
                writeln!(f, "ifname = {}", Quoted(ifname))?;
            }
            match &p.mode {
                PortMode::Access { network } => {
                    writeln!(f, "mode = \"access\"")?;
                    writeln!(f, "network = {}", self.net(*network))?;
                }
                PortMode::Trunk { vlans, native } => {
                    writeln!(f, "mode = \"trunk\"")?;
                    if !vlans.is_empty() {
                        f.write_str("vlans = {")?;
                        for (i, (vid, net)) in vlans.iter().enumerate() {
                            let sep = if i == 0 { " " } else { ", " };
                            write!(f, "{sep}{vid} = {}", self.net(*net))?;
                        }
                        f.write_str(" }\n")?;
                    }
                    if let Some(n) = native {
                        writeln!(f, "native = {}", self.net(*n))?;
                    }
                }
            }
            if let Some(pps) = p.policy.storm_control_pps {
                writeln!(f, "storm_control_pps = {pps}")?;
            }
            if let Some(sec) = &p.policy.security {
                // `ips` resolved into pairs with the port's MAC.
                writeln!(f, "mac = \"{}\"", sec.mac)?;
                f.write_str("allowed_pairs = [")?;
                for (i, a) in sec.allowed.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    write!(f, "{sep}\n  {{ mac = \"{}\", ip = \"{}\" }}", a.mac, a.ip)?;
                }
                let end = if sec.allowed.is_empty() { "" } else { ",\n" };
                writeln!(f, "{end}]")?;
            }
        }
        for e in &c.static_fdb {
            writeln!(f, "\n[[fdb]]")?;
            writeln!(f, "network = {}", self.net(e.network))?;
            writeln!(f, "mac = \"{}\"", e.mac)?;
            match e.target {
                FdbTarget::Port(p) => writeln!(f, "port = {}", self.port(p))?,
                FdbTarget::Remote(v) => writeln!(f, "remote = \"{}\"", self.vtep(v))?,
            }
        }
        for a in &c.arp {
            writeln!(f, "\n[[arp]]")?;
            writeln!(f, "network = {}", self.net(a.network))?;
            writeln!(f, "ip = \"{}\"", a.ip)?;
            writeln!(f, "mac = \"{}\"", a.mac)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_toml() {
        for s in [
            "net-a",
            "a\"b",
            "back\\slash",
            "tab\there",
            "nl\nx\u{7f}",
            "é 中",
            "",
        ] {
            let q = Quoted(s).to_string();
            assert!(!q.contains('\n'), "{q}");
            let doc = format!("k = {q}\n");
            let v: toml::Table = toml::from_str(&doc).unwrap();
            assert_eq!(v.get("k").and_then(|v| v.as_str()), Some(s), "{doc}");
        }
        assert_eq!(Quoted("a\u{1}\"\\").to_string(), "\"a\\u0001\\\"\\\\\"");
    }
}
