package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/kadre/kadre/dht"
)

// NodeConfig is the configuration of `kadre run`. Each field is set, in
// order, by its default, the config file (JSON; unknown keys are errors),
// the environment variable named in its comment, and the flag of the same
// name. The comments here are the reference.
type NodeConfig struct {
	// DataDir holds the node's identity key, storage key and LMDB files.
	// Env KADRE_DATA_DIR, flag -data-dir. Default ./kadre-node.
	DataDir string `json:"data_dir"`
	// Listen is the list of libp2p multiaddrs to listen on. Env
	// KADRE_LISTEN (comma-separated), flag -listen. Default
	// /ip4/0.0.0.0/tcp/4710.
	Listen []string `json:"listen"`
	// Bootstrap is the list of peers to join through, as multiaddrs ending
	// in /p2p/<peer id>. Env KADRE_BOOTSTRAP (comma-separated), flag
	// -bootstrap. Default none (the first node of a network).
	Bootstrap []string `json:"bootstrap"`
	// MaxGrantDuration is the longest grant the node accepts, advertised in
	// its node info ("90d", "720h"). Env KADRE_MAX_GRANT_DURATION, flag
	// -max-grant-duration. Default 90d.
	MaxGrantDuration Duration `json:"max_grant_duration"`
	// Capacity is the number of grants the node keeps at most. Env
	// KADRE_CAPACITY, flag -capacity. Default 1000000.
	Capacity uint64 `json:"capacity"`
	// StorageKey says where the key that encrypts the store comes from:
	// "file" (a 0600 key file in the data directory, created on first
	// start), "passphrase" (argon2id of the passphrase in
	// KADRE_STORAGE_PASSPHRASE) or "env" (64 hex characters in
	// KADRE_STORAGE_KEY). Env KADRE_STORAGE_KEY_SOURCE, flag -storage-key.
	// Default "file".
	StorageKey string `json:"storage_key"`
	// MetricsAddr is the local address of the Prometheus (/metrics) and
	// JSON status (/status) endpoints; "" disables them. Env
	// KADRE_METRICS_ADDR, flag -metrics-addr. Default 127.0.0.1:4711.
	MetricsAddr string `json:"metrics_addr"`
	// PruneInterval is how often expired grants are removed. Env
	// KADRE_PRUNE_INTERVAL, flag -prune-interval. Default 10m.
	PruneInterval Duration `json:"prune_interval"`
	// ReprovideInterval is how often the node re-announces the locators of
	// the fragments it holds. Env KADRE_REPROVIDE_INTERVAL, flag
	// -reprovide-interval. Default 1h.
	ReprovideInterval Duration `json:"reprovide_interval"`
	// RefreshInterval is the DHT routing-table refresh period. Env
	// KADRE_REFRESH_INTERVAL, flag -refresh-interval. Default 1m.
	RefreshInterval Duration `json:"refresh_interval"`
	// PeerRate is how many requests per second one peer may send (burst:
	// twice that). Env KADRE_PEER_RATE, flag -peer-rate. Default 200.
	PeerRate float64 `json:"peer_rate"`
	// HandoffOnShutdown makes the node pass its fragments to other nodes
	// before it stops (retirement). Env KADRE_HANDOFF_ON_SHUTDOWN, flag
	// -handoff-on-shutdown. Default false.
	HandoffOnShutdown bool `json:"handoff_on_shutdown"`
	// ShutdownTimeout bounds a graceful shutdown (hand-off included). Env
	// KADRE_SHUTDOWN_TIMEOUT, flag -shutdown-timeout. Default 30s.
	ShutdownTimeout Duration `json:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error. Env KADRE_LOG_LEVEL, flag
	// -log-level. Default info.
	LogLevel string `json:"log_level"`
	// LogFormat is text or json. Env KADRE_LOG_FORMAT, flag -log-format.
	// Default text.
	LogFormat string `json:"log_format"`
}

func defaultNodeConfig() NodeConfig {
	return NodeConfig{
		DataDir:           "kadre-node",
		Listen:            []string{"/ip4/0.0.0.0/tcp/4710"},
		MaxGrantDuration:  Duration(90 * 24 * time.Hour),
		Capacity:          1_000_000,
		StorageKey:        "file",
		MetricsAddr:       "127.0.0.1:4711",
		PruneInterval:     Duration(10 * time.Minute),
		ReprovideInterval: Duration(time.Hour),
		RefreshInterval:   Duration(time.Minute),
		PeerRate:          200,
		ShutdownTimeout:   Duration(30 * time.Second),
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// Validate checks the configuration as a whole.
func (c *NodeConfig) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen is empty: a node must listen"))
	}
	for _, a := range c.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			errs = append(errs, fmt.Errorf("listen address %q: %w (e.g. /ip4/0.0.0.0/tcp/4710)", a, err))
		}
	}
	if _, err := dht.ParseAddrs(c.Bootstrap); err != nil {
		errs = append(errs, fmt.Errorf("bootstrap: %w", err))
	}
	if c.MaxGrantDuration < Duration(time.Minute) {
		errs = append(errs, fmt.Errorf("max_grant_duration %s is under a minute", c.MaxGrantDuration))
	}
	if c.Capacity == 0 {
		errs = append(errs, errors.New("capacity is 0"))
	}
	switch c.StorageKey {
	case "file", "passphrase", "env":
	default:
		errs = append(errs, fmt.Errorf("storage_key %q is not file, passphrase or env", c.StorageKey))
	}
	for name, d := range map[string]Duration{"prune_interval": c.PruneInterval, "reprovide_interval": c.ReprovideInterval,
		"refresh_interval": c.RefreshInterval, "shutdown_timeout": c.ShutdownTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.PeerRate <= 0 {
		errs = append(errs, errors.New("peer_rate must be positive"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format %q is not text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// loadConfigFile decodes a JSON config file strictly over c.
func loadConfigFile(path string, c any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return withHint(fmt.Errorf("config file %s: %w", path, err), "the keys are listed in `kadre run -h`; unknown keys are errors")
	}
	if dec.More() {
		return fmt.Errorf("config file %s: trailing data after the JSON object", path)
	}
	return nil
}

// nodeFlags binds every NodeConfig field to a flag and an environment
// variable. Values are applied in Parse: env first, then flags.
type nodeFlags struct {
	fs      *flag.FlagSet
	cfg     *NodeConfig
	setters map[string]func(string) error
}

func (c *NodeConfig) bind(fs *flag.FlagSet) *nodeFlags {
	nf := &nodeFlags{fs: fs, cfg: c, setters: map[string]func(string) error{}}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	list := func(p *[]string) func(string) error {
		return func(v string) error { *p = splitList(v); return nil }
	}
	dur := func(p *Duration) func(string) error { return p.Set }
	u64 := func(p *uint64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			*p = n
			return err
		}
	}
	f64 := func(p *float64) func(string) error {
		return func(v string) error {
			n, err := strconv.ParseFloat(v, 64)
			*p = n
			return err
		}
	}
	boolean := func(p *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			*p = b
			return err
		}
	}
	add := func(name, usage string, set func(string) error) {
		nf.setters[name] = set
		fs.Func(name, usage, set)
	}
	add("data-dir", "data directory (env KADRE_DATA_DIR)", str(&c.DataDir))
	add("listen", "comma-separated listen multiaddrs (env KADRE_LISTEN)", list(&c.Listen))
	add("bootstrap", "comma-separated bootstrap multiaddrs with /p2p/ (env KADRE_BOOTSTRAP)", list(&c.Bootstrap))
	add("max-grant-duration", "longest grant accepted, e.g. 90d (env KADRE_MAX_GRANT_DURATION)", dur(&c.MaxGrantDuration))
	add("capacity", "grants kept at most (env KADRE_CAPACITY)", u64(&c.Capacity))
	add("storage-key", "storage key source: file, passphrase or env (env KADRE_STORAGE_KEY_SOURCE)", str(&c.StorageKey))
	add("metrics-addr", "local address of /metrics and /status, empty to disable (env KADRE_METRICS_ADDR)", str(&c.MetricsAddr))
	add("prune-interval", "expiry pruning period (env KADRE_PRUNE_INTERVAL)", dur(&c.PruneInterval))
	add("reprovide-interval", "locator re-announcement period (env KADRE_REPROVIDE_INTERVAL)", dur(&c.ReprovideInterval))
	add("refresh-interval", "DHT routing-table refresh period (env KADRE_REFRESH_INTERVAL)", dur(&c.RefreshInterval))
	add("peer-rate", "requests per second per peer (env KADRE_PEER_RATE)", f64(&c.PeerRate))
	add("handoff-on-shutdown", "pass fragments to other nodes before stopping (env KADRE_HANDOFF_ON_SHUTDOWN)", boolean(&c.HandoffOnShutdown))
	add("shutdown-timeout", "bound on a graceful shutdown (env KADRE_SHUTDOWN_TIMEOUT)", dur(&c.ShutdownTimeout))
	add("log-level", "debug, info, warn or error (env KADRE_LOG_LEVEL)", str(&c.LogLevel))
	add("log-format", "text or json (env KADRE_LOG_FORMAT)", str(&c.LogFormat))
	return nf
}

// applyEnv sets every field whose KADRE_ variable is set.
func (nf *nodeFlags) applyEnv(getenv func(string) string) error {
	for name, set := range nf.setters {
		key := "KADRE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if name == "storage-key" {
			key = "KADRE_STORAGE_KEY_SOURCE"
		}
		if v := getenv(key); v != "" {
			if err := set(v); err != nil {
				return fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Duration is a time.Duration that also accepts a day suffix ("30d") and
// reads and writes JSON as a string.
type Duration time.Duration

// ParseDuration parses "30d", "12h", "1h30m", …
func ParseDuration(s string) (Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 30d, 12h or 90m)", s)
	}
	return Duration(d), nil
}

func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err == nil {
		*d = v
	}
	return err
}

func (d Duration) String() string {
	td := time.Duration(d)
	if td >= 24*time.Hour && td%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", td/(24*time.Hour))
	}
	return td.String()
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30d\": %w", err)
	}
	return d.Set(s)
}
