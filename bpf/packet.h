/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * packet.h: what every BPF program of skbtrail needs to look at a packet:
 * the packet summary, parsing it from an sk_buff or a sock, and the user's
 * filter (set at load time in the read-only `cfg`) with its match helpers.
 * It declares no maps, so programs that write no events (drops.c) include
 * it without pulling in the ring buffer; skbtrail.h builds on it.
 *
 * Everything is CO-RE. Kernel structures are read with LOAD (below): plain
 * loads in programs whose pointers have BTF types, bpf_probe_read_kernel in
 * the others; packet bytes are copied once with bpf_probe_read_kernel.
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

/*
 * LOAD(direct, src, a, ...) is src->a->... . direct is a constant of each
 * program: 1 in tp_btf, fentry and netfilter programs, whose pointers have
 * BTF types the verifier lets them load from (a plain load, CO-RE
 * relocated, that cannot fault); 0 in raw_tp and kprobe programs, whose
 * pointers are plain numbers read with BPF_CORE_READ (one
 * bpf_probe_read_kernel per pointer). One body serves both twins; the
 * compiler keeps one side.
 */
#define LOAD(direct, src, a, ...)                                              \
	((direct) ? ___arrow(src, a, ##__VA_ARGS__) : BPF_CORE_READ(src, a, ##__VA_ARGS__))

/*
 * Headers are read in one copy: up to hdr_copy bytes from the IP header on
 * (64 covers IPv4 with up to 24 bytes of options, or IPv6, with TCP's
 * first 16 bytes; the loader raises it to HDR_COPY_MAX for a filter
 * expression). Parts beyond the copy (long options, IPv6 extension
 * headers) are read from the packet. The copy lives in a per-CPU map
 * value the program provides, so that the filter expression can index it.
 */
#define HDR_COPY_MAX 128
const volatile __u32 hdr_copy = 64;

/* L4 bytes needed for proto's fields. */
static __always_inline __u32 l4_need(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 14;
	case IPPROTO_UDP:
		return 4;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return 8;
	}
	return 0;
}

/* parse_l4 fills p's L4 fields from off bytes into the packet at l3 (b: the copy, n bytes of it). */
static __always_inline void parse_l4(const __u8 *b, __u32 n, const __u8 *l3, __u32 off, __u8 proto,
				     struct pkt *p)
{
	__u8 t[16];
	const __u8 *h = t;
	__u32 need = l4_need(proto);

	if (!need)
		return;
	off &= 0x3ff;
	if (off + need <= n && off <= HDR_COPY_MAX - 16) {
		h = b + off;
	} else {
		if (bpf_probe_read_kernel(t, 16, l3 + off))
			return;
	}
	switch (proto) {
	case IPPROTO_TCP:
		p->sport = ((__u16)h[0] << 8) | h[1];
		p->dport = ((__u16)h[2] << 8) | h[3];
		p->tcp_seq = ((__u32)h[4] << 24) | ((__u32)h[5] << 16) | ((__u32)h[6] << 8) | h[7];
		p->tcp_ack = ((__u32)h[8] << 24) | ((__u32)h[9] << 16) | ((__u32)h[10] << 8) | h[11];
		p->tcp_flags = h[13];
		break;
	case IPPROTO_UDP:
		p->sport = ((__u16)h[0] << 8) | h[1];
		p->dport = ((__u16)h[2] << 8) | h[3];
		break;
	default:
		p->icmp_type = h[0];
		p->icmp_code = h[1];
		p->icmp_id = ((__u16)h[4] << 8) | h[5];
		p->icmp_seq = ((__u16)h[6] << 8) | h[7];
		break;
	}
}

/* parse_ipv4 fills p from the copy b (n bytes) of the header at l3. */
static __always_inline int parse_ipv4(const __u8 *b, __u32 n, const __u8 *l3, struct pkt *p)
{
	if (n < 20)
		return 0;
	p->family = 4;
	p->ttl = b[8];
	p->l4 = b[9];
	p->ip_len = ((__u16)b[2] << 8) | b[3];
	__builtin_memcpy(p->saddr, &b[12], 4);
	__builtin_memcpy(p->daddr, &b[16], 4);
	/* Only the first fragment carries the L4 header. */
	if (((b[6] & 0x1f) | b[7]) == 0)
		parse_l4(b, n, l3, (b[0] & 0xf) * 4, p->l4, p);
	return 1;
}

static __always_inline int parse_ipv6(const __u8 *b, __u32 n, const __u8 *l3, struct pkt *p)
{
	__u8 x[4];
	const __u8 *e;
	__u8 next;
	__u32 off = 40;

	if (n < 40)
		return 0;
	p->family = 6;
	p->ttl = b[7];
	p->ip_len = (((__u16)b[4] << 8) | b[5]) + 40;
	__builtin_memcpy(p->saddr, &b[8], 16);
	__builtin_memcpy(p->daddr, &b[24], 16);
	next = b[6];
	/* Skip a bounded number of extension headers. */
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST &&
		    next != NEXTHDR_FRAGMENT)
			break;
		/*
		 * Extension headers are rare: read them from the packet (a
		 * branch per header between copy and packet would multiply
		 * the paths the verifier walks).
		 */
		off &= 0x3ff;
		if (bpf_probe_read_kernel(x, 4, l3 + off))
			return 1;
		e = x;
		if (next == NEXTHDR_FRAGMENT) {
			next = e[0];
			off += 8;
			if ((((__u16)e[2] << 8) | e[3]) & 0xfff8) {
				p->l4 = next;
				return 1; /* not the first fragment */
			}
		} else {
			next = e[0];
			off += ((__u32)e[1] + 1) * 8;
		}
	}
	p->l4 = next;
	parse_l4(b, n, l3, off, next, p);
	return 1;
}

/* parse_ip fills p from the copy b (n bytes) of the IP header at l3. */
static __always_inline int parse_ip(const __u8 *b, __u32 n, const __u8 *l3, struct pkt *p)
{
	if (n < 1)
		return 0;
	switch (b[0] >> 4) {
	case 4:
		return parse_ipv4(b, n, l3, p);
	case 6:
		return parse_ipv6(b, n, l3, p);
	}
	return 0;
}

/*
 * skb_l3 finds the skb's IP header: it returns its address and sets *len to
 * the linear bytes from there (0..65535), or returns 0 for a packet that
 * is not IP (ARP and the like) or has no header in its linear data.
 */
static __always_inline const __u8 *skb_l3(struct sk_buff *skb, __u32 *len, const int direct)
{
	/* The protocol first, to leave ARP and the like. */
	__u16 proto = bpf_ntohs(LOAD(direct, skb, protocol));
	unsigned char *head;
	const __u8 *l3;
	__u16 nh, mh;
	__s64 n;

	if (proto != ETH_P_IP && proto != ETH_P_IPV6 && proto != 0)
		return 0;
	head = LOAD(direct, skb, head);
	nh = LOAD(direct, skb, network_header);
	if (nh != 0 && nh != (__u16)~0U)
		l3 = head + nh;
	else if ((mh = LOAD(direct, skb, mac_header)) != (__u16)~0U)
		l3 = head + mh + ETH_HLEN;
	else
		l3 = LOAD(direct, skb, data);
	/* tail is an offset from head on 64-bit */
	n = (__s64)(head + LOAD(direct, skb, tail) - l3);
	if (n <= 0)
		return 0;
	*len = n > 0xffff ? 0xffff : (__u32)n;
	return l3;
}

/*
 * copy_l3 copies min(len, hdr_copy) bytes from l3 into buf and returns how
 * many (0 when the read fails).
 */
static __always_inline __u32 copy_l3(__u8 *buf, const __u8 *l3, __u32 len)
{
	__u32 n = len < hdr_copy ? len : hdr_copy;

	if (n > HDR_COPY_MAX)
		n = HDR_COPY_MAX;
	if (!n || bpf_probe_read_kernel(buf, n, l3))
		return 0;
	return n;
}

/* How many bytes of the skb's linear data there are from l3 on (0..65535). */
static __always_inline __u32 linear_from(struct sk_buff *skb, const __u8 *l3, const int direct)
{
	const __u8 *head = LOAD(direct, skb, head);
	__u32 tail = LOAD(direct, skb, tail); /* an offset from head on 64-bit */
	__s64 n = (__s64)(head + tail - l3);

	if (n <= 0)
		return 0;
	return n > 0xffff ? 0xffff : (__u32)n;
}

/*
 * Fills p from a socket's addresses. local_is_src says which end is the
 * packet's source: true for what the socket sends, false for what it gets.
 */
static __always_inline void parse_sock(const struct sock *sk, struct pkt *p, int local_is_src,
				       const int direct)
{
	__u16 family = LOAD(direct, sk, __sk_common.skc_family);
	__u16 lport = LOAD(direct, sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(LOAD(direct, sk, __sk_common.skc_dport));
	__u8 *src = local_is_src ? p->saddr : p->daddr;
	__u8 *dst = local_is_src ? p->daddr : p->saddr;

	if (family == AF_INET) {
		__be32 l = LOAD(direct, sk, __sk_common.skc_rcv_saddr);
		__be32 r = LOAD(direct, sk, __sk_common.skc_daddr);
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
	p->l4 = LOAD(direct, sk, sk_protocol);
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

static __always_inline __u32 netns_of(const struct net_device *dev, const struct sock *sk,
				      const int direct)
{
	if (dev)
		return LOAD(direct, dev, nd_net.net, ns.inum);
	if (sk)
		return LOAD(direct, sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* Whether the user's filter names a namespace or a device. */
static __always_inline int devns_filter(void)
{
	return cfg.netns || cfg.ifname[0];
}

/* Whether the user's filter looks at headers at all. */
static __always_inline int hdr_filter(void)
{
	return cfg.proto || cfg.saddr.family || cfg.daddr.family || cfg.addr.family || cfg.sport ||
	       cfg.dport || cfg.port;
}

/*
 * match_dev checks dev's name against the filter's, byte by byte with
 * direct loads (most names differ in the first bytes), or in one copy.
 */
static __always_inline int match_dev(const struct net_device *dev, const int direct)
{
	char name[16] = {};

	if (!cfg.ifname[0])
		return 1;
	if (!dev)
		return 0;
	if (direct) {
#pragma unroll
		for (int i = 0; i < 16; i++) {
			char c = dev->name[i];
			if (c != cfg.ifname[i])
				return 0;
			if (!c)
				return 1;
		}
		return 1;
	}
	BPF_CORE_READ_STR_INTO(&name, dev, name);
	return match_ifname(name);
}

/* match_devns checks the netns and device filters. */
static __always_inline int match_devns(const struct net_device *dev, const struct sock *sk,
				       const int direct)
{
	if (cfg.netns && netns_of(dev, sk, direct) != cfg.netns)
		return 0;
	return match_dev(dev, direct);
}

#endif
