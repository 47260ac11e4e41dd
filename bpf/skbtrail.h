/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * skbtrail.h: what every event-writing probe source shares: the event
 * record written to the ring buffer, the "followed skb" map, and report().
 * Packet parsing and the user's filter are in packet.h, included here.
 *
 * Everything is CO-RE (BPF_CORE_READ) and reads memory only through
 * bpf_probe_read_kernel, so the same code serves tp_btf and raw_tp programs
 * and loads on every kernel from 5.10 up.
 */
#ifndef SKBTRAIL_H
#define SKBTRAIL_H

#include "packet.h"

/* Probe ids; internal/probe's catalog names them. Append only. */
enum probe_id {
	PROBE_NETIF_RECEIVE_SKB = 1,
	PROBE_NET_DEV_QUEUE,
	PROBE_NET_DEV_START_XMIT,
	PROBE_NET_DEV_XMIT,
	PROBE_NETIF_RX,
	PROBE_NAPI_GRO_RECEIVE_ENTRY,
	PROBE_KFREE_SKB,
	PROBE_CONSUME_SKB,
	PROBE_SKB_COPY_DATAGRAM_IOVEC,
	PROBE_QDISC_ENQUEUE,
	PROBE_QDISC_DEQUEUE,
	PROBE_ICMP_SEND,
	PROBE_FIB_TABLE_LOOKUP,
	PROBE_TCP_SEND_RESET,
	PROBE_TCP_RECEIVE_RESET,
	PROBE_TCP_RETRANSMIT_SKB,
	PROBE_TCP_BAD_CSUM,
	PROBE_SOCK_RCVQUEUE_FULL,
	PROBE_UDP_FAIL_QUEUE_RCV_SKB,
	PROBE_NF_OBSERVE, /* netfilter.c */
	PROBE_FIB6_TABLE_LOOKUP,
	PROBE_MAX,
};

/* Event flags. */
#define EV_PARSED 1    /* pkt holds headers read at this probe */
#define EV_FROM_SOCK 2 /* pkt was filled from a socket, not from packet headers */
#define EV_FLOW 4      /* pkt is a route lookup's flow: zero fields are unknown */

/* One record a probe hit. Its layout is decoded by internal/event. */
struct event {
	__u64 ts;       /* bpf_ktime_get_ns */
	__u64 skb;      /* skb address; 0 for probes without one */
	__u64 location; /* kfree_skb: the caller that dropped it */
	__u32 probe;    /* enum probe_id */
	__u32 cpu;
	__u32 pid;
	__u32 netns; /* inode of the packet's network namespace */
	__u32 ifindex;
	__u32 len;
	__u32 mark;
	__u32 reason; /* kfree_skb: enum skb_drop_reason */
	__s32 ret;    /* return code or error where the probe has one */
	__u32 aux;    /* probe specific, see internal/probe's catalog */
	__u32 aux2;   /* probe specific */
	__u32 flags;  /* EV_* */
	struct pkt pkt;
	char ifname[16];
	char comm[16];
	__u64 head; /* skb->head: clones share it with their original */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* Events lost because the ring buffer was full, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/*
 * Skbs that matched the filter once: followed by address until freed, so
 * probes that cannot see their headers still report them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);   /* skb address */
	__type(value, __u64); /* its data buffer (skb->head) when last seen */
} followed SEC(".maps");

/*
 * With --pcap: an event is followed by the first bytes of the packet from
 * its IP header on. snaplen is in .rodata, so the verifier knows the record
 * size (bpf_ringbuf_reserve wants a constant) and, when it is 0, drops the
 * copying path altogether: without --pcap nothing changes.
 */
const volatile __u32 snaplen = 0;

struct event_data {
	__u32 caplen; /* bytes in data: min(snaplen, linear bytes from L3) */
	__u32 pad;
	__u8 data[];
};

/*
 * A tcpdump filter expression (the positional argument): with pcap_filter
 * set, the loader replaces filter_pcap_l3's body with the expression
 * compiled by libpcap for raw IP and translated to eBPF (internal/pcap).
 * It is called with the packet's IP header and the bytes readable from
 * there, reads them with bpf_probe_read_kernel, and returns 1 for a match.
 * The stub body never runs; it only keeps clang from seeing a constant.
 */
const volatile __u8 pcap_filter = 0;

static __noinline int filter_pcap_l3(const void *l3, __u32 len)
{
	return (__u64)l3 + len == 0x5ca1ab1e;
}

/* What a probe hands to report(): its skb or sock and its own facts. */
struct hit {
	struct sk_buff *skb;
	const struct sock *sk;      /* used for netns and, without skb headers, addresses */
	const struct net_device *dev; /* overrides skb->dev */
	__u64 location;
	__u32 probe;
	__u32 reason;
	__s32 ret;
	__u32 aux;
	__u32 aux2;
	__u32 len;
	__u8 parse;      /* read headers from the skb */
	__u8 sock_local; /* addresses from sk: 1 local is source, 2 local is destination */
	__u8 forget;     /* the skb is being freed: stop following it */
	__u8 flow;       /* p is a route lookup's flow (see match_pkt) */
};

/*
 * report checks the hit against the filter (or the followed map), and
 * writes one event. Filtering happens before anything is copied out.
 */
static __always_inline int report(struct hit *h, struct pkt *p)
{
	/* Copy into locals: BPF_CORE_READ must not relocate struct hit. */
	struct sk_buff *skb = h->skb;
	__u64 skbaddr = (__u64)skb;
	const struct net_device *dev = h->dev;
	const struct sock *sk = h->sk;
	int parsed = 0;
	const __u8 *l3 = 0;
	__u32 netns;
	char ifname[16] = {};

	if (cfg.active) {
		/*
		 * Filter early: most packets are not the user's, so the
		 * cheapest tests come first (a followed skb: one map lookup;
		 * else its headers), and the device, namespace and the rest
		 * are read only for a packet that passes.
		 */
		__u64 *was = skbaddr ? bpf_map_lookup_elem(&followed, &skbaddr) : 0;
		__u64 head = 0;

		if (was) {
			if (h->forget) {
				bpf_map_delete_elem(&followed, &skbaddr);
				goto parse;
			}
			head = (__u64)BPF_CORE_READ(skb, head);
			if (*was == head)
				goto parse;
			/*
			 * Not every free passes a tracepoint (__kfree_skb, NAPI
			 * caches), so a followed address may now hold another
			 * packet: one with another data buffer whose headers do
			 * not match is a stranger. (A followed packet whose
			 * headers stop matching, as after NAT, keeps its buffer.)
			 */
		}
		if (h->parse && skb)
			parsed = parse_skb_l3(skb, p, &l3);
		if (!parsed && h->sock_local) {
			if (skb && !sk)
				sk = BPF_CORE_READ(skb, sk);
			if (sk)
				parse_sock(sk, p, h->sock_local == 1);
		}
		int match = match_pkt(p, h->flow);
		if (match && (cfg.netns || cfg.ifname[0])) {
			if (skb && !dev)
				dev = BPF_CORE_READ(skb, dev);
			if (skb && !sk)
				sk = BPF_CORE_READ(skb, sk);
			if (dev)
				BPF_CORE_READ_STR_INTO(&ifname, dev, name);
			match = (!cfg.netns || netns_of(dev, sk) == cfg.netns) && match_ifname(ifname);
		}
		/*
		 * The expression runs where its verdict is used. A route
		 * lookup's flow has no packet to run it on and passes, as with
		 * the loose flag match; user space shows it only with a packet.
		 */
		if (pcap_filter && match)
			match = h->flow || (parsed && filter_pcap_l3(l3, linear_from(skb, l3)));
		if (was) {
			if (parsed && !match) {
				bpf_map_delete_elem(&followed, &skbaddr);
				return 0;
			}
			*was = head;
		} else {
			if (!match)
				return 0;
			if (skbaddr && !h->forget) {
				head = skb ? (__u64)BPF_CORE_READ(skb, head) : 0;
				bpf_map_update_elem(&followed, &skbaddr, &head, BPF_ANY);
			}
		}
		goto copy;
	}
parse:
	if (h->parse && skb)
		parsed = parse_skb_l3(skb, p, &l3);
	if (skb && !sk)
		sk = BPF_CORE_READ(skb, sk);
	if (!parsed && h->sock_local && sk)
		parse_sock(sk, p, h->sock_local == 1);
copy:
	/* Copy late: what the event needs besides the filter's fields. */
	if (skb && !dev)
		dev = BPF_CORE_READ(skb, dev);
	if (skb && !sk)
		sk = BPF_CORE_READ(skb, sk);
	netns = netns_of(dev, sk);
	if (dev && !ifname[0])
		BPF_CORE_READ_STR_INTO(&ifname, dev, name);

	struct event *e;
	if (snaplen)
		e = bpf_ringbuf_reserve(&events, sizeof(*e) + sizeof(struct event_data) + snaplen, 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	e->ts = bpf_ktime_get_ns();
	e->skb = skbaddr;
	e->head = skb ? (__u64)BPF_CORE_READ(skb, head) : 0;
	e->location = h->location;
	e->probe = h->probe;
	e->cpu = bpf_get_smp_processor_id();
#ifndef SKBTRAIL_NO_TASK
	e->pid = bpf_get_current_pid_tgid() >> 32;
#endif
	e->netns = netns;
	e->ifindex = dev ? BPF_CORE_READ(dev, ifindex) : 0;
	e->len = h->len ? h->len : (skb ? BPF_CORE_READ(skb, len) : 0);
	e->mark = skb ? BPF_CORE_READ(skb, mark) : 0;
	e->reason = h->reason;
	e->ret = h->ret;
	e->aux = h->aux;
	e->aux2 = h->aux2;
	e->flags = h->flow ? EV_FLOW : parsed ? EV_PARSED : p->family ? EV_FROM_SOCK : 0;
	__builtin_memcpy(&e->pkt, p, sizeof(*p));
	__builtin_memcpy(e->ifname, ifname, sizeof(ifname));
#ifndef SKBTRAIL_NO_TASK
	bpf_get_current_comm(e->comm, sizeof(e->comm));
#endif
	if (snaplen) {
		struct event_data *d = (struct event_data *)(e + 1);
		__u32 cap = parsed ? linear_from(skb, l3) : 0;

		if (cap > snaplen)
			cap = snaplen;
		if (cap && bpf_probe_read_kernel(d->data, cap, l3))
			cap = 0;
		d->caplen = cap;
		d->pad = 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

#endif
