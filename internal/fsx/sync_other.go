//go:build !linux

package fsx

// syncFiles makes the files durable, one at a time.
func syncFiles(paths []string) error { return syncEach(paths) }
