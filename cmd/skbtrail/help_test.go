package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the golden help texts in testdata")

// command is one command's flag set and help, as --help prints it.
type command struct {
	name   string
	fs     *pflag.FlagSet
	doc    helpDoc
	args   []string // how to ask for its help
	golden string   // file in testdata
}

func commands() []command {
	return []command{
		{"skbtrail", traceFlagSet(&flags{}), traceHelp, []string{"--help"}, "help.txt"},
		{"skbtrail drops", dropsFlagSet(&dropsFlags{}), dropsHelp, []string{"drops", "--help"}, "drops-help.txt"},
	}
}

// helpOf runs the command with args as main does and returns what it
// printed.
func helpOf(t *testing.T, args []string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("skbtrail %s: exit status %d, stderr %q", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String()
}

// Every flag is described, in a group the help has, with its entry once;
// a default other than the zero value is the one the description names.
func TestHelpFlags(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			help := helpOf(t, c.args)
			var groups []string
			for _, s := range c.doc.sections {
				groups = append(groups, s.group)
			}
			n := 0
			c.fs.VisitAll(func(f *pflag.Flag) {
				n++
				if strings.TrimSpace(f.Usage) == "" {
					t.Errorf("--%s has no description", f.Name)
				}
				if g := flagGroupOf(f); !slices.Contains(groups, g) {
					t.Errorf("--%s is in group %q, which the help has not (it has %q)", f.Name, g, groups)
				}
				short := "    "
				if f.Shorthand != "" {
					short = "-" + f.Shorthand + ", "
				}
				entry := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(short+"--"+f.Name) + `( |$)`)
				if got := len(entry.FindAllString(help, -1)); got != 1 {
					t.Errorf("--%s has %d entries in the help, want 1", f.Name, got)
				}
				zero := f.DefValue == "" || f.DefValue == "0" || f.DefValue == "false"
				if !zero && !strings.Contains(f.Usage, "default "+f.DefValue) {
					t.Errorf("--%s defaults to %s, which its description %q does not say", f.Name, f.DefValue, f.Usage)
				}
			})
			if n < 10 {
				t.Errorf("only %d flags: the flag set is not the command's", n)
			}
		})
	}
}

// The filter flags are the same in both commands, from one definition, and
// drops words only --netns and --dev its own way.
func TestHelpSharedFilter(t *testing.T) {
	trace, drops := traceFlagSet(&flags{}), dropsFlagSet(&dropsFlags{})
	var names []string
	trace.VisitAll(func(f *pflag.Flag) {
		if flagGroupOf(f) == groupFilter {
			names = append(names, f.Name)
		}
	})
	var dropsNames []string
	drops.VisitAll(func(f *pflag.Flag) {
		if flagGroupOf(f) == groupFilter {
			dropsNames = append(dropsNames, f.Name)
		}
	})
	if !slices.Equal(names, dropsNames) {
		t.Errorf("filter flags: tracing has %q, drops %q", names, dropsNames)
	}
	for _, name := range names {
		a, b := trace.Lookup(name), drops.Lookup(name)
		own := name == "netns" || name == "dev"
		if (a.Usage != b.Usage) != own || flagTerm(a) != flagTerm(b) {
			t.Errorf("--%s: tracing has %q %q, drops %q %q", name, flagTerm(a), a.Usage, flagTerm(b), b.Usage)
		}
	}
}

// The help fits 79 columns, its entries' descriptions start at column 29,
// and it is the one in testdata (go test -update rewrites that).
func TestHelpText(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			help := helpOf(t, c.args)
			if help != helpText(c.fs, c.doc) {
				t.Errorf("--help does not print helpText of the flag set")
			}
			for i, line := range strings.Split(help, "\n") {
				if n := utf8.RuneCountInString(line); n > helpWidth {
					t.Errorf("line %d is %d columns, more than %d: %q", i+1, n, helpWidth, line)
				}
				if strings.HasSuffix(line, " ") {
					t.Errorf("line %d ends with a space: %q", i+1, line)
				}
			}
			if !strings.HasSuffix(help, "\n") || strings.HasSuffix(help, "\n\n") {
				t.Errorf("the help does not end with exactly one newline")
			}
			path := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(path, []byte(help), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./cmd/skbtrail -update writes it)", err)
			}
			if help != string(want) {
				t.Errorf("the help differs from %s (go test ./cmd/skbtrail -update rewrites it after a check):\n%s", path, help)
			}
		})
	}
}

func TestHelpEntry(t *testing.T) {
	long := strings.Repeat("x", 60)
	for _, c := range []struct {
		name, term, desc, want string
	}{
		{"one line", "  -s, --saddr ADDR[/LEN]", "source address or prefix",
			"  -s, --saddr ADDR[/LEN]    source address or prefix\n"},
		{"wrapped at 79 columns", "      --x", strings.Repeat("abcd ", 12),
			"      --x                   abcd abcd abcd abcd abcd abcd abcd abcd abcd abcd\n" +
				"                            abcd abcd\n"},
		{"a quoted span is not broken", "  EXPR", "a filter, e.g. 'tcp and dst port 80 and net 198.18.0.0/15'; more",
			"  EXPR                      a filter, e.g.\n" +
				"                            'tcp and dst port 80 and net 198.18.0.0/15'; more\n"},
		{"an apostrophe opens no span", "  -x", "skbtrail's own '?' and '-' words that go on for quite a while",
			"  -x                        skbtrail's own '?' and '-' words that go on for\n" +
				"                            quite a while\n"},
		{"a long word has its own line", "  -x", "a " + long + " b",
			"  -x                        a\n                            " + long + "\n                            b\n"},
		{"a long term has its own line", "      --a-very-long-flag-name N", "d",
			"      --a-very-long-flag-name N\n                            d\n"},
		{"no description", "  -x", "", "  -x\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			writeEntry(&b, c.term, c.desc)
			if b.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), c.want)
			}
		})
	}
}
