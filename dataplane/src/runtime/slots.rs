//! Stable port numbers for a running switch.
//!
//! # Why
//!
//! The FDB, the per-port counters and the workers' port arrays are all keyed by port
//! number ([`PortId`]). Offline, numbers are positions in the configuration (ports,
//! then one tunnel port per remote VTEP: [`PortLayout::dense`]); but a position moves
//! when a port is added before it (a `[[port]]` is added before the physnet and
//! underlay ports) or removed, and every tunnel port moves with the port count. A
//! running switch would then have to renumber every learned entry of every worker
//! while they run. Instead a port keeps its number for as long as it exists:
//!
//! - a configuration port is known by its name and netdev, a tunnel port by its remote
//!   VTEP's address; one that stays keeps its number, whatever moves around it;
//! - a new one gets a number no one has: a number never handed out, or one given back
//!   long enough ago that no learned entry can still name it (its entries were flushed
//!   when it went, and any a worker learned in flight has aged out: [`Slots::plan`]
//!   takes the aging time), lowest first, so the space stays small;
//! - a removed one's number is given back, and the caller flushes its entries.
//!
//! At start the numbering is the dense one, so that a switch that never changes its
//! ports numbers them as offline tools do.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use flowtable::PortId;

use super::RuntimeError;
use crate::config::{Config, PortIdx};
use crate::pipeline::PortLayout;

/// The highest number handed out: `u16::MAX` stays free as a sentinel.
const MAX_ID: u16 = u16::MAX - 1;

/// Who has which number.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    /// Configuration ports by (name, netdev).
    ports: HashMap<(String, Option<String>), PortId>,
    /// Tunnel ports by remote address.
    vteps: HashMap<IpAddr, PortId>,
    /// Numbers below this have been handed out.
    fresh: u32,
    /// Numbers given back, with when (switch clock, ns).
    retired: BTreeMap<u16, u64>,
}

/// What a configuration change does to the numbers.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The numbers after the change.
    pub slots: Slots,
    /// The new configuration's layout.
    pub layout: PortLayout,
    /// Configuration ports of the new configuration that are new, with their numbers.
    pub added: Vec<(PortIdx, PortId)>,
    /// Numbers of configuration ports that are gone.
    pub removed_ports: Vec<PortId>,
    /// Numbers of tunnel ports that are gone.
    pub removed_vteps: Vec<PortId>,
}

fn key(p: &crate::config::Port) -> (String, Option<String>) {
    (p.name.clone(), p.ifname.clone())
}

impl Slots {
    /// The dense numbering of `cfg` (as at start).
    pub(crate) fn new(cfg: &Config) -> (Slots, PortLayout) {
        let layout = PortLayout::dense(cfg);
        let slots = Slots {
            ports: cfg
                .ports
                .iter()
                .zip(&layout.ports)
                .map(|(p, &id)| (key(p), id))
                .collect(),
            vteps: cfg
                .vteps
                .iter()
                .copied()
                .zip(layout.vteps.iter().copied())
                .collect(),
            fresh: layout.slots() as u32,
            retired: BTreeMap::new(),
        };
        (slots, layout)
    }

    /// The numbering of `new` after this one: kept ports and VTEPs keep theirs, new
    /// ones get free numbers (a number given back at least `quarantine_ns` before
    /// `now`, else a fresh one). Pure: `self` is unchanged, so that a refused change
    /// leaves everything as it was.
    pub(crate) fn plan(
        &self,
        new: &Config,
        now: u64,
        quarantine_ns: u64,
    ) -> Result<Plan, RuntimeError> {
        let mut next = Slots {
            ports: HashMap::with_capacity(new.ports.len()),
            vteps: HashMap::with_capacity(new.vteps.len()),
            fresh: self.fresh,
            retired: self.retired.clone(),
        };
        let new_ports: HashMap<(String, Option<String>), usize> = new
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| (key(p), i))
            .collect();
        let mut removed_ports: Vec<PortId> = self
            .ports
            .iter()
            .filter(|(k, _)| !new_ports.contains_key(*k))
            .map(|(_, &id)| id)
            .collect();
        removed_ports.sort_unstable();
        let mut removed_vteps: Vec<PortId> = self
            .vteps
            .iter()
            .filter(|(ip, _)| !new.vteps.contains(ip))
            .map(|(_, &id)| id)
            .collect();
        removed_vteps.sort_unstable();
        let mut layout = PortLayout {
            ports: Vec::with_capacity(new.ports.len()),
            vteps: Vec::with_capacity(new.vteps.len()),
        };
        let mut added = Vec::new();
        for (i, p) in new.ports.iter().enumerate() {
            let k = key(p);
            let id = match self.ports.get(&k) {
                Some(&id) => id,
                None => {
                    let id = next.take(now, quarantine_ns)?;
                    added.push((PortIdx(i as u16), id));
                    id
                }
            };
            next.ports.insert(k, id);
            layout.ports.push(id);
        }
        for ip in &new.vteps {
            let id = match self.vteps.get(ip) {
                Some(&id) => id,
                None => next.take(now, quarantine_ns)?,
            };
            next.vteps.insert(*ip, id);
            layout.vteps.push(id);
        }
        // Given back last: a number is never handed out again within the change that
        // frees it (its entries are flushed as part of the change).
        for id in removed_ports.iter().chain(&removed_vteps) {
            next.retired.insert(id.0, now);
        }
        Ok(Plan {
            slots: next,
            layout,
            added,
            removed_ports,
            removed_vteps,
        })
    }

    /// A free number: the lowest one given back long enough ago, else a fresh one.
    fn take(&mut self, now: u64, quarantine_ns: u64) -> Result<PortId, RuntimeError> {
        let reusable = self
            .retired
            .iter()
            .find(|(_, &at)| now.saturating_sub(at) >= quarantine_ns)
            .map(|(&id, _)| id);
        if let Some(id) = reusable {
            self.retired.remove(&id);
            return Ok(PortId(id));
        }
        match u16::try_from(self.fresh) {
            Ok(id) if id <= MAX_ID => {
                self.fresh += 1;
                Ok(PortId(id))
            }
            _ => Err(RuntimeError::Invalid(format!(
                "no free port number: {} are in use or were given back less than the MAC \
                 aging time ago",
                MAX_ID as u32 + 1
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[underlay]
port = "uplink"
ifname = "up0"
local_ip = "198.18.0.1/24"

[[physnet]]
name = "phys"
port = "phys0"
ifname = "eth9"

[[network]]
name = "a"
segment = "vxlan"
id = 10
remote_vteps = ["198.18.0.2", "198.18.0.3"]

[[network]]
name = "p"
segment = "flat"
physnet = "phys"

[[port]]
name = "vm1"
ifname = "tap1"
mode = "access"
network = "a"
"#;

    fn cfg(extra: &str) -> Config {
        Config::from_str(&format!("{BASE}{extra}"), "t.toml").unwrap()
    }

    const VM2: &str =
        "\n[[port]]\nname = \"vm2\"\nifname = \"tap2\"\nmode = \"access\"\nnetwork = \"a\"\n";

    #[test]
    fn adding_a_port_renumbers_nothing() {
        let old = cfg("");
        let (slots, dense) = Slots::new(&old);
        // vm1 0, phys0 1, uplink 2; VTEPs 3 and 4.
        assert_eq!(dense.ports, vec![PortId(0), PortId(1), PortId(2)]);
        assert_eq!(dense.vteps, vec![PortId(3), PortId(4)]);
        let new = cfg(VM2);
        // vm2 is a [[port]]: in the configuration it comes before phys0 and uplink.
        assert_eq!(new.ports[1].name, "vm2");
        let plan = slots.plan(&new, 0, 0).unwrap();
        assert_eq!(
            plan.layout.ports,
            vec![PortId(0), PortId(5), PortId(1), PortId(2)]
        );
        assert_eq!(plan.layout.vteps, dense.vteps);
        assert_eq!(plan.added, vec![(PortIdx(1), PortId(5))]);
        assert!(plan.removed_ports.is_empty() && plan.removed_vteps.is_empty());

        // Removing vm1 moves everything after it in the file, but not in numbers.
        let text = format!("{BASE}{VM2}").replace(
            "[[port]]\nname = \"vm1\"\nifname = \"tap1\"\nmode = \"access\"\nnetwork = \"a\"\n",
            "",
        );
        let newer = Config::from_str(&text, "t.toml").unwrap();
        let plan2 = plan.slots.plan(&newer, 10, 1000).unwrap();
        assert_eq!(plan2.layout.ports, vec![PortId(5), PortId(1), PortId(2)]);
        assert_eq!(plan2.removed_ports, vec![PortId(0)]);
        assert!(plan2.added.is_empty());
        // vm1 back, within the quarantine: a fresh number; after it: 0 again.
        let plan3 = plan2.slots.plan(&new, 20, 1000).unwrap();
        assert_eq!(plan3.added, vec![(PortIdx(0), PortId(6))]);
        let plan4 = plan2.slots.plan(&new, 2000, 1000).unwrap();
        assert_eq!(plan4.added, vec![(PortIdx(0), PortId(0))]);
    }

    #[test]
    fn vteps_keep_their_numbers_when_others_go() {
        let old = cfg("");
        let (slots, _) = Slots::new(&old);
        // 198.18.0.2 leaves the flood list: 198.18.0.3 moves to VTEP index 0 but keeps
        // its tunnel port number.
        let new = Config::from_str(&BASE.replace("\"198.18.0.2\", ", ""), "t.toml").unwrap();
        assert_eq!(new.vteps.len(), 1);
        let plan = slots.plan(&new, 0, 0).unwrap();
        assert_eq!(plan.layout.vteps, vec![PortId(4)]);
        assert_eq!(plan.removed_vteps, vec![PortId(3)]);
        assert_eq!(plan.layout.slots(), 5);
    }

    #[test]
    fn a_netdev_change_is_a_new_port() {
        let old = cfg("");
        let (slots, _) = Slots::new(&old);
        let new = Config::from_str(&BASE.replace("tap1", "tap9"), "t.toml").unwrap();
        let plan = slots.plan(&new, 0, 0).unwrap();
        assert_eq!(plan.removed_ports, vec![PortId(0)]);
        assert_eq!(plan.added, vec![(PortIdx(0), PortId(5))]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod prop {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// A configuration with the `[[port]]`s `ports` (names `p0..p7`, in this order) and a
    /// vxlan network per VTEP in `vteps` (addresses `198.18.0.10..17`), plus a physnet
    /// port and the underlay's port after them.
    fn config(ports: &[u8], vteps: &[u8]) -> Config {
        let mut t = String::from(
            "[underlay]\nport = \"uplink\"\nifname = \"up0\"\nlocal_ip = \"198.18.0.1/24\"\n\
             [[physnet]]\nname = \"phys\"\nport = \"ph\"\nifname = \"ph0\"\n\
             [[network]]\nname = \"n\"\nsegment = \"local\"\n",
        );
        for v in vteps {
            t.push_str(&format!(
                "[[network]]\nname = \"v{v}\"\nsegment = \"vxlan\"\nid = {}\nremote_vteps = [\"198.18.0.{}\"]\n",
                100 + u32::from(*v),
                10 + v
            ));
        }
        for p in ports {
            t.push_str(&format!(
                "[[port]]\nname = \"p{p}\"\nifname = \"p{p}\"\nmode = \"access\"\nnetwork = \"n\"\n"
            ));
        }
        Config::from_str(&t, "t.toml").unwrap()
    }

    /// A subset of 0..8 in a random order.
    fn subset() -> impl Strategy<Value = Vec<u8>> {
        proptest::sample::subsequence((0u8..8).collect::<Vec<_>>(), 0..=8).prop_shuffle()
    }

    proptest! {
        /// Over any sequence of changes: a port or VTEP present before and after keeps
        /// its number; live numbers are distinct; a number given back is not handed out
        /// again within the quarantine; at start the numbering is the dense one.
        #[test]
        fn numbers_are_stable_distinct_and_quarantined(
            steps in proptest::collection::vec((subset(), subset(), 0u64..3), 1..12)
        ) {
            const Q: u64 = 2;
            let first = config(&steps[0].0, &steps[0].1);
            let (mut slots, mut layout) = Slots::new(&first);
            prop_assert_eq!(&layout, &PortLayout::dense(&first));
            let mut cfg = first;
            let mut now = 0u64;
            let mut retired_at: HashMap<u16, u64> = HashMap::new();
            for (ports, vteps, dt) in &steps[1..] {
                now += dt;
                let new = config(ports, vteps);
                let plan = slots.plan(&new, now, Q).unwrap();
                // Kept ports and VTEPs keep their numbers.
                for (i, p) in new.ports.iter().enumerate() {
                    if let Some(j) = cfg.ports.iter().position(|o| o.name == p.name) {
                        prop_assert_eq!(plan.layout.ports[i], layout.ports[j]);
                    }
                }
                for (i, ip) in new.vteps.iter().enumerate() {
                    if let Some(j) = cfg.vteps.iter().position(|o| o == ip) {
                        prop_assert_eq!(plan.layout.vteps[i], layout.vteps[j]);
                    }
                }
                // Distinct.
                let live: Vec<PortId> =
                    plan.layout.ports.iter().chain(&plan.layout.vteps).copied().collect();
                let set: HashSet<PortId> = live.iter().copied().collect();
                prop_assert_eq!(set.len(), live.len());
                // New numbers are not in quarantine, and were not live before.
                let before: HashSet<PortId> =
                    layout.ports.iter().chain(&layout.vteps).copied().collect();
                for id in &live {
                    if !before.contains(id) {
                        if let Some(&at) = retired_at.get(&id.0) {
                            prop_assert!(now - at >= Q, "{id:?} reused {} after", now - at);
                        }
                    }
                }
                // What went is reported, and is given back.
                for id in before.difference(&set) {
                    prop_assert!(
                        plan.removed_ports.contains(id) || plan.removed_vteps.contains(id)
                    );
                    retired_at.insert(id.0, now);
                }
                prop_assert_eq!(
                    plan.added.len(),
                    new.ports.iter().filter(|p| !cfg.ports.iter().any(|o| o.name == p.name)).count()
                );
                slots = plan.slots;
                layout = plan.layout;
                cfg = new;
            }
        }
    }
}
