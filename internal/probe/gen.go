package probe

// The BPF objects are generated from bpf/*.c with Debian's clang-19 and
// committed, so that `go build` needs no clang. CI regenerates them and fails
// when the committed ones are stale.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target bpfel -type event tracepoint ../../bpf/tracepoint.c -- -I../../bpf
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target bpfel -type drop_key drops ../../bpf/drops.c -- -I../../bpf
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target bpfel netfilter ../../bpf/netfilter.c -- -I../../bpf
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3 -D__TARGET_ARCH_x86" -target bpfel -type pending function ../../bpf/function.c -- -I../../bpf
