package netns

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
