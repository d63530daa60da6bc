//! `vswitch trace`: what the pipeline does with a frame, stage by stage, in the spirit of
//! `ovs-appctl ofproto/trace`. The frame really goes through the pipeline of an
//! [`OfflineSwitch`] (so a sequence of traced frames learns as the switch would); the
//! trace is read from its decision and from the FDB before and after.

use std::fmt::Write as _;

use encap::parse::{parse, parse_l2, Tunnel, L3, L4};
use encap::tunnel::{decap, DecapConfig, Decapsulated};
use encap::Frame;

use crate::config::{Config, EgressTag, NetIdx, PortIdx, PortMode, PortRole, Segment};
use crate::offline::OfflineSwitch;
use crate::pipeline::Action;

/// A port's name for people: a configured port's name, or `tunnel to IP` for the tunnel
/// port of a remote VTEP.
fn port_label(cfg: &Config, i: PortIdx) -> String {
    match cfg.port(i) {
        Some(p) => p.name.clone(),
        None => match cfg.vteps.get(i.index().wrapping_sub(cfg.ports.len())) {
            Some(ip) => format!("tunnel to {ip}"),
            None => "?".to_string(),
        },
    }
}

/// Whether frames like this one would be forwarded by the XDP fast path (once the
/// workers have offered the decision), or why not: the rules of
/// `Pipeline::offer_fast` and of the XDP program.
fn fast_path(cfg: &Config, port: PortIdx, frame: &[u8], action: Option<Action>) -> String {
    if !cfg.switch.fastpath {
        return "off ([switch] fastpath = false)".into();
    }
    let Some(Action::Unicast(to)) = action else {
        return "no: only known unicast is installed (floods and drops stay in the workers)".into();
    };
    let Some(p) = cfg.port(port) else {
        return "no: tunnel traffic stays in the workers".into();
    };
    if p.policy.security.is_some() {
        return "no: port security is checked by the workers".into();
    }
    if matches!(p.role, PortRole::Underlay) {
        return "no: tunnel traffic stays in the workers".into();
    }
    let Some(out) = cfg.port(PortIdx(to.0)) else {
        return "no: encapsulation stays in the workers".into();
    };
    let Ok(l2) = parse_l2(frame) else {
        return "no: unparseable".into();
    };
    let tag = l2.outer_tag();
    if tag.is_some_and(|t| t.vid.is_none()) {
        return "no: priority-tagged frames go to the workers".into();
    }
    let net = p.mode.ingress(tag.and_then(|t| t.vid));
    let egress = net.and_then(|n| out.mode.egress(n));
    let popped = tag.is_some() && matches!(egress, Some(EgressTag::Untagged));
    let out_len = frame.len() - if popped { 4 } else { 0 };
    if (if popped { out_len } else { frame.len() }) < 60 {
        return "no: shorter than 60 bytes (the workers pad it)".into();
    }
    let mut copy = frame.to_vec();
    let et = u16::from(l2.ethertype);
    if encap::checksum::may_be_partial(&copy, l2.l3_offset, et)
        && encap::checksum::complete_partial(&mut copy, l2.l3_offset, et)
    {
        return "no: partial TCP/UDP checksum (TX offload; the workers complete it)".into();
    }
    "yes, once the workers have offered the decision (while the source stays learned on \
     this port; one frame per refresh period still goes to the workers)"
        .into()
}

/// What decapsulating a frame received on the underlay port gives: the inner frame and
/// its network, or why not.
struct Decapped {
    inner: Vec<u8>,
    line: String,
    net: Option<NetIdx>,
}

fn decap_for_trace(cfg: &Config, frame: &[u8]) -> Decapped {
    let mut buf = frame.to_vec();
    let n = buf.len();
    let dcfg = DecapConfig {
        vxlan_port: cfg.underlay.as_ref().map_or(4789, |u| u.vxlan_port),
        ..DecapConfig::default()
    };
    let Ok(mut f) = Frame::new(&mut buf[..], 0, n) else {
        return Decapped {
            inner: Vec::new(),
            line: "Decap: empty frame".into(),
            net: None,
        };
    };
    let (outer, what, net) = match decap(&mut f, &dcfg) {
        Ok(Decapsulated::Vxlan(i)) => (
            i.outer,
            format!("VXLAN VNI {} (UDP source port {})", i.vni, i.src_port),
            cfg.networks
                .iter()
                .position(|n| matches!(n.segment, Segment::Vxlan { vni } if vni == i.vni)),
        ),
        Ok(Decapsulated::Gre(i)) => (
            i.outer,
            match i.key {
                Some(k) => format!("GRE key {k}"),
                None => "GRE without key".to_string(),
            },
            cfg.networks
                .iter()
                .position(|n| matches!(n.segment, Segment::Gre { key } if Some(key) == i.key)),
        ),
        Err(e) => {
            return Decapped {
                inner: frame.to_vec(),
                line: format!("Decap: not a valid tunnel packet ({e})"),
                net: None,
            }
        }
    };
    let vtep = cfg.vteps.iter().position(|&ip| ip == outer.src_ip());
    let line = format!(
        "Decap: {what} from {} to {}, outer {} > {}: {}",
        outer.src_ip(),
        outer.dst_ip(),
        outer.src_mac(),
        outer.dst_mac(),
        match (vtep, net) {
            (None, _) => "source is not a known VTEP".to_string(),
            (_, None) => "no network has this segment".to_string(),
            (Some(_), Some(n)) => format!("network {:?}", cfg.networks[n].name),
        }
    );
    Decapped {
        inner: f.data().to_vec(),
        line,
        net: net.map(|n| NetIdx(n as u16)),
    }
}

/// How a sent frame looks, for the output lines: its tag, or its tunnel headers.
fn describe_output(cfg: &Config, to: PortIdx, net: NetIdx, bytes: &[u8]) -> String {
    let Some(p) = cfg.port(to) else {
        return "?".to_string();
    };
    if p.role == PortRole::Underlay {
        let vxlan_port = cfg.underlay.as_ref().map_or(4789, |u| u.vxlan_port);
        return match parse(bytes, vxlan_port) {
            Ok(pp) => {
                let (src, dst) = match pp.l3 {
                    L3::Ip { src, dst, .. } => (src.to_string(), dst.to_string()),
                    _ => ("?".into(), "?".into()),
                };
                let tun = match (pp.tunnel, pp.l4) {
                    (Some(Tunnel::Vxlan { vni, .. }), L4::Udp { src_port, .. }) => {
                        format!("VXLAN VNI {vni}, UDP source port {src_port}")
                    }
                    (Some(Tunnel::Gre { key: Some(k), .. }), _) => format!("GRE key {k}"),
                    _ => "not encapsulated".to_string(),
                };
                format!("encap {tun}, {src} > {dst}, next hop {}", pp.l2.dst)
            }
            Err(e) => format!("unparseable ({e})"),
        };
    }
    match p.mode.egress(net) {
        Some(EgressTag::Untagged) => "untagged".to_string(),
        Some(EgressTag::Tagged(v)) => format!("VID {v}"),
        None => "?".to_string(),
    }
}

/// Traces `frame` received on `port` at `now` (ns) and returns the report, one stage per
/// line.
pub fn trace(sw: &mut OfflineSwitch, port: PortIdx, frame: &[u8], now: u64) -> String {
    let mut s = String::new();
    let cfg = sw.config().clone();
    let Some(p) = cfg.port(port) else {
        let _ = writeln!(s, "Ingress: no port {}", port.0);
        return s;
    };
    let decapped = (p.role == PortRole::Underlay).then(|| decap_for_trace(&cfg, frame));
    let inner: &[u8] = decapped.as_ref().map_or(frame, |d| &d.inner);
    let l2 = parse_l2(inner);
    if let Some(d) = &decapped {
        let _ = writeln!(s, "Outer: {} bytes on the underlay", frame.len());
        let _ = writeln!(s, "{}", d.line);
    }
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
                inner.len(),
                l2.src,
                l2.dst,
                tag,
                u16::from(l2.ethertype)
            );
        }
        Err(e) => {
            let _ = writeln!(s, "Frame: {} bytes, unparseable: {e}", inner.len());
        }
    }
    let mode = match &p.mode {
        _ if p.role == PortRole::Underlay => "underlay".to_string(),
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
    let net = match &decapped {
        Some(d) => d.net,
        None => l2
            .as_ref()
            .ok()
            .and_then(|l2| p.mode.ingress(l2.outer_tag().and_then(|t| t.vid))),
    };

    let before_src = match (&l2, net) {
        (Ok(l2), Some(n)) => sw.fdb_lookup(n, l2.src, now),
        _ => None,
    };

    let out = sw.inject(port, frame, now);
    let port_name = |i: PortIdx| port_label(&cfg, i);

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
    if let (None, None) = (out.dropped, out.action) {
        for (to, bytes) in &out.sent {
            let _ = writeln!(
                s,
                "Output: port {:?}: {} bytes",
                port_name(*to),
                bytes.len()
            );
        }
        let _ = writeln!(
            s,
            "Decision: consumed by the switch (ARP/ND for the local VTEP: answered or learned from)"
        );
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
        let how = describe_output(&cfg, *to, net, bytes);
        let _ = writeln!(
            s,
            "Output: port {:?}: {how}, {} bytes",
            port_name(*to),
            bytes.len()
        );
    }
    let _ = writeln!(s, "Fast path: {}", fast_path(&cfg, port, frame, out.action));
    let decision = match (out.action, out.dropped) {
        (_, Some(r)) => format!("drop ({r})"),
        (Some(Action::Unicast(to)), _) => format!("unicast to port {:?}", port_name(PortIdx(to.0))),
        (Some(Action::Flood), _) => format!("flood to {} port(s)", out.sent.len()),
        _ => "drop".to_string(),
    };
    let _ = writeln!(s, "Decision: {decision}");
    s
}
