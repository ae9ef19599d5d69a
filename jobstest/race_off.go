//go:build !race

package jobstest

// defaultStressJobs is the job count of the concurrent-claimer case.
const defaultStressJobs = 5000
