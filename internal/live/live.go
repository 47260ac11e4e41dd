// Package live checks the live system for the diagnosis, at analysis
// time, in a packet's network namespace: the route lookup and the policy
// rules that decide it, the sockets on a port in every namespace, the tc
// filters (and BPF programs) on a device, device MTUs, and sysctls. It only reads,
// through rtnetlink, sock_diag and /proc/sys; every check is bounded in
// time and its answer cached for the run. It implements diag.Live.
package live

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/netns"
)

// Timeout bounds each check; Listeners, which looks in every namespace,
// stops after MaxNamespaces of them or ListenersBudget.
const (
	Timeout         = 500 * time.Millisecond
	MaxNamespaces   = 64
	ListenersBudget = 2 * time.Second
)

// Checker runs and caches live checks. Its zero value is not usable: use New.
type Checker struct {
	mu    sync.Mutex
	cache map[string]any
}

// New returns a Checker with an empty cache.
func New() *Checker { return &Checker{cache: map[string]any{}} }

var _ diag.Live = (*Checker)(nil)

type result[T any] struct {
	v  T
	ok bool
}

// cached returns the cached answer for key, or computes it with fn in
// the namespace with inode ns, bounded by Timeout.
func cached[T any](c *Checker, key string, ns uint32, fn func() (T, error)) (T, bool) {
	c.mu.Lock()
	if r, hit := c.cache[key]; hit {
		c.mu.Unlock()
		rr := r.(result[T])
		return rr.v, rr.ok
	}
	c.mu.Unlock()
	v, ok := inNetns(ns, fn)
	c.mu.Lock()
	c.cache[key] = result[T]{v, ok}
	c.mu.Unlock()
	return v, ok
}

// inNetns runs fn in the namespace with inode ns, giving up after Timeout.
func inNetns[T any](ns uint32, fn func() (T, error)) (T, bool) {
	var zero T
	path := netns.Path(ns)
	if ns != 0 && path == "" && ns != netns.Current() {
		return zero, false
	}
	type out struct {
		v   T
		err error
	}
	done := make(chan out, 1)
	go func() {
		var v T
		err := netns.Do(path, func() (err error) {
			v, err = fn()
			return err
		})
		done <- out{v, err}
	}()
	select {
	case o := <-done:
		return o.v, o.err == nil
	case <-time.After(Timeout):
		return zero, false
	}
}

// Sysctl reads /proc/sys/<key> in the namespace.
func (c *Checker) Sysctl(ns uint32, key string) (int, bool) {
	if strings.Contains(key, "..") {
		return 0, false
	}
	return cached(c, fmt.Sprintf("sysctl %d %s", ns, key), ns, func() (int, error) {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	})
}

// MTU returns a device's MTU in the namespace.
func (c *Checker) MTU(ns uint32, dev string) (int, bool) {
	return cached(c, fmt.Sprintf("mtu %d %s", ns, dev), ns, func() (int, error) {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return 0, err
		}
		defer h.Close()
		l, err := h.LinkByName(dev)
		if err != nil {
			return 0, err
		}
		return l.Attrs().MTU, nil
	})
}

// neighStates names NUD_* states as ip-neigh prints them.
var neighStates = []struct {
	bit  int
	name string
}{{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
	{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
	{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"}}

// Neigh returns the state of the neighbour entry for addr on dev, "" when
// there is none.
func (c *Checker) Neigh(ns uint32, dev string, addr netip.Addr) (string, bool) {
	return cached(c, fmt.Sprintf("neigh %d %s %s", ns, dev, addr), ns, func() (string, error) {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return "", err
		}
		defer h.Close()
		l, err := h.LinkByName(dev)
		if err != nil {
			return "", err
		}
		family := netlink.FAMILY_V4
		if addr.Is6() {
			family = netlink.FAMILY_V6
		}
		ns, err := h.NeighList(l.Attrs().Index, family)
		if err != nil {
			return "", err
		}
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr {
				for _, s := range neighStates {
					if n.State&s.bit != 0 {
						return s.name, nil
					}
				}
				return fmt.Sprintf("state 0x%x", n.State), nil
			}
		}
		return "", nil
	})
}

// routeTypes names rtnetlink route types as ip-route prints them.
var routeTypes = map[int]string{
	unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local", unix.RTN_BROADCAST: "broadcast",
	unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast", unix.RTN_BLACKHOLE: "blackhole",
	unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit", unix.RTN_THROW: "throw",
}

// errnoTypes: what a failed route lookup's errno means.
var errnoTypes = map[unix.Errno]string{
	unix.EINVAL: "blackhole", unix.EACCES: "prohibit", unix.EHOSTUNREACH: "unreachable", unix.ENETUNREACH: "none",
}

// Route looks the flow up as the kernel does now (RTM_GETROUTE, from src
// and on iif when given), and walks the policy rules and tables to say
// which rule and table decided. Where the walk meets a rule it cannot
// evaluate (marks, ports, uid, ...), it reports the kernel's answer alone.
func (c *Checker) Route(ns uint32, src, dst netip.Addr, iif string) (diag.RouteCheck, bool) {
	key := fmt.Sprintf("route %d %s %s %s", ns, src, dst, iif)
	return cached(c, key, ns, func() (diag.RouteCheck, error) {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return diag.RouteCheck{}, err
		}
		defer h.Close()
		var rc diag.RouteCheck
		opts := &netlink.RouteGetOptions{Iif: iif}
		if src.IsValid() && iif != "" {
			opts.SrcAddr = net.IP(src.AsSlice())
		}
		routes, err := h.RouteGetWithOptions(net.IP(dst.AsSlice()), opts)
		if err != nil && iif != "" && errors.Is(err, unix.ENODEV) {
			routes, err = h.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{})
		}
		var errno unix.Errno
		switch {
		case errors.As(err, &errno):
			rc.Errno = errno.Error()
			rc.Type = errnoTypes[errno]
		case err != nil:
			return rc, err
		case len(routes) > 0:
			rc.Type = orUnknown(routeTypes[routes[0].Type])
			rc.Table = routes[0].Table
			if l, err := h.LinkByIndex(routes[0].LinkIndex); err == nil {
				rc.Dev = l.Attrs().Name
			}
			if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && routes[0].Gw != nil {
				rc.Via = gw.Unmap()
			}
		}
		walk(h, &rc, src, dst, iif)
		return rc, nil
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// walk follows the policy rules for the flow and fills in which rule and
// table decided, where that agrees with the kernel's answer in rc.
func walk(h *netlink.Handle, rc *diag.RouteCheck, src, dst netip.Addr, iif string) {
	family := netlink.FAMILY_V4
	if dst.Is6() {
		family = netlink.FAMILY_V6
	}
	rules, err := h.RuleList(family)
	if err != nil {
		return
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	// The library does not report a rule's action; a rule without a table
	// is a blackhole, unreachable, prohibit (or nop) rule. It decided when
	// the kernel's answer is a failure the tables after it do not explain.
	var actionRule *netlink.Rule
	for i, r := range rules {
		if !simple(r) {
			return // cannot tell what the kernel did
		}
		if !inNet(r.Dst, dst) || !inNet(r.Src, src) || (r.IifName != "" && r.IifName != iif) || r.OifName != "" {
			continue
		}
		if r.Table == 0 {
			if actionRule == nil {
				actionRule = &rules[i]
			}
			continue
		}
		rt, prefix, dev, found := lookup(h, family, r.Table, dst)
		if !found || rt == unix.RTN_THROW {
			continue
		}
		if routeTypes[rt] != rc.Type {
			break
		}
		if actionRule != nil {
			return // a table explains it only if the rule before it was a nop: cannot tell
		}
		rc.Table, rc.Prefix = r.Table, prefix
		if rc.Dev == "" {
			rc.Dev = dev
		}
		if r.Table != unix.RT_TABLE_LOCAL && r.Table != unix.RT_TABLE_MAIN && r.Table != unix.RT_TABLE_DEFAULT {
			rc.Rule = ruleText(r, fmt.Sprintf("lookup %d", r.Table))
		}
		return
	}
	switch rc.Type {
	case "blackhole", "unreachable", "prohibit":
		if actionRule != nil {
			rc.Rule, rc.Table, rc.Prefix, rc.Dev = ruleText(*actionRule, rc.Type), 0, "", ""
		}
	}
}

// simple reports whether the walk can evaluate the rule from the flow alone.
func simple(r netlink.Rule) bool {
	return !r.Invert && r.Mark == 0 && (r.Mask == nil || *r.Mask == 0) && r.Tos == 0 && r.TunID == 0 &&
		r.Dport == nil && r.Sport == nil && r.IPProto == 0 && r.UIDRange == nil && r.Goto <= 0 &&
		r.SuppressPrefixlen <= 0 && r.SuppressIfgroup <= 0 && r.Flow <= 0
}

func inNet(n *net.IPNet, a netip.Addr) bool {
	if n == nil || n.IP == nil {
		return true
	}
	if !a.IsValid() {
		return false
	}
	return n.Contains(net.IP(a.AsSlice()))
}

// ruleText writes a rule as `ip rule` does: "32765: from all to 198.18.0.2 prohibit".
func ruleText(r netlink.Rule, action string) string {
	from, to := "all", ""
	if r.Src != nil && r.Src.IP != nil {
		from = r.Src.String()
	}
	if r.Dst != nil && r.Dst.IP != nil {
		to = " to " + strings.TrimSuffix(strings.TrimSuffix(r.Dst.String(), "/32"), "/128")
	}
	iif := ""
	if r.IifName != "" {
		iif = " iif " + r.IifName
	}
	return fmt.Sprintf("%d: from %s%s%s %s", r.Priority, strings.TrimSuffix(strings.TrimSuffix(from, "/32"), "/128"), to, iif, action)
}

// lookup finds the longest prefix route for dst in a table.
func lookup(h *netlink.Handle, family, table int, dst netip.Addr) (typ int, prefix, dev string, found bool) {
	routes, err := h.RouteListFiltered(family, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, "", "", false
	}
	best := -1
	for _, r := range routes {
		bits := 0
		if r.Dst != nil && r.Dst.IP != nil {
			if !r.Dst.Contains(net.IP(dst.AsSlice())) {
				continue
			}
			bits, _ = r.Dst.Mask.Size()
		}
		if bits > best {
			best, typ, found = bits, r.Type, true
			prefix = "default"
			if r.Dst != nil && r.Dst.IP != nil && bits > 0 {
				prefix = r.Dst.String()
			}
			dev = ""
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
		}
	}
	return typ, prefix, dev, found
}

// Listeners returns the sockets bound to port (TCP: listening) in the
// current namespace and every one under /run/netns.
func (c *Checker) Listeners(proto uint8, family uint8, port uint16) ([]diag.Listener, bool) {
	var out []diag.Listener
	some := false
	deadline := time.Now().Add(ListenersBudget)
	for i, ns := range spaces() {
		if i >= MaxNamespaces || time.Now().After(deadline) {
			break // bounded: the evidence says "in any namespace skbtrail sees"
		}
		key := fmt.Sprintf("listeners %d %d %d %d", ns, proto, family, port)
		got, ok := cached(c, key, ns, func() ([]diag.Listener, error) {
			return listeners(ns, proto, family, port)
		})
		if ok {
			some = true
			out = append(out, got...)
		}
	}
	return out, some
}

// spaces are the inodes of the namespaces Listeners looks in.
func spaces() []uint32 {
	seen := map[uint32]bool{netns.Current(): true}
	out := []uint32{netns.Current()}
	for ino := range netns.Names() {
		if !seen[ino] {
			seen[ino] = true
			out = append(out, ino)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

const tcpListen = 10

func listeners(ns uint32, proto, family uint8, port uint16) ([]diag.Listener, error) {
	h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fams := []uint8{unix.AF_INET, unix.AF_INET6}
	var out []diag.Listener
	for _, f := range fams {
		var socks []*netlink.Socket
		switch proto {
		case unix.IPPROTO_TCP:
			socks, err = h.SocketDiagTCP(f)
		case unix.IPPROTO_UDP:
			socks, err = h.SocketDiagUDP(f)
		default:
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, s := range socks {
			if s.ID.SourcePort != port || (proto == unix.IPPROTO_TCP && s.State != tcpListen) {
				continue
			}
			a, _ := netip.AddrFromSlice(s.ID.Source)
			out = append(out, diag.Listener{Netns: ns, Proto: proto, Addr: netip.AddrPortFrom(a.Unmap(), port)})
		}
	}
	_ = family
	return out, nil
}

// TCFilters lists the tc filters on a device's ingress or egress (clsact
// or ingress qdisc).
func (c *Checker) TCFilters(ns uint32, dev string, ingress bool) ([]diag.TCFilter, bool) {
	key := fmt.Sprintf("tc %d %s %v", ns, dev, ingress)
	return cached(c, key, ns, func() ([]diag.TCFilter, error) {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		defer h.Close()
		l, err := h.LinkByName(dev)
		if err != nil {
			return nil, err
		}
		parent := uint32(netlink.HANDLE_MIN_EGRESS)
		if ingress {
			parent = netlink.HANDLE_MIN_INGRESS
		}
		fs, err := h.FilterList(l, parent)
		if err != nil {
			return nil, err
		}
		var out []diag.TCFilter
		for _, f := range fs {
			t := diag.TCFilter{Kind: f.Type(), Pref: int(f.Attrs().Priority)}
			if b, ok := f.(*netlink.BpfFilter); ok {
				t.Name, t.ID, t.Tag, t.DirectAction = b.Name, b.Id, b.Tag, b.DirectAction
			}
			out = append(out, t)
		}
		return out, nil
	})
}
