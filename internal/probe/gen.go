package probe

// The BPF objects are generated from bpf/*.c with Debian's clang-19 and
// committed, so that `go build` needs no clang. CI regenerates them and fails
// when the committed ones are stale.
//
// Each object is built once per architecture (-target amd64,arm64: files
// *_x86_bpfel.* and *_arm64_bpfel.*, with matching build tags): bpf2go
// defines __TARGET_ARCH_x86 or __TARGET_ARCH_arm64, so kprobe programs read
// their arguments from that architecture's registers (bpf/arch.h). Other
// architectures have no objects and do not build.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target amd64,arm64 -type event tracepoint tracepoint.c -- -I../../bpf
