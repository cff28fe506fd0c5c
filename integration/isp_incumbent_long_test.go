//go:build comparison

package integration

import (
	"testing"
	"time"
)

// TestIncumbentISPRefusesLongThenDelegates is the 150 s refusal window of
// TestIncumbentISPRefusesThenDelegates, for `make bench` (-tags comparison).
func TestIncumbentISPRefusesLongThenDelegates(t *testing.T) {
	t.Parallel()
	ispRefusal(t, 150*time.Second)
}
