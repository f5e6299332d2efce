package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	crashDirEnv    = "KADRE_STORE_CRASH_DIR"
	crashStartEnv  = "KADRE_STORE_CRASH_START"
	crashRoundsEnv = "KADRE_STORE_CRASH_ROUNDS" // default 100
)

// crashGrant is the i-th grant the child writes; every fourth step also
// revokes the grant written two steps earlier.
func crashGrant(i int) entry {
	return mkGrant(pk(byte(i%5)), pk(bob), "/crash/"+strconv.Itoa(i), 1, t0.Add(100*365*24*time.Hour))
}

func crashRevokes(i int) (target int, ok bool) { return i - 2, i%4 == 3 }

// TestCrashChild is the child process of TestCrashRecovery; it does nothing
// in a normal run. It writes forever and prints each step only after the
// call that committed it returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashRecovery")
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	s, err := Open(dir, Options{InitialMapSize: 1 << 20})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	for i := start; ; i++ {
		if err := s.putGrant(crashGrant(i), t0); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("g %d\n", i)
		if j, ok := crashRevokes(i); ok {
			g := crashGrant(j)
			if _, err := s.revoke(revocation{Owner: g.Owner, Recipient: g.Recipient, PathHash: g.PathHash, Seq: 2, At: t0}); err != nil {
				fmt.Printf("error %v\n", err)
				os.Exit(2)
			}
			fmt.Printf("r %d\n", j)
		}
	}
}

// TestCrashRecovery kills a writing child process with SIGKILL at random
// moments, many times, and after each kill requires the store to open
// cleanly with every acknowledged grant and revocation intact. The map
// starts at 1 MiB so kills also land during map growth. Set
// KADRE_STORE_CRASH_ROUNDS for a longer run.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 100
	if v, err := strconv.Atoi(os.Getenv(crashRoundsEnv)); err == nil && v > 0 {
		rounds = v
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[int]bool{}   // grants acknowledged
	revoked := map[int]bool{} // revocations acknowledged
	next := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStartEnv+"="+strconv.Itoa(next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// One round in five is killed at a random moment from exec, which
		// may be during Open; the others a random time after Open.
		early := rng.IntN(5) == 0
		var kill <-chan time.Time
		if early {
			kill = time.After(time.Duration(rng.IntN(30)) * time.Millisecond)
		}
		killed := false
		for !killed {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited by itself; stderr:\n%s", round, stderr.String())
				}
				if line == "ready" && kill == nil {
					kill = time.After(time.Duration(rng.IntN(60)) * time.Millisecond)
				}
				recordLine(t, line, acked, revoked)
			case <-kill:
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("round %d: child hung; stderr:\n%s", round, stderr.String())
			}
		}
		for line := range lines {
			recordLine(t, line, acked, revoked)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want SIGKILL; stderr:\n%s", round, err, stderr.String())
		}
		for i := range acked {
			next = max(next, i+1)
		}
		verifyCrashStore(t, dir, acked, revoked)
	}
	t.Logf("%d rounds, %d grants and %d revocations acknowledged", rounds, len(acked), len(revoked))
}

func recordLine(t *testing.T, line string, acked, revoked map[int]bool) {
	t.Helper()
	kind, num, _ := strings.Cut(line, " ")
	switch kind {
	case "ready":
	case "g", "r":
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		if kind == "g" {
			acked[i] = true
		} else {
			revoked[i] = true
		}
	default:
		t.Fatalf("child: %s", line)
	}
}

func verifyCrashStore(t *testing.T, dir string, acked, revoked map[int]bool) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	for i := range acked {
		g := crashGrant(i)
		got, err := s.get(&g.Owner, &g.Recipient, &g.PathHash)
		if err == nil {
			if revoked[i] {
				t.Fatalf("grant %d: acknowledged revocation lost", i)
			}
			if got.Seq != g.Seq || got.ID != g.ID || !bytes.Equal(got.Record, g.Record) || !got.Expires.Equal(g.Expires) {
				t.Fatalf("grant %d: stored %+v, want %+v", i, got, g)
			}
			if _, err := s.lookup(&g.Owner, &g.Recipient, [][32]byte{ph("/"), g.PathHash}, t0); err != nil {
				t.Fatalf("grant %d: Lookup: %v", i, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotGranted) {
			t.Fatalf("grant %d: %v", i, err)
		}
		// Gone is only right if it was revoked, acknowledged or not: the
		// tombstone must name exactly this grant.
		ts, err := s.getTombstone(&g.Owner, &g.Recipient, &g.PathHash)
		if err != nil || ts.Seq != 2 || !ts.Deleted || ts.DeletedID != g.ID {
			t.Fatalf("acknowledged grant %d lost (tombstone %+v, %v)", i, ts, err)
		}
	}
	for j := range revoked {
		g := crashGrant(j)
		if _, err := s.getTombstone(&g.Owner, &g.Recipient, &g.PathHash); err != nil {
			t.Fatalf("acknowledged revocation %d lost: %v", j, err)
		}
	}
}

const lockProbeEnv = "KADRE_STORE_LOCK_PROBE"

// TestLockProbeChild is the child process of TestSecondProcessLocked.
func TestLockProbeChild(t *testing.T) {
	dir := os.Getenv(lockProbeEnv)
	if dir == "" {
		t.Skip("child process of TestSecondProcessLocked")
	}
	_, err := Open(dir, Options{})
	fmt.Println(err)
	os.Exit(0)
}

// TestSecondProcessLocked opens a store and has another process try the
// same directory: LMDB would allow it, the flock must not.
func TestSecondProcessLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	openTest(t, dir, Options{Key: KeyFile("")})
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockProbeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockProbeEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), ErrLocked.Error()) {
		t.Fatalf("second process got %q, want %q", out, ErrLocked)
	}
}
