/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * packet.h: what every BPF program of skbtrail needs to look at a packet:
 * the packet summary, parsing it from an sk_buff or a sock, and the user's
 * filter (set at load time in the read-only `cfg`) with its match helpers.
 * It declares no maps, so programs that write no events (drops.c) include
 * it without pulling in the ring buffer; skbtrail.h builds on it.
 *
 * Everything is CO-RE (BPF_CORE_READ) and reads memory only through
 * bpf_probe_read_kernel, so the same code serves tp_btf and raw_tp programs.
 */
#ifndef SKBTRAIL_PACKET_H
#define SKBTRAIL_PACKET_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

/* Packet summary: L3 and L4 header fields as this probe saw them. */
struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 family; /* 4, 6, or 0 when unknown */
	__u8 l4;     /* IPPROTO_* */
	__u8 tcp_flags;
	__u8 ttl;
	__u16 sport; /* host byte order; 0 for non-TCP/UDP */
	__u16 dport;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 icmp_id;
	__u16 icmp_seq;
	__u16 ip_len; /* IPv4 total length or IPv6 payload length + 40 */
	__u32 tcp_seq;
	__u32 tcp_ack;
};

/* An address match: (packet address & mask) == addr, for one family. */
struct addr_match {
	__u64 addr[2];
	__u64 mask[2];
	__u8 family; /* 0: any */
	__u8 pad[7];
};

/* The user's filter, written into .rodata before load. */
struct filter {
	struct addr_match saddr;
	struct addr_match daddr;
	struct addr_match addr; /* either direction */
	__u32 netns;            /* 0: any */
	__u16 sport;            /* host order, 0: any */
	__u16 dport;
	__u16 port; /* either direction */
	__u8 proto; /* 0: any */
	__u8 active; /* 0: no filter at all, trace everything */
	char ifname[16]; /* "": any */
};

const volatile struct filter cfg = {};

static __always_inline void parse_l4(const void *l4p, __u8 proto, struct pkt *p)
{
	__u8 b[16];

	switch (proto) {
	case IPPROTO_TCP:
		if (bpf_probe_read_kernel(b, 16, l4p))
			return;
		p->sport = ((__u16)b[0] << 8) | b[1];
		p->dport = ((__u16)b[2] << 8) | b[3];
		p->tcp_seq = ((__u32)b[4] << 24) | ((__u32)b[5] << 16) | ((__u32)b[6] << 8) | b[7];
		p->tcp_ack = ((__u32)b[8] << 24) | ((__u32)b[9] << 16) | ((__u32)b[10] << 8) | b[11];
		p->tcp_flags = b[13];
		break;
	case IPPROTO_UDP:
		if (bpf_probe_read_kernel(b, 4, l4p))
			return;
		p->sport = ((__u16)b[0] << 8) | b[1];
		p->dport = ((__u16)b[2] << 8) | b[3];
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (bpf_probe_read_kernel(b, 8, l4p))
			return;
		p->icmp_type = b[0];
		p->icmp_code = b[1];
		p->icmp_id = ((__u16)b[4] << 8) | b[5];
		p->icmp_seq = ((__u16)b[6] << 8) | b[7];
		break;
	}
}

static __always_inline int parse_ipv4(const __u8 *l3, struct pkt *p)
{
	__u8 h[20];

	if (bpf_probe_read_kernel(h, sizeof(h), l3))
		return 0;
	p->family = 4;
	p->ttl = h[8];
	p->l4 = h[9];
	p->ip_len = ((__u16)h[2] << 8) | h[3];
	__builtin_memcpy(p->saddr, &h[12], 4);
	__builtin_memcpy(p->daddr, &h[16], 4);
	/* Only the first fragment carries the L4 header. */
	if (((h[6] & 0x1f) | h[7]) == 0)
		parse_l4(l3 + (h[0] & 0xf) * 4, p->l4, p);
	return 1;
}

static __always_inline int parse_ipv6(const __u8 *l3, struct pkt *p)
{
	__u8 h[40], x[4];
	__u8 next;
	__u32 off = 40;

	if (bpf_probe_read_kernel(h, sizeof(h), l3))
		return 0;
	p->family = 6;
	p->ttl = h[7];
	p->ip_len = (((__u16)h[4] << 8) | h[5]) + 40;
	__builtin_memcpy(p->saddr, &h[8], 16);
	__builtin_memcpy(p->daddr, &h[24], 16);
	next = h[6];
	/* Skip a bounded number of extension headers. */
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (next == NEXTHDR_HOP || next == NEXTHDR_ROUTING || next == NEXTHDR_DEST) {
			if (bpf_probe_read_kernel(x, 2, l3 + off))
				return 1;
			next = x[0];
			off += ((__u32)x[1] + 1) * 8;
		} else if (next == NEXTHDR_FRAGMENT) {
			if (bpf_probe_read_kernel(x, 4, l3 + off))
				return 1;
			next = x[0];
			off += 8;
			if ((((__u16)x[2] << 8) | x[3]) & 0xfff8) {
				p->l4 = next;
				return 1; /* not the first fragment */
			}
		} else {
			break;
		}
	}
	p->l4 = next;
	parse_l4(l3 + (off & 0x3ff), next, p);
	return 1;
}

/*
 * Fills p from the skb's headers. Returns 1 when an IP header was found, and
 * then sets *l3p to it.
 */
static __always_inline int parse_skb_l3(struct sk_buff *skb, struct pkt *p, const __u8 **l3p)
{
	/* Every read costs: the protocol first, to leave ARP and the like. */
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	unsigned char *head;
	const __u8 *l3;
	__u16 nh, mh;
	__u8 v;

	if (proto != ETH_P_IP && proto != ETH_P_IPV6 && proto != 0)
		return 0;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	if (nh != 0 && nh != (__u16)~0U)
		l3 = head + nh;
	else if ((mh = BPF_CORE_READ(skb, mac_header)) != (__u16)~0U)
		l3 = head + mh + ETH_HLEN;
	else
		l3 = BPF_CORE_READ(skb, data);
	if (bpf_probe_read_kernel(&v, 1, l3))
		return 0;
	*l3p = l3;
	switch (v >> 4) {
	case 4:
		return proto != ETH_P_IPV6 && parse_ipv4(l3, p);
	case 6:
		return proto != ETH_P_IP && parse_ipv6(l3, p);
	}
	return 0;
}

/* Fills p from the skb's headers. Returns 1 when an IP header was found. */
static __always_inline int parse_skb(struct sk_buff *skb, struct pkt *p)
{
	const __u8 *l3;

	return parse_skb_l3(skb, p, &l3);
}

/* How many bytes of the skb's linear data there are from l3 on (0..65535). */
static __always_inline __u32 linear_from(struct sk_buff *skb, const __u8 *l3)
{
	const __u8 *head = BPF_CORE_READ(skb, head);
	__u32 tail = BPF_CORE_READ(skb, tail); /* an offset from head on 64-bit */
	__s64 n = (__s64)(head + tail - l3);

	if (n <= 0)
		return 0;
	return n > 0xffff ? 0xffff : (__u32)n;
}

/*
 * Fills p from a socket's addresses. local_is_src says which end is the
 * packet's source: true for what the socket sends, false for what it gets.
 */
static __always_inline void parse_sock(const struct sock *sk, struct pkt *p, int local_is_src)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u8 *src = local_is_src ? p->saddr : p->daddr;
	__u8 *dst = local_is_src ? p->daddr : p->saddr;

	if (family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		p->family = 4;
		__builtin_memcpy(src, &l, 4);
		__builtin_memcpy(dst, &r, 4);
	} else if (family == AF_INET6) {
		p->family = 6;
		BPF_CORE_READ_INTO(src, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(dst, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return;
	}
	p->l4 = BPF_CORE_READ(sk, sk_protocol);
	if (p->l4 == IPPROTO_TCP || p->l4 == IPPROTO_UDP) {
		p->sport = local_is_src ? lport : rport;
		p->dport = local_is_src ? rport : lport;
	}
}

static __always_inline int match_addr(const volatile struct addr_match *m, const struct pkt *p,
				      const __u8 *a, int loose)
{
	__u64 w[2];

	if (!m->family)
		return 1;
	if (m->family != p->family)
		return 0;
	__builtin_memcpy(w, a, 16);
	if (loose && !w[0] && !w[1])
		return 1;
	return (w[0] & m->mask[0]) == m->addr[0] && (w[1] & m->mask[1]) == m->addr[1];
}

/*
 * The user's header filter (addresses, ports, protocol). With loose (a
 * route lookup's flow), zero fields are not known yet and match anything.
 */
static __always_inline int match_pkt(const struct pkt *p, int loose)
{
	if (cfg.proto && p->l4 != cfg.proto && !(loose && !p->l4))
		return 0;
	if (!match_addr(&cfg.saddr, p, p->saddr, loose) ||
	    !match_addr(&cfg.daddr, p, p->daddr, loose))
		return 0;
	if (cfg.addr.family && !match_addr(&cfg.addr, p, p->saddr, 0) &&
	    !match_addr(&cfg.addr, p, p->daddr, 0))
		return 0;
	if (cfg.sport && p->sport != cfg.sport && !(loose && !p->sport))
		return 0;
	if (cfg.dport && p->dport != cfg.dport && !(loose && !p->dport))
		return 0;
	if (cfg.port && p->sport != cfg.port && p->dport != cfg.port &&
	    !(loose && !p->sport && !p->dport))
		return 0;
	return 1;
}

static __always_inline int match_ifname(const char *name)
{
	__u64 a[2], b[2];

	if (!cfg.ifname[0])
		return 1;
	__builtin_memcpy(a, name, 16);
	b[0] = *(const volatile __u64 *)&cfg.ifname[0];
	b[1] = *(const volatile __u64 *)&cfg.ifname[8];
	return a[0] == b[0] && a[1] == b[1];
}

static __always_inline __u32 netns_of(const struct net_device *dev, const struct sock *sk)
{
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

#endif
