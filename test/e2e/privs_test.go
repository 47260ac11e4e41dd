package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// capNumbers are the capabilities `skbtrail check` may name as kept.
var capNumbers = map[string]uint{
	"cap_setgid": 6, "cap_setuid": 7, "cap_setpcap": 8, "cap_net_admin": 12,
	"cap_sys_ptrace": 19, "cap_sys_admin": 21, "cap_sys_resource": 24,
	"cap_syslog": 34, "cap_perfmon": 38, "cap_bpf": 39,
}

// keptByCheck returns what `skbtrail check` says each mode keeps after
// the start, as a capability mask.
func keptByCheck(t *testing.T) map[string]uint64 {
	t.Helper()
	stdout, stderr, code := runOnce(t, "check")
	if code != 0 {
		t.Fatalf("skbtrail check: status %d:\n%s", code, describeOutput(stdout, stderr))
	}
	re := regexp.MustCompile(`(?m)^(\w+)\s+needs to start: .*\n\s+keeps after:\s+(\S+) `)
	out := map[string]uint64{}
	for _, m := range re.FindAllStringSubmatch(stdout, -1) {
		var mask uint64
		if m[2] != "none" {
			for _, name := range strings.Split(m[2], ",") {
				n, ok := capNumbers[name]
				if !ok {
					t.Fatalf("skbtrail check names %q, unknown to this test:\n%s", name, stdout)
				}
				mask |= 1 << n
			}
		}
		out[m[1]] = mask
	}
	for _, mode := range []string{"trace", "diag", "drops"} {
		if _, ok := out[mode]; !ok {
			t.Fatalf("skbtrail check does not say what %s keeps:\n%s", mode, stdout)
		}
	}
	if !strings.Contains(stdout, "capabilities held: ") {
		t.Errorf("skbtrail check does not say what it holds:\n%s", stdout)
	}
	return out
}

// procStatus returns fields of /proc/PID/status of every thread of pid.
func procStatus(t *testing.T, pid int) []map[string]string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread is gone
		}
		m := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				m[k] = strings.TrimSpace(v)
			}
		}
		out = append(out, m)
	}
	return out
}

// Once it has begun, a running skbtrail holds exactly the capabilities
// `skbtrail check` says its mode keeps, on every thread and in the
// bounding set too, with no_new_privs; with --user it runs as that user.
func TestPrivilegesDropped(t *testing.T) {
	needBinary(t)
	if staticErr != nil {
		t.Fatalf("the binary under test was built with cgo, where Go cannot drop capabilities on all threads: %v", staticErr)
	}
	t.Parallel()
	kept := keptByCheck(t)
	for _, c := range []struct {
		mode string
		args []string
		uid  string
	}{
		{"trace", []string{"-p", "icmp", "--duration", durArg(20 * time.Second)}, "0"},
		{"trace", []string{"-p", "icmp", "--duration", durArg(20 * time.Second), "--user", "nobody"}, "65534"},
		{"diag", []string{"-p", "icmp", "--diag", "--duration", durArg(20 * time.Second)}, "0"},
		{"drops", []string{"drops", "--duration", durArg(20 * time.Second)}, "0"},
		{"drops", []string{"drops", "--duration", durArg(20 * time.Second), "--user", "nobody"}, "65534"},
	} {
		tr := run(t, c.args...)
		want := kept[c.mode]
		threads := procStatus(t, tr.cmd.Process.Pid)
		if len(threads) < 2 {
			t.Errorf("%s: %d threads", tr.name(), len(threads))
		}
		for _, th := range threads {
			for _, f := range []string{"CapEff", "CapPrm", "CapBnd"} {
				v, err := strconv.ParseUint(th[f], 16, 64)
				if err != nil || v != want {
					t.Errorf("%s: thread %s %s = %s, want %016x (what skbtrail check says %s keeps)", tr.name(), th["Pid"], f, th[f], want, c.mode)
				}
			}
			if th["CapInh"] != "0000000000000000" || th["CapAmb"] != "0000000000000000" || th["NoNewPrivs"] != "1" {
				t.Errorf("%s: thread %s CapInh %s CapAmb %s NoNewPrivs %s, want 0, 0, 1", tr.name(), th["Pid"], th["CapInh"], th["CapAmb"], th["NoNewPrivs"])
			}
			if f := strings.Fields(th["Uid"]); len(f) != 4 || f[0] != c.uid || f[1] != c.uid || f[2] != c.uid || f[3] != c.uid {
				t.Errorf("%s: thread %s Uid %q, want %s everywhere", tr.name(), th["Pid"], th["Uid"], c.uid)
			}
		}
		tr.signal(os.Interrupt)
		_, stderr := tr.waitOK(exitWithin)
		if strings.Contains(stderr, "capabilities not dropped") {
			t.Errorf("%s: %s", tr.name(), stderr)
		}
	}
	// --diag needs root to the end: --user is bad input.
	stdout, stderr, code := runOnce(t, "-p", "icmp", "--diag", "--user", "nobody", "--duration", "1s")
	if code != 2 || !strings.Contains(stderr, "--user") {
		t.Errorf("--diag --user nobody: status %d, want 2 naming --user:\n%s", code, describeOutput(stdout, stderr))
	}
}
