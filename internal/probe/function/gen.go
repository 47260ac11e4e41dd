package function

// The BPF object is generated from function.c with Debian's clang-19 and
// committed (see internal/probe/gen.go).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target amd64,arm64 -type pending function function.c -- -I../../../bpf
