package live

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/skbtrail/skbtrail/internal/netns"
)

// testNetns makes a namespace with a veth pair (both ends in it, up,
// 198.18.251.1/24 on one) and returns its inode.
func testNetns(t *testing.T) (string, uint32) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: live checks need root")
		}
		t.Skip("needs root")
	}
	name := fmt.Sprintf("sbt-live-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run("ip", "-n", name, "link", "add", "lv0", "type", "veth", "peer", "name", "lv1")
	run("ip", "-n", name, "addr", "add", "198.18.251.1/24", "dev", "lv0")
	run("ip", "-n", name, "link", "set", "lv0", "up")
	run("ip", "-n", name, "link", "set", "lv1", "up")
	run("ip", "-n", name, "link", "set", "lo", "up")
	run("ip", "-n", name, "route", "add", "blackhole", "198.19.251.5/32")
	run("ip", "-n", name, "route", "add", "unreachable", "198.19.251.7/32", "table", "100")
	run("ip", "-n", name, "rule", "add", "to", "198.19.251.7", "lookup", "100", "pref", "100")
	run("ip", "-n", name, "rule", "add", "to", "198.19.251.8", "prohibit", "pref", "101")
	ino, err := netns.Inode(filepath.Join(netns.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return name, ino
}

func TestRoute(t *testing.T) {
	_, ino := testNetns(t)
	c := New()
	src := netip.MustParseAddr("198.18.251.1")
	for _, tc := range []struct {
		dst, typ, rule, prefix string
		table                  int
	}{
		{"198.19.251.5", "blackhole", "", "198.19.251.5/32", 254},
		{"198.19.251.7", "unreachable", "100: from all to 198.19.251.7 lookup 100", "198.19.251.7/32", 100},
		{"198.19.251.8", "prohibit", "101: from all to 198.19.251.8 prohibit", "", 0},
		{"198.19.251.9", "none", "", "", 0},
		{"198.18.251.9", "unicast", "", "198.18.251.0/24", 254},
	} {
		rc, ok := c.Route(ino, src, netip.MustParseAddr(tc.dst), "")
		if !ok || rc.Type != tc.typ || rc.Rule != tc.rule || rc.Prefix != tc.prefix || rc.Table != tc.table {
			t.Errorf("Route(%s) = %+v, %v; want type %s rule %q prefix %q table %d", tc.dst, rc, ok, tc.typ, tc.rule, tc.prefix, tc.table)
		}
	}
}

func TestListenersAndSysctl(t *testing.T) {
	name, ino := testNetns(t)
	var ln net.Listener
	err := netns.Do(filepath.Join(netns.Dir, name), func() (err error) {
		ln, err = net.Listen("tcp", "198.18.251.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ls, ok := New().Listeners(6, 4, port)
	found := false
	for _, l := range ls {
		if l.Netns == ino && l.Addr == netip.AddrPortFrom(netip.MustParseAddr("198.18.251.1"), port) {
			found = true
		}
	}
	if !ok || !found {
		t.Errorf("Listeners(tcp, %d) = %v, %v: want 198.18.251.1:%d in netns %d", port, ls, ok, port, ino)
	}
	if v, ok := New().Sysctl(ino, "net/ipv4/ip_forward"); !ok || v != 0 {
		t.Errorf("Sysctl(ip_forward) = %d, %v; want 0 in a new namespace", v, ok)
	}
	if fs, ok := New().TCFilters(ino, "lv0", true); !ok || len(fs) != 0 {
		t.Errorf("TCFilters(lv0 ingress) = %v, %v; want none", fs, ok)
	}
}
