// Package testenv holds what tests need of the machine they run on. Only
// tests import it.
package testenv

import (
	"os"
	"testing"
)

// NeedRoot skips t unless it runs as root, and fails it instead under
// CI=true, where every test must run: it loads BPF programs, or creates
// network namespaces.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test loads BPF programs or creates namespaces and must run as root in CI")
	}
	t.Skip("needs root")
}
