package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kadre/kadre/agent"
)

// cmdAgent runs the user agent (SPEC.md §9): `kadre agent` in the
// foreground, `kadre agent stop` to stop the one serving the home.
func cmdAgent(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "stop" {
		return cmdAgentStop(ctx, e, args[1:])
	}
	var u userFlags
	fs := newFlagSet(e, "agent", "[-listen 127.0.0.1:4712] | stop",
		"Runs the user agent in the foreground: it unlocks your identity once, keeps a client joined to the network, and answers a local JSON/HTTP API (GET /v1/openapi.json describes it) for programs in any language and for the other kadre commands, which use it when it runs. Requests carry the token of "+agent.CookieFile+" in the home directory (Authorization: Bearer …); requests from web pages are refused. `kadre agent stop` stops it.")
	u.bindHome(fs, e)
	u.bindNetwork(fs)
	listen := fs.String("listen", "", "loopback address to listen on (env KADRE_AGENT_LISTEN; default "+agent.DefaultListen+"; port 0 picks one)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	home, err := u.dir()
	if err != nil {
		return err
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	log := newLogger(e.stderr, *logLevel, "text")
	s, err := agent.Start(ctx, agent.Config{Client: c, Home: home, Listen: firstNonEmpty(*listen, e.getenv("KADRE_AGENT_LISTEN")), Logger: log})
	if errors.Is(err, agent.ErrRunning) {
		return withHint(err, "stop it with `kadre agent stop`, or use another -home")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "kadre agent: %s at %s (token in %s)\n", shortID(c.Identity().String()), s.URL(), filepath.Join(home, agent.CookieFile))
	select {
	case <-ctx.Done():
	case <-s.Stopped():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Close(sctx)
}

func cmdAgentStop(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "agent stop", "", "Stops the agent serving the home directory.")
	u.bindHome(fs, e)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	home, err := u.dir()
	if err != nil {
		return err
	}
	r, err := agent.Discover(ctx, home)
	if err != nil {
		return err
	}
	if r == nil {
		return withHint(fmt.Errorf("no agent serves %s", home), "start one with `kadre agent`")
	}
	defer r.Close()
	if err := r.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "stopped the agent at %s\n", r.URL)
	return nil
}
