package testnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// AbuseOptions tune RunAbuse.
type AbuseOptions struct {
	// FloodDuration is how long the flood (and the baseline before it)
	// lasts. Default 3 s.
	FloodDuration time.Duration
	// FloodWorkers is how many request loops the flooding peer runs at
	// once. Default 128.
	FloodWorkers int
	// FloodIdleStreams is how many streams the flooding peer opens and
	// leaves silent during the flood. Default 48.
	FloodIdleStreams int
	// SybilPeers, if > 0, adds a case: that many fresh identities each hold
	// dht.MaxStreamsPerPeer silent streams while bob asks for
	// re-encryptions. Default 0 (off).
	SybilPeers int
	// FloodP99Max is the largest honest p99 during the flood that passes.
	// Default 250 ms.
	FloodP99Max time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Result is one row of the abuse table.
type Result struct {
	Case     string
	Expected string
	Observed string
	Reason   string
	Pass     bool
}

// FloodReport is what the flood case measured.
type FloodReport struct {
	Baseline     Lat            // honest re-encrypt latency without the flood
	During       Lat            // honest re-encrypt latency during the flood
	HonestErrors map[string]int // honest failures during the flood, by outcome
	Attacker     map[string]int // the flooder's outcomes
	IdleStreams  map[string]int // what became of the flooder's silent streams
	Duration     time.Duration
}

// abuser holds the identities, hosts and records of an abuse run.
type abuser struct {
	o       AbuseOptions
	target  peer.ID
	owner   *rekey.Keyring
	ownerK  policy.PublicKey
	bob     policy.Identity
	bobF    *File
	hosts   map[string]*dht.Host
	flooder host.Host
	results []Result
}

func (a *abuser) logf(format string, args ...any) {
	if a.o.Logf != nil {
		a.o.Logf(format, args...)
	}
}

// RunAbuse runs every abuse case against the node at target and returns
// the table (one row per case) and the flood measurements. Each row
// passes when the node refused with the expected code and, right after,
// still served an honest recipient.
func RunAbuse(ctx context.Context, target peer.AddrInfo, o AbuseOptions) ([]Result, *FloodReport, error) {
	if o.FloodDuration == 0 {
		o.FloodDuration = 3 * time.Second
	}
	if o.FloodWorkers == 0 {
		o.FloodWorkers = 128
	}
	if o.FloodIdleStreams == 0 {
		o.FloodIdleStreams = 48
	}
	if o.FloodP99Max == 0 {
		o.FloodP99Max = 250 * time.Millisecond
	}
	a := &abuser{o: o, target: target.ID, hosts: map[string]*dht.Host{}}
	defer func() {
		for _, h := range a.hosts {
			h.Close()
		}
	}()
	a.owner = NewKeyring()
	a.ownerK = policy.IdentityOf(a.owner).IdentityKey
	bob, eve, mallory, flooder := NewKeyring(), NewKeyring(), NewKeyring(), NewKeyring()
	a.bob = policy.IdentityOf(bob)
	var err error
	boot := []peer.AddrInfo{target}
	// The flooder has no resource limits of its own: only the node limits it.
	if a.flooder, err = NewRawHost(ctx, flooder.Identity(), target); err != nil {
		return nil, nil, fmt.Errorf("flooder: %w", err)
	}
	defer a.flooder.Close()
	for name, k := range map[string]*rekey.Keyring{"owner": a.owner, "bob": bob, "eve": eve, "mallory": mallory} {
		h, err := NewClient(ctx, k.Identity(), boot)
		if err != nil {
			return nil, nil, fmt.Errorf("client %s: %w", name, err)
		}
		a.hosts[name] = h
	}

	// Bob holds a 1-of-1 grant of /abuse on the target, and so does the
	// flooder (its requests cost the node real cryptography).
	gBob, err := Grants(a.owner, a.bob, "/abuse", 1, 1, 1, 24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if _, err := a.hosts["owner"].StoreGrant(ctx, a.target, gBob[0]); err != nil {
		return nil, nil, fmt.Errorf("store bob's grant: %w", err)
	}
	if a.bobF, err = EncryptFor(a.owner, a.bob.IdentityKey, "/abuse/file"); err != nil {
		return nil, nil, err
	}
	// One full, verified round trip and decryption first: the setup works.
	cf, err := a.hosts["bob"].Reencrypt(ctx, a.target, a.ownerK, a.bob, a.bobF.Levels)
	if err != nil {
		return nil, nil, fmt.Errorf("honest re-encryption before the abuse: %w", err)
	}
	col := &dht.Collection{CFrags: []*dht.CFrag{cf}}
	key, err := col.Decrypt(bob.Receiving(), a.bobF.Levels[cf.Level].Capsule, a.bobF.Wrapped[cf.Level])
	if err != nil || !bytes.Equal(key, a.bobF.DataKey) {
		return nil, nil, fmt.Errorf("honest decryption before the abuse: %v", err)
	}
	fl := policy.IdentityOf(flooder)
	gFl, err := Grants(a.owner, fl, "/abuse", 1, 1, 1, 24*time.Hour)
	if err != nil {
		return nil, nil, err
	}
	if _, err := a.hosts["owner"].StoreGrant(ctx, a.target, gFl[0]); err != nil {
		return nil, nil, fmt.Errorf("store the flooder's grant: %w", err)
	}
	flF, err := EncryptFor(a.owner, fl.IdentityKey, "/abuse/file")
	if err != nil {
		return nil, nil, err
	}

	a.frames(ctx)
	a.points(ctx)
	if err := a.authorization(ctx, mallory); err != nil {
		return a.results, nil, err
	}
	if err := a.batches(ctx); err != nil {
		return a.results, nil, err
	}
	fr := a.flood(ctx, flF)
	return a.results, fr, nil
}

// honest reports whether bob is still served (one re-encryption, no
// client-side verification), with the reason when not.
func (a *abuser) honest(ctx context.Context) (bool, string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := Call(cctx, a.hosts["bob"].Libp2p(), a.target, ReencryptRequest(a.ownerK, a.bobF.Levels))
	if o := Outcome(resp, err); o != "ok" {
		if err != nil {
			return false, fmt.Sprintf("honest client failed afterwards: %s: %v", o, err)
		}
		return false, fmt.Sprintf("honest client refused afterwards: %s: %s", o, resp.GetError().GetReason())
	}
	return true, ""
}

// record adds a row: the answer's code against the expected one, then the
// honest check.
func (a *abuser) record(ctx context.Context, name, expected string, resp *proto.Envelope, err error) {
	obs := Outcome(resp, err)
	reason := ""
	if err != nil {
		reason = err.Error()
	} else if e := resp.GetError(); e != nil {
		reason = e.GetReason()
	}
	a.row(ctx, name, expected, obs, reason, obs == expected)
}

func (a *abuser) row(ctx context.Context, name, expected, observed, reason string, pass bool) {
	if ok, why := a.honest(ctx); !ok {
		pass = false
		reason = strings.TrimSpace(reason + "; " + why)
	}
	a.logf("%-58s expected %-20s observed %-20s %v", name, expected, observed, pass)
	a.results = append(a.results, Result{Case: name, Expected: expected, Observed: observed, Reason: reason, Pass: pass})
}

func (a *abuser) call(ctx context.Context, host string, env *proto.Envelope) (*proto.Envelope, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return Call(cctx, a.hosts[host].Libp2p(), a.target, env)
}

func (a *abuser) raw(ctx context.Context, b []byte) (*proto.Envelope, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return CallRaw(cctx, a.hosts["mallory"].Libp2p(), a.target, b)
}

func frame(body []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(body))), body...)
}

func nodeInfoReq() *proto.Envelope {
	return proto.Request(RequestID(), &proto.Envelope_NodeInfo{NodeInfo: &proto.NodeInfoRequest{}})
}

// frames: size limits, decoding, types, versions.
func (a *abuser) frames(ctx context.Context) {
	big := protowire.AppendVarint(nil, proto.MaxFrameSize+1)
	big = append(big, make([]byte, 4096)...)
	resp, err := a.raw(ctx, big)
	a.record(ctx, fmt.Sprintf("oversized frame (announces %d bytes)", proto.MaxFrameSize+1), "TOO_LARGE", resp, err)

	huge := protowire.AppendVarint(nil, 1<<62)
	resp, err = a.raw(ctx, huge)
	a.record(ctx, "oversized frame (announces 2^62 bytes)", "TOO_LARGE", resp, err)

	// A frame larger than the limit that the client really sends.
	resp, err = a.raw(ctx, frame(bytes.Repeat([]byte{0x0a}, proto.MaxFrameSize+512)))
	a.record(ctx, fmt.Sprintf("oversized frame (%d bytes sent)", proto.MaxFrameSize+512), "TOO_LARGE", resp, err)

	resp, err = a.raw(ctx, append(protowire.AppendVarint(nil, 100), make([]byte, 10)...))
	a.record(ctx, "truncated frame (announces 100, sends 10)", "MALFORMED", resp, err)

	resp, err = a.raw(ctx, frame([]byte{0xff, 0xff, 0xff, 0xff}))
	a.record(ctx, "malformed protobuf (bad tag varint)", "MALFORMED", resp, err)

	resp, err = a.raw(ctx, frame([]byte{0x08, 0x01, 0x10, 0x07, 0x92, 0x01, 0x05, 0x01}))
	a.record(ctx, "malformed protobuf (length past the end)", "MALFORMED", resp, err)

	// This version, request id 7, field 30 (not in the schema), empty bytes.
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, proto.ProtocolVersion)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 30, protowire.BytesType)
	b = protowire.AppendBytes(b, nil)
	resp, err = a.raw(ctx, frame(b))
	a.record(ctx, "unknown message type (envelope field 30)", "UNKNOWN_TYPE", resp, err)

	resp, err = a.call(ctx, "mallory", proto.Request(RequestID(), &proto.Envelope_NodeInfoResponse{NodeInfoResponse: &proto.NodeInfoResponse{}}))
	a.record(ctx, "a response type sent as a request", "UNKNOWN_TYPE", resp, err)

	env := nodeInfoReq()
	env.Version = proto.ProtocolVersion + 1
	resp, err = a.call(ctx, "mallory", env)
	a.record(ctx, fmt.Sprintf("wrong protocol version (%d)", env.Version), "UNSUPPORTED_VERSION", resp, err)
	env = nodeInfoReq()
	env.Version = proto.ProtocolVersion - 1
	resp, err = a.call(ctx, "mallory", env)
	a.record(ctx, fmt.Sprintf("old protocol version (%d)", env.Version), "UNSUPPORTED_VERSION", resp, err)

	env = nodeInfoReq()
	env.Version = 0
	resp, err = a.call(ctx, "mallory", env)
	a.record(ctx, "no protocol version (0)", "UNSUPPORTED_VERSION", resp, err)

	// A node-info request with an unknown field inside its body.
	b = protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, proto.ProtocolVersion)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 8)
	inner := protowire.AppendTag(nil, 9, protowire.VarintType)
	inner = protowire.AppendVarint(inner, 1)
	b = protowire.AppendTag(b, 22, protowire.BytesType)
	b = protowire.AppendBytes(b, inner)
	resp, err = a.raw(ctx, frame(b))
	a.record(ctx, "unknown field inside a request body", "MALFORMED", resp, err)

	req := ReencryptRequest(a.ownerK, a.bobF.Levels)
	lv := req.GetReencrypt().Levels[0]
	for i := len(req.GetReencrypt().Levels); i <= proto.MaxLevels; i++ {
		ph := sha256.Sum256(fmt.Appendf(nil, "level %d", i))
		req.GetReencrypt().Levels = append(req.GetReencrypt().Levels, &proto.Level{PathHash: ph[:], Capsule: lv.Capsule})
	}
	resp, err = a.call(ctx, "bob", req)
	a.record(ctx, fmt.Sprintf("re-encrypt request with %d levels", proto.MaxLevels+1), "MALFORMED", resp, err)
}

// offCurve returns a 33-byte 02‖x encoding whose x is not on secp256k1.
func offCurve() []byte {
	b := make([]byte, 33)
	b[0] = 2
	for x := 1; x < 1000; x++ {
		b[32] = byte(x)
		b[31] = byte(x >> 8)
		if _, err := rekey.ParsePublicKey(b); err != nil {
			return b
		}
	}
	panic("no off-curve x below 1000")
}

// Offsets in a version 1 grant body (policy.Grant.BodyBytes).
const (
	offReceiving  = 5 + 33 + 33
	offDelegating = 5 + 33 + 33 + 33 + 32
	offKFragHash  = policy.GrantBodySize - 32
)

// resign re-signs a grant's body as the owner after the test changed it,
// so that the node's refusal is about the change, not the signature.
func resign(owner *rekey.Keyring, grant []byte) []byte {
	g := append([]byte(nil), grant...)
	kf := g[policy.PublicGrantSize+2:]
	h := sha256.Sum256(kf)
	copy(g[offKFragHash:], h[:])
	d := sha256.New()
	d.Write([]byte(policy.LabelGrant))
	d.Write(g[:policy.GrantBodySize])
	sig, err := policy.IdentitySigner(owner).Sign(d.Sum(nil))
	if err != nil {
		panic(err) // a keyring always has an identity signer
	}
	copy(g[policy.GrantBodySize:policy.PublicGrantSize], sig.Bytes())
	return g
}

func storeReq(grant []byte) *proto.Envelope {
	return proto.Request(RequestID(), &proto.Envelope_StoreGrant{StoreGrant: &proto.StoreGrantRequest{Grant: grant}})
}

// points: points not on the curve and identity encodings in capsules,
// keys and kfrags.
func (a *abuser) points(ctx context.Context) {
	bad := offCurve()
	ident := make([]byte, 33)
	served := 1 // /abuse/file: levels /, /abuse, /abuse/file; the grant is on /abuse

	withCapsule := func(mut func(c []byte)) *proto.Envelope {
		req := ReencryptRequest(a.ownerK, a.bobF.Levels)
		c := append([]byte(nil), req.GetReencrypt().Levels[served].Capsule...)
		mut(c)
		req.GetReencrypt().Levels[served].Capsule = c
		return req
	}
	// Capsule: fixarray(3) ‖ c4 21 E ‖ c4 21 V ‖ c4 20 s.
	resp, err := a.call(ctx, "bob", withCapsule(func(c []byte) { copy(c[3:36], bad) }))
	a.record(ctx, "capsule point E not on the curve", "MALFORMED", resp, err)
	resp, err = a.call(ctx, "bob", withCapsule(func(c []byte) { copy(c[38:71], ident) }))
	a.record(ctx, "capsule point V is the identity (00…00)", "MALFORMED", resp, err)
	resp, err = a.call(ctx, "bob", withCapsule(func(c []byte) { c[40] ^= 1 }))
	a.record(ctx, "capsule fails its self-check (V changed)", "MALFORMED", resp, err)

	req := ReencryptRequest(a.ownerK, a.bobF.Levels)
	req.GetReencrypt().Owner = bad
	resp, err = a.call(ctx, "bob", req)
	a.record(ctx, "re-encrypt request: owner key not on the curve", "MALFORMED", resp, err)
	req.GetReencrypt().Owner = ident
	resp, err = a.call(ctx, "bob", req)
	a.record(ctx, "re-encrypt request: owner key is the identity", "MALFORMED", resp, err)

	// Grants signed by their owner whose keys are not points.
	gs, err := Grants(a.owner, a.bob, "/abuse/points", 1, 1, 1, time.Hour)
	if err != nil {
		a.row(ctx, "grant with bad points (setup)", "-", "error", err.Error(), false)
		return
	}
	g := gs[0].Bytes()
	m := append([]byte(nil), g...)
	copy(m[offDelegating:], bad)
	resp, err = a.call(ctx, "owner", storeReq(resign(a.owner, m)))
	a.record(ctx, "grant (owner-signed): delegating key not on the curve", "MALFORMED", resp, err)
	m = append([]byte(nil), g...)
	copy(m[offReceiving:], ident)
	resp, err = a.call(ctx, "owner", storeReq(resign(a.owner, m)))
	a.record(ctx, "grant (owner-signed): receiving key is the identity", "MALFORMED", resp, err)
	// The kfrag's first 33-byte point (after c4 21).
	m = append([]byte(nil), g...)
	kf := m[policy.PublicGrantSize+2:]
	if i := bytes.Index(kf, []byte{0xc4, 0x21}); i >= 0 {
		copy(kf[i+2:], bad)
		resp, err = a.call(ctx, "owner", storeReq(resign(a.owner, m)))
		a.record(ctx, "grant (owner-signed): kfrag point not on the curve", "BAD_KFRAG", resp, err)
	} else {
		a.row(ctx, "grant (owner-signed): kfrag point not on the curve", "BAD_KFRAG", "setup", "no point in the kfrag", false)
	}
	// A kfrag scalar changed: it parses, but does not verify.
	m = append([]byte(nil), g...)
	kf = m[policy.PublicGrantSize+2:]
	if i := bytes.Index(kf, []byte{0xc4, 0x20}); i >= 0 {
		kf[i+10] ^= 1
	}
	resp, err = a.call(ctx, "owner", storeReq(resign(a.owner, m)))
	a.record(ctx, "grant (owner-signed): kfrag that does not verify", "BAD_KFRAG", resp, err)
	// Signed by the owner, but the kfrag is not the one the body commits to.
	m = append([]byte(nil), g...)
	m[len(m)-5] ^= 1
	resp, err = a.call(ctx, "owner", storeReq(m))
	a.record(ctx, "grant: kfrag does not match its signed hash", "BAD_KFRAG", resp, err)
}

// authorization: forged grants and revocations, replays, requests from
// someone other than the recipient.
func (a *abuser) authorization(ctx context.Context, mallory *rekey.Keyring) error {
	owner := a.hosts["owner"]
	// A grant for the owner's namespace signed by mallory.
	gs, err := Grants(a.owner, a.bob, "/abuse/forged", 1, 1, 1, time.Hour)
	if err != nil {
		return err
	}
	forged := gs[0].Bytes()
	d := sha256.New()
	d.Write([]byte(policy.LabelGrant))
	d.Write(forged[:policy.GrantBodySize])
	sig, err := policy.IdentitySigner(mallory).Sign(d.Sum(nil))
	if err != nil {
		return err
	}
	copy(forged[policy.GrantBodySize:policy.PublicGrantSize], sig.Bytes())
	resp, err := a.call(ctx, "mallory", storeReq(forged))
	a.record(ctx, "grant for the owner's namespace sent by someone else", "UNAUTHORIZED", resp, err)
	resp, err = a.call(ctx, "owner", storeReq(forged))
	a.record(ctx, "grant from the owner's host signed by someone else", "BAD_SIGNATURE", resp, err)

	// Replay after revocation.
	gs, err = Grants(a.owner, a.bob, "/abuse/replay", 1, 1, 1, time.Hour)
	if err != nil {
		return err
	}
	if _, err := owner.StoreGrant(ctx, a.target, gs[0]); err != nil {
		return fmt.Errorf("store the grant to revoke: %w", err)
	}
	rev := &policy.Revocation{Owner: a.ownerK, Recipient: a.bob.IdentityKey, PathHash: gs[0].PathHash, Sequence: 2, IssuedAt: uint64(time.Now().Unix())}
	if err := rev.Sign(policy.IdentitySigner(a.owner)); err != nil {
		return err
	}
	rc, err := owner.Revoke(ctx, a.target, rev)
	if err != nil || rc.Kind != policy.ReceiptRevoked {
		a.row(ctx, "revocation by the owner (setup of the replay)", "ok", fmt.Sprint(err), "", false)
	}
	resp, err = a.call(ctx, "mallory", storeReq(gs[0].Bytes()))
	a.record(ctx, "revoked grant replayed by a stranger", "UNAUTHORIZED", resp, err)
	resp, err = a.call(ctx, "owner", storeReq(gs[0].Bytes()))
	a.record(ctx, "revoked grant replayed by the owner's host", "REVOKED", resp, err)
	replayF, err := EncryptFor(a.owner, a.bob.IdentityKey, "/abuse/replay/file")
	if err != nil {
		return err
	}
	resp, err = a.call(ctx, "bob", ReencryptRequest(a.ownerK, replayF.Levels[2:3]))
	a.record(ctx, "re-encryption under the revoked grant", "REVOKED", resp, err)
	// An older revocation (replayed) is stale.
	old := *rev
	old.Sequence = 1
	if err := old.Sign(policy.IdentitySigner(a.owner)); err != nil {
		return err
	}
	resp, err = a.call(ctx, "mallory", proto.Request(RequestID(), &proto.Envelope_Revoke{Revoke: &proto.RevokeRequest{Revocation: old.Bytes()}}))
	a.record(ctx, "revocation older than the tombstone (replay)", "STALE_SEQUENCE", resp, err)

	// Revocation of bob's /abuse grant signed by mallory, naming the owner.
	forgedRev := &policy.Revocation{Owner: policy.IdentityOf(mallory).IdentityKey, Recipient: a.bob.IdentityKey,
		PathHash: a.bobF.Levels[1].PathHash, Sequence: 9, IssuedAt: uint64(time.Now().Unix())}
	if err := forgedRev.Sign(policy.IdentitySigner(mallory)); err != nil {
		return err
	}
	forgedRev.Owner = a.ownerK
	resp, err = a.call(ctx, "mallory", proto.Request(RequestID(), &proto.Envelope_Revoke{Revoke: &proto.RevokeRequest{Revocation: forgedRev.Bytes()}}))
	a.record(ctx, "revocation of bob's grant signed by someone else", "BAD_SIGNATURE", resp, err)
	// Mallory revoking "the same" path hash in her own namespace is
	// accepted (not held) and changes nothing for the owner's grant.
	own := &policy.Revocation{Owner: policy.IdentityOf(mallory).IdentityKey, Recipient: a.bob.IdentityKey,
		PathHash: a.bobF.Levels[1].PathHash, Sequence: 9, IssuedAt: uint64(time.Now().Unix())}
	if err := own.Sign(policy.IdentitySigner(mallory)); err != nil {
		return err
	}
	rc, err = a.hosts["mallory"].Revoke(ctx, a.target, own)
	obs := "error"
	if err == nil {
		obs = "ok:" + rc.Kind.String()
	} else {
		obs = Outcome(nil, err)
	}
	a.row(ctx, "revocation of bob's path hash in mallory's own namespace", "ok:"+policy.ReceiptRevokedNotHeld.String(), obs, fmt.Sprint(err), err == nil && rc.Kind == policy.ReceiptRevokedNotHeld)

	// Eve sends bob's exact request.
	resp, err = a.call(ctx, "eve", ReencryptRequest(a.ownerK, a.bobF.Levels))
	a.record(ctx, "re-encryption asked by someone other than the recipient", "NOT_GRANTED", resp, err)
	return nil
}

// flood measures bob's latency without and then during a flood from one
// peer: FloodWorkers concurrent request loops, each a new stream per
// request. Then it holds FloodIdleStreams silent streams open (slowloris)
// and checks that the node caps them at dht.MaxStreamsPerPeer while bob is
// still served.
func (a *abuser) flood(ctx context.Context, flF *File) *FloodReport {
	fr := &FloodReport{HonestErrors: map[string]int{}, Attacker: map[string]int{}, IdleStreams: map[string]int{}, Duration: a.o.FloodDuration}
	samples := map[string]string{}
	// Bob is an honest client: 100 requests a second, half the node's
	// default per-peer rate.
	measure := func(until time.Time, errs map[string]int) Lat {
		var l Lat
		next := time.Now()
		for n := 0; time.Now().Before(until) && n < 1_000_000; n++ {
			next = next.Add(10 * time.Millisecond)
			time.Sleep(time.Until(next))
			start := time.Now()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := Call(cctx, a.hosts["bob"].Libp2p(), a.target, ReencryptRequest(a.ownerK, a.bobF.Levels))
			cancel()
			if o := Outcome(resp, err); o != "ok" {
				errs[o]++
				continue
			}
			l = append(l, time.Since(start))
		}
		return l
	}
	fr.Baseline = measure(time.Now().Add(a.o.FloodDuration), map[string]int{})

	fh := a.flooder
	stop := time.Now().Add(a.o.FloodDuration)
	var mu sync.Mutex
	var wg sync.WaitGroup
	req := ReencryptRequest(a.ownerK, flF.Levels)
	for range a.o.FloodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for n := 0; time.Now().Before(stop) && n < 1_000_000; n++ {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				resp, err := Call(cctx, fh, a.target, req)
				cancel()
				o := Outcome(resp, err)
				local[o]++
				if o == "error" && err != nil {
					mu.Lock()
					samples[o] = err.Error()
					mu.Unlock()
				}
			}
			mu.Lock()
			for k, v := range local {
				fr.Attacker[k] += v
			}
			mu.Unlock()
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the flood build up
	fr.During = measure(stop, fr.HonestErrors)
	wg.Wait()

	refused := 0
	for k, v := range fr.Attacker {
		if k != "ok" {
			refused += v
		}
	}
	herr := 0
	for _, v := range fr.HonestErrors {
		herr += v
	}
	p99 := fr.During.Pct(99)
	pass := refused > 0 && fr.Attacker["RATE_LIMITED"] > 0 && herr == 0 && len(fr.During) > 0 && p99 <= a.o.FloodP99Max
	reason := fmt.Sprintf("honest p50/p99 %s/%s without, %s/%s during (bound %s), honest errors %d %s",
		Ms(fr.Baseline.Pct(50)), Ms(fr.Baseline.Pct(99)), Ms(fr.During.Pct(50)), Ms(p99), Ms(a.o.FloodP99Max), herr, summarize(fr.HonestErrors))
	if e, ok := samples["error"]; ok {
		reason += "; an attacker error: " + e
	}
	a.row(ctx, fmt.Sprintf("request flood from one peer (%d loops, %s)", a.o.FloodWorkers, a.o.FloodDuration),
		"RATE_LIMITED+resets", summarize(fr.Attacker), reason, pass)

	// Silent streams: one byte of a length prefix, so that the protocol is
	// negotiated and the node's handler waits for the rest until its
	// deadline. The node must cap them per peer and keep serving bob.
	var idle []network.Stream
	for range a.o.FloodIdleStreams {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := fh.NewStream(cctx, a.target, dht.RPCProtocol)
		cancel()
		if err == nil {
			_, err = s.Write([]byte{0x80})
		}
		if err != nil {
			fr.IdleStreams["open failed: "+Outcome(nil, err)]++
			continue
		}
		idle = append(idle, s)
	}
	herrs := map[string]int{}
	held := measure(time.Now().Add(a.o.FloodDuration/2), herrs)
	// What happened to the silent streams: a read tells whether the node
	// reset them or still holds them.
	for _, s := range idle {
		s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := s.Read(make([]byte, 1))
		var se *network.StreamError
		switch {
		case errors.As(err, &se):
			fr.IdleStreams[fmt.Sprintf("reset(0x%x)", uint32(se.ErrorCode))]++
		case errors.Is(err, network.ErrReset):
			fr.IdleStreams["reset"]++
		case isTimeout(err):
			fr.IdleStreams["held"]++
		default:
			fr.IdleStreams[fmt.Sprint(err)]++
		}
		s.Reset()
	}
	herr = 0
	for _, v := range herrs {
		herr += v
	}
	want := a.o.FloodIdleStreams - dht.MaxStreamsPerPeer
	pass = fr.IdleStreams["held"] <= dht.MaxStreamsPerPeer && fr.IdleStreams["reset(0x1002)"] >= want && herr == 0 && len(held) > 0
	a.row(ctx, fmt.Sprintf("%d silent streams from one peer (limit %d)", a.o.FloodIdleStreams, dht.MaxStreamsPerPeer),
		fmt.Sprintf("≤%d held, rest reset(0x1002)", dht.MaxStreamsPerPeer), summarize(fr.IdleStreams),
		fmt.Sprintf("honest %s while held, honest errors %d %s", held.Summary(), herr, summarize(herrs)), pass)
	if a.o.SybilPeers > 0 {
		a.sybils(ctx, measure)
	}
	return fr
}

// sybils: many fresh identities, each within its own per-peer stream
// limit, hold silent streams together; bob must still be served.
func (a *abuser) sybils(ctx context.Context, measure func(time.Time, map[string]int) Lat) {
	var hosts []host.Host
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	outcomes := map[string]int{}
	var streams []network.Stream
	var mu sync.Mutex
	var wg sync.WaitGroup
	addrs := a.hosts["bob"].Libp2p().Peerstore().Addrs(a.target)
	// Connect every identity first, then open all streams at once, so
	// that they are held together (the node resets a silent stream after
	// its request deadline). They connect from a network of their own
	// (127.0.65.0/24): the node also bounds the streams of one network
	// (dht.MaxStreamsPerGroup), and bob's is another.
	for range a.o.SybilPeers {
		h, err := NewRawHostFrom(ctx, rekey.GenerateSecretKey(), "127.0.65.1", peer.AddrInfo{ID: a.target, Addrs: addrs})
		if err != nil {
			outcomes["connect failed"]++
			continue
		}
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		for range dht.MaxStreamsPerPeer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				s, err := h.NewStream(cctx, a.target, dht.RPCProtocol)
				cancel()
				if err == nil {
					_, err = s.Write([]byte{0x80})
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					outcomes["open failed"]++
					return
				}
				streams = append(streams, s)
			}()
		}
	}
	wg.Wait()
	// A newcomer (not yet connected) asks for node info meanwhile.
	newcomer := "ok"
	if h, err := NewRawHost(ctx, rekey.GenerateSecretKey(), peer.AddrInfo{ID: a.target, Addrs: addrs}); err != nil {
		newcomer = "cannot connect: " + err.Error()
		if len(newcomer) > 200 {
			newcomer = newcomer[:200] + "…"
		}
	} else {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := Call(cctx, h, a.target, nodeInfoReq())
		cancel()
		newcomer = Outcome(resp, err)
		h.Close()
	}
	herrs := map[string]int{}
	held := measure(time.Now().Add(a.o.FloodDuration/2), herrs)
	for _, s := range streams {
		s.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		_, err := s.Read(make([]byte, 1))
		var se *network.StreamError
		switch {
		case errors.As(err, &se):
			outcomes[fmt.Sprintf("reset(0x%x)", uint32(se.ErrorCode))]++
		case isTimeout(err):
			outcomes["held"]++
		default:
			outcomes["other"]++
		}
		s.Reset()
	}
	herr := 0
	for _, v := range herrs {
		herr += v
	}
	a.row(ctx, fmt.Sprintf("%d peers × %d silent streams", a.o.SybilPeers, dht.MaxStreamsPerPeer),
		"bob and a newcomer served", summarize(outcomes),
		fmt.Sprintf("honest %s while held, honest errors %d %s; a newcomer's node info: %s", held.Summary(), herr, summarize(herrs), newcomer), herr == 0 && len(held) > 0 && newcomer == "ok")
}

// summarize prints a count map in a stable order.
func summarize(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// Summarize prints a count map in a stable order.
func Summarize(m map[string]int) string { return summarize(m) }
