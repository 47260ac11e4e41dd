package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/skbtrail/skbtrail/internal/names"
	"github.com/skbtrail/skbtrail/internal/names/critest"
	"github.com/skbtrail/skbtrail/internal/netns"
)

// nsCount is how many namespaces BenchmarkNames makes.
const nsCount = 200

// BenchmarkNames measures what naming namespaces costs at start-up with
// 200 namespaces, each a pod of the test CRI server (a sandbox and one
// container process, containerd's cgroup layout): names.New, which reads
// /run/netns, every process's /proc/PID/ns/net (and comm and cgroup of
// the first ones per namespace) and, with a runtime, lists the pods and
// asks each one's status. "lookup" is the cost per event afterwards.
func BenchmarkNames(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("run as root (bench/run.sh)")
	}
	srv := critest.Start(b, b.TempDir(), "critest")
	inos := make([]uint32, 0, nsCount)
	prefix := fmt.Sprintf("sbtn-%04x", rand.IntN(1<<16))
	for i := 0; i < nsCount; i++ {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			b.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		b.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		ino, err := netns.Inode("/run/netns/" + name)
		if err != nil {
			b.Fatal(err)
		}
		inos = append(inos, ino)
		srv.AddPod(b, critest.Containerd, "bench", fmt.Sprintf("pod-%03d", i), name, "app")
	}
	ctx := context.Background()
	check := func(r *names.Resolver) {
		for _, ino := range inos {
			if !r.Who(ino).Known() {
				b.Fatalf("namespace %d not named", ino)
			}
		}
	}
	b.Run("startup-no-cri", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := names.New(ctx, names.Options{CRIEndpoint: "none"})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			check(r)
			r.Close()
			b.StartTimer()
		}
	})
	b.Run("startup-cri", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r, err := names.New(ctx, names.Options{CRIEndpoint: srv.Socket})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if w := r.Who(inos[0]); w.Pod != "pod-000" {
				b.Fatalf("first namespace: %+v, want pod bench/pod-000", w)
			}
			check(r)
			r.Close()
			b.StartTimer()
		}
	})
	b.Run("lookup", func(b *testing.B) {
		r, err := names.New(ctx, names.Options{CRIEndpoint: srv.Socket})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		scans := r.Scans()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r.Who(inos[i%len(inos)])
		}
		b.StopTimer()
		if r.Scans() != scans {
			b.Fatalf("lookups caused %d new looks at /proc", r.Scans()-scans)
		}
	})
}
