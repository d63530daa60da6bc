/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `xdp-redirect` switch under test: the bare in-kernel forwarding ceiling between
 * the rig's two switch ports. Attached natively to one port, it redirects every frame
 * through a one-entry DEVMAP to the other port, reading nothing of the frame (the
 * kernel's samples/bpf xdp_redirect_map, minus its counters and MAC swap). One object
 * is loaded per direction; the harness writes the egress ifindex at key 0.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} redirect_port SEC(".maps");

SEC("xdp")
int xdp_redirect_port(struct xdp_md *ctx)
{
	/* No egress at key 0 (not configured): XDP_ABORTED, visible in xdp:xdp_exception. */
	return bpf_redirect_map(&redirect_port, 0, XDP_ABORTED);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
