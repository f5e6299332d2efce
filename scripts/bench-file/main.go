// Command bench-file measures, in one run, the throughput of kadre's
// streaming file encryption (package kfile, format version 2: signed
// groups) against raw XChaCha20-Poly1305 over the same data, and prints
// the ratios (target: at least 80 %). -procs sets GOMAXPROCS (default 2:
// kfile signs and checks groups on a second goroutine; the raw baselines
// use one core either way).
//
// What is timed, each over -mib MiB of plaintext (default 1 GiB):
//
//   - raw seal: chacha20poly1305.NewX Seal of 64 KiB chunks, in place in
//     one cache-resident buffer, one counter nonce per chunk.
//   - kadre encrypt: NewWriter (header and body key included), io.Copy from
//     a generator that repeats a cache-resident 64 KiB random pattern (the
//     copy fills the Writer's chunk buffer through Writer.ReadFrom), into
//     io.Discard, then Close. Both encrypt measurements read their plaintext
//     from cache.
//   - raw open: NewX Open, chunk by chunk, of the body of the encrypted file
//     held in memory (skipping the group signatures), under the body key
//     and nonces of SPEC.md §7.3, derived here independently of package
//     kfile (so the run also checks the spec against the code).
//   - kadre decrypt: ReadHeader, NewReader (header MAC, body key) and
//     io.Copy into io.Discard (through Reader.WriteTo) of the same file in
//     memory. Both decrypt measurements read the same ciphertext from RAM.
//   - raw open of one cached chunk, repeated: the cipher alone, for
//     reference (kadre decrypt cannot avoid reading its input from RAM).
//
// Nothing touches a disk. Each measurement is repeated -rounds times,
// interleaved so that load from other processes hits all alike, and the
// best round of each is reported. The decrypted output is verified once,
// untimed, before timing.
//
// Run it with scripts/bench-file.sh.
package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

const target = 0.80

func main() {
	ok, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-file: error:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// run returns false if -strict was given and a ratio missed the target.
func run(args []string, stdout io.Writer) (bool, error) {
	fs := flag.NewFlagSet("bench-file", flag.ContinueOnError)
	mib := fs.Int("mib", 1024, "plaintext size in MiB")
	rounds := fs.Int("rounds", 5, "interleaved rounds; the best of each measurement is reported")
	strict := fs.Bool("strict", false, "exit with status 1 if a ratio is below the target")
	procs := fs.Int("procs", 2, "GOMAXPROCS (kfile uses a second core for the group signatures)")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *mib < 1 || *rounds < 1 {
		return false, errors.New("need -mib ≥ 1 and -rounds ≥ 1")
	}
	runtime.GOMAXPROCS(*procs)
	size := int64(*mib) << 20
	chunks := size / kfile.ChunkSize

	keyring, err := rekey.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		return false, err
	}
	path := policy.MustNormalizePath("/bench/file.bin")
	h, dataKey, err := kfile.NewHeader(policy.IdentityOf(keyring).IdentityKey, path, kfile.OwnerLevels(keyring, path, nil),
		&kfile.Author{Signer: policy.IdentitySigner(keyring)})
	if err != nil {
		return false, err
	}
	pattern := make([]byte, kfile.ChunkSize)
	rand.Read(pattern)

	// The encrypted file, made and checked untimed.
	fileSize, err := h.FileSize(size)
	if err != nil {
		return false, err
	}
	sink := &sliceWriter{b: make([]byte, 0, fileSize)}
	if err := encrypt(sink, h, dataKey, pattern, size); err != nil {
		return false, err
	}
	file := sink.b
	if int64(len(file)) != fileSize {
		return false, fmt.Errorf("encrypted %d bytes, want %d", len(file), fileSize)
	}
	if err := decrypt(&checkWriter{pattern: pattern}, file, dataKey); err != nil {
		return false, fmt.Errorf("verification: %w", err)
	}

	sealAEAD, err := chacha20poly1305.NewX(dataKey)
	if err != nil {
		return false, err
	}
	hl := int64(h.Len())
	salt := sha256.Sum256(file[:hl])
	bodyKey, err := hkdf.Key(sha256.New, dataKey, salt[:], "kadre/file/v2 body", chacha20poly1305.KeySize)
	if err != nil {
		return false, err
	}
	openAEAD, err := chacha20poly1305.NewX(bodyKey)
	if err != nil {
		return false, err
	}
	sealBuf := make([]byte, kfile.EncryptedChunkSize)
	copy(sealBuf, pattern)
	ptBuf := make([]byte, kfile.ChunkSize)
	cachedCT := bytes.Clone(file[hl : hl+kfile.EncryptedChunkSize]) // chunk 0, not final
	var nonce [chacha20poly1305.NonceSizeX]byte                     // 0x00×15 ‖ u64 i ‖ final

	type measurement struct {
		name  string
		base  int // index of the baseline for the ratio, or -1
		run   func() error
		best  time.Duration
		ratio float64
	}
	ms := []*measurement{
		{name: "raw XChaCha20-Poly1305 seal", base: -1, run: func() error {
			nonce = [24]byte{}
			for i := range chunks {
				binary.BigEndian.PutUint64(nonce[15:23], uint64(i))
				sealAEAD.Seal(sealBuf[:0], nonce[:], sealBuf[:kfile.ChunkSize], nil)
			}
			return nil
		}},
		{name: "kadre encrypt", base: 0, run: func() error {
			return encrypt(io.Discard, h, dataKey, pattern, size)
		}},
		{name: "raw XChaCha20-Poly1305 open", base: -1, run: func() error {
			n := max(1, (size+kfile.ChunkSize-1)/kfile.ChunkSize)
			nonce = [24]byte{}
			for i := range n {
				binary.BigEndian.PutUint64(nonce[15:23], uint64(i))
				if i == n-1 {
					nonce[23] = 1
				}
				start := hl + i*kfile.EncryptedChunkSize + i/kfile.GroupChunks*kfile.GroupSigSize
				end := start + kfile.EncryptedChunkSize
				if i == n-1 {
					end = fileSize - kfile.GroupSigSize
				}
				ct := file[start:end]
				if _, err := openAEAD.Open(ptBuf[:0], nonce[:], ct, nil); err != nil {
					return fmt.Errorf("chunk %d: %w (SPEC.md §7.3 and the code disagree)", i, err)
				}
			}
			return nil
		}},
		{name: "kadre decrypt", base: 2, run: func() error {
			return decrypt(io.Discard, file, dataKey)
		}},
		{name: "raw open, one cached chunk", base: -1, run: func() error {
			nonce = [24]byte{}
			for range chunks {
				if _, err := openAEAD.Open(ptBuf[:0], nonce[:], cachedCT, nil); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for range *rounds {
		for _, m := range ms {
			runtime.GC()
			t0 := time.Now()
			if err := m.run(); err != nil {
				return false, fmt.Errorf("%s: %w", m.name, err)
			}
			if dt := time.Since(t0); m.best == 0 || dt < m.best {
				m.best = dt
			}
		}
	}

	fmt.Fprintf(stdout, "kfile throughput: %d MiB plaintext, %d KiB chunks, best of %d interleaved rounds, GOMAXPROCS=%d, %s %s/%s\n\n",
		*mib, kfile.ChunkSize>>10, *rounds, runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "| %-27s | %6s | %7s | %s |\n", "measurement", "MB/s", "time", "kadre / raw")
	fmt.Fprintf(stdout, "| %-27s | %6s | %7s | %s |\n", "---", "---:", "---:", "---:")
	ok := true
	for _, m := range ms {
		ratio := ""
		if m.base >= 0 {
			m.ratio = ms[m.base].best.Seconds() / m.best.Seconds()
			ratio = fmt.Sprintf("%.1f %%", 100*m.ratio)
			ok = ok && m.ratio >= target
		}
		fmt.Fprintf(stdout, "| %-27s | %6.0f | %6.3fs | %s |\n", m.name, float64(size)/m.best.Seconds()/1e6, m.best.Seconds(), ratio)
	}
	verdict := "met"
	if !ok {
		verdict = "NOT met"
	}
	fmt.Fprintf(stdout, "\ntarget kadre ≥ %.0f %% of raw XChaCha20-Poly1305 over the same data: %s\n", 100*target, verdict)
	fmt.Fprintf(stdout, "kadre decrypt / raw open of one cached chunk (the cipher alone): %.1f %%\n",
		100*ms[4].best.Seconds()/ms[3].best.Seconds())
	return ok || !*strict, nil
}

// encrypt writes a kfile of size bytes of the repeated pattern to w.
func encrypt(w io.Writer, h *kfile.Header, key, pattern []byte, size int64) error {
	kw, err := kfile.NewWriter(w, h, key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(kw, &patternReader{pattern: pattern, left: size}); err != nil {
		return err
	}
	return kw.Close()
}

// decrypt reads the file in memory as a stream, header first.
func decrypt(w io.Writer, file, key []byte) error {
	src := bytes.NewReader(file)
	h, err := kfile.ReadHeader(src)
	if err != nil {
		return err
	}
	r, err := kfile.NewReader(src, h, key)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// patternReader yields left bytes of pattern repeated; it has no WriteTo,
// so io.Copy hands the kfile Writer's ReadFrom the chunk buffer to fill.
type patternReader struct {
	pattern []byte
	off     int
	left    int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.pattern[r.off:])
		n += k
		r.off = (r.off + k) % len(r.pattern)
	}
	r.left -= int64(n)
	return n, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// checkWriter checks that it receives the repeated pattern.
type checkWriter struct {
	pattern []byte
	off     int
}

func (w *checkWriter) Write(p []byte) (int, error) {
	for i, c := range p {
		if c != w.pattern[(w.off+i)%len(w.pattern)] {
			return i, errors.New("decrypted bytes differ from the plaintext")
		}
	}
	w.off = (w.off + len(p)) % len(w.pattern)
	return len(p), nil
}
