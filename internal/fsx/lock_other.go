//go:build !unix

package fsx

import (
	"fmt"
	"os"
)

// Lock only opens the lock file on platforms without flock: another
// process holding it is not detected there. kadre runs on Unix; this keeps
// the packages building elsewhere for tools and tests.
func Lock(path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file: %w", err)
	}
	return f, nil
}
