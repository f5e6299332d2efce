//go:build unix

package fsx

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive flock on path (created 0600 if needed): at once
// or not at all (ErrLocked) unless wait is set. Closing the file releases
// it, and the kernel drops it when the process dies, so a killed process
// never leaves a stale lock.
func Lock(path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file: %w", err)
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("failed to lock %s: %w", path, err)
	}
	return f, nil
}
