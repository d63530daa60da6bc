//! Switches under test: each is set up on the rig's switch namespace (between `swp0` and
//! `swp1`), measured, and torn down before the next one, so that several switches are
//! measured in alternation on the same netdevs.
//!
//! - `vswitch`: `vswitch run` with a generated configuration, in the switch namespace,
//!   its worker pinned to the switch core; cycles per packet from `ctl stats`.
//! - `vswitch-fast` ("vswitch (XDP fast path)" in reports): the same with `--fastpath`:
//!   established flows forwarded by the XDP program, the rest by the AF_XDP workers.
//! - `null`: the same daemon with `--forward-only` (swp0 ⇄ swp1, no switching logic):
//!   the AF_XDP ceiling of the rig.
//! - `kernel-bridge`: a Linux bridge over swp0 and swp1 (with a kernel VXLAN device for
//!   the VXLAN profiles; the kernel here has no GRE). Its ports' NAPI runs as threads
//!   pinned to the switch core, so all of its work is on that core.
//! - `ovs`: Open vSwitch's userspace datapath (`datapath_type=netdev`) with afxdp ports,
//!   its PMD thread on the switch core, when `ovs-vswitchd` is installed.
//! - `xdp-redirect`: an XDP program on swp0 that redirects every frame to swp1 through
//!   a DEVMAP, reading nothing ([`super::redirect`]): the in-kernel forwarding ceiling of
//!   the rig (`l2` only). Its port's NAPI runs as a thread pinned to the switch core, as
//!   for the bridge.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use dataplane::control::client;
use dataplane::control::proto::{Reply, Request, Response, StatsReply};
use vswitch_tests::netns::{self, fmt_mac};

use super::profile::{
    Profile, Tunnel, Underlay, LOCAL_VTEP, MIXED_VIDS, REMOTE_VTEP, SEGMENT_ID, VID, VTEP_PREFIX,
    VXLAN_PORT,
};
use super::redirect::Redirect;
use super::rig::{self, Rig, SINK_IF, SW_GEN_IF, SW_SINK_IF};

/// A kind of switch under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// This project's switch (`vswitch run`).
    Vswitch,
    /// This project's switch with its XDP fast path (`vswitch run --fastpath`).
    VswitchFast,
    /// vswitch's workers forwarding swp0 ⇄ swp1 with no switching logic.
    Null,
    /// The Linux bridge.
    KernelBridge,
    /// Open vSwitch's userspace datapath with afxdp ports.
    Ovs,
    /// An XDP program redirecting swp0 → swp1 (DEVMAP), no parsing: the in-kernel
    /// forwarding ceiling (l2 only).
    XdpRedirect,
}

impl Kind {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vswitch => "vswitch",
            Kind::VswitchFast => "vswitch (XDP fast path)",
            Kind::Null => "null",
            Kind::KernelBridge => "kernel-bridge",
            Kind::Ovs => "ovs",
            Kind::XdpRedirect => "xdp-redirect",
        }
    }

    /// Name on the command line (`--switch`), also its scratch directory.
    pub fn id(self) -> &'static str {
        match self {
            Kind::Vswitch => "vswitch",
            Kind::VswitchFast => "vswitch-fast",
            Kind::Null => "null",
            Kind::KernelBridge => "kernel-bridge",
            Kind::Ovs => "ovs",
            Kind::XdpRedirect => "xdp-redirect",
        }
    }

    /// Whether it is the `vswitch` daemon (needs the binary, has `ctl stats`).
    pub fn is_vswitch(self) -> bool {
        self.vswitch_args().is_some()
    }

    /// The arguments `vswitch run` gets for this kind beyond the configuration and the
    /// cores (`None`: not the vswitch daemon).
    pub fn vswitch_args(self) -> Option<&'static [&'static str]> {
        match self {
            Kind::Vswitch => Some(&[]),
            Kind::VswitchFast => Some(&["--fastpath"]),
            Kind::Null => Some(&["--forward-only"]),
            Kind::KernelBridge | Kind::Ovs | Kind::XdpRedirect => None,
        }
    }

    /// Whether it forwards frames unchanged, not by the profile's rules (the sink then
    /// finds the payload where the generator put it).
    pub fn forwards_unchanged(self) -> bool {
        matches!(self, Kind::Null | Kind::XdpRedirect)
    }

    /// Why this switch cannot run `profile` on this machine, if it cannot.
    pub fn unsupported(self, profile: Profile) -> Option<&'static str> {
        match (self, profile.tunnel()) {
            (Kind::KernelBridge, Some(Tunnel::Gre)) => {
                Some("the kernel has no GRE (gretap) module")
            }
            (Kind::Ovs, Some(Tunnel::Gre)) => {
                Some("GRE through OVS is not set up by this harness (VXLAN is)")
            }
            (Kind::XdpRedirect, _) if profile != Profile::L2 => Some(
                "the bare redirect sends every frame to the other port unchanged: only the l2 profile means the same there",
            ),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters a switch reports about itself (where it can).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwitchCounters {
    /// Frames received on its generator-side port.
    pub rx: u64,
    /// Frames the kernel dropped before the switch could receive them on that port
    /// (vswitch: the AF_XDP sockets' `XDP_STATISTICS`, in `ctl stats`).
    pub rx_dropped: u64,
    /// Frames sent on its sink-side port.
    pub tx: u64,
    /// Frames it dropped (all reasons it counts).
    pub drops: u64,
    /// Frames its sink-side veth could not hand to the sink (`tx_dropped`: the peer's
    /// ring was full).
    pub tx_dropped: u64,
    /// Busy cycles of its forwarding threads (`None` where the switch does not say).
    pub busy_cycles: Option<u64>,
    /// vswitch: its drops by reason (`ctl stats`), plus `kernel_rx` for the kernel's.
    pub reasons: std::collections::BTreeMap<String, u64>,
}

/// A switch set up on the rig; dropping it tears it down.
#[derive(Debug)]
pub struct Running {
    kind: Kind,
    profile: Profile,
    child: Option<Child>,
    ovsdb: Option<Child>,
    socket: Option<PathBuf>,
    ovs_dir: Option<PathBuf>,
    /// xdp-redirect: its programs (dropping it detaches them).
    redirect: Option<Redirect>,
    /// OVS tunnels: the remote VTEP's MAC, set as OVS's tunnel neighbour.
    ovs_neigh: Option<String>,
    sw_ns: String,
    tmp: PathBuf,
    /// Where its log is.
    pub log: PathBuf,
    /// Change its configuration while trials run (vswitch only).
    pub churn: bool,
}

/// Options of the switches under test.
#[derive(Debug, Clone)]
pub struct SutOptions {
    /// The `vswitch` binary.
    pub vswitch: PathBuf,
    /// A scratch directory (configurations, sockets, logs).
    pub tmp: PathBuf,
    /// Extra `[switch]` keys for vswitch's configuration (e.g. `napi_busy_poll = false`).
    pub vswitch_extra: Vec<String>,
    /// vswitch: change its configuration while trials run (`--churn`).
    pub churn: bool,
}

impl Running {
    /// Sets up `kind` for `profile` on `rig`.
    pub fn start(kind: Kind, profile: Profile, rig: &Rig, opts: &SutOptions) -> Result<Running> {
        let tmp = opts.tmp.join(kind.id());
        fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let log = tmp.join("switch.log");
        let mut r = Running {
            kind,
            profile,
            child: None,
            ovsdb: None,
            socket: None,
            ovs_dir: None,
            redirect: None,
            ovs_neigh: None,
            sw_ns: rig.sw.name().to_owned(),
            churn: opts.churn && matches!(kind, Kind::Vswitch | Kind::VswitchFast),
            tmp: tmp.clone(),
            log,
        };
        // An error drops `r`, which tears down what was set up.
        match kind {
            Kind::Vswitch | Kind::VswitchFast | Kind::Null => {
                r.start_vswitch(profile, rig, opts)?
            }
            Kind::KernelBridge => r.start_bridge(profile, rig)?,
            Kind::Ovs => r.start_ovs(profile, rig)?,
            Kind::XdpRedirect => r.start_redirect(profile, rig)?,
        }
        Ok(r)
    }

    fn start_vswitch(&mut self, profile: Profile, rig: &Rig, opts: &SutOptions) -> Result<()> {
        let socket = self.tmp.join("vswitch.sock");
        let _ = fs::remove_file(&socket);
        let sink_mac = rig.mac(&rig.sink, SINK_IF)?;
        let gen_mac = rig.mac(&rig.gen, super::rig::GEN_IF)?;
        let mut extra = opts.vswitch_extra.clone();
        if self.fast_in_napi_threads(opts) {
            // The fast path runs in the ports' NAPIs: threads on the switch core (below),
            // as for the bridge and OVS, with batches of 64 (a busy poll's are 8); the
            // worker, idle but for what the fast path leaves it, yields the core to them.
            extra.push("napi_busy_poll = false".into());
        }
        let cfg = vswitch_config(profile, &socket, gen_mac, sink_mac, &extra);
        let path = self.tmp.join("vswitch.toml");
        fs::write(&path, cfg).with_context(|| format!("writing {}", path.display()))?;
        let log = fs::File::create(&self.log).context("creating the switch log")?;
        let mut cmd = vswitch_command(
            self.kind,
            &opts.vswitch,
            &rig.sw.path(),
            &path,
            rig.switch_core,
        )?;
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("log")?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", opts.vswitch.display()))?;
        self.child = Some(child);
        self.socket = Some(socket.clone());
        // Up when the control socket answers.
        let mut last = String::new();
        let up = netns::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    last = format!("exited with {status}");
                    return true;
                }
            }
            match client::call(&socket, &Request::Show {}) {
                Ok(_) => true,
                Err(e) => {
                    last = e.to_string();
                    false
                }
            }
        });
        if !up || last.starts_with("exited") {
            bail!(
                "vswitch did not come up ({last}); its log:\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        if self.fast_in_napi_threads(opts) {
            for ifname in [SW_GEN_IF, SW_SINK_IF] {
                rig.threaded_napi(&rig.sw, ifname, rig.switch_core)?;
            }
        }
        Ok(())
    }

    /// `vswitch-fast` unless `--vswitch-opt` sets `napi_busy_poll` itself (then the
    /// worker busy polls the ports' NAPIs, and the program runs in its polls).
    fn fast_in_napi_threads(&self, opts: &SutOptions) -> bool {
        self.kind == Kind::VswitchFast
            && !opts
                .vswitch_extra
                .iter()
                .any(|l| l.trim_start().starts_with("napi_busy_poll"))
    }

    fn start_bridge(&mut self, profile: Profile, rig: &Rig) -> Result<()> {
        let sw = &rig.sw;
        sw.ip(&["link", "add", "br0", "type", "bridge"])?;
        // The bridge's ports must have a NAPI to receive frames sent with XDP (the
        // generator's): GRO gives them one; then their NAPI becomes a thread on the
        // switch core, so the bridge's work is charged to the switch core.
        let (access, underlay) = match profile.underlay() {
            Underlay::None => (vec![SW_GEN_IF, SW_SINK_IF], None),
            Underlay::SinkSide(t) => (
                vec![SW_GEN_IF],
                Some((SW_SINK_IF, t, rig.mac(&rig.sink, SINK_IF)?)),
            ),
            Underlay::GenSide(t) => (
                vec![SW_SINK_IF],
                Some((SW_GEN_IF, t, rig.mac(&rig.gen, super::rig::GEN_IF)?)),
            ),
        };
        for ifname in &access {
            sw.ip(&["link", "set", ifname, "master", "br0"])?;
        }
        if let Some((ul, t, peer_mac)) = underlay {
            if t != Tunnel::Vxlan {
                bail!("kernel-bridge: no GRE in this kernel");
            }
            sw.ip(&[
                "addr",
                "add",
                &format!("{LOCAL_VTEP}/{VTEP_PREFIX}"),
                "dev",
                ul,
            ])?;
            sw.ip(&[
                "neigh",
                "replace",
                &REMOTE_VTEP.to_string(),
                "lladdr",
                &fmt_mac(peer_mac),
                "dev",
                ul,
                "nud",
                "permanent",
            ])?;
            sw.ip(&[
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                &SEGMENT_ID.to_string(),
                "local",
                &LOCAL_VTEP.to_string(),
                "remote",
                &REMOTE_VTEP.to_string(),
                "dstport",
                &VXLAN_PORT.to_string(),
                "dev",
                ul,
            ])?;
            sw.ip(&["link", "set", "vx0", "mtu", "1550", "master", "br0", "up"])?;
        }
        sw.ip(&["link", "set", "br0", "up"])?;
        for ifname in [SW_GEN_IF, SW_SINK_IF] {
            sw.ethtool(&["-K", ifname, "gro", "on"])?;
            rig.threaded_napi(sw, ifname, rig.switch_core)?;
        }
        Ok(())
    }

    fn start_redirect(&mut self, profile: Profile, rig: &Rig) -> Result<()> {
        if let Some(why) = self.kind.unsupported(profile) {
            bail!("xdp-redirect: {why}");
        }
        // Only the measured direction: the rig's traffic goes generator → sink (the sink's
        // learning burst the other way teaches a redirect nothing; it is lost either way,
        // as the generator's veth has no NAPI).
        let redirect =
            Redirect::attach(&rig.sw.path(), &[(SW_GEN_IF, SW_SINK_IF)]).context("xdp-redirect")?;
        self.redirect = Some(redirect);
        // The program gave swp0 a NAPI, where all of the redirect's work runs (program,
        // DEVMAP flush into the sink veth's ring): a thread on the switch core, as for the
        // bridge. (The egress veth's peer, the sink's, has its NAPI from the rig.)
        rig.threaded_napi(&rig.sw, SW_GEN_IF, rig.switch_core)?;
        Ok(())
    }

    fn start_ovs(&mut self, profile: Profile, rig: &Rig) -> Result<()> {
        if let Some(why) = self.kind.unsupported(profile) {
            bail!("ovs: {why}");
        }
        let dir = self.tmp.join("ovs");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let db = dir.join("conf.db");
        let schema = ["/usr/share/openvswitch/vswitch.ovsschema"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("OVS schema not found (is openvswitch-switch installed?)")?;
        netns::run("ovsdb-tool", &["create", &db.to_string_lossy(), schema])?;
        let sock = dir.join("db.sock");
        let env = [
            ("OVS_RUNDIR", dir.clone()),
            ("OVS_LOGDIR", dir.clone()),
            ("OVS_DBDIR", dir.clone()),
        ];
        let log = fs::File::create(&self.log)?;
        let mut ovsdb = Command::new("ovsdb-server");
        ovsdb
            .arg(&db)
            .arg(format!("--remote=punix:{}", sock.display()))
            .arg(format!("--unixctl={}", dir.join("ovsdb.ctl").display()))
            .envs(env.clone())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        self.ovsdb = Some(ovsdb.spawn().context("starting ovsdb-server")?);
        self.ovs_dir = Some(dir.clone());
        netns::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            sock.exists()
        });
        let vsctl = |args: &[&str]| -> Result<String> {
            let mut v = vec![
                format!("--db=unix:{}", sock.display()),
                "--no-wait".to_owned(),
            ];
            v.extend(args.iter().map(|s| (*s).to_owned()));
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            netns::run("ovs-vsctl", &v).map_err(Into::into)
        };
        vsctl(&["init"])?;
        let mask = format!("0x{:x}", 1u64 << rig.switch_core);
        vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            &format!("other_config:pmd-cpu-mask={mask}"),
        ])?;
        let mut vswitchd = Command::new("nsenter");
        vswitchd
            .arg(format!("--net={}", rig.sw.path().display()))
            .arg("--")
            .arg("ovs-vswitchd")
            .arg(format!("unix:{}", sock.display()))
            .arg(format!("--unixctl={}", dir.join("vswitchd.ctl").display()))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(vswitchd.spawn().context("starting ovs-vswitchd")?);
        // With --no-wait the commands return before vswitchd applied them; wait below.
        let afxdp = |bridge: &str, ifname: &str| -> Result<String> {
            vsctl(&[
                "add-port",
                bridge,
                ifname,
                "--",
                "set",
                "interface",
                ifname,
                "type=afxdp",
                "options:xdp-mode=native",
            ])
        };
        vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ])?;
        // VXLAN, as OVS's userspace tunnelling does it (and Neutron's br-tun/br-phy): the
        // access port and a vxlan port on br0; the underlay netdev on br-phy, whose
        // internal port holds the VTEP address (and the netdev's MAC, so that frames for
        // the VTEP are taken); OVS routes the tunnel through it by the kernel's routes and
        // this neighbour entry.
        let underlay = match profile.underlay() {
            Underlay::None => None,
            Underlay::SinkSide(t) => Some((t, SW_GEN_IF, SW_SINK_IF, rig.mac(&rig.sink, SINK_IF)?)),
            Underlay::GenSide(t) => Some((
                t,
                SW_SINK_IF,
                SW_GEN_IF,
                rig.mac(&rig.gen, super::rig::GEN_IF)?,
            )),
        };
        match underlay {
            None => {
                afxdp("br0", SW_GEN_IF)?;
                afxdp("br0", SW_SINK_IF)?;
            }
            Some((_, access, ul, peer)) => {
                let ul_mac = fmt_mac(rig.mac(&rig.sw, ul)?);
                afxdp("br0", access)?;
                vsctl(&[
                    "add-port",
                    "br0",
                    "vx0",
                    "--",
                    "set",
                    "interface",
                    "vx0",
                    "type=vxlan",
                    &format!("options:remote_ip={REMOTE_VTEP}"),
                    &format!("options:local_ip={LOCAL_VTEP}"),
                    &format!("options:key={SEGMENT_ID}"),
                    &format!("options:dst_port={VXLAN_PORT}"),
                ])?;
                vsctl(&[
                    "add-br",
                    "br-phy",
                    "--",
                    "set",
                    "bridge",
                    "br-phy",
                    "datapath_type=netdev",
                    &format!("other_config:hwaddr=\"{ul_mac}\""),
                ])?;
                afxdp("br-phy", ul)?;
                let up =
                    netns::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
                        rig.sw.ip(&["link", "show", "br-phy"]).is_ok()
                    });
                if !up {
                    bail!("ovs: br-phy's internal port did not appear");
                }
                rig.sw.ip(&[
                    "addr",
                    "add",
                    &format!("{LOCAL_VTEP}/{VTEP_PREFIX}"),
                    "dev",
                    "br-phy",
                ])?;
                rig.sw.ip(&["link", "set", "br-phy", "up"])?;
                self.ovs_neigh = Some(fmt_mac(peer));
            }
        }
        let ctl = dir.join("vswitchd.ctl");
        let ok = netns::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            netns::run("ovs-appctl", &["-t", &ctl.to_string_lossy(), "dpif/show"])
                .map(|s| s.contains(SW_GEN_IF) && s.contains(SW_SINK_IF))
                .unwrap_or(false)
        });
        if !ok {
            bail!(
                "ovs-vswitchd did not bring up its afxdp ports; its log:\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        if let Some(mac) = &self.ovs_neigh {
            let t = ctl.to_string_lossy();
            netns::run(
                "ovs-appctl",
                &[
                    "-t",
                    &t,
                    "tnl/neigh/set",
                    "br-phy",
                    &REMOTE_VTEP.to_string(),
                    mac,
                ],
            )?;
        }
        // As for the bridge: the kernel's receive work for OVS's ports (their NAPI, which
        // the afxdp XDP programs created) runs as threads on the switch core.
        for ifname in [SW_GEN_IF, SW_SINK_IF] {
            rig.threaded_napi(&rig.sw, ifname, rig.switch_core)?;
        }
        Ok(())
    }

    /// What the switch says about itself.
    pub fn counters(&self, rig: &Rig) -> Result<Option<SwitchCounters>> {
        let a = rig.sw.link_stats(SW_GEN_IF)?;
        let b = rig.sw.link_stats(SW_SINK_IF)?;
        Ok(Some(match self.kind {
            Kind::Vswitch | Kind::VswitchFast | Kind::Null => {
                let s = self.stats()?;
                let (gen_port, sink_port) = port_names(self.profile);
                let port = |name: &str| s.ports.iter().find(|p| p.name == name);
                SwitchCounters {
                    rx: port(gen_port).map_or(0, |p| p.rx_frames),
                    rx_dropped: port(gen_port).map_or(0, |p| p.rx_dropped),
                    tx: port(sink_port).map_or(0, |p| p.tx_frames),
                    drops: s.totals.drops,
                    tx_dropped: b.tx_dropped,
                    busy_cycles: Some(s.workers.iter().map(|w| w.busy_cycles).sum()),
                    reasons: s
                        .drops
                        .iter()
                        .map(|(k, v)| (k.clone(), *v))
                        .chain(std::iter::once((
                            "kernel_rx".to_owned(),
                            port(gen_port).map_or(0, |p| p.rx_dropped),
                        )))
                        .collect(),
                }
            }
            // The kernel's view of the switch's ports: what came in on the generator's
            // side, went out on the sink's, and what the stack dropped on the way. (veth
            // counts the frames its XDP program ran on in `rx_packets`, and in `tx_packets`
            // those that reached its peer's XDP ring.)
            Kind::Ovs | Kind::KernelBridge | Kind::XdpRedirect => SwitchCounters {
                rx: a.rx_packets,
                rx_dropped: 0,
                tx: b.tx_packets,
                drops: a.rx_dropped,
                tx_dropped: b.tx_dropped,
                busy_cycles: if self.kind == Kind::Ovs {
                    self.ovs_pmd_cycles()?
                } else {
                    None
                },
                reasons: Default::default(),
            },
        }))
    }

    /// vswitch's (or the null switch's) process id.
    pub fn pid(&self) -> Option<u32> {
        self.kind
            .is_vswitch()
            .then(|| self.child.as_ref().map(Child::id))
            .flatten()
    }

    /// vswitch's control socket.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// vswitch's `ctl stats`.
    pub fn stats(&self) -> Result<StatsReply> {
        let socket = self.socket.as_ref().context("not a vswitch")?;
        match client::call(socket, &Request::Stats {}).context("ctl stats")? {
            Response::Ok {
                reply: Reply::Stats(s),
            } => Ok(s),
            Response::Ok { .. } => bail!("ctl stats: unexpected reply"),
            Response::Error { error } => bail!("ctl stats: {}", error.message),
        }
    }

    /// OVS's PMD busy cycles (`dpif-netdev/pmd-stats-show`: "processing cycles").
    fn ovs_pmd_cycles(&self) -> Result<Option<u64>> {
        let Some(dir) = &self.ovs_dir else {
            return Ok(None);
        };
        let out = netns::run(
            "ovs-appctl",
            &[
                "-t",
                &dir.join("vswitchd.ctl").to_string_lossy(),
                "dpif-netdev/pmd-stats-show",
            ],
        )?;
        Ok(parse_pmd_processing_cycles(&out))
    }

    /// Stops the switch and removes what it set up.
    pub fn stop(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        let mut result = Ok(());
        // Closing the links detaches the redirect programs.
        drop(self.redirect.take());
        if let Some(dir) = &self.ovs_dir {
            // OVS detaches its XDP programs and removes its datapath on a clean exit.
            let _ = netns::run(
                "ovs-appctl",
                &[
                    "-t",
                    &dir.join("vswitchd.ctl").to_string_lossy(),
                    "exit",
                    "--cleanup",
                ],
            );
        }
        if let Some(mut c) = self.child.take() {
            let pid = c.id();
            let _ = netns::run("kill", &["-TERM", &pid.to_string()]);
            let stopped =
                netns::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
                    matches!(c.try_wait(), Ok(Some(_)))
                });
            if !stopped {
                let _ = c.kill();
                result = Err(anyhow::anyhow!(
                    "{} did not stop on SIGTERM; killed",
                    self.kind
                ));
            }
            let _ = c.wait();
        }
        if let Some(mut c) = self.ovsdb.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The namespace keeps its netdevs between switches; remove what a switch added.
        let ns = format!("/run/netns/{}", self.sw_ns);
        if Path::new(&ns).exists() {
            for dev in ["br0", "vx0", "ovs-netdev", "br-phy"] {
                let _ = netns::run("ip", &["-n", &self.sw_ns, "link", "del", dev]);
            }
            for ifname in [SW_GEN_IF, SW_SINK_IF] {
                let _ = netns::run("ip", &["-n", &self.sw_ns, "addr", "flush", "dev", ifname]);
                let _ = netns::run(
                    "ip",
                    &["-n", &self.sw_ns, "link", "set", ifname, "xdp", "off"],
                );
                let _ = rig::set_sysfs(&self.sw_ns, ifname, "threaded", "0");
                let _ = netns::run("ip", &["-n", &self.sw_ns, "link", "set", ifname, "up"]);
            }
        }
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The command that starts `kind` (one of vswitch's) in the switch namespace at `netns`:
/// `nsenter --net=NETNS -- VSWITCH run --config CONFIG --cores CORE [kind's arguments]`.
pub fn vswitch_command(
    kind: Kind,
    vswitch: &Path,
    netns: &Path,
    config: &Path,
    core: usize,
) -> Result<Command> {
    let extra = kind
        .vswitch_args()
        .with_context(|| format!("{kind} is not run by the vswitch daemon"))?;
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .arg("--")
        .arg(vswitch)
        .args(["run", "--config"])
        .arg(config)
        .args(["--cores", &core.to_string()])
        .args(extra);
    Ok(cmd)
}

/// vswitch's names of the ports on the generator's and on the sink's side.
pub fn port_names(profile: Profile) -> (&'static str, &'static str) {
    match profile.underlay() {
        Underlay::None => ("gen", "sink"),
        Underlay::SinkSide(_) => ("gen", "uplink"),
        Underlay::GenSide(_) => ("uplink", "sink"),
    }
}

/// The "processing cycles" of every PMD in `pmd-stats-show`'s output, summed.
pub fn parse_pmd_processing_cycles(out: &str) -> Option<u64> {
    let mut total = None;
    for line in out.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("processing cycles:") {
            let n: u64 = rest.split_whitespace().next()?.parse().ok()?;
            total = Some(total.unwrap_or(0) + n);
        }
    }
    total
}

/// vswitch's configuration for `profile` on the rig.
pub fn vswitch_config(
    profile: Profile,
    socket: &Path,
    gen_mac: [u8; 6],
    sink_mac: [u8; 6],
    extra: &[String],
) -> String {
    let mut c = String::new();
    c.push_str("# Generated by vswitch-bench wire.\n[switch]\nworkers = 1\n");
    c.push_str(&format!("control_socket = \"{}\"\n", socket.display()));
    c.push_str("mac_table_size = 2000000\nmac_aging_secs = 3600\n");
    for e in extra {
        c.push_str(e);
        c.push('\n');
    }
    let access = |name: &str, ifname: &str, net: &str| {
        format!("\n[[port]]\nname = \"{name}\"\nifname = \"{ifname}\"\nmode = \"access\"\nnetwork = \"{net}\"\n")
    };
    let tunnel = |t: Tunnel, ul_if: &str, peer: [u8; 6]| {
        let seg = match t {
            Tunnel::Vxlan => "vxlan",
            Tunnel::Gre => "gre",
        };
        format!(
            "\n[underlay]\nport = \"uplink\"\nifname = \"{ul_if}\"\nlocal_ip = \"{LOCAL_VTEP}/{VTEP_PREFIX}\"\n\
             mtu = {}\nvxlan_port = {VXLAN_PORT}\nneighbors = [ {{ ip = \"{REMOTE_VTEP}\", mac = \"{}\" }} ]\n\
             \n[[network]]\nname = \"bench\"\nsegment = \"{seg}\"\nid = {SEGMENT_ID}\nremote_vteps = [\"{REMOTE_VTEP}\"]\n",
            rig::RIG_MTU,
            fmt_mac(peer)
        )
    };
    match profile {
        Profile::L2 | Profile::Flood => {
            c.push_str("\n[[network]]\nname = \"bench\"\nsegment = \"local\"\n");
            c.push_str(&access("gen", SW_GEN_IF, "bench"));
            c.push_str(&access("sink", SW_SINK_IF, "bench"));
        }
        Profile::Vlan => {
            c.push_str("\n[[network]]\nname = \"bench\"\nsegment = \"local\"\n");
            for (name, ifname) in [("gen", SW_GEN_IF), ("sink", SW_SINK_IF)] {
                c.push_str(&format!(
                    "\n[[port]]\nname = \"{name}\"\nifname = \"{ifname}\"\nmode = \"trunk\"\nvlans = {{ {VID} = \"bench\" }}\n"
                ));
            }
        }
        Profile::Mixed => {
            for v in MIXED_VIDS {
                c.push_str(&format!(
                    "\n[[network]]\nname = \"bench{v}\"\nsegment = \"local\"\n"
                ));
            }
            let vlans = MIXED_VIDS.map(|v| format!("{v} = \"bench{v}\"")).join(", ");
            for (name, ifname) in [("gen", SW_GEN_IF), ("sink", SW_SINK_IF)] {
                c.push_str(&format!(
                    "\n[[port]]\nname = \"{name}\"\nifname = \"{ifname}\"\nmode = \"trunk\"\nvlans = {{ {vlans} }}\n"
                ));
            }
        }
        Profile::VxlanEncap | Profile::GreEncap => {
            let t = profile.tunnel().unwrap_or(Tunnel::Vxlan);
            c.push_str(&tunnel(t, SW_SINK_IF, sink_mac));
            c.push_str(&access("gen", SW_GEN_IF, "bench"));
        }
        Profile::VxlanDecap | Profile::GreDecap => {
            let t = profile.tunnel().unwrap_or(Tunnel::Vxlan);
            c.push_str(&tunnel(t, SW_GEN_IF, gen_mac));
            c.push_str(&access("sink", SW_SINK_IF, "bench"));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn generated_configs_are_valid() {
        for p in Profile::value_variants() {
            let text = vswitch_config(
                *p,
                Path::new("/tmp/x.sock"),
                [2, 0, 0, 0, 0, 1],
                [2, 0, 0, 0, 0, 2],
                &[],
            );
            let r = dataplane::config::Config::from_str(&text, "gen.toml");
            assert!(r.is_ok(), "{p}: {r:?}\n{text}");
        }
    }

    #[test]
    fn kinds_parse_and_have_distinct_names() {
        let kinds = Kind::value_variants();
        for k in kinds {
            assert_eq!(Kind::from_str(k.id(), false), Ok(*k), "{k}");
        }
        let names: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), kinds.len());
        assert_eq!(Kind::from_str("vswitch-fast", false), Ok(Kind::VswitchFast));
        assert_eq!(Kind::from_str("xdp-redirect", false), Ok(Kind::XdpRedirect));
    }

    #[test]
    fn vswitch_command_lines() {
        let args = |k: Kind| -> Option<Vec<String>> {
            let cmd = vswitch_command(
                k,
                Path::new("/bin/vswitch"),
                Path::new("/run/netns/sw"),
                Path::new("/tmp/v.toml"),
                1,
            )
            .ok()?;
            Some(
                cmd.get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            )
        };
        let base = [
            "--net=/run/netns/sw",
            "--",
            "/bin/vswitch",
            "run",
            "--config",
            "/tmp/v.toml",
            "--cores",
            "1",
        ];
        let with = |extra: &[&str]| -> Option<Vec<String>> {
            Some(base.iter().chain(extra).map(|s| (*s).to_owned()).collect())
        };
        assert_eq!(args(Kind::Vswitch), with(&[]));
        assert_eq!(args(Kind::VswitchFast), with(&["--fastpath"]));
        assert_eq!(args(Kind::Null), with(&["--forward-only"]));
        for k in [Kind::KernelBridge, Kind::Ovs, Kind::XdpRedirect] {
            assert_eq!(args(k), None, "{k}");
            assert!(!k.is_vswitch());
        }
    }

    #[test]
    fn xdp_redirect_is_l2_only() {
        for p in Profile::value_variants() {
            assert_eq!(
                Kind::XdpRedirect.unsupported(*p).is_none(),
                *p == Profile::L2,
                "{p}"
            );
        }
    }

    #[test]
    fn pmd_cycles_parse() {
        let out = "pmd thread numa_id 0 core_id 1:\n  packets received: 10\n  idle cycles: 100 (50.00%)\n  processing cycles: 2500 (50.00%)\n  avg cycles per packet: 260.00 (2600/10)\n";
        assert_eq!(parse_pmd_processing_cycles(out), Some(2500));
    }
}
