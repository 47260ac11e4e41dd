package output

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/catalog"
)

// Tree writes the tracer catalog as a tree, marking what this kernel offers:
// a check mark and the program type used, or a cross and why not.
func Tree(st []catalog.Avail) string {
	var b strings.Builder
	byName := map[string]catalog.Avail{}
	for _, s := range st {
		byName[s.Tracer.Name] = s
	}
	for _, g := range catalog.Groups {
		fmt.Fprintf(&b, "%s: %s\n", g.Name, g.Desc)
		for _, t := range catalog.GroupOf(g.Name) {
			s := byName[t.Name]
			if s.Mode == "" {
				fmt.Fprintf(&b, "  ✗ %-24s %-6s %s (unavailable: %s)\n", t.Name, "-", t.Desc, s.Why)
				continue
			}
			fmt.Fprintf(&b, "  ✓ %-24s %-6s %s\n", t.Name, s.Mode, t.Desc)
		}
	}
	b.WriteString("\nSelect with -t GROUP,NAME,... (default: all). ✓ available here, ✗ not.\n")
	return b.String()
}

// FuncTree writes the function catalog by group, marking what this kernel
// can probe and how (fentry, kprobe), or why not; manyFuncs is the count
// from which kprobe.multi is used.
func FuncTree(st []catalog.Avail, manyFuncs int) string {
	var b strings.Builder
	b.WriteString("\nFunctions (function probes; a group name selects its tracepoints and its functions;\n" +
		"'all' adds every kernel function that takes a struct sk_buff *):\n")
	byName := map[string]catalog.Avail{}
	n := 0
	common := ""
	found := false
	for i, s := range st {
		byName[s.Tracer.Name] = s
		if s.Mode != "" {
			n++
		}
		if i == 0 || s.Why == common {
			common = s.Why
		} else {
			common = ""
		}
	}
	if n == 0 && common != "" {
		fmt.Fprintf(&b, "(%s)\n", common)
	}
	for _, g := range catalog.Groups {
		fs := catalog.FuncGroupOf(g.Name)
		if len(fs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", g.Name)
		for _, t := range fs {
			s := byName[t.Name]
			if s.Mode == "" && n == 0 && common != "" {
				fmt.Fprintf(&b, "  ✗ %-30s %-12s %s\n", t.Name, "-", t.Desc)
				continue
			}
			if s.Mode == "" {
				fmt.Fprintf(&b, "  ✗ %-30s %-12s %s (unavailable: %s)\n", t.Name, "-", t.Desc, s.Why)
				continue
			}
			mode := string(s.Mode)
			switch s.Mode {
			case "fentry":
				mode = "fentry/fexit"
			case "found":
				mode = "found here"
				found = true
			}
			fmt.Fprintf(&b, "  ✓ %-30s %-12s %s (skb: arg %d)\n", t.Name, mode, t.Desc, s.Arg)
		}
	}
	if found {
		fmt.Fprintf(&b, "\n%d of %d functions are in this kernel where a probe could attach. Whether fentry, kprobe or kprobe.multi\ncan attach here is known only by loading programs: see 'skbtrail check'. With more than %d functions\nselected, kprobe.multi is used where the kernel has it.\n", n, len(st), manyFuncs)
		return b.String()
	}
	fmt.Fprintf(&b, "\n%d of %d functions can be probed here. With more than %d functions selected, kprobe.multi is used where the kernel has it.\n", n, len(st), manyFuncs)
	return b.String()
}
