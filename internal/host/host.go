// Package host answers the diagnosis's questions about a network
// namespace's configuration: is forwarding on, how strict is the reverse
// path filter, is an address one of its own. It reads sysctls and asks
// rtnetlink inside the namespace; it changes nothing.
package host

import (
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/limits"
	"github.com/skbtrail/skbtrail/internal/netns"
)

// Host implements diag.Host for the running system. Its zero value works.
type Host struct{}

// Checks bounds the live checks (sysctl reads, address lists) per second,
// so that a flood of packets to analyse does not become a flood of reads
// and namespace switches; a check over the limit answers "unknown" (its
// finding is not shown) and is counted.
var Checks = limits.NewRate("live checks", 200, "live checks skipped (findings that needed them not shown)",
	func() int64 { return time.Now().UnixNano() })

// sysctl reads /proc/sys/<key> in the namespace with inode ns.
func sysctl(ns uint32, key string) (int, bool) {
	if !Checks.Allow() {
		return 0, false
	}
	path := netns.Path(ns)
	if ns != 0 && path == "" && ns != netns.Current() {
		return 0, false
	}
	var v int
	err := netns.Do(path, func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			return err
		}
		v, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return v, err == nil
}

// Forwarding reports whether the namespace forwards packets of family (4
// or 6) that arrive on ifname ("" = any).
func (Host) Forwarding(ns uint32, family uint8, ifname string) (on, ok bool) {
	key := "net/ipv4/ip_forward"
	if family == 6 {
		key = "net/ipv6/conf/all/forwarding"
	} else if ifname != "" && !strings.ContainsAny(ifname, "/.") {
		key = "net/ipv4/conf/" + ifname + "/forwarding"
	}
	v, ok := sysctl(ns, key)
	return v != 0, ok
}

// RPFilter returns the effective IPv4 reverse path filter mode on ifname:
// the higher of conf/all and conf/<ifname> (0 off, 1 strict, 2 loose).
func (Host) RPFilter(ns uint32, ifname string) (mode int, ok bool) {
	all, ok1 := sysctl(ns, "net/ipv4/conf/all/rp_filter")
	dev, ok2 := 0, true
	if ifname != "" && !strings.ContainsAny(ifname, "/.") {
		dev, ok2 = sysctl(ns, "net/ipv4/conf/"+ifname+"/rp_filter")
	}
	return max(all, dev), ok1 && ok2
}

// Bridge returns the bridge that ifname is a port of in the namespace, ok
// false when it is no bridge port or it cannot tell. Answers are cached.
func (Host) Bridge(ns uint32, ifname string) (bridge string, ok bool) {
	key := bridgeKey{ns, ifname}
	bridgeMu.Lock()
	if b, hit := bridges[key]; hit {
		bridgeMu.Unlock()
		return b, b != ""
	}
	bridgeMu.Unlock()
	path := netns.Path(ns)
	if ns != 0 && path == "" && ns != netns.Current() {
		return "", false
	}
	err := netns.Do(path, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		if m := l.Attrs().MasterIndex; m != 0 {
			if ml, err := h.LinkByIndex(m); err == nil && ml.Type() == "bridge" {
				bridge = ml.Attrs().Name
			}
		}
		return nil
	})
	if err != nil {
		return "", false
	}
	bridgeMu.Lock()
	bridges[key] = bridge
	bridgeMu.Unlock()
	return bridge, bridge != ""
}

type bridgeKey struct {
	ns  uint32
	dev string
}

var (
	bridgeMu sync.Mutex
	bridges  = map[bridgeKey]string{}
)

// IsLocal reports whether addr is assigned to an interface of the
// namespace (or is a loopback address).
func (Host) IsLocal(ns uint32, addr netip.Addr) (local, ok bool) {
	if addr.IsLoopback() {
		return true, true
	}
	if !Checks.Allow() {
		return false, false
	}
	path := netns.Path(ns)
	if ns != 0 && path == "" && ns != netns.Current() {
		return false, false
	}
	err := netns.Do(path, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		family := netlink.FAMILY_V4
		if addr.Is6() {
			family = netlink.FAMILY_V6
		}
		addrs, err := h.AddrList(nil, family)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
				local = true
			}
		}
		return nil
	})
	return local, err == nil
}
