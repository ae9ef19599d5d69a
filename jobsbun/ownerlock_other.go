//go:build !unix

package jobsbun

import (
	"errors"
	"os"
)

// flockSupported tells whether owner lock files work here: not without
// flock(2), so dead owners' jobs wait for their leases.
const flockSupported = false

var errLockHeld = errors.New("owner lock is held")

func lockOwnerFile(string, bool) (*os.File, error) { return nil, errors.ErrUnsupported }
