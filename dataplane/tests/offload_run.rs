//! `vswitch run` between two VMs whose veths keep TX checksum offload on (veth's
//! default): their TCP and UDP packets reach the switch with *partial* checksums, which
//! the switch completes (`encap::checksum::complete_partial`) before sending them on. A
//! 4 MiB TCP transfer each way and UDP datagrams of several sizes must arrive intact,
//! and `ctl stats` must show checksums completed.
//!
//! Needs root; otherwise it prints `SKIPPED: needs root (network namespaces)` and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod netrun;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use netrun::{cores, tcp_transfer, vm, TempDir, Vswitch};
use vswitch_tests::netns::{root_or_skip, NetNs};

const PREFIX: &str = "vsw-off";
const VM1: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 1);
const VM2: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 2);

fn config(socket: &std::path::Path) -> String {
    format!(
        r#"
[switch]
workers = 1
control_socket = "{}"

[[network]]
name = "n"
segment = "local"

[[port]]
name = "p1"
ifname = "p1"
mode = "access"
network = "n"

[[port]]
name = "p2"
ifname = "p2"
mode = "access"
network = "n"
"#,
        socket.display()
    )
}

#[test]
fn partial_checksums_from_vms_are_completed() {
    if !root_or_skip("partial_checksums_from_vms_are_completed") {
        return;
    }
    let sw = NetNs::new(PREFIX).unwrap();
    let vm1 = NetNs::new(PREFIX).unwrap();
    let vm2 = NetNs::new(PREFIX).unwrap();
    vm(
        &sw,
        "p1",
        &vm1,
        "02:0b:00:00:00:01",
        &format!("{VM1}/24"),
        1500,
    );
    vm(
        &sw,
        "p2",
        &vm2,
        "02:0b:00:00:00:02",
        &format!("{VM2}/24"),
        1500,
    );
    // Back to veth's default: the VMs hand over partial TCP/UDP checksums.
    for v in [&vm1, &vm2] {
        v.ethtool(&["-K", "eth0", "tx", "on"]).unwrap();
    }
    let dir = TempDir::new(sw.name());
    let s = Vswitch::socket_path(&dir.0, "sw");
    let core = *cores().last().unwrap();
    let switch = Vswitch::start(&sw, &dir.0, "sw", &config(&s), core);

    // UDP of several sizes, contents checked.
    let rx = vm2
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(VM2, 7000)))
        .unwrap()
        .unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let tx = vm1
        .run_in(|| UdpSocket::bind(SocketAddrV4::new(VM1, 0)))
        .unwrap()
        .unwrap();
    let mut got = 0;
    for len in [1usize, 17, 200, 1000, 1472] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        // The first datagram may wait for ARP; resend until it arrives.
        for _ in 0..5 {
            tx.send_to(&data, SocketAddrV4::new(VM2, 7000)).unwrap();
            let mut buf = [0u8; 2000];
            if let Ok(n) = rx.recv(&mut buf) {
                assert_eq!(&buf[..n], &data[..], "UDP datagram of {len} bytes");
                got += 1;
                break;
            }
        }
    }
    assert_eq!(got, 5, "{}", switch.log());

    // TCP both ways.
    tcp_transfer(&vm2, SocketAddrV4::new(VM2, 5001), &vm1, 4 << 20);
    tcp_transfer(&vm1, SocketAddrV4::new(VM1, 5002), &vm2, 4 << 20);

    let stats = switch.ctl_text(&["stats"]);
    eprintln!("{stats}");
    let completed: u64 = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("checksums completed "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(completed > 100, "checksums completed: {completed}\n{stats}");
    switch.stop();
}
