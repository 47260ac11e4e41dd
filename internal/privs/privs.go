// Package privs drops what skbtrail no longer needs once the kernel side of
// a run is set up: every capability the rest of the mode does not use (in
// the effective, permitted, inheritable, ambient and bounding sets, so that
// no child such as nft gets them back), and, where the mode allows it, root
// itself (--user). It also says what each mode needs and keeps, for
// `skbtrail check`.
//
// Capabilities are per thread on Linux; a Go program has many threads, so
// the change is made on all of them at once (syscall.AllThreadsSyscall),
// which the Go runtime offers only in a build without cgo.
package privs

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cap is a Linux capability number (capabilities(7)).
type Cap uint

// The capabilities skbtrail speaks of.
const (
	DacOverride Cap = unix.CAP_DAC_OVERRIDE
	Setgid      Cap = unix.CAP_SETGID
	Setuid      Cap = unix.CAP_SETUID
	Setpcap     Cap = unix.CAP_SETPCAP
	NetAdmin    Cap = unix.CAP_NET_ADMIN
	SysPtrace   Cap = unix.CAP_SYS_PTRACE
	SysAdmin    Cap = unix.CAP_SYS_ADMIN
	SysResource Cap = unix.CAP_SYS_RESOURCE
	Syslog      Cap = unix.CAP_SYSLOG
	Perfmon     Cap = unix.CAP_PERFMON
	BPF         Cap = unix.CAP_BPF
)

// lastCap is the highest capability this package knows; higher ones the
// kernel may have are dropped too (bounding set: up to
// /proc/sys/kernel/cap_last_cap).
const lastCap = unix.CAP_LAST_CAP

var capNames = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
	"cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
	"cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw",
	"cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot",
	"cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
	"cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override",
	"cap_mac_admin", "cap_syslog", "cap_wake_alarm", "cap_block_suspend",
	"cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
}

func (c Cap) String() string {
	if int(c) < len(capNames) {
		return capNames[c]
	}
	return "cap_" + strconv.Itoa(int(c))
}

// Set is a set of capabilities, bit c for Cap c (as in /proc/PID/status).
type Set uint64

// Of returns the set of caps.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// Has says whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

// String names the set: "cap_net_admin,cap_sys_admin", or "none".
func (s Set) String() string {
	var names []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			names = append(names, c.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Mode is what one kind of run needs to start and what it keeps after.
type Mode struct {
	Name  string
	Start Set    // to load and attach, enter namespaces, read kallsyms
	Keep  Set    // after the start, for the rest of the run
	Why   string // what Keep is for
	User  bool   // --user is allowed
}

// start is what loading and attaching needs in every mode: BPF programs
// and maps (CAP_BPF), tracing programs (CAP_PERFMON), the memlock limit on
// kernels that charge BPF memory to it (CAP_SYS_RESOURCE), kallsyms
// addresses (CAP_SYSLOG), mounting tracefs for kprobes and looking into
// namespaces for --netns and --dev (CAP_SYS_ADMIN), and changing the
// credentials (CAP_SETPCAP, CAP_SETUID, CAP_SETGID).
var start = Of(BPF, Perfmon, SysResource, Syslog, SysAdmin, Setpcap, Setuid, Setgid)

// The modes. Keep is the floor; Needs adds CAP_BPF where the kernel wants it
// for every bpf() call on a map already open (before 6.5, with
// kernel.unprivileged_bpf_disabled set).
var (
	Trace = Mode{Name: "trace", Start: start | Of(SysPtrace), Keep: Of(SysPtrace), User: true,
		Why: "the ring buffer and the output need none; naming namespaces that appear later from other users' /proc/PID/ns/net (pods, containers) needs cap_sys_ptrace"}
	Drops = Mode{Name: "drops", Start: start | Of(SysPtrace), Keep: Of(SysPtrace), User: true,
		Why: "the counter maps need none on 6.5+; naming namespaces that appear later (pods) needs cap_sys_ptrace"}
	Diag = Mode{Name: "diag", Start: start | Of(NetAdmin, SysPtrace),
		Keep: Of(NetAdmin, SysAdmin, SysPtrace),
		Why:  "live checks: enter traced namespaces (cap_sys_admin), read nftables rules and conntrack over netlink (cap_net_admin), find namespaces of processes (cap_sys_ptrace)"}
)

// Modes lists the modes, for `skbtrail check`.
func Modes() []Mode { return []Mode{Trace, Diag, Drops} }

// Needs returns the capabilities m keeps on this kernel: m.Keep, plus
// CAP_BPF if a bpf() call on an open map needs it here (found by trying,
// on a thread of its own that gives up CAP_BPF and CAP_SYS_ADMIN).
func Needs(m Mode) Set {
	keep := m.Keep
	if bpfCallNeedsCap() {
		keep |= Of(BPF)
	}
	return keep
}

// bpfCallNeedsCap says whether a bpf() command on an open fd fails with
// EPERM without CAP_BPF and CAP_SYS_ADMIN. It asks with a bad fd: a kernel
// that checks the capability before the command says EPERM, one that does
// not says EBADF.
func bpfCallNeedsCap() bool {
	res := make(chan bool, 1)
	go func() {
		// Never unlocked: the thread, whose capabilities changed, exits
		// with the goroutine.
		runtime.LockOSThread()
		var d [2]unix.CapUserData
		h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		if err := unix.Capget(&h, &d[0]); err != nil {
			res <- false
			return
		}
		for _, c := range []Cap{BPF, SysAdmin} {
			d[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&h, &d[0]); err != nil {
			res <- false
			return
		}
		attr := struct {
			fd         uint32
			_          uint32
			key, value uint64
			flags      uint64
		}{fd: ^uint32(0)}
		_, _, errno := unix.Syscall(unix.SYS_BPF, 1 /* BPF_MAP_LOOKUP_ELEM */, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		res <- errno == unix.EPERM
	}()
	return <-res
}

// ErrAllThreads is returned where capabilities cannot be changed on every
// thread: in a build with cgo.
var ErrAllThreads = errors.New("this skbtrail was built with cgo, where Go cannot change the capabilities of all threads: build it with CGO_ENABLED=0")

// Held returns the effective capabilities of the calling thread.
func Held() (Set, error) {
	var d [2]unix.CapUserData
	h := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&h, &d[0]); err != nil {
		return 0, fmt.Errorf("capget: %w", err)
	}
	return Set(d[0].Effective) | Set(d[1].Effective)<<32, nil
}

// Plan is what to drop after the start of a run.
type Plan struct {
	Mode Mode
	User string // run as this user (name or uid) after the start; "": stay root
}

// Check says whether the plan can be carried out, before anything starts:
// --user is allowed in the mode and names a user.
func (p Plan) Check() error {
	if p.User == "" {
		return nil
	}
	if !p.Mode.User {
		return fmt.Errorf("--user %s: %s needs root's view of the host to the end (live checks run nft and enter namespaces): leave out --user", p.User, p.Mode.Name)
	}
	_, err := lookup(p.User)
	return err
}

// Enter drops every capability the rest of the run does not use and, with
// p.User, switches to that user (its groups too) keeping those. It returns
// what is kept. It is meant to be called once, after every program is
// attached and every socket the run needs is open.
func (p Plan) Enter() (Set, error) {
	keep := Needs(p.Mode)
	var id *ids
	if p.User != "" {
		var err error
		if id, err = lookup(p.User); err != nil {
			return 0, err
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return 0, fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	// The bounding set, while CAP_SETPCAP is still held: what no exec'd
	// child can ever get back.
	last := lastCap
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if keep.Has(Cap(c)) {
			continue
		}
		if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("drop %s from the bounding set: %w", Cap(c), err)
		}
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL); err != nil && !errors.Is(err, unix.EINVAL) {
		return 0, fmt.Errorf("clear the ambient capabilities: %w", err)
	}
	if id != nil {
		// Keep the permitted set across the change of user; the
		// effective set is cleared by it and restored below.
		if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
		}
		// Go changes ids on every thread (cgo or not).
		if err := syscall.Setgroups(id.groups); err != nil {
			return 0, fmt.Errorf("--user %s: setgroups: %w", p.User, err)
		}
		if err := syscall.Setresgid(id.gid, id.gid, id.gid); err != nil {
			return 0, fmt.Errorf("--user %s: setresgid: %w", p.User, err)
		}
		if err := syscall.Setresuid(id.uid, id.uid, id.uid); err != nil {
			return 0, fmt.Errorf("--user %s: setresuid: %w", p.User, err)
		}
	}
	if err := capsetAll(keep); err != nil {
		return 0, err
	}
	if id != nil {
		if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
			return 0, fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
		}
	}
	return keep, nil
}

// capData is the capset argument, on the heap for allThreads.
type capData struct {
	h unix.CapUserHeader
	d [2]unix.CapUserData
}

// capsetAll makes keep the effective and permitted sets of every thread,
// with nothing inheritable.
func capsetAll(keep Set) error {
	c := new(capData)
	c.h.Version = unix.LINUX_CAPABILITY_VERSION_3
	for i := range c.d {
		v := uint32(keep >> (32 * i))
		c.d[i] = unix.CapUserData{Effective: v, Permitted: v}
	}
	err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&c.h)), uintptr(unsafe.Pointer(&c.d[0])))
	runtime.KeepAlive(c)
	if err != nil {
		return fmt.Errorf("capset %s: %w", keep, err)
	}
	return nil
}

// allThreads makes a system call on every thread of the process.
func allThreads(trap uintptr, a ...uintptr) error {
	var args [3]uintptr
	copy(args[:], a)
	_, _, errno := syscall.AllThreadsSyscall(trap, args[0], args[1], args[2])
	if errno == syscall.ENOTSUP {
		return ErrAllThreads
	}
	if errno != 0 {
		return errno
	}
	return nil
}

type ids struct {
	uid, gid int
	groups   []int
}

// lookup finds a user by name or number.
func lookup(name string) (*ids, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("--user %s: %w: give a user name or uid from /etc/passwd", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--user %s: uid %q, gid %q are not numbers", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("--user %s: that is root; give an unprivileged user (such as nobody)", name)
	}
	id := &ids{uid: uid, gid: gid, groups: []int{gid}}
	if gs, err := u.GroupIds(); err == nil {
		id.groups = id.groups[:0]
		for _, g := range gs {
			if n, err := strconv.Atoi(g); err == nil {
				id.groups = append(id.groups, n)
			}
		}
	}
	return id, nil
}
