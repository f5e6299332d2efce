package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/quota"
)

// Config is the configuration of a node (`kadre run`). Each field is set, in
// order, by its default, the config file (JSON; unknown keys are errors),
// the environment variable named in its comment, and the flag of the same
// name. The comments here are the reference.
type Config struct {
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
	// Quotas is "on" (the limits of SPEC.md §8.2 on what one owner, peer
	// or network group may keep here, derived from Capacity, OwnerQuota and
	// GroupQuota) or "off" (Capacity only: for a private deployment whose
	// owners share one network and are all trusted). Env KADRE_QUOTAS,
	// flag -quotas. Default "on".
	Quotas string `json:"quotas"`
	// OwnerQuota is how many grants one owner (or one relaying peer) may
	// keep here; 0 means 1 % of Capacity. Env KADRE_OWNER_QUOTA, flag
	// -owner-quota. Default 0.
	OwnerQuota uint64 `json:"owner_quota"`
	// GroupQuota is how many grants the owners of one network group (IPv4
	// /24, IPv6 /48) may keep here together; 0 means 2 % of Capacity. Env
	// KADRE_GROUP_QUOTA, flag -group-quota. Default 0.
	GroupQuota uint64 `json:"group_quota"`
	// CounterFile is the store's rollback counter (SPEC.md §8.8); keep it
	// on another medium than the data directory to detect a rollback of
	// the whole directory. Env KADRE_COUNTER_FILE, flag -counter-file.
	// Default "" (the store directory's "generation").
	CounterFile string `json:"counter_file"`
	// AcceptRollback starts the node on a store older than its rollback
	// counter (a copy restored on purpose); revocations made after the
	// copy are lost. Env KADRE_ACCEPT_ROLLBACK, flag -accept-rollback.
	// Default false.
	AcceptRollback bool `json:"accept_rollback"`
	// KFragCache is how many verified kfrags the node keeps in memory
	// (about 2 KiB each; shared fairly between network groups, SPEC.md
	// §5.3). Env KADRE_KFRAG_CACHE, flag -kfrag-cache. Default 4096.
	KFragCache int `json:"kfrag_cache"`
	// LimitLoopback applies the per-IP and per-subnet connection limits to
	// loopback connections too (libp2p exempts them): for abuse tests on
	// one machine. Env KADRE_LIMIT_LOOPBACK, flag -limit-loopback. Default
	// false.
	LimitLoopback bool `json:"limit_loopback"`
	// StorageKey says where the key that encrypts the store comes from:
	// "file" (a 0600 key file in the data directory, created on first
	// start), "passphrase" (argon2id of the passphrase in
	// KADRE_STORAGE_PASSPHRASE) or "env" (64 hex characters in
	// KADRE_STORAGE_KEY). Env KADRE_STORAGE_KEY_SOURCE, flag -storage-key.
	// Default "file".
	StorageKey string `json:"storage_key"`
	// MetricsAddr is the local address of the node's endpoint: Prometheus
	// metrics (/metrics), JSON status (/status) and retirement (POST
	// /retire), each only with the token of the data directory's
	// endpoint.cookie (SPEC.md §8.6); "" disables it. Env
	// KADRE_METRICS_ADDR, flag -metrics-addr. Default 127.0.0.1:4711.
	MetricsAddr string `json:"metrics_addr"`
	// Pprof serves Go's profiles at /debug/pprof/ on the local endpoint
	// (behind its token). Env KADRE_PPROF, flag -pprof. Default false.
	Pprof bool `json:"pprof"`
	// PruneInterval is how often expired grants are removed. Env
	// KADRE_PRUNE_INTERVAL, flag -prune-interval. Default 10m.
	PruneInterval Duration `json:"prune_interval"`
	// Diversity is the network-group rule of the nodes this node hands
	// fragments to when it retires: the prefix lengths "v4,v6" (a grant
	// never has two holders in one IPv4 /24 or IPv6 /48 by default), or
	// "off". Env KADRE_DIVERSITY, flag -diversity. Default "24,48".
	Diversity string `json:"diversity"`
	// RepublishInterval is how often the node stores again, at their
	// rendezvous points, the holder maps of the pairs it holds fragments
	// of, so that nodes that joined near a point learn them (SPEC.md
	// §3.4.7). Env KADRE_REPUBLISH_INTERVAL, flag -republish-interval.
	// Default 1h.
	RepublishInterval Duration `json:"republish_interval"`
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

// DefaultConfig is the configuration every setting starts from; the field
// comments of Config name each default.
func DefaultConfig() Config {
	return Config{
		DataDir:           "kadre-node",
		Listen:            []string{"/ip4/0.0.0.0/tcp/4710"},
		MaxGrantDuration:  Duration(dht.DefaultMaxGrantDuration),
		Capacity:          dht.DefaultCapacity,
		Quotas:            "on",
		KFragCache:        dht.DefaultKFragCache,
		StorageKey:        "file",
		MetricsAddr:       "127.0.0.1:4711",
		PruneInterval:     Duration(10 * time.Minute),
		Diversity:         "24,48",
		RepublishInterval: Duration(dht.DefaultRepublishInterval),
		RefreshInterval:   Duration(dht.DefaultRefreshPeriod),
		PeerRate:          dht.DefaultPeerRate,
		ShutdownTimeout:   Duration(30 * time.Second),
		LogLevel:          "info",
		LogFormat:         "text",
	}
}

// Validate checks the configuration as a whole.
func (c *Config) Validate() error {
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
	switch c.Quotas {
	case "on", "off":
	default:
		errs = append(errs, fmt.Errorf("quotas %q is not on or off", c.Quotas))
	}
	if c.KFragCache <= 0 {
		errs = append(errs, errors.New("kfrag_cache must be positive"))
	}
	if c.OwnerQuota > c.Capacity || c.GroupQuota > c.Capacity {
		errs = append(errs, errors.New("owner_quota and group_quota must not exceed capacity"))
	}
	switch c.StorageKey {
	case "file", "passphrase", "env":
	default:
		errs = append(errs, fmt.Errorf("storage_key %q is not file, passphrase or env", c.StorageKey))
	}
	if _, err := ParseDiversity(c.Diversity); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]Duration{"prune_interval": c.PruneInterval, "republish_interval": c.RepublishInterval,
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

// ParseDiversity parses a network-group rule: "v4,v6" prefix lengths (for
// example "24,48"; one number applies to IPv4 only and keeps IPv6 at 48)
// or "off" (every node its own group).
func ParseDiversity(s string) (dht.Diversity, error) {
	if s == "off" || s == "0" {
		return dht.NoDiversity, nil
	}
	d := dht.DefaultDiversity
	parts := strings.Split(s, ",")
	if len(parts) > 2 || s == "" {
		return d, fmt.Errorf("diversity %q is not \"v4,v6\" prefix lengths or \"off\"", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || (i == 0 && n > 32) || (i == 1 && n > 128) {
			return d, fmt.Errorf("diversity %q is not \"v4,v6\" prefix lengths (1..32, 1..128) or \"off\"", s)
		}
		if i == 0 {
			d.V4 = n
		} else {
			d.V6 = n
		}
	}
	return d, nil
}

func (c *Config) diversity() dht.Diversity {
	d, _ := ParseDiversity(c.Diversity)
	return d
}

// Limits are the store's quotas under this configuration (SPEC.md §8.2).
func (c *Config) Limits() quota.Limits {
	if c.Quotas == "off" {
		var l quota.Limits
		l[quota.Grants].All = c.Capacity
		return l
	}
	return quota.Defaults(c.Capacity, c.OwnerQuota, c.GroupQuota)
}
