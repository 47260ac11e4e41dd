// Package filtertest holds a BPF program that runs the probes' packet
// filter (bpf/packet.h) on test input, for the test that requires the
// kernel's verdicts to equal those of the Go model, filter.Filter.Match.
// Only tests import it.
package filtertest

// The BPF object is generated from verdict.c with Debian's clang-19 and
// committed (see internal/probe/gen.go).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -cflags "-O2 -g -Wall -Werror -mcpu=v3" -target amd64,arm64 verdict verdict.c -- -I../../../bpf
