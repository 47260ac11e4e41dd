// Package outfile creates the files skbtrail writes packet data to
// (--pcap): readable by their owner only (0600), never an existing file
// unless asked (force), and never through a symbolic link or into anything
// but a regular file with a single name, whatever was planted in their
// place.
package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Mode is the permission of every file Create makes.
const Mode = 0o600

// ErrExists is returned for an existing file when force is not given.
var ErrExists = errors.New("it exists")

// ErrUnsafe is returned for a path that is a symbolic link, or (with force)
// not a regular file or a file with other names (hard links).
var ErrUnsafe = errors.New("unsafe to write to")

// Create creates path for writing, mode 0600 whatever the umask.
// Without force, path must not exist (O_EXCL: nothing, not even a dangling
// symbolic link, is opened in its place); an existing path is ErrExists.
// With force, an existing regular file with one link is truncated and set
// to 0600; a symbolic link (O_NOFOLLOW), a FIFO, a device, a directory or a
// file with several hard links is ErrUnsafe. The errors name the flag
// (--pcap) and say what to do.
func Create(flag, path string, force bool) (*os.File, error) {
	const base = unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	fd, err := unix.Open(path, base|unix.O_CREAT|unix.O_EXCL, Mode)
	if err == nil {
		// The umask can only have taken bits away; say 0600 anyway.
		if err := unix.Fchmod(fd, Mode); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("%s %s: %w", flag, path, err)
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("%s %s: %w", flag, path, &fs.PathError{Op: "create", Path: path, Err: err})
	}
	if link, lerr := isSymlink(path); lerr == nil && link {
		return nil, fmt.Errorf("%s %s: %w: it is a symbolic link; give the real path or remove the link", flag, path, ErrUnsafe)
	}
	if !force {
		return nil, fmt.Errorf("%s %s: %w: give another name, remove it, or add --force to overwrite it", flag, path, ErrExists)
	}
	// Look at what is there without opening it for I/O (O_PATH: no
	// side effect of opening a device or a FIFO), then open it for writing
	// and check that the same file was opened, then truncate it.
	want, err := check(flag, path, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	fd, err = unix.Open(path, base, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if st.Dev != want.Dev || st.Ino != want.Ino || st.Nlink > 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("%s %s: %w: it was replaced while being opened; try again", flag, path, ErrUnsafe)
	}
	if err := unix.Ftruncate(fd, 0); err == nil {
		err = unix.Fchmod(fd, Mode)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// check opens path with flags (O_PATH), and returns its status if it is a
// regular file with one name.
func check(flag, path string, flags int) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return st, fmt.Errorf("%s %s: %w", flag, path, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return st, fmt.Errorf("%s %s: %w: it is a symbolic link; give the real path or remove the link", flag, path, ErrUnsafe)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return st, fmt.Errorf("%s %s: %w: not a regular file; give the path of a file", flag, path, ErrUnsafe)
	case st.Nlink > 1:
		return st, fmt.Errorf("%s %s: %w: it has %d hard links; remove it or give another name", flag, path, ErrUnsafe, st.Nlink)
	}
	return st, nil
}

func isSymlink(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	return fi.Mode()&fs.ModeSymlink != 0, nil
}
