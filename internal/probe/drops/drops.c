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

/* Keep the key type in BTF so bpf2go generates its Go twin. */
const struct drop_key *unused_drop_key __attribute__((unused));

static __always_inline int count_drop(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	const struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct drop_key k = { .location = ctx[1], .stack = -1 };
	__u64 one = 1, *n;

	if (bpf_core_type_exists(enum skb_drop_reason))
		k.reason = (__u32)ctx[2];
	k.netns = netns_of(dev, dev ? NULL : BPF_CORE_READ(skb, sk));
	if (dev)
		BPF_CORE_READ_STR_INTO(&k.ifname, dev, name);

	if (cfg.active) {
		struct pkt p = {};

		if (cfg.netns && k.netns != cfg.netns)
			return 0;
		if (!match_ifname(k.ifname))
			return 0;
		if (cfg.proto || cfg.saddr.family || cfg.daddr.family || cfg.addr.family ||
		    cfg.sport || cfg.dport || cfg.port) {
			if (!parse_skb(skb, &p))
				return 0;
			if (!match_pkt(&p, 0))
				return 0;
		}
	}
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
	__u32 zero = 0;
	n = bpf_map_lookup_elem(&full, &zero);
	if (n)
		*n += 1;
	return 0;
}

/* kfree_skb(skb, location[, reason[, rx_sk]]) */
SEC("tp_btf/kfree_skb")
int tp_btf_kfree_skb(__u64 *ctx) { return count_drop(ctx); }

SEC("raw_tp/kfree_skb")
int raw_tp_kfree_skb(__u64 *ctx) { return count_drop(ctx); }

char LICENSE[] SEC("license") = "Dual BSD/GPL";
