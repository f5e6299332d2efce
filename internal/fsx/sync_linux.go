package fsx

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncFiles makes the files durable with one syncfs(2) per file system
// they are on.
func syncFiles(paths []string) error {
	done := map[uint64]bool{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		dev := uint64(st.Sys().(*syscall.Stat_t).Dev)
		if done[dev] {
			continue
		}
		d, err := os.Open(filepath.Dir(p))
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(d.Fd()))
		d.Close()
		if err != nil {
			return syncEach(paths) // syncfs refused: one at a time
		}
		done[dev] = true
	}
	return nil
}
