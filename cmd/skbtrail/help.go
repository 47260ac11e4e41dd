package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// The --help text of each command is rendered from its flag definitions:
// every flag is registered once, by a flagGroup, with its help group,
// argument placeholder and description, and helpText lays the flags out
// between the fixed text of the command's helpDoc. So a flag cannot be
// missing from the help, nor described twice.

const (
	// helpWidth is the longest a line of the help may be.
	helpWidth = 79
	// helpIndent is where descriptions start: column 29.
	helpIndent = 28

	annGroup = "skbtrail.group" // the flag's help group
	annArg   = "skbtrail.arg"   // the placeholder of its argument
)

// The help groups of the flags: tracing has them all, drops Filter,
// Output and Running.
const (
	groupFilter    = "Filter"
	groupTracers   = "Tracers"
	groupOutput    = "Output"
	groupDiagnosis = "Diagnosis"
	groupRunning   = "Running"
)

// flagGroup registers the flags of one help group ("Filter", "Output", ...)
// on a flag set: each with its argument placeholder (none for a boolean)
// and its description.
type flagGroup struct {
	fs   *pflag.FlagSet
	name string
}

func (g flagGroup) String(p *string, name, short, value, arg, desc string) {
	g.fs.StringVarP(p, name, short, value, desc)
	g.annotate(name, arg)
}

func (g flagGroup) Int(p *int, name, short string, value int, arg, desc string) {
	g.fs.IntVarP(p, name, short, value, desc)
	g.annotate(name, arg)
}

func (g flagGroup) Bool(p *bool, name, short, desc string) {
	g.fs.BoolVarP(p, name, short, false, desc)
	g.annotate(name, "")
}

func (g flagGroup) annotate(name, arg string) {
	must(g.fs.SetAnnotation(name, annGroup, []string{g.name}))
	if arg != "" {
		must(g.fs.SetAnnotation(name, annArg, []string{arg}))
	}
}

// redescribe gives a shared flag another description in one command.
func redescribe(fs *pflag.FlagSet, name, desc string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("redescribe: no flag --" + name)
	}
	f.Usage = desc
}

// must panics on an error that only a programming mistake can cause.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// helpDoc is the fixed text of a command's help, around its flags.
type helpDoc struct {
	intro    string // up to the first section, ending with a blank line
	sections []helpSection
	outro    string // after the last section
}

// helpSection is one group of flags in the help: its heading, the flags
// of its group in definition order, then more entries and a note.
type helpSection struct {
	group   string      // the flags' group
	heading string      // the first line, without its newline
	more    []helpEntry // entries after the flags: positional arguments
	note    string      // text after the entries, with its newlines
}

// helpEntry is one entry: a term (flags and placeholder, or a positional
// argument) and its description, which is wrapped.
type helpEntry struct{ term, desc string }

// helpText renders the help of the command with flag set fs.
func helpText(fs *pflag.FlagSet, doc helpDoc) string {
	var b strings.Builder
	b.WriteString(doc.intro)
	for _, s := range doc.sections {
		b.WriteString(s.heading + "\n")
		fs.VisitAll(func(f *pflag.Flag) {
			if flagGroupOf(f) == s.group {
				writeEntry(&b, flagTerm(f), f.Usage)
			}
		})
		for _, e := range s.more {
			writeEntry(&b, e.term, e.desc)
		}
		b.WriteString(s.note)
		b.WriteString("\n")
	}
	b.WriteString(doc.outro)
	return b.String()
}

// flagGroupOf returns the help group the flag was registered in.
func flagGroupOf(f *pflag.Flag) string {
	if g := f.Annotations[annGroup]; len(g) > 0 {
		return g[0]
	}
	return ""
}

// flagTerm is how an entry names the flag: "  -s, --saddr ADDR[/LEN]" or
// "      --addr ADDR[/LEN]".
func flagTerm(f *pflag.Flag) string {
	t := "      --" + f.Name
	if f.Shorthand != "" {
		t = "  -" + f.Shorthand + ", --" + f.Name
	}
	if a := f.Annotations[annArg]; len(a) > 0 {
		t += " " + a[0]
	}
	return t
}

// writeEntry writes term and its description from column helpIndent+1,
// wrapped at helpWidth; a term too long for that starts a line of its own.
func writeEntry(b *strings.Builder, term, desc string) {
	lines := wrap(desc, helpWidth-helpIndent)
	pad := strings.Repeat(" ", helpIndent)
	if len(term)+2 > helpIndent {
		b.WriteString(term + "\n")
	} else if len(lines) > 0 {
		b.WriteString(term + pad[len(term):] + lines[0] + "\n")
		lines = lines[1:]
	} else {
		b.WriteString(term + "\n")
	}
	for _, l := range lines {
		b.WriteString(pad + l + "\n")
	}
}

// wrap fills the words of s into lines of at most width columns. A quoted
// span ('tcp and dst port 80') is not broken, so that it can be copied; a
// word longer than width has a line of its own.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range helpWords(s) {
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// helpWords splits s at spaces, except within a span that opens with a
// word starting with ' and closes with the next word holding a '.
func helpWords(s string) []string {
	var words []string
	open := false
	for _, w := range strings.Fields(s) {
		if open {
			words[len(words)-1] += " " + w
			open = !strings.Contains(w, "'")
			continue
		}
		words = append(words, w)
		open = strings.HasPrefix(w, "'") && !strings.Contains(w[1:], "'")
	}
	return words
}
