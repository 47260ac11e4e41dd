/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * arch.h: what bpf_tracing.h's PT_REGS_* macros need on each target
 * architecture and bpf/vmlinux.h lacks. Include it after vmlinux.h and
 * before <bpf/bpf_tracing.h>.
 *
 * bpf2go compiles every object once per architecture (-target amd64,arm64)
 * and defines __TARGET_ARCH_x86 or __TARGET_ARCH_arm64, which selects the
 * register layout bpf_tracing.h reads kprobe arguments with. vmlinux.h is
 * generated from an x86 kernel's BTF, so it has x86's struct pt_regs (di,
 * si, dx, ...), which amd64 uses as is. On arm64 bpf_tracing.h casts the
 * context to struct user_pt_regs (regs[0..30], sp, pc, pstate), the start
 * of arm64's struct pt_regs, which x86 BTF does not have: it is declared
 * here, with the layout of arm64's UAPI <asm/ptrace.h>. It is marked
 * preserve_access_index like everything in vmlinux.h, so the loader
 * relocates each field against the running kernel's BTF (every arm64
 * kernel has user_pt_regs there, inside its struct pt_regs) instead of
 * trusting this copy; the layout is UAPI and has not changed either way.
 *
 * Other architectures are not built: an architecture without objects fails
 * to compile (internal/probe has no objects for it) rather than loading
 * programs that read the wrong registers.
 */
#ifndef SKBTRAIL_ARCH_H
#define SKBTRAIL_ARCH_H

#if defined(__TARGET_ARCH_x86)
/* vmlinux.h's struct pt_regs is x86's: nothing to add. */
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
#else
#error "bpf/arch.h: unsupported target architecture: build with bpf2go -target amd64 or arm64 (it defines __TARGET_ARCH_*)"
#endif

#endif /* SKBTRAIL_ARCH_H */
