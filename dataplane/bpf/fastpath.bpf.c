/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vswitch's XDP fast path, attached to every port (dataplane/src/fastpath/ loads it).
 *
 * A frame whose flow (ingress port, how it is tagged, destination MAC) has an entry
 * that is still valid is forwarded here: the source MAC is checked against the port
 * the FDB has it on, the 802.1Q rewrite is applied, and the frame is redirected
 * through the devmap to the egress port. Everything else goes to the port's AF_XDP
 * socket, exactly as libxdp's default program would send it: the workers decide, and
 * offer their known-unicast decisions back as entries.
 *
 * An entry is valid while the generations it was taken under are current: gens[] is
 * shared memory that every FDB replica bumps (for the network's local VLAN) before it
 * changes a decision, and the control thread bumps (the configuration's) before new
 * tables reach the workers. So the fast path never forwards a frame where the workers
 * would not: a move, an aged entry, a flush or a new static entry makes the entries of
 * its VLAN stale before any worker decides differently.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "fastpath.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FP_MAX_PORTS * FP_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} fp_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, FP_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} fp_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_PORTS);
	__type(key, __u32); /* ifindex */
	__type(value, struct fp_port);
} fp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_FLOWS);
	__type(key, struct fp_flow_key);
	__type(value, struct fp_flow);
} fp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_MACS);
	__type(key, struct fp_mac_key);
	__type(value, struct fp_mac);
} fp_macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FP_GENS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} fp_gens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fp_config);
} fp_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} fp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_MAX_PORTS * FP_PS_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} fp_port_stats SEC(".maps");

/* Per egress ifindex: frames the devmap could not hand to it because the device
 * cannot take redirected frames (a veth whose peer has no NAPI: -ENXIO) or is down
 * (-ENETDOWN). The agent stops redirecting to such a port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u64);
} fp_xmit_errors SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&fp_stats, &c);
	if (v)
		*v += 1;
}

static __always_inline void port_count(__u32 port, __u32 field, __u64 bytes)
{
	__u32 i = port * FP_PS_COUNT + field;
	__u64 *v = bpf_map_lookup_elem(&fp_port_stats, &i);
	if (v)
		v[0] += 1;
	i += 1;
	v = bpf_map_lookup_elem(&fp_port_stats, &i);
	if (v)
		v[0] += bytes;
}

static __always_inline __u64 gen(__u32 i)
{
	__u64 *g = bpf_map_lookup_elem(&fp_gens, &i);
	return g ? *(volatile __u64 *)g : ~0ULL;
}

/* To the workers: the port's AF_XDP socket for this queue (XDP_PASS without one). */
static __always_inline int punt(struct xdp_md *ctx, const struct fp_port *p, __u32 why)
{
	count(why);
	return bpf_redirect_map(&fp_xsks, p->xsk_base + ctx->rx_queue_index, XDP_PASS);
}

static __always_inline __u32 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/*
 * Whether a TCP/UDP checksum may be partial (a veth or tap peer's TX offload leaves the
 * pseudo-header sum in it, and nothing in an XDP redirect finishes it): the workers'
 * test (encap::checksum::complete_partial's first step), so that they complete it.
 */
static __always_inline int maybe_partial(void *data, void *end, __u32 l3, __u16 ethertype)
{
	__u8 *ip = data + l3;
	__u64 sum = 0;
	__u32 len, field;
	__u8 proto;

	if (ethertype == bpf_htons(ETH_P_IP)) {
		if ((void *)(ip + 20) > end)
			return 0;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		__u32 total = ((__u32)ip[2] << 8) | ip[3];
		if ((ip[0] >> 4) != 4 || ihl < 20 || ihl > 60 || ((ip[6] & 0x3f) | ip[7]) ||
		    total < ihl)
			return 0;
		proto = ip[9];
		if (proto != 6 && proto != 17)
			return 0;
		len = total - ihl;
		field = l3 + ihl + (proto == 6 ? 16 : 6);
		if ((proto == 6 && len < 20) || (proto == 17 && len < 8))
			return 0;
		__u16 *a = (__u16 *)(ip + 12);
		sum = (__u64)a[0] + a[1] + a[2] + a[3];
	} else if (ethertype == bpf_htons(ETH_P_IPV6)) {
		if ((void *)(ip + 40) > end)
			return 0;
		if ((ip[0] >> 4) != 6)
			return 0;
		proto = ip[6];
		if (proto != 6 && proto != 17)
			return 0;
		len = ((__u32)ip[4] << 8) | ip[5];
		field = l3 + 40 + (proto == 6 ? 16 : 6);
		if ((proto == 6 && len < 20) || (proto == 17 && len < 8))
			return 0;
		__u16 *a = (__u16 *)(ip + 8);
#pragma unroll
		for (int i = 0; i < 16; i++)
			sum += a[i];
	} else {
		return 0;
	}
	/* The pseudo-header's protocol and length, as big-endian words. */
	sum += bpf_htons(proto) + bpf_htons(len & 0xffff) + bpf_htons(len >> 16);
	field &= 0x3ff;
	__u16 *f = data + field;
	if ((void *)(f + 1) > end)
		return 0;
	return *f == fold(sum);
}

SEC("xdp")
int vswitch_fp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	struct fp_port *p = bpf_map_lookup_elem(&fp_ports, &ifindex);

	if (!p) {
		count(FP_C_NOT_OURS);
		return XDP_PASS;
	}
	if (!(p->flags & FP_PORT_FAST))
		return bpf_redirect_map(&fp_xsks, p->xsk_base + ctx->rx_queue_index, XDP_PASS);

	__u8 *eth = data;
	if ((void *)(eth + 18) > end)
		return punt(ctx, p, FP_C_PUNT_OTHER);

	struct fp_flow_key key = {};
	__u16 ethertype = *(__u16 *)(eth + 12);
	__u32 l3 = 14;
	__u16 tci = 0;

	if (ethertype == bpf_htons(ETH_P_8021Q)) {
		tci = bpf_ntohs(*(__u16 *)(eth + 14));
		__u16 vid = tci & 0x0fff;
		ethertype = *(__u16 *)(eth + 16);
		/* Priority tags, reserved VIDs and a second tag are the workers' to judge. */
		if (vid == 0 || vid == 0x0fff || ethertype == bpf_htons(ETH_P_8021Q) ||
		    ethertype == bpf_htons(ETH_P_8021AD))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		key.seg = FP_SEG_TAGGED | vid;
		l3 = 18;
	} else if (ethertype == bpf_htons(ETH_P_8021AD) || ethertype == bpf_htons(0x9100)) {
		return punt(ctx, p, FP_C_PUNT_OTHER);
	}
	/* Multicast and broadcast destinations flood: the workers'. */
	if (eth[0] & 1) {
		count(FP_C_MISS);
		return bpf_redirect_map(&fp_xsks, p->xsk_base + ctx->rx_queue_index, XDP_PASS);
	}
	key.in_port = p->id;
	__builtin_memcpy(key.dst, eth, 6);
	struct fp_flow *f = bpf_map_lookup_elem(&fp_flows, &key);
	if (!f) {
		count(FP_C_MISS);
		return bpf_redirect_map(&fp_xsks, p->xsk_base + ctx->rx_queue_index, XDP_PASS);
	}

	__u64 now = bpf_ktime_get_ns();
	__u64 vg = gen(f->vlan & 0x0fff), cg = gen(FP_GEN_CFG);
	if (f->vlan_gen != vg || f->cfg_gen != cg || now >= f->expires_ns)
		return punt(ctx, p, FP_C_PUNT_STALE);

	/* The source: a unicast MAC the FDB has on the port this flow expects it on. */
	if (eth[6] & 1)
		return punt(ctx, p, FP_C_PUNT_OTHER);
	struct fp_mac_key mk = { .vlan = f->vlan };
	__builtin_memcpy(mk.mac, eth + 6, 6);
	struct fp_mac *m = bpf_map_lookup_elem(&fp_macs, &mk);
	if (!m)
		return punt(ctx, p, FP_C_PUNT_SRC_UNKNOWN);
	if (m->port != f->src_port)
		return punt(ctx, p, FP_C_PUNT_SRC_MOVED);
	if (m->vlan_gen != vg || m->cfg_gen != cg)
		return punt(ctx, p, FP_C_PUNT_STALE);

	__u32 len = (__u32)(end - data);
	__u32 out_len = len;
	if (f->op == FP_OP_POP)
		out_len -= 4;
	else if (f->op == FP_OP_PUSH)
		out_len += 4;
	/* The workers pad short frames (ETH_ZLEN, before a tag is pushed). */
	if ((f->op == FP_OP_POP ? out_len : len) < 60)
		return punt(ctx, p, FP_C_PUNT_SHORT);
	if (out_len > f->max_len)
		return punt(ctx, p, FP_C_PUNT_MTU);
	if (maybe_partial(data, end, l3, ethertype))
		return punt(ctx, p, FP_C_PUNT_CSUM);

	__u32 out = f->out_port;
	/* The redirect target is checked before the frame is touched: after a rewrite
	 * it could no longer go to the workers as it came. */
	if (bpf_redirect_map(&fp_devs, out, 0) != XDP_REDIRECT)
		return punt(ctx, p, FP_C_PUNT_NO_DEV);

	struct fp_config *cfg = bpf_map_lookup_elem(&fp_config, &(__u32){ 0 });
	if (cfg && now - m->refresh_ns >= cfg->refresh_ns) {
		/* One frame per refresh period goes to a worker, which refreshes the entry
		 * in the FDB (that ages sources the workers no longer see). */
		m->refresh_ns = now;
		return punt(ctx, p, FP_C_PUNT_REFRESH);
	}
	m->last_hit_ns = now;
	f->last_hit_ns = now;

	__u16 vid = f->vid & 0x0fff;
	switch (f->op) {
	case FP_OP_NONE:
		break;
	case FP_OP_XLATE: {
		__u16 *t = (__u16 *)(eth + 14);
		*t = bpf_htons((tci & 0xf000) | vid);
		break;
	}
	case FP_OP_POP: {
		__u8 macs[12];
		__builtin_memcpy(macs, eth, 12);
		if (bpf_xdp_adjust_head(ctx, 4))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 14) > end)
			return XDP_DROP;
		__builtin_memcpy(eth, macs, 12);
		break;
	}
	case FP_OP_PUSH: {
		__u8 macs[12];
		__builtin_memcpy(macs, eth, 12);
		if (bpf_xdp_adjust_head(ctx, -4))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 18) > end)
			return XDP_DROP;
		__builtin_memcpy(eth, macs, 12);
		*(__u16 *)(eth + 12) = bpf_htons(ETH_P_8021Q);
		*(__u16 *)(eth + 14) = bpf_htons(vid);
		break;
	}
	default:
		return punt(ctx, p, FP_C_PUNT_OTHER);
	}
	count(FP_C_HIT);
	port_count(p->id, FP_PS_RX_FRAMES, len);
	port_count(out, FP_PS_TX_FRAMES, out_len);
	return bpf_redirect_map(&fp_devs, out, 0);
}

/* The tracepoint's record (/sys/kernel/tracing/events/xdp/xdp_devmap_xmit/format). */
struct devmap_xmit {
	__u64 common;
	int from_ifindex;
	__u32 act;
	int to_ifindex;
	int drops;
	int sent;
	int err;
};

#define ENXIO 6
#define ENETDOWN 100

SEC("tracepoint/xdp/xdp_devmap_xmit")
int vswitch_fp_xmit(struct devmap_xmit *ctx)
{
	if (ctx->drops <= 0 || (ctx->err != -ENXIO && ctx->err != -ENETDOWN))
		return 0;
	__u32 k = (__u32)ctx->to_ifindex;
	/* Only the fast path's ports are counted. */
	if (!bpf_map_lookup_elem(&fp_ports, &k))
		return 0;
	__u64 *v = bpf_map_lookup_elem(&fp_xmit_errors, &k);
	if (v) {
		__sync_fetch_and_add(v, (__u64)ctx->drops);
	} else {
		__u64 n = (__u64)ctx->drops;
		bpf_map_update_elem(&fp_xmit_errors, &k, &n, BPF_ANY);
	}
	return 0;
}
