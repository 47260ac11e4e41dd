package host

import (
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/skbtrail/skbtrail/internal/netns"
)

func TestHost(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to create a network namespace")
		}
		t.Skip("needs root")
	}
	name := fmt.Sprintf("sbt-host-%d", rand.Intn(1e6))
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	run("ip", "-n", name, "link", "add", "sbth0", "type", "veth", "peer", "name", "sbth1")
	run("ip", "-n", name, "addr", "add", "198.18.77.1/24", "dev", "sbth0")
	run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.conf.sbth0.forwarding=1", "net.ipv4.conf.all.rp_filter=1")
	ns, err := netns.Inode("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var h Host
	if on, ok := h.Forwarding(ns, 4, "sbth1"); !ok || on {
		t.Errorf("Forwarding(sbth1) = %v, %v; want off", on, ok)
	}
	if on, ok := h.Forwarding(ns, 4, "sbth0"); !ok || !on {
		t.Errorf("Forwarding(sbth0) = %v, %v; want on", on, ok)
	}
	if m, ok := h.RPFilter(ns, "sbth0"); !ok || m != 1 {
		t.Errorf("RPFilter = %d, %v; want 1", m, ok)
	}
	if l, ok := h.IsLocal(ns, netip.MustParseAddr("198.18.77.1")); !ok || !l {
		t.Errorf("IsLocal(198.18.77.1) = %v, %v", l, ok)
	}
	if l, ok := h.IsLocal(ns, netip.MustParseAddr("198.18.77.2")); !ok || l {
		t.Errorf("IsLocal(198.18.77.2) = %v, %v", l, ok)
	}
	if _, ok := h.Forwarding(1, 4, ""); ok {
		t.Error("Forwarding in a namespace that does not exist says ok")
	}
}
