package names

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestFromCgroup reads testdata/cgroups.txt: cgroup paths as the runtimes
// lay them out, each with the container id, runtime and pod UID expected.
func TestFromCgroup(t *testing.T) {
	f, err := os.Open("testdata/cgroups.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := append(strings.Split(line, "\t"), "", "", "", "")
		want := Container{ID: cols[1], Runtime: cols[2], PodUID: cols[3]}
		if got := FromCgroup(cols[0]); got != want {
			t.Errorf("FromCgroup(%q)\n got %+v\nwant %+v", cols[0], got, want)
		}
		n++
	}
	if n < 15 {
		t.Fatalf("only %d cases read from testdata/cgroups.txt", n)
	}
}

func TestParseProcCgroup(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, in, path, id string
	}{
		{"v2 only", "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + id + ".scope\n",
			"/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + id + ".scope", id},
		{"hybrid, container in a v1 hierarchy", "9:name=systemd:/\n4:memory:/docker/" + id + "\n0::/\n", "/docker/" + id, id},
		{"hybrid, no container", "9:name=systemd:/\n4:memory:/process_api/2b68\n0::/user.slice\n", "/user.slice", ""},
		{"v1 only", "2:cpu:/a\n1:pids:/b\n", "/a", ""},
		{"garbage", "nonsense\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, c := parseProcCgroup(strings.NewReader(tc.in))
			if path != tc.path || c.ID != tc.id {
				t.Errorf("got %q %q, want %q %q", path, c.ID, tc.path, tc.id)
			}
		})
	}
}

// FuzzFromCgroup: any path gives either no container or a 64-hex id that
// occurs in the path, and /proc/PID/cgroup text never panics.
func FuzzFromCgroup(f *testing.F) {
	id := strings.Repeat("0f", 32)
	for _, s := range []string{"/", "/docker/" + id, "/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-" + id + ".scope",
		"/system.slice/containerd.service/kubepods-besteffort-pod1.slice:cri-containerd:" + id, "0::/a\n1:b:/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := FromCgroup(s)
		if c.ID != "" && (!isID(c.ID) || !strings.Contains(s, c.ID)) {
			t.Errorf("FromCgroup(%q) = %+v", s, c)
		}
		if c.ID == "" && c.Runtime != "" {
			t.Errorf("FromCgroup(%q): a runtime without a container: %+v", s, c)
		}
		parseProcCgroup(strings.NewReader(s))
	})
}
