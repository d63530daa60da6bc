//! Configuration changes asked for over the control socket.
//!
//! A change is made on the configuration *as a file*: the running [`Config`] is
//! rendered ([`Config::render`], every local VLAN pinned so that no network moves),
//! the entry is added to or removed from the TOML document, and the result goes
//! through [`Config::from_str`], the validator of the file. So `ctl port add` obeys
//! exactly the rules of a `[[port]]` and fails with the same message; a refused
//! change leaves the switch as it was. Errors name the command instead of a file
//! and carry no line (the text they would point into is not the user's).
//!
//! Changes are not written back to the configuration file, as with `ovs-appctl`.

use toml::{Table, Value};

use super::proto::{NetworkSpec, PortSpec};
use super::ControlError;
use crate::config::{Config, PortRole};

/// Renders `cfg`, lets `f` edit the document, validates the result as a file named
/// `what`.
fn edit(
    cfg: &Config,
    what: &str,
    f: impl FnOnce(&mut Table) -> Result<(), ControlError>,
) -> Result<Config, ControlError> {
    let mut doc: Table = toml::from_str(&cfg.render())
        .map_err(|e| ControlError::Failed(format!("re-reading the configuration: {e}")))?;
    f(&mut doc)?;
    let text = toml::to_string(&doc)
        .map_err(|e| ControlError::Failed(format!("writing the configuration: {e}")))?;
    let mut new = Config::from_str(&text, what).map_err(|mut e| {
        e.line = None;
        ControlError::Invalid(e)
    })?;
    new.source.clone_from(&cfg.source);
    Ok(new)
}

/// Lets `f` change the array of tables `key` (`port`, `network`, `fdb`, `arp`),
/// created if absent and left out if emptied.
fn with_entries<R>(doc: &mut Table, key: &str, f: impl FnOnce(&mut Vec<Value>) -> R) -> R {
    let mut list = match doc.remove(key) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let r = f(&mut list);
    if !list.is_empty() {
        doc.insert(key.to_owned(), Value::Array(list));
    }
    r
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn to_table<T: serde::Serialize>(v: &T) -> Result<Value, ControlError> {
    Table::try_from(v)
        .map(Value::Table)
        .map_err(|e| ControlError::Failed(format!("encoding the entry: {e}")))
}

/// A MAC as the rendered configuration writes it (lowercase, `:`), so that entries
/// can be compared; anything else is left for the validator to refuse.
fn canonical_mac(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', ":")
}

/// Whether the `[[fdb]]` entry `f` is for `mac` (canonical) in `network`.
fn same_entry(f: &Value, network: &str, mac: &str) -> bool {
    str_of(f, "network") == Some(network)
        && str_of(f, "mac").map(canonical_mac).as_deref() == Some(mac)
}

fn no_network(cfg: &Config, name: &str) -> Result<(), ControlError> {
    match cfg.network_by_name(name) {
        Some(_) => Ok(()),
        None => Err(ControlError::NotFound(format!(
            "network {name:?} does not exist"
        ))),
    }
}

/// `port add`.
pub fn port_add(cfg: &Config, spec: &PortSpec) -> Result<Config, ControlError> {
    let entry = to_table(spec)?;
    edit(cfg, "port add", |doc| {
        with_entries(doc, "port", |l| l.push(entry));
        Ok(())
    })
}

/// `port del`: the port and the static entries on it. Physnet and underlay ports
/// belong to their sections and are refused.
pub fn port_del(cfg: &Config, name: &str) -> Result<Config, ControlError> {
    match cfg.port_by_name(name).and_then(|p| cfg.port(p)) {
        None => {
            return Err(ControlError::NotFound(format!(
                "port {name:?} does not exist"
            )))
        }
        Some(p) if p.role != PortRole::Local => {
            let what = match p.role {
                PortRole::Underlay => "the underlay's port",
                _ => "a physnet's port",
            };
            return Err(ControlError::BadRequest(format!(
                "port {name:?} is {what}: only [[port]] entries can be removed"
            )));
        }
        Some(_) => {}
    }
    edit(cfg, "port del", |doc| {
        with_entries(doc, "port", |l| {
            l.retain(|p| str_of(p, "name") != Some(name))
        });
        with_entries(doc, "fdb", |l| {
            l.retain(|f| str_of(f, "port") != Some(name))
        });
        Ok(())
    })
}

/// `network add`.
pub fn network_add(cfg: &Config, spec: &NetworkSpec) -> Result<Config, ControlError> {
    let entry = to_table(spec)?;
    edit(cfg, "network add", |doc| {
        with_entries(doc, "network", |l| l.push(entry));
        Ok(())
    })
}

/// `network del`: the network with its static and ARP responder entries. Refused
/// (by the validator) while a port carries it.
pub fn network_del(cfg: &Config, name: &str) -> Result<Config, ControlError> {
    no_network(cfg, name)?;
    edit(cfg, "network del", |doc| {
        with_entries(doc, "network", |l| {
            l.retain(|n| str_of(n, "name") != Some(name))
        });
        with_entries(doc, "fdb", |l| {
            l.retain(|f| str_of(f, "network") != Some(name))
        });
        with_entries(doc, "arp", |l| {
            l.retain(|a| str_of(a, "network") != Some(name))
        });
        Ok(())
    })
}

/// `fdb add`: a `[[fdb]]` entry, replacing the network's entry for the same MAC.
pub fn fdb_add(
    cfg: &Config,
    network: &str,
    mac: &str,
    port: Option<&str>,
    remote: Option<&str>,
) -> Result<Config, ControlError> {
    no_network(cfg, network)?;
    let mac = canonical_mac(mac);
    let mut t = Table::new();
    t.insert("network".into(), Value::String(network.into()));
    t.insert("mac".into(), Value::String(mac.clone()));
    if let Some(p) = port {
        t.insert("port".into(), Value::String(p.into()));
    }
    if let Some(r) = remote {
        t.insert("remote".into(), Value::String(r.into()));
    }
    edit(cfg, "fdb add", |doc| {
        with_entries(doc, "fdb", |l| {
            l.retain(|f| !same_entry(f, network, &mac));
            l.push(Value::Table(t));
        });
        Ok(())
    })
}

/// `fdb del`: removes a static entry.
pub fn fdb_del(cfg: &Config, network: &str, mac: &str) -> Result<Config, ControlError> {
    no_network(cfg, network)?;
    let mac = canonical_mac(mac);
    edit(cfg, "fdb del", |doc| {
        let removed = with_entries(doc, "fdb", |l| {
            let before = l.len();
            l.retain(|f| !same_entry(f, network, &mac));
            l.len() != before
        });
        if !removed {
            return Err(ControlError::NotFound(format!(
                "network {network:?} has no static entry for {mac} (learned entries are removed by `fdb flush`)"
            )));
        }
        Ok(())
    })
}
