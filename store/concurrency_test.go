package store

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// TestConcurrentReadersSeeWholeChanges flips one (owner, recipient, path)
// between granted and revoked while readers look it up. A revocation
// deletes the grant and writes the tombstone in one transaction, so a
// reader must see either a live grant whose record matches its sequence
// number or "revoked" — never "not granted", which would be half a change.
// Run with -race.
func TestConcurrentReadersSeeWholeChanges(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/a/b", 1, t0.Add(time.Hour)), t0)
	hs := pathHashes("/", "/a", "/a/b")

	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errc := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				m, err := s.lookup(&owner, &recipient, hs, t0)
				lookups.Add(1)
				switch {
				case err == nil:
					want := recordFor(owner, recipient, ph("/a/b"), m.Grant.Seq)
					if m.Level != 2 || m.Grant.Seq%2 != 1 || !bytes.Equal(m.Grant.Record, want) {
						errc <- errors.New("reader saw a grant that does not match its sequence number")
						return
					}
				case errors.Is(err, ErrRevoked):
				default:
					errc <- err
					return
				}
			}
		}()
	}
	seq := uint64(1)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) || lookups.Load() < 100 {
		seq++
		mustRevoke(t, s, owner, recipient, "/a/b", seq, t0)
		seq++
		mustPut(t, s, mkGrant(owner, recipient, "/a/b", seq, t0.Add(time.Hour)), t0)
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("%d writes, %d lookups", seq, lookups.Load())
}

// TestCloseWaitsForInFlight closes the store while goroutines use it: every
// call either completes or reports ErrClosed, and nothing crashes.
func TestCloseWaitsForInFlight(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	hs := pathHashes("/")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var err error
				if w%2 == 0 {
					err = s.putGrant(mkGrant(owner, recipient, "/w"+itoa(w)+"/"+itoa(i), 1, t0.Add(time.Hour)), t0)
				} else {
					_, err = s.lookup(&owner, &recipient, hs, t0)
					if errors.Is(err, ErrNotGranted) {
						err = nil
					}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestManyConcurrentReaders runs more simultaneous lookups than LMDB's
// default reader table (126 slots): they must wait for a slot, not fail.
func TestManyConcurrentReaders(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/", 1, t0.Add(time.Hour)), t0)
	hs := pathHashes("/", "/a")
	start := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 2000)
	for range 2000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.view(func(txn *lmdb.Txn) error {
				// Hold the transaction a little, as a slow consumer would.
				time.Sleep(time.Millisecond)
				_, err := txn.Get(s.grants, []byte("k"))
				if lmdb.IsNotFound(err) {
					err = nil
				}
				return err
			})
			if err == nil {
				_, err = s.lookup(&owner, &recipient, hs, t0)
			}
			if err != nil {
				errc <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
