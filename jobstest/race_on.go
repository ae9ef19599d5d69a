//go:build race

package jobstest

// defaultStressJobs is smaller under the race detector, which slows the
// embedded databases down by an order of magnitude.
const defaultStressJobs = 1000

// shortDeadlineCalls is how many Create calls the short-deadline case makes.
const shortDeadlineCalls = 600
