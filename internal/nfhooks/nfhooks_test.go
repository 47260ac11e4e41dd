package nfhooks

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

func TestPoints(t *testing.T) {
	fns := []Fn{
		{Family: event.FamilyIPv4, Hook: 1, Priority: 0, Name: "filter"},
		{Family: event.FamilyIPv4, Hook: 1, Priority: 0, Name: "another at 0"},
		{Family: event.FamilyIPv4, Hook: 1, Priority: -150, Name: "mangle"},
		{Family: event.FamilyIPv4, Hook: 1, Priority: math.MaxInt32, Name: "confirm"},
		{Family: event.FamilyIPv6, Hook: 1, Priority: 10, Name: "v6 only"},
	}
	pts := Points(fns, []event.Family{event.FamilyIPv4})
	var input []int32
	for _, p := range pts {
		if p.Family != event.FamilyIPv4 {
			t.Fatalf("point for a family not asked for: %+v", p)
		}
		if p.Hook == 1 {
			input = append(input, p.Priority)
		}
	}
	want := []int32{event.FirstPriority, -149, 1}
	if fmt.Sprint(input) != fmt.Sprint(want) {
		t.Errorf("input hook points %v, want %v (start, after -150, after 0; none after INT_MAX)", input, want)
	}
	if len(pts) != event.NumHooks-1+len(want) {
		t.Errorf("%d points, want a start point on every hook plus %d", len(pts), len(want)-1)
	}
}

func TestListNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	name := fmt.Sprintf("sbt-nfh-%d", rand.Intn(1e6))
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	run("ip", "netns", "exec", name, "nft", "add table inet t; add chain inet t c { type filter hook forward priority 10; }")
	fns, err := List("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fns {
		if f.Table == "t" {
			got = append(got, fmt.Sprintf("%d/%d/%d %s", f.Family, f.Hook, f.Priority, f.Name))
		}
	}
	want := []string{"2/2/10 nftables chain inet t c", "10/2/10 nftables chain inet t c"}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("chains %q, want %q", got, want)
	}
}
