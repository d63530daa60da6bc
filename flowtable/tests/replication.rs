//! Replicas on real threads: three workers learn and look up concurrently while the
//! control plane adds a static entry and flushes; afterwards every replica holds the
//! same table, and a MAC one worker learned was usable by the others at their next
//! poll after the learner published it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use encap::{MacAddr, VlanId};
use flowtable::{
    FdbConfig, FdbEntry, FdbError, FdbGroup, FlushFilter, Learn, PortId, ReplicaConfig, WorkerFdb,
    SEC,
};

const WORKERS: usize = 3;
const OWN: u64 = 300;
const CONTENDED: u64 = 16;
const CONTENDED_VLAN: u16 = 4;

fn vlan(v: u16) -> VlanId {
    VlanId::try_new(v).unwrap()
}

/// Worker `w`'s own MAC `j`: VLAN 1–3, one of the worker's four ports.
fn own(w: usize, j: u64) -> (VlanId, MacAddr, PortId) {
    (
        vlan(1 + (j % 3) as u16),
        MacAddr::from_u64(0x0200_0000_0000 | (w as u64) << 16 | j),
        PortId((4 * w as u64 + j % 4) as u16),
    )
}

/// A MAC every worker sees on its own ports (it keeps moving).
fn contended(j: u64) -> MacAddr {
    MacAddr::from_u64(0x0600_0000_0000 | j)
}

struct Shared {
    start: Instant,
    published: Vec<AtomicBool>,
    /// Workers (and the control plane) that will not change anything any more.
    learning_done: AtomicUsize,
    drained: Barrier,
    control_done: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

fn learn_retrying(w: &mut WorkerFdb, sh: &Shared, v: VlanId, m: MacAddr, p: PortId) -> Learn {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "learning deferred for a minute");
        let r = w.learn(v, m, p, sh.now());
        if r != Learn::Deferred {
            return r;
        }
        w.apply_updates(sh.now(), 64);
        thread::yield_now();
    }
}

fn worker(mut w: WorkerFdb, sh: Arc<Shared>) -> Vec<FdbEntry> {
    let id = w.id();
    let mut seen_all = [false; WORKERS];
    seen_all[id] = true;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Learn own MACs in batches of 32, polling in between; contend on shared MACs.
    for batch in 0..OWN.div_ceil(32) {
        w.apply_updates(sh.now(), 256);
        for j in batch * 32..((batch + 1) * 32).min(OWN) {
            let (v, m, p) = own(id, j);
            let r = learn_retrying(&mut w, &sh, v, m, p);
            assert!(matches!(r, Learn::New | Learn::Refreshed), "{r:?}");
        }
        for j in 0..CONTENDED {
            learn_retrying(
                &mut w,
                &sh,
                vlan(CONTENDED_VLAN),
                contended(j),
                PortId(4 * id as u16),
            );
        }
        // Whatever another worker's MAC resolves to here must be that MAC's port.
        for other in (0..WORKERS).filter(|&o| o != id) {
            let (v, m, p) = own(other, batch * 7 % OWN);
            if let Some(got) = w.lookup(v, m, sh.now()) {
                assert_eq!(got, p);
            }
        }
    }
    sh.published[id].store(true, Ordering::Release);
    // Keep contending until the control plane has acted, so its operations race with
    // learning.
    let mut rounds = 0;
    while !sh.control_done.load(Ordering::Acquire) || rounds < 10 {
        assert!(Instant::now() < deadline, "control plane never finished");
        w.apply_updates(sh.now(), 256);
        for j in 0..CONTENDED {
            learn_retrying(
                &mut w,
                &sh,
                vlan(CONTENDED_VLAN),
                contended(j),
                PortId(4 * id as u16 + (rounds % 2)),
            );
        }
        rounds += 1;
    }

    // Every other worker's MACs are usable at the first poll after they were published.
    while !seen_all.iter().all(|&s| s) {
        assert!(
            Instant::now() < deadline,
            "worker {id} never saw the others' MACs"
        );
        let published: Vec<bool> = sh
            .published
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .collect();
        w.apply_updates(sh.now(), usize::MAX);
        let newly: Vec<usize> = (0..WORKERS)
            .filter(|&o| !seen_all[o] && published[o])
            .collect();
        for other in newly {
            for j in 0..OWN {
                let (v, m, p) = own(other, j);
                assert_eq!(
                    w.lookup(v, m, sh.now()),
                    Some(p),
                    "worker {id}: MAC {j} of worker {other} unknown one poll after publication"
                );
            }
            seen_all[other] = true;
        }
        thread::yield_now();
    }

    // Quiescence: wait (still polling: others may be waiting for room in our lanes)
    // until nobody learns any more, then drain until every lane is empty.
    sh.learning_done.fetch_add(1, Ordering::AcqRel);
    while sh.learning_done.load(Ordering::Acquire) < WORKERS + 1 {
        assert!(
            Instant::now() < deadline,
            "worker {id}: others never finished"
        );
        w.apply_updates(sh.now(), 256);
        thread::yield_now();
    }
    while w.pending() > 0 {
        w.apply_updates(sh.now(), usize::MAX);
    }
    sh.drained.wait();
    assert_eq!(w.apply_updates(sh.now(), usize::MAX), 0);
    assert_eq!(w.stats().publish_lost, 0);
    eprintln!("worker {id}: {:?} {:?}", w.stats(), w.fdb().stats());
    let mut rows: Vec<FdbEntry> = w.fdb().iter(sh.now()).collect();
    rows.sort_by_key(|e| (e.vlan, e.mac));
    rows
}

#[test]
fn replicas_converge_across_threads() {
    let cfg = FdbConfig {
        capacity: 4096,
        per_port_limit: 0,
        aging_ns: 3600 * SEC,
        max_ports: 16,
    };
    // Small lanes so that back-pressure (Learn::Deferred) happens too.
    let lanes = ReplicaConfig {
        lane_capacity: 64,
        control_capacity: 8,
    };
    let FdbGroup {
        workers,
        mut control,
    } = FdbGroup::new(WORKERS, cfg, lanes).unwrap();
    let sh = Arc::new(Shared {
        start: Instant::now(),
        published: (0..WORKERS).map(|_| AtomicBool::new(false)).collect(),
        learning_done: AtomicUsize::new(0),
        drained: Barrier::new(WORKERS),
        control_done: AtomicBool::new(false),
    });
    let handles: Vec<_> = workers
        .into_iter()
        .map(|w| {
            let sh = Arc::clone(&sh);
            thread::spawn(move || worker(w, sh))
        })
        .collect();

    // The control plane acts while the workers learn.
    let retry = |f: &mut dyn FnMut() -> Result<(), FdbError>| loop {
        match f() {
            Ok(()) => return,
            Err(FdbError::ControlBusy { .. }) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    while !sh.published.iter().any(|p| p.load(Ordering::Acquire)) {
        thread::yield_now();
    }
    retry(&mut || control.add_static(vlan(CONTENDED_VLAN), contended(0), PortId(15)));
    retry(&mut || control.flush(FlushFilter::Vlan(vlan(CONTENDED_VLAN)), sh.now()));
    retry(&mut || control.add_static(vlan(1), MacAddr::from_u64(0x0a00_0000_0001), PortId(14)));
    sh.control_done.store(true, Ordering::Release);
    sh.learning_done.fetch_add(1, Ordering::AcqRel);

    let tables: Vec<Vec<FdbEntry>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let key = |t: &Vec<FdbEntry>| -> Vec<(VlanId, MacAddr, PortId, bool)> {
        t.iter()
            .map(|e| (e.vlan, e.mac, e.port, e.is_static))
            .collect()
    };
    for t in &tables[1..] {
        assert_eq!(key(t), key(&tables[0]), "replicas differ");
    }
    let t = &tables[0];
    // Every worker's own MACs, where that worker learned them.
    for w in 0..WORKERS {
        for j in 0..OWN {
            let (v, m, p) = own(w, j);
            assert!(
                t.iter().any(|e| (e.vlan, e.mac, e.port) == (v, m, p)),
                "{w} {j}"
            );
        }
    }
    // The static entries won; contended MACs ended on one of the workers' ports.
    let c0 = t.iter().find(|e| e.mac == contended(0)).unwrap();
    assert!(c0.is_static && c0.port == PortId(15));
    for e in t
        .iter()
        .filter(|e| e.vlan == vlan(CONTENDED_VLAN) && !e.is_static)
    {
        assert!(
            e.port.0 % 4 < 2 && (e.port.0 as usize) < 4 * WORKERS,
            "{e:?}"
        );
    }
    assert_eq!(
        t.len(),
        WORKERS * OWN as usize + t.iter().filter(|e| e.vlan == vlan(4)).count() + 1
    );
    // Idle timers agree to within the refresh publication interval.
    for (a, b) in tables[0].iter().zip(&tables[1]) {
        assert!(a.age_ns.abs_diff(b.age_ns) < 2 * SEC);
    }
}

/// No lock anywhere in the crate: the per-frame path and replication are lock-free.
#[test]
fn crate_has_no_locks() {
    fn scan(dir: &std::path::Path, hits: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                scan(&path, hits);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for word in ["Mutex", "RwLock", "Condvar", "parking_lot", "spin::"] {
                    if text.contains(word) {
                        hits.push(format!("{}: {word}", path.display()));
                    }
                }
            }
        }
    }
    let mut hits = Vec::new();
    scan(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut hits,
    );
    assert!(hits.is_empty(), "{hits:?}");
}
