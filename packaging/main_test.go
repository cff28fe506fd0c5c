package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

func TestMain(m *testing.M) {
	// Re-executed by TestSocketGroupUnderTheUnitsRestrictions as the
	// stand-in for systemd's exec step: apply the restrictions, exec the
	// daemon. Never returns.
	if spec := os.Getenv(sandboxEnv); spec != "" {
		sandboxExec(spec, os.Args[1:])
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
	binOut  []byte
)

// v6edgeBinary builds ../cmd/v6edge once, as `make build` does (static,
// stripped, trimmed), for every test here.
func v6edgeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "v6edge-packaging-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "v6edge")
		build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=1.2.3", "-o", binPath, "../cmd/v6edge")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		binOut, binErr = build.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binOut)
	}
	return binPath
}
