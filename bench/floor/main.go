// Command floor is the benchmarks' floor: a minimal cilium/ebpf loader that
// attaches a program returning at once to each of the tracepoints skbtrail
// traces by default (catalog.Tracepoints), as tp_btf, prints "begin
// trace..." and waits for SIGINT or SIGTERM. Whatever skbtrail costs above
// it is skbtrail's own: the tracepoints' dispatch and the accounting of
// bpf_stats are in both.
//
//	floor [-t kfree_skb,...] [-raw]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/catalog"
)

func main() {
	only := flag.String("t", "", "comma-separated tracepoints (default: every catalog tracepoint)")
	raw := flag.Bool("raw", false, "attach raw_tp programs instead of tp_btf")
	flag.Parse()
	if err := run(*only, *raw); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}

func run(only string, raw bool) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return err
	}
	names := []string{}
	if only != "" {
		names = strings.Split(only, ",")
	} else {
		for _, t := range catalog.Tracepoints {
			names = append(names, t.Name)
		}
	}
	empty := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	skipped := 0
	for _, name := range names {
		spec := &ebpf.ProgramSpec{Name: progName(name), Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp,
			AttachTo: name, License: "GPL", Instructions: empty}
		if raw {
			spec.Type, spec.AttachType, spec.AttachTo = ebpf.RawTracepoint, ebpf.AttachNone, ""
		}
		prog, err := ebpf.NewProgram(spec)
		if err != nil {
			if only == "" { // a tracepoint this kernel lacks
				skipped++
				continue
			}
			return fmt.Errorf("load %s: %w", name, err)
		}
		var l link.Link
		if raw {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
		} else {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		}
		prog.Close() // the link holds it
		if err != nil {
			return fmt.Errorf("attach %s: %w", name, err)
		}
		links = append(links, l)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	fmt.Fprintf(os.Stderr, "begin trace... (%d empty programs, %d tracepoints missing)\n", len(links), skipped)
	<-sig
	return nil
}

// progName names a program after its tracepoint, in the 15 characters the
// kernel keeps, so that bpftool's listing tells them apart.
func progName(tp string) string {
	n := "f_" + tp
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}
