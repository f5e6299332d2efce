package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kadre/kadre/node"
)

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

// nodeFlags binds every node.Config field to a flag and an environment
// variable. Values are applied in Parse: env first, then flags.
type nodeFlags struct {
	fs      *flag.FlagSet
	cfg     *node.Config
	setters map[string]func(string) error
}

func bindConfig(c *node.Config, fs *flag.FlagSet) *nodeFlags {
	nf := &nodeFlags{fs: fs, cfg: c, setters: map[string]func(string) error{}}
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	list := func(p *[]string) func(string) error {
		return func(v string) error { *p = splitList(v); return nil }
	}
	dur := func(p *node.Duration) func(string) error { return p.Set }
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
	intv := func(p *int) func(string) error {
		return func(v string) error {
			n, err := strconv.Atoi(v)
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
	def := node.DefaultConfig()
	add := func(name, usage string, set func(string) error) {
		nf.setters[name] = set
		if d := defaultOf(&def, name); d != "" {
			usage += " (default " + d + ")"
		}
		fs.Func(name, usage, set)
	}
	// Boolean settings are flags without a value (-pprof), or -pprof=false.
	addBool := func(name, usage string, set func(string) error) {
		nf.setters[name] = set
		fs.BoolFunc(name, usage, set)
	}
	add("data-dir", "data directory (env KADRE_DATA_DIR)", str(&c.DataDir))
	add("listen", "comma-separated listen multiaddrs (env KADRE_LISTEN)", list(&c.Listen))
	add("bootstrap", "comma-separated bootstrap multiaddrs with /p2p/ (env KADRE_BOOTSTRAP)", list(&c.Bootstrap))
	add("max-grant-duration", "longest grant accepted, e.g. 90d (env KADRE_MAX_GRANT_DURATION)", dur(&c.MaxGrantDuration))
	add("capacity", "grants kept at most (env KADRE_CAPACITY)", u64(&c.Capacity))
	add("quotas", "on or off: limits per owner, peer and network group on what the node keeps (env KADRE_QUOTAS)", str(&c.Quotas))
	add("owner-quota", "grants one owner may keep here, 0: 1% of capacity (env KADRE_OWNER_QUOTA)", u64(&c.OwnerQuota))
	add("group-quota", "grants one network group (/24, /48) may keep here, 0: 2% of capacity (env KADRE_GROUP_QUOTA)", u64(&c.GroupQuota))
	add("counter-file", "the store's rollback counter, best on another medium (env KADRE_COUNTER_FILE)", str(&c.CounterFile))
	addBool("accept-rollback", "start on a store older than its rollback counter (env KADRE_ACCEPT_ROLLBACK)", boolean(&c.AcceptRollback))
	add("kfrag-cache", "verified kfrags kept in memory (env KADRE_KFRAG_CACHE)", intv(&c.KFragCache))
	addBool("limit-loopback", "apply the per-IP and per-subnet connection limits to loopback too, for tests (env KADRE_LIMIT_LOOPBACK)", boolean(&c.LimitLoopback))
	add("storage-key", "storage key source: file, passphrase or env (env KADRE_STORAGE_KEY_SOURCE)", str(&c.StorageKey))
	add("metrics-addr", "local address of /metrics, /status and /retire (token in <data-dir>/endpoint.cookie), empty to disable (env KADRE_METRICS_ADDR)", str(&c.MetricsAddr))
	addBool("pprof", "serve Go profiles at /debug/pprof/ on the local endpoint (env KADRE_PPROF)", boolean(&c.Pprof))
	add("prune-interval", "expiry pruning period (env KADRE_PRUNE_INTERVAL)", dur(&c.PruneInterval))
	add("diversity", "network groups of hand-off targets: \"v4,v6\" prefix lengths or \"off\" (env KADRE_DIVERSITY)", str(&c.Diversity))
	add("republish-interval", "holder-map republishing period (env KADRE_REPUBLISH_INTERVAL)", dur(&c.RepublishInterval))
	add("refresh-interval", "DHT routing-table refresh period (env KADRE_REFRESH_INTERVAL)", dur(&c.RefreshInterval))
	add("peer-rate", "requests per second per peer (env KADRE_PEER_RATE)", f64(&c.PeerRate))
	addBool("handoff-on-shutdown", "pass fragments to other nodes before stopping (env KADRE_HANDOFF_ON_SHUTDOWN)", boolean(&c.HandoffOnShutdown))
	add("shutdown-timeout", "bound on a graceful shutdown (env KADRE_SHUTDOWN_TIMEOUT)", dur(&c.ShutdownTimeout))
	add("log-level", "debug, info, warn or error (env KADRE_LOG_LEVEL)", str(&c.LogLevel))
	add("log-format", "text or json (env KADRE_LOG_FORMAT)", str(&c.LogFormat))
	return nf
}

// defaultOf is the default of a setting, as its flag takes it ("" when
// it has none).
func defaultOf(c *node.Config, name string) string {
	switch name {
	case "data-dir":
		return c.DataDir
	case "listen":
		return strings.Join(c.Listen, ",")
	case "bootstrap":
		return strings.Join(c.Bootstrap, ",")
	case "max-grant-duration":
		return c.MaxGrantDuration.String()
	case "capacity":
		return strconv.FormatUint(c.Capacity, 10)
	case "storage-key":
		return c.StorageKey
	case "metrics-addr":
		return c.MetricsAddr
	case "prune-interval":
		return c.PruneInterval.String()
	case "diversity":
		return c.Diversity
	case "republish-interval":
		return c.RepublishInterval.String()
	case "refresh-interval":
		return c.RefreshInterval.String()
	case "peer-rate":
		return strconv.FormatFloat(c.PeerRate, 'g', -1, 64)
	case "handoff-on-shutdown":
		return strconv.FormatBool(c.HandoffOnShutdown)
	case "shutdown-timeout":
		return c.ShutdownTimeout.String()
	case "log-level":
		return c.LogLevel
	case "log-format":
		return c.LogFormat
	}
	return ""
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
