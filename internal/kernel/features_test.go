package kernel

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

func TestDetect(t *testing.T) {
	requireRoot(t)
	f := Detect()
	t.Logf("kernel %s (%d.%d), lockdown %s", f.Version.Release, f.Version.Major, f.Version.Minor, f.Lockdown)

	if f.Version.Release == "" || f.Version.Major < 5 {
		t.Errorf("Version = %+v, want a 5.x or later release", f.Version)
	}
	if f.Lockdown == "" {
		t.Error("Lockdown is empty, want a mode or \"unknown\"")
	}
	// Every supported kernel has these; skbtrail cannot work without them.
	if !f.BTF.OK || !f.RawTp.OK {
		t.Errorf("BTF %v, RawTp %v: both must be supported", f.BTF, f.RawTp)
	}

	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		s, ok := v.Field(i).Interface().(Support)
		if !ok {
			continue
		}
		name := v.Type().Field(i).Name
		t.Logf("%-13s %v", name, s)
		if !s.OK && strings.TrimSpace(s.Detail) == "" {
			t.Errorf("%s not supported, without a detail saying why", name)
		}
		if strings.Contains(s.Detail, "\n") {
			t.Errorf("%s detail spans lines: %q", name, s.Detail)
		}
	}

	if again := Detect(); again != f {
		t.Errorf("second Detect() = %+v, differs from the first %+v", again, f)
	}
	assertNoProbePrograms(t)
}

// assertNoProbePrograms fails if a program the probes loaded is still in
// the kernel after a grace period (the kernel frees closed programs after
// an RCU grace period); a program left loaded may mean a link left attached.
func assertNoProbePrograms(t *testing.T) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left = probePrograms(t); len(left) == 0 {
			return
		}
	}
	t.Errorf("probes left programs loaded: %v", left)
}

// probePrograms lists the loaded programs named probeName.
func probePrograms(t *testing.T) []string {
	var found []string
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return found
		}
		if err != nil {
			t.Fatalf("list BPF programs: %v", err)
		}
		id = next
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := prog.Info()
		prog.Close()
		if err == nil && info.Name == probeName {
			found = append(found, fmt.Sprintf("%d (%s)", id, info.Type))
		}
	}
}

func TestLockdownMode(t *testing.T) {
	mode := lockdownMode()
	b, err := os.ReadFile(lockdownPath)
	if err != nil {
		if mode != "unknown" {
			t.Errorf("lockdownMode() = %q without %s, want unknown", mode, lockdownPath)
		}
		return
	}
	if !strings.Contains(string(b), "["+mode+"]") {
		t.Errorf("lockdownMode() = %q, file says %q", mode, b)
	}
}

func TestVersionAtLeast(t *testing.T) {
	v := Version{Release: "6.1.0-37-amd64", Major: 6, Minor: 1}
	for _, tt := range []struct {
		major, minor int
		want         bool
	}{{5, 10, true}, {6, 0, true}, {6, 1, true}, {6, 2, false}, {7, 0, false}} {
		if got := v.AtLeast(tt.major, tt.minor); got != tt.want {
			t.Errorf("%s AtLeast(%d, %d) = %v", v.Release, tt.major, tt.minor, got)
		}
	}
}

func TestSupportString(t *testing.T) {
	if s := (Support{OK: true}).String(); s != "yes" {
		t.Errorf("OK String() = %q", s)
	}
	if s := (Support{Detail: "load failed: x"}).String(); s != "no: load failed: x" {
		t.Errorf("not OK String() = %q", s)
	}
}
