package store

import (
	"errors"
	"fmt"
	"os"

	"github.com/kadre/kadre/internal/fsx"
)

// lockDir takes the data directory's lock. LMDB itself lets several
// processes share an environment; a kadre node must not, because two nodes
// would each believe they alone hold (and may hand off or prune) the
// fragments.
func lockDir(path string) (*os.File, error) {
	f, err := fsx.Lock(path, false)
	if errors.Is(err, fsx.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	return f, err
}
