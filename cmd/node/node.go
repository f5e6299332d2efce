package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kadre/kadre/node"
	"github.com/kadre/kadre/store"
)

func cmdRun(ctx context.Context, e *env, args []string) error {
	cfg := node.DefaultConfig()
	fs := newFlagSet(e, "run", "[flags]", "Runs a kadre node. Settings: the defaults shown here, then the -config file, then KADRE_* variables, then flags.")
	configPath := fs.String("config", "", "JSON config file, its keys the flags' names with _ for - (env KADRE_CONFIG)")
	nf := bindConfig(&cfg, fs.FlagSet)
	// The config file comes before the environment and the flags, so find
	// it first, then parse the flags for real.
	*configPath = e.getenv("KADRE_CONFIG")
	if err := scanConfigFlag(args, configPath); err != nil {
		return err
	}
	if *configPath != "" {
		if err := loadConfigFile(*configPath, &cfg); err != nil {
			return err
		}
	}
	if err := nf.applyEnv(e.getenv); err != nil {
		return err
	}
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return withHint(fmt.Errorf("invalid configuration: %w", err), "see `kadre run -h`")
	}
	keySource, err := storageKeySource(cfg.StorageKey, e.getenv)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.LogLevel, cfg.LogFormat)
	n, err := node.Start(ctx, cfg, node.Options{StorageKey: keySource, Logger: log})
	if err != nil {
		return startHint(err, &cfg)
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
		defer cancel()
		if cfg.HandoffOnShutdown {
			n.Retire(sctx)
		}
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		return n.Shutdown(sctx)
	case <-n.RetireRequested():
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
		defer cancel()
		log.Info("retired, shutting down", "timeout", cfg.ShutdownTimeout)
		return n.Shutdown(sctx)
	}
}

// startHint says what to do when a node does not start.
func startHint(err error, cfg *node.Config) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return withHint(err, "another kadre node uses %s; stop it or choose another -data-dir", cfg.DataDir)
	case errors.Is(err, store.ErrRollback):
		return withHint(err, "someone may have put an older copy of the store back (it would serve grants revoked since); if you restored it on purpose, start once with -accept-rollback, and have owners revoke again what they revoked after the copy")
	case errors.Is(err, store.ErrWrongKey):
		return withHint(err, "the storage key does not open this data directory; use the key (file, passphrase or KADRE_STORAGE_KEY) it was created with")
	case errors.Is(err, node.ErrIdentityMode):
		return withHint(err, "chmod 600 %s/%s; if others could read it, retire this node and start a new one", cfg.DataDir, node.IdentityFile)
	case errors.Is(err, node.ErrIdentityKey):
		return withHint(err, "the identity is sealed under the storage key it was created with: use that key, restore the file from a backup, or move it away to start as a new node")
	case errors.Is(err, node.ErrEndpoint):
		return withHint(err, "check -metrics-addr, or set it to \"\" to disable the endpoint")
	case errors.Is(err, node.ErrListen):
		return withHint(err, "check -listen: is the port already in use?")
	}
	return err
}

// scanConfigFlag finds -config in args without applying the other flags.
func scanConfigFlag(args []string, configPath *string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return withHint(errors.New("-config needs a file name"), "kadre run -config node.json")
			}
			val = args[i+1]
		}
		*configPath = val
	}
	return nil
}

func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// storageKeySource maps the storage_key setting to a store key source.
func storageKeySource(kind string, getenv func(string) string) (store.KeySource, error) {
	switch kind {
	case "passphrase":
		p := getenv("KADRE_STORAGE_PASSPHRASE")
		if p == "" {
			return nil, withHint(errors.New("storage_key is passphrase but KADRE_STORAGE_PASSPHRASE is empty"), "set KADRE_STORAGE_PASSPHRASE")
		}
		return store.Passphrase([]byte(p)), nil
	case "env":
		k, err := hex.DecodeString(strings.TrimSpace(getenv("KADRE_STORAGE_KEY")))
		if err != nil || len(k) != store.KeySize {
			return nil, withHint(errors.New("storage_key is env but KADRE_STORAGE_KEY is not 64 hex characters"), "generate one with `head -c32 /dev/urandom | xxd -p -c64`")
		}
		return store.RawKey(k), nil
	default:
		return store.KeyFile(""), nil
	}
}
