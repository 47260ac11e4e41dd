//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tracepoint.c: the tracepoint probe source. Every tracepoint has two
 * programs with one body: tp_btf/NAME (preferred) and raw_tp/NAME (kernels
 * or setups without tp_btf). Both see the tracepoint's arguments as an
 * array of u64; the loader in internal/probe picks one of the two.
 *
 * In a body, `direct` is 1 in the tp_btf twin (its arguments are BTF
 * pointers: read fields with plain loads) and 0 in the raw_tp twin; read
 * kernel structures with LOAD(direct, ptr, field...) (packet.h), which is
 * either. report(&h, &p) decides and writes the event; a body with facts
 * that only fill the event reads them between its two steps:
 *	struct seen w = {};
 *	if (!verdict(&h, &p, &w))
 *		return 0;
 *	h.aux = LOAD(direct, ...);
 *	return emit(&h, &p, &w);
 */
#include "skbtrail.h"

/* Keep these types in BTF so bpf2go generates their Go twins. */
const enum probe_id unused_probe_id __attribute__((unused));
const struct event *unused_event __attribute__((unused));

#define TRACEPOINT(name)                                                       \
	static __always_inline int do_##name(__u64 *ctx, const int direct);    \
	SEC("tp_btf/" #name)                                                   \
	int tp_btf_##name(__u64 *ctx) { return do_##name(ctx, 1); }            \
	SEC("raw_tp/" #name)                                                   \
	int raw_tp_##name(__u64 *ctx) { return do_##name(ctx, 0); }            \
	static __always_inline int do_##name(__u64 *ctx, const int direct)

/* A probe whose only argument of interest is the skb in args[0]. */
#define SKB_TRACEPOINT(name, id)                                               \
	TRACEPOINT(name)                                                       \
	{                                                                      \
		struct pkt p = {};                                             \
		struct hit h = {                                               \
			.skb = (struct sk_buff *)ctx[0], .probe = id, .parse = 1 \
		};                                                             \
		return report(&h, &p);                                         \
	}

SKB_TRACEPOINT(netif_receive_skb, PROBE_NETIF_RECEIVE_SKB)
SKB_TRACEPOINT(net_dev_queue, PROBE_NET_DEV_QUEUE)
SKB_TRACEPOINT(netif_rx, PROBE_NETIF_RX)
SKB_TRACEPOINT(napi_gro_receive_entry, PROBE_NAPI_GRO_RECEIVE_ENTRY)
SKB_TRACEPOINT(tcp_bad_csum, PROBE_TCP_BAD_CSUM)

/* net_dev_start_xmit(skb, dev) */
TRACEPOINT(net_dev_start_xmit)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.dev = (const struct net_device *)ctx[1],
		.probe = PROBE_NET_DEV_START_XMIT,
		.parse = 1,
	};
	return report(&h, &p);
}

/*
 * net_dev_xmit(skb, rc, dev, skb_len): the driver may have freed or handed
 * on the skb already, so its memory is not read: only followed skbs (or all,
 * without a filter) are reported.
 */
TRACEPOINT(net_dev_xmit)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.ret = (__s32)ctx[1],
		.dev = (const struct net_device *)ctx[2],
		.len = (__u32)ctx[3],
		.probe = PROBE_NET_DEV_XMIT,
	};
	return report(&h, &p);
}

/* kfree_skb(skb, location[, reason[, rx_sk]]): a drop. */
TRACEPOINT(kfree_skb)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.location = ctx[1],
		.probe = PROBE_KFREE_SKB,
		.parse = 1,
		.forget = 1,
	};
	if (bpf_core_type_exists(enum skb_drop_reason))
		h.reason = (__u32)ctx[2];
	return report(&h, &p);
}

/* consume_skb(skb[, location]): freed after normal use. */
TRACEPOINT(consume_skb)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.probe = PROBE_CONSUME_SKB,
		.parse = 1,
		.forget = 1,
	};
	return report(&h, &p);
}

/* skb_copy_datagram_iovec(skb, len): data handed to a reading process. */
TRACEPOINT(skb_copy_datagram_iovec)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.aux = (__u32)ctx[1],
		.probe = PROBE_SKB_COPY_DATAGRAM_IOVEC,
		.parse = 1,
	};
	return report(&h, &p);
}

/* qdisc_enqueue(qdisc, txq, skb) */
TRACEPOINT(qdisc_enqueue)
{
	struct Qdisc *q = (struct Qdisc *)ctx[0];
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[2],
		.probe = PROBE_QDISC_ENQUEUE,
		.parse = 1,
	};
	/* skb->dev is the queue's device; the filter takes it from there. */
	if (!verdict(&h, &p, &w))
		return 0;
	h.dev = LOAD(direct, q, dev_queue, dev);
	h.aux = LOAD(direct, q, handle);
	h.aux2 = LOAD(direct, q, q.qlen);
	return emit(&h, &p, &w);
}

/* qdisc_dequeue(qdisc, txq, packets, skb); skb is NULL for an empty queue. */
TRACEPOINT(qdisc_dequeue)
{
	struct Qdisc *q = (struct Qdisc *)ctx[0];
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[3],
		.ret = (__s32)ctx[2],
		.probe = PROBE_QDISC_DEQUEUE,
		.parse = 1,
	};
	if (!h.skb || !verdict(&h, &p, &w))
		return 0;
	h.aux = LOAD(direct, q, handle);
	h.aux2 = LOAD(direct, q, q.qlen);
	return emit(&h, &p, &w);
}

/* icmp_send(skb, type, code): the kernel answers skb with an ICMP error. */
TRACEPOINT(icmp_send)
{
	struct pkt p = {};
	struct hit h = {
		.skb = (struct sk_buff *)ctx[0],
		.aux = (__u32)ctx[1],
		.aux2 = (__u32)ctx[2],
		.probe = PROBE_ICMP_SEND,
		.parse = 1,
	};
	return report(&h, &p);
}

/*
 * fib_table_lookup(tb_id, flp, nhc, err): an IPv4 route lookup. There is no
 * skb; the flow's addresses are matched instead, and user space attaches
 * the event to the packet being routed on that CPU.
 */
TRACEPOINT(fib_table_lookup)
{
	const struct flowi4 *fl = (const struct flowi4 *)ctx[1];
	const struct fib_nh_common *nhc = (const struct fib_nh_common *)ctx[2];
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.aux = (__u32)ctx[0],
		.ret = (__s32)ctx[3],
		.probe = PROBE_FIB_TABLE_LOOKUP,
		.flow = 1,
	};
	__be32 a;

	p.family = 4;
	p.l4 = LOAD(direct, fl, __fl_common.flowic_proto);
	a = LOAD(direct, fl, daddr);
	__builtin_memcpy(p.daddr, &a, 4);
	a = LOAD(direct, fl, saddr);
	__builtin_memcpy(p.saddr, &a, 4);
	if (p.l4 == IPPROTO_TCP || p.l4 == IPPROTO_UDP) {
		p.sport = bpf_ntohs(LOAD(direct, fl, uli.ports.sport));
		p.dport = bpf_ntohs(LOAD(direct, fl, uli.ports.dport));
	}
	if (nhc && devns_filter())
		h.dev = LOAD(direct, nhc, nhc_dev);
	if (!verdict(&h, &p, &w))
		return 0;
	if (nhc && !h.dev)
		h.dev = LOAD(direct, nhc, nhc_dev);
	h.aux2 = LOAD(direct, fl, __fl_common.flowic_oif);
	return emit(&h, &p, &w);
}

/*
 * fib6_table_lookup(net, res, table, flp): an IPv6 route lookup, matched by
 * its flow like fib_table_lookup. aux is the table, aux2 the route type
 * (RTN_*), or 0xff when the lookup found no route (the null entry).
 */
TRACEPOINT(fib6_table_lookup)
{
	const struct net *net = (const struct net *)ctx[0];
	const struct fib6_result *res = (const struct fib6_result *)ctx[1];
	const struct fib6_table *table = (const struct fib6_table *)ctx[2];
	const struct flowi6 *fl = (const struct flowi6 *)ctx[3];
	const struct fib6_nh *nh;
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.probe = PROBE_FIB6_TABLE_LOOKUP,
		.flow = 1,
	};

	p.family = 6;
	p.l4 = LOAD(direct, fl, __fl_common.flowic_proto);
	BPF_CORE_READ_INTO(&p.saddr, fl, saddr);
	BPF_CORE_READ_INTO(&p.daddr, fl, daddr);
	if (p.l4 == IPPROTO_TCP || p.l4 == IPPROTO_UDP) {
		p.sport = bpf_ntohs(LOAD(direct, fl, uli.ports.sport));
		p.dport = bpf_ntohs(LOAD(direct, fl, uli.ports.dport));
	}
	/* The device only where the filter needs it for the verdict; the
	 * facts after it. Direct loads keep the device a BTF pointer in the
	 * tp_btf twin, as netns_of() reads it. */
	nh = LOAD(direct, res, nh);
	if (nh && devns_filter())
		h.dev = LOAD(direct, nh, nh_common.nhc_dev);
	if (!verdict(&h, &p, &w))
		return 0;
	if (nh && !h.dev)
		h.dev = LOAD(direct, nh, nh_common.nhc_dev);
	if (table)
		h.aux = LOAD(direct, table, tb6_id);
	h.aux2 = LOAD(direct, res, fib6_type);
	if (BPF_CORE_READ(res, f6i) == BPF_CORE_READ(net, ipv6.fib6_null_entry))
		h.aux2 = 0xff;
	return emit(&h, &p, &w);
}

/* tcp_send_reset(sk, skb[, reason]): skb is the packet being answered. */
TRACEPOINT(tcp_send_reset)
{
	struct pkt p = {};
	struct hit h = {
		.sk = (const struct sock *)ctx[0],
		.skb = (struct sk_buff *)ctx[1],
		.probe = PROBE_TCP_SEND_RESET,
		.parse = 1,
		.sock_local = 1,
	};
	return report(&h, &p);
}

/* tcp_receive_reset(sk): the peer reset this connection. */
TRACEPOINT(tcp_receive_reset)
{
	struct pkt p = {};
	struct hit h = {
		.sk = (const struct sock *)ctx[0],
		.probe = PROBE_TCP_RECEIVE_RESET,
		.sock_local = 2,
	};
	p.tcp_flags = 0x04;
	return report(&h, &p);
}

/* tcp_retransmit_skb(sk, skb[, err]): the skb has no headers yet. */
TRACEPOINT(tcp_retransmit_skb)
{
	struct pkt p = {};
	struct hit h = {
		.sk = (const struct sock *)ctx[0],
		.skb = (struct sk_buff *)ctx[1],
		.probe = PROBE_TCP_RETRANSMIT_SKB,
		.sock_local = 1,
	};
	return report(&h, &p);
}

/* sock_rcvqueue_full(sk, skb): no room in the socket's receive buffer. */
TRACEPOINT(sock_rcvqueue_full)
{
	const struct sock *sk = (const struct sock *)ctx[0];
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.sk = sk,
		.skb = (struct sk_buff *)ctx[1],
		.probe = PROBE_SOCK_RCVQUEUE_FULL,
		.parse = 1,
		.sock_local = 2,
	};
	if (!verdict(&h, &p, &w))
		return 0;
	h.aux = LOAD(direct, sk, sk_rcvbuf);
	h.aux2 = LOAD(direct, sk, sk_backlog.rmem_alloc.counter);
	return emit(&h, &p, &w);
}

/* udp_fail_queue_rcv_skb(rc, sk[, skb]): UDP could not queue a datagram. */
/*
 * Whether udp_fail_queue_rcv_skb passes the skb (a third argument, Linux
 * 6.10+): set by the loader from the tracepoint's BTF prototype. A read of
 * an argument the kernel does not pass is refused, so it is guarded.
 */
const volatile __u8 udp_fail_skb = 0;

TRACEPOINT(udp_fail_queue_rcv_skb)
{
	const struct sock *sk = (const struct sock *)ctx[1];
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.sk = sk,
		.ret = (__s32)ctx[0],
		.probe = PROBE_UDP_FAIL_QUEUE_RCV_SKB,
		.sock_local = 2,
	};
	if (udp_fail_skb) {
		h.skb = (struct sk_buff *)ctx[2];
		h.parse = 1;
	}
	if (!verdict(&h, &p, &w))
		return 0;
	h.aux = LOAD(direct, sk, sk_rcvbuf);
	h.aux2 = LOAD(direct, sk, sk_backlog.rmem_alloc.counter);
	return emit(&h, &p, &w);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
