/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The XDP fast path's maps, shared with userspace: dataplane/src/fastpath/abi.rs
 * mirrors every struct here field for field (repr(C)); change both together.
 */
#ifndef VSWITCH_FASTPATH_H
#define VSWITCH_FASTPATH_H

#include <linux/types.h>

#define FP_MAX_PORTS 256
/* Queues per port in the XSKMAP: entry id * FP_MAX_QUEUES + rx queue. */
#define FP_MAX_QUEUES 64
#define FP_MAX_FLOWS 65536
#define FP_MAX_MACS 65536
/* gens[0..4096): per local VLAN; then the configuration's generation, then the
 * underlay neighbours' (a VTEP's next-hop MAC changed). */
#define FP_GEN_CFG 4096
#define FP_GEN_NEIGH 4097
/* 4608 u64 = 9 pages: an mmapable array is mapped whole. */
#define FP_GENS 4608

/* fp_port.flags */
#define FP_PORT_FAST 1     /* the fast path may take this port's frames */
#define FP_PORT_UNDERLAY 2 /* the underlay port: tunnel packets are decapsulated */

/* fp_flow_key.seg: how the frame arrived on the port. */
#define FP_SEG_UNTAGGED 0
#define FP_SEG_TAGGED 0x1000   /* | VID */
#define FP_SEG_VNI 0x01000000   /* | VNI: decapsulated VXLAN, keyed by the VTEP's port */
/* fp_flow_key.gre: 1 when the frame was decapsulated from GRE (seg: the 32-bit key). */

/* fp_flow.op: what the frame needs on its way out. */
#define FP_OP_NONE 0  /* untagged in, untagged out */
#define FP_OP_POP 1   /* tagged in, untagged out */
#define FP_OP_XLATE 2 /* tagged in, tagged out (VID rewritten, PCP/DEI kept) */
#define FP_OP_PUSH 3  /* untagged in, tagged out (PCP 0) */
#define FP_OP_ENCAP 4 /* to a remote VTEP: popped if tagged, then fp_flow.tun */

/* fp_flow.tun: the encapsulation of an FP_OP_ENCAP entry, and the bytes of its outer
 * headers (Ethernet, IP, then UDP + VXLAN or GRE with a key). */
#define FP_TUN_VXLAN4 0
#define FP_TUN_VXLAN6 1
#define FP_TUN_GRE4 2
#define FP_TUN_GRE6 3
#define FP_VXLAN4_LEN 50
#define FP_VXLAN6_LEN 70
#define FP_GRE4_LEN 42
#define FP_GRE6_LEN 62
#define FP_HDR_MAX 72

/* Counters (per CPU): fp_stats[i]. */
enum fp_counter {
	FP_C_HIT = 0,         /* forwarded in the kernel */
	FP_C_MISS,            /* no fast-path entry: to the workers */
	FP_C_PUNT_STALE,      /* entry older than the FDB or configuration */
	FP_C_PUNT_SRC_UNKNOWN,/* source MAC not known on any port */
	FP_C_PUNT_SRC_MOVED,  /* source MAC known on another port (a move) */
	FP_C_PUNT_REFRESH,    /* the source's FDB entry needs refreshing */
	FP_C_PUNT_CSUM,       /* TCP/UDP checksum may be partial (TX offload) */
	FP_C_PUNT_SHORT,      /* needs padding to 60 bytes */
	FP_C_PUNT_MTU,        /* longer than the egress port takes */
	FP_C_PUNT_NO_DEV,     /* egress port not in the devmap */
	FP_C_PUNT_OTHER,      /* a header the fast path does not take */
	FP_C_NOT_OURS,        /* arrived on a port the fast path does not know */
	FP_C_ENCAP,           /* hits encapsulated (VXLAN or GRE) */
	FP_C_DECAP,           /* hits decapsulated (VXLAN or GRE) */
	FP_C_ENCAP_GRE,       /* of those encapsulated: in GRE */
	FP_C_DECAP_GRE,       /* of those decapsulated: from GRE */
	FP_C_ENCAP_IPV6,      /* of those encapsulated: over IPv6 */
	FP_C_DECAP_IPV6,      /* of those decapsulated: from over IPv6 */
	FP_C_COUNT,
};

/* Per port per CPU: fp_port_stats[id]. */
struct fp_port_stats {
	__u64 rx_frames;
	__u64 rx_bytes;
	__u64 tx_frames;
	__u64 tx_bytes;
};
#define FP_PS_RX 0
#define FP_PS_TX 1

struct fp_port {
	__u32 id;       /* the switch's port number (PortId) */
	__u32 xsk_base; /* id * FP_MAX_QUEUES */
	__u32 flags;
	__u32 pad;
};

struct fp_flow_key {
	__u32 in_port;
	__u32 seg;
	__u8 dst[6];
	__u8 gre;
	__u8 pad;
};

struct fp_flow {
	__u64 vlan_gen;   /* gens[vlan] when the decision was taken */
	__u64 cfg_gen;    /* gens[FP_GEN_CFG] likewise */
	__u64 expires_ns; /* CLOCK_MONOTONIC: the destination's FDB entry ages out */
	__u64 last_hit_ns;
	__u64 neigh_gen;  /* encap: gens[FP_GEN_NEIGH] when the template was taken */
	__u32 out_port;   /* devmap key */
	__u32 src_port;   /* where the source MAC must be learned */
	__u32 max_len;    /* longest frame the egress port sends (encap: inner frame) */
	__u32 vni;        /* encap: the VNI or the GRE key */
	__u32 stat_port;  /* encap: the tunnel port, for its counters */
	__u16 vlan;       /* the network's local VLAN */
	__u16 vid;        /* VID pushed or written */
	__u8 op;
	__u8 tun;         /* encap: FP_TUN_* */
	__u8 pad[6];
	__u8 hdr[FP_HDR_MAX]; /* encap: the outer headers' template (FP_*_LEN bytes) */
};

struct fp_mac_key {
	__u16 vlan;
	__u8 mac[6];
};

struct fp_mac {
	__u64 vlan_gen;
	__u64 cfg_gen;
	__u64 refresh_ns; /* last punt for a refresh (or the install) */
	__u64 last_hit_ns;
	__u32 port;
	__u32 pad;
};

struct fp_config {
	__u64 refresh_ns;   /* punt a source for a refresh this often */
	__u32 local_ip;     /* the local VTEP's IPv4 address, network order (0: none) */
	__u16 vxlan_port;   /* network order */
	__u8 local_mac[6];  /* the underlay's MAC */
	__u8 pad[4];
	__u8 local_ip6[16]; /* the local VTEP's IPv6 address (all zero: none), at 24 */
};

/* fp_vteps6's key: a remote VTEP's IPv6 address. */
struct fp_vtep_key {
	__u8 addr[16];
};

/* The offsets abi.rs encodes at. */
_Static_assert(sizeof(struct fp_flow_key) == 16, "fp_flow_key");
_Static_assert(__builtin_offsetof(struct fp_flow, hdr) == 72, "fp_flow.hdr");
_Static_assert(sizeof(struct fp_flow) == 144, "fp_flow");
_Static_assert(__builtin_offsetof(struct fp_config, local_ip6) == 24, "fp_config");
_Static_assert(sizeof(struct fp_config) == 40, "fp_config");
_Static_assert(sizeof(struct fp_mac) == 40, "fp_mac");

#endif
