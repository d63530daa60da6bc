//! A minimal AF_XDP traffic source for measuring forwarding rates between veths:
//! sends one 60-byte UDP frame (198.18.0.1 -> 198.18.0.2) over and over on an
//! interface of the calling process's network namespace, pinned to a core.
//!
//! ```text
//! nsenter --net=/run/netns/GEN cargo run --release --example xsk_gen -- IFNAME SRC_MAC DST_MAC SECONDS CORE
//! ```
//! Prints the frames it put on the TX ring per second. (A stand-in until the BPF
//! live-frames generator lands; copy-mode AF_XDP TX, so its own core does the
//! kernel's transmit work.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use dataplane::pool::CHUNK_SIZE;
use dataplane::port::{Port, BURST};
use dataplane::xsk::{pool_frames, umem_pool, RingSizes, XskConfig, XskPort};

fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (i, b) in s.split(':').enumerate() {
        m[i] = u8::from_str_radix(b, 16).expect("MAC as aa:bb:cc:dd:ee:ff");
    }
    m
}

fn frame(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    // IPv4, 46 bytes: 20 header + 8 UDP + 18 payload.
    let mut ip = [
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x09, 0, 26, 0, 0]); // UDP 12345 -> 9, no checksum
    f.resize(60, 0xab);
    f
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: xsk_gen IFNAME SRC_MAC DST_MAC SECONDS CORE");
        std::process::exit(2);
    }
    let secs: u64 = a[4].parse().expect("SECONDS");
    let core: usize = a[5].parse().expect("CORE");
    core_affinity::set_for_current(core_affinity::CoreId { id: core });
    let sizes = RingSizes::default();
    let (mut pool, umem) = umem_pool(pool_frames(1, sizes), CHUNK_SIZE, sizes).expect("UMEM");
    let mut port = XskPort::open(&a[1], &umem, &pool, &XskConfig::default()).expect("port");
    let f = frame(mac(&a[2]), mac(&a[3]));
    let placeholder = pool.alloc_with(&f).expect("pool");
    let mut descs = [placeholder; BURST];
    pool.free(placeholder);
    let mut rx = [placeholder; BURST];
    let start = Instant::now();
    let mut next = start + Duration::from_secs(1);
    let (mut sent, mut last) = (0u64, 0u64);
    while start.elapsed() < Duration::from_secs(secs) {
        let mut n = 0;
        while n < BURST {
            match pool.alloc_with(&f) {
                Some(d) => descs[n] = d,
                None => break,
            }
            n += 1;
        }
        let acc = port.tx_burst(&mut pool, &descs[..n]);
        for &d in &descs[acc..n] {
            pool.free(d);
        }
        sent += acc as u64;
        // Frames coming back (floods) are freed.
        let r = port.rx_burst(&mut pool, &mut rx);
        for &d in &rx[..r] {
            pool.free(d);
        }
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            println!("tx {} pps", sent - last);
            last = sent;
        }
    }
    let s = port.stats();
    println!(
        "total {sent} frames in {:.1} s; kicks {} kick errors {}",
        start.elapsed().as_secs_f64(),
        s.tx_kicks,
        s.tx_kick_errors
    );
}
