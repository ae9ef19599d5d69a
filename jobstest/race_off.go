//go:build !race

package jobstest

// defaultStressJobs is the job count of the concurrent-claimer case.
const defaultStressJobs = 5000

// shortDeadlineCalls is how many Create calls the short-deadline case makes.
const shortDeadlineCalls = 1500
