package testnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Output is what one CLI command printed and its exit code.
type Output struct {
	Stdout, Stderr string
	Code           int
}

// CLI runs kadre's user commands as processes, each with its own home
// directory, against a cluster's nodes.
type CLI struct {
	Bin       string
	Bootstrap []string // multiaddrs with /p2p/
	Env       []string // more environment, KEY=value
}

// NewCLI returns a CLI that bootstraps from every node of c.
func (c *Cluster) NewCLI(bin string) *CLI {
	cli := &CLI{Bin: bin}
	for _, n := range c.Nodes {
		cli.Bootstrap = append(cli.Bootstrap, n.P2PAddr())
	}
	return cli
}

// Run runs `kadre args…` with KADRE_HOME=home; stdin is empty. It fails
// only if the binary cannot run at all.
func (c *CLI) Run(home string, args ...string) (Output, error) {
	return c.RunInput(home, nil, args...)
}

// RunInput is Run with stdin.
func (c *CLI) RunInput(home string, stdin []byte, args ...string) (Output, error) {
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = append(os.Environ(), "KADRE_HOME="+home, "KADRE_BOOTSTRAP="+strings.Join(c.Bootstrap, ","), "KADRE_PASSPHRASE=")
	cmd.Env = append(cmd.Env, c.Env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Output{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
		err = nil
	}
	return r, err
}

// Agent is a `kadre agent` process serving one home directory.
type Agent struct {
	Home string
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
	mu   sync.Mutex
}

// StartAgent runs `kadre agent` for home on a free loopback port, with
// the CLI's environment and more (KEY=value), and waits (up to 30 s) until
// it answers.
func (c *CLI) StartAgent(home string, env ...string) (*Agent, error) {
	cmd := exec.Command(c.Bin, "agent", "-listen", "127.0.0.1:0", "-log-level", "warn")
	cmd.Env = append(os.Environ(), "KADRE_HOME="+home, "KADRE_BOOTSTRAP="+strings.Join(c.Bootstrap, ","), "KADRE_PASSPHRASE=")
	cmd.Env = append(append(cmd.Env, c.Env...), env...)
	a := &Agent{Home: home, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &lockedWriter{a}, &lockedWriter{a}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(a.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(home, "agent.json"))
		var info struct {
			URL string `json:"url"`
			PID int    `json:"pid"`
		}
		if err == nil && json.Unmarshal(b, &info) == nil && info.PID == cmd.Process.Pid {
			a.URL = info.URL
			return a, nil
		}
		select {
		case <-a.done:
			return nil, fmt.Errorf("kadre agent exited: %s", a.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.Kill()
			return nil, fmt.Errorf("kadre agent did not start in 30 s: %s", a.Log())
		}
	}
}

type lockedWriter struct{ a *Agent }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.a.mu.Lock()
	defer w.a.mu.Unlock()
	return w.a.log.Write(b)
}

// Log is what the agent printed.
func (a *Agent) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// PID is the agent's process id.
func (a *Agent) PID() int { return a.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to be gone.
func (a *Agent) Kill() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// Stop sends SIGTERM and waits up to 20 s.
func (a *Agent) Stop() error {
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		return nil
	case <-time.After(20 * time.Second):
		a.Kill()
		return errors.New("kadre agent did not stop within 20 s of SIGTERM")
	}
}
