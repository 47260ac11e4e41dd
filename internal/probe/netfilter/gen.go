package netfilter

// The BPF object is generated from netfilter.c with Debian's clang-19 and
// committed (see internal/probe/gen.go).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target amd64,arm64 netfilter netfilter.c -- -I../../../bpf
