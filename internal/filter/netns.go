package filter

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skbtrail/skbtrail/internal/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns add` bind-mounts named network namespaces.
const netnsDir = "/run/netns"

const netnsWant = "want a name under /run/netns, a path such as /proc/PID/ns/net or /run/netns/NAME, or a network namespace inode number"

// resolveNetns turns the --netns value into the namespace's inode and a path
// that refers to it (for looking up --dev in it).
//
//   - a value with a '/' is a path to a namespace file;
//   - "net:[N]" or a decimal number is an inode, unless a name of that
//     spelling exists under /run/netns;
//   - anything else is a name under /run/netns.
func resolveNetns(s string) (uint32, string, error) {
	if strings.ContainsRune(s, '/') {
		ino, err := netnsFileInode("--netns", s, s)
		return ino, s, err
	}
	if s == "." || s == ".." || strings.ContainsRune(s, 0) {
		return 0, "", errorf("--netns %q: not a namespace name (%s)", s, netnsWant)
	}
	named := filepath.Join(netnsDir, s)
	if n, ok := parseInode(s); ok {
		if _, err := os.Lstat(named); err != nil {
			path, err := findNetnsInode(s, n)
			return n, path, err
		}
	}
	if _, err := os.Lstat(named); errors.Is(err, fs.ErrNotExist) {
		return 0, "", errorf("--netns %q: no network namespace named %q under %s (%s)", s, s, netnsDir, netnsWant)
	}
	ino, err := netnsFileInode("--netns", s, named)
	return ino, named, err
}

// parseInode accepts "4026531840" and "net:[4026531840]".
func parseInode(s string) (uint32, bool) {
	t := s
	if strings.HasPrefix(t, "net:[") && strings.HasSuffix(t, "]") {
		t = t[len("net:[") : len(t)-1]
	}
	if t == "" || t[0] < '0' || t[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		// All digits but too large: still an inode the user meant.
		if allDigits(t) {
			return 0, true
		}
		return 0, false
	}
	if n > math.MaxUint32 {
		return 0, true
	}
	return uint32(n), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// nsTypeNames names the namespace types NS_GET_NSTYPE reports.
var nsTypeNames = map[int]string{
	unix.CLONE_NEWCGROUP: "cgroup",
	unix.CLONE_NEWIPC:    "ipc",
	unix.CLONE_NEWNS:     "mount",
	unix.CLONE_NEWPID:    "pid",
	unix.CLONE_NEWTIME:   "time",
	unix.CLONE_NEWUSER:   "user",
	unix.CLONE_NEWUTS:    "uts",
}

// netnsFileInode checks that path is a network namespace file (an nsfs
// file of type net) and returns its inode. It looks at the file system
// type before opening anything, so a path to a FIFO or a device is never
// opened.
func netnsFileInode(flag, given, path string) (uint32, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return 0, pathError(flag, given, err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return 0, errorf("%s %q: not a namespace file (%s)", flag, given, netnsWant)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, pathError(flag, given, err)
	}
	defer unix.Close(fd)
	// Checked again on the open file, in case the path changed meanwhile.
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return 0, pathError(flag, given, err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return 0, errorf("%s %q: not a namespace file (%s)", flag, given, netnsWant)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	switch {
	case err == nil && typ != unix.CLONE_NEWNET:
		name := nsTypeNames[typ]
		if name == "" {
			name = fmt.Sprintf("type %#x", typ)
		}
		return 0, errorf("%s %q: a %s namespace, not a network namespace (%s)", flag, given, name, netnsWant)
	case err != nil && !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL):
		// ENOTTY/EINVAL: a kernel before 4.11 cannot tell; accept the file.
		return 0, pathError(flag, given, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, pathError(flag, given, err)
	}
	if st.Ino == 0 || st.Ino > math.MaxUint32 {
		return 0, errorf("%s %q: namespace inode %d does not fit in 32 bits", flag, given, st.Ino)
	}
	return uint32(st.Ino), nil
}

func pathError(flag, given string, err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ENOENT, unix.ENOTDIR:
			return causef(err, "%s %q: no such file (%s)", flag, given, netnsWant)
		case unix.EACCES, unix.EPERM:
			return causef(err, "%s %q: permission denied (run as root)", flag, given)
		}
	}
	return causef(err, "%s %q: cannot read namespace file: %v (%s)", flag, given, err, netnsWant)
}

// findNetnsInode looks for a network namespace with inode n and returns a
// path that refers to it. It looks, in order, at /run/netns/*, at every
// process's and thread's /proc/PID[/task/TID]/ns/net, and at open file
// descriptors (/proc/PID/fd/*) that hold a network namespace. Without root
// only the caller's own processes can be seen, so a namespace used only by
// other users' processes is not found.
func findNetnsInode(given string, n uint32) (string, error) {
	if n != 0 {
		if path := netns.Find(n); path != "" {
			return path, nil
		}
	}
	hint := ""
	if os.Geteuid() != 0 {
		hint = "; without root only your own processes are visible, so run as root"
	}
	return "", errorf("--netns %q: no network namespace with inode %s (looked under %s and in /proc/*/ns/net%s; %s)",
		given, strings.TrimSuffix(strings.TrimPrefix(given, "net:["), "]"), netnsDir, hint, netnsWant)
}
