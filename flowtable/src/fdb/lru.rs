//! Bookkeeping for learned entries that the hash table cannot give us: recency order
//! (for aging and eviction) and per-port counts (for limits and fairness).
//!
//! The hash table gives no order and no per-port count, so every learned
//! entry also owns a *node* in a slab preallocated to the table's capacity. A node is
//! linked into two intrusive doubly linked lists, both ordered oldest first:
//! - the **global** list, whose head is what aging and "reclaim expired first" look at;
//! - its **port's** list, whose head is what eviction takes from that port.
//!
//! An entry is moved to the tail of both lists when it is learned, moved, or refreshed
//! in a later refresh period than its previous refresh (`refresh_shift` in the parent
//! module: about a sixteenth of the aging time, at least 2^30 ns; OVS's
//! `mac_learning_insert` uses one second), so a refresh within the same period costs no
//! list work, and the lists are ordered by "last period seen" up to that period.
//!
//! Per-port counts come with a histogram (`hist[c]` = ports with `c` entries) so the
//! largest count is known in O(1) and the busiest port is found without a scan unless
//! the remembered one stopped being the busiest.

use crate::PortId;

/// End of a list / no node.
pub(super) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

/// Per learned entry: its key (to find it in the table), its replication sequence
/// number, and its two list links.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node {
    pub(super) key: u64,
    pub(super) seq: u64,
    global: Link,
    port: Link,
}

#[derive(Clone, Copy, Debug)]
struct PortList {
    head: u32,
    tail: u32,
    count: u32,
}

#[derive(Clone, Copy)]
enum Chain {
    Global,
    Port(usize),
}

/// The node slab, the lists and the per-port counters.
#[derive(Debug)]
pub(super) struct Lru {
    nodes: Vec<Node>,
    /// Free nodes, chained through `global.next`.
    free: u32,
    used: u32,
    global_head: u32,
    global_tail: u32,
    ports: Vec<PortList>,
    /// `hist[c]`: how many ports have exactly `c` learned entries.
    hist: Vec<u32>,
    max_count: u32,
    busiest_hint: usize,
    /// Learned entries per VLAN (the key's top 16 bits), for per-network limits.
    vlans: Box<[u32]>,
}

impl Lru {
    /// All nodes are allocated here; nothing allocates afterwards.
    pub(super) fn new(capacity: u32, max_ports: usize) -> Self {
        let nodes = (0..capacity)
            .map(|i| Node {
                key: 0,
                seq: 0,
                global: Link {
                    prev: NIL,
                    next: if i + 1 < capacity { i + 1 } else { NIL },
                },
                port: UNLINKED,
            })
            .collect();
        let mut hist = vec![0u32; capacity as usize + 1];
        hist[0] = max_ports as u32;
        Lru {
            nodes,
            free: if capacity > 0 { 0 } else { NIL },
            used: 0,
            global_head: NIL,
            global_tail: NIL,
            ports: vec![
                PortList {
                    head: NIL,
                    tail: NIL,
                    count: 0
                };
                max_ports
            ],
            hist,
            max_count: 0,
            busiest_hint: 0,
            vlans: vec![0; 1 << 12].into_boxed_slice(),
        }
    }

    /// Learned entries held.
    #[inline]
    pub(super) fn used(&self) -> u32 {
        self.used
    }

    /// Whether every node is in use.
    #[inline]
    pub(super) fn is_full(&self) -> bool {
        self.free == NIL
    }

    #[inline]
    pub(super) fn node(&self, slot: u32) -> &Node {
        &self.nodes[slot as usize]
    }

    #[inline]
    pub(super) fn set_seq(&mut self, slot: u32, seq: u64) {
        self.nodes[slot as usize].seq = seq;
    }

    /// Learned entries on `port`.
    #[inline]
    pub(super) fn count(&self, port: PortId) -> u32 {
        self.ports[port.index()].count
    }

    /// Learned entries in `vlan`.
    #[inline]
    pub(super) fn vlan_count(&self, vlan: u16) -> u32 {
        self.vlans.get(usize::from(vlan)).copied().unwrap_or(0)
    }

    fn vlan_slot(&mut self, key: u64) -> Option<&mut u32> {
        self.vlans.get_mut((key >> 48) as usize)
    }

    /// The oldest learned entry of the whole table.
    #[inline]
    pub(super) fn global_head(&self) -> Option<u32> {
        (self.global_head != NIL).then_some(self.global_head)
    }

    /// The oldest learned entry of `port`.
    #[inline]
    pub(super) fn port_head(&self, port: PortId) -> Option<u32> {
        let h = self.ports[port.index()].head;
        (h != NIL).then_some(h)
    }

    /// The entry after `slot` in its port's list (towards newer).
    #[inline]
    pub(super) fn port_next(&self, slot: u32) -> Option<u32> {
        let n = self.nodes[slot as usize].port.next;
        (n != NIL).then_some(n)
    }

    /// Takes a free node for `key` on `port`, at the tail (newest end) of both lists.
    pub(super) fn alloc(&mut self, key: u64, seq: u64, port: PortId) -> Option<u32> {
        let slot = self.free;
        if slot == NIL {
            return None;
        }
        self.free = self.nodes[slot as usize].global.next;
        self.nodes[slot as usize] = Node {
            key,
            seq,
            global: UNLINKED,
            port: UNLINKED,
        };
        self.push_back(Chain::Global, slot);
        self.push_back(Chain::Port(port.index()), slot);
        self.inc(port.index());
        if let Some(c) = self.vlan_slot(key) {
            *c += 1;
        }
        self.used += 1;
        Some(slot)
    }

    /// Returns the node of an entry on `port` to the free list.
    pub(super) fn release(&mut self, slot: u32, port: PortId) {
        self.unlink(Chain::Global, slot);
        self.unlink(Chain::Port(port.index()), slot);
        self.dec(port.index());
        let key = self.nodes[slot as usize].key;
        if let Some(c) = self.vlan_slot(key) {
            *c = c.saturating_sub(1);
        }
        self.nodes[slot as usize].global.next = self.free;
        self.free = slot;
        self.used -= 1;
    }

    /// Marks an entry on `port` as the most recently seen.
    pub(super) fn touch(&mut self, slot: u32, port: PortId) {
        self.unlink(Chain::Global, slot);
        self.push_back(Chain::Global, slot);
        self.unlink(Chain::Port(port.index()), slot);
        self.push_back(Chain::Port(port.index()), slot);
    }

    /// Moves an entry from `from` to `to`, as the most recently seen of both lists.
    pub(super) fn repoint(&mut self, slot: u32, from: PortId, to: PortId) {
        self.unlink(Chain::Global, slot);
        self.push_back(Chain::Global, slot);
        self.unlink(Chain::Port(from.index()), slot);
        self.dec(from.index());
        self.push_back(Chain::Port(to.index()), slot);
        self.inc(to.index());
    }

    /// The largest number of learned entries any port has.
    #[inline]
    pub(super) fn max_count(&self) -> u32 {
        self.max_count
    }

    /// A port with [`Lru::max_count`] entries. O(1) while the remembered port stays
    /// the busiest (a MAC flood from one port), O(max_ports) when it changes.
    pub(super) fn busiest(&mut self) -> PortId {
        let max = self.max_count;
        if self.ports[self.busiest_hint].count != max {
            if let Some(i) = self.ports.iter().position(|p| p.count == max) {
                self.busiest_hint = i;
            }
        }
        PortId(self.busiest_hint as u16)
    }

    fn inc(&mut self, port: usize) {
        let c = self.ports[port].count;
        self.hist[c as usize] -= 1;
        self.hist[c as usize + 1] += 1;
        self.ports[port].count = c + 1;
        if c + 1 > self.max_count {
            self.max_count = c + 1;
            self.busiest_hint = port;
        }
    }

    fn dec(&mut self, port: usize) {
        let c = self.ports[port].count;
        self.hist[c as usize] -= 1;
        self.hist[c as usize - 1] += 1;
        self.ports[port].count = c - 1;
        if c == self.max_count && self.hist[c as usize] == 0 {
            self.max_count = c - 1;
        }
    }

    #[inline]
    fn link(&mut self, chain: Chain, slot: u32) -> &mut Link {
        let n = &mut self.nodes[slot as usize];
        match chain {
            Chain::Global => &mut n.global,
            Chain::Port(_) => &mut n.port,
        }
    }

    #[inline]
    fn ends(&mut self, chain: Chain) -> (&mut u32, &mut u32) {
        match chain {
            Chain::Global => (&mut self.global_head, &mut self.global_tail),
            Chain::Port(p) => {
                let l = &mut self.ports[p];
                (&mut l.head, &mut l.tail)
            }
        }
    }

    fn unlink(&mut self, chain: Chain, slot: u32) {
        let Link { prev, next } = *self.link(chain, slot);
        if prev == NIL {
            *self.ends(chain).0 = next;
        } else {
            self.link(chain, prev).next = next;
        }
        if next == NIL {
            *self.ends(chain).1 = prev;
        } else {
            self.link(chain, next).prev = prev;
        }
        *self.link(chain, slot) = UNLINKED;
    }

    fn push_back(&mut self, chain: Chain, slot: u32) {
        let tail = *self.ends(chain).1;
        *self.link(chain, slot) = Link {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            *self.ends(chain).0 = slot;
        } else {
            self.link(chain, tail).next = slot;
        }
        *self.ends(chain).1 = slot;
    }

    /// Checks every invariant (tests only): list shapes, counts, histogram, maximum.
    #[cfg(test)]
    pub(super) fn check(&self, port_of: impl Fn(u64) -> Option<u16>) {
        let mut seen = 0u32;
        let mut prev = NIL;
        let mut cur = self.global_head;
        while cur != NIL {
            let n = &self.nodes[cur as usize];
            assert_eq!(n.global.prev, prev);
            assert!(
                port_of(n.key).is_some(),
                "node {cur} key {:#x} not in table",
                n.key
            );
            prev = cur;
            cur = n.global.next;
            seen += 1;
        }
        assert_eq!(self.global_tail, prev);
        assert_eq!(seen, self.used);
        let mut total = 0;
        let mut hist = vec![0u32; self.hist.len()];
        for (p, l) in self.ports.iter().enumerate() {
            let (mut prev, mut cur, mut n) = (NIL, l.head, 0);
            while cur != NIL {
                let node = &self.nodes[cur as usize];
                assert_eq!(node.port.prev, prev);
                assert_eq!(port_of(node.key), Some(p as u16));
                prev = cur;
                cur = node.port.next;
                n += 1;
            }
            assert_eq!(l.tail, prev);
            assert_eq!(l.count, n);
            hist[n as usize] += 1;
            total += n;
        }
        assert_eq!(total, self.used);
        assert_eq!(hist, self.hist);
        assert_eq!(
            self.max_count,
            self.ports.iter().map(|l| l.count).max().unwrap_or(0)
        );
    }
}
