//go:build race

package jobsbun_test

// raceEnabled is set under the race detector, which makes SQLite 12-25x
// slower: the tests that write thousands of jobs size down.
const raceEnabled = true
