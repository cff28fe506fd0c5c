package dhcp6pd

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
)

// TestClientReleaseOnStopRetransmits: RFC 8415 §18.2.7 — a Release is
// retransmitted until a Reply comes or REL_MAX_RC (4) transmissions went
// out; a stop waits for that at most StopTimeout.
func TestClientReleaseOnStopRetransmits(t *testing.T) {
	bound := func(t *testing.T, cfg Config) (*fakeServer, *runningClient) {
		srv := serverAFor(100*time.Second, 160*time.Second, 200*time.Second, 300*time.Second)
		cfg.ReleaseOnStop = true
		rc := startClient(t, srv, cfg)
		rc.waitBound(t)
		srv.mu.Lock()
		srv.silent = true
		srv.mu.Unlock()
		return srv, rc
	}
	t.Run("a silent server gets REL_MAX_RC Releases", func(t *testing.T) {
		srv, rc := bound(t, Config{})
		start := time.Now()
		rc.stop(t)
		// fastTune: REL_TIMEOUT 50 ms, so 0, 50, 150, 350 ms and the
		// exchange ends at about 750 ms.
		if got := srv.count(dhcpv6.MessageTypeRelease); got != 4 {
			t.Errorf("%d Releases, want 4", got)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("stop took %s", took)
		}
	})
	t.Run("StopTimeout bounds the wait", func(t *testing.T) {
		srv, rc := bound(t, Config{StopTimeout: 120 * time.Millisecond})
		start := time.Now()
		rc.stop(t)
		took := time.Since(start)
		if got := srv.count(dhcpv6.MessageTypeRelease); got < 1 || got > 3 {
			t.Errorf("%d Releases in %s", got, took)
		}
		if took > time.Second {
			t.Errorf("stop took %s with StopTimeout 120ms", took)
		}
	})
}
