package store

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
	"golang.org/x/crypto/chacha20poly1305"
)

// Export format (SPEC.md §6.7):
//
//	header = "kadre-store-export" || version (1 byte) || salt (32 bytes)
//	frame  = kind (1) || length (4, big-endian) || ciphertext
//	end    = frame of kind 0xff whose plaintext is the record count (8)
//
// Every frame is sealed with XChaCha20-Poly1305 under a key derived with
// HKDF-SHA256 from the caller's export key and the whole header (so a fresh
// key per export), nonce = 16 zero bytes || frame index, AD = kind || frame
// index. Reordering, dropping, duplicating or splicing frames, truncation
// and trailing bytes are all detected.
const (
	exportMagic   = "kadre-store-export"
	exportVersion = 1
	exportInfo    = "kadre-store-export-v1 record key"

	exportHeaderLen = len(exportMagic) + 1 + 32

	kindGrant byte = 1
	kindTomb  byte = 2
	kindMark  byte = 3
	kindMap   byte = 4
	kindEnd   byte = 0xff

	// maxFramePlaintext is the largest record plaintext (a pair's holder
	// map with every page and link); longer length fields are refused
	// before anything is allocated.
	maxFramePlaintext = pairLen + 1 + 16 + 32*policy.MapPoints + 2 + policy.MaxMapPages*(2+policy.MaxMapPageSize) + MaxLinks*policy.HandoffSize

	// importBatch records are applied per write transaction. An export
	// that fits in one batch (a hand-off of a few grants) is verified to
	// its end before anything is applied.
	importBatch = 1024
)

func exportAEAD(key *[KeySize]byte, header []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key[:], header, exportInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("failed to derive export key: %w", err)
	}
	return chacha20poly1305.NewX(k)
}

func frameNonceAD(index uint64, kind byte) (nonce [chacha20poly1305.NonceSizeX]byte, ad [9]byte) {
	binary.BigEndian.PutUint64(nonce[16:], index)
	ad[0] = kind
	binary.BigEndian.PutUint64(ad[1:], index)
	return nonce, ad
}

type exportWriter struct {
	w     *bufio.Writer
	aead  cipher.AEAD
	index uint64
	buf   []byte
}

func newExportWriter(w io.Writer, key *[KeySize]byte) (*exportWriter, error) {
	header := make([]byte, 0, exportHeaderLen)
	header = append(header, exportMagic...)
	header = append(header, exportVersion)
	header = header[:exportHeaderLen]
	if _, err := rand.Read(header[len(exportMagic)+1:]); err != nil {
		return nil, fmt.Errorf("failed to generate export salt: %w", err)
	}
	aead, err := exportAEAD(key, header)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(header); err != nil {
		return nil, fmt.Errorf("failed to write export header: %w", err)
	}
	return &exportWriter{w: bw, aead: aead}, nil
}

func (e *exportWriter) frame(kind byte, pt []byte) error {
	nonce, ad := frameNonceAD(e.index, kind)
	e.index++
	e.buf = append(e.buf[:0], kind, 0, 0, 0, 0)
	e.buf = e.aead.Seal(e.buf, nonce[:], pt, ad[:])
	binary.BigEndian.PutUint32(e.buf[1:], uint32(len(e.buf)-5))
	_, err := e.w.Write(e.buf)
	return err
}

func (e *exportWriter) finish() error {
	count := e.index
	if err := e.frame(kindEnd, binary.BigEndian.AppendUint64(nil, count)); err != nil {
		return err
	}
	return e.w.Flush()
}

// exportReader parses and authenticates an export stream frame by frame.
// It never trusts a length or count before authenticating it.
type exportReader struct {
	r     *bufio.Reader
	aead  cipher.AEAD
	index uint64
	done  bool
	buf   []byte
}

func newExportReader(r io.Reader, key *[KeySize]byte) (*exportReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header := make([]byte, exportHeaderLen)
	if _, err := io.ReadFull(br, header); err != nil {
		return nil, ErrBadExport
	}
	if string(header[:len(exportMagic)]) != exportMagic || header[len(exportMagic)] != exportVersion {
		return nil, fmt.Errorf("%w: not a kadre store export of version %d", ErrBadExport, exportVersion)
	}
	aead, err := exportAEAD(key, header)
	if err != nil {
		return nil, err
	}
	return &exportReader{r: br, aead: aead}, nil
}

// next returns the next record's kind and plaintext, or io.EOF after a
// verified end frame followed by the end of the stream.
func (e *exportReader) next() (byte, []byte, error) {
	if e.done {
		return 0, nil, io.EOF
	}
	var hdr [5]byte
	if _, err := io.ReadFull(e.r, hdr[:]); err != nil {
		return 0, nil, ErrBadExport
	}
	kind := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < chacha20poly1305.Overhead || n > maxFramePlaintext+chacha20poly1305.Overhead {
		return 0, nil, ErrBadExport
	}
	if cap(e.buf) < int(n) {
		e.buf = make([]byte, n)
	}
	ct := e.buf[:n]
	if _, err := io.ReadFull(e.r, ct); err != nil {
		return 0, nil, ErrBadExport
	}
	nonce, ad := frameNonceAD(e.index, kind)
	pt, err := e.aead.Open(nil, nonce[:], ct, ad[:])
	if err != nil {
		return 0, nil, ErrBadExport
	}
	if kind == kindEnd {
		if len(pt) != 8 || binary.BigEndian.Uint64(pt) != e.index {
			return 0, nil, ErrBadExport
		}
		if _, err := e.r.ReadByte(); err != io.EOF {
			return 0, nil, ErrBadExport
		}
		e.done = true
		return 0, nil, io.EOF
	}
	e.index++
	return kind, pt, nil
}

// record is one decoded export record.
type record struct {
	kind  byte
	key   []byte // grant, tombstone or mark key as stored
	keys  *entryKeys
	grant storedGrant
	tomb  storedTomb
	mark  storedMark
	hmap  mapValue
}

func decodeRecord(kind byte, pt []byte) (record, bool) {
	r := record{kind: kind}
	var ok bool
	switch kind {
	case kindGrant:
		if len(pt) < grantKeyLen {
			return r, false
		}
		r.key = pt[:grantKeyLen]
		r.keys, _ = keysFromGrantKey(r.key)
		r.grant, ok = decodeGrant(pt[grantKeyLen:])
	case kindTomb:
		if len(pt) < grantKeyLen {
			return r, false
		}
		r.key = pt[:grantKeyLen]
		r.keys, _ = keysFromTombKey(r.key)
		r.tomb, ok = decodeTomb(pt[grantKeyLen:])
	case kindMark:
		if len(pt) < markKeyLen {
			return r, false
		}
		r.key = pt[:markKeyLen]
		r.mark, ok = decodeMark(pt[markKeyLen:])
	case kindMap:
		if len(pt) < pairLen {
			return r, false
		}
		r.key = bytes.Clone(pt[:pairLen])
		r.hmap, ok = decodeMap(pt[pairLen:])
	}
	return r, ok
}

// ExportStats counts exported or imported records.
type ExportStats struct {
	Grants, Tombstones, Seqs, Maps int
	// Skipped counts imported records refused by the store's rules
	// (stale, revoked, expired). Records identical to what is
	// stored count as imported.
	Skipped int
}

// Export writes the grants, tombstones and sequence marks of every (owner,
// path hash) that keep selects (nil selects all) to w, from one consistent
// read transaction. Handing off one grant is Export with a keep that
// selects its owner and path hash.
//
// key authenticates and encrypts the stream; it is not the storage key.
// For a hand-off both nodes derive it from their authenticated channel; for
// a backup keep it as safe as the storage key. Records leave the store
// decrypted and re-sealed under the export key only.
func (s *Store) Export(w io.Writer, key *[KeySize]byte, keep func(owner *[OwnerSize]byte, pathHash *[PathHashSize]byte) bool) (ExportStats, error) {
	var st ExportStats
	ew, err := newExportWriter(w, key)
	if err != nil {
		return st, err
	}
	selected := func(kind byte, k []byte) bool {
		if keep == nil {
			return true
		}
		if kind == kindMap {
			return false // maps are per pair, not per (owner, path hash)
		}
		var o [OwnerSize]byte
		var ph [PathHashSize]byte
		copy(o[:], k)
		if kind == kindGrant {
			copy(ph[:], k[OwnerSize+RecipientSize:])
		} else {
			copy(ph[:], k[OwnerSize:])
		}
		return keep(&o, &ph)
	}
	err = s.view(func(txn *lmdb.Txn) error {
		// Grants first, then tombstones, then marks: importing in this
		// order re-applies every rule without a mark refusing the grant
		// it was raised by.
		for _, d := range []struct {
			kind   byte
			dbi    lmdb.DBI
			name   string
			keyLen int
			count  *int
		}{
			{kind: kindGrant, dbi: s.grants, name: dbGrants, keyLen: grantKeyLen, count: &st.Grants},
			{kind: kindTomb, dbi: s.tombs, name: dbTombs, keyLen: grantKeyLen, count: &st.Tombstones},
			{kind: kindMark, dbi: s.seqs, name: dbSeqs, keyLen: markKeyLen, count: &st.Seqs},
			{kind: kindMap, dbi: s.maps, name: dbMaps, keyLen: pairLen, count: &st.Maps},
		} {
			cur, err := txn.OpenCursor(d.dbi)
			if err != nil {
				return err
			}
			k, v, err := cur.Get(nil, nil, lmdb.First)
			for ; err == nil; k, v, err = cur.Get(nil, nil, lmdb.Next) {
				if len(k) != d.keyLen {
					cur.Close()
					return ErrCorrupt
				}
				if !selected(d.kind, k) {
					continue
				}
				pt, oerr := s.seal.open(d.name, k, v)
				if oerr != nil {
					cur.Close()
					return oerr
				}
				if err := ew.frame(d.kind, append(bytes.Clone(k), pt...)); err != nil {
					cur.Close()
					return fmt.Errorf("failed to write export: %w", err)
				}
				*d.count++
			}
			cur.Close()
			if !lmdb.IsNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("failed to export: %w", err)
	}
	if err := ew.finish(); err != nil {
		return st, fmt.Errorf("failed to write export: %w", err)
	}
	return st, nil
}

// Import reads an export made with the same key and applies it with the
// same rules as PutGrant and Revoke: grants that are stale, revoked,
// expired at now, and tombstones older than what this store
// has seen, are skipped and counted; sequence marks only ever rise. Records
// are applied in transactions of up to 1024; an export no longer than that
// is authenticated to its end before anything is written, a longer one may
// leave a prefix of authenticated, rule-checked records applied when a
// later frame fails (ErrBadExport).
func (s *Store) Import(r io.Reader, key *[KeySize]byte, now time.Time) (ExportStats, error) {
	var st ExportStats
	er, err := newExportReader(r, key)
	if err != nil {
		return st, fmt.Errorf("failed to import: %w", err)
	}
	batch := make([]record, 0, importBatch)
	for {
		kind, pt, err := er.next()
		if err != nil && err != io.EOF {
			return st, fmt.Errorf("failed to import: %w", err)
		}
		if err == nil {
			rec, ok := decodeRecord(kind, pt)
			if !ok {
				return st, fmt.Errorf("failed to import: %w", ErrBadExport)
			}
			// The reader reuses its buffer; re-seal outside the
			// transaction, which may retry.
			rec.grant.record = bytes.Clone(rec.grant.record)
			rec.tomb.record = bytes.Clone(rec.tomb.record)
			batch = append(batch, rec)
			if len(batch) < importBatch {
				continue
			}
		}
		if len(batch) > 0 {
			if err := s.applyBatch(batch, now, &st); err != nil {
				return st, fmt.Errorf("failed to import: %w", err)
			}
			batch = batch[:0]
		}
		if err == io.EOF {
			return st, nil
		}
	}
}

func (s *Store) applyBatch(batch []record, now time.Time, total *ExportStats) error {
	sealed := make([][]byte, len(batch))
	for i := range batch {
		if batch[i].kind == kindGrant {
			sealed[i] = s.seal.seal(dbGrants, batch[i].key, batch[i].grant.encode())
		}
	}
	var st ExportStats
	err := s.update(func(txn *lmdb.Txn) error {
		st = ExportStats{}
		for i := range batch {
			rec := &batch[i]
			var err error
			switch rec.kind {
			case kindGrant:
				g := grantFrom(rec.key, rec.grant)
				if err = s.checkGrant(&g, now); err == nil {
					err = s.putGrantTxn(txn, rec.keys, &rec.grant, sealed[i], now, nil)
				}
				st.Grants++
			case kindTomb:
				_, err = s.revokeTxn(txn, rec.keys, storedTomb{seq: rec.tomb.seq, revokedAt: rec.tomb.revokedAt, record: rec.tomb.record},
					now.Add(s.opts.Retention).Unix(), nil)
				st.Tombstones++
			case kindMark:
				err = s.raiseMark(txn, rec.key, rec.mark, nil)
				st.Seqs++
			case kindMap:
				err = s.importMap(txn, rec.key, &rec.hmap)
				st.Maps++
			}
			if err != nil {
				if !isRuleError(err) {
					return err
				}
				st.Skipped++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	total.Grants += st.Grants
	total.Tombstones += st.Tombstones
	total.Seqs += st.Seqs
	total.Maps += st.Maps
	total.Skipped += st.Skipped
	return nil
}

func isRuleError(err error) bool {
	return errors.Is(err, ErrStale) || errors.Is(err, ErrRevoked) || errors.Is(err, ErrExpired) ||
		errors.Is(err, ErrInvalid)
}

// raiseMark merges a mark (imported, or brought by a hand-off and charged
// to c): the sequence number and retention only rise. Tombstones are
// re-created by their own records.
func (s *Store) raiseMark(txn *lmdb.Txn, mk []byte, in storedMark, c *quota.Charge) error {
	m, found, err := s.getMark(txn, mk)
	if err != nil {
		return err
	}
	if found && m.seq >= in.seq && m.keepUntil >= in.keepUntil {
		return ErrStale
	}
	if !found {
		if err := s.charge(txn, itemMark, mk, mk[:OwnerSize], c, true); err != nil {
			return err
		}
	}
	return s.putMark(txn, mk, m, found, max(in.seq, m.seq), in.keepUntil)
}

// importMap merges an imported map: kept if this store has none of the
// pair or an older sequence.
func (s *Store) importMap(txn *lmdb.Txn, pk []byte, in *mapValue) error {
	old, found, err := s.getMap(txn, pk)
	if err != nil {
		return err
	}
	if found && old.seq >= in.seq {
		return ErrStale
	}
	var oldp *mapValue
	if found {
		oldp = &old
	}
	if err := s.replacePoints(txn, pk, oldp, in.points); err != nil {
		return err
	}
	if err := s.rechargePages(txn, pk, oldp, in, nil); err != nil {
		return err
	}
	return s.putMap(txn, pk, in, oldp)
}
