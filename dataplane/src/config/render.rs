//! [`Config`] back to TOML: what `vswitch check-config` prints. Every default is
//! written out and every local VLAN too, so that the output is the configuration
//! the switch runs, and parsing it gives [`Config::pinned`].

use std::fmt::{self, Write as _};

use super::{Config, FdbTarget, NetIdx, PortIdx, PortMode};

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
        for n in &c.networks {
            writeln!(f, "\n[[network]]")?;
            writeln!(f, "name = {}", Quoted(&n.name))?;
            writeln!(f, "segment = {}", Quoted(n.segment.as_str()))?;
            let note = if n.local_vlan_allocated {
                "  # allocated"
            } else {
                ""
            };
            writeln!(f, "local_vlan = {}{note}", n.local_vlan)?;
        }
        for p in &c.ports {
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
        }
        for e in &c.static_fdb {
            writeln!(f, "\n[[fdb]]")?;
            writeln!(f, "network = {}", self.net(e.network))?;
            writeln!(f, "mac = \"{}\"", e.mac)?;
            match e.target {
                FdbTarget::Port(p) => writeln!(f, "port = {}", self.port(p))?,
                FdbTarget::Remote(v) => {
                    let ip = c.vteps.get(v.index()).map(|ip| ip.to_string());
                    writeln!(f, "remote = \"{}\"", ip.unwrap_or_default())?
                }
            }
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
