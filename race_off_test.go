//go:build !race

package jobs_test

// raceEnabled scales down heavy tests under the race detector.
const raceEnabled = false
