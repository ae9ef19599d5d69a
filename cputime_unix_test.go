//go:build unix

package jobs_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used so far (user + system),
// to report throughput per CPU-second: on a shared machine, wall-clock
// figures measure the neighbours as much as the code.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
