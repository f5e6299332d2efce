package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// Writers (SPEC.md §3.4.10, §7): an owner lets someone else write files
// under a prefix by signing a writer certificate for the writer's
// identity key; it carries the prefix's public keys, so the writer needs
// no secret of hers. Readers check each file's certificate against the
// owner's signature and her holder maps' list of revoked writers.

// AddWriter issues a certificate that lets writer write files under
// prefix, for the prefix's current key epochs, and records it in the
// ledger. It needs no network: hand the certificate's String to the
// writer.
func (c *Client) AddWriter(writer policy.Identity, prefix policy.Path) (*policy.WriterCert, error) {
	var cert *policy.WriterCert
	err := c.ledger.update(func(doc *ledgerDoc) error {
		if doc.writerRevoked(writer.IdentityKey) {
			return fmt.Errorf("%w: %s was revoked; revoked writers stay revoked (their old files included)", ErrWriterRevoked, writer)
		}
		var err error
		cert, err = c.writerCert(doc, writer.IdentityKey, prefix)
		if err != nil {
			return err
		}
		doc.Writers = append(doc.Writers, &WriterRecord{Writer: writer.String(), Prefix: prefix.String(),
			Cert: cert.String(), Issued: time.Now().UTC()})
		return nil
	})
	return cert, err
}

// writerCert signs a certificate for the ledger's current epochs.
func (c *Client) writerCert(doc *ledgerDoc, writer policy.PublicKey, prefix policy.Path) (*policy.WriterCert, error) {
	cert := &policy.WriterCert{Writer: writer, IssuedAt: uint64(time.Now().Unix()), Prefix: prefix}
	for _, l := range kfile.OwnerLevels(c.keys, prefix, func(p policy.Path) uint32 { return doc.epoch(p.String()) }) {
		cert.Levels = append(cert.Levels, policy.WriterLevel{Epoch: l.Epoch, DelegatingKey: policy.PublicKeyOf(l.Key)})
	}
	if err := cert.Sign(policy.IdentitySigner(c.keys)); err != nil {
		return nil, err
	}
	return cert, nil
}

// Writers lists the writer certificates the ledger records, with whether
// each writer is revoked.
func (c *Client) Writers() ([]WriterStatus, error) {
	doc, err := c.ledger.read()
	if err != nil {
		return nil, err
	}
	var out []WriterStatus
	for _, w := range doc.Writers {
		id, err := policy.ParseIdentity(w.Writer)
		if err != nil {
			return nil, err
		}
		out = append(out, WriterStatus{WriterRecord: w, Revoked: doc.writerRevoked(id.IdentityKey)})
	}
	return out, nil
}

// WriterStatus is a writer certificate and whether its writer is revoked.
type WriterStatus struct {
	*WriterRecord
	Revoked bool `json:"revoked"`
}

// RevokeWriterResult is what revoking a writer achieved.
type RevokeWriterResult struct {
	// Maps counts the recipients whose holder maps now list the writer
	// as revoked; Failed names those whose map could not be stored.
	Maps   int
	Failed map[string]error
}

// RevokeWriter revokes every certificate of writer: readers refuse his
// files from now on, old ones included (nothing tells a file written
// before the revocation from one written after, SPEC.md §5.7). The ledger
// records it and the holder map of every recipient with a live grant is
// republished with the writer listed.
func (c *Client) RevokeWriter(ctx context.Context, writer policy.Identity) (*RevokeWriterResult, error) {
	var recipients []string
	err := c.ledger.update(func(doc *ledgerDoc) error {
		if !doc.writerRevoked(writer.IdentityKey) {
			if len(doc.RevokedWriters) >= policy.MaxRevokedWriters {
				return fmt.Errorf("client: %d writers are revoked already, the most a holder map lists", len(doc.RevokedWriters))
			}
			doc.RevokedWriters = append(doc.RevokedWriters, writer.IdentityKey.String())
			slices.Sort(doc.RevokedWriters)
		}
		now := time.Now()
		seen := map[string]bool{}
		for _, g := range doc.Grants {
			if g.Live(now) && !seen[g.Recipient] {
				seen[g.Recipient] = true
				recipients = append(recipients, g.Recipient)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := &RevokeWriterResult{Failed: map[string]error{}}
	for _, r := range recipients {
		id, err := policy.ParseIdentity(r)
		if err != nil {
			res.Failed[r] = err
			continue
		}
		if _, err := c.publishMap(ctx, id, nil, nil, nil); err != nil {
			res.Failed[r] = err
			continue
		}
		res.Maps++
	}
	return res, nil
}

// reissueWriters replaces the certificates of writers at or under prefix
// (whose levels include prefix) by certificates for the current epochs,
// after a rotation of prefix; it returns the new ones.
func (c *Client) reissueWriters(doc *ledgerDoc, prefix policy.Path) ([]*policy.WriterCert, error) {
	var out []*policy.WriterCert
	var add []*WriterRecord
	for _, w := range doc.Writers {
		wp, err := policy.NormalizePath(w.Prefix)
		if err != nil || w.Superseded || !wp.HasPrefix(prefix) {
			continue
		}
		id, err := policy.ParseIdentity(w.Writer)
		if err != nil || doc.writerRevoked(id.IdentityKey) {
			continue
		}
		cert, err := c.writerCert(doc, id.IdentityKey, wp)
		if err != nil {
			return nil, err
		}
		w.Superseded = true
		add = append(add, &WriterRecord{Writer: w.Writer, Prefix: w.Prefix, Cert: cert.String(), Issued: time.Now().UTC()})
		out = append(out, cert)
	}
	doc.Writers = append(doc.Writers, add...)
	return out, nil
}
