//! Cost of the `flowtable` per-frame operations on batches of 32 keys (a receive
//! burst). Every measurement is one batch: divide by 32 for ns/frame. Keys are built
//! outside the timed loop, as many distinct batches (cycled through), so that a
//! large table is not served from the few cache lines one batch would touch.
//!
//! - `fdb_lookup_32/{1k,1M}`: destination lookups, one `lookup_key` per key;
//!   `fdb_lookup_batch_32/{1k,1M}`: the same through `lookup_batch` (the buckets of
//!   all 32 keys loaded first, in one independent loop, then probed).
//! - `fdb_learn_refresh_32/{1k,1M}`: source learning of known MACs (the hot path: one
//!   probe, one store; the clock advances by 1 ns per batch);
//!   `fdb_learn_refresh_batch_32/{1k,1M}`: the same after `warm_batch` over the 32 keys,
//!   as the pipeline does.
//! - `flowcache_hit_32` / `flowcache_miss_32` (8192-entry cache, 4096 flows cached,
//!   batches drawn at random from them): hash + lookup per key. (A batched variant
//!   that read every slot before comparing measured slower than this loop with the
//!   cache in L2, so the crate does not offer one.)
//! - `null_32`: the harness alone (read each key of the batch).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use encap::{MacAddr, VlanId};
use flowtable::{
    Fdb, FdbConfig, FdbKey, FlowCache, FlowKey, Gens, PortId, Stamp, DEFAULT_FLOW_CACHE_SIZE, SEC,
};

const BURST: usize = 32;
/// Distinct batches cycled through (4096 × 32 keys).
const BATCHES: usize = 4096;

/// A deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The `i`-th learned MAC: spread over 64 VLANs and 64 ports like a busy host.
fn entry(i: u64) -> (VlanId, MacAddr, PortId) {
    (
        VlanId::try_new(1 + (i % 64) as u16).unwrap(),
        MacAddr::from_u64(0xfa16_3e00_0000 | ((i * 0x9e37) & 0xff_ffff)),
        PortId((i % 64) as u16),
    )
}

fn filled(n: u64) -> (Fdb, Vec<(VlanId, MacAddr, PortId)>) {
    let mut fdb = Fdb::new(FdbConfig {
        capacity: n as usize,
        per_port_limit: 0,
        aging_ns: 300 * SEC,
        max_ports: 64,
    })
    .unwrap();
    let mut learned = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (v, m, p) = entry(i);
        if fdb.learn(v, m, p, 0).changed() {
            learned.push((v, m, p));
        }
    }
    (fdb, learned)
}

fn batches<T: Copy>(pool: &[T], rng: &mut Rng) -> Vec<[T; BURST]> {
    (0..BATCHES)
        .map(|_| std::array::from_fn(|_| pool[(rng.next() % pool.len() as u64) as usize]))
        .collect()
}

fn fdb_benches(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (label, n) in [("1k", 1_000u64), ("1M", 1_000_000)] {
        let (mut fdb, learned) = filled(n);
        let keys: Vec<FdbKey> = learned.iter().map(|&(v, m, _)| FdbKey::new(v, m)).collect();
        let key_batches = batches(&keys, &mut rng);
        let learn_batches = batches(&learned, &mut rng);
        let learn_keys: Vec<[FdbKey; BURST]> = learn_batches
            .iter()
            .map(|b| b.map(|(v, m, _)| FdbKey::new(v, m)))
            .collect();
        let now = SEC;

        let mut g = c.benchmark_group("fdb");
        g.throughput(Throughput::Elements(BURST as u64));
        let mut i = 0;
        g.bench_function(BenchmarkId::new("fdb_lookup_32", label), |b| {
            b.iter(|| {
                let batch = &key_batches[i % BATCHES];
                i += 1;
                for k in batch {
                    black_box(fdb.lookup_key(*k, now));
                }
            })
        });
        let mut out = [None; BURST];
        g.bench_function(BenchmarkId::new("fdb_lookup_batch_32", label), |b| {
            b.iter(|| {
                let batch = &key_batches[i % BATCHES];
                i += 1;
                fdb.lookup_batch(batch, now, &mut out);
                black_box(&out);
            })
        });
        let mut t = now;
        g.bench_function(BenchmarkId::new("fdb_learn_refresh_32", label), |b| {
            b.iter(|| {
                let batch = &learn_batches[i % BATCHES];
                i += 1;
                t += 1;
                for &(v, m, p) in batch {
                    black_box(fdb.learn(v, m, p, t));
                }
            })
        });
        g.bench_function(BenchmarkId::new("fdb_learn_refresh_batch_32", label), |b| {
            b.iter(|| {
                let batch = &learn_batches[i % BATCHES];
                fdb.warm_batch(&learn_keys[i % BATCHES]);
                i += 1;
                t += 1;
                for &(v, m, p) in batch {
                    black_box(fdb.learn(v, m, p, t));
                }
            })
        });
        g.finish();
    }
}

fn flowcache_benches(c: &mut Criterion) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let fdb = Fdb::new(FdbConfig::default()).unwrap();
    let gens = Gens {
        config: 1,
        vlans: fdb.vlan_gens(),
    };
    let flow = |i: u64| FlowKey {
        in_port: PortId((i % 64) as u16),
        vid: (i % 4) as u16 * 100,
        dst: MacAddr::from_u64(0xfa16_3e00_0000 | i),
    };
    let mut cache: FlowCache<u32> = FlowCache::new(DEFAULT_FLOW_CACHE_SIZE).unwrap();
    let vlan = VlanId::try_new(1).unwrap();
    let stamp = Stamp::new(&gens, Some(vlan), u64::MAX);
    // 4096 flows, inserted until all of them are resident (two-way pairs can evict).
    let mut cached: Vec<FlowKey> = (0..4096).map(flow).collect();
    for k in &cached {
        cache.insert(k, k.hash(), 7, stamp);
    }
    cached.retain(|k| cache.lookup(k, k.hash(), &gens, 0).is_some());
    let absent: Vec<FlowKey> = (1 << 20..(1 << 20) + 4096).map(flow).collect();
    let hit_batches = batches(&cached, &mut rng);
    let miss_batches = batches(&absent, &mut rng);

    let mut g = c.benchmark_group("flowcache");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut i = 0;
    for (name, set) in [
        ("flowcache_hit_32", &hit_batches),
        ("flowcache_miss_32", &miss_batches),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let batch = &set[i % BATCHES];
                i += 1;
                for k in batch {
                    black_box(cache.lookup(k, k.hash(), &gens, 0));
                }
            })
        });
    }
    g.bench_function("null_32", |b| {
        b.iter(|| {
            let batch = &hit_batches[i % BATCHES];
            i += 1;
            for k in batch {
                black_box(k);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, fdb_benches, flowcache_benches);
criterion_main!(benches);
