package store

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// The 1M size takes about a minute to build, so it only runs when asked:
// go test -run '^$' -bench . ./store/ -store.sizes=1000,100000,1000000
// (scripts/bench-store.sh does this).
var benchSizes = flag.String("store.sizes", "1000,100000", "comma-separated store sizes (grants) for BenchmarkStore")

const (
	benchOwners     = 1000
	benchRecipients = 100
	benchRecordSize = 700 // a signed grant with one kfrag
	benchBatch      = 10000
	benchSample     = 20000
	// benchQueries distinct lookups per benchmark, cycled: enough that
	// their pages do not all stay in the CPU caches at the large sizes.
	benchQueries = 16384
	benchHot     = 64
)

type benchKey struct {
	owner, recipient [33]byte
	ph               [32]byte
}

func benchGrant(rng *rand.Rand, k benchKey, seq uint64) entry {
	rec := make([]byte, benchRecordSize)
	for i := 0; i < len(rec); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(rec); j++ {
			rec[i+j] = byte(v >> (8 * j))
		}
	}
	return entry{Owner: k.owner, Recipient: k.recipient, PathHash: k.ph, ID: sha256.Sum256(rec),
		Seq: seq, Expires: t0.Add(365 * 24 * time.Hour), Record: rec}
}

func randKey(rng *rand.Rand) benchKey {
	var k benchKey
	k.owner = pk(0)
	k.recipient = pk(0)
	o, r := rng.IntN(benchOwners), rng.IntN(benchRecipients)
	k.owner[1], k.owner[2] = byte(o>>8), byte(o)
	k.recipient[1], k.recipient[2] = byte(r>>8), byte(r)
	for i := 0; i < 32; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			k.ph[i+j] = byte(v >> (8 * j))
		}
	}
	return k
}

// buildBenchStore fills a store with n grants in batched write transactions
// and returns a random sample of their keys.
func buildBenchStore(b *testing.B, n int) (*Store, []benchKey) {
	b.Helper()
	// Sized so that the build and the benchmarks never grow the map: a
	// growth (a remap) inside a timed loop would only measure itself.
	s := openTest(b, b.TempDir(), Options{InitialMapSize: int64(n)*5000 + 256<<20, Key: RawKey(testKey(7))})
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	sample := make([]benchKey, 0, benchSample)
	start := time.Now()
	for done := 0; done < n; {
		m := min(benchBatch, n-done)
		keys := make([]benchKey, m)
		sealed := make([][]byte, m)
		sgs := make([]storedGrant, m)
		for i := range keys {
			keys[i] = randKey(rng)
			g := benchGrant(rng, keys[i], 1)
			sgs[i] = storedGrant{seq: g.Seq, expires: g.Expires.Unix(), id: g.ID, record: g.Record}
			var gkb [grantKeyLen]byte
			sealed[i] = s.seal.seal(dbGrants, grantKey(&gkb, &g.Owner, &g.Recipient, &g.PathHash), sgs[i].encode())
		}
		err := s.update(func(txn *lmdb.Txn) error {
			for i := range keys {
				k := makeKeys(&keys[i].owner, &keys[i].recipient, &keys[i].ph)
				if err := s.putGrantTxn(txn, k, &sgs[i], sealed[i], t0, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		for i := range keys {
			// Reservoir-free sampling: every grant equally likely.
			if len(sample) < benchSample {
				sample = append(sample, keys[i])
			} else if j := rng.IntN(done + i + 1); j < benchSample {
				sample[j] = keys[i]
			}
		}
		done += m
	}
	st, _ := s.Stats()
	var size int64
	if fi, err := os.Stat(filepath.Join(s.dir, "data.mdb")); err == nil {
		size = fi.Size()
	}
	b.Logf("built %d grants in %v (data.mdb %d MiB, map %d MiB)", st.Grants, time.Since(start).Round(time.Millisecond), size>>20, st.MapSize>>20)
	return s, sample
}

// latencies records per-operation times and reports their percentiles,
// since the targets are stated on the median rather than the mean.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkStore measures, at each store size: a single Get, deepest-first
// Lookup at depth 1, 4 and 16 (the live grant on the root, so every deeper
// level is a miss: the worst case), Lookup at depth 16 hitting the deepest
// level, and fsynced PutGrant and Revoke.
func BenchmarkStore(b *testing.B) {
	for _, f := range strings.Split(*benchSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("bad -store.sizes entry %q", f)
		}
		s, sample := buildBenchStore(b, n)
		rng := rand.New(rand.NewChaCha8([32]byte{2}))
		prefix := fmt.Sprintf("n=%d/", n)

		b.Run(prefix+"Get", func(b *testing.B) {
			b.ReportAllocs()
			lat := make(latencies, 0, b.N)
			order := rng.Perm(len(sample))
			for i := 0; b.Loop(); i++ {
				k := &sample[order[i%len(order)]]
				t := time.Now()
				if _, err := s.get(&k.owner, &k.recipient, &k.ph); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			lat.report(b)
		})
		for _, c := range []struct {
			depth   int
			hit     string
			queries int
		}{
			{1, "root", benchQueries}, {4, "root", benchQueries}, {4, "deepest", benchQueries},
			{16, "root", benchQueries}, {16, "deepest", benchQueries},
			// A hot set: the same few grants asked for again and again,
			// which measures the algorithm with the pages in CPU caches.
			{1, "root/hot", benchHot}, {16, "root/hot", benchHot},
		} {
			depth, hit := c.depth, c.hit
			{
				b.Run(fmt.Sprintf("%sLookup/depth=%d/hit=%s", prefix, depth, hit), func(b *testing.B) {
					type query struct {
						owner, recipient [33]byte
						hs               [][32]byte
					}
					queries := make([]query, c.queries)
					for q := range queries {
						k := sample[rng.IntN(len(sample))]
						hs := make([][32]byte, depth)
						for l := range hs {
							hs[l] = randKey(rng).ph
						}
						if hit != "deepest" {
							hs[0] = k.ph
						} else {
							hs[depth-1] = k.ph
						}
						queries[q] = query{k.owner, k.recipient, hs}
					}
					b.ReportAllocs()
					lat := make(latencies, 0, b.N)
					for i := 0; b.Loop(); i++ {
						q := &queries[i%len(queries)]
						t := time.Now()
						m, err := s.lookup(&q.owner, &q.recipient, q.hs, t0)
						lat = append(lat, time.Since(t))
						if err != nil {
							b.Fatal(err)
						}
						if (hit != "deepest") != (m.Level == 0) {
							b.Fatalf("matched level %d", m.Level)
						}
					}
					lat.report(b)
				})
			}
		}
		b.Run(prefix+"Put", func(b *testing.B) {
			b.ReportAllocs()
			lat := make(latencies, 0, b.N)
			for b.Loop() {
				g := benchGrant(rng, randKey(rng), 1)
				t := time.Now()
				if err := s.putGrant(g, t0); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			lat.report(b)
		})
		revoked := 0
		b.Run(prefix+"Revoke", func(b *testing.B) {
			b.ReportAllocs()
			lat := make(latencies, 0, b.N)
			for b.Loop() {
				// Stored grants first (a delete and a tombstone); past the
				// sample, revocations of grants never seen (tombstone only).
				var k benchKey
				if revoked < len(sample) {
					k = sample[len(sample)-1-revoked]
				} else {
					k = randKey(rng)
				}
				revoked++
				t := time.Now()
				if _, err := s.revoke(revocation{Owner: k.owner, Recipient: k.recipient, PathHash: k.ph, Seq: 2, At: t0}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			lat.report(b)
		})
		s.Close()
	}
}
