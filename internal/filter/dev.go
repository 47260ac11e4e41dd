package filter

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/skbtrail/skbtrail/internal/netns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const devWant = "want an interface name of 1 to 15 bytes without '/', ':' or white space, such as eth0"

// checkDevName applies the kernel's rules for interface names
// (dev_valid_name): 1..15 bytes, not "." or "..", no '/', ':' or white
// space.
func checkDevName(name string) error {
	switch {
	case len(name) > unix.IFNAMSIZ-1:
		return errorf("--dev %q: interface name too long: %d bytes (%s)", name, len(name), devWant)
	case name == "." || name == "..":
		return errorf("--dev %q: not an interface name (%s)", name, devWant)
	case !utf8.ValidString(name):
		return errorf("--dev %q: interface name is not valid UTF-8 (%s)", name, devWant)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/', ':', ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return errorf("--dev %q: interface name contains %q (%s)", name, c, devWant)
		}
	}
	return nil
}

// checkDev checks that interface name exists: in the namespace at nsPath
// when --netns was given, else in the current namespace or in one under
// /run/netns (the probes then match it by name in any namespace).
func checkDev(name, nsGiven string, nsIno uint32, nsPath string) error {
	if nsPath != "" {
		st, err := lookupLink(nsPath, nsIno, name)
		switch {
		case err != nil:
			return causef(err, "--dev %q: cannot look into network namespace %s: %v%s", name, nsGiven, err, rootHint(err))
		case st.found:
			return nil
		case st.canonical != "":
			return altNameError(name, st.canonical, "network namespace "+nsGiven)
		}
		where := fmt.Sprintf("%s (inode %d)", nsGiven, nsIno)
		if nsGiven == strconv.FormatUint(uint64(nsIno), 10) {
			where = nsGiven
		}
		return errorf("--dev: no interface %q in network namespace %s (give an interface of that namespace, or leave --netns out to match the name in any namespace)",
			name, where)
	}

	st, err := lookupLink("", 0, name)
	if err != nil {
		return causef(err, "--dev %q: cannot list the interfaces of the current network namespace: %v", name, err)
	}
	if st.found {
		return nil
	}
	alt, altWhere := st.canonical, "the current network namespace"
	var failed []string
	var firstErr error
	for _, ns := range netns.List() {
		path := filepath.Join(netnsDir, ns)
		var sfs unix.Statfs_t
		if unix.Statfs(path, &sfs) != nil || sfs.Type != unix.NSFS_MAGIC {
			continue // not a mounted namespace (a leftover of a failed "ip netns add")
		}
		st, err := lookupLink(path, 0, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// deleted meanwhile
		case err != nil:
			failed = append(failed, ns)
			if firstErr == nil {
				firstErr = err
			}
		case st.found:
			return nil
		case st.canonical != "" && alt == "":
			alt, altWhere = st.canonical, "network namespace "+ns
		}
	}
	if alt != "" {
		return altNameError(name, alt, altWhere)
	}
	msg := fmt.Sprintf("--dev: no interface %q in the current network namespace or under %s: give --netns", name, netnsDir)
	if firstErr != nil {
		names := strings.Join(failed, ", ")
		if len(failed) > 3 {
			names = fmt.Sprintf("%s and %d more", strings.Join(failed[:3], ", "), len(failed)-3)
		}
		msg += fmt.Sprintf(" (could not look into %s under %s: %v%s)", names, netnsDir, firstErr, rootHint(firstErr))
		return causef(firstErr, "%s", msg)
	}
	return errorf("%s", msg)
}

func altNameError(name, canonical, where string) error {
	return errorf("--dev %q: that is an alternative name of interface %q in %s; the probes match the interface name (give --dev %s)",
		name, canonical, where, canonical)
}

func rootHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return " (run as root)"
	}
	return ""
}

type linkStatus struct {
	found     bool   // an interface has this name
	canonical string // else, the name of an interface that has it as altname
}

// lookupLink looks for an interface called name in the network namespace
// at nsPath ("" = the current one). ino, when not 0, is the inode of that
// namespace: if it is the current one no namespace switch is needed.
func lookupLink(nsPath string, ino uint32, name string) (linkStatus, error) {
	h, err := handleIn(nsPath, ino)
	if err != nil {
		return linkStatus{}, err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return linkStatus{}, nil
		}
		return linkStatus{}, err
	}
	if got := link.Attrs().Name; got != name {
		return linkStatus{canonical: got}, nil
	}
	return linkStatus{found: true}, nil
}

// handleIn returns an rtnetlink handle whose socket lives in the network
// namespace at nsPath ("" = the current one). A netlink socket stays in the
// namespace it was created in, so the handle can then be used from any
// thread.
func handleIn(nsPath string, ino uint32) (*netlink.Handle, error) {
	if ino != 0 && ino == netns.Current() {
		nsPath = ""
	}
	var h *netlink.Handle
	err := netns.Do(nsPath, func() (err error) {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	return h, err
}
