//go:build !unix

package store

import (
	"fmt"
	"os"
)

// lockDir only opens the lock file on platforms without flock: a second
// process on the same directory is not detected there. kadre nodes run on
// Unix; this keeps the package building elsewhere for tools and tests.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file: %w", err)
	}
	return f, nil
}
