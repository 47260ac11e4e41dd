package kernel

import (
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// requireRoot skips a test that reads the running kernel unless it runs as
// root, or CI=true says that it must run (and fail loudly) anyway.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root (set CI=true to run anyway)")
	}
}

// kernelBTF returns the running kernel's BTF, skipping the test without it
// unless CI=true.
func kernelBTF(t *testing.T) *btf.Spec {
	t.Helper()
	spec, err := BTF()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return spec
}

// buildSpec marshals types into a BTF spec.
func buildSpec(t testing.TB, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// enum returns a 4-byte unsigned enum of name and values, given as
// alternating names and values.
func enum(name string, values ...any) *btf.Enum {
	e := &btf.Enum{Name: name, Size: 4}
	for i := 0; i+1 < len(values); i += 2 {
		e.Values = append(e.Values, btf.EnumValue{Name: values[i].(string), Value: uint64(values[i+1].(int))})
	}
	return e
}
