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
//!
//! The underlay next hop of a VTEP (itself when on-link, else the gateway) is resolved
//! by the worker's neighbour cache ([`crate::underlay::neigh`]): static neighbours at
//! once; otherwise a frame for an unresolved next hop waits (at most
//! [`crate::underlay::neigh::DEFAULT_QUEUE_LEN`] per next hop, the rest dropped as
//! `neighbor_unresolved`) while ARP requests or neighbour solicitations go out, and is
//! sent when the answer comes or dropped when resolution fails (3 requests, 1 s
//! apart). ARP and ND for the local VTEP address are answered on the underlay port.
//! The templates of a VTEP are rebuilt when its next hop's MAC changes; the VTEPs are
//! checked against the cache once a second, so a stale entry is refreshed and a
//! failed one stops being used.

use encap::parse::parse_l2;
use encap::tunnel::{self, GreOptions, GreTemplate, OuterParams, VxlanTemplate};
use encap::vlan::VlanTag;
use encap::{ErrorKind, MacAddr};
use flowtable::PortId;

use core::net::IpAddr;

use super::{Meta, Overlay, Pipeline, Tables, UnderlayTable};
use crate::config::EgressTag;
use crate::counters::DropReason;
use crate::pool::{Desc, Pool};
use crate::port::BURST;
use crate::underlay::{self, Control};

/// A frame waiting for its VTEP's next hop to resolve: already rewritten as the inner
/// frame (untagged), to be encapsulated for `vtep` with `net`'s segment.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    d: Desc,
    vtep: u16,
    net: u16,
}

/// Neighbour-cache entries a worker keeps: every VTEP's next hop, static neighbours,
/// and room for the hosts that ask for us.
pub(super) fn neigh_capacity(tables: &Tables) -> usize {
    let statics = tables.underlay.as_ref().map_or(0, |u| u.neighbors.len());
    (2 * tables.vteps.len() + statics + 16).max(64)
}

/// Neighbour answers shared between the workers of one switch. Replies and
/// announcements reach the underlay port's queue of one worker only (RSS), while any
/// worker may be resolving the same next hop: whichever worker hears an answer passes it
/// on, and each other worker applies it at its next poll (to an entry it is resolving or
/// already has; others ignore it). Bounded channels: no allocation per message; a full
/// channel drops the news, and that worker's own retry asks again.
#[derive(Debug, Clone)]
pub struct NeighborPeers {
    /// To each other worker.
    pub to: Vec<crossbeam::channel::Sender<(IpAddr, MacAddr)>>,
    /// From the other workers.
    pub from: crossbeam::channel::Receiver<(IpAddr, MacAddr)>,
}

impl NeighborPeers {
    /// Messages a worker's channel holds.
    const DEPTH: usize = 256;

    /// The peers of `n` workers, each connected to every other.
    pub fn mesh(n: usize) -> Vec<NeighborPeers> {
        let chans: Vec<_> = (0..n)
            .map(|_| crossbeam::channel::bounded(Self::DEPTH))
            .collect();
        (0..n)
            .map(|w| NeighborPeers {
                to: chans
                    .iter()
                    .enumerate()
                    .filter(|&(v, _)| v != w)
                    .map(|(_, (tx, _))| tx.clone())
                    .collect(),
                from: chans[w].1.clone(),
            })
            .collect()
    }
}

/// Bytes of an ARP or ND frame the switch builds (ND: 86).
const CONTROL_FRAME: usize = 128;
/// How often the VTEPs' next hops are checked against the neighbour cache (ns).
const NEIGH_CHECK_NS: u64 = 1_000_000_000;

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
/// A tunnel segment as received: what selects the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seg {
    Vni(u32),
    GreKey(u32),
}

/// The last lookup of one kind in a batch: a key and what it gave.
#[derive(Debug)]
struct Last<K, V>(Option<(K, V)>);

impl<K: PartialEq + Copy, V: Copy> Last<K, V> {
    /// What `k` gives: the last answer if `k` was the last key, else `lookup(k)`.
    #[inline]
    fn get(&mut self, k: K, lookup: impl FnOnce(K) -> V) -> V {
        match self.0 {
            Some((last, v)) if last == k => v,
            _ => {
                let v = lookup(k);
                self.0 = Some((k, v));
                v
            }
        }
    }
}

/// The last lookups of one batch from the underlay port. A tunnel's packets come in
/// runs from one remote VTEP and segment, so consecutive packets skip the hash maps
/// (VPP's vxlan-input keeps its last key the same way). It lives for one batch, during
/// which the tables cannot change.
#[derive(Debug)]
pub(super) struct DecapMemo {
    /// Remote address bits → VTEP number (`None`: not a configured VTEP).
    vtep: Last<u128, Option<u16>>,
    /// Segment → network (`None`: no such segment).
    seg: Last<Seg, Option<u16>>,
}

impl DecapMemo {
    fn new() -> Self {
        DecapMemo {
            vtep: Last(None),
            seg: Last(None),
        }
    }

    #[inline]
    fn vtep(&mut self, u: &UnderlayTable, ip: u128) -> Option<u16> {
        self.vtep.get(ip, |ip| u.vtep_by_ip.get(&ip).copied())
    }

    #[inline]
    fn segment(&mut self, u: &UnderlayTable, seg: Seg) -> Option<u16> {
        self.seg.get(seg, |seg| match seg {
            Seg::Vni(v) => u.vni.get(&v).copied(),
            Seg::GreKey(k) => u.gre_key.get(&k).copied(),
        })
    }
}

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
        self.neigh = underlay::NeighborCache::new(neigh_capacity(&self.tables));
        let statics: Vec<_> = self
            .tables
            .underlay
            .as_ref()
            .map(|u| u.neighbors.clone())
            .unwrap_or_default();
        for (ip, mac) in statics {
            // The cache is sized for every static entry: this cannot fail.
            let _ = self.neigh.add_static(ip, mac);
            self.set_neighbor(ip, mac);
        }
    }

    /// Connects this worker's neighbour cache to the other workers' (see
    /// [`NeighborPeers`]).
    pub fn set_neighbor_peers(&mut self, peers: NeighborPeers) {
        self.peers = Some(peers);
    }

    /// The neighbour cache (for `ctl` and tests).
    pub fn neighbors(&self) -> &underlay::NeighborCache<Pending> {
        &self.neigh
    }

    /// Periodic neighbour work: requests due (sent on the underlay port), resolutions
    /// that failed (their frames dropped), and once a second each VTEP's next hop
    /// checked against the cache (a refreshed or changed MAC rebuilds the templates, a
    /// failed one clears them).
    #[inline(never)]
    pub(super) fn neigh_poll(&mut self, pool: &mut Pool) {
        let Some(u) = self.tables.underlay.as_ref() else {
            return;
        };
        let (local_ip, local_mac, up) = (u.local_ip, u.local_mac, u.port);
        let now = self.now;
        // What the other workers heard.
        while let Some((ip, mac)) = self.peers.as_ref().and_then(|p| p.from.try_recv().ok()) {
            self.neighbor_confirmed(ip, mac, pool, false);
        }
        let mut asks = [None::<IpAddr>; 16];
        let mut n_asks = 0;
        let mut dropped = 0u64;
        self.neigh.poll(
            now,
            &mut |ip| {
                if let Some(slot) = asks.get_mut(n_asks) {
                    *slot = Some(ip);
                    n_asks += 1;
                }
            },
            &mut |p: Pending| {
                pool.free(p.d);
                dropped += 1;
            },
        );
        for _ in 0..dropped {
            self.counters.drop(DropReason::NeighborUnresolved);
        }
        if let Some(mac) = local_mac {
            for ip in asks.iter().flatten() {
                let mut buf = [0u8; CONTROL_FRAME];
                let len = underlay::solicit(*ip, local_ip, mac, &mut buf);
                self.send_control(up, &buf[..len], pool);
            }
        }
        if now >= self.neigh_checked.saturating_add(NEIGH_CHECK_NS) {
            self.neigh_checked = now;
            for v in 0..self.vteps.len() {
                let Some(nh) = self.tables.vteps[v].next_hop else {
                    continue;
                };
                match self.neigh.lookup(nh, now) {
                    Some(mac) if self.vteps[v].mac != Some(mac) => self.set_neighbor(nh, mac),
                    Some(_) => {}
                    None => {
                        if self.vteps[v].mac.is_some() {
                            if let Some(h) = &self.fast {
                                h.bump_neigh();
                            }
                        }
                        let st = &mut self.vteps[v];
                        (st.mac, st.vxlan, st.gre) = (None, None, None);
                    }
                }
            }
        }
    }

    /// Stages a frame the switch built (ARP/ND) on port `port`, as is.
    fn send_control(&mut self, port: PortId, bytes: &[u8], pool: &mut Pool) {
        if bytes.is_empty() {
            return;
        }
        let Some(q) = self.txq.get_mut(port.index()) else {
            return;
        };
        if q.len == BURST {
            self.counters.drop(DropReason::TxFull);
            return;
        }
        match pool.alloc_with(bytes) {
            Some(d) => {
                q.descs[q.len] = d;
                q.len += 1;
            }
            None => self.counters.drop(DropReason::NoBuffer),
        }
    }

    /// `ip` is at `mac` (an answer or announcement on the underlay): the cache is
    /// confirmed, the VTEPs behind it get templates, and the frames that waited for it
    /// are encapsulated and staged.
    fn neighbor_confirmed(&mut self, ip: IpAddr, mac: MacAddr, pool: &mut Pool, share: bool) {
        if share {
            if let Some(p) = &self.peers {
                for tx in &p.to {
                    let _ = tx.try_send((ip, mac));
                }
            }
        }
        let mut released = [None::<Pending>; underlay::neigh::DEFAULT_QUEUE_LEN];
        let mut n = 0;
        self.neigh.confirm(ip, mac, self.now, &mut |p, _| {
            if let Some(slot) = released.get_mut(n) {
                *slot = Some(p);
                n += 1;
            }
        });
        if self
            .vteps
            .iter()
            .zip(&self.tables.vteps)
            .any(|(st, v)| v.next_hop == Some(ip) && st.mac != Some(mac))
        {
            self.set_neighbor(ip, mac);
        }
        for p in released.into_iter().flatten() {
            if let Err(r) = self.stage_tunnel(p.vtep, p.net, None, p.d, pool) {
                pool.free(p.d);
                self.counters.drop(r);
            }
        }
    }

    /// The l2population ARP responder: every ARP request of the batch that asks for a
    /// configured (network, IP) is answered back out of its ingress port, tagged as
    /// that port carries the network.
    #[inline(never)]
    pub(super) fn arp_respond(&mut self, in_port: PortId, descs: &[Desc], pool: &mut Pool) {
        for (i, &d) in descs.iter().enumerate() {
            let m = self.meta[i];
            if !m.local_only {
                continue;
            }
            let data = pool.data(d);
            let Ok(l2) = parse_l2(data) else { continue };
            let Some((req, mac)) = super::arp_answer(&self.tables, m.net, &data[l2.l3_offset..])
            else {
                continue;
            };
            let mut buf = [0u8; CONTROL_FRAME];
            let Ok(len) = encap::neigh::arp_reply(
                &mut buf,
                mac,
                req.target_ip,
                req.sender_mac,
                req.sender_ip,
            ) else {
                continue;
            };
            let Some(d) = pool.alloc_with(&buf[..len]) else {
                self.counters.drop(DropReason::NoBuffer);
                continue;
            };
            self.counters.arp_replies += 1;
            if let Err(r) = self.emit(in_port, m.net, None, d, pool) {
                self.counters.drop(r);
            }
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
            if st.mac != Some(mac) {
                // The fast path's encap entries carry the old MAC: stale from now on.
                if let Some(h) = &self.fast {
                    h.bump_neigh();
                }
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

    /// Classifies a batch received on the underlay port: decapsulates each tunnel packet
    /// into its network, or records why it is dropped.
    #[inline(never)]
    pub(super) fn classify_underlay(&mut self, descs: &mut [Desc], pool: &mut Pool) {
        let mut memo = DecapMemo::new();
        for (i, d) in descs.iter_mut().enumerate() {
            let r = match self.decap_one(i, d, pool, &mut memo) {
                Err(DropReason::NotTunnel) => self.underlay_control(*d, pool).map(|m| {
                    self.meta[i] = m;
                }),
                r => r,
            };
            if let Err(reason) = r {
                self.meta[i] = Meta {
                    drop: Some(reason),
                    ..Meta::default()
                };
            }
        }
    }

    /// A frame on the underlay port that is not a tunnel packet: ARP/ND for us is
    /// answered or learned from (the frame is consumed), anything else dropped.
    fn underlay_control(&mut self, d: Desc, pool: &mut Pool) -> Result<Meta, DropReason> {
        let Some(u) = self.tables.underlay.as_ref() else {
            return Err(DropReason::NotTunnel);
        };
        let Some(local_mac) = u.local_mac else {
            return Err(DropReason::NotTunnel);
        };
        let (local_ip, up) = (u.local_ip, u.port);
        let mut buf = [0u8; CONTROL_FRAME];
        match underlay::underlay_control(pool.data(d), local_ip, local_mac, &mut buf) {
            Control::Reply { len, asker } => {
                self.send_control(up, &buf[..len], pool);
                if let Some((ip, mac)) = asker {
                    self.neighbor_confirmed(ip, mac, pool, true);
                }
            }
            Control::Learn(ip, mac) => self.neighbor_confirmed(ip, mac, pool, true),
            Control::NotForUs => return Err(DropReason::NotTunnel),
            Control::Invalid(_) => return Err(DropReason::Malformed),
        }
        self.counters.underlay_control += 1;
        Ok(Meta {
            consumed: true,
            ..Meta::default()
        })
    }

    /// Decapsulates `d`, the batch's frame `i`, and classifies it into `self.meta[i]`.
    #[inline(always)]
    fn decap_one(
        &mut self,
        i: usize,
        d: &mut Desc,
        pool: &mut Pool,
        memo: &mut DecapMemo,
    ) -> Result<(), DropReason> {
        let Some(u) = self.tables.underlay.as_ref() else {
            return Err(DropReason::NotTunnel);
        };
        let mut f = pool.frame(*d);
        let (outer, net) = match tunnel::decap(&mut f, &u.decap) {
            Ok(tunnel::Decapsulated::Vxlan(i)) => (i.outer, memo.segment(u, Seg::Vni(i.vni.get()))),
            Ok(tunnel::Decapsulated::Gre(i)) => (
                i.outer,
                i.key.and_then(|k| memo.segment(u, Seg::GreKey(k.get()))),
            ),
            Err(e) if not_matched(e) => return Err(DropReason::NotTunnel),
            Err(_) => return Err(DropReason::TunnelMalformed),
        };
        self.decapped(i, d, f, outer, net, memo)
    }

    /// The checks and bookkeeping after a successful decapsulation of `d` (now `f`).
    #[inline(always)]
    fn decapped(
        &mut self,
        i: usize,
        d: &mut Desc,
        f: encap::Frame<&mut [u8]>,
        outer: tunnel::OuterInfo,
        net: Option<u16>,
        memo: &mut DecapMemo,
    ) -> Result<(), DropReason> {
        let Some(u) = self.tables.underlay.as_ref() else {
            return Err(DropReason::NotTunnel);
        };
        if Some(outer.dst_mac()) != u.local_mac || outer.dst_ip_bits() != u.local_ip_bits {
            return Err(DropReason::NotOurVtep);
        }
        let vtep = memo
            .vtep(u, outer.src_ip_bits())
            .ok_or(DropReason::UnknownVtep)?;
        let net = net.ok_or(DropReason::UnknownSegment)?;
        // Any tag on the inner frame (even one its parser refuses, VID 4095 or a stack
        // of three) is an inner tag.
        if matches!(
            f.data().get(12..14),
            Some([0x81, 0x00] | [0x88, 0xa8] | [0x91, 0x00])
        ) {
            return Err(DropReason::InnerTagged);
        }
        let l2 = parse_l2(f.data()).map_err(|_| DropReason::Malformed)?;
        if !l2.src.is_unicast() {
            return Err(DropReason::InvalidSource);
        }
        if super::is_reserved_multicast(l2.dst) {
            return Err(DropReason::ReservedMulticast);
        }
        *d = d.settle(&f);
        let in_port = self.tables.vteps[usize::from(vtep)].port;
        if let Some(pc) = self.counters.ports.get_mut(in_port.index()) {
            pc.rx_frames += 1;
            pc.rx_bytes += d.len() as u64;
        }
        self.meta[i] = Meta {
            in_port,
            from_tunnel: true,
            net,
            tag: None,
            dst: l2.dst,
            src: l2.src,
            ..Meta::default()
        };
        Ok(())
    }

    /// Encapsulates `d` (a frame of `net` as received, with its tag `tag` if any) toward
    /// remote VTEP `v` and stages it on the underlay port.
    #[inline(never)]
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
        let Some(next_hop) = self.tables.vteps[usize::from(v)].next_hop else {
            return Err(DropReason::NoRoute);
        };
        if u.local_mac.is_none() {
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
        let st = &self.vteps[usize::from(v)];
        if st.mac.is_none() {
            // Unresolved next hop: the inner frame waits for the answer.
            let p = Pending {
                d: d.settle(&f),
                vtep: v,
                net,
            };
            return match self.neigh.enqueue(next_hop, p, self.now) {
                Ok(()) => Ok(()),
                Err(_) => Err(DropReason::NeighborUnresolved),
            };
        }
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
        let tunnel_port = self.tables.vteps[usize::from(v)].port;
        if let Some(pc) = self.counters.ports.get_mut(tunnel_port.index()) {
            pc.tx_frames += 1;
            pc.tx_bytes += d.len() as u64;
        }
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
                mac_limit: 0,
            }],
            ports: vec![
                Port {
                    name: "vm1".into(),
                    ifname: None,
                    mode: PortMode::Access { network: NetIdx(0) },
                    role: PortRole::Local,
                    policy: Default::default(),
                },
                Port {
                    name: "uplink".into(),
                    ifname: None,
                    mode: PortMode::Trunk {
                        vlans: vec![],
                        native: None,
                    },
                    role: PortRole::Underlay,
                    policy: Default::default(),
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

    /// A batch from the underlay mixing remote VTEPs, VNIs and bad packets switches
    /// exactly as the same packets one at a time (the batch remembers its last VTEP and
    /// segment lookups): each inner frame reaches its own network only.
    #[test]
    fn a_mixed_underlay_batch_switches_like_single_packets() {
        const REMOTE2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
        const VM3: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 3]);
        let mut cfg = config();
        cfg.networks.push(Network {
            name: "net-c".into(),
            segment: Segment::Vxlan {
                vni: Vni::try_new(5020).unwrap(),
            },
            local_vlan: VlanId::try_new(2).unwrap(),
            local_vlan_allocated: false,
            remote_vteps: vec![VtepIdx(0), VtepIdx(1)],
            mac_limit: 0,
        });
        cfg.networks[0].remote_vteps.push(VtepIdx(1));
        cfg.ports.push(Port {
            name: "vm3".into(),
            ifname: None,
            mode: PortMode::Access { network: NetIdx(1) },
            role: PortRole::Local,
            policy: Default::default(),
        });
        cfg.vteps.push(IpAddr::V4(REMOTE2));
        if let Some(u) = cfg.underlay.as_mut() {
            u.neighbors.push((IpAddr::V4(REMOTE2), RMAC));
        }
        let b = |n: u8| inner(MacAddr::BROADCAST, MacAddr([0xfa, 0x16, 0x3e, 0, 1, n]), 60);
        let pkts = [
            vxlan_from(REMOTE, 5010, &b(1)),
            vxlan_from(REMOTE2, 5020, &b(2)),
            vxlan_from(REMOTE2, 5020, &b(3)),
            vxlan_from(REMOTE, 5011, &b(4)),
            vxlan_from(OTHER, 5010, &b(5)),
            vxlan_from(REMOTE2, 5010, &b(6)),
            vxlan_from(REMOTE, 5020, &b(7)),
            vxlan_from(REMOTE, 5020, &inner(VM3, VM1, 60)),
        ];
        let mut one = OfflineSwitch::new(cfg.clone()).unwrap();
        let mut singles: Vec<(PortIdx, Vec<u8>)> = Vec::new();
        for p in &pkts {
            singles.extend(one.inject(PortIdx(1), p, 1).sent);
        }
        singles.sort();
        let mut batch = OfflineSwitch::new(cfg).unwrap();
        let refs: Vec<&[u8]> = pkts.iter().map(|p| &p[..]).collect();
        let mut sent = batch.inject_burst(PortIdx(1), &refs, 1);
        sent.sort();
        assert_eq!(sent, singles);
        let vm1: Vec<_> = sent.iter().filter(|(p, _)| *p == PortIdx(0)).collect();
        let vm3: Vec<_> = sent.iter().filter(|(p, _)| *p == PortIdx(2)).collect();
        assert_eq!(vm1.len(), 2, "net-b: packets 1 and 6: {sent:?}");
        assert_eq!(
            vm3.len(),
            4,
            "net-c: packets 2, 3, 7 and 8 (to an unknown MAC: flooded): {sent:?}"
        );
        let c = batch.pipeline().counters();
        assert_eq!(c.dropped(DropReason::UnknownSegment), 1);
        assert_eq!(c.dropped(DropReason::UnknownVtep), 1);
        // Each source was learned behind the VTEP it came from, in its own network.
        for (net, n, vtep) in [(0, 1, 0), (1, 2, 1), (0, 6, 1), (1, 7, 0)] {
            let mac = MacAddr([0xfa, 0x16, 0x3e, 0, 1, n]);
            assert_eq!(
                batch.fdb_lookup(NetIdx(net), mac, 2),
                one.fdb_lookup(NetIdx(net), mac, 2),
                "{mac} (VTEP {vtep})"
            );
        }
        assert_ne!(
            batch.fdb_lookup(NetIdx(0), MacAddr([0xfa, 0x16, 0x3e, 0, 1, 6]), 2),
            batch.fdb_lookup(NetIdx(0), MacAddr([0xfa, 0x16, 0x3e, 0, 1, 1]), 2),
            "different VTEPs, different tunnel ports"
        );
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

    fn arp_frame(op: u16, sha: MacAddr, spa: Ipv4Addr, tha: MacAddr, tpa: Ipv4Addr) -> Vec<u8> {
        let dst = if op == 1 { MacAddr::BROADCAST } else { tha };
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha.0);
        f.extend_from_slice(&spa.octets());
        f.extend_from_slice(&tha.0);
        f.extend_from_slice(&tpa.octets());
        f.resize(60, 0);
        f
    }

    #[test]
    fn next_hop_is_resolved_by_arp_and_waiting_frames_follow() {
        let mut cfg = config();
        cfg.underlay.as_mut().unwrap().neighbors.clear();
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let f = inner(MacAddr::BROADCAST, VM1, 60);
        let o = sw.inject(PortIdx(0), &f, 1);
        // The frame waits; an ARP request for the VTEP goes out at once.
        assert_eq!(o.sent.len(), 1, "{o:?}");
        let want = arp_frame(1, LMAC, LOCAL, MacAddr::ZERO, REMOTE);
        assert_eq!(o.sent[0], (PortIdx(1), want));
        // The answer releases it, encapsulated toward the MAC learned.
        let o = sw.inject(PortIdx(1), &arp_frame(2, RMAC, REMOTE, LMAC, LOCAL), 2);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        let mut b = o.sent[0].1.clone();
        let n = b.len();
        let mut fr = Frame::new(&mut b[..], 0, n).unwrap();
        let info = decap_vxlan(&mut fr, &DecapConfig::default()).unwrap();
        assert_eq!(info.outer.dst_mac(), RMAC);
        assert_eq!(fr.data(), &f[..]);
        assert_eq!(sw.pipeline().counters().underlay_control, 1);
        // From now on frames go straight out.
        let o = sw.inject(PortIdx(0), &f, 3);
        assert_eq!(o.sent.len(), 1);
    }

    #[test]
    fn unanswered_resolution_drops_the_waiting_frames() {
        let mut cfg = config();
        cfg.underlay.as_mut().unwrap().neighbors.clear();
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let f = inner(MacAddr::BROADCAST, VM1, 60);
        for i in 0..10 {
            sw.inject(PortIdx(0), &f, 1 + i);
        }
        // 8 wait, 2 are refused at once.
        let c = sw.pipeline().counters();
        assert_eq!(c.dropped(DropReason::NeighborUnresolved), 2);
        for s in 1..=4u64 {
            sw.tick(s * 1_000_000_000 + 10);
        }
        let c = sw.pipeline().counters();
        assert_eq!(c.dropped(DropReason::NeighborUnresolved), 10);
    }

    #[test]
    fn arp_for_the_local_vtep_is_answered() {
        let mut sw = OfflineSwitch::new(config()).unwrap();
        let asker = MacAddr([2, 0, 0, 0, 0, 0x77]);
        let ip = Ipv4Addr::new(198, 18, 0, 77);
        let o = sw.inject(
            PortIdx(1),
            &arp_frame(1, asker, ip, MacAddr::ZERO, LOCAL),
            1,
        );
        assert_eq!(
            o.sent,
            vec![(PortIdx(1), arp_frame(2, LMAC, LOCAL, asker, ip))]
        );
        assert_eq!(o.dropped, None);
        // A request for another address is only learned from (it updates a known
        // neighbour, as Linux does), never answered.
        let o = sw.inject(
            PortIdx(1),
            &arp_frame(1, asker, ip, MacAddr::ZERO, OTHER),
            2,
        );
        assert!(o.sent.is_empty());
        assert_eq!(o.dropped, None);
        // A unicast frame to another host's MAC is not for us.
        let mut f = inner(MacAddr([2, 0, 0, 0, 0, 0x55]), asker, 60);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        let o = sw.inject(PortIdx(1), &f, 3);
        assert_eq!(o.dropped, Some(DropReason::NotTunnel));
    }

    #[test]
    fn l2population_arp_responder() {
        let mut cfg = config();
        cfg.ports.insert(
            1,
            Port {
                name: "vm2".into(),
                ifname: None,
                mode: PortMode::Access { network: NetIdx(0) },
                role: PortRole::Local,
                policy: Default::default(),
            },
        );
        cfg.underlay.as_mut().unwrap().port = PortIdx(2);
        let target = Ipv4Addr::new(10, 1, 0, 2);
        cfg.arp.push(crate::config::ArpEntry {
            network: NetIdx(0),
            ip: target,
            mac: VM2,
        });
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let me = Ipv4Addr::new(10, 1, 0, 1);
        let req = arp_frame(1, VM1, me, MacAddr::ZERO, target);
        let o = sw.inject(PortIdx(0), &req, 1);
        let reply = arp_frame(2, VM2, target, VM1, me);
        // Answered back to the asker, flooded to the other local port, not to tunnels.
        assert_eq!(o.sent, vec![(PortIdx(0), reply), (PortIdx(1), req)]);
        // An IP without an entry is flooded everywhere, tunnels included.
        let other = arp_frame(1, VM1, me, MacAddr::ZERO, Ipv4Addr::new(10, 1, 0, 9));
        let o = sw.inject(PortIdx(0), &other, 2);
        assert_eq!(o.sent.len(), 2);
        assert_eq!(o.sent[1].0, PortIdx(2));
    }

    #[test]
    fn ipv6_next_hop_is_resolved_by_neighbour_discovery() {
        use core::net::Ipv6Addr;
        let l6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let r6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut cfg = config();
        cfg.vteps = vec![IpAddr::V6(r6)];
        let u = cfg.underlay.as_mut().unwrap();
        u.local_ip = IpAddr::V6(l6);
        u.prefix_len = Some(64);
        u.neighbors.clear();
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let f = inner(MacAddr::BROADCAST, VM1, 60);
        let o = sw.inject(PortIdx(0), &f, 1);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        let ns = &o.sent[0].1;
        // A neighbour solicitation to the solicited-node group of the VTEP.
        assert_eq!(&ns[0..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        assert_eq!(&ns[12..14], &[0x86, 0xdd]);
        assert_eq!(ns[54], 135);
        // The remote VTEP answers with an advertisement: the frame leaves over IPv6.
        let mut na = [0u8; 128];
        let n = encap::neigh::nd_advert(&mut na, RMAC, r6, Some((l6, LMAC))).unwrap();
        let o = sw.inject(PortIdx(1), &na[..n], 2);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        let mut b = o.sent[0].1.clone();
        let len = b.len();
        let mut fr = Frame::new(&mut b[..], 0, len).unwrap();
        let info = decap_vxlan(&mut fr, &DecapConfig::default()).unwrap();
        assert_eq!(
            (info.outer.dst_ip(), info.outer.dst_mac()),
            (IpAddr::V6(r6), RMAC)
        );
        assert_eq!(fr.data(), &f[..]);
        // A solicitation for our address is answered.
        let mut q = [0u8; 128];
        let n = encap::neigh::nd_solicit(&mut q, RMAC, r6, l6).unwrap();
        let o = sw.inject(PortIdx(1), &q[..n], 3);
        assert_eq!(o.sent.len(), 1, "{o:?}");
        assert_eq!(&o.sent[0].1[0..6], &RMAC.0);
        assert_eq!(o.sent[0].1[54], 136);
    }

    #[test]
    fn a_neighbour_answer_heard_by_one_worker_releases_the_others() {
        let mut cfg = config();
        cfg.underlay.as_mut().unwrap().neighbors.clear();
        let mut a = OfflineSwitch::new(cfg.clone()).unwrap();
        let mut b = OfflineSwitch::new(cfg).unwrap();
        let mut peers = super::NeighborPeers::mesh(2).into_iter();
        a.pipeline_mut().set_neighbor_peers(peers.next().unwrap());
        b.pipeline_mut().set_neighbor_peers(peers.next().unwrap());
        // Worker b has a frame waiting for the VTEP's MAC.
        let f = inner(MacAddr::BROADCAST, VM1, 60);
        let o = b.inject(PortIdx(0), &f, 1);
        assert_eq!(o.sent.len(), 1, "the ARP request: {o:?}");
        // The reply reaches worker a's queue of the underlay port.
        let o = a.inject(PortIdx(1), &arp_frame(2, RMAC, REMOTE, LMAC, LOCAL), 2);
        assert!(o.sent.is_empty());
        // At its next poll worker b sends the waiting frame, to the answered MAC.
        let o = b.inject(PortIdx(0), &inner(VM2, VM1, 60), 3);
        let encapped: Vec<_> = o
            .sent
            .iter()
            .filter_map(|(p, bytes)| {
                let mut bytes = bytes.clone();
                let n = bytes.len();
                let mut fr = Frame::new(&mut bytes[..], 0, n).unwrap();
                let info = decap_vxlan(&mut fr, &DecapConfig::default()).ok()?;
                Some((*p, info.outer.dst_mac(), fr.data().to_vec()))
            })
            .collect();
        assert!(
            encapped.contains(&(PortIdx(1), RMAC, f.clone())),
            "{encapped:?}"
        );
    }
}
