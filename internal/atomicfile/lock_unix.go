//go:build unix

package atomicfile

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on the folder (or file) dir, held until
// the returned file is closed or the process dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tryLockDir is lockDir that returns nil, nil when another process holds
// the lock.
func tryLockDir(dir string) (*os.File, error) {
	f, err := lockDir(dir)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, nil
	}
	return f, err
}

// lockFile takes an exclusive flock on an open file, held until every
// descriptor of it is closed or the process dies.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// LockFolder waits for an exclusive flock on the folder dir and holds it
// until the returned file is closed or the process dies: for work that
// must run once at a time in a fixed place (a firmware build).
func LockFolder(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
