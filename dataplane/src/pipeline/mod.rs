//! The switching pipeline: what br-int does with OVS NORMAL, over a batch of frames.
//!
//! Each stage is a pass over the whole batch (VPP's node-per-stage shape, STYLE
//! principle 6), with per-frame state in fixed arrays owned by the pipeline:
//!
//! 1. [`classify`](Pipeline::classify): parse the L2 header, decide the network from the
//!    ingress port's mode and the frame's tag, or a [`DropReason`];
//! 2. learn: the source MAC into the network's FDB (moves re-point, statics never move);
//! 3. forward: the destination from the flow cache, or on a miss from the FDB (known
//!    unicast → one port; unknown, broadcast, multicast → flood), cached by generation;
//! 4. output: per egress port, the 802.1Q rewrite the port needs (pop and pad for access
//!    ports and native VLANs, translate or push for trunks), frames grouped per port and
//!    handed to each port once per batch. A flood copies the frame for all but the last
//!    port; a unicast moves the descriptor.
//!
//! Learning precedes forwarding, so a frame's own source is known when the batch's later
//! frames look it up. No stage allocates, locks or makes a syscall.

mod security;
mod tables;
mod tunnel;

pub use security::{link_local, Security};

pub use tables::{
    ip_bits, Egress, Ingress, NetEntry, Overlay, PortEntry, PortLayout, PortOwner, Tables,
    UnderlayTable, VtepEntry,
};
use tunnel::VtepState;
pub use tunnel::{NeighborPeers, Pending};

use crate::fastpath::{EncapOffer, FastHook, Offer, Op as FastOp};
use crate::underlay::NeighborCache;

use encap::ethernet::EtherType;
use encap::parse::parse_l2;
use encap::vlan::{self, Tpid, VlanTag};
use encap::{Frame, MacAddr, ETH_ZLEN};
use flowtable::{FdbKey, FlowCache, FlowKey, Gens, Learn, PortId, Stamp, WorkerFdb};

use crate::config::EgressTag;
use crate::counters::{Counters, DropReason};
pub use crate::forward::Polled;
use crate::pool::{Desc, Pool};
use crate::port::{Port, BURST};

/// A forwarding decision, as cached per (ingress port, network, destination MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// To one port.
    Unicast(PortId),
    /// To every other port of the network.
    Flood,
    /// Dropped.
    Drop(DropReason),
}

/// Per-frame state between stages.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Where the frame entered: the receiving port, or for a decapsulated frame the
    /// tunnel port of its remote VTEP. Learning and forwarding use it.
    in_port: PortId,
    /// It came out of a tunnel (split horizon: never back into one).
    from_tunnel: bool,
    /// Flood to local ports only: an ARP request the ARP responder answered (Neutron
    /// sends it to the network's other local ports, not to the tunnels).
    local_only: bool,
    /// Consumed by the switch itself (ARP/ND for the local VTEP): neither forwarded nor
    /// counted as a drop.
    consumed: bool,
    /// Network index, valid when `drop` is `None`.
    net: u16,
    /// The frame's outer tag as received (priority tags included), if any.
    tag: Option<VlanTag>,
    dst: MacAddr,
    src: MacAddr,
    drop: Option<DropReason>,
    action: Action,
    /// Why the frame left nowhere at the output stage (no buffer, rewrite, full queue).
    egress_drop: Option<DropReason>,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            in_port: PortId(0),
            from_tunnel: false,
            local_only: false,
            consumed: false,
            net: 0,
            tag: None,
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            drop: None,
            action: Action::Flood,
            egress_drop: None,
        }
    }
}

/// A token bucket of one port on one worker: storm control, learning rate.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    tokens: u64,
    /// Time up to which tokens were credited (ns).
    credited: u64,
}

impl Bucket {
    /// Takes one token at `rate` per second (bursts up to a tenth of a second's worth,
    /// at least one); false when none is left.
    #[inline]
    fn take(&mut self, rate: u32, now: u64) -> bool {
        self.refill(rate, now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Whether a token is left, without taking it.
    #[inline]
    fn has(&mut self, rate: u32, now: u64) -> bool {
        self.refill(rate, now);
        self.tokens > 0
    }

    #[inline]
    fn refill(&mut self, rate: u32, now: u64) {
        let rate = u64::from(rate.max(1));
        let cap = (rate / 10).max(1);
        let elapsed = now.saturating_sub(self.credited);
        // u128: elapsed × rate overflows u64 after ~3 minutes at 100 Mpps.
        let add = (u128::from(elapsed) * u128::from(rate) / 1_000_000_000) as u64;
        if add == 0 {
            return;
        }
        if self.tokens + add >= cap {
            self.tokens = cap;
            self.credited = now;
        } else {
            self.tokens += add;
            // Credit only the time those tokens took, so that no fraction is lost.
            self.credited += add * 1_000_000_000 / rate;
        }
    }
}

/// Rate-limit state of one port on one worker.
#[derive(Debug, Clone, Copy, Default)]
struct PortBuckets {
    /// Storm control: flooded frames.
    storm: Bucket,
    /// New MACs learned.
    learn: Bucket,
}

/// Frames staged for one egress port during a batch.
#[derive(Debug)]
struct TxQueue {
    descs: [Desc; BURST],
    len: usize,
}

/// One worker's switching pipeline.
#[derive(Debug)]
pub struct Pipeline {
    tables: Tables,
    fdb: WorkerFdb,
    cache: FlowCache<Action>,
    counters: Counters,
    meta: [Meta; BURST],
    txq: Vec<TxQueue>,
    /// Per remote VTEP: its next hop's MAC and encap templates.
    vteps: Vec<VtepState>,
    /// Underlay next hops: IP → MAC, with frames waiting for a resolution.
    neigh: NeighborCache<Pending>,
    /// The other workers' neighbour news.
    peers: Option<NeighborPeers>,
    /// IPv4 ID of outer headers sent with DF clear (RFC 6864: it must vary).
    ip_id: u16,
    /// The time of the batch or poll being processed (ns).
    now: u64,
    /// When the VTEPs' next hops were last checked against the neighbour cache.
    neigh_checked: u64,
    /// Per port number: storm control and learning-rate buckets.
    buckets: Vec<PortBuckets>,
    /// The XDP fast path's offer queue, when it is on.
    fast: Option<FastHook>,
}

impl Pipeline {
    /// A pipeline over `tables` with its FDB replica and flow cache.
    pub fn new(tables: Tables, fdb: WorkerFdb, cache: FlowCache<Action>) -> Self {
        let n = tables.ports.len();
        let mut p = Pipeline {
            counters: Counters::new(tables.port_count()),
            txq: (0..n)
                .map(|_| TxQueue {
                    descs: [Desc::EMPTY; BURST],
                    len: 0,
                })
                .collect(),
            vteps: Vec::new(),
            neigh: NeighborCache::new(tunnel::neigh_capacity(&tables)),
            peers: None,
            tables,
            fdb,
            cache,
            meta: [Meta::default(); BURST],
            ip_id: 0,
            now: 0,
            neigh_checked: 0,
            buckets: vec![PortBuckets::default(); n],
            fast: None,
        };
        p.rebuild_vteps();
        p.set_vlan_limits();
        p
    }

    /// The decision of the first frame of the last batch: the action it took, or the
    /// reason it was dropped before forwarding (for `trace` and offline use); neither
    /// for a frame the switch consumed (ARP/ND for the local VTEP).
    pub fn last_decision(&self) -> (Option<Action>, Option<DropReason>) {
        let m = &self.meta[0];
        if m.consumed {
            return (None, None);
        }
        match (m.drop, m.action) {
            (Some(r), _) => (None, Some(r)),
            (None, Action::Drop(r)) => (Some(Action::Drop(r)), Some(r)),
            (None, a) => (Some(a), m.egress_drop),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The compiled configuration in use.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The FDB replica.
    pub fn fdb(&self) -> &WorkerFdb {
        &self.fdb
    }

    /// The FDB replica, for the control plane (static entries, flush).
    pub fn fdb_mut(&mut self) -> &mut WorkerFdb {
        &mut self.fdb
    }

    /// Counts a frame dropped before it reached the pipeline (no buffer for it).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drop(reason);
    }

    /// Zeroes the counters of port `port` (removed from a running switch).
    pub fn clear_port_counters(&mut self, port: PortId) {
        if let Some(c) = self.counters.ports.get_mut(port.index()) {
            *c = Default::default();
        }
    }

    /// Replaces the configuration; cached decisions of the old one are never served
    /// again (the generation is part of their stamp).
    pub fn set_tables(&mut self, tables: Tables) {
        let n = tables.ports.len();
        self.counters
            .ports
            .resize(tables.port_count(), Default::default());
        self.tables = tables;
        self.txq.resize_with(n, || TxQueue {
            descs: [Desc::EMPTY; BURST],
            len: 0,
        });
        self.buckets.resize(n, PortBuckets::default());
        self.rebuild_vteps();
        self.set_vlan_limits();
    }

    /// The networks' learning limits, into the FDB replica.
    fn set_vlan_limits(&mut self) {
        let limits = self.tables.nets.iter().map(|n| (n.local_vlan, n.mac_limit));
        self.fdb.set_vlan_limits(limits);
    }

    /// Receives one burst from every port and switches it: the worker's poll.
    /// Returns the number of frames received.
    pub fn poll<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool, now: u64) -> usize {
        self.poll_bursts(ports, pool, now).packets
    }

    /// [`Pipeline::poll`], also counting the non-empty bursts the frames came in.
    pub fn poll_bursts<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool, now: u64) -> Polled {
        self.now = now;
        self.fdb.apply_updates(now, 64);
        self.neigh_poll(pool);
        let mut descs = [Desc::EMPTY; BURST];
        let mut polled = Polled::default();
        for i in 0..ports.len() {
            let n = ports[i].rx_burst(pool, &mut descs);
            if n > 0 {
                polled.packets += n;
                polled.batches += 1;
                self.process(PortId(i as u16), &descs[..n], pool, now);
                self.flush_tx(ports, pool);
            }
        }
        self.fdb.age(now, 64);
        let gens = Gens {
            config: self.tables.generation,
            vlans: self.fdb.fdb().vlan_gens(),
        };
        self.cache.sweep(&gens, now, 16);
        // Neighbour requests and frames released by a resolution.
        self.flush_tx(ports, pool);
        polled
    }

    /// Switches a batch received on `in_port` and stages the results per egress port;
    /// [`Pipeline::flush_tx`] hands them to the ports.
    pub fn process(&mut self, in_port: PortId, descs: &[Desc], pool: &mut Pool, now: u64) {
        self.now = now;
        // A batch is at most BURST frames: anything beyond is dropped, never leaked.
        let (descs, excess) = descs.split_at(descs.len().min(BURST));
        for &d in excess {
            self.counters.drop(DropReason::NoBuffer);
            pool.free(d);
        }
        if in_port.index() >= self.tables.ports.len() {
            self.meta[0] = Meta {
                drop: Some(DropReason::NoPort),
                ..Meta::default()
            };
            for &d in descs {
                self.counters.drop(DropReason::NoPort);
                pool.free(d);
            }
            return;
        }
        {
            let pc = &mut self.counters.ports[in_port.index()];
            for d in descs {
                pc.rx_frames += 1;
                pc.rx_bytes += d.len() as u64;
            }
        }
        // Decapsulation moves a frame's start: the stages work on a copy of the batch.
        let mut ds = [Desc::EMPTY; BURST];
        let ds = &mut ds[..descs.len()];
        ds.copy_from_slice(descs);
        if matches!(
            self.tables.ports[in_port.index()].ingress,
            Ingress::Underlay
        ) {
            self.classify_underlay(ds, pool);
        } else {
            self.classify(in_port, ds, pool);
        }
        self.learn(ds.len(), now);
        self.forward(ds.len(), now);
        self.output(ds, pool);
        if self.fast.is_some() {
            self.offer_fast(ds.len(), now);
        }
        // A next hop that started resolving in this batch is asked for at once.
        if self.tables.underlay.is_some() {
            self.neigh_poll(pool);
        }
    }

    /// Stage 1: network of each frame, or why it is dropped (frames of the underlay port:
    /// [`Pipeline::classify_underlay`]).
    fn classify(&mut self, in_port: PortId, descs: &mut [Desc], pool: &mut Pool) {
        let ingress = &self.tables.ports[in_port.index()].ingress;
        let prefetch = self.fdb.fdb().warm_pays();
        // Every frame of the batch came in on the same port: an access port's network
        // is read once, not matched per frame.
        let access = match ingress {
            Ingress::Access { net } => Some(*net),
            _ => None,
        };
        for (m, &d) in self.meta.iter_mut().zip(descs.iter()) {
            *m = Meta {
                in_port,
                ..Meta::default()
            };
            let data = pool.data(d);
            let l2 = match parse_l2(data) {
                Ok(l2) => l2,
                Err(e) => {
                    m.drop = Some(match (e.layer, e.kind) {
                        (encap::Layer::Vlan, encap::ErrorKind::BadValue) => DropReason::ReservedVid,
                        (encap::Layer::Vlan, encap::ErrorKind::Unsupported) => {
                            DropReason::UnsupportedTag
                        }
                        _ => DropReason::Malformed,
                    });
                    continue;
                }
            };
            m.dst = l2.dst;
            m.src = l2.src;
            m.tag = l2.tags[0];
            // A VM's TX checksum offload leaves TCP/UDP checksums partial on a veth/tap
            // (AF_XDP carries no checksum metadata): finish them before they leave.
            // Only IPv4 and IPv6 can carry a partial checksum: naming them directly
            // spares a conversion of every EtherType back to its number.
            let et = match l2.ethertype {
                EtherType::Ipv4 => 0x0800,
                EtherType::Ipv6 => 0x86dd,
                _ => 0,
            };
            if encap::checksum::may_be_partial(data, l2.l3_offset, et)
                && encap::checksum::complete_partial(pool.frame(d).data_mut(), l2.l3_offset, et)
            {
                self.counters.checksums_completed += 1;
            }
            if l2.tags[1].is_some() || l2.tags[0].is_some_and(|t| t.tpid != Tpid::Dot1Q) {
                m.drop = Some(DropReason::UnsupportedTag);
                continue;
            }
            if !l2.src.is_unicast() {
                m.drop = Some(DropReason::InvalidSource);
                continue;
            }
            if is_reserved_multicast(l2.dst) {
                m.drop = Some(DropReason::ReservedMulticast);
                continue;
            }
            let vid = m.tag.and_then(|t| t.vid);
            let class = match (access, vid) {
                (Some(net), None) => Ok(net),
                _ => ingress.classify(vid),
            };
            match class {
                Ok(net) => {
                    m.net = net;
                    if prefetch {
                        // Learning and forwarding probe these two buckets: start
                        // their misses now, under the rest of the batch's parsing.
                        let vlan = self.tables.nets[usize::from(net)].local_vlan;
                        let fdb = self.fdb.fdb();
                        fdb.prefetch(FdbKey::new(vlan, m.src));
                        fdb.prefetch(FdbKey::new(vlan, m.dst));
                    }
                }
                Err(r) => m.drop = Some(r),
            }
            if m.drop.is_none()
                && l2.ethertype == EtherType::Arp
                && l2.dst.is_broadcast()
                && !self.tables.arp.is_empty()
            {
                m.local_only =
                    arp_answer(&self.tables, m.net, &pool.data(d)[l2.l3_offset..]).is_some();
            }
        }
        if self.tables.ports[in_port.index()].security.is_some() {
            self.port_security(in_port, descs, pool);
        }
        if !self.tables.arp.is_empty() {
            self.arp_respond(in_port, descs, pool);
        }
    }

    /// Port security over a classified batch of a secured port: a frame from a source
    /// the port does not own is dropped (and is neither learned nor answered by the ARP
    /// responder). A pass of its own, so that unsecured ports pay one branch per batch.
    #[inline(never)]
    fn port_security(&mut self, in_port: PortId, descs: &[Desc], pool: &Pool) {
        let Some(sec) = self.tables.ports[in_port.index()].security.as_deref() else {
            return;
        };
        for (m, &d) in self.meta.iter_mut().zip(descs.iter()) {
            if m.drop.is_some() {
                continue;
            }
            // Classify parsed it already: one 802.1Q tag at most (anything more was
            // dropped), so the EtherType and L3 follow the tag or the MAC addresses.
            let l3_offset = if m.tag.is_some() { 18 } else { 14 };
            let data = pool.data(d);
            let Some(&[a, b]) = data.get(l3_offset - 2..l3_offset) else {
                continue;
            };
            let l3 = data.get(l3_offset..).unwrap_or(&[]);
            if let Err(r) = sec.check(m.src, EtherType::from(u16::from_be_bytes([a, b])), l3) {
                m.drop = Some(r);
                m.local_only = false;
            }
        }
    }

    /// Stage 2: learn every source before any destination is looked up. A port over
    /// its learning-rate cap still refreshes the sources it has, but a new one (or a
    /// move) is forwarded without being learned.
    fn learn(&mut self, n: usize, now: u64) {
        let caps = self.tables.learn_caps;
        for m in &mut self.meta[..n] {
            if m.drop.is_some() || m.consumed {
                continue;
            }
            let vlan = self.tables.nets[usize::from(m.net)].local_vlan;
            if caps && !under_learn_cap(&self.tables, &mut self.buckets, &self.fdb, m, vlan, now) {
                self.counters.learn_rate_limited += 1;
                continue;
            }
            let r = self.fdb.learn(vlan, m.src, m.in_port, now);
            if caps && matches!(r, Learn::New | Learn::Moved { .. }) {
                take_learn_token(&self.tables, &mut self.buckets, m.in_port, now);
            }
            match r {
                Learn::New => self.counters.learned += 1,
                Learn::Moved { .. } => self.counters.moves += 1,
                Learn::StaticMismatch => m.drop = Some(DropReason::StaticMove),
                Learn::TableFull => self.counters.learn_table_full += 1,
                Learn::PortLimit => self.counters.learn_port_limit += 1,
                Learn::VlanLimit => self.counters.learn_network_limit += 1,
                _ => {}
            }
        }
    }

    /// Stage 3: the decision per frame, from the flow cache or the FDB. Cache misses are
    /// set aside and resolved together with one batched FDB probe, so that their memory
    /// accesses overlap instead of stalling one after the other.
    fn forward(&mut self, n: usize, now: u64) {
        // Generations are read once per batch, after learning.
        let gens = Gens {
            config: self.tables.generation,
            vlans: self.fdb.fdb().vlan_gens(),
        };
        let Some(v0) = self.tables.nets.first().map(|n| n.local_vlan) else {
            return;
        };
        let mut hashes = [0u64; BURST];
        let mut miss = [0u8; BURST];
        let mut fkeys = [FdbKey::new(v0, MacAddr::ZERO); BURST];
        let mut nmiss = 0;
        for (i, m) in self.meta[..n].iter_mut().enumerate() {
            if m.drop.is_some() || m.consumed {
                continue;
            }
            let vlan = self.tables.nets[usize::from(m.net)].local_vlan;
            // Inserts build the key again: a key that also went to an insert (or to an
            // array for the misses) stayed in memory on the hit path too, its MAC read
            // back byte by byte for the hash.
            let key = FlowKey {
                in_port: m.in_port,
                vid: vlan.get(),
                dst: m.dst,
            };
            let hash = key.hash();
            if let Some(a) = self.cache.lookup(&key, hash, &gens, now) {
                self.counters.cache_hits += 1;
                m.action = a;
                continue;
            }
            self.counters.cache_misses += 1;
            if m.dst.is_multicast() {
                let stamp = Stamp::new(&gens, Some(vlan), u64::MAX);
                let key = FlowKey {
                    in_port: m.in_port,
                    vid: vlan.get(),
                    dst: m.dst,
                };
                self.cache.insert_sampled(&key, hash, Action::Flood, stamp);
                m.action = Action::Flood;
                continue;
            }
            hashes[i] = hash;
            miss[nmiss] = i as u8;
            fkeys[nmiss] = FdbKey::new(vlan, m.dst);
            nmiss += 1;
        }
        if nmiss == 0 {
            return;
        }
        let mut hits = [None; BURST];
        self.fdb
            .fdb()
            .lookup_hit_batch(&fkeys[..nmiss], now, &mut hits[..nmiss]);
        for (&i, hit) in miss[..nmiss].iter().zip(&hits[..nmiss]) {
            let i = usize::from(i);
            let m = &mut self.meta[i];
            let vlan = self.tables.nets[usize::from(m.net)].local_vlan;
            let (action, deadline) = match *hit {
                Some(hit) if hit.port == m.in_port => {
                    (Action::Drop(DropReason::SamePort), hit.deadline_ns)
                }
                Some(hit) if m.from_tunnel && self.tables.vtep_of(hit.port).is_some() => {
                    (Action::Drop(DropReason::SplitHorizon), hit.deadline_ns)
                }
                // An entry on a port that no longer carries the network (a stale entry
                // after a reconfiguration): as if unknown.
                Some(hit) if self.tables.egress(hit.port, m.net).is_none() => {
                    (Action::Flood, hit.deadline_ns)
                }
                Some(hit) => (Action::Unicast(hit.port), hit.deadline_ns),
                None => (Action::Flood, u64::MAX),
            };
            let stamp = Stamp::new(&gens, Some(vlan), deadline);
            let key = FlowKey {
                in_port: m.in_port,
                vid: vlan.get(),
                dst: m.dst,
            };
            self.cache.insert_sampled(&key, hashes[i], action, stamp);
            m.action = action;
        }
    }

    /// Has this pipeline offer its known-unicast decisions to the XDP fast path.
    pub fn set_fastpath(&mut self, hook: FastHook) {
        self.fast = Some(hook);
    }

    /// After output: offers the batch's known-unicast decisions to the fast path (each
    /// flow at most once per re-offer period), with the generations they were taken
    /// under: between two local ports, into a VXLAN or GRE tunnel over IPv4 or IPv6
    /// (with the template), out of one. Frames the fast path must not take are not
    /// offered: from a secured port, priority-tagged, dropped at egress, a tunnel whose
    /// outer ID varies (DF clear), whose GRE options need per-frame state (checksum,
    /// sequence numbers) or whose next hop is unresolved. Out of line: only with the
    /// fast path on.
    #[inline(never)]
    fn offer_fast(&mut self, n: usize, now: u64) {
        let Some(h) = self.fast.as_mut() else {
            return;
        };
        let cfg_gen = self.tables.generation;
        for m in &self.meta[..n] {
            let Action::Unicast(out) = m.action else {
                continue;
            };
            if m.drop.is_some() || m.consumed || m.local_only || m.egress_drop.is_some() {
                continue;
            }
            let net = &self.tables.nets[usize::from(m.net)];
            let vlan = net.local_vlan;
            // How the frame arrived: tagged, untagged, or out of a VXLAN or GRE tunnel.
            let (seg, gre) = if m.from_tunnel {
                match net.overlay {
                    Some(Overlay::Vxlan(vni)) => (crate::fastpath::seg_vni(vni.get()), false),
                    Some(Overlay::Gre(key)) => (key.get(), true),
                    None => continue,
                }
            } else {
                let Some(pe) = self.tables.ports.get(m.in_port.index()) else {
                    continue;
                };
                if pe.security.is_some()
                    || !matches!(pe.ingress, Ingress::Access { .. } | Ingress::Trunk { .. })
                {
                    continue;
                }
                match m.tag {
                    None => (0, false),
                    Some(VlanTag { vid: Some(v), .. }) => {
                        (crate::fastpath::seg_tagged(v.get()), false)
                    }
                    Some(_) => continue,
                }
            };
            let tagged = seg != 0 && !m.from_tunnel;
            let (op, vid_out, out_dev, tunnel) = match self.tables.egress(out, m.net) {
                Some(Egress::Tag(e)) => match (tagged, e) {
                    (false, EgressTag::Untagged) => (FastOp::None, 0, out, None),
                    (true, EgressTag::Untagged) => (FastOp::Pop, 0, out, None),
                    (true, EgressTag::Tagged(v)) => (FastOp::Xlate, v.get(), out, None),
                    (false, EgressTag::Tagged(v)) => (FastOp::Push, v.get(), out, None),
                },
                Some(Egress::Tunnel(v)) if !m.from_tunnel => {
                    let (Some(overlay), Some(u)) = (net.overlay, self.tables.underlay.as_ref())
                    else {
                        continue;
                    };
                    let Some(st) = self.vteps.get(usize::from(v)) else {
                        continue;
                    };
                    // The template, whether it is IPv6 and DF, its largest inner frame.
                    let (id, gre, t) = match overlay {
                        Overlay::Vxlan(vni) => match st.vxlan.as_ref() {
                            Some(t) => (
                                vni.get(),
                                false,
                                (t.header(), t.is_v6(), t.df(), t.max_inner_len()),
                            ),
                            None => continue,
                        },
                        Overlay::Gre(key) => match st.gre.as_ref() {
                            Some(t) if t.options() == encap::tunnel::GreOptions::default() => (
                                key.get(),
                                true,
                                (t.header(), t.is_v6(), t.df(), t.max_inner_len()),
                            ),
                            _ => continue,
                        },
                    };
                    let (header, v6, df, max_inner) = t;
                    let tun = crate::fastpath::Tun::new(v6, gre);
                    if (!v6 && !df) || header.len() != tun.hdr_len() {
                        continue;
                    }
                    let mut hdr = [0u8; crate::fastpath::FP_HDR_MAX];
                    hdr[..header.len()].copy_from_slice(header);
                    let e = EncapOffer {
                        vni: id,
                        tunnel_port: out,
                        max_inner: max_inner as u32,
                        tun,
                        hdr,
                        neigh_gen: h.neigh_gen(),
                    };
                    (FastOp::Encap, 0, u.port, Some(e))
                }
                _ => continue,
            };
            let vlan_gen = h.vlan_gen(vlan.get());
            let key = flowtable::hash::hash_u64_pair(
                m.dst.to_u64() | u64::from(gre) << 48,
                u64::from(m.in_port.0) << 32 | u64::from(seg),
            );
            if h.recently_offered(key, vlan_gen, cfg_gen, now) {
                continue;
            }
            let fdb = self.fdb.fdb();
            let Some(hit) = fdb.lookup_hit(FdbKey::new(vlan, m.dst), now) else {
                continue;
            };
            if hit.port != out {
                continue;
            }
            let src = (fdb.lookup(vlan, m.src, now) == Some(m.in_port)).then_some(m.src);
            h.offer(Offer {
                in_port: m.in_port,
                seg,
                gre,
                dst: m.dst,
                out_port: out_dev,
                op,
                vid_out,
                vlan: vlan.get(),
                vlan_gen,
                cfg_gen,
                expires: hit.deadline_ns,
                src,
                tunnel,
            });
        }
    }

    /// Stage 4: rewrites and staging per egress port.
    fn output(&mut self, descs: &[Desc], pool: &mut Pool) {
        for (i, &d) in descs.iter().enumerate() {
            let m = self.meta[i];
            if m.consumed {
                pool.free(d);
                continue;
            }
            let r = match (m.drop, m.action) {
                (Some(r), _) | (None, Action::Drop(r)) => {
                    pool.free(d);
                    Err(r)
                }
                (None, Action::Unicast(p)) => {
                    self.counters.unicast += 1;
                    self.emit_inline(p, m.net, m.tag, d, pool)
                }
                (None, Action::Flood)
                    if self.tables.storm_limits && !self.storm_allows(m.in_port) =>
                {
                    pool.free(d);
                    Err(DropReason::StormControl)
                }
                (None, Action::Flood) => {
                    self.counters.flooded += 1;
                    self.flood(
                        m.in_port,
                        m.from_tunnel || m.local_only,
                        m.net,
                        m.tag,
                        d,
                        pool,
                    )
                }
            };
            if let Err(r) = r {
                self.counters.drop(r);
                if m.drop.is_none() && !matches!(m.action, Action::Drop(_)) {
                    self.meta[i].egress_drop = Some(r);
                }
            }
        }
    }

    /// Storm control: whether `port` may flood one more frame now.
    #[inline(never)]
    fn storm_allows(&mut self, port: PortId) -> bool {
        let i = port.index();
        match self.tables.ports.get(i).map_or(0, |p| p.storm_pps) {
            0 => true,
            rate => self.buckets[i].storm.take(rate, self.now),
        }
    }

    /// Sends `d` to every other port of `net` (to no tunnel port with `no_tunnels`: it
    /// came from one, or the ARP responder answered it):
    /// copies for all but the last port, the original to the last. An error (the last
    /// port's reason, for the caller to count) only when nothing left; failures of the
    /// other copies are counted here.
    fn flood(
        &mut self,
        in_port: PortId,
        no_tunnels: bool,
        net: u16,
        tag: Option<VlanTag>,
        d: Desc,
        pool: &mut Pool,
    ) -> Result<(), DropReason> {
        let n = self.tables.nets[usize::from(net)].members.len();
        let (mut last, mut sent) = (None, false);
        for idx in 0..n {
            let p = self.tables.nets[usize::from(net)].members[idx];
            if p == in_port || (no_tunnels && self.tables.vtep_of(p).is_some()) {
                continue;
            }
            if let Some(prev) = last.replace(p) {
                let r = match pool.clone_desc(d) {
                    Some(copy) => self.emit(prev, net, tag, copy, pool),
                    None => Err(DropReason::NoBuffer),
                };
                match r {
                    Ok(()) => sent = true,
                    Err(r) => self.counters.drop(r),
                }
            }
        }
        let Some(p) = last else {
            // The network has no other port: nothing to send, nothing dropped.
            pool.free(d);
            return Ok(());
        };
        match (self.emit(p, net, tag, d, pool), sent) {
            (Ok(()), _) => Ok(()),
            (Err(r), true) => {
                self.counters.drop(r);
                Ok(())
            }
            (Err(r), false) => Err(r),
        }
    }

    /// Rewrites `d` for `port` and stages it; on failure `d` is freed and the reason
    /// returned for the caller to count.
    fn emit(
        &mut self,
        port: PortId,
        net: u16,
        tag: Option<VlanTag>,
        d: Desc,
        pool: &mut Pool,
    ) -> Result<(), DropReason> {
        self.emit_inline(port, net, tag, d, pool)
    }

    /// [`Pipeline::emit`] inlined into its caller: the known-unicast path of the
    /// output stage, where the call (arguments, saved registers) cost about 20
    /// instructions a frame.
    #[inline(always)]
    fn emit_inline(
        &mut self,
        port: PortId,
        net: u16,
        tag: Option<VlanTag>,
        d: Desc,
        pool: &mut Pool,
    ) -> Result<(), DropReason> {
        let r = self.stage(port, net, tag, d, pool);
        if r.is_err() {
            pool.free(d);
        }
        r
    }

    #[inline(always)]
    fn stage(
        &mut self,
        port: PortId,
        net: u16,
        tag: Option<VlanTag>,
        d: Desc,
        pool: &mut Pool,
    ) -> Result<(), DropReason> {
        // A port that does not carry the network never gets its frames.
        let egress = match self.tables.egress(port, net).ok_or(DropReason::NoPort)? {
            Egress::Tag(e) => e,
            Egress::Tunnel(v) => return self.stage_tunnel(v, net, tag, d, pool),
        };
        let q = &mut self.txq[port.index()];
        if q.len == BURST {
            return Err(DropReason::TxFull);
        }
        if tag.is_none() && egress == EgressTag::Untagged && d.len() >= ETH_ZLEN {
            // Nothing to rewrite (no tag to pop, no padding): the frame leaves as it
            // came, without a frame handle. A descriptor the pool made lies inside its
            // chunk, so the handle would have kept its head and length.
            q.descs[q.len] = d;
            q.len += 1;
            return Ok(());
        }
        let mut f = pool.frame(d);
        rewrite(&mut f, tag, egress).map_err(|_| DropReason::RewriteFailed)?;
        q.descs[q.len] = d.settle(&f);
        q.len += 1;
        Ok(())
    }

    /// Hands the staged frames to their ports, one call per port.
    pub fn flush_tx<P: Port>(&mut self, ports: &mut [P], pool: &mut Pool) {
        for (i, q) in self.txq.iter_mut().enumerate() {
            let n = std::mem::take(&mut q.len);
            if n == 0 {
                continue;
            }
            let batch = &q.descs[..n];
            let (sent, reason) = match ports.get_mut(i) {
                Some(port) if port.is_up() => (port.tx_burst(pool, batch), DropReason::TxFull),
                Some(_) => (0, DropReason::PortDown),
                None => (0, DropReason::NoPort),
            };
            let pc = &mut self.counters.ports[i];
            for d in &batch[..sent] {
                pc.tx_frames += 1;
                pc.tx_bytes += d.len() as u64;
            }
            for &d in &batch[sent..] {
                self.counters.drop(reason);
                pool.free(d);
            }
        }
    }
}

/// Whether the frame's port may teach the switch its source now: it has learning
/// tokens left, or already owns the source (a refresh). Out of line: only with caps.
#[inline(never)]
fn under_learn_cap(
    tables: &Tables,
    buckets: &mut [PortBuckets],
    fdb: &WorkerFdb,
    m: &Meta,
    vlan: encap::VlanId,
    now: u64,
) -> bool {
    let i = m.in_port.index();
    match tables.ports.get(i).map_or(0, |p| p.learn_rate) {
        0 => true,
        rate => {
            buckets[i].learn.has(rate, now) || fdb.fdb().lookup(vlan, m.src, now) == Some(m.in_port)
        }
    }
}

/// A new MAC or a move was learned from `port`: one of its learning tokens.
#[inline(never)]
fn take_learn_token(tables: &Tables, buckets: &mut [PortBuckets], port: PortId, now: u64) {
    let i = port.index();
    let rate = tables.ports.get(i).map_or(0, |p| p.learn_rate);
    if rate != 0 {
        buckets[i].learn.take(rate, now);
    }
}

/// The l2population ARP responder's answer to an ARP request (`arp`: the ARP packet)
/// in network `net`: the MAC of the asked-for IP, if configured.
fn arp_answer(tables: &Tables, net: u16, arp: &[u8]) -> Option<(encap::arp::ArpRepr, MacAddr)> {
    let p = encap::arp::Packet::new_checked(arp).ok()?;
    let r = encap::arp::ArpRepr::parse(&p).ok()?;
    if r.operation != encap::arp::Operation::Request || !r.sender_mac.is_unicast() {
        return None;
    }
    let mac = tables.arp.get(&tables::arp_key(net, r.target_ip))?;
    Some((r, *mac))
}

/// 01:80:c2:00:00:00–0f: IEEE 802.1D link-local control frames (STP, pause, LACP, 802.1X,
/// LLDP). A bridge does not forward them; Open vSwitch drops them with its default
/// `forward-bpdu=false`, and so does br-int.
#[inline]
pub fn is_reserved_multicast(dst: MacAddr) -> bool {
    dst.to_u64() & !0xf == 0x0180_c200_0000
}

/// The 802.1Q rewrite for a frame that arrived with `tag` (priority tags included) and
/// leaves with `egress`: trunks keep PCP and DEI; every frame leaves at least 60 bytes long
/// (an untagged frame is padded before a tag is pushed, as a NIC would have padded it).
#[inline(always)]
pub fn rewrite<B: AsRef<[u8]> + AsMut<[u8]>>(
    f: &mut Frame<B>,
    tag: Option<VlanTag>,
    egress: EgressTag,
) -> Result<(), encap::Error> {
    match (tag, egress) {
        (Some(_), EgressTag::Untagged) => vlan::pop(f).map(|_| ()),
        (None, EgressTag::Untagged) => f.pad_to(ETH_ZLEN),
        (Some(_), EgressTag::Tagged(vid)) => {
            vlan::translate(f, vid)?;
            f.pad_to(ETH_ZLEN)
        }
        (None, EgressTag::Tagged(vid)) => {
            f.pad_to(ETH_ZLEN)?;
            vlan::push(f, VlanTag::dot1q(vid))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, PortIdx};
    use crate::offline::OfflineSwitch;

    #[test]
    fn reserved_multicast_range() {
        assert!(is_reserved_multicast(MacAddr([
            0x01, 0x80, 0xc2, 0, 0, 0x00
        ])));
        assert!(is_reserved_multicast(MacAddr([
            0x01, 0x80, 0xc2, 0, 0, 0x0e
        ])));
        assert!(!is_reserved_multicast(MacAddr([
            0x01, 0x80, 0xc2, 0, 0, 0x10
        ])));
        assert!(!is_reserved_multicast(MacAddr::BROADCAST));
    }

    #[test]
    fn stp_bpdu_is_neither_forwarded_nor_learned() {
        let cfg = Config::from_str(
            "[[network]]\nname = \"n\"\nsegment = \"local\"\n\
             [[port]]\nname = \"a\"\nmode = \"access\"\nnetwork = \"n\"\n\
             [[port]]\nname = \"b\"\nmode = \"access\"\nnetwork = \"n\"\n",
            "t.toml",
        )
        .unwrap();
        let mut sw = OfflineSwitch::new(cfg).unwrap();
        let mut bpdu = vec![
            0x01, 0x80, 0xc2, 0, 0, 0, 0x02, 0, 0, 0, 0, 0x01, 0x00, 0x26,
        ];
        bpdu.resize(60, 0x42);
        let o = sw.inject(PortIdx(0), &bpdu, 1);
        assert!(o.sent.is_empty());
        assert_eq!(o.dropped, Some(DropReason::ReservedMulticast));
        assert_eq!(sw.pipeline().counters().learned, 0);
        assert_eq!(
            sw.pipeline()
                .counters()
                .dropped(DropReason::ReservedMulticast),
            1
        );
    }
}
