//go:build unix

package jobsbun

import (
	"errors"
	"os"
	"syscall"
)

// flockSupported tells whether owner lock files work here.
const flockSupported = true

// errLockHeld is returned by lockOwnerFile when another open file holds
// the lock: its owner is alive (or paused).
var errLockHeld = errors.New("owner lock is held")

// lockOwnerFile opens the lock file at path, creating it when create is
// set, and takes its exclusive lock without waiting. It returns
// errLockHeld when the lock is held elsewhere (also by another open file
// in this process), and an error wrapping fs.ErrNotExist when there is no
// such file or it was removed while this call locked it (then, with
// create, it tries again on a new file). Closing the returned file
// releases the lock.
func lockOwnerFile(path string, create bool) (*os.File, error) {
	flag := os.O_RDONLY
	if create {
		flag = os.O_RDWR | os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flag|syscall.O_CLOEXEC, 0o644)
		if err != nil {
			return nil, err
		}
		if err := flock(f); err != nil {
			f.Close()
			return nil, err
		}
		// The holder before us may have removed the file after we opened
		// it: a lock on a removed file proves nothing to anyone.
		same, err := sameFile(f, path)
		if err == nil && same {
			return f, nil
		}
		f.Close()
		if !create || (err != nil && !errors.Is(err, os.ErrNotExist)) {
			if err == nil {
				err = os.ErrNotExist
			}
			return nil, err
		}
	}
}

// flock takes f's exclusive lock without waiting, retrying on EINTR.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLockHeld
		}
		return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}
