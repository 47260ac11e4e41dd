package names

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/names/critest"
	"github.com/skbtrail/skbtrail/internal/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root (CI=true: not skipped)")
		}
		t.Skip("needs root")
	}
}

// newNetns makes a named network namespace for the test.
func newNetns(t *testing.T) (string, uint32) {
	t.Helper()
	name := fmt.Sprintf("sbtn-%06x", rand.IntN(1<<24))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ino, err := netns.Inode("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return name, ino
}

func TestWhoShort(t *testing.T) {
	for _, tc := range []struct {
		w            Who
		short, enter string
	}{
		{Who{Inode: 7, Pod: "web-7c9f", PodNamespace: "default", NetnsName: "cni-1", PID: 12, Comm: "pause"},
			"pod default/web-7c9f", "`ip netns exec cni-1 CMD` on the node, or `kubectl exec -n default web-7c9f -- CMD` where the container has the tool"},
		{Who{Inode: 7, Pod: "web", PodNamespace: "prod", PID: 12}, "pod prod/web",
			"`nsenter -t 12 -n CMD` on the node, or `kubectl exec -n prod web -- CMD` where the container has the tool"},
		{Who{Inode: 7, NetnsName: "blue", PID: 3}, "netns blue", "`ip netns exec blue CMD`"},
		{Who{Inode: 7, Host: true, PID: 1, Comm: "systemd"}, "host", ""},
		{Who{Inode: 7, ContainerID: strings.Repeat("ab", 32), PID: 40, Comm: "nginx"}, "container abababababab", "`nsenter -t 40 -n CMD`"},
		{Who{Inode: 7, PID: 1234, Comm: "nginx"}, "pid 1234 nginx", "`nsenter -t 1234 -n CMD`"},
		{Who{Inode: 7}, "", ""},
	} {
		if got := tc.w.Short(); got != tc.short {
			t.Errorf("%+v: Short %q, want %q", tc.w, got, tc.short)
		}
		if got := tc.w.Enter(); got != tc.enter {
			t.Errorf("%+v: Enter %q, want %q", tc.w, got, tc.enter)
		}
	}
	if got := (Who{Inode: 4026531840}).String(); got != "netns 4026531840" {
		t.Errorf("String of an unknown namespace: %q", got)
	}
}

func TestSandboxNetns(t *testing.T) {
	for _, tc := range []struct {
		name string
		info map[string]string
		path string
		pid  int
	}{
		{"containerd", map[string]string{"info": `{"pid":42,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/var/run/netns/cni-1"}]}}}`}, "/var/run/netns/cni-1", 42},
		{"pid only", map[string]string{"info": `{"pid":42}`}, "/proc/42/ns/net", 42},
		{"host network", map[string]string{"info": `{"pid":0,"runtimeSpec":{"linux":{"namespaces":[{"type":"pid"}]}}}`}, "", 0},
		{"not json", map[string]string{"info": `{`}, "", 0},
		{"none", nil, "", 0},
	} {
		path, pid := sandboxNetns(tc.info)
		if path != tc.path || pid != tc.pid {
			t.Errorf("%s: got %q %d, want %q %d", tc.name, path, pid, tc.path, tc.pid)
		}
	}
}

// TestCRI runs the client against the test CRI server: two pods, one laid
// out as containerd does (the sandbox status names the namespace file),
// one as CRI-O (found through its containers' cgroups), and a namespace
// with a process but no pod.
func TestCRI(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	srv := critest.Start(t, t.TempDir(), "critest")
	nsA, inoA := newNetns(t)
	nsB, inoB := newNetns(t)
	nsC, inoC := newNetns(t)
	a := srv.AddPod(t, critest.Containerd, "default", "web-7c9f", nsA, "nginx", "sidecar")
	b := srv.AddPod(t, critest.CRIO, "prod", "db-0", nsB, "postgres")
	srv.AddPod(t, critest.Containerd, "kube-system", "kube-proxy-x", "", "kube-proxy") // hostNetwork
	// A process in C, in a Docker-like cgroup, no pod.
	plain := exec.Command("ip", "netns", "exec", nsC, "sleep", "3600")
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Process.Kill(); plain.Wait() })

	r, err := New(ctx, Options{CRIEndpoint: "unix://" + srv.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.Runtime(), "critest test at ") {
		t.Errorf("Runtime() = %q", r.Runtime())
	}
	wa := r.Who(inoA)
	if wa.Pod != "web-7c9f" || wa.PodNamespace != "default" || wa.PodUID != a.UID || wa.Container != "nginx,sidecar" {
		t.Errorf("pod A: %+v", wa)
	}
	if wa.Short() != "pod default/web-7c9f" || wa.NetnsName != nsA {
		t.Errorf("pod A: Short %q NetnsName %q", wa.Short(), wa.NetnsName)
	}
	if wa.PID != a.PID {
		t.Errorf("pod A: first process %d, want the sandbox's %d", wa.PID, a.PID)
	}
	wb := r.Who(inoB)
	if wb.Pod != "db-0" || wb.PodNamespace != "prod" || wb.Container != "postgres" {
		t.Errorf("pod B (CRI-O layout, found by cgroup): %+v", wb)
	}
	// Wait for sleep in C (ip netns exec execs it).
	deadline := time.Now().Add(5 * time.Second)
	for r.Who(inoC).Comm != "sleep" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		r.Refresh(ctx)
	}
	if wc := r.Who(inoC); wc.Pod != "" || wc.Short() != "netns "+nsC || wc.Comm != "sleep" {
		t.Errorf("netns C: %+v", wc)
	}

	if w := r.Who(netns.Current()); w.Pod != "" || !w.Host {
		t.Errorf("the host's namespace, with a host-network pod on it: %+v", w)
	}

	// Selection.
	for _, tc := range []struct {
		kind, spec string
		ino        uint32
		label      string
	}{
		{"pod", "default/web-7c9f", inoA, "pod default/web-7c9f"},
		{"pod", "db-0", inoB, "pod prod/db-0"},
		{"pod", "kube-system/kube-proxy-x", netns.Current(), "pod kube-system/kube-proxy-x (host network)"},
		{"container", "postgres", inoB, "container postgres of pod prod/db-0"},
		{"container", a.Containers[1].ID[:10], inoA, "container sidecar of pod default/web-7c9f"},
		{"pid", fmt.Sprint(b.Containers[0].PID), inoB, fmt.Sprintf("pid %d (sleep)", b.Containers[0].PID)},
	} {
		var sel Selection
		var err error
		switch tc.kind {
		case "pod":
			sel, err = r.Pod(ctx, tc.spec)
		case "container":
			sel, err = r.Container(ctx, tc.spec)
		case "pid":
			sel, err = r.PID(tc.spec)
		}
		if err != nil {
			t.Errorf("--%s %s: %v", tc.kind, tc.spec, err)
			continue
		}
		if sel.Inode != tc.ino || sel.Label != tc.label {
			t.Errorf("--%s %s: %+v, want inode %d label %q", tc.kind, tc.spec, sel, tc.ino, tc.label)
		}
		if got, err := netns.Inode(sel.Path); err != nil || got != tc.ino {
			t.Errorf("--%s %s: path %s is inode %d (%v), want %d", tc.kind, tc.spec, sel.Path, got, err, tc.ino)
		}
	}
	for _, tc := range []struct{ kind, spec, want string }{
		{"pod", "default/nope", `--pod "default/nope": no running pod of that name on this node (pods: default/web-7c9f, prod/db-0)`},
		{"pod", "prod/web-7c9f", `no running pod of that name`},
		{"container", "nope", `--container "nope": no container with that id or name among this node's containers`},
		{"pid", "999999999", `--pid 999999999: no such process`},
		{"pid", "x", `--pid "x": give a process id`},
	} {
		var err error
		switch tc.kind {
		case "pod":
			_, err = r.Pod(ctx, tc.spec)
		case "container":
			_, err = r.Container(ctx, tc.spec)
		case "pid":
			_, err = r.PID(tc.spec)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--%s %s: error %v, want one containing %q", tc.kind, tc.spec, err, tc.want)
		}
	}
}

// TestNoRuntime: without a runtime, a namespace is named by its process
// and its container id from the cgroup, and --pod says why it cannot work.
func TestNoRuntime(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	srv := critest.Start(t, t.TempDir(), "critest") // only for its pods' processes and cgroups
	ns, ino := newNetns(t)
	p := srv.AddPod(t, critest.Containerd, "default", "web", ns, "nginx")
	var log strings.Builder
	r, err := New(ctx, Options{CRIEndpoint: "none", Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	w := r.Who(ino)
	if w.Pod != "" || w.ContainerID != p.ID || w.PID != p.PID {
		t.Errorf("without a runtime: %+v, want container %s (the sandbox's cgroup) pid %d", w, p.ID, p.PID)
	}
	if _, err := r.Pod(ctx, "web"); err == nil || !strings.Contains(err.Error(), "no container runtime to ask") {
		t.Errorf("--pod without a runtime: %v", err)
	}
	sel, err := r.Container(ctx, p.Containers[0].ID[:12])
	if err != nil || sel.Inode != ino {
		t.Errorf("--container by id without a runtime: %+v %v", sel, err)
	}

	// No socket found: said once.
	old := Sockets
	Sockets = []string{t.TempDir() + "/none.sock"}
	defer func() { Sockets = old }()
	log.Reset()
	r2, err := New(ctx, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	r2.Who(1)
	r2.Who(2)
	if n := strings.Count(log.String(), "no container runtime socket"); n != 1 {
		t.Errorf("said %d times: %q", n, log.String())
	}
	if _, err := New(ctx, Options{CRIEndpoint: t.TempDir() + "/x.sock"}); err == nil || !strings.Contains(err.Error(), "--cri-endpoint") {
		t.Errorf("a missing --cri-endpoint: %v", err)
	}
}

// TestCached: looking names up costs no new look at /proc, except for an
// unknown namespace once per refresh period.
func TestCached(t *testing.T) {
	needRoot(t)
	r, err := New(context.Background(), Options{CRIEndpoint: "none", Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	host := netns.Current()
	for i := 0; i < 1000; i++ {
		r.Who(host)
		r.Who(12345) // unknown
	}
	if n := r.Scans(); n != 1 {
		t.Errorf("%d looks at /proc for 2000 lookups, want 1 (the first)", n)
	}
	if !r.Who(host).Host {
		t.Errorf("the current namespace is not the host's: %+v", r.Who(host))
	}
	r.mu.Lock()
	r.opts.Refresh, r.last = time.Hour, time.Now().Add(-2*time.Hour)
	r.mu.Unlock()
	for i := 0; i < 100; i++ {
		r.Who(12345) // one look in the background, not 100
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Scans() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := r.Scans(); n != 2 {
		t.Errorf("an unknown namespace after the refresh period: %d looks, want 2", n)
	}
}
