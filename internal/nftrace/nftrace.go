// Package nftrace traces packets through the nftables ruleset with the
// kernel's own rule tracing: a short-lived table owned by skbtrail's netlink
// socket marks matching packets with nftrace, and the trace events name the
// table, chain, rule and verdict.
//
// The table (family inet, named skbtrail_PID) has two base chains at
// priority raw-1 (-301), on prerouting and output, whose rules match the
// packet filter and `meta nftrace set 1`. The kernel then reports every
// rule, return and policy verdict those packets meet in any table of the
// namespace, iptables-nft's "filter", "nat", ... tables included. The table
// carries NFT_TABLE_F_OWNER (and not NFT_TABLE_F_PERSIST): the kernel
// deletes it when the socket that created it closes, also when skbtrail is
// killed, and no other socket may change it meanwhile. Nothing else in the
// ruleset is touched.
//
// github.com/google/nftables builds the chains and rules, but it cannot set
// table flags (v0.3.0 always sends NFTA_TABLE_FLAGS 0) nor read trace events
// (its monitor knows ruleset changes only), so the table is created and the
// trace events are read with github.com/mdlayher/netlink directly.
package nftrace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/netns"
)

// TablePrefix starts the name of every table nftrace creates.
const TablePrefix = "skbtrail_"

// Table flags from include/uapi/linux/netfilter/nf_tables.h (enum
// nft_table_flags); golang.org/x/sys does not export them.
const (
	tableFlagOwner = 0x2 // NFT_TABLE_F_OWNER, Linux 5.12
	// NFT_TABLE_F_PERSIST (0x4) would keep the table after its owner: never set.
)

// Options say where to trace and what.
type Options struct {
	// Netns is the network namespace, as the path of a namespace file
	// (/run/netns/NAME, /proc/PID/ns/net); "" is the current one.
	Netns string
	// Filter selects the packets to trace; the zero Filter traces all.
	// Its Netns fields are ignored: Netns above says where to trace.
	Filter filter.Filter
}

// Tracer reads the rule trace of one network namespace. Its methods may be
// called from any goroutine.
type Tracer struct {
	netns  string
	table  string
	filter filter.Filter
	nft    *nftables.Conn // lasting: its socket owns the table
	trace  *netlink.Conn  // member of NFNLGRP_NFTRACE
	events chan Event
	lost   atomic.Uint64
	rules  ruleCache

	done      chan struct{} // closed by Close
	readDone  chan struct{} // closed when read returns
	closeOnce sync.Once
	closeErr  error
	err       error // why read stopped early; set before readDone closes
}

var seq atomic.Uint32

// Start adds the marking table to the namespace and starts reading its trace
// events. Cancelling ctx closes the Tracer, as Close does. It needs
// CAP_NET_ADMIN in the namespace and Linux 5.12 or later.
func Start(ctx context.Context, opts Options) (*Tracer, error) {
	name := fmt.Sprintf("%s%d", TablePrefix, os.Getpid())
	if n := seq.Add(1) - 1; n > 0 {
		name = fmt.Sprintf("%s_%d", name, n)
	}
	t := &Tracer{
		netns:    opts.Netns,
		table:    name,
		filter:   opts.Filter,
		events:   make(chan Event, 1024),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	var owner *netlink.Conn
	err := netns.Do(opts.Netns, func() error {
		var err error
		// Join the trace group before any packet is marked, so that no
		// event is missed.
		if t.trace, err = netlink.Dial(unix.NETLINK_NETFILTER, nil); err != nil {
			return err
		}
		if err := t.trace.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
			return err
		}
		// A larger buffer rides out bursts; an overrun is counted in Lost.
		_ = t.trace.SetReadBuffer(4 << 20)
		t.nft, err = nftables.New(nftables.AsLasting(), nftables.WithSockOptions(func(c *netlink.Conn) error {
			owner = c
			return nil
		}))
		return err
	})
	if err == nil {
		err = t.addTable(owner, opts.Filter)
	}
	if err != nil {
		t.closeSockets()
		return nil, startError(opts.Netns, err)
	}
	go t.read()
	go func() {
		select {
		case <-ctx.Done():
			t.Close()
		case <-t.done:
		}
	}()
	return t, nil
}

// addTable creates the owned table on owner, the socket of t.nft, and its
// chains and rules through t.nft. Should the chains fail, closing the socket
// removes the table.
func (t *Tracer) addTable(owner *netlink.Conn, f filter.Filter) error {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: append([]byte(t.table), 0)},
		{Type: unix.NFTA_TABLE_FLAGS, Data: be32bytes(tableFlagOwner)},
	})
	if err != nil {
		return err
	}
	batch := []netlink.Message{
		{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
			Data:   nfgenmsg(unix.NFPROTO_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
		},
		{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE),
				Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl,
			},
			Data: append(nfgenmsg(unix.NFPROTO_INET, 0), attrs...),
		},
		{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request},
			Data:   nfgenmsg(unix.NFPROTO_UNSPEC, unix.NFNL_SUBSYS_NFTABLES),
		},
	}
	if _, err := owner.SendMessages(batch); err != nil {
		return fmt.Errorf("create table inet %s: %w", t.table, err)
	}
	if _, err := owner.Receive(); err != nil { // the acknowledgement, or the error
		if errors.Is(err, unix.EINVAL) {
			// Before 5.12 the kernel takes no table flag but dormant,
			// and says EINVAL (later ones: EOPNOTSUPP).
			err = fmt.Errorf("%w: %w", errNoOwner, err)
		}
		return fmt.Errorf("create table inet %s: %w", t.table, err)
	}

	table := &nftables.Table{Name: t.table, Family: nftables.TableFamilyINet}
	prio := nftables.ChainPriorityRef(*nftables.ChainPriorityRaw - 1)
	for _, c := range []struct {
		name string
		hook *nftables.ChainHook
		num  int
	}{{"prerouting", nftables.ChainHookPrerouting, hookPrerouting}, {"output", nftables.ChainHookOutput, hookOutput}} {
		ch := t.nft.AddChain(&nftables.Chain{Name: c.name, Table: table, Hooknum: c.hook, Priority: prio, Type: nftables.ChainTypeFilter})
		for _, r := range markRules(f, c.num) {
			t.nft.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: r})
		}
	}
	if err := t.nft.Flush(); err != nil {
		return fmt.Errorf("add the marking chains to table inet %s: %w", t.table, err)
	}
	return nil
}

// errNoOwner marks a table the kernel refused for its owner flag.
var errNoOwner = errors.New("the kernel refuses NFT_TABLE_F_OWNER")

// startError says what to do about a failed Start.
func startError(netns string, err error) error {
	where := "the current network namespace"
	if netns != "" {
		where = "network namespace " + netns
	}
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return fmt.Errorf("nftables rule trace in %s: nftables not available in this kernel: load nf_tables (modprobe nf_tables) or run without --diag's rule trace (--no-nftrace): %w", where, err)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, errNoOwner):
		return fmt.Errorf("nftables rule trace in %s: the kernel cannot tie a table to its owner (NFT_TABLE_F_OWNER needs Linux 5.12 or later, and nf_tables loaded): load nf_tables, upgrade the kernel, or run with --no-nftrace: %w", where, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("nftables rule trace in %s: not permitted: run as root (CAP_NET_ADMIN) or with --no-nftrace: %w", where, err)
	}
	return fmt.Errorf("nftables rule trace in %s: %w (run with --no-nftrace to go without it)", where, err)
}

// Table returns the name of the marking table (family inet).
func (t *Tracer) Table() string { return t.table }

// Events returns the trace events, without those of the marking table. The
// channel is closed when the Tracer is closed or reading fails (see Err).
// Read it promptly: while it is full the kernel's events queue up in the
// socket, and once that overflows they are lost (see Lost).
func (t *Tracer) Events() <-chan Event { return t.events }

// Lost returns how often the kernel could not deliver trace events because
// the socket's receive buffer was full; each time one or more events were
// lost.
func (t *Tracer) Lost() uint64 { return t.lost.Load() }

// Err returns why the events channel closed before Close was called, or nil.
func (t *Tracer) Err() error {
	select {
	case <-t.readDone:
		return t.err
	default:
		return nil
	}
}

// Close removes the marking table (by closing the socket that owns it) and
// stops reading; when it returns, the events channel is closed. Events not
// yet read may be dropped.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		close(t.done)
		t.closeErr = t.closeSockets()
		<-t.readDone
	})
	return t.closeErr
}

func (t *Tracer) closeSockets() error {
	var errs []error
	if t.nft != nil {
		if err := t.nft.CloseLasting(); err != nil {
			errs = append(errs, fmt.Errorf("close the socket owning table inet %s: %w", t.table, err))
		}
	}
	if t.trace != nil {
		if err := t.trace.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the trace socket: %w", err))
		}
	}
	return errors.Join(errs...)
}

// read decodes trace messages into events until Close.
//
// The kernel sends the trace events of a namespace to every member of the
// trace group, so with two Tracers in one namespace each sees the packets
// the other marked. An event is ours when its packet met our marking rule
// (the kernel reports that rule, with its handle, as the packet's first
// event) or, for a packet whose marking was not reported (older kernels
// start tracing at the next chain), when its headers match the filter. The
// other Tracers' marking tables are left out as well as ours.
func (t *Tracer) read() {
	defer close(t.readDone)
	defer close(t.events)
	type headers struct {
		p        Packet
		iif, oif uint32
	}
	var (
		seen   = make(map[uint32]headers) // by trace id
		marked = make(map[uint32]bool)    // trace ids our rules marked
	)
	for {
		msgs, err := t.trace.Receive()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if errors.Is(err, unix.ENOBUFS) {
				t.lost.Add(1)
				continue
			}
			t.err = fmt.Errorf("read nftables trace events: %w", err)
			return
		}
		now := time.Now()
		for _, m := range msgs {
			if !isTrace(m.Header.Type) {
				continue
			}
			e, err := decode(m.Data)
			if err != nil {
				continue // a message this decoder does not understand: skip it rather than stop
			}
			if len(seen) >= 4096 {
				clear(seen)
				clear(marked)
			}
			// The kernel copies the headers and interfaces into the first
			// event of a packet in each base chain only: carry them to the
			// rest.
			if e.Packet.Src.IsValid() {
				seen[e.ID] = headers{e.Packet, e.Iif, e.Oif}
			} else if h, ok := seen[e.ID]; ok {
				e.Packet, e.Iif, e.Oif = h.p, h.iif, h.oif
			}
			if strings.HasPrefix(e.Table, TablePrefix) && e.Family == "inet" {
				if e.Table == t.table && e.Type == "rule" && e.Handle != 0 {
					marked[e.ID] = true
				}
				continue
			}
			if !marked[e.ID] && !(e.Packet.Src.IsValid() && t.filter.Match(e.Packet.Event())) {
				continue
			}
			e.Time = now
			if e.Type == "rule" && e.Handle != 0 {
				e.Rule = t.RuleText(e.Family, e.Table, e.Chain, e.Handle)
			}
			select {
			case t.events <- e:
			case <-t.done:
				return
			}
		}
	}
}

// Tables returns the tables nftrace created that exist in the network
// namespace at ns ("" = the current one), as "FAMILY NAME" ("inet
// skbtrail_4242"). As the kernel removes each table with the socket owning
// it, the list is empty unless a Tracer is running; tests use it to check
// that nothing is left behind.
func Tables(ns string) ([]string, error) {
	var names []string
	err := netns.Do(ns, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTables()
		if err != nil {
			return fmt.Errorf("list nftables tables: %w", err)
		}
		for _, tb := range tables {
			if strings.HasPrefix(tb.Name, TablePrefix) {
				names = append(names, familyName(uint8(tb.Family))+" "+tb.Name)
			}
		}
		return nil
	})
	return names, err
}

// nfgenmsg is the header of every nfnetlink message: family, version
// (NFNETLINK_V0) and a big-endian resource id.
func nfgenmsg(family uint8, resID uint16) []byte {
	return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
}

func be32bytes(v uint32) []byte {
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
