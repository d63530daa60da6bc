/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic generator: run with BPF_PROG_RUN and BPF_F_TEST_XDP_LIVE_FRAMES on the
 * generator's veth. Every frame gets a flow index (round robin over `flows`), the next
 * sequence number and a timestamp in its test header; up to four MAC fields and an
 * optional UDP source port are rewritten from the flow index. Then XDP_TX, which
 * BPF_PROG_RUN turns into a redirect to the ingress ifindex given in the context (the
 * same path as bpf_redirect() to that ifindex, and measured a little faster).
 *
 * The state (sequence, next flow) is one plain array entry: the Rust side runs this
 * program from one thread at a time, so no atomics are needed.
 *
 * The Rust side also attaches this program to the namespace's loopback, only so that it
 * stays in the kernel's XDP dispatcher: otherwise every BPF_PROG_RUN call adds it to the
 * dispatcher and removes it again, which patches kernel text and waits for RCU (tens of
 * ms per call). Frames that did not come from BPF_PROG_RUN on the generator's ifindex
 * (i.e. the loopback's) are passed untouched.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "traffic.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} gen_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_state SEC(".maps");

static __always_inline void write_mac_low(__u8 *p, __u32 low)
{
	p[3] = (__u8)(low >> 16);
	p[4] = (__u8)(low >> 8);
	p[5] = (__u8)low;
}

SEC("xdp")
int traffic_gen(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_config *cfg = bpf_map_lookup_elem(&gen_config, &zero);
	struct gen_state *st = bpf_map_lookup_elem(&gen_state, &zero);
	if (!cfg || !st)
		return XDP_ABORTED;
	if (ctx->ingress_ifindex != cfg->gen_ifindex)
		return XDP_PASS;

	__u32 flow = st->flow;
	__u32 next = flow + 1;
	st->flow = next >= cfg->flows ? 0 : next;
	__u64 seq = st->seq + 1;
	st->seq = seq;

	__u32 off = cfg->payload_off & TRAFFIC_MAX_OFF;
	__u8 *h = data + off;
	if (h + TRAFFIC_HDR_LEN > data_end)
		return XDP_ABORTED;
	__u32 *index = (__u32 *)(h + TRAFFIC_HDR_OFF_INDEX);
	*index = (*index & ~TRAFFIC_FLOW_MASK) | flow;
	*(__u64 *)(h + TRAFFIC_HDR_OFF_SEQ) = seq;
	*(__u64 *)(h + TRAFFIC_HDR_OFF_TSTAMP) = bpf_ktime_get_ns();

	__u32 n_mac = cfg->n_mac;
#pragma unroll
	for (int i = 0; i < TRAFFIC_MAX_MAC_FIELDS; i++) {
		if (i < n_mac) {
			__u32 moff = cfg->mac_off[i] & TRAFFIC_MAX_OFF;
			__u8 *m = data + moff;
			if (m + 6 > data_end)
				return XDP_ABORTED;
			write_mac_low(m, cfg->mac_low[i] + flow);
		}
	}

	__u32 soff = cfg->sport_off & TRAFFIC_MAX_OFF;
	if (soff) {
		__u8 *s = data + soff;
		if (s + 2 > data_end)
			return XDP_ABORTED;
		__u32 port = cfg->sport_base + flow;
		s[0] = (__u8)(port >> 8);
		s[1] = (__u8)port;
	}

	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
