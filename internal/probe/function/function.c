//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * function.c: the function probe source: kernel functions that take an
 * sk_buff, watched with fentry/fexit where the kernel allows it, else with
 * kprobes (one function each) or kprobe.multi links (many at once).
 *
 * The programs are generic: one per position of the skb among the
 * function's arguments (1..5), found by user space from the function's BTF.
 * A program learns which function it runs for from the attach cookie
 * (kprobes: the function's address, set by user space) or from
 * bpf_get_func_ip (fentry/fexit, and kprobes without a cookie), and puts
 * that address in the event's `location`; user space names it.
 *
 * Return values (--ret) come from fexit or kretprobe programs. A return
 * cannot read the skb (the function may have freed it), so the entry
 * program of a packet that matched the filter leaves a note keyed by task
 * and function, and the return program reports only what has a note.
 *
 * Three kinds of functions have their own programs:
 *  - clones (skb_clone, pskb_copy, skb_copy, ...): the return gives the new
 *    skb; a clone of a followed skb is followed too, and reported with its
 *    parent's address;
 *  - ipt_do_table / ip6t_do_table: the return's verdict is reported with
 *    the table's name and the hook (chain) from the entry's arguments.
 *    Layout a: (skb, state, table) before 6.6; layout b: (priv, skb, state).
 */
#include "skbtrail.h"
#include "arch.h" /* before bpf_tracing.h: the registers of each target */
#include <bpf/bpf_tracing.h>

/* Probe ids of function events: past the tracepoints' (skbtrail.h). */
enum func_probe_id {
	PROBE_FUNC = 64,   /* a function was entered; aux2 1: a return event follows */
	PROBE_FUNC_RET,    /* it returned: ret; for ipt: aux/aux2 table name, reason hook+1 | pf<<8 */
	PROBE_FUNC_CLONE,  /* a clone was made: skb is the clone, aux | aux2<<32 its parent */
};

const enum func_probe_id unused_func_probe_id __attribute__((unused));

/* Set by user space: entry programs note packets for return programs. */
const volatile __u8 want_ret = 0;

struct ret_key {
	__u64 task; /* pid_tgid; idle tasks: the CPU */
	__u64 ip;   /* the function */
};

struct pending {
	__u64 skb;
	__u64 table; /* ipt: the first 8 bytes of the table's name */
	__u32 hook;  /* ipt: hook + 1 | pf << 8 */
	__u32 pad;
};

/* Entries waiting for their return; bounded, the oldest go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ret_key);
	__type(value, struct pending);
} rets SEC(".maps");

static __always_inline __u64 task_key(void)
{
	__u64 t = bpf_get_current_pid_tgid();

	/* Every CPU's idle task has pid 0; softirqs run there too. */
	if ((__u32)t == 0)
		t = 0xffffffff00000000ULL | bpf_get_smp_processor_id();
	return t;
}

/*
 * entry reports the skb at a function's entry. With note, a packet that
 * was reported leaves a note for the return program (with the ipt table
 * and hook state when given); follows goes into the event (aux2).
 */
static __always_inline int entry(struct sk_buff *skb, __u64 ip, int note, int follows,
				 const struct xt_table *table, const struct nf_hook_state *st,
				 const int direct)
{
	__u64 addr = (__u64)skb;
	struct pkt p = {};
	struct hit h = {
		.skb = skb,
		.location = ip,
		.probe = PROBE_FUNC,
		.aux2 = follows,
		.parse = 1,
	};

	if (!skb)
		return 0;
	report(&h, &p);
	if (!note)
		return 0;
	if (cfg.active && !bpf_map_lookup_elem(&followed, &addr))
		return 0;
	struct ret_key k = {.task = task_key(), .ip = ip};
	struct pending v = {.skb = addr};
	if (table)
		bpf_core_read(&v.table, sizeof(v.table), &table->name);
	if (st)
		v.hook = (BPF_CORE_READ(st, hook) + 1) | (BPF_CORE_READ(st, pf) << 8);
	bpf_map_update_elem(&rets, &k, &v, BPF_ANY);
	return 0;
}

/* ret_event writes a return event for the note of (task, ip), if any. */
static __always_inline int ret_event(__u64 ip, __s64 ret)
{
	struct ret_key k = {.task = task_key(), .ip = ip};
	struct pending *v = bpf_map_lookup_elem(&rets, &k);
	struct pending n;

	if (!v)
		return 0;
	n = *v;
	bpf_map_delete_elem(&rets, &k);

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *lostp = bpf_map_lookup_elem(&lost, &zero);
		if (lostp)
			*lostp += 1;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->skb = n.skb;
	e->location = ip;
	e->probe = PROBE_FUNC_RET;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ret = (__s32)ret;
	e->aux = (__u32)n.table;
	e->aux2 = (__u32)(n.table >> 32);
	e->reason = n.hook;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * clone_event follows and reports the new skb of a clone function. The
 * skb comes as a number (a return value): its fields are read with
 * bpf_probe_read_kernel.
 */
static __always_inline int clone_event(__u64 ip, __u64 nskb)
{
	const int direct = 0;
	struct ret_key k = {.task = task_key(), .ip = ip};
	struct pending *v = bpf_map_lookup_elem(&rets, &k);
	__u64 parent;

	if (!v)
		return 0;
	parent = v->skb;
	bpf_map_delete_elem(&rets, &k);
	if (!nskb)
		return 0;

	struct sk_buff *n = (struct sk_buff *)nskb;
	if (cfg.active) {
		__u64 head = (__u64)BPF_CORE_READ(n, head);
		struct cpu_state *s = state();

		bpf_map_update_elem(&followed, &nskb, &head, BPF_ANY);
		if (s) {
			struct no_slot *sl = slot_of(s, nskb);
			if (sl->skb == nskb)
				sl->skb = 0;
		}
	}
	struct pkt p = {};
	struct hit h = {
		.skb = n,
		.location = ip,
		.probe = PROBE_FUNC_CLONE,
		.aux = (__u32)parent,
		.aux2 = (__u32)(parent >> 32),
		.parse = 1,
	};
	return report(&h, &p);
}

/* ---- fentry / fexit: one program per function, loaded with its target. */

#define FENTRY_ARG(n)                                                          \
	SEC("fentry/ip_rcv")                                                   \
	int fentry_arg##n(__u64 *ctx)                                          \
	{                                                                      \
		return entry((struct sk_buff *)ctx[n - 1], bpf_get_func_ip(ctx), \
			     want_ret, want_ret, 0, 0, 1);                     \
	}

FENTRY_ARG(1)
FENTRY_ARG(2)
FENTRY_ARG(3)
FENTRY_ARG(4)
FENTRY_ARG(5)

SEC("fexit/ip_rcv")
int fexit_ret(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return ret_event(bpf_get_func_ip(ctx), (__s64)ret);
}

SEC("fentry/skb_clone")
int fentry_clone(__u64 *ctx)
{
	return entry((struct sk_buff *)ctx[0], bpf_get_func_ip(ctx), 1, 0, 0, 0, 1);
}

SEC("fexit/skb_clone")
int fexit_clone(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return clone_event(bpf_get_func_ip(ctx), ret);
}

SEC("fentry/ipt_do_table")
int fentry_ipt_a(__u64 *ctx)
{
	return entry((struct sk_buff *)ctx[0], bpf_get_func_ip(ctx), 1, 1,
		     (const struct xt_table *)ctx[2], (const struct nf_hook_state *)ctx[1], 1);
}

SEC("fentry/ipt_do_table")
int fentry_ipt_b(__u64 *ctx)
{
	return entry((struct sk_buff *)ctx[1], bpf_get_func_ip(ctx), 1, 1,
		     (const struct xt_table *)ctx[0], (const struct nf_hook_state *)ctx[2], 1);
}

/* ---- kprobes: one program per skb position, attached to many functions. */

/* The function: the cookie user space set (its address), else the helper. */
static __always_inline __u64 kprobe_ip(struct pt_regs *ctx)
{
	__u64 ip = 0;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_attach_cookie))
		ip = bpf_get_attach_cookie(ctx);
	if (!ip && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_ip))
		ip = bpf_get_func_ip(ctx);
	return ip;
}

#define KPROBE_ARGS(sec, prefix)                                               \
	SEC(sec) int prefix##_arg1(struct pt_regs *ctx)                        \
	{                                                                      \
		return entry((struct sk_buff *)PT_REGS_PARM1(ctx), kprobe_ip(ctx), \
			     want_ret, want_ret, 0, 0, 0);                        \
	}                                                                      \
	SEC(sec) int prefix##_arg2(struct pt_regs *ctx)                        \
	{                                                                      \
		return entry((struct sk_buff *)PT_REGS_PARM2(ctx), kprobe_ip(ctx), \
			     want_ret, want_ret, 0, 0, 0);                        \
	}                                                                      \
	SEC(sec) int prefix##_arg3(struct pt_regs *ctx)                        \
	{                                                                      \
		return entry((struct sk_buff *)PT_REGS_PARM3(ctx), kprobe_ip(ctx), \
			     want_ret, want_ret, 0, 0, 0);                        \
	}                                                                      \
	SEC(sec) int prefix##_arg4(struct pt_regs *ctx)                        \
	{                                                                      \
		return entry((struct sk_buff *)PT_REGS_PARM4(ctx), kprobe_ip(ctx), \
			     want_ret, want_ret, 0, 0, 0);                        \
	}                                                                      \
	SEC(sec) int prefix##_arg5(struct pt_regs *ctx)                        \
	{                                                                      \
		return entry((struct sk_buff *)PT_REGS_PARM5(ctx), kprobe_ip(ctx), \
			     want_ret, want_ret, 0, 0, 0);                        \
	}

KPROBE_ARGS("kprobe/ip_rcv", kprobe)
KPROBE_ARGS("kprobe.multi/ip_rcv", kmulti)

SEC("kretprobe/ip_rcv")
int kretprobe_ret(struct pt_regs *ctx)
{
	return ret_event(kprobe_ip(ctx), (__s64)PT_REGS_RC(ctx));
}

SEC("kretprobe.multi/ip_rcv")
int kretmulti_ret(struct pt_regs *ctx)
{
	return ret_event(kprobe_ip(ctx), (__s64)PT_REGS_RC(ctx));
}

SEC("kprobe/skb_clone")
int kprobe_clone(struct pt_regs *ctx)
{
	return entry((struct sk_buff *)PT_REGS_PARM1(ctx), kprobe_ip(ctx), 1, 0, 0, 0, 0);
}

SEC("kretprobe/skb_clone")
int kretprobe_clone(struct pt_regs *ctx)
{
	return clone_event(kprobe_ip(ctx), PT_REGS_RC(ctx));
}

SEC("kprobe/ipt_do_table")
int kprobe_ipt_a(struct pt_regs *ctx)
{
	return entry((struct sk_buff *)PT_REGS_PARM1(ctx), kprobe_ip(ctx), 1, 1,
		     (const struct xt_table *)PT_REGS_PARM3(ctx),
		     (const struct nf_hook_state *)PT_REGS_PARM2(ctx), 0);
}

SEC("kprobe/ipt_do_table")
int kprobe_ipt_b(struct pt_regs *ctx)
{
	return entry((struct sk_buff *)PT_REGS_PARM2(ctx), kprobe_ip(ctx), 1, 1,
		     (const struct xt_table *)PT_REGS_PARM1(ctx),
		     (const struct nf_hook_state *)PT_REGS_PARM3(ctx), 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
