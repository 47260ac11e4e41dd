package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCreate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir, path string) // plants something at path
		force bool
		want  error // nil: created
	}{
		{name: "new", setup: func(*testing.T, string, string) {}},
		{name: "new forced", setup: func(*testing.T, string, string) {}, force: true},
		{name: "exists", setup: plantFile(0o644), want: ErrExists},
		{name: "exists forced", setup: plantFile(0o644), force: true},
		{name: "symlink to a file", setup: plantLink("victim", true), want: ErrUnsafe},
		{name: "symlink to a file forced", setup: plantLink("victim", true), force: true, want: ErrUnsafe},
		{name: "dangling symlink", setup: plantLink("nothing", false), want: ErrUnsafe},
		{name: "dangling symlink forced", setup: plantLink("nothing", false), force: true, want: ErrUnsafe},
		{name: "fifo forced", setup: func(t *testing.T, _, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, force: true, want: ErrUnsafe},
		{name: "directory forced", want: ErrUnsafe, setup: func(t *testing.T, _, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, force: true},
		{name: "hard link forced", setup: func(t *testing.T, dir, path string) {
			victim := filepath.Join(dir, "victim")
			os.WriteFile(victim, []byte("keep me"), 0o644)
			if err := os.Link(victim, path); err != nil {
				t.Fatal(err)
			}
		}, force: true, want: ErrUnsafe},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.pcapng")
			c.setup(t, dir, path)
			f, err := Create("--pcap", path, c.force)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("Create: %v, want %v", err, c.want)
				}
				if b, err := os.ReadFile(filepath.Join(dir, "victim")); err == nil && string(b) != "keep me" {
					t.Errorf("the link's target was changed: %q", b)
				}
				if _, err := os.Stat(filepath.Join(dir, "nothing")); err == nil {
					t.Errorf("a dangling link's target was created")
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := f.WriteString("packets"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != Mode {
				t.Errorf("mode %v, want %v", fi.Mode(), os.FileMode(Mode))
			}
			if b, _ := os.ReadFile(path); string(b) != "packets" {
				t.Errorf("content %q, want the new data only", b)
			}
		})
	}
}

func plantFile(mode os.FileMode) func(*testing.T, string, string) {
	return func(t *testing.T, _, path string) {
		if err := os.WriteFile(path, []byte("old data, longer than the new"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
	}
}

func plantLink(target string, create bool) func(*testing.T, string, string) {
	return func(t *testing.T, dir, path string) {
		tp := filepath.Join(dir, target)
		if create {
			os.WriteFile(tp, []byte("keep me"), 0o644)
		}
		if err := os.Symlink(tp, path); err != nil {
			t.Fatal(err)
		}
	}
}
