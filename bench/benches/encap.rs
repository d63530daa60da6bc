//! Per-frame cost of the `encap` operations, on batches of 32 frames held in 2 KiB + 64 B
//! chunks with 256 bytes of headroom (the shape of an AF_XDP UMEM batch; the extra cache
//! line keeps the 32 frames from landing in the same two L1 sets, which measures the cache
//! geometry, not the operation). Before each
//! timed batch the frames are restored outside the timer (`iter_custom`), as a receive
//! burst would have just written them; each measurement is one batch, so divide by 32 for
//! ns/frame (`scripts/bench-table.py` does). `null_32` is the harness alone.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use encap::tunnel::{
    decap_gre, decap_vxlan, flow_hash, v4_params, v6_params, DecapConfig, GreOptions, GreTemplate,
    VxlanTemplate,
};
use encap::vlan::{self, VlanTag};
use encap::{Frame, GreKey, MacAddr, VlanId, Vni};

const BURST: usize = 32;
const CHUNK: usize = 2048 + 64;
const HEADROOM: usize = 256;

/// A batch of frames in fixed chunks: what a worker holds after an RX burst.
struct Batch {
    chunks: Vec<[u8; CHUNK]>,
    heads: [usize; BURST],
    lens: [usize; BURST],
}

impl Batch {
    fn new(frame: &[u8]) -> Self {
        let mut chunks = vec![[0u8; CHUNK]; BURST];
        for c in &mut chunks {
            c[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        }
        Batch {
            chunks,
            heads: [HEADROOM; BURST],
            lens: [frame.len(); BURST],
        }
    }

    /// Puts `frame` back in every chunk, as an RX burst would.
    fn restore(&mut self, frame: &[u8]) {
        for c in &mut self.chunks {
            c[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        }
        self.heads = [HEADROOM; BURST];
        self.lens = [frame.len(); BURST];
    }

    /// Runs `op` on every frame, keeping the new head/len.
    #[inline(always)]
    fn each(&mut self, op: impl Fn(&mut Frame<&mut [u8]>)) {
        for i in 0..BURST {
            let Ok(mut f) = Frame::new(&mut self.chunks[i][..], self.heads[i], self.lens[i]) else {
                continue;
            };
            op(&mut f);
            self.heads[i] = f.head();
            self.lens[i] = f.len();
        }
    }
}

const SRC_MAC: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 1]);
const DST_MAC: MacAddr = MacAddr([0xfa, 0x16, 0x3e, 0, 0, 2]);

/// A 64-byte IPv4/UDP frame (60 bytes without FCS), the benchmark's unit of work.
fn udp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&DST_MAC.0);
    f.extend_from_slice(&SRC_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    let repr = encap::ipv4::Ipv4Repr::new(
        Ipv4Addr::new(198, 19, 0, 1),
        Ipv4Addr::new(198, 19, 0, 2),
        encap::ipv4::protocol::UDP,
        26,
    );
    repr.emit(&mut encap::ipv4::Packet::new_unchecked(&mut ip[..]));
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x30, 0x3a, 0x00, 26, 0, 0]);
    f.resize(60, 0xab);
    f
}

fn tagged_frame() -> Vec<u8> {
    let b = Batch::new(&udp_frame());
    let mut one = b.chunks[0];
    let mut f = Frame::new(&mut one[..], HEADROOM, 60).unwrap();
    vlan::push(&mut f, VlanTag::dot1q(VlanId::try_new(100).unwrap())).unwrap();
    f.data().to_vec()
}

fn vxlan4() -> VxlanTemplate {
    VxlanTemplate::new(
        &v4_params(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        ),
        4789,
    )
    .unwrap()
}

fn vxlan6() -> VxlanTemplate {
    VxlanTemplate::new(
        &v6_params(
            SRC_MAC,
            DST_MAC,
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        ),
        4789,
    )
    .unwrap()
}

fn gre4() -> GreTemplate {
    GreTemplate::new(
        &v4_params(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        ),
        GreOptions::default(),
    )
    .unwrap()
}

fn encapped(op: impl Fn(&mut Frame<&mut [u8]>)) -> Vec<u8> {
    let mut b = Batch::new(&udp_frame());
    let mut one = b.chunks[0];
    let mut f = Frame::new(&mut one[..], HEADROOM, 60).unwrap();
    op(&mut f);
    b.chunks.clear();
    f.data().to_vec()
}

/// Times `op` over batches of `frame`, restoring the batch outside the timer.
fn timed(b: &mut criterion::Bencher<'_>, frame: &[u8], op: impl Fn(&mut Frame<&mut [u8]>)) {
    let mut batch = Batch::new(frame);
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            batch.restore(frame);
            let t0 = Instant::now();
            batch.each(&op);
            total += t0.elapsed();
        }
        total
    })
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("encap");
    g.throughput(Throughput::Elements(BURST as u64));
    let plain = udp_frame();
    let tagged = tagged_frame();
    let vni = Vni::try_new(5010).unwrap();
    let key = GreKey::new(5010);
    let (t4, t6, tg) = (vxlan4(), vxlan6(), gre4());
    let vx4 = encapped(|f| t4.encap(f, vni, 7, 0).unwrap());
    let vx6 = encapped(|f| t6.encap(f, vni, 7, 0).unwrap());
    let gr4 = encapped(|f| tg.encap(f, key, 0, 0).unwrap());
    let cfg = DecapConfig::default();
    let vid = VlanId::try_new(200).unwrap();

    // The harness alone: build the frame handle and touch the first byte of each frame.
    g.bench_function("null_32", |b| {
        timed(b, &plain, |f| _ = black_box(f.data()[0]))
    });
    // Consumers read what a switch reads, so unused fields may be optimised away, as they
    // are in the switch.
    g.bench_function("parse_l2_32", |b| {
        timed(b, &tagged, |f| {
            _ = black_box(
                encap::parse::parse_l2(f.data())
                    .map(|l2| {
                        (
                            l2.dst,
                            l2.src,
                            l2.outer_tag().and_then(|t| t.vid),
                            l2.l3_offset,
                        )
                    })
                    .ok(),
            )
        })
    });
    g.bench_function("parse_32", |b| {
        timed(b, &vx4, |f| {
            _ = black_box(
                encap::parse::parse(f.data(), 4789)
                    .map(|p| (p.l4, p.tunnel))
                    .ok(),
            )
        })
    });
    g.bench_function("flow_hash_32", |b| {
        timed(b, &plain, |f| _ = black_box(flow_hash(f.data())))
    });
    g.bench_function("vlan_push_32", |b| {
        timed(b, &plain, |f| {
            _ = black_box(vlan::push(f, VlanTag::dot1q(vid)).ok())
        })
    });
    g.bench_function("vlan_pop_32", |b| {
        timed(b, &tagged, |f| _ = black_box(vlan::pop(f).ok()))
    });
    g.bench_function("vlan_translate_32", |b| {
        timed(b, &tagged, |f| _ = black_box(vlan::translate(f, vid).ok()))
    });
    g.bench_function("vxlan_encap_v4_32", |b| {
        timed(b, &plain, |f| {
            _ = black_box(t4.encap(f, vni, 0x5a5a_1234, 0).ok())
        })
    });
    g.bench_function("vxlan_encap_v6_32", |b| {
        timed(b, &plain, |f| {
            _ = black_box(t6.encap(f, vni, 0x5a5a_1234, 0).ok())
        })
    });
    g.bench_function("vxlan_decap_v4_32", |b| {
        timed(b, &vx4, |f| {
            _ = black_box(
                decap_vxlan(f, &cfg)
                    .map(|i| (i.vni, i.outer.src_ip_bits()))
                    .ok(),
            )
        })
    });
    g.bench_function("vxlan_decap_v6_32", |b| {
        timed(b, &vx6, |f| {
            _ = black_box(
                decap_vxlan(f, &cfg)
                    .map(|i| (i.vni, i.outer.src_ip_bits()))
                    .ok(),
            )
        })
    });
    g.bench_function("gre_encap_v4_32", |b| {
        timed(b, &plain, |f| _ = black_box(tg.encap(f, key, 0, 0).ok()))
    });
    g.bench_function("gre_decap_v4_32", |b| {
        timed(b, &gr4, |f| {
            _ = black_box(decap_gre(f).map(|i| (i.key, i.outer.src_ip_bits())).ok())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
