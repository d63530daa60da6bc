/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between the generator (gen.bpf.c), the sink (sink.bpf.c) and their Rust loader
 * (bench/src/wire/traffic/): map value layouts and the test header. Every struct here has
 * a `#[repr(C)]` twin in bench/src/wire/traffic/layout.rs; keep the two in step.
 *
 * The test header sits at a configured offset of the frame (the payload of a UDP or
 * tunnelled frame). Fields are in host byte order (both ends run on this host):
 *
 *    0       4   7   8              16              24
 *    +-------+---+---+---------------+---------------+
 *    | magic |flow|st|   sequence    |  timestamp ns |
 *    +-------+---+---+---------------+---------------+
 *
 * 24 bytes, so that Ethernet + IPv4 + UDP + header is a 66-byte frame. Bytes 4..8 are one
 * u32 "index": flow index in the low 24 bits (flows are MAC offsets, 24 bits at most),
 * stream index in the high 8. magic and stream are written by the Rust side into each
 * stream's template; the generator program writes the flow index, the sequence number
 * and the timestamp into every frame it sends.
 */
#ifndef VSWITCH_TRAFFIC_H
#define VSWITCH_TRAFFIC_H

#define TRAFFIC_MAGIC 0x54575356u /* "VSWT" read as a little-endian u32 */
#define TRAFFIC_HDR_LEN 24
#define TRAFFIC_HDR_OFF_MAGIC 0
#define TRAFFIC_HDR_OFF_INDEX 4
#define TRAFFIC_HDR_OFF_SEQ 8
#define TRAFFIC_HDR_OFF_TSTAMP 16
#define TRAFFIC_FLOW_MASK 0x00ffffffu

/* Highest offset a configured field may start at (keeps the verifier's ranges small). */
#define TRAFFIC_MAX_OFF 2047
#define TRAFFIC_MAX_MAC_FIELDS 4
/* Flows the sink keeps a highest sequence number for. */
#define TRAFFIC_MAX_FLOWS 65536

struct gen_config {
	__u32 payload_off;
	__u32 flows;     /* >= 1 */
	__u32 n_mac;     /* 0..=TRAFFIC_MAX_MAC_FIELDS */
	__u32 sport_off; /* 0: no UDP source port field */
	__u32 sport_base;
	__u32 gen_ifindex;      /* frames with another ingress ifindex are passed untouched */
	__u32 mac_off[TRAFFIC_MAX_MAC_FIELDS];
	__u32 mac_low[TRAFFIC_MAX_MAC_FIELDS]; /* low 24 bits of each base MAC */
};

struct gen_state {
	__u64 seq;  /* sequence number of the last frame written (0: none yet) */
	__u32 flow; /* flow index of the next frame */
	__u32 pad;
};

struct sink_config {
	__u32 payload_off;
	__u32 sample_every; /* 0: no latency samples */
	__u32 pass_other;   /* 1: XDP_PASS frames that are not test frames */
	__u32 pad;
};

struct sink_counters {
	__u64 frames;
	__u64 bytes;
	__u64 test_frames;
	__u64 test_bytes;
	__u64 other_frames;
	__u64 other_bytes;
	__u64 seq_late; /* test frames whose sequence is <= the highest seen in their flow */
	__u64 lat_samples;
	__u64 lat_lost; /* samples the ring buffer had no room for */
};

struct lat_sample {
	__u64 latency_ns;
	__u64 seq;
};

#endif
