// Package kernel reads facts about the running kernel: BTF, kallsyms,
// drop-reason names and feature support.
//
// Everything here is learned from the running kernel itself (its BTF,
// /proc/kallsyms, and probes that load and attach tiny BPF programs), never
// from tables of kernel versions frozen in the source.
package kernel
