//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * verdict.c: the user's filter of bpf/packet.h (parse_ipv4/parse_ipv6 and
 * match_pkt, unchanged) run on test input through BPF_PROG_TEST_RUN, so
 * that a test can require the kernel's verdicts to equal the Go model's
 * (filter.Filter.Match). XDP test runs want an Ethernet header: the input
 * starts after ETH_HLEN bytes.
 */
#include "packet.h"

/* The copy of the headers the probes parse from. */
struct hdr_buf {
	__u8 b[HDR_COPY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdr_buf);
} hdr_buf SEC(".maps");

/*
 * verdict_headers: an IP packet; its headers are copied and parsed as the
 * probes do (copy_l3, parse_ip).
 */
SEC("xdp")
int verdict_headers(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	const __u8 *l3 = data + ETH_HLEN;
	__u32 zero = 0;
	struct hdr_buf *hb = bpf_map_lookup_elem(&hdr_buf, &zero);
	struct pkt p = {};
	__u32 n;

	if (!hb || l3 + 1 > end)
		return XDP_ABORTED;
	n = copy_l3(hb->b, l3, (__u32)(end - l3));
	if (!n || !parse_ip(hb->b, n, l3, &p))
		return XDP_ABORTED;
	return match_pkt(&p, 0) ? XDP_PASS : XDP_DROP;
}

/* A packet summary as a probe fills it, and whether it is a flow. */
struct verdict_input {
	__u8 loose; /* a route lookup's flow: zero fields are unknown */
	__u8 pad[7];
	struct pkt p;
};

const struct verdict_input unused_verdict_input __attribute__((unused));

/* verdict_pkt: a packet summary (from a socket or a flow) as input. */
SEC("xdp")
int verdict_pkt(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	struct verdict_input in;

	if (bpf_probe_read_kernel(&in, sizeof(in), data + ETH_HLEN))
		return XDP_ABORTED;
	return match_pkt(&in.p, in.loose) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
