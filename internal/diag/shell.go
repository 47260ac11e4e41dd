package diag

import (
	"fmt"
	"strings"
)

// Shell quotes s as one word for a POSIX shell (sh, bash, zsh), for names
// the kernel accepts but a shell would split or run: an interface, table or
// chain name in a command the advice shows. A name of only safe characters
// is left as it is; else it is put in single quotes ('it'\”s'); a name with
// control characters (a newline, an escape that would rewrite the terminal)
// is written as $'...' with \xNN escapes, so the advice stays one line and
// shows what is there.
func Shell(s string) string {
	if s == "" {
		return "''"
	}
	safe, ctl := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c == 0x7f || c >= 0x80:
			ctl, safe = true, false
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			safe = false
		}
	}
	if safe {
		return s
	}
	if !ctl {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// NftName writes a table or chain name as nft's command line parser takes
// it: as it is when it is an nft identifier, else in double quotes (nft's
// quoted string), which Shell then quotes for the shell.
func NftName(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' ||
			i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '-' || c == '/')
	}
	if ok {
		return s
	}
	return `"` + s + `"`
}
