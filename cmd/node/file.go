package main

import (
	"context"
	"errors"
)

func cmdEncrypt(ctx context.Context, e *env, args []string) error {
	return errors.New("encrypt: not implemented yet")
}

func cmdDecrypt(ctx context.Context, e *env, args []string) error {
	return errors.New("decrypt: not implemented yet")
}
