//! The br-tun part of the pipeline: frames received on the underlay port are validated
//! and decapsulated into their network (or dropped with a reason), and frames toward a
//! tunnel port are encapsulated from the remote VTEP's template and staged on the
//! underlay port.
//!
//! Rules (Neutron's br-tun, `shared/REFERENCE.md`):
//! - a tunnel packet must be addressed to us: outer destination MAC = the underlay's
//!   MAC, outer destination IP = `local_ip`;
//! - its source must be a configured remote VTEP (Neutron only has tunnel ports toward
//!   known hosts); the VNI / key must be a network's; an inner frame with a VLAN tag is
//!   dropped; the inner source is learned against the VTEP's tunnel port;
//! - toward a tunnel the local VLAN is popped and the frame encapsulated with the
//!   network's VNI / key from the VTEP's template (the inner frame is what an access
//!   port would send: untagged, padded to 60 bytes); a frame whose encapsulated size would
//!   exceed the underlay MTU is dropped and counted, never truncated;
//! - nothing from a tunnel goes back into a tunnel (split horizon).

use encap::parse::parse_l2;
use encap::tunnel::{self, GreOptions, GreTemplate, OuterParams, VxlanTemplate};
use encap::vlan::VlanTag;
use encap::{ErrorKind, MacAddr};
use flowtable::PortId;

use super::{Meta, Overlay, Pipeline};
use crate::config::EgressTag;
use crate::counters::DropReason;
use crate::pool::{Desc, Pool};
use crate::port::BURST;

/// What a worker knows of a remote VTEP beyond the configuration: its next hop's MAC
/// and the encap templates built from it.
#[derive(Debug, Clone)]
pub(super) struct VtepState {
    /// The next hop's MAC, once known.
    pub(super) mac: Option<MacAddr>,
    /// The VXLAN template (outer Ethernet + IP + UDP + VXLAN), once the MAC is known.
    pub(super) vxlan: Option<VxlanTemplate>,
    /// The GRE template, once the MAC is known.
    pub(super) gre: Option<GreTemplate>,
}

/// Whether a decapsulation error means "not this kind of tunnel packet".
fn not_matched(e: encap::Error) -> bool {
    e.kind == ErrorKind::NotMatched
}

impl Pipeline {
    /// Rebuilds every VTEP's state from the tables: static neighbours give next-hop
    /// MACs at once.
    pub(super) fn rebuild_vteps(&mut self) {
        let n = self.tables.vteps.len();
        self.vteps = vec![
            VtepState {
                mac: None,
                vxlan: None,
                gre: None,
            };
            n
        ];
        let statics: Vec<_> = self
            .tables
            .underlay
            .as_ref()
            .map(|u| u.neighbors.clone())
            .unwrap_or_default();
        for (ip, mac) in statics {
            self.set_neighbor(ip, mac);
        }
    }

    /// The next hop `ip` is at `mac`: every VTEP behind it gets new templates.
    pub fn set_neighbor(&mut self, ip: core::net::IpAddr, mac: MacAddr) {
        let Some(u) = self.tables.underlay.as_ref() else {
            return;
        };
        for (v, st) in self.tables.vteps.iter().zip(self.vteps.iter_mut()) {
            if v.next_hop != Some(ip) {
                continue;
            }
            st.mac = Some(mac);
            let Some(src_mac) = u.local_mac else {
                continue;
            };
            let mut p = OuterParams::new(src_mac, mac, u.local_ip, v.ip);
            p.df = u.df;
            p.mtu = u.mtu;
            st.vxlan = VxlanTemplate::new(&p, u.decap.vxlan_port).ok();
            st.gre = GreTemplate::new(&p, GreOptions::default()).ok();
        }
    }

    /// Classifies frame `i` of a batch received on the underlay port: decapsulates a
    /// tunnel packet into its network, or records why it is dropped.
    pub(super) fn classify_underlay(&mut self, i: usize, d: &mut Desc, pool: &mut Pool) {
        let r = self.decap_one(d, pool);
        let m = &mut self.meta[i];
        match r {
            Ok(meta) => *m = meta,
            Err(reason) => {
                *m = Meta {
                    drop: Some(reason),
                    ..Meta::default()
                }
            }
        }
    }

    fn decap_one(&mut self, d: &mut Desc, pool: &mut Pool) -> Result<Meta, DropReason> {
        let Some(u) = self.tables.underlay.as_ref() else {
            return Err(DropReason::NotTunnel);
        };
        let mut f = pool.frame(*d);
        let (outer, net) = match tunnel::decap_vxlan(&mut f, &u.decap) {
            Ok(info) => (info.outer, u.vni.get(&info.vni.get()).copied()),
            Err(e) if not_matched(e) => match tunnel::decap_gre(&mut f) {
                Ok(info) => (
                    info.outer,
                    info.key.and_then(|k| u.gre_key.get(&k.get()).copied()),
                ),
                Err(e) if not_matched(e) => return Err(DropReason::NotTunnel),
                Err(_) => return Err(DropReason::TunnelMalformed),
            },
            Err(_) => return Err(DropReason::TunnelMalformed),
        };
        if Some(outer.dst_mac()) != u.local_mac || super::ip_bits(outer.dst_ip()) != u.local_ip_bits
        {
            return Err(DropReason::NotOurVtep);
        }
        let vtep = *u
            .vtep_by_ip
            .get(&outer.src_ip_bits())
            .ok_or(DropReason::UnknownVtep)?;
        let net = net.ok_or(DropReason::UnknownSegment)?;
        let l2 = parse_l2(f.data()).map_err(|_| DropReason::Malformed)?;
        if l2.tags[0].is_some() {
            return Err(DropReason::InnerTagged);
        }
        if !l2.src.is_unicast() {
            return Err(DropReason::InvalidSource);
        }
        if super::is_reserved_multicast(l2.dst) {
            return Err(DropReason::ReservedMulticast);
        }
        *d = d.settle(&f);
        let in_port = PortId((self.tables.ports.len() + usize::from(vtep)) as u16);
        let pc = &mut self.counters.ports[in_port.index()];
        pc.rx_frames += 1;
        pc.rx_bytes += d.len() as u64;
        Ok(Meta {
            in_port,
            from_tunnel: true,
            net,
            tag: None,
            dst: l2.dst,
            src: l2.src,
            ..Meta::default()
        })
    }

    /// Encapsulates `d` (a frame of `net` as received, with its tag `tag` if any) toward
    /// remote VTEP `v` and stages it on the underlay port.
    pub(super) fn stage_tunnel(
        &mut self,
        v: u16,
        net: u16,
        tag: Option<VlanTag>,
        d: Desc,
        pool: &mut Pool,
    ) -> Result<(), DropReason> {
        let overlay = self.tables.nets[usize::from(net)]
            .overlay
            .ok_or(DropReason::NoPort)?;
        let u = self.tables.underlay.as_ref().ok_or(DropReason::NoRoute)?;
        let up = u.port;
        let df = u.df;
        let st = &self.vteps[usize::from(v)];
        if self.tables.vteps[usize::from(v)].next_hop.is_none() || u.local_mac.is_none() {
            return Err(DropReason::NoRoute);
        }
        let q = &self.txq[up.index()];
        if q.len == BURST {
            return Err(DropReason::TxFull);
        }
        // The inner frame is what an access port of the network would send: untagged,
        // at least 60 bytes.
        let mut f = pool.frame(d);
        super::rewrite(&mut f, tag, EgressTag::Untagged).map_err(|_| DropReason::RewriteFailed)?;
        let ip_id = if df {
            0
        } else {
            self.ip_id = self.ip_id.wrapping_add(1);
            self.ip_id
        };
        let r = match overlay {
            Overlay::Vxlan(vni) => {
                let t = st.vxlan.as_ref().ok_or(DropReason::NeighborUnresolved)?;
                let hash = tunnel::flow_hash(f.data());
                t.encap(&mut f, vni, hash, ip_id)
            }
            Overlay::Gre(key) => {
                let t = st.gre.as_ref().ok_or(DropReason::NeighborUnresolved)?;
                t.encap(&mut f, key, 0, ip_id)
            }
        };
        r.map_err(|e| match e.kind {
            ErrorKind::TooBig { .. } => DropReason::MtuExceeded,
            _ => DropReason::RewriteFailed,
        })?;
        let d = d.settle(&f);
        let pc = &mut self.counters.ports[self.tables.ports.len() + usize::from(v)];
        pc.tx_frames += 1;
        pc.tx_bytes += d.len() as u64;
        let q = &mut self.txq[up.index()];
        q.descs[q.len] = d;
        q.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use encap::tunnel::{decap_vxlan, v4_params, DecapConfig, VxlanTemplate};
    use encap::{Frame, MacAddr, VlanId, Vni};

    use crate::config::{
        Config, FdbTarget, NetIdx, Network, Port, PortIdx, PortMode, PortRole, Segment, StaticFdb,
        Underlay, VtepIdx,
    };
    use crate::counters::DropReason;
    use crate::offline::OfflineSwitch;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);
    const LMAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const RMAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const VM1: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
    const VM2: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 2]);

    fn config() -> Config {
        Config {
            networks: vec![Network {
                name: "net-b".into(),
                segment: Segment::Vxlan {
                    vni: Vni::try_new(5010).unwrap(),
                },
                local_vlan: VlanId::try_new(1).unwrap(),
                local_vlan_allocated: false,
                remote_vteps: vec![VtepIdx(0)],
            }],
            ports: vec![
                Port {
                    name: "vm1".into(),
                    ifname: None,
                    mode: PortMode::Access { network: NetIdx(0) },
                    role: PortRole::Local,
                },
                Port {
                    name: "uplink".into(),
                    ifname: None,
                    mode: PortMode::Trunk {
                        vlans: vec![],
                        native: None,
                    },
                    role: PortRole::Underlay,
                },
            ],
            underlay: Some(Underlay {
                port: PortIdx(1),
                local_ip: IpAddr::V4(LOCAL),
                prefix_len: Some(24),
                local_mac: Some(LMAC),
                gateway: None,
                mtu: 1500,
                df: true,
                vxlan_port: 4789,
                neighbors: vec![(IpAddr::V4(REMOTE), RMAC)],
            }),
            vteps: vec![IpAddr::V4(REMOTE)],
            static_fdb: vec![],
            ..Config::default()
        }
    }

    fn inner(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    fn vxlan_from(src: Ipv4Addr, vni: u32, frame: &[u8]) -> Vec<u8> {
        let t = VxlanTemplate::new(&v4_params(RMAC, LMAC, src, LOCAL), 4789).unwrap();
        let mut buf = vec![0u8; 128 + frame.len()];
        buf[128..].copy_from_slice(frame);
        let mut f = Frame::new(&mut buf[..], 128, frame.len()).unwrap();
        t.encap(&mut f, Vni::try_new(vni).unwrap(), 7, 0).unwrap();
        f.data().to_vec()
    }

    #[test]
    fn broadcast_is_encapsulated_toward_the_remote_vtep() {
        let mut sw = OfflineSwitch::new(config()).unwrap();
        let o = sw.inject(PortIdx(0), &inner(MacAddr::BROADCAST, VM1, 60), 1);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        let (port, bytes) = &o.sent[0];
        assert_eq!(*port, PortIdx(1));
        let mut b = bytes.clone();
        let n = b.len();
        let mut f = Frame::new(&mut b[..], 0, n).unwrap();
        let info = decap_vxlan(&mut f, &DecapConfig::default()).unwrap();
        assert_eq!(info.vni.get(), 5010);
        assert_eq!(info.outer.src_ip(), IpAddr::V4(LOCAL));
        assert_eq!(info.outer.dst_ip(), IpAddr::V4(REMOTE));
        assert_eq!(info.outer.dst_mac(), RMAC);
        assert_eq!(f.data(), &inner(MacAddr::BROADCAST, VM1, 60)[..]);
    }

    #[test]
    fn decap_learns_the_vtep_and_unicast_goes_back_to_it() {
        let mut sw = OfflineSwitch::new(config()).unwrap();
        let pkt = vxlan_from(REMOTE, 5010, &inner(VM1, VM2, 60));
        let o = sw.inject(PortIdx(1), &pkt, 1);
        assert_eq!(o.sent, vec![(PortIdx(0), inner(VM1, VM2, 60))]);
        // VM2 is now behind the tunnel port of VTEP 0 (port 2).
        assert_eq!(sw.fdb_lookup(NetIdx(0), VM2, 2), Some(PortIdx(2)));
        let o = sw.inject(PortIdx(0), &inner(VM2, VM1, 60), 3);
        assert_eq!(o.sent.len(), 1);
        assert_eq!(o.sent[0].0, PortIdx(1));
    }

    #[test]
    fn tunnel_packets_are_checked() {
        let mut sw = OfflineSwitch::new(config()).unwrap();
        let cases = [
            (
                vxlan_from(OTHER, 5010, &inner(VM1, VM2, 60)),
                DropReason::UnknownVtep,
            ),
            (
                vxlan_from(REMOTE, 5011, &inner(VM1, VM2, 60)),
                DropReason::UnknownSegment,
            ),
            (inner(VM1, VM2, 60), DropReason::TunnelMalformed),
        ];
        for (pkt, want) in cases {
            let o = sw.inject(PortIdx(1), &pkt, 1);
            assert!(o.sent.is_empty());
            assert_eq!(o.dropped, Some(want));
        }
        let mut tagged = inner(VM1, VM2, 64);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        let o = sw.inject(PortIdx(1), &vxlan_from(REMOTE, 5010, &tagged), 1);
        assert_eq!(o.dropped, Some(DropReason::InnerTagged));
        let mut bad = vxlan_from(REMOTE, 5010, &inner(VM1, VM2, 60));
        bad[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0x33]);
        let o = sw.inject(PortIdx(1), &bad, 1);
        assert_eq!(o.dropped, Some(DropReason::NotOurVtep));
    }

    #[test]
    fn static_remote_entry_and_mtu() {
        let mut cfg = config();
        cfg.static_fdb.push(StaticFdb {
            network: NetIdx(0),
            mac: VM2,
            target: FdbTarget::Remote(VtepIdx(0)),
        });
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let o = sw.inject(PortIdx(0), &inner(VM2, VM1, 1464), 1);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        assert_eq!(o.sent[0].1.len(), 1464 + 50);
        let o = sw.inject(PortIdx(0), &inner(VM2, VM1, 1465), 2);
        assert!(o.sent.is_empty());
        assert_eq!(o.dropped, Some(DropReason::MtuExceeded));
    }

    #[test]
    fn trace_shows_decap_and_encap() {
        let mut sw = OfflineSwitch::new(config()).unwrap();
        let pkt = vxlan_from(REMOTE, 5010, &inner(MacAddr::BROADCAST, VM2, 60));
        let t = crate::trace::trace(&mut sw, PortIdx(1), &pkt, 1);
        assert!(t.contains("Decap: VXLAN VNI 5010"), "{t}");
        assert!(t.contains("network \"net-b\""), "{t}");
        assert!(
            t.contains("new entry on port \"tunnel to 198.18.0.2\""),
            "{t}"
        );
        assert!(t.contains("Output: port \"vm1\""), "{t}");
        let t = crate::trace::trace(&mut sw, PortIdx(0), &inner(VM2, VM1, 60), 2);
        assert!(t.contains("known on port \"tunnel to 198.18.0.2\""), "{t}");
        assert!(t.contains("encap VXLAN VNI 5010, UDP source port"), "{t}");
        assert!(t.contains("198.18.0.1 > 198.18.0.2"), "{t}");
    }
}
