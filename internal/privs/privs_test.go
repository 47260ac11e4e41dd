package privs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"testing"
)

func TestSetString(t *testing.T) {
	for _, c := range []struct {
		s    Set
		want string
	}{
		{0, "none"},
		{Of(NetAdmin), "cap_net_admin"},
		{Of(SysAdmin, NetAdmin, SysPtrace), "cap_net_admin,cap_sys_ptrace,cap_sys_admin"},
		{Of(BPF, Perfmon), "cap_perfmon,cap_bpf"},
		{Set(1) << 45, "cap_45"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%#x: %q, want %q", uint64(c.s), got, c.want)
		}
	}
	// The numbers are the kernel's, as /proc/PID/status shows them.
	if Of(NetAdmin, SysPtrace, SysAdmin) != 0x281000 {
		t.Errorf("diag's set is %#x, want 0x281000", uint64(Of(NetAdmin, SysPtrace, SysAdmin)))
	}
}

// Every mode keeps less than it starts with, and what it keeps it started
// with.
func TestModes(t *testing.T) {
	for _, m := range Modes() {
		if m.Keep&^m.Start != 0 {
			t.Errorf("%s keeps %s it did not start with", m.Name, m.Keep&^m.Start)
		}
		if m.Keep == m.Start {
			t.Errorf("%s keeps everything it started with", m.Name)
		}
		if m.Why == "" {
			t.Errorf("%s: no reason for what it keeps", m.Name)
		}
	}
	if Diag.User {
		t.Errorf("--user is allowed with --diag, whose live checks run nft as root")
	}
}

func TestPlanCheck(t *testing.T) {
	for _, c := range []struct {
		p  Plan
		ok bool
	}{
		{Plan{Mode: Trace}, true},
		{Plan{Mode: Trace, User: "nobody"}, true},
		{Plan{Mode: Drops, User: "65534"}, true},
		{Plan{Mode: Diag, User: "nobody"}, false},
		{Plan{Mode: Trace, User: "root"}, false},
		{Plan{Mode: Trace, User: "no-such-user-skbtrail"}, false},
	} {
		if err := c.p.Check(); (err == nil) != c.ok {
			t.Errorf("%s --user %q: %v, want ok %v", c.p.Mode.Name, c.p.User, err, c.ok)
		}
	}
}

// Enter, in a child process (it cannot be undone): the effective,
// permitted and bounding sets of every thread become the mode's, and the
// user changes when asked. Only where capabilities can be changed on all
// threads (no cgo) and as root.
func TestEnter(t *testing.T) {
	if os.Getenv("PRIVS_CHILD") != "" {
		child()
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: this test needs root")
		}
		t.Skip("needs root")
	}
	bin := os.Args[0]
	if cgo() {
		// This test binary cannot change all threads: build one that
		// can, as the product is built.
		bin = filepath.Join(t.TempDir(), "privs.test")
		build := exec.Command("go", "test", "-c", "-o", bin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("CGO_ENABLED=0 go test -c: %v\n%s", err, out)
		}
	}
	for _, c := range []struct {
		mode, user string
		want       Set
		uid        string
	}{
		{"trace", "", Needs(Trace), "0"},
		{"diag", "", Needs(Diag), "0"},
		{"drops", "nobody", Needs(Drops), "65534"},
	} {
		cmd := exec.Command(bin, "-test.run=^TestEnter$")
		cmd.Env = append(os.Environ(), "PRIVS_CHILD="+c.mode, "PRIVS_USER="+c.user)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v:\n%s", c.mode, err, out)
		}
		for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
			// Every thread.
			m := regexp.MustCompile(`(?m)^`+f+`:\s*([0-9a-f]+)$`).FindAllStringSubmatch(string(out), -1)
			if len(m) < 2 {
				t.Fatalf("%s: %s of fewer than 2 threads:\n%s", c.mode, f, out)
			}
			for _, x := range m {
				v, _ := strconv.ParseUint(x[1], 16, 64)
				if Set(v) != c.want {
					t.Errorf("%s: a thread's %s is %s, want %s", c.mode, f, Set(v), c.want)
				}
			}
		}
		if !regexp.MustCompile(`(?m)^Uid:\s+` + c.uid + `\s+` + c.uid + `\s+` + c.uid).Match(out) {
			t.Errorf("%s --user %q: want uid %s:\n%s", c.mode, c.user, c.uid, out)
		}
	}
}

// cgo says whether this binary was built with cgo.
func cgo() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return true
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return true
}

func child() {
	m := map[string]Mode{"trace": Trace, "diag": Diag, "drops": Drops}[os.Getenv("PRIVS_CHILD")]
	// Make sure there are several threads.
	done := make(chan bool)
	for i := 0; i < 4; i++ {
		go func() { <-done }()
	}
	if _, err := (Plan{Mode: m, User: os.Getenv("PRIVS_USER")}).Enter(); err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		os.Stdout.Write(b)
	}
	os.Exit(0)
}
