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

// Encrypt writes to dst the kadre file (SPEC.md §7) of src's content under
// path of the owner's hierarchy: whoever holds a grant on a prefix of path
// can decrypt it. It streams in constant memory and needs no network.
func (c *Client) Encrypt(dst io.Writer, src io.Reader, path policy.Path) error {
	h, dataKey, err := kfile.NewHeader(c.me.IdentityKey, path, kfile.LevelKeys(c.keys, path))
	if err != nil {
		return err
	}
	w, err := kfile.NewWriter(dst, h, dataKey)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, src); err != nil {
		return err
	}
	return w.Close()
}

// FileKey is what decrypting a file's body takes: its header and data key
// (seed 003's decrypt_key), with how the key was obtained. An application
// that keeps bodies elsewhere decrypts them with kfile.NewReader or
// kfile.NewReaderAt.
type FileKey struct {
	Header  *kfile.Header
	DataKey []byte
	// ByOwner is set when the owner opened the file with her own path key,
	// offline.
	ByOwner bool
	// Prefix is the granted prefix whose fragments served (recipients),
	// split M-of-N.
	Prefix policy.Path
	M, N   int
	// Nodes holds every node asked and its outcome (nil: its cfrag was
	// valid). It is set on failure too.
	Nodes map[peer.ID]error
}

// DecryptKey reads a file's header from r (exactly the header, nothing
// after it) and recovers its data key: the owner offline, a recipient from
// m holders of a grant on a prefix of the file's path. On a failed
// collection it returns the FileKey with Nodes set, and an error wrapping
// dht.ErrNotEnoughCFrags.
func (c *Client) DecryptKey(ctx context.Context, r io.Reader) (*FileKey, error) {
	h, err := kfile.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	return c.headerKey(ctx, h)
}

func (c *Client) headerKey(ctx context.Context, h *kfile.Header) (*FileKey, error) {
	fk := &FileKey{Header: h}
	if h.Owner() == c.me.IdentityKey {
		deepest := h.Levels() - 1
		key, err := h.UnwrapOriginal(deepest, policy.DelegatingKey(c.keys, h.Path(), 0))
		if err != nil {
			return nil, err
		}
		fk.DataKey, fk.ByOwner, fk.Prefix = key, true, h.Path()
		return fk, nil
	}
	pair, err := policy.RecipientPairKey(c.keys, h.Owner())
	if err != nil {
		return nil, err
	}
	hashes := pair.PathHashes(h.Path(), nil)
	// The cached holder map first; a fresh one if it knows no grant for
	// this file or its holders do not answer (hand-offs, a new grant).
	var lastErr, collectErr error
	for _, fresh := range []bool{false, true} {
		m, err := c.mapFor(ctx, pair, fresh)
		if errors.Is(err, dht.ErrNoMap) {
			// No map at all: the owner never granted this pair anything
			// (or every node that kept the map is gone).
			lastErr = fmt.Errorf("client: cannot decrypt %s: %w: %w", h.Path(), policy.ErrNotGranted, err)
			continue
		}
		if err != nil {
			lastErr = err
			continue
		}
		level, page, entry := deepestGrant(m, hashes)
		if entry == nil {
			lastErr = fmt.Errorf("client: cannot decrypt %s: %w: the owner's holder map lists no grant to you for a prefix of it", h.Path(), policy.ErrNotGranted)
			if collectErr != nil {
				lastErr = collectErr // the holders' answers (revoked, expired) say more
			}
			continue
		}
		capsule, _, err := h.Level(level)
		if err != nil {
			return nil, err
		}
		host, err := c.Host(ctx)
		if err != nil {
			return nil, err
		}
		col, err := host.Collect(ctx, dht.CollectRequest{
			Owner: h.Owner(), Me: c.me, Entry: entry,
			Holders: policy.CurrentHolders(page, entry, m.links),
			Level:   dht.Level{PathHash: entry.PathHash, Capsule: capsule},
		}, dht.CollectOptions{})
		if col != nil {
			fk.Nodes = col.Outcomes
		}
		if err != nil {
			lastErr = fmt.Errorf("client: cannot decrypt %s: %w", h.Path(), err)
			collectErr = lastErr
			continue
		}
		delegating, cfrags, err := col.Material()
		if err != nil {
			return fk, err
		}
		key, err := h.UnwrapReencrypted(level, c.keys.Receiving(), delegating, cfrags)
		if err != nil {
			return fk, err
		}
		fk.DataKey, fk.Prefix, fk.M, fk.N = key, h.Path().Prefixes()[level], int(entry.Threshold), int(entry.Shares)
		return fk, nil
	}
	return fk, lastErr
}

// deepestGrant returns the deepest level of hashes (root first) that the
// map lists a live grant for, with its page and entry.
func deepestGrant(m *holderMap, hashes []policy.PathHash) (int, *policy.HolderMap, *policy.MapEntry) {
	now := time.Now()
	for i := len(hashes) - 1; i >= 0; i-- {
		if page, e := m.entry(hashes[i]); e != nil && now.Before(e.ExpiryTime()) {
			return i, page, e
		}
	}
	return -1, nil, nil
}

// Decrypt reads a kadre file from src and writes its plaintext to dst,
// streaming in constant memory. dst may receive the plaintext of
// authenticated chunks before an error: treat it as complete only when
// Decrypt returns nil (the CLI writes to a temporary file and renames it).
func (c *Client) Decrypt(ctx context.Context, dst io.Writer, src io.Reader) (*FileKey, error) {
	fk, err := c.DecryptKey(ctx, src)
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
