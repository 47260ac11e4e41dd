//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * netfilter.c: netfilter observers (BPF netfilter links, Linux 6.4+). An
 * observer is attached at an IPv4 or IPv6 hook just after a priority where
 * hook functions run (an nftables chain, iptables, conntrack); it always
 * accepts and only reports that the packet got that far. The last observer
 * a dropped packet passed tells which hook function took it.
 *
 * A program does not learn the priority it was attached at, so the loader
 * makes one program per priority, with that priority in .rodata; hook and
 * family come from the hook state.
 */
/*
 * Netfilter programs may not call the task helpers (bpf_get_current_comm,
 * bpf_get_current_pid_tgid) before Linux 6.1x: their events have no
 * process; the story has it from the tracepoints.
 */
#define SKBTRAIL_NO_TASK
#include "skbtrail.h"

#define NF_ACCEPT 1

const volatile __s32 priority = 0;

SEC("netfilter")
int nf_observe(struct bpf_nf_ctx *ctx)
{
	/* The context's skb and state are BTF pointers: plain loads. */
	const int direct = 1;
	const struct nf_hook_state *state = ctx->state;
	struct pkt p = {};
	struct seen w = {};
	struct hit h = {
		.skb = ctx->skb,
		.probe = PROBE_NF_OBSERVE,
		.ret = priority,
		.parse = 1,
	};

	if (devns_filter()) {
		h.dev = state->in;
		if (!h.dev)
			h.dev = state->out;
	}
	if (!verdict(&h, &p, &w))
		return NF_ACCEPT;
	h.aux = state->hook;
	h.aux2 = state->pf;
	if (!h.dev) {
		h.dev = state->in;
		if (!h.dev)
			h.dev = state->out;
	}
	emit(&h, &p, &w);
	return NF_ACCEPT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
