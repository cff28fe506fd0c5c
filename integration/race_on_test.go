//go:build race

package integration

// raceEnabled: the tests were built with -race, so the daemon they run is
// too, and any data race it hits fails the run (see TestMain).
const raceEnabled = true
