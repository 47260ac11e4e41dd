package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/limits"
)

func TestDoAndFind(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to create a network namespace")
		}
		t.Skip("needs root")
	}
	name := "sbt-nsx-" + time.Now().Format("150405.000000")[7:]
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	path := filepath.Join(Dir, name)
	ino, err := Inode(path)
	if err != nil {
		t.Fatal(err)
	}
	home := Current()
	if ino == home {
		t.Fatal("new namespace has our own inode")
	}
	var inside uint32
	if err := Do(path, func() error { inside = Current(); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != ino {
		t.Errorf("inside Do: netns %d, want %d", inside, ino)
	}
	if Current() != home {
		t.Errorf("after Do: netns %d, want home %d", Current(), home)
	}
	if got := Find(ino); got != path {
		t.Errorf("Find(%d) = %q, want %q", ino, got, path)
	}
	if Path(ino) != path || Path(home) != "" {
		t.Errorf("Path: %q %q", Path(ino), Path(home))
	}
	if Names()[ino] != name {
		t.Errorf("Names()[%d] = %q, want %q", ino, Names()[ino], name)
	}
	if err := Do("/nonexistent", func() error { return nil }); err == nil {
		t.Error("Do on a missing namespace did not fail")
	}
}

// Path does not search /proc again at once for a namespace it did not
// find, searches at most Lookups.Max times a second, and keeps at most
// ResolvedLimit.Max answers; each bound hit is counted.
func TestPathLimits(t *testing.T) {
	limits.Reset()
	searched := 0
	find = func(uint32) string { searched++; return "" }
	now := time.Now().UnixNano()
	Lookups = limits.NewRate("namespace searches (test)", 5, "unresolved", func() int64 { return now })
	defer func() { find = Find }()
	saved := ResolvedLimit.Max
	ResolvedLimit.Max = 3
	defer func() { ResolvedLimit.Max = saved }()
	foundMu.Lock()
	clear(missed)
	foundMu.Unlock()

	const gone = 0x7fff0001 // no namespace has this inode
	for i := 0; i < 3; i++ {
		if p := Path(gone); p != "" {
			t.Fatalf("Path(gone) = %q", p)
		}
	}
	if searched != 1 {
		t.Errorf("a missing namespace was searched for %d times in a row, want once", searched)
	}
	// 10 more distinct ones at once: 4 tokens are left of the burst of 5.
	for i := uint32(0); i < 10; i++ {
		Path(gone + 1 + i)
	}
	if searched != 5 || Lookups.Hits() != 6 {
		t.Errorf("searched %d times with %d refused, want 5 and 6", searched, Lookups.Hits())
	}
	if ResolvedLimit.Hits() == 0 {
		t.Errorf("more misses than ResolvedLimit.Max were kept without a hit")
	}
	foundMu.Lock()
	n := len(missed)
	foundMu.Unlock()
	if n > ResolvedLimit.Max {
		t.Errorf("%d misses kept, more than %d", n, ResolvedLimit.Max)
	}
}
