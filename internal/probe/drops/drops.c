//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * drops.c: `skbtrail drops`. One program on skb:kfree_skb (tp_btf, with a
 * raw_tp twin) counts every dropped packet in a per-CPU hash keyed by
 * (reason, location, netns, device[, stack]). Nothing is sent to user space
 * per packet: internal/probe reads the map once per interval.
 *
 * The user's filter is the same `cfg` as tracing (packet.h). Without one
 * the headers are not even read: the cost of a drop is one map lookup and
 * an increment.
 */
#include "packet.h"

/* What the drops are counted by. */
struct drop_key {
	__u64 location; /* the caller of kfree_skb that dropped it */
	__u32 reason;   /* enum skb_drop_reason; 0 before 5.17 */
	__u32 netns;    /* inode of the packet's network namespace, 0: unknown */
	__s32 stack;    /* id in `stacks` with want_stack, else -1 */
	__u32 pad;
	char ifname[16]; /* "" when the skb has no device */
};

/* Set before load: record the kernel stack of each drop (--stack). */
const volatile __u8 want_stack = 0;

/* Bounded: when full, new keys are counted in `full` instead. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct drop_key);
	__type(value, __u64);
} drops SEC(".maps");

/* Drops that could not be counted because `drops` was full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} full SEC(".maps");

/* Kernel stacks for want_stack; max_entries is cut to 1 without it. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

/* The CPU's copy of a dropped packet's headers, for a header filter. */
struct hdr_buf {
	__u8 b[HDR_COPY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdr_buf);
} hdr_buf SEC(".maps");

/* Keep the key type in BTF so bpf2go generates its Go twin. */
const struct drop_key *unused_drop_key __attribute__((unused));

/*
 * count_drop counts the drop of the skb in ctx[0]. direct: 1 in the tp_btf
 * program (skb is a BTF pointer: plain loads), 0 in the raw_tp one.
 */
static __always_inline int count_drop(__u64 *ctx, const int direct)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	const struct net_device *dev = LOAD(direct, skb, dev);
	struct drop_key k = { .location = ctx[1], .stack = -1 };
	__u64 one = 1, *n;
	__u32 zero = 0;

	if (bpf_core_type_exists(enum skb_drop_reason))
		k.reason = (__u32)ctx[2];
	k.netns = netns_of(dev, dev ? NULL : LOAD(direct, skb, sk), direct);

	if (cfg.active) {
		/* Namespace and device first: loads; headers last: a copy. */
		if (cfg.netns && k.netns != cfg.netns)
			return 0;
		if (!match_dev(dev, direct))
			return 0;
		if (hdr_filter()) {
			struct hdr_buf *hb = bpf_map_lookup_elem(&hdr_buf, &zero);
			struct pkt p = {};
			__u32 len = 0, c;
			const __u8 *l3 = skb_l3(skb, &len, direct);

			if (!hb || !l3)
				return 0;
			c = copy_l3(hb->b, l3, len);
			if (!c || !parse_ip(hb->b, c, l3, &p) || !match_pkt(&p, 0))
				return 0;
		}
	}
	if (dev)
		BPF_CORE_READ_STR_INTO(&k.ifname, dev, name);
	if (want_stack)
		k.stack = bpf_get_stackid(ctx, &stacks, 0);

	n = bpf_map_lookup_elem(&drops, &k);
	if (n) {
		*n += 1; /* per CPU: no other writer */
		return 0;
	}
	if (bpf_map_update_elem(&drops, &k, &one, BPF_NOEXIST) == 0)
		return 0;
	/* Another CPU may have just added the key: count there. */
	n = bpf_map_lookup_elem(&drops, &k);
	if (n) {
		*n += 1;
		return 0;
	}
	n = bpf_map_lookup_elem(&full, &zero);
	if (n)
		*n += 1;
	return 0;
}

/* kfree_skb(skb, location[, reason[, rx_sk]]) */
SEC("tp_btf/kfree_skb")
int tp_btf_kfree_skb(__u64 *ctx) { return count_drop(ctx, 1); }

SEC("raw_tp/kfree_skb")
int raw_tp_kfree_skb(__u64 *ctx) { return count_drop(ctx, 0); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
