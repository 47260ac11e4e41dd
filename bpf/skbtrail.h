/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * skbtrail.h: what every event-writing probe source shares: the event
 * record written to the ring buffer, the "followed skb" map, and report().
 * Packet parsing and the user's filter are in packet.h, included here.
 *
 * Everything is CO-RE; kernel structures are read with packet.h's LOAD,
 * so the same body serves tp_btf and raw_tp programs and loads on every
 * kernel from 5.10 up.
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
 * translated to eBPF (internal/pcapfilter). It is called with the copy of
 * the packet's headers (copied bytes of it, in a map value), the packet's
 * IP header and the bytes readable from there; it loads from the copy, and
 * only bytes past it with bpf_probe_read_kernel, and returns 1 for a match.
 * The stub body never runs; it only keeps clang from seeing a constant.
 */
const volatile __u8 pcap_filter = 0;

static __noinline int filter_pcap_l3(const __u8 *copy, __u32 copied, const void *l3, __u32 len)
{
	return (__u64)l3 + len + copied + copy[0] == 0x5ca1ab1e;
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
 * The "no" memory: a per-CPU, direct-mapped cache of skbs whose headers
 * were found not to match (or to match while the namespace or device did
 * not), so that only the first probe of a packet nobody asked for parses
 * it. A slot is valid for the same skb with the same data buffer; its
 * verdict is reused only while the packet's fingerprint is unchanged:
 *  - the network header's offset (it moves at encapsulation and
 *    decapsulation),
 *  - the conntrack entry (netfilter NAT needs one, and conntrack attaches
 *    it before the NAT hook rewrites the headers: a packet DNATed to the
 *    filter's address after a probe said "no" is looked at again),
 *  - the probe kind (tracepoints, function probes, netfilter observers:
 *    the latter two run in between, where NAT happens),
 *  - the CPU's generation, bumped by a route lookup that matches the
 *    filter (IPv4 routing follows every rewrite before it).
 * A slot is cleared when its skb is freed or becomes followed.
 */
#define NO_SLOTS 64

enum { VERDICT_UNKNOWN, VERDICT_NO, VERDICT_HDR_YES };

struct no_slot {
	__u64 skb;
	__u64 head;
	__u64 nfct;
	__u32 key; /* network header offset | kind << 16 */
	__u16 gen;
	__u8 verdict; /* VERDICT_*: the headers' verdict */
	__u8 pad;
};

/* Per-CPU state of the probes: the "no" memory, the header copies, counters. */
struct cpu_state {
	struct no_slot no[NO_SLOTS];
	__u64 seen;    /* packets whose headers were first looked at */
	__u64 matched; /* of them (or later), those that matched */
	__u64 limited; /* events not written: over --rate-limit */
	__u16 gen;
	__u16 depth;   /* probes running on this CPU (an interrupt can nest one) */
	__u32 pad;
	__u8 copy[2][HDR_COPY_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_state SEC(".maps");

static __always_inline struct cpu_state *state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_state, &zero);
}

static __always_inline struct no_slot *slot_of(struct cpu_state *s, __u64 skb)
{
	/* skbs are 256-byte objects of one slab: mix the bits above that */
	__u32 i = (__u32)((skb >> 8) ^ (skb >> 14) ^ (skb >> 20)) & (NO_SLOTS - 1);

	return &s->no[i];
}

/* What the verdict found out, for emit. */
struct seen {
	const __u8 *l3; /* the IP header, when parsed */
	__u32 linear;   /* bytes of linear data from l3 on */
	__u8 parsed;    /* p holds the skb's headers */
};

/*
 * look parses the skb's headers into p (one copy into the CPU's buffer)
 * and, with check, runs the filter on them: the flags' header filter and
 * the expression. It returns the verdict (1 without check).
 */
static __always_inline int look(struct cpu_state *s, struct sk_buff *skb, struct pkt *p,
				struct seen *w, int check, int loose, const int direct)
{
	__u32 len = 0, n;
	const __u8 *l3 = skb_l3(skb, &len, direct);
	int match = 0;

	if (!l3 || !s)
		return check ? match_pkt(p, loose) && !pcap_filter : 1;
	__u16 d = s->depth;
	s->depth = d + 1;
	__u8 *buf = s->copy[d & 1];
	n = copy_l3(buf, l3, len);
	if (n && parse_ip(buf, n, l3, p)) {
		w->parsed = 1;
		w->l3 = l3;
		w->linear = len;
	}
	if (check) {
		match = match_pkt(p, loose);
		if (pcap_filter && match)
			match = w->parsed && filter_pcap_l3(buf, n, l3, len);
	}
	s->depth = d;
	return check ? match : 1;
}

/* follow starts following skb (its data buffer head). */
static __always_inline void follow(__u64 skb, __u64 head)
{
	bpf_map_update_elem(&followed, &skb, &head, BPF_ANY);
}

/*
 * verdict decides whether the hit is reported: without a filter always;
 * else for a followed skb, or one that matches now (it is then followed).
 * It reads only what the decision needs; what only fills the event is read
 * by emit. Use as `if (!verdict(&h, &p, &w)) return 0; ... emit(&h, &p, &w)`
 * (report() is both), in a body where `direct` is defined (TRACEPOINT).
 */
static __always_inline int verdict_as(struct hit *h, struct pkt *p, struct seen *w, const int direct)
{
	/* Copy into locals: LOAD must not relocate struct hit. */
	struct sk_buff *skb = h->skb;
	__u64 skbaddr = (__u64)skb;
	const struct net_device *dev = h->dev;
	const struct sock *sk = h->sk;
	const int kind = h->probe == PROBE_NF_OBSERVE ? 2 : h->probe >= 64 ? 1 : 0;

	if (!cfg.active)
		return 1;
	struct cpu_state *s = state();
	if (!skb || !s) {
		/* A socket's or a route lookup's event: nothing to remember. */
		if (h->sock_local && sk)
			parse_sock(sk, p, h->sock_local == 1, direct);
		int match = match_pkt(p, h->flow);
		if (match && devns_filter())
			match = match_devns(dev, sk, direct);
		if (pcap_filter && match && !h->flow)
			match = 0; /* the expression needs a packet */
		if (match && h->flow && s)
			s->gen++; /* headers may have been rewritten: look again */
		return match;
	}

	__u64 head = (__u64)LOAD(direct, skb, head);
	struct no_slot *sl = slot_of(s, skbaddr);
	__u32 key = (__u32)LOAD(direct, skb, network_header) | (__u32)kind << 16;
	__u64 nfct = LOAD(direct, skb, _nfct);
	int hdr = -1;

	__u64 *was = 0;

	if (sl->skb == skbaddr && sl->head == head) {
		/* Known and not followed (a followed skb has no slot). */
		if (sl->key == key && sl->nfct == nfct && sl->gen == s->gen && sl->verdict) {
			if (sl->verdict == VERDICT_NO) {
				if (h->forget)
					sl->skb = 0;
				return 0;
			}
			hdr = 1;
		}
	} else {
		was = bpf_map_lookup_elem(&followed, &skbaddr);
		if (was) {
			if (h->forget) {
				bpf_map_delete_elem(&followed, &skbaddr);
				return 1;
			}
			if (*was == head)
				return 1;
			/*
			 * Not every free passes a tracepoint (__kfree_skb, NAPI
			 * caches), so a followed address may now hold another
			 * packet: one with another data buffer whose headers do
			 * not match is a stranger (below). (A followed packet
			 * whose headers stop matching, as after NAT, keeps its
			 * buffer.)
			 */
		} else if (h->parse) {
			s->seen++;
		}
	}

	/* Not followed. The namespace and device first: cheap loads. */
	if (devns_filter() && !was) {
		if (!dev)
			dev = LOAD(direct, skb, dev);
		if (!sk && cfg.netns && !dev)
			sk = LOAD(direct, skb, sk);
		if (!match_devns(dev, sk, direct)) {
			if (h->parse && hdr < 0) {
				sl->skb = skbaddr;
				sl->head = head;
				sl->nfct = nfct;
				sl->key = key;
				sl->gen = s->gen;
				sl->verdict = VERDICT_UNKNOWN;
			}
			return 0;
		}
	}
	if (hdr < 0) {
		if (h->parse) {
			hdr = look(s, skb, p, w, 1, h->flow, direct);
			if (was) {
				/* The stranger check: its headers decide. */
				if (w->parsed && !hdr) {
					bpf_map_delete_elem(&followed, &skbaddr);
					return 0;
				}
				*was = head;
				return 1;
			}
			if (!w->parsed && h->sock_local) {
				if (!sk)
					sk = LOAD(direct, skb, sk);
				if (sk) {
					parse_sock(sk, p, h->sock_local == 1, direct);
					hdr = match_pkt(p, h->flow) && !pcap_filter;
				}
			}
			sl->skb = skbaddr;
			sl->head = head;
			sl->nfct = nfct;
			sl->key = key;
			sl->gen = s->gen;
			sl->verdict = hdr ? VERDICT_HDR_YES : VERDICT_NO;
		} else {
			/* No headers here (or not safe to read them). */
			if (was) {
				*was = head;
				return 1;
			}
			if (h->sock_local && sk)
				parse_sock(sk, p, h->sock_local == 1, direct);
			hdr = match_pkt(p, h->flow) && !pcap_filter;
		}
	}
	if (!hdr) {
		if (h->forget && sl->skb == skbaddr)
			sl->skb = 0;
		return 0;
	}
	/* A match: follow it from now on (and forget the slot). */
	s->matched++;
	if (sl->skb == skbaddr)
		sl->skb = 0;
	if (!h->forget)
		follow(skbaddr, head);
	return 1;
}

/*
 * --rate-limit: at most rate_limit events per window of 2^30 ns (~1.07 s),
 * all CPUs together (0: no limit). The window's count is shared; its reset
 * races benignly (a few events more or less at a window's start). Events
 * over the limit are counted per CPU (cpu_state.limited) and reported.
 */
const volatile __u32 rate_limit = 0;

struct rate_window {
	__u64 window; /* bpf_ktime_get_ns() >> 30 */
	__u64 count;  /* events written in it */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_window);
} rate SEC(".maps");

/* over_rate says whether one more event would exceed --rate-limit. */
static __always_inline int over_rate(void)
{
	__u32 zero = 0;
	struct rate_window *r;
	__u64 win;

	if (!rate_limit)
		return 0;
	r = bpf_map_lookup_elem(&rate, &zero);
	if (!r)
		return 0;
	win = bpf_ktime_get_ns() >> 30;
	if (r->window != win) {
		r->window = win;
		r->count = 0;
	}
	/* No fetching atomics (Linux 5.12+): add, then look. */
	__sync_fetch_and_add(&r->count, 1);
	if (r->count <= rate_limit)
		return 0;
	struct cpu_state *s = state();
	if (s)
		s->limited++;
	return 1;
}

/* emit writes the event of a hit verdict accepted (direct: see EMIT_DIRECT). */
static __always_inline int emit_as(struct hit *h, struct pkt *p, struct seen *w, const int direct)
{
	struct sk_buff *skb = h->skb;
	__u64 skbaddr = (__u64)skb;
	const struct net_device *dev = h->dev;
	const struct sock *sk = h->sk;

	if (over_rate())
		return 0;
	if (skb && h->parse && !w->parsed)
		look(state(), skb, p, w, 0, 0, direct);
	if (skb && !dev)
		dev = LOAD(direct, skb, dev);
	if (skb && !sk)
		sk = LOAD(direct, skb, sk);
	if (!w->parsed && h->sock_local && sk && !p->family)
		parse_sock(sk, p, h->sock_local == 1, direct);

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
	e->head = skb ? (__u64)LOAD(direct, skb, head) : 0;
	e->location = h->location;
	e->probe = h->probe;
	e->cpu = bpf_get_smp_processor_id();
#ifndef SKBTRAIL_NO_TASK
	e->pid = bpf_get_current_pid_tgid() >> 32;
#else
	e->pid = 0;
#endif
	e->netns = netns_of(dev, sk, direct);
	e->ifindex = dev ? LOAD(direct, dev, ifindex) : 0;
	e->len = h->len ? h->len : (skb ? LOAD(direct, skb, len) : 0);
	e->mark = skb ? LOAD(direct, skb, mark) : 0;
	e->reason = h->reason;
	e->ret = h->ret;
	e->aux = h->aux;
	e->aux2 = h->aux2;
	e->flags = h->flow ? EV_FLOW : w->parsed ? EV_PARSED : p->family ? EV_FROM_SOCK : 0;
	__builtin_memcpy(&e->pkt, p, sizeof(*p));
	__builtin_memset(e->ifname, 0, sizeof(e->ifname));
	if (dev)
		BPF_CORE_READ_STR_INTO(&e->ifname, dev, name);
#ifndef SKBTRAIL_NO_TASK
	bpf_get_current_comm(e->comm, sizeof(e->comm));
#else
	__builtin_memset(e->comm, 0, sizeof(e->comm));
#endif
	if (snaplen) {
		struct event_data *d = (struct event_data *)(e + 1);
		__u32 cap = w->parsed ? w->linear : 0;

		if (cap > snaplen)
			cap = snaplen;
		if (cap && bpf_probe_read_kernel(d->data, cap, w->l3))
			cap = 0;
		d->caplen = cap;
		d->pad = 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * The event step reads with bpf_probe_read_kernel in every program: it
 * runs only for reported events, and plain loads of BTF pointers on its
 * many paths made the verifier ~15x slower (~130 ms against ~8 ms for
 * netif_receive_skb on this host), which start-up pays for every program.
 */
#define EMIT_DIRECT 0

static __always_inline int report_as(struct hit *h, struct pkt *p, const int direct)
{
	struct seen w = {};

	if (!verdict_as(h, p, &w, direct))
		return 0;
	return emit_as(h, p, &w, EMIT_DIRECT);
}

/*
 * In a body where `direct` says which twin runs (TRACEPOINT's, or a local
 * constant): report(&h, &p) decides and writes the event;
 * verdict(&h, &p, &w) and emit(&h, &p, &w) are its two steps, for a probe
 * that reads facts only for a reported event.
 */
#define report(h, p) report_as(h, p, direct)
#define verdict(h, p, w) verdict_as(h, p, w, direct)
#define emit(h, p, w) emit_as(h, p, w, EMIT_DIRECT)

#endif
