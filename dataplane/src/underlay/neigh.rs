//! The underlay neighbour cache: remote VTEP or gateway IP → MAC, resolved by ARP / ND.
//!
//! Why a cache of our own: the switch owns its underlay NIC through AF_XDP, so the
//! kernel's neighbour table never sees the tunnel traffic, and the first frames toward a
//! VTEP would otherwise be lost while nobody resolves it (a recurring complaint about
//! tunnels). The cache resolves, holds a few frames while it does, and forgets nothing
//! silently: every queued item comes back exactly once, either released with the MAC or
//! handed back as a drop.
//!
//! States and timers (Linux `net/core/neighbour.c` defaults where it has one):
//!
//! | state | forwarding | leaves it when |
//! |---|---|---|
//! | `Static` | yes | never (configured; replies do not change it) |
//! | `Reachable` | yes | [`REACHABLE_TIME_NS`] (30 s, Linux `base_reachable_time`) after the last confirmation → `Stale` |
//! | `Stale` | yes | a lookup schedules a refresh: up to [`MAX_REQUESTS`] requests [`RETRANS_TIME_NS`] apart (Linux PROBE, `ucast_probes` 3, `retrans_time` 1 s); a confirmation → `Reachable`, none → `Failed` |
//! | `Incomplete` | no, up to `Q` items wait | a request at the next `poll`, retried every [`RETRANS_TIME_NS`], [`MAX_REQUESTS`] in all (Linux `mcast_solicit` 3); a confirmation releases the items in order, none → `Failed` and the items are dropped |
//! | `Failed` | no | [`HOLD_DOWN_NS`] (5 s) during which enqueues are refused at once (ours: Linux retries at the next packet, which turns a dead VTEP into a request storm); then the next enqueue starts over |
//!
//! So an item waits at most [`MAX_REQUESTS`] × [`RETRANS_TIME_NS`] (3 s) plus the gap
//! between two polls. Linux randomises the reachable time (0.5–1.5×) and sends the
//! refresh probes unicast after a 5 s DELAY state; we refresh at once with the same
//! broadcast/multicast request as a resolution (the caller builds both alike), which also
//! finds a neighbour whose MAC changed.
//!
//! Confirmations (`confirm`) only update entries that exist: like Linux with
//! `arp_accept=0`, an unsolicited reply or gratuitous ARP creates nothing, so hosts on the
//! underlay cannot fill the table. Unlike Linux, a request *for our address* creates
//! nothing either (Linux's `neigh_event_ns` does): the cache holds the VTEPs and the
//! gateway the switch sends to, and those are resolved on first use. Every confirmation
//! makes the entry `Reachable` (Linux makes unsolicited ones `Stale`); a MAC that is not
//! unicast is ignored.
//!
//! Memory: everything is allocated by [`NeighborCache::new`]: a slot array of `capacity`
//! entries, each with a fixed queue `[Option<T>; Q]`, and an index
//! ([`hashbrown::HashTable`] of slot numbers) sized for twice the capacity, so that
//! rehashing after evictions always happens in place. When the table is full, a new IP
//! replaces the entry confirmed longest ago among those that are neither static nor
//! resolving (a linear scan: this happens only for a new VTEP or gateway); if every entry
//! is static or resolving, the new one is refused.
//!
//! `poll` is cheap when nothing is due: the cache keeps the earliest deadline and returns
//! at once before it; otherwise it walks the slots.

use core::fmt;
use core::net::IpAddr;

use encap::MacAddr;
use flowtable::hash::{hash_u64, hash_u64_pair};
use hashbrown::HashTable;

/// One second in the cache's clock unit (nanoseconds).
pub const SEC: u64 = 1_000_000_000;
/// How long a confirmed entry is reachable (Linux `base_reachable_time`).
pub const REACHABLE_TIME_NS: u64 = 30 * SEC;
/// Time between two requests for one address (Linux `retrans_time`).
pub const RETRANS_TIME_NS: u64 = SEC;
/// Requests sent for one resolution or one refresh before giving up (Linux
/// `mcast_solicit` / `ucast_probes`).
pub const MAX_REQUESTS: u8 = 3;
/// How long a failed address refuses new items before it is tried again (ours).
pub const HOLD_DOWN_NS: u64 = 5 * SEC;
/// Items that may wait for one address by default. Linux queues up to 101 packets
/// (`unres_qlen`); ours hold frame buffers of a worker's bounded pool, so fewer.
pub const DEFAULT_QUEUE_LEN: usize = 8;

const NEVER: u64 = u64::MAX;

/// What an entry is doing, as `ctl neigh show` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighState {
    /// Configured; never expires.
    Static,
    /// Confirmed less than [`REACHABLE_TIME_NS`] ago.
    Reachable,
    /// Confirmed longer ago; still used, refreshed when used.
    Stale,
    /// Being resolved; items may wait.
    Incomplete,
    /// Resolution failed; refused until the hold-down ends.
    Failed,
}

impl NeighState {
    /// A stable lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            NeighState::Static => "static",
            NeighState::Reachable => "reachable",
            NeighState::Stale => "stale",
            NeighState::Incomplete => "incomplete",
            NeighState::Failed => "failed",
        }
    }
}

impl fmt::Display for NeighState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborEntry {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its MAC, when known and usable (static, reachable, stale).
    pub mac: Option<MacAddr>,
    /// The state at the time given to [`NeighborCache::iter`].
    pub state: NeighState,
    /// Nanoseconds since the last confirmation (reachable, stale), since resolution
    /// started (incomplete) or since it failed (failed); 0 for a static entry.
    pub age_ns: u64,
    /// Items waiting.
    pub queued: usize,
}

/// Counters of one cache (one worker's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighCounters {
    /// Requests asked for through `poll`'s `solicit` (resolutions, retries, refreshes).
    pub requests: u64,
    /// Resolutions and refreshes that got no answer after [`MAX_REQUESTS`] requests.
    pub timeouts: u64,
    /// Items refused because the address's queue was full.
    pub queue_full: u64,
    /// Items refused because the address is in its hold-down after a failure.
    pub hold_down: u64,
    /// Items refused because the table was full of static and resolving entries.
    pub table_full: u64,
    /// Items queued, then dropped (resolution failed, or the address became static).
    pub queued_dropped: u64,
    /// Items queued, then released with the resolved MAC.
    pub released: u64,
    /// Entries replaced to make room for another address.
    pub evictions: u64,
    /// Confirmations for an address not in the table, static, or with a non-unicast MAC.
    pub ignored: u64,
}

/// A control-plane error of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NeighError {
    /// Every entry is static or resolving.
    #[error("neighbour table full ({capacity} entries are static or resolving): raise its size")]
    Full {
        /// The table's capacity.
        capacity: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Static,
    Resolved,
    Incomplete,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Slot<T, const Q: usize> {
    ip: IpAddr,
    mac: MacAddr,
    kind: Kind,
    /// Resolved: last confirmation; Incomplete: start; Failed: failure; Static: 0.
    since: u64,
    /// Requests sent in the current resolution or refresh.
    requests: u8,
    /// When `poll` has something to do for this entry, or `NEVER`.
    due: u64,
    queue: [Option<T>; Q],
    qlen: u8,
}

impl<T: Copy, const Q: usize> Slot<T, Q> {
    fn new(ip: IpAddr, kind: Kind, mac: MacAddr, since: u64, due: u64) -> Self {
        Slot {
            ip,
            mac,
            kind,
            since,
            requests: 0,
            due,
            queue: [None; Q],
            qlen: 0,
        }
    }

    fn state(&self, now: u64) -> NeighState {
        match self.kind {
            Kind::Static => NeighState::Static,
            Kind::Resolved if now < self.since.saturating_add(REACHABLE_TIME_NS) => {
                NeighState::Reachable
            }
            Kind::Resolved => NeighState::Stale,
            Kind::Incomplete => NeighState::Incomplete,
            Kind::Failed => NeighState::Failed,
        }
    }

    /// Hands every queued item to `f`, in the order they were queued; returns how many.
    fn drain(&mut self, mut f: impl FnMut(T)) -> u64 {
        let n = usize::from(self.qlen);
        for q in self.queue.iter_mut().take(n) {
            if let Some(item) = q.take() {
                f(item);
            }
        }
        self.qlen = 0;
        n as u64
    }
}

/// IP → MAC for the underlay, with resolution, refresh and a bounded wait queue per
/// address. `T` is what waits (a frame descriptor); `Q` how many per address.
#[derive(Debug)]
pub struct NeighborCache<T: Copy, const Q: usize = DEFAULT_QUEUE_LEN> {
    slots: Vec<Slot<T, Q>>,
    index: HashTable<u32>,
    capacity: usize,
    /// The earliest `due` of any slot (a lower bound).
    next_due: u64,
    counters: NeighCounters,
}

fn hash_ip(ip: &IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => hash_u64(u64::from(u32::from(*a))),
        IpAddr::V6(a) => {
            let v = u128::from(*a);
            hash_u64_pair((v >> 64) as u64, v as u64 ^ 0x6)
        }
    }
}

impl<T: Copy, const Q: usize> NeighborCache<T, Q> {
    const QUEUE_FITS: () = assert!(Q > 0 && Q <= u8::MAX as usize, "Q must be 1..=255");

    /// A cache of at most `capacity` addresses; the only allocation it makes.
    pub fn new(capacity: usize) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::QUEUE_FITS;
        NeighborCache {
            slots: Vec::with_capacity(capacity),
            index: HashTable::with_capacity(capacity.saturating_mul(2)),
            capacity,
            next_due: NEVER,
            counters: NeighCounters::default(),
        }
    }

    /// Addresses the cache holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Addresses in the cache.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No address in the cache.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The counters.
    pub fn counters(&self) -> &NeighCounters {
        &self.counters
    }

    fn find(&self, ip: IpAddr) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash_ip(&ip), |&i| slots[i as usize].ip == ip)
            .map(|&i| i as usize)
    }

    /// A slot for a new `ip`: a fresh one while there is room, else the entry confirmed
    /// longest ago that is neither static nor resolving (and holds no items).
    fn alloc(&mut self, slot: Slot<T, Q>) -> Option<usize> {
        let i = if self.slots.len() < self.capacity {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s.kind, Kind::Resolved | Kind::Failed) && s.qlen == 0)
                .min_by_key(|(_, s)| s.since)
                .map(|(i, _)| i)?;
            let old = self.slots[victim].ip;
            if let Ok(e) = self
                .index
                .find_entry(hash_ip(&old), |&j| j as usize == victim)
            {
                e.remove();
            }
            self.slots[victim] = slot;
            self.counters.evictions += 1;
            victim
        };
        let slots = &self.slots;
        self.index.insert_unique(hash_ip(&slot.ip), i as u32, |&j| {
            hash_ip(&slots[j as usize].ip)
        });
        self.next_due = self.next_due.min(slot.due);
        Some(i)
    }

    /// Adds or replaces a static entry. Items waiting for `ip` (it was resolving) are
    /// dropped at the next `poll`. Fails only when every entry is static or resolving.
    pub fn add_static(&mut self, ip: IpAddr, mac: MacAddr) -> Result<(), NeighError> {
        if let Some(i) = self.find(ip) {
            let s = &mut self.slots[i];
            s.kind = Kind::Static;
            s.mac = mac;
            s.since = 0;
            s.requests = 0;
            s.due = if s.qlen > 0 { 0 } else { NEVER };
            self.next_due = self.next_due.min(s.due);
            return Ok(());
        }
        self.alloc(Slot::new(ip, Kind::Static, mac, 0, NEVER))
            .map(|_| ())
            .ok_or(NeighError::Full {
                capacity: self.capacity,
            })
    }

    /// The MAC to send to `ip`: `Some` when static, reachable or stale. A stale entry gets
    /// a refresh scheduled (the requests come out of `poll`) and is used meanwhile.
    /// `None` for an unknown, resolving or failed address: then `enqueue`.
    #[inline]
    pub fn lookup(&mut self, ip: IpAddr, now: u64) -> Option<MacAddr> {
        let i = self.find(ip)?;
        let s = &mut self.slots[i];
        match s.kind {
            Kind::Static => Some(s.mac),
            Kind::Resolved => {
                if now >= s.since.saturating_add(REACHABLE_TIME_NS) && s.due == NEVER {
                    s.requests = 0;
                    s.due = now;
                    self.next_due = self.next_due.min(now);
                }
                Some(s.mac)
            }
            Kind::Incomplete | Kind::Failed => None,
        }
    }

    /// Queues `item` until `ip` resolves, starting the resolution if needed (its first
    /// request comes out of the next `poll`). `Err(item)` hands the item back (the caller
    /// drops and counts it) when the address's queue is full, it is in its hold-down, the
    /// table is full of static and resolving entries, or the address already resolves
    /// (`lookup` would have given its MAC: nothing would release the item).
    pub fn enqueue(&mut self, ip: IpAddr, item: T, now: u64) -> Result<(), T> {
        let i = match self.find(ip) {
            Some(i) => i,
            None => {
                let fresh = Slot::new(ip, Kind::Incomplete, MacAddr::ZERO, now, now);
                match self.alloc(fresh) {
                    Some(i) => i,
                    None => {
                        self.counters.table_full += 1;
                        return Err(item);
                    }
                }
            }
        };
        let s = &mut self.slots[i];
        match s.kind {
            Kind::Incomplete => {}
            Kind::Failed if now < s.since.saturating_add(HOLD_DOWN_NS) => {
                self.counters.hold_down += 1;
                return Err(item);
            }
            Kind::Failed => {
                s.kind = Kind::Incomplete;
                s.since = now;
                s.requests = 0;
                s.due = now;
                self.next_due = self.next_due.min(now);
            }
            Kind::Static | Kind::Resolved => return Err(item),
        }
        let n = usize::from(s.qlen);
        match s.queue.get_mut(n) {
            Some(q) => {
                *q = Some(item);
                s.qlen += 1;
                Ok(())
            }
            None => {
                self.counters.queue_full += 1;
                Err(item)
            }
        }
    }

    /// `ip` is at `mac` (an ARP reply, a gratuitous ARP, an NA, a request from it): an
    /// existing entry becomes reachable with that MAC and its waiting items are released
    /// in the order they were queued. Static entries, unknown addresses and non-unicast
    /// MACs are ignored (see the module documentation).
    pub fn confirm(
        &mut self,
        ip: IpAddr,
        mac: MacAddr,
        now: u64,
        release: &mut impl FnMut(T, MacAddr),
    ) {
        let slot = match self.find(ip) {
            Some(i) if mac.is_unicast() => &mut self.slots[i],
            _ => {
                self.counters.ignored += 1;
                return;
            }
        };
        if slot.kind == Kind::Static {
            self.counters.ignored += 1;
            return;
        }
        slot.kind = Kind::Resolved;
        slot.mac = mac;
        slot.since = now;
        slot.requests = 0;
        slot.due = NEVER;
        self.counters.released += slot.drain(|item| release(item, mac));
    }

    /// Does what is due at `now`: asks `solicit` for a request per address that needs one
    /// (a new resolution, a retry, a refresh), fails resolutions and refreshes that went
    /// unanswered and hands their waiting items to `drop`. Returns at once when nothing
    /// is due.
    pub fn poll(&mut self, now: u64, solicit: &mut impl FnMut(IpAddr), drop: &mut impl FnMut(T)) {
        if now < self.next_due {
            return;
        }
        let mut next = NEVER;
        let c = &mut self.counters;
        for s in &mut self.slots {
            if s.due <= now {
                match s.kind {
                    Kind::Incomplete | Kind::Resolved if s.requests < MAX_REQUESTS => {
                        solicit(s.ip);
                        c.requests += 1;
                        s.requests += 1;
                        s.due = now.saturating_add(RETRANS_TIME_NS);
                    }
                    Kind::Incomplete | Kind::Resolved => {
                        c.timeouts += 1;
                        s.kind = Kind::Failed;
                        s.since = now;
                        s.requests = 0;
                        s.due = NEVER;
                        c.queued_dropped += s.drain(&mut *drop);
                    }
                    Kind::Static | Kind::Failed => {
                        s.due = NEVER;
                        c.queued_dropped += s.drain(&mut *drop);
                    }
                }
            }
            next = next.min(s.due);
        }
        self.next_due = next;
    }

    /// Every entry as it stands at `now`, for `ctl neigh show`.
    pub fn iter(&self, now: u64) -> impl Iterator<Item = NeighborEntry> + '_ {
        self.slots.iter().map(move |s| {
            let state = s.state(now);
            NeighborEntry {
                ip: s.ip,
                mac: matches!(
                    state,
                    NeighState::Static | NeighState::Reachable | NeighState::Stale
                )
                .then_some(s.mac),
                state,
                age_ns: if state == NeighState::Static {
                    0
                } else {
                    now.saturating_sub(s.since)
                },
                queued: usize::from(s.qlen),
            }
        })
    }
}

#[cfg(test)]
mod tests;
