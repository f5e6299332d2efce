package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// Errors of reading files.
var (
	// ErrWriterRevoked means the file's writer certificate names a writer
	// the owner revoked (her holder map lists him, or her ledger does).
	ErrWriterRevoked = errors.New("client: the owner revoked this file's writer")
	// ErrPathMismatch means a file's level opened with a grant whose
	// prefix is not a prefix of the path the file names: its writer
	// encrypted it to the wrong keys.
	ErrPathMismatch = errors.New("client: the file's path is not under the grant that opened it")
)

// Encrypt writes to dst the kadre file (SPEC.md §7) of src's content under
// path of the owner's hierarchy, signed by the owner: whoever holds a
// grant on a prefix of path can decrypt it. Each level is encrypted to the
// prefix's current key epoch (the ledger's), so that a recipient revoked
// from a prefix cannot read what is written under it afterwards. It
// streams in constant memory and needs no network.
func (c *Client) Encrypt(dst io.Writer, src io.Reader, path policy.Path) error {
	doc, err := c.ledger.read()
	if err != nil {
		return err
	}
	levels := kfile.OwnerLevels(c.keys, path, func(p policy.Path) uint32 { return doc.epoch(p.String()) })
	return c.encrypt(dst, src, path, levels, &kfile.Author{Signer: policy.IdentitySigner(c.keys)})
}

// EncryptAs writes to dst the kadre file of src's content under path of
// the hierarchy of cert's owner, as the writer the certificate names (this
// client's identity): it needs no secret of the owner's, and the file is
// signed by this client. path must lie under the certificate's prefix;
// grantees of that prefix and of its ancestors can decrypt it.
func (c *Client) EncryptAs(dst io.Writer, src io.Reader, path policy.Path, cert *policy.WriterCert) error {
	if err := policy.VerifyWriterCert(cert, cert.Owner); err != nil {
		return fmt.Errorf("client: writer certificate: %w", err)
	}
	if cert.Writer != c.me.IdentityKey {
		return fmt.Errorf("%w: the writer certificate is for %s, this identity is %s", kfile.ErrNotAuthorized, cert.Writer, c.me.IdentityKey)
	}
	levels, err := kfile.CertLevels(cert)
	if err != nil {
		return err
	}
	return c.encrypt(dst, src, path, levels, &kfile.Author{Signer: policy.IdentitySigner(c.keys), Cert: cert})
}

func (c *Client) encrypt(dst io.Writer, src io.Reader, path policy.Path, levels []kfile.Level, a *kfile.Author) error {
	owner := c.me.IdentityKey
	if a.Cert != nil {
		owner = a.Cert.Owner
	}
	h, dataKey, err := kfile.NewHeader(owner, path, levels, a)
	if err != nil {
		return err
	}
	w, err := kfile.NewWriter(dst, h, dataKey)
	clear(dataKey)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	return w.Close()
}

// FileKey is what decrypting a file's body takes: its header and data key
// (seed 003's decrypt_key), with how the key was obtained and who wrote
// the file. An application that keeps bodies elsewhere decrypts them with
// kfile.NewReader or kfile.NewReaderAt, or with Header.BodyKey and its own
// implementation of SPEC.md §7.3.
type FileKey struct {
	Header  *kfile.Header
	DataKey []byte
	// Contents are the path and the writer, checked against the writer's
	// signature (and, for a certified writer, the owner's certificate and
	// holder map).
	Contents *kfile.Contents
	// ByOwner is set when the owner opened the file with her own path key,
	// offline.
	ByOwner bool
	// Prefix is the granted prefix whose fragments served (recipients),
	// split M-of-N, at key epoch Epoch.
	Prefix policy.Path
	Epoch  uint32
	M, N   int
	// Nodes holds every node asked and its outcome (nil: its cfrag was
	// valid). It is set on failure too.
	Nodes map[peer.ID]error
}

// DecryptOptions tune DecryptKey and Decrypt.
type DecryptOptions struct {
	// AllowUnsigned accepts version 1 files, which nobody signed (their
	// writer is not authenticated). Without it they are refused with
	// kfile.ErrUnsigned.
	AllowUnsigned bool
}

// MapMaxAge is how old a cached holder map may be when a file by a
// certified writer is checked against the owner's revoked writers: an
// older one is fetched again first.
const MapMaxAge = 10 * time.Minute

// DecryptKey reads a file's header from r (exactly the header, nothing
// after it) and recovers its data key: the owner offline, a recipient from
// m holders of a grant on a prefix of the file's path. It checks the
// writer before returning: signature, certificate, not revoked. On a
// failed collection it returns the FileKey with Nodes set, and an error
// wrapping dht.ErrNotEnoughCFrags.
func (c *Client) DecryptKey(ctx context.Context, r io.Reader, opt DecryptOptions) (*FileKey, error) {
	h, err := kfile.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	if h.FormatVersion() == 1 && !opt.AllowUnsigned {
		return &FileKey{Header: h}, fmt.Errorf("%w: written by kadre before files were signed; its writer cannot be checked (allow unsigned files to read it, or have the owner migrate it)", kfile.ErrUnsigned)
	}
	fk, err := c.headerKey(ctx, h)
	if err != nil {
		return fk, err
	}
	return fk, nil
}

func (c *Client) headerKey(ctx context.Context, h *kfile.Header) (*FileKey, error) {
	if h.Owner() == c.me.IdentityKey {
		return c.ownerKey(h)
	}
	return c.recipientKey(ctx, h)
}

// ownerKey opens a file of this owner through its root level.
func (c *Client) ownerKey(h *kfile.Header) (*FileKey, error) {
	fk := &FileKey{Header: h, ByOwner: true}
	root := policy.MustNormalizePath("/")
	level := 0
	if p, clear := h.ClearPath(); clear {
		root, level = p, h.Levels()-1 // version 1: the deepest level, at epoch 0
	}
	key, err := h.UnwrapOriginal(level, policy.DelegatingKey(c.keys, root, h.Epoch(level)))
	if err != nil {
		return fk, err
	}
	if fk.Contents, err = h.Open(key); err != nil {
		return fk, err
	}
	fk.DataKey, fk.Prefix, fk.Epoch = key, root, h.Epoch(level)
	if w := fk.Contents.Cert; w != nil {
		doc, err := c.ledger.read()
		if err != nil {
			return fk, err
		}
		if doc.writerRevoked(w.Writer) {
			return fk, fmt.Errorf("%w: %s", ErrWriterRevoked, w.Writer)
		}
	}
	return fk, nil
}

// candidate is a level of a file that a grant of the recipient's map
// opens.
type candidate struct {
	level int
	page  *policy.HolderMap
	entry *policy.MapEntry
}

// candidates returns the levels of h the map holds a live grant for,
// deepest first: by the path (version 1) or by the level tags (version
// 2, whose path is sealed).
func candidates(h *kfile.Header, pair *policy.PairKey, m *holderMap) []candidate {
	now := time.Now()
	var out []candidate
	if p, clear := h.ClearPath(); clear {
		hashes := pair.PathHashes(p, nil)
		for i := len(hashes) - 1; i >= 0; i-- {
			if page, e := m.entry(hashes[i]); e != nil && e.Epoch == 0 && now.Before(e.ExpiryTime()) {
				out = append(out, candidate{i, page, e})
			}
		}
		return out
	}
	for i := h.Levels() - 1; i >= 0; i-- {
		for _, page := range m.pages {
			for j := range page.Entries {
				e := &page.Entries[j]
				if e.Epoch == h.Epoch(i) && now.Before(e.ExpiryTime()) && h.Matches(i, e.DelegatingKey) {
					out = append(out, candidate{i, page, e})
				}
			}
		}
	}
	return out
}

// recipientKey opens a file through the deepest level a grant of the
// owner's map covers, collecting cfrags from its holders.
func (c *Client) recipientKey(ctx context.Context, h *kfile.Header) (*FileKey, error) {
	fk := &FileKey{Header: h}
	pair, err := policy.RecipientPairKey(c.keys, h.Owner())
	if err != nil {
		return nil, err
	}
	// The cached holder map first; a fresh one if it knows no grant for
	// this file or its holders do not answer (hand-offs, a new grant).
	var lastErr, collectErr error
	for _, fresh := range []bool{false, true} {
		m, err := c.mapFor(ctx, pair, fresh)
		if errors.Is(err, dht.ErrNoMap) {
			// No map at all: the owner never granted this pair anything
			// (or every node that kept the map is gone).
			lastErr = fmt.Errorf("client: cannot decrypt this file of %s: %w: %w", h.Owner(), policy.ErrNotGranted, err)
			continue
		}
		if err != nil {
			lastErr = err
			continue
		}
		cands := candidates(h, pair, m)
		if len(cands) == 0 {
			lastErr = fmt.Errorf("client: cannot decrypt this file of %s: %w: the owner's holder map lists no grant to you for a prefix of it", h.Owner(), policy.ErrNotGranted)
			if collectErr != nil {
				lastErr = collectErr // the holders' answers (revoked, expired) say more
			}
			continue
		}
		for _, cd := range cands {
			key, err := c.collectLevel(ctx, h, fk, m, cd)
			if err != nil {
				lastErr, collectErr = err, err
				continue
			}
			if err := c.checkOpened(ctx, h, fk, pair, m, cd, key); err != nil {
				return fk, err
			}
			return fk, nil
		}
	}
	return fk, lastErr
}

// collectLevel collects cfrags for one candidate level and unwraps it.
func (c *Client) collectLevel(ctx context.Context, h *kfile.Header, fk *FileKey, m *holderMap, cd candidate) ([]byte, error) {
	capsule, _, err := h.Level(cd.level)
	if err != nil {
		return nil, err
	}
	host, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	col, err := host.Collect(ctx, dht.CollectRequest{
		Owner: h.Owner(), Me: c.me, Entry: cd.entry,
		Holders: policy.CurrentHolders(cd.page, cd.entry, m.links),
		Level:   dht.Level{PathHash: cd.entry.PathHash, Capsule: capsule},
	}, dht.CollectOptions{})
	if col != nil {
		fk.Nodes = col.Outcomes
	}
	if err != nil {
		return nil, fmt.Errorf("client: cannot decrypt this file of %s: %w", h.Owner(), err)
	}
	delegating, cfrags, err := col.Material()
	if err != nil {
		return nil, err
	}
	return h.UnwrapReencrypted(cd.level, c.keys.Receiving(), delegating, cfrags)
}

// checkOpened opens the header with the recovered key and checks that the
// path lies under the grant that opened it and that the writer is not
// revoked, then fills fk.
func (c *Client) checkOpened(ctx context.Context, h *kfile.Header, fk *FileKey, pair *policy.PairKey, m *holderMap, cd candidate, key []byte) error {
	contents, err := h.Open(key)
	if err != nil {
		return err
	}
	prefixes := contents.Path.Prefixes()
	if cd.level >= len(prefixes) || pair.PathHash(prefixes[cd.level], cd.entry.Epoch) != cd.entry.PathHash {
		return fmt.Errorf("%w: level %d names %s", ErrPathMismatch, cd.level, contents.Path)
	}
	if w := contents.Cert; w != nil {
		maxAge := c.opt.MapMaxAge
		if maxAge == 0 {
			maxAge = MapMaxAge
		}
		if time.Since(m.fetched) > maxAge {
			// The map this client holds now may be newer (another file of
			// a batch fetched it); else fetch one.
			fresh, err := c.mapFor(ctx, pair, false)
			if err != nil || time.Since(fresh.fetched) > maxAge {
				fresh, err = c.mapFor(ctx, pair, true)
			}
			if err != nil {
				// Fail closed: without a recent map nothing says the owner
				// did not revoke the writer since.
				return fmt.Errorf("client: cannot check whether the owner still vouches for writer %s: %w", w.Writer, err)
			}
			m = fresh
		}
		if len(m.pages) > 0 && m.pages[0].WriterRevoked(w.Writer) {
			return fmt.Errorf("%w: %s (holder map %d)", ErrWriterRevoked, w.Writer, m.seq)
		}
	}
	fk.DataKey, fk.Contents = key, contents
	fk.Prefix, fk.Epoch = prefixes[cd.level], cd.entry.Epoch
	fk.M, fk.N = int(cd.entry.Threshold), int(cd.entry.Shares)
	return nil
}

// Decrypt reads a kadre file from src and writes its plaintext to dst,
// streaming in constant memory. dst may receive the plaintext of
// authenticated groups before an error: treat it as complete only when
// Decrypt returns nil (the CLI writes to a temporary file and renames it).
func (c *Client) Decrypt(ctx context.Context, dst io.Writer, src io.Reader, opt DecryptOptions) (*FileKey, error) {
	fk, err := c.DecryptKey(ctx, src, opt)
	if err != nil {
		return fk, err
	}
	r, err := kfile.NewReader(src, fk.Header, fk.DataKey)
	if err != nil {
		return fk, err
	}
	_, err = io.Copy(dst, r)
	return fk, err
}
