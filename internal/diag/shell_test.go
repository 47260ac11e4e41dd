package diag

import (
	"os"
	"os/exec"
	"testing"
)

// Hostile names come out as one shell word that means exactly the name:
// checked by running them through bash (and sh where it understands them).
func TestShell(t *testing.T) {
	for _, c := range []struct {
		name, want string
	}{
		{"eth0", "eth0"},
		{"veth-b", "veth-b"},
		{"eth0.100", "eth0.100"},
		{"filter", "filter"},
		{"", "''"},
		{"my table", "'my table'"},
		{"x;reboot", "'x;reboot'"},
		{"$(reboot)", "'$(reboot)'"},
		{"`id`", "'`id`'"},
		{"it's", `'it'\''s'`},
		{"a|b&c>d<e", "'a|b&c>d<e'"},
		{"*", "'*'"},
		{"~root", "'~root'"},
		{"-rf", "-rf"}, // a word, not an option of the shell; the command's own parsing is its business
		{"line\nbreak", `$'line\x0abreak'`},
		{"\x1b[2Jclear", `$'\x1b[2Jclear'`},
		{"back\\slash'q\n", `$'back\\slash\'q\x0a'`},
		{"ünï", `$'\xc3\xbcn\xc3\xaf'`},
	} {
		got := Shell(c.name)
		if got != c.want {
			t.Errorf("Shell(%q) = %s, want %s", c.name, got, c.want)
		}
	}
}

// What bash makes of Shell(name) is name, as one argument, and nothing runs.
func TestShellRoundTrip(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: bash is needed")
		}
		t.Skip("no bash")
	}
	canary := t.TempDir() + "/ran"
	for _, name := range []string{
		"my table", "x;touch " + canary, "$(touch " + canary + ")", "`touch " + canary + "`",
		"it's", "a\"b", "line\nbreak", "\x1b]0;title\x07", "tab\there", "back\\slash'q", "*", "!", "#comment", "ünï",
	} {
		script := "printf '%s\\0' " + Shell(name) + "; printf END"
		out, err := exec.Command(bash, "-c", script).Output()
		if err != nil {
			t.Errorf("bash -c %q: %v", script, err)
			continue
		}
		if want := name + "\x00END"; string(out) != want {
			t.Errorf("Shell(%q) = %s: bash sees %q, want %q", name, Shell(name), out, want)
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("a quoted name ran a command")
	}
}

func TestNftName(t *testing.T) {
	for _, c := range []struct{ name, want, shell string }{
		{"filter", "filter", "filter"},
		{"user_fw", "user_fw", "user_fw"},
		{"KUBE-SERVICES", "KUBE-SERVICES", "KUBE-SERVICES"},
		{"my table", `"my table"`, `'"my table"'`},
		{"1abc", `"1abc"`, `'"1abc"'`},
		{"x;reboot", `"x;reboot"`, `'"x;reboot"'`},
	} {
		if got := NftName(c.name); got != c.want {
			t.Errorf("NftName(%q) = %s, want %s", c.name, got, c.want)
		}
		if got := Shell(NftName(c.name)); got != c.shell {
			t.Errorf("Shell(NftName(%q)) = %s, want %s", c.name, got, c.shell)
		}
	}
}
