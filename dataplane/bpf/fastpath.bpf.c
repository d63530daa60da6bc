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
	__uint(max_entries, FP_MAX_PORTS);
	__type(key, __u32);
	__type(value, struct fp_port_stats);
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

static __always_inline void port_count(__u32 port, __u32 dir, __u64 bytes)
{
	struct fp_port_stats *v = bpf_map_lookup_elem(&fp_port_stats, &port);
	if (!v)
		return;
	if (dir == FP_PS_RX) {
		v->rx_frames += 1;
		v->rx_bytes += bytes;
	} else {
		v->tx_frames += 1;
		v->tx_bytes += bytes;
	}
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
	s = (s & 0xffff) + (s >> 16);
	return (__u32)s;
}

/* One bpf_csum_diff chunk of `n` bytes (a multiple of 4, at most 512) at *p into *s. */
#define SUM_CHUNK(n)                                                              \
	if (len & (n)) {                                                          \
		if ((void *)(p + (n)) > end)                                      \
			return -1;                                                \
		r = bpf_csum_diff(0, 0, (void *)p, (n), 0);                       \
		if (r < 0)                                                        \
			return -1;                                                \
		s += (__u64)r;                                                    \
		p += (n);                                                         \
	}

/*
 * The ones' complement sum, as native 16-bit words (fold() it), of the `len` bytes at
 * `p`, for a len under 4096 (an XDP frame is within a page); -1 if they pass `end`.
 * Constant-size bpf_csum_diff chunks, so that the verifier sees every access bounded.
 */
static __always_inline __s64 sum_bytes(__u8 *p, __u32 len, void *end)
{
	__u64 s = 0;
	__s64 r;

	if (len >= 4096)
		return -1;
	for (int i = 0; i < 7; i++) {
		if (len < 512)
			break;
		if ((void *)(p + 512) > end)
			return -1;
		r = bpf_csum_diff(0, 0, (void *)p, 512, 0);
		if (r < 0)
			return -1;
		s += (__u64)r;
		p += 512;
		len -= 512;
	}
	if (len >= 512)
		return -1;
	SUM_CHUNK(256)
	SUM_CHUNK(128)
	SUM_CHUNK(64)
	SUM_CHUNK(32)
	SUM_CHUNK(16)
	SUM_CHUNK(8)
	SUM_CHUNK(4)
	if (len & 2) {
		if ((void *)(p + 2) > end)
			return -1;
		s += *(__u16 *)p;
		p += 2;
	}
	if (len & 1) {
		if ((void *)(p + 1) > end)
			return -1;
		/* The last byte is the high-order byte of a zero-padded word. */
		__u8 b[2] = { *p, 0 };
		s += *(__u16 *)b;
	}
	return (__s64)s;
}

/* The UDP-over-IPv6 pseudo-header's sum (addresses at ip + 8, 32 bytes; next header
 * 17; `udp_len`), as native words; -1 if the header passes `end`. */
static __always_inline __s64 pseudo6(__u8 *ip, __u32 udp_len, void *end)
{
	if ((void *)(ip + 40) > end)
		return -1;
	__s64 r = bpf_csum_diff(0, 0, (void *)(ip + 8), 32, 0);
	if (r < 0)
		return -1;
	return r + bpf_htons(17) + bpf_htons(udp_len & 0xffff);
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* a remote VTEP's IPv4 address, network order */
	__type(value, __u32); /* its tunnel port */
} fp_vteps SEC(".maps");

/* The IPv6 ones (a separate map: hashing a 4-byte key is cheaper on the IPv4 path). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct fp_vtep_key); /* a remote VTEP's IPv6 address */
	__type(value, __u32);            /* its tunnel port */
} fp_vteps6 SEC(".maps");

static __always_inline __u64 rotl(__u64 x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Big-endian loads at p (bounds checked by the caller). */
static __always_inline __u64 be64(const __u8 *p)
{
	__u64 v;
	__builtin_memcpy(&v, p, 8);
	return bpf_be64_to_cpu(v);
}

static __always_inline __u32 be32(const __u8 *p)
{
	__u32 v;
	__builtin_memcpy(&v, p, 4);
	return bpf_ntohl(v);
}

/* encap::tunnel's mix: (h ^ v) times 2^64 + 0x9e3779b97f4a7c15, 128-bit, folded. */
static __always_inline __u64 mix(__u64 h, __u64 v)
{
	__u64 x = h ^ v, c = 0x9e3779b97f4a7c15ULL;
	__u64 xl = x & 0xffffffff, xh = x >> 32, cl = c & 0xffffffff, ch = c >> 32;
	__u64 p0 = xl * cl, p1 = xl * ch, p2 = xh * cl, p3 = xh * ch;
	__u64 mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
	__u64 lo = (p0 & 0xffffffff) | (mid << 32);
	__u64 hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32) + x;
	return lo ^ hi;
}

/*
 * encap::tunnel::flow_hash of an untagged inner frame of at least 60 bytes at `in`:
 * the same UDP source port as the workers give the flow.
 */
static __always_inline __u32 flow_hash(__u8 *in, void *end)
{
	if ((void *)(in + 60) > end)
		return 0;
	__u64 a = be64(in) ^ rotl(be64(in + 6) >> 16, 23);
	__u64 b = 0;
	__u16 ethertype = ((__u16)in[12] << 8) | in[13];
	__u8 *l3 = in + 14;
	__u64 l3len = (__u64)((long)end - (long)l3);
	__u8 proto = 0;
	__u32 l4 = 0;

	a ^= (__u64)ethertype << 48;
	if (ethertype == 0x0800 && l3len >= 20) {
		b ^= be64(l3 + 12);
		int frag = (((__u16)l3[6] << 8) | l3[7]) & 0x3fff;
		l4 = (l3[0] & 0x0f) * 4;
		proto = frag ? 0 : l3[9];
	} else if (ethertype == 0x86dd && l3len >= 40) {
		if ((void *)(l3 + 40) > end)
			return 0;
		b ^= be64(l3 + 8) ^ rotl(be64(l3 + 16), 13);
		b ^= rotl(be64(l3 + 24), 29) ^ rotl(be64(l3 + 32), 47);
		proto = l3[6];
		l4 = 40;
	}
	a ^= (__u64)proto << 40;
	if ((proto == 6 || proto == 17 || proto == 132) && l3len >= l4 + 4) {
		__u8 *ports = l3 + (l4 & 0x3f);
		if ((void *)(ports + 4) > end)
			return 0;
		b ^= rotl((__u64)be32(ports), 7);
	}
	__u64 h = mix(a, mix(b, 0x5bd1e995));
	return (__u32)(h ^ (h >> 32));
}

/* The ones' complement sum of a 20-byte IPv4 header, in network order (native 16-bit
 * loads: the sum is byte-order independent but for the final swap). */
static __always_inline __u16 csum_ipv4(const __u8 *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u64 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	return bpf_ntohs((__u16)fold(s));
}

/* Moves the first 12 bytes (the MAC addresses) by `delta` with the frame's start. */
static __always_inline int move_head(struct xdp_md *ctx, int delta)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 macs[12];
	if (data + 12 > end)
		return -1;
	__builtin_memcpy(macs, data, 12);
	if (bpf_xdp_adjust_head(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + 12 > end)
		return -1;
	__builtin_memcpy(data, macs, 12);
	return 0;
}

/* After the entry's checks: the source, the refresh, the redirect target. Returns
 * 0 to go on, or the XDP action to return. */
static __always_inline int admit(struct xdp_md *ctx, const struct fp_port *p,
				 struct fp_flow *f, const __u8 *src, __u64 now, __u64 vg,
				 __u64 cg)
{
	struct fp_mac_key mk = { .vlan = f->vlan };
	__builtin_memcpy(mk.mac, src, 6);
	struct fp_mac *m = bpf_map_lookup_elem(&fp_macs, &mk);
	if (!m)
		return punt(ctx, p, FP_C_PUNT_SRC_UNKNOWN);
	if (m->port != f->src_port)
		return punt(ctx, p, FP_C_PUNT_SRC_MOVED);
	if (m->vlan_gen != vg || m->cfg_gen != cg)
		return punt(ctx, p, FP_C_PUNT_STALE);
	/* The redirect target is checked before the frame is touched: after a rewrite
	 * it could no longer go to the workers as it came. */
	if (bpf_redirect_map(&fp_devs, f->out_port, 0) != XDP_REDIRECT)
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
	return 0;
}

/* Whether the flow's generations are current and it has not expired. */
static __always_inline int valid(const struct fp_flow *f, __u64 now, __u64 *vg, __u64 *cg)
{
	*vg = gen(f->vlan & 0x0fff);
	*cg = gen(FP_GEN_CFG);
	if (f->vlan_gen != *vg || f->cfg_gen != *cg || now >= f->expires_ns)
		return 0;
	if (f->op == FP_OP_ENCAP && f->neigh_gen != gen(FP_GEN_NEIGH))
		return 0;
	return 1;
}

/* A frame on the underlay port: a canonical VXLAN or GRE packet over IPv4 or IPv6 for
 * us, from a known VTEP, whose inner flow has an entry, is decapsulated and forwarded;
 * anything else goes to the workers, which judge it. */
static __always_inline int underlay(struct xdp_md *ctx, const struct fp_port *p)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	struct fp_config *cfg = bpf_map_lookup_elem(&fp_config, &(__u32){ 0 });
	struct fp_vtep_key vk6;
	__u32 saddr4 = 0;
	__u32 len = (__u32)(end - data);
	__u32 l4, ip_end;
	__u8 proto;
	int v6;

	/* The shortest tunnel packet: Ethernet, IPv4, GRE with a key, an inner header. */
	if (!cfg || (void *)(eth + 14 + 20 + 8 + 14) > end)
		goto miss;
	__u16 et = *(__u16 *)(eth + 12);
	__u8 *ip = eth + 14;
	if (et == bpf_htons(ETH_P_IP)) {
		if (!cfg->local_ip)
			goto miss;
		proto = ip[9];
		if (proto != 17 && proto != 47)
			goto miss;
		__u32 total = ((__u32)ip[2] << 8) | ip[3];
		/* Canonical only: no IPv4 options or fragments, a valid header checksum; for
		 * our address. */
		if (ip[0] != 0x45 || ((ip[6] & 0x3f) | ip[7]) || total > len - 14 ||
		    total < 20 + 8 + 14 || csum_ipv4(ip) != 0xffff ||
		    *(__u32 *)(ip + 16) != cfg->local_ip)
			return punt(ctx, p, FP_C_PUNT_OTHER);
		saddr4 = *(__u32 *)(ip + 12);
		l4 = 14 + 20;
		ip_end = 14 + total;
		v6 = 0;
	} else if (et == bpf_htons(ETH_P_IPV6)) {
		if ((void *)(ip + 40) > end)
			goto miss;
		const __u64 *l6 = (const __u64 *)cfg->local_ip6;
		if (!(l6[0] | l6[1]))
			goto miss;
		proto = ip[6];
		if (proto != 17 && proto != 47)
			goto miss;
		__u32 plen = ((__u32)ip[4] << 8) | ip[5];
		/* No extension headers; for our address. */
		const __u64 *d6 = (const __u64 *)(ip + 24);
		if ((ip[0] >> 4) != 6 || plen > len - 54 || plen < 8 + 14 ||
		    ((d6[0] ^ l6[0]) | (d6[1] ^ l6[1])))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		__builtin_memcpy(vk6.addr, ip + 8, 16);
		l4 = 14 + 40;
		ip_end = 54 + plen;
		v6 = 1;
	} else {
		goto miss;
	}
	/* Ethernet padding after the IP packet is stripped (at most a minimum frame's). */
	__u32 trail = len - ip_end;
	if (trail > 64)
		return punt(ctx, p, FP_C_PUNT_OTHER);
	if ((eth[0] ^ cfg->local_mac[0]) | (eth[1] ^ cfg->local_mac[1]) |
	    (eth[2] ^ cfg->local_mac[2]) | (eth[3] ^ cfg->local_mac[3]) |
	    (eth[4] ^ cfg->local_mac[4]) | (eth[5] ^ cfg->local_mac[5]))
		return punt(ctx, p, FP_C_PUNT_OTHER);

	struct fp_flow_key key = {};
	__u32 inner;
	__u8 *t = data + (l4 & 0x7f);
	if ((void *)(t + 16) > end)
		goto miss;
	if (proto == 17) {
		if (*(__u16 *)(t + 2) != cfg->vxlan_port)
			goto miss;
		__u32 udp_len = ((__u32)t[4] << 8) | t[5];
		__u16 csum = *(__u16 *)(t + 6);
		/* The UDP length the IP length says; over IPv4 no UDP checksum, over IPv6 one
		 * that verifies (a zero or a partial one is the workers' to judge); VXLAN
		 * flags I and no reserved bits. */
		if (udp_len != ip_end - l4 || udp_len < 16 + 14 || (!v6 && csum) || (v6 && !csum) ||
		    t[8] != 0x08 || (t[9] | t[10] | t[11] | t[15]))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		if (v6) {
			__s64 ps = pseudo6(ip, udp_len, end);
			__s64 us = sum_bytes(t, udp_len, end);
			if (ps < 0 || us < 0 || fold((__u64)ps + (__u64)us) != 0xffff)
				return punt(ctx, p, FP_C_PUNT_OTHER);
		}
		key.seg = FP_SEG_VNI | ((__u32)t[12] << 16) | ((__u32)t[13] << 8) | t[14];
		inner = l4 + 16;
	} else {
		/* GRE version 0 with a key and nothing else (no checksum, sequence number,
		 * routing or reserved bits), carrying Ethernet (RFC 2784, RFC 2890). */
		if (t[0] != 0x20 || t[1] != 0 || t[2] != 0x65 || t[3] != 0x58)
			return punt(ctx, p, FP_C_PUNT_OTHER);
		key.seg = be32(t + 4);
		key.gre = 1;
		inner = l4 + 8;
	}
	__u32 *vtep = v6 ? bpf_map_lookup_elem(&fp_vteps6, &vk6)
			 : bpf_map_lookup_elem(&fp_vteps, &saddr4);
	if (!vtep)
		return punt(ctx, p, FP_C_PUNT_OTHER);
	__u32 vtep_port = *vtep;
	__u32 inner_len = ip_end - inner;
	__u8 *in = data + (inner & 0x7f);
	if ((void *)(in + 14) > end)
		goto miss;
	__u16 in_type = *(__u16 *)(in + 12);
	if (in_type == bpf_htons(ETH_P_8021Q) || in_type == bpf_htons(ETH_P_8021AD) ||
	    in_type == bpf_htons(0x9100) || (in[6] & 1))
		return punt(ctx, p, FP_C_PUNT_OTHER);
	if (in[0] & 1)
		goto miss;
	key.in_port = vtep_port;
	__builtin_memcpy(key.dst, in, 6);
	struct fp_flow *f = bpf_map_lookup_elem(&fp_flows, &key);
	if (!f)
		goto miss;
	__u64 now = bpf_ktime_get_ns(), vg, cg;
	if (!valid(f, now, &vg, &cg))
		return punt(ctx, p, FP_C_PUNT_STALE);
	if (f->op != FP_OP_NONE && f->op != FP_OP_PUSH)
		return punt(ctx, p, FP_C_PUNT_OTHER);
	__u32 out_len = inner_len + (f->op == FP_OP_PUSH ? 4 : 0);
	if (inner_len < 60)
		return punt(ctx, p, FP_C_PUNT_SHORT);
	if (out_len > f->max_len)
		return punt(ctx, p, FP_C_PUNT_MTU);
	__u8 src[6];
	__builtin_memcpy(src, in + 6, 6);
	int r = admit(ctx, p, f, src, now, vg, cg);
	if (r)
		return r;
	__u32 out = f->out_port;
	__u8 op = f->op;
	__u16 vid = f->vid & 0x0fff;
	/* Strip the outer headers and any Ethernet padding after the IP packet. */
	if (bpf_xdp_adjust_head(ctx, (int)(inner & 0x7f)))
		return XDP_DROP;
	if (trail && bpf_xdp_adjust_tail(ctx, -(int)(trail & 0x7f)))
		return XDP_DROP;
	if (op == FP_OP_PUSH) {
		if (move_head(ctx, -4))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		if (data + 18 > end)
			return XDP_DROP;
		*(__u16 *)(data + 12) = bpf_htons(ETH_P_8021Q);
		*(__u16 *)(data + 14) = bpf_htons(vid);
	}
	count(FP_C_HIT);
	count(FP_C_DECAP);
	if (key.gre)
		count(FP_C_DECAP_GRE);
	if (v6)
		count(FP_C_DECAP_IPV6);
	port_count(p->id, FP_PS_RX, len);
	port_count(vtep_port, FP_PS_RX, inner_len);
	port_count(out, FP_PS_TX, out_len);
	/* admit() set the redirect to `out` (checked before the frame was touched). */
	return XDP_REDIRECT;
miss:
	count(FP_C_MISS);
	return bpf_redirect_map(&fp_xsks, p->xsk_base + ctx->rx_queue_index, XDP_PASS);
}

/*
 * Toward a remote VTEP: the inner frame (already popped if it was tagged) gets the
 * template's `L` bytes of outer headers, IPv6 if `v6`, GRE if `gre` (else VXLAN), with
 * the lengths, the IPv4 checksum, the VNI or key, and for VXLAN the UDP source port of
 * the inner flow's hash (and over IPv6 the UDP checksum). Returns -1 if it could not.
 */
static __always_inline int push_outer(struct xdp_md *ctx, struct fp_flow *f, const int L,
				      const int v6, const int gre)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 inner_len = (__u32)(end - data);
	__u32 id = f->vni;
	__u16 sport = 0;
	__s64 inner_sum = 0;
	if (!gre) {
		__u32 hash = flow_hash(data, end);
		sport = 49152 | ((hash ^ (hash >> 16)) & 0x3fff);
		if (v6) {
			/* Over IPv6 the UDP checksum is mandatory (RFC 7348 §6, RFC 8200 §8.1). */
			inner_sum = sum_bytes(data, inner_len, end);
			if (inner_sum < 0)
				return -1;
		}
	}
	if (bpf_xdp_adjust_head(ctx, -L))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	__u8 *o = data;
	if ((void *)(o + L) > end)
		return -1;
	__builtin_memcpy(o, f->hdr, L);
	__u8 *ip = o + 14;
	__u8 *t = ip + (v6 ? 40 : 20);
	if (v6) {
		*(__u16 *)(ip + 4) = bpf_htons((__u16)(inner_len + L - 54));
	} else {
		*(__u16 *)(ip + 2) = bpf_htons((__u16)(inner_len + L - 14));
		*(__u16 *)(ip + 4) = 0; /* DF: the ID is 0 (RFC 6864) */
		*(__u16 *)(ip + 10) = 0;
		*(__u16 *)(ip + 10) = bpf_htons((__u16)~csum_ipv4(ip));
	}
	if (gre) {
		*(__u32 *)(t + 4) = bpf_htonl(id);
		return 0;
	}
	__u16 udp_len = (__u16)(inner_len + 16);
	*(__u16 *)(t + 0) = bpf_htons(sport);
	*(__u16 *)(t + 4) = bpf_htons(udp_len);
	t[12] = (__u8)(id >> 16);
	t[13] = (__u8)(id >> 8);
	t[14] = (__u8)id;
	if (v6) {
		*(__u16 *)(t + 6) = 0;
		__s64 ps = pseudo6(ip, udp_len, end);
		__s64 hs = bpf_csum_diff(0, 0, (void *)t, 16, 0);
		if (ps < 0 || hs < 0)
			return -1;
		__u16 c = (__u16)~fold((__u64)ps + (__u64)hs + (__u64)inner_sum);
		*(__u16 *)(t + 6) = c ? c : 0xffff;
	}
	return 0;
}

/* The outer headers' length of tunnel kind `tun`. */
static __always_inline __u32 tun_len(__u8 tun)
{
	switch (tun) {
	case FP_TUN_VXLAN4:
		return FP_VXLAN4_LEN;
	case FP_TUN_VXLAN6:
		return FP_VXLAN6_LEN;
	case FP_TUN_GRE4:
		return FP_GRE4_LEN;
	default:
		return FP_GRE6_LEN;
	}
}

static __always_inline int encap(struct xdp_md *ctx, struct fp_flow *f, int tagged)
{
	if (tagged && move_head(ctx, 4))
		return -1;
	switch (f->tun) {
	case FP_TUN_VXLAN4:
		return push_outer(ctx, f, FP_VXLAN4_LEN, 0, 0);
	case FP_TUN_VXLAN6:
		return push_outer(ctx, f, FP_VXLAN6_LEN, 1, 0);
	case FP_TUN_GRE4:
		return push_outer(ctx, f, FP_GRE4_LEN, 0, 1);
	case FP_TUN_GRE6:
		return push_outer(ctx, f, FP_GRE6_LEN, 1, 1);
	default:
		return -1;
	}
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
	if (p->flags & FP_PORT_UNDERLAY)
		return underlay(ctx, p);

	__u8 *eth = data;
	if ((void *)(eth + 18) > end)
		return punt(ctx, p, FP_C_PUNT_OTHER);

	struct fp_flow_key key = {};
	__u16 ethertype = *(__u16 *)(eth + 12);
	__u32 l3 = 14;
	__u16 tci = 0;
	int tagged = 0;

	if (ethertype == bpf_htons(ETH_P_8021Q)) {
		tci = bpf_ntohs(*(__u16 *)(eth + 14));
		__u16 vid = tci & 0x0fff;
		ethertype = *(__u16 *)(eth + 16);
		/* Priority tags, reserved VIDs and a second tag are the workers' to judge. */
		if (vid == 0 || vid == 0x0fff || ethertype == bpf_htons(ETH_P_8021Q) ||
		    ethertype == bpf_htons(ETH_P_8021AD) || ethertype == bpf_htons(0x9100))
			return punt(ctx, p, FP_C_PUNT_OTHER);
		key.seg = FP_SEG_TAGGED | vid;
		tagged = 1;
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

	__u64 now = bpf_ktime_get_ns(), vg, cg;
	if (!valid(f, now, &vg, &cg))
		return punt(ctx, p, FP_C_PUNT_STALE);
	/* The source: a unicast MAC the FDB has on the port this flow expects it on. */
	if (eth[6] & 1)
		return punt(ctx, p, FP_C_PUNT_OTHER);

	__u32 len = (__u32)(end - data);
	__u32 out_len;
	__u8 op = f->op;
	if (op == FP_OP_ENCAP) {
		/* The inner frame: untagged, at least 60 bytes, within the underlay MTU (and
		 * what sum_bytes() takes). */
		__u32 inner = len - (tagged ? 4 : 0);
		if (inner < 60)
			return punt(ctx, p, FP_C_PUNT_SHORT);
		if (inner > f->max_len || inner >= 4096 || f->tun > FP_TUN_GRE6)
			return punt(ctx, p, FP_C_PUNT_MTU);
		out_len = inner + tun_len(f->tun);
	} else {
		out_len = len;
		if (op == FP_OP_POP)
			out_len -= 4;
		else if (op == FP_OP_PUSH)
			out_len += 4;
		/* The workers pad short frames (ETH_ZLEN, before a tag is pushed). */
		if ((op == FP_OP_POP ? out_len : len) < 60)
			return punt(ctx, p, FP_C_PUNT_SHORT);
		if (out_len > f->max_len)
			return punt(ctx, p, FP_C_PUNT_MTU);
	}
	if (maybe_partial(data, end, l3, ethertype))
		return punt(ctx, p, FP_C_PUNT_CSUM);
	__u8 src[6];
	__builtin_memcpy(src, eth + 6, 6);
	int r = admit(ctx, p, f, src, now, vg, cg);
	if (r)
		return r;

	__u32 out = f->out_port;
	__u32 stat = f->stat_port;
	__u16 vid = f->vid & 0x0fff;
	switch (op) {
	case FP_OP_NONE:
		break;
	case FP_OP_XLATE: {
		__u16 *t = (__u16 *)(eth + 14);
		*t = bpf_htons((tci & 0xf000) | vid);
		break;
	}
	case FP_OP_POP:
		if (move_head(ctx, 4))
			return XDP_DROP;
		break;
	case FP_OP_PUSH:
		if (move_head(ctx, -4))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 18) > end)
			return XDP_DROP;
		*(__u16 *)(eth + 12) = bpf_htons(ETH_P_8021Q);
		*(__u16 *)(eth + 14) = bpf_htons(vid);
		break;
	case FP_OP_ENCAP:
		if (encap(ctx, f, tagged) < 0)
			return XDP_DROP;
		port_count(stat, FP_PS_TX, out_len);
		count(FP_C_ENCAP);
		if (f->tun == FP_TUN_GRE4 || f->tun == FP_TUN_GRE6)
			count(FP_C_ENCAP_GRE);
		if (f->tun == FP_TUN_VXLAN6 || f->tun == FP_TUN_GRE6)
			count(FP_C_ENCAP_IPV6);
		break;
	default:
		return punt(ctx, p, FP_C_PUNT_OTHER);
	}
	count(FP_C_HIT);
	port_count(p->id, FP_PS_RX, len);
	port_count(out, FP_PS_TX, out_len);
	/* admit() set the redirect to `out` (checked before the frame was touched). */
	return XDP_REDIRECT;
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
