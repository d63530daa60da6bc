/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Traffic sink: attached natively to the sink's veth. Counts every frame per CPU, tells
 * test frames (magic at the configured offset) from others, checks sequence order per
 * flow (per CPU: a frame whose sequence is not above the highest seen for its flow on
 * this CPU is late, i.e. reordered or duplicated), and for one in `sample_every` test
 * frames (by sequence number) sends `now - timestamp` to a ring buffer. Then XDP_DROP
 * (or XDP_PASS for frames that are not test frames, when configured).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "traffic.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_config);
} sink_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_counters);
} sink_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRAFFIC_MAX_FLOWS);
	__type(key, __u32);
	__type(value, __u64);
} sink_flow_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* 16 MiB: 699,050 samples */
} sink_latency SEC(".maps");

SEC("xdp")
int traffic_sink(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u32 zero = 0;
	struct sink_config *cfg = bpf_map_lookup_elem(&sink_config, &zero);
	struct sink_counters *c = bpf_map_lookup_elem(&sink_counters, &zero);
	if (!cfg || !c)
		return XDP_ABORTED;

	__u64 len = data_end - data;
	c->frames++;
	c->bytes += len;

	__u32 off = cfg->payload_off & TRAFFIC_MAX_OFF;
	__u8 *h = data + off;
	if (h + TRAFFIC_HDR_LEN > data_end ||
	    *(__u32 *)(h + TRAFFIC_HDR_OFF_MAGIC) != TRAFFIC_MAGIC) {
		c->other_frames++;
		c->other_bytes += len;
		return cfg->pass_other ? XDP_PASS : XDP_DROP;
	}
	c->test_frames++;
	c->test_bytes += len;

	__u32 flow = *(__u32 *)(h + TRAFFIC_HDR_OFF_INDEX) & TRAFFIC_FLOW_MASK;
	__u64 seq = *(__u64 *)(h + TRAFFIC_HDR_OFF_SEQ);
	__u64 *max = bpf_map_lookup_elem(&sink_flow_seq, &flow);
	if (max) {
		if (seq <= *max)
			c->seq_late++;
		else
			*max = seq;
	}

	__u32 every = cfg->sample_every;
	if (every && seq % every == 0) {
		struct lat_sample s = {
			.latency_ns = bpf_ktime_get_ns() - *(__u64 *)(h + TRAFFIC_HDR_OFF_TSTAMP),
			.seq = seq,
		};
		if (bpf_ringbuf_output(&sink_latency, &s, sizeof(s), 0))
			c->lat_lost++;
		else
			c->lat_samples++;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
