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
        return "no: not a configured port".into();
    };
    if p.policy.security.is_some() {
        return "no: port security is checked by the workers".into();
    }
    const YES: &str = "yes, once the workers have offered the decision (while the source stays \
                       learned on this port; one frame per refresh period still goes to the \
                       workers)";
    if matches!(p.role, PortRole::Underlay) {
        return match canonical_tunnel(cfg, frame) {
            Ok(()) => format!("{YES}, decapsulated in the kernel"),
            Err(why) => format!("no: {why}"),
        };
    }
    let Ok(l2) = parse_l2(frame) else {
        return "no: unparseable".into();
    };
    let tag = l2.outer_tag();
    if tag.is_some_and(|t| t.vid.is_none()) {
        return "no: priority-tagged frames go to the workers".into();
    }
    let (popped, encap) = match cfg.port(PortIdx(to.0)) {
        Some(out) => {
            let net = p.mode.ingress(tag.and_then(|t| t.vid));
            let egress = net.and_then(|n| out.mode.egress(n));
            (
                tag.is_some() && matches!(egress, Some(EgressTag::Untagged)),
                false,
            )
        }
        // A remote VTEP's tunnel port: the inner frame leaves untagged.
        None => {
            if let Some(u) = &cfg.underlay {
                if u.local_ip.is_ipv4() && !u.df {
                    return "no: the underlay's DF is clear, so the outer IPv4 ID varies (the \
                            workers number it)"
                        .into();
                }
            }
            (tag.is_some(), true)
        }
    };
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
    if encap {
        format!("{YES}, encapsulated in the kernel")
    } else {
        YES.into()
    }
}

/// Whether a tunnel packet is one the XDP program decapsulates itself (the workers
/// judge every other one): for our underlay MAC; over IPv4 without options or
/// fragments, or over IPv6 without extension headers; VXLAN with the I flag and no
/// reserved bits, without a UDP checksum over IPv4 and with one that verifies over
/// IPv6; or GRE version 0 with a key and no other option; an inner frame of at least 60
/// bytes.
fn canonical_tunnel(cfg: &Config, frame: &[u8]) -> Result<(), &'static str> {
    let u = cfg.underlay.as_ref().ok_or("no underlay")?;
    if u.local_mac
        .is_some_and(|m| frame.get(..6) != Some(&m.0[..]))
    {
        return Err("not addressed to the underlay's MAC");
    }
    let (l4, end, proto) = match (frame.get(12..14), frame.get(14)) {
        (Some([0x08, 0x00]), Some(0x45)) => {
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            if frame
                .get(20..22)
                .is_none_or(|f| f[0] & 0x3f != 0 || f[1] != 0)
            {
                return Err("an IPv4 fragment goes to the workers");
            }
            (34, 14 + total, frame.get(23).copied())
        }
        (Some([0x08, 0x00]), _) => return Err("IPv4 options go to the workers"),
        (Some([0x86, 0xdd]), _) => {
            let plen = frame
                .get(18..20)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            (54, 54 + usize::from(plen), frame.get(20).copied())
        }
        _ => return Err("not a tunnel packet"),
    };
    let t = frame.get(l4..end.min(frame.len())).ok_or("truncated")?;
    let inner = match proto {
        Some(17) => {
            let csum = t.get(6..8).ok_or("truncated")?;
            let zero = csum == [0, 0];
            if l4 == 34 && !zero {
                return Err("a UDP checksum over IPv4 is verified by the workers");
            }
            if l4 == 54 && zero {
                return Err("a zero UDP checksum over IPv6 is judged by the workers");
            }
            if t.get(8) != Some(&0x08) || t.get(9..12) != Some(&[0, 0, 0]) || t.get(15) != Some(&0)
            {
                return Err("VXLAN flags other than I (or reserved bits) go to the workers");
            }
            16
        }
        Some(47) => {
            if t.get(..4) != Some(&[0x20, 0x00, 0x65, 0x58]) {
                return Err("GRE with a checksum, a sequence number or no key goes to the workers");
            }
            8
        }
        _ => return Err("not a tunnel packet"),
    };
    if t.len().saturating_sub(inner) < 60 {
        return Err("an inner frame shorter than 60 bytes goes to the workers");
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const H: [u8; 6] = [2, 0xaa, 0, 0, 0, 1]; // behind the remote VTEP
    const P: [u8; 6] = [2, 0xbb, 0, 0, 0, 1]; // on port p
    const LOCAL: [u8; 6] = [2, 0, 0, 0, 0x41, 1];
    const REMOTE: [u8; 6] = [2, 0, 0, 0, 0x41, 2];

    fn switch(df: bool) -> OfflineSwitch {
        let cfg = Config::from_str(
            &format!(
                "[switch]\nfastpath = true\n\
                 [underlay]\nport = \"ul\"\nlocal_ip = \"198.18.41.1/24\"\n\
                 local_mac = \"02:00:00:00:41:01\"\ndf = {df}\n\
                 neighbors = [ {{ ip = \"198.18.41.2\", mac = \"02:00:00:00:41:02\" }} ]\n\
                 [[network]]\nname = \"g\"\nsegment = \"gre\"\nid = 7\n\
                 remote_vteps = [\"198.18.41.2\"]\n\
                 [[port]]\nname = \"p\"\nmode = \"access\"\nnetwork = \"g\"\n"
            ),
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        OfflineSwitch::new(cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    fn inner(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(src, dst)
            .ipv4([198, 18, 40, 1], [198, 18, 40, 2], 64)
            .udp(4000, 5000)
            .write(&mut out, &[0u8; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    /// The remote VTEP's GRE packet around `f` (flags: 0x20 = key, 0x30 = key and
    /// sequence number).
    fn gre(f: &[u8], flags: u8) -> Vec<u8> {
        let mut payload = vec![flags, 0, 0x65, 0x58, 0, 0, 0, 7];
        if flags & 0x10 != 0 {
            payload.extend_from_slice(&[0, 0, 0, 1]);
        }
        payload.extend_from_slice(f);
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(REMOTE, LOCAL)
            .ipv4([198, 18, 41, 2], [198, 18, 41, 1], 64)
            .write(&mut out, etherparse::IpNumber::GRE, &payload)
            .unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn fast_line(t: &str) -> &str {
        t.lines()
            .find(|l| l.starts_with("Fast path: "))
            .unwrap_or_else(|| panic!("no fast path line in\n{t}"))
    }

    #[test]
    fn fast_path_verdicts_for_tunnels() {
        let mut sw = switch(true);
        let p = sw.config().port_by_name("p").unwrap_or_else(|| panic!("p"));
        let ul = sw
            .config()
            .underlay
            .as_ref()
            .map(|u| u.port)
            .unwrap_or_else(|| panic!("ul"));
        // P is learned on p, then H behind the VTEP.
        let t = trace(&mut sw, p, &inner(P, H), 0);
        assert!(
            fast_line(&t).starts_with("Fast path: no: only known unicast"),
            "{t}"
        );
        let t = trace(&mut sw, ul, &gre(&inner(H, P), 0x20), 1);
        assert!(fast_line(&t).ends_with("decapsulated in the kernel"), "{t}");
        let t = trace(&mut sw, ul, &gre(&inner(H, P), 0x30), 2);
        assert!(
            fast_line(&t).contains("no: GRE with a checksum, a sequence number"),
            "{t}"
        );
        let t = trace(&mut sw, p, &inner(P, H), 3);
        assert!(fast_line(&t).ends_with("encapsulated in the kernel"), "{t}");

        // DF clear: the workers number the outer IPv4 ID.
        let mut sw = switch(false);
        trace(&mut sw, p, &inner(P, H), 0);
        trace(&mut sw, ul, &gre(&inner(H, P), 0x20), 1);
        let t = trace(&mut sw, p, &inner(P, H), 2);
        assert!(fast_line(&t).contains("DF is clear"), "{t}");
    }
}
