// Command skbtrail follows packets through the Linux kernel network stack
// with eBPF and says where each one went.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/diagnose"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/names"
	"github.com/skbtrail/skbtrail/internal/outfile"
	"github.com/skbtrail/skbtrail/internal/output"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/privs"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/probe/function"
	"github.com/skbtrail/skbtrail/internal/trace"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// traceHelp is the fixed text of 'skbtrail --help'; the flags' entries
// are rendered from their definitions (traceFlagSet, newFlagSet).
var traceHelp = helpDoc{
	intro: `skbtrail follows packets through the Linux kernel network stack and says
where each one went, and where and why one was dropped.

Usage:
  skbtrail [flags] [EXPR]   trace packets matching the filter flags and the
                            tcpdump filter expression EXPR, if given
  skbtrail check            show what this kernel supports and what skbtrail
                            will use
  skbtrail drops [flags]    count every drop by reason, place, netns, device
                            ('skbtrail drops --help'; also Prometheus metrics)
  skbtrail -t '?'           list the tracers (probe points) and which this
                            kernel has

`,
	sections: []helpSection{
		{group: groupFilter, heading: "Filter (checked in the kernel; all given must match; IPv4 or IPv6):",
			more: []helpEntry{{"  EXPR", "a tcpdump filter expression (pcap-filter(7)) on the packet " +
				"from its IP header on, e.g. 'tcp and dst port 80 and net 198.18.0.0/15'; " +
				"compiled in skbtrail (pure Go), run in the kernel at every probe; " +
				"the flags above must match too"}},
			note: `  A packet that matched once is followed until the kernel frees it, even
  where its headers cannot be read or it crosses into another namespace.
`},
		{group: groupTracers, heading: "Tracers:"},
		{group: groupOutput, heading: "Output:"},
		{group: groupDiagnosis, heading: "Diagnosis:",
			note: "  (--diag-keep, --diag-quiet, --no-nftrace and --hooks imply --diag)\n"},
		{group: groupRunning, heading: "Running:"},
	},
	outro: `Once everything is attached, skbtrail drops every capability the rest of
the run does not use: all but CAP_SYS_PTRACE (to name namespaces that
appear later) when tracing; with --diag also CAP_NET_ADMIN and
CAP_SYS_ADMIN for its live checks ('skbtrail check' lists them per mode,
and what this kernel adds).

Exit status: 0 when stopped by count, duration or Ctrl-C/SIGTERM; 1 when
tracing failed; 2 for bad input.

Examples:
  skbtrail -p icmp -s 198.18.0.1                a ping's way through the stack
  skbtrail -p tcp -D 80 --detail                who sends what to port 80
  skbtrail -p udp --netns blue -c 5 --json      five UDP packets of netns blue
  skbtrail -p tcp -D 80 --diag                  why does port 80 not answer?
  skbtrail 'tcp and dst port 80' --pcap web.pcapng
                                                trace and capture for Wireshark
`,
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is bad input: one line on stderr and exit status 2.
type usageError struct{ error }

func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, filter.ErrInvalid) {
		fmt.Fprintf(stderr, "skbtrail: %s\n", oneLine(err.Error()))
		return 2
	}
	fmt.Fprintf(stderr, "skbtrail: %s\n", oneLine(err.Error()))
	return 1
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

type flags struct {
	f                      filter.Options
	tracer                 string
	basic, detail, jsonOut bool
	diag                   diagnose.Options
	ret                    bool
	count                  int
	duration               string
	bufferSize             int
	rateLimit              int
	version, help          bool
	pcap                   string
	force                  bool
	user                   string
	snaplen                int
	ns                     nsFlags
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "drops" {
		return runDrops(args[1:], stdout, stderr) // drops.go; its own flags
	}
	var fl flags
	fs := traceFlagSet(&fl)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("%v (see 'skbtrail --help')", err)}
	}
	if fl.help {
		fmt.Fprint(stdout, helpText(fs, traceHelp))
		return nil
	}
	if fl.version {
		fmt.Fprintf(stdout, "skbtrail %s\n", version)
		return nil
	}
	rest := fs.Args()
	if len(rest) > 0 {
		if rest[0] == "check" && len(rest) == 1 {
			return check(stdout)
		}
		if rest[0] == "drops" {
			return usageError{fmt.Errorf("'drops' must come first, before its flags: skbtrail drops [flags] (see 'skbtrail drops --help')")}
		}
	}
	if fl.tracer == "?" {
		return listTracers(stdout)
	}
	// The rest is a filter expression, as tcpdump takes it: in one
	// argument or in several.
	expr := strings.TrimSpace(strings.Join(rest, " "))
	cfg, err := configure(fl, expr, stdout, stderr)
	if err != nil {
		return err
	}
	if closer, ok := cfg.pcapFile.(io.Closer); ok {
		defer closer.Close()
	}
	defer cfg.names.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Log = stderr
	cfg.Notice = cfg.names.Notice()
	_, err = trace.Run(ctx, cfg.Config)
	return err
}

// traceFlagSet returns the flag set of tracing, bound to fl.
func traceFlagSet(fl *flags) *pflag.FlagSet {
	fs := newFlagSet("skbtrail", &fl.f, &fl.ns)
	g := flagGroup{fs, groupTracers}
	g.String(&fl.tracer, "tracer", "t", "", "LIST", "groups, tracepoints or kernel functions, "+
		"comma-separated (default: every tracepoint); a group selects its tracepoints and functions; "+
		`"all": every tracepoint and every function that takes an skb; `+
		"'?' lists them and how this kernel can probe them (fentry, kprobe, kprobe.multi)")
	g.Bool(&fl.ret, "ret", "", "function probes: show return values (fexit or kretprobe)")
	g = flagGroup{fs, groupOutput}
	g.Bool(&fl.basic, "basic", "", "one line per event as it arrives, instead of one block per packet "+
		"when the packet's life ends")
	g.Bool(&fl.detail, "detail", "", "add CPU, process/pid, namespace (pod, netns name, process, "+
		"or inode) and interface")
	g.Bool(&fl.jsonOut, "json", "", "one JSON object per line (fields: see README)")
	g.String(&fl.pcap, "pcap", "", "", "FILE", "also write every traced event's packet to FILE as pcapng "+
		"(Wireshark, tshark), with a comment naming probe, skb, netns, device and drop reason; "+
		"'-' for stdout (the text or JSON goes to stderr); created readable by its owner only (0600), "+
		"never over an existing file or through a symbolic link")
	g.Bool(&fl.force, "force", "", "--pcap: overwrite an existing regular file (it becomes 0600; "+
		"still never through a link)")
	g.Int(&fl.snaplen, "snaplen", "", 256, "N", fmt.Sprintf("bytes of each packet to copy, "+
		"from the IP header on (default 256, at most %d)", probe.MaxSnaplen))
	g = flagGroup{fs, groupDiagnosis}
	g.Bool(&fl.diag.Enabled, "diag", "", "mark each event INFO, WARN or ERROR and end each packet "+
		"with an ANALYSIS RESULT: where it was lost, why, and what to change; "+
		"stops after the first packet with an ERROR")
	g.Bool(&fl.diag.Keep, "diag-keep", "", "go on after a packet with an ERROR")
	g.Bool(&fl.diag.Quiet, "diag-quiet", "", "show only packets with a WARN or an ERROR")
	g.Bool(&fl.diag.NoNFTrace, "no-nftrace", "", "do not add skbtrail's short-lived nftables table "+
		"that names the rule that took a packet")
	g.Bool(&fl.diag.Hooks, "hooks", "", "with a netfilter drop, list every hook function at that hook "+
		"with its priority, and which took it")
	g = flagGroup{fs, groupRunning}
	g.String(&fl.user, "user", "", "", "USER", "once the probes are attached, go on as USER "+
		"(not with --diag, whose live checks need root)")
	g.Int(&fl.count, "count", "c", 0, "N", "stop after N packets")
	g.String(&fl.duration, "duration", "", "", "D", durationHelp)
	g.Int(&fl.bufferSize, "buffer-size", "", 0, "BYTES", "ring buffer size, a power of two (default 4194304)")
	g.Int(&fl.rateLimit, "rate-limit", "", 0, "N", "write at most N events per second in the kernel; "+
		"the others are counted and reported (every few seconds while tracing, "+
		`with --json as a {"type":"loss"} record, and at exit)`)
	g.Bool(&fl.version, "version", "", "print the version")
	g.Bool(&fl.help, "help", "h", helpHelp)
	return fs
}

// The descriptions of flags that tracing and drops both have.
const (
	durationHelp = "stop after D (e.g. 10s, 1m)"
	helpHelp     = "this help"
)

// config is what configure makes: the trace configuration and the capture
// file it opened, if any.
type config struct {
	trace.Config
	pcapFile io.Writer
	names    *names.Resolver
}

// configure validates the flags into a trace configuration.
func configure(fl flags, expr string, stdout, stderr io.Writer) (config, error) {
	var cfg config
	tracers, err := catalog.Select(fl.tracer)
	if err != nil {
		return cfg, usageError{err}
	}
	if fl.count < 0 {
		return cfg, usageError{fmt.Errorf("--count %d: give a number of packets >= 1", fl.count)}
	}
	if fl.duration != "" {
		d, err := parseDuration(fl.duration)
		if err != nil {
			return cfg, usageError{err}
		}
		cfg.Duration = d
	}
	if b := fl.bufferSize; b != 0 && (b < 4096 || b&(b-1) != 0) {
		return cfg, usageError{fmt.Errorf("--buffer-size %d: give a power of two of at least 4096", b)}
	}
	if fl.rateLimit < 0 || fl.rateLimit > 1<<31 {
		return cfg, usageError{fmt.Errorf("--rate-limit %d: give a number of events per second from 1 to %d (0: no limit)", fl.rateLimit, 1<<31)}
	}
	cfg.RateLimit = uint32(fl.rateLimit)
	if err := fl.ns.check(fl.f); err != nil {
		return cfg, err
	}
	f, err := filter.Parse(fl.f)
	if err != nil {
		return cfg, err
	}
	if expr != "" {
		prog, err := pcapfilter.Compile(expr)
		if err != nil {
			return cfg, usageError{err}
		}
		if cfg.ExprProg, err = pcapfilter.Translate(prog); err != nil {
			return cfg, fmt.Errorf("filter expression %q: %w", expr, err)
		}
		cfg.Expr, cfg.ExprBPF = expr, prog
	}
	if fl.snaplen < 1 || fl.snaplen > probe.MaxSnaplen {
		return cfg, usageError{fmt.Errorf("--snaplen %d: give a number of bytes from 1 to %d", fl.snaplen, probe.MaxSnaplen)}
	}
	if os.Geteuid() != 0 {
		return cfg, fmt.Errorf("tracing needs root (CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN): run it with sudo")
	}
	// Who lives in which namespace: for the output, and for --pod,
	// --container, --pid, --netns-current, which choose the namespace.
	o := fl.f
	if cfg.names, err = fl.ns.resolve(context.Background(), &o); err != nil {
		return cfg, err
	}
	if o.Netns != fl.f.Netns {
		if f, err = filter.Parse(o); err != nil {
			cfg.names.Close()
			return cfg, err
		}
	}
	fl.diag.Names = cfg.names
	if (fl.diag.Keep || fl.diag.Quiet || fl.diag.NoNFTrace || fl.diag.Hooks) && !fl.diag.Enabled {
		fl.diag.Enabled = true // the diag options imply --diag
	}
	if fl.diag.Enabled && fl.basic {
		return cfg, usageError{fmt.Errorf("--diag analyses whole packets: it does not go with --basic")}
	}
	cfg.Filter, cfg.Tracers, cfg.Basic, cfg.Count, cfg.RingSize = f, tracers, fl.basic, fl.count, fl.bufferSize
	cfg.Diag = fl.diag
	cfg.Ret = fl.ret
	cfg.Privs = &privs.Plan{Mode: privs.Trace, User: fl.user}
	if fl.diag.Enabled {
		cfg.Privs.Mode = privs.Diag
	}
	if err := cfg.Privs.Check(); err != nil {
		return cfg, usageError{err}
	}
	out := stdout
	if fl.pcap != "" {
		w := stdout
		if fl.pcap == "-" {
			out = stderr // stdout is the capture
		} else {
			file, err := outfile.Create("--pcap", fl.pcap, fl.force)
			if errors.Is(err, outfile.ErrExists) || errors.Is(err, outfile.ErrUnsafe) {
				return cfg, usageError{err}
			}
			if err != nil {
				return cfg, err
			}
			w, cfg.pcapFile = file, file
		}
		cfg.Snaplen = uint32(fl.snaplen)
		if cfg.Pcap, err = output.NewPcap(w, cfg.Snaplen, version); err != nil {
			return cfg, err
		}
		cfg.Pcap.Names = cfg.names
	}
	if fl.jsonOut {
		j := output.NewJSON(out)
		j.Names = cfg.names
		cfg.Out = j
	} else {
		t := output.NewText(out, fl.detail)
		t.Names = cfg.names
		cfg.Out = t
	}
	return cfg, nil
}

// listTracers writes the tracer tree from the kernel's BTF and kallsyms
// only: it loads no program and mounts nothing (tracepoints are shown as
// tracing will first try them, tp_btf; functions as found, since how they
// attach is known only by loading: skbtrail check).
func listTracers(stdout io.Writer) error {
	spec, err := kernel.BTF()
	if err != nil {
		return err
	}
	assume := kernel.Features{TpBtf: kernel.Support{OK: true}, RawTp: kernel.Support{OK: true}}
	fmt.Fprint(stdout, output.Tree(probe.Availability(spec, assume)))
	fmt.Fprint(stdout, output.FuncTree(function.Avails(function.Listing(spec)), function.ManyFuncs))
	return nil
}

// check loads a small program of each kind to find what the kernel allows.
func check(stdout io.Writer) error {
	f := kernel.Detect()
	r := output.CheckReport{Release: f.Version.Release, Lockdown: f.Lockdown, Funcs: function.Describe(f)}
	for _, row := range []struct {
		name, use string
		s         kernel.Support
	}{
		{"BTF", "CO-RE and tp_btf", f.BTF},
		{"tp_btf", "tracepoints (preferred)", f.TpBtf},
		{"raw_tp", "tracepoints (fallback)", f.RawTp},
		{"kprobe", "function probes", f.Kprobe},
		{"kprobe.multi", "many function probes at once", f.KprobeMulti},
		{"fentry/fexit", "function probes (preferred)", f.Fentry},
		{"netfilter link", "netfilter hook observers (--diag)", f.NetfilterLink},
	} {
		r.Support = append(r.Support, output.CheckRow{Name: row.name, Use: row.use, OK: row.s.OK, Detail: row.s.Detail})
	}
	if spec, err := kernel.BTF(); err == nil {
		r.Tracepoints = probe.Availability(spec, f)
	}
	for _, m := range privs.Modes() {
		r.Privileges = append(r.Privileges, output.PrivRow{Mode: m.Name, Start: m.Start.String(),
			Keep: privs.Needs(m).String(), Why: m.Why, User: m.User})
	}
	if held, err := privs.Held(); err == nil {
		r.Held = held.String()
	} else {
		r.Held = err.Error()
	}
	output.Check(stdout, r)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--duration %q: give a positive duration such as 10s, 500ms or 2m", s)
	}
	return d, nil
}

// newFlagSet returns a flag set with the packet filter flags that tracing
// and drops share, in help group Filter (drops redescribes some); errors are returned, not printed, so that bad input is
// one line.
func newFlagSet(name string, f *filter.Options, nf *nsFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	g := flagGroup{fs, groupFilter}
	g.String(&f.Saddr, "saddr", "s", "", "ADDR[/LEN]", "source address or prefix")
	g.String(&f.Daddr, "daddr", "d", "", "ADDR[/LEN]", "destination address or prefix")
	g.String(&f.Addr, "addr", "", "", "ADDR[/LEN]", "source or destination")
	g.String(&f.Sport, "sport", "S", "", "PORT", "source port (tcp, udp)")
	g.String(&f.Dport, "dport", "D", "", "PORT", "destination port")
	g.String(&f.Port, "port", "", "", "PORT", "source or destination port")
	g.String(&f.Proto, "proto", "p", "", "PROTO", "tcp, udp, icmp, icmp6, or a protocol number")
	g.String(&f.Netns, "netns", "", "", "NS", "only packets in this network namespace: "+
		"a name under /run/netns, a path, or an inode number")
	addNSFlags(fs, nf)
	g.String(&f.Dev, "dev", "", "", "IFNAME", "only packets on this interface "+
		"(in any namespace unless a namespace is chosen)")
	return fs
}
