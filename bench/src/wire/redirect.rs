//! The `xdp-redirect` switch under test: the bare in-kernel XDP forwarding ceiling
//! between the switch's two ports.
//!
//! `bpf/redirect.bpf.c` reads nothing of a frame: it returns
//! `bpf_redirect_map(DEVMAP, 0)`, and the DEVMAP's one entry is the other port. One object
//! is loaded per direction, attached natively (a BPF link, made in the switch's namespace)
//! to the port the frames arrive on. A veth hands an XDP-redirected frame to its peer's
//! ring, so the egress port's *peer* must have a NAPI (on the rig: the sink's veth, which
//! has GRO on and the sink's program). Dropping a [`Redirect`] closes the links, which
//! detaches the programs, whatever state the rest of the rig is in.

use std::path::Path;

use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder};

use super::traffic::{ifindex_in, in_netns, TrafficError};

/// The redirect program's BPF object, built by `build.rs`.
static REDIRECT_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/redirect.bpf.o"));

/// The attached redirect programs. Dropping it detaches them.
pub struct Redirect {
    // Field order is drop order: the links go before the objects.
    _links: Vec<Link>,
    _objs: Vec<Object>,
    ports: Vec<(String, String)>,
}

impl std::fmt::Debug for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redirect")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl Redirect {
    /// For each `(ingress, egress)` pair of interfaces in the namespace at `netns`:
    /// loads the program, points its DEVMAP at `egress` and attaches it natively to
    /// `ingress`. On error, what was attached so far is detached again.
    pub fn attach(netns: &Path, pairs: &[(&str, &str)]) -> Result<Redirect, TrafficError> {
        let mut objs = Vec::with_capacity(pairs.len());
        for _ in pairs {
            let obj = ObjectBuilder::default()
                .open_memory(REDIRECT_OBJ)
                .and_then(|o| o.load())
                .map_err(TrafficError::bpf("load the redirect program"))?;
            objs.push(obj);
        }
        // A DEVMAP entry names its device in the namespace of the thread that writes it,
        // so the entries are written, like the links made, inside the switch's namespace.
        let objs_ref = &objs;
        let links = in_netns(netns, || {
            let mut links = Vec::with_capacity(pairs.len());
            for (obj, &(ingress, egress)) in objs_ref.iter().zip(pairs) {
                let rx = ifindex_in(netns, ingress)?;
                let tx = ifindex_in(netns, egress)?;
                let map = obj
                    .maps()
                    .find(|m| m.name() == "redirect_port")
                    .ok_or_else(|| {
                        TrafficError::Config("no map redirect_port in redirect.bpf.o".into())
                    })?;
                map.update(&0u32.to_ne_bytes(), &tx.to_ne_bytes(), MapFlags::ANY)
                    .map_err(TrafficError::bpf(format!(
                        "point the redirect from {ingress} at {egress}"
                    )))?;
                let prog = obj
                    .progs_mut()
                    .find(|p| p.name() == "xdp_redirect_port")
                    .ok_or_else(|| {
                        TrafficError::Config(
                            "no program xdp_redirect_port in redirect.bpf.o".into(),
                        )
                    })?;
                // An error here drops `links`: what was attached is detached again.
                links.push(
                    prog.attach_xdp(rx as i32)
                        .map_err(TrafficError::bpf(format!(
                            "attach the redirect program to {ingress}"
                        )))?,
                );
            }
            Ok(links)
        })?;
        Ok(Redirect {
            _links: links,
            _objs: objs,
            ports: pairs
                .iter()
                .map(|&(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
        })
    }
}
