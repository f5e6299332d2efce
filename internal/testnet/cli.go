package testnet

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
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
