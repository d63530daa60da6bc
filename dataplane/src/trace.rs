//! `vswitch trace`: what the pipeline does with a frame, stage by stage, in the spirit of
//! `ovs-appctl ofproto/trace`. The frame really goes through the pipeline of an
//! [`OfflineSwitch`] (so a sequence of traced frames learns as the switch would); the
//! trace is read from its decision and from the FDB before and after.

use std::fmt::Write as _;

use encap::parse::parse_l2;

use crate::config::{EgressTag, PortIdx, PortMode};
use crate::offline::OfflineSwitch;
use crate::pipeline::Action;

/// Traces `frame` received on `port` at `now` (ns) and returns the report, one stage per
/// line.
pub fn trace(sw: &mut OfflineSwitch, port: PortIdx, frame: &[u8], now: u64) -> String {
    let mut s = String::new();
    let cfg = sw.config().clone();
    let Some(p) = cfg.port(port) else {
        let _ = writeln!(s, "Ingress: no port {}", port.0);
        return s;
    };
    let l2 = parse_l2(frame);
    match &l2 {
        Ok(l2) => {
            let tag = match l2.outer_tag() {
                None => "untagged".to_string(),
                Some(t) => match t.vid {
                    None => format!("priority-tagged (PCP {})", t.pcp.get()),
                    Some(v) => format!("VID {} PCP {} DEI {}", v, t.pcp.get(), u8::from(t.dei)),
                },
            };
            let _ = writeln!(
                s,
                "Frame: {} bytes, {} > {}, {}, type 0x{:04x}",
                frame.len(),
                l2.src,
                l2.dst,
                tag,
                u16::from(l2.ethertype)
            );
        }
        Err(e) => {
            let _ = writeln!(s, "Frame: {} bytes, unparseable: {e}", frame.len());
        }
    }
    let mode = match &p.mode {
        PortMode::Access { network } => {
            format!("access, network {:?}", cfg.networks[network.index()].name)
        }
        PortMode::Trunk { vlans, native } => {
            let v: Vec<String> = vlans
                .iter()
                .map(|(vid, n)| format!("{}={}", vid, cfg.networks[n.index()].name))
                .collect();
            let nat = native.map_or("none".to_string(), |n| cfg.networks[n.index()].name.clone());
            format!("trunk, VLANs {}, native {}", v.join(" "), nat)
        }
    };
    let _ = writeln!(s, "Ingress: port {:?} ({mode})", p.name);

    // The frame's network, and where its source was before this frame.
    let net = l2
        .as_ref()
        .ok()
        .and_then(|l2| p.mode.ingress(l2.outer_tag().and_then(|t| t.vid)));
    let before_src = match (&l2, net) {
        (Ok(l2), Some(n)) => sw.fdb_lookup(n, l2.src, now),
        _ => None,
    };

    let out = sw.inject(port, frame, now);
    let port_name = |i: PortIdx| cfg.port(i).map_or("?".to_string(), |p| p.name.clone());

    if let (Some(crate::counters::DropReason::StaticMove), None, Ok(l2), Some(n)) =
        (out.dropped, out.action, &l2, net)
    {
        let netc = &cfg.networks[n.index()];
        let _ = writeln!(
            s,
            "Classify: network {:?} (local VLAN {})",
            netc.name, netc.local_vlan
        );
        let at = before_src.map_or("?".to_string(), &port_name);
        let _ = writeln!(
            s,
            "Learn: {} in {:?}: static entry on port {at:?} would move: dropped",
            l2.src, netc.name
        );
        let _ = writeln!(s, "Decision: drop (static_move)");
        return s;
    }
    if let (Some(r), None) = (out.dropped, out.action) {
        let _ = writeln!(s, "Classify: dropped ({r})");
        let _ = writeln!(s, "Decision: drop ({r})");
        return s;
    }
    let (Ok(l2), Some(net)) = (&l2, net) else {
        let _ = writeln!(s, "Decision: drop");
        return s;
    };
    let netc = &cfg.networks[net.index()];
    let _ = writeln!(
        s,
        "Classify: network {:?} (local VLAN {})",
        netc.name, netc.local_vlan
    );
    let after_src = sw.fdb_lookup(net, l2.src, now);
    let learn = match (before_src, after_src) {
        (_, None) => "not learned (table or port limit)".to_string(),
        (None, Some(a)) => format!("new entry on port {:?}", port_name(a)),
        (Some(b), Some(a)) if a == b => format!("refreshed on port {:?}", port_name(a)),
        (Some(b), Some(a)) => format!("moved from port {:?} to {:?}", port_name(b), port_name(a)),
    };
    let _ = writeln!(s, "Learn: {} in {:?}: {learn}", l2.src, netc.name);
    match out.action {
        Some(Action::Unicast(to)) => {
            let _ = writeln!(
                s,
                "Forward: {} known on port {:?}: unicast",
                l2.dst,
                port_name(PortIdx(to.0))
            );
        }
        Some(Action::Flood) => {
            let why = if l2.dst.is_broadcast() {
                "broadcast"
            } else if l2.dst.is_multicast() {
                "multicast"
            } else {
                "unknown unicast"
            };
            let _ = writeln!(s, "Forward: {} {why}: flood in {:?}", l2.dst, netc.name);
        }
        Some(Action::Drop(r)) => {
            let _ = writeln!(s, "Forward: {}: drop ({r})", l2.dst);
        }
        None => {}
    }
    for (to, bytes) in &out.sent {
        let how = match cfg.port(*to).and_then(|p| p.mode.egress(net)) {
            Some(EgressTag::Untagged) => "untagged".to_string(),
            Some(EgressTag::Tagged(v)) => format!("VID {v}"),
            None => "?".to_string(),
        };
        let _ = writeln!(
            s,
            "Output: port {:?}: {how}, {} bytes",
            port_name(*to),
            bytes.len()
        );
    }
    let decision = match (out.action, out.dropped) {
        (_, Some(r)) => format!("drop ({r})"),
        (Some(Action::Unicast(to)), _) => format!("unicast to port {:?}", port_name(PortIdx(to.0))),
        (Some(Action::Flood), _) => format!("flood to {} port(s)", out.sent.len()),
        _ => "drop".to_string(),
    };
    let _ = writeln!(s, "Decision: {decision}");
    s
}
