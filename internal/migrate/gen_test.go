package migrate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/v6edge/v6edge/internal/testbed"
)

// TestIncumbentTestdata keeps testdata/incumbent-* equal to what the lab's
// incumbent runs; UPDATE=1 rewrites them.
func TestIncumbentTestdata(t *testing.T) {
	d, h, r := testbed.IncumbentTexts("/etc/dhcpcd-hook.sh")
	files := map[string]string{"incumbent-dhcpcd.conf": d, "incumbent-hook.sh": h, "incumbent-radvd.conf": r}
	for path, text := range testbed.PairIncTexts("/etc/pairinc", pairOptions()) {
		files["pairinc-"+filepath.Base(path)] = text
	}
	for name, want := range files {
		p := filepath.Join("testdata", name)
		if os.Getenv("UPDATE") != "" {
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s differs from the lab's incumbent: run UPDATE=1 go test -run TestIncumbentTestdata", p)
		}
	}
}
