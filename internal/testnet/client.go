package testnet

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
)

// NewKeyring returns a user keyring from a fresh random seed.
func NewKeyring() *rekey.Keyring {
	seed := make([]byte, 32)
	rand.Read(seed)
	k, err := rekey.NewKeyring(seed)
	if err != nil {
		panic(err) // a 32-byte seed always derives
	}
	return k
}

// NewClient starts a light client (DHT client mode) with the given
// identity and connects it to boot.
func NewClient(ctx context.Context, id *rekey.SecretKey, boot []peer.AddrInfo) (*dht.Host, error) {
	h, err := dht.New(ctx, dht.Config{Identity: id, Bootstrap: boot, QueryTimeout: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := h.Bootstrap(bctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// NewRawHost starts a bare libp2p host (TCP, Noise, yamux, like kadre's)
// with the given identity, no DHT and no resource limits of its own, and
// connects it to p: a client that only the node under test limits.
func NewRawHost(ctx context.Context, id *rekey.SecretKey, p peer.AddrInfo) (host.Host, error) {
	k, err := crypto.UnmarshalSecp256k1PrivateKey(id.Bytes())
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Connect(cctx, p); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// NewRawHostFrom is NewRawHost dialling from ip (a loopback address of its
// own: SO_REUSEPORT binds the dial to the listen address), connected to
// every one of ps: an attacker on a network of its own.
func NewRawHostFrom(ctx context.Context, id *rekey.SecretKey, ip string, ps ...peer.AddrInfo) (host.Host, error) {
	k, err := crypto.UnmarshalSecp256k1PrivateKey(id.Bytes())
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
	)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := h.Connect(cctx, p)
		cancel()
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// File is what a kadre file header carries for one recipient: for every
// prefix of the path, a capsule wrapping the data key to that prefix's key.
type File struct {
	Path    policy.Path
	Levels  []dht.Level
	Wrapped [][]byte
	DataKey []byte
}

// EncryptFor makes the capsules of a file at path for recipient.
func EncryptFor(owner *rekey.Keyring, recipient policy.PublicKey, path string) (*File, error) {
	p, err := policy.NormalizePath(path)
	if err != nil {
		return nil, err
	}
	pair, err := policy.OwnerPairKey(owner, recipient)
	if err != nil {
		return nil, err
	}
	f := &File{Path: p, DataKey: make([]byte, 32)}
	rand.Read(f.DataKey)
	for _, prefix := range p.Prefixes() {
		c, ct, err := rekey.Encrypt(policy.DelegatingKey(owner, prefix, 0).PublicKey(), f.DataKey)
		if err != nil {
			return nil, err
		}
		f.Levels = append(f.Levels, dht.Level{PathHash: pair.PathHash(prefix, 0), Capsule: c})
		f.Wrapped = append(f.Wrapped, ct)
	}
	return f, nil
}

// Grants makes owner's m-of-n grants of prefix to recipient, valid for d.
func Grants(owner *rekey.Keyring, recipient policy.Identity, prefix string, m, n int, seq uint64, d time.Duration) ([]*policy.Grant, error) {
	p, err := policy.NormalizePath(prefix)
	if err != nil {
		return nil, err
	}
	return policy.NewGrants(owner, policy.GrantParams{Recipient: recipient, Prefix: p,
		Threshold: uint8(m), Shares: uint8(n), Sequence: seq, Expiry: uint64(time.Now().Add(d).Unix())})
}

// ReencryptRequest builds the request envelope a recipient sends.
func ReencryptRequest(owner policy.PublicKey, levels []dht.Level) *proto.Envelope {
	req := &proto.ReencryptRequest{Owner: owner[:]}
	for _, l := range levels {
		req.Levels = append(req.Levels, &proto.Level{PathHash: l.PathHash[:], Capsule: l.Capsule.Bytes()})
	}
	return proto.Request(RequestID(), &proto.Envelope_Reencrypt{Reencrypt: req})
}

// RequestID returns a random request id.
func RequestID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// Call sends env on a new RPC stream to p and returns the decoded answer
// without validating it (an Error answer is returned as the envelope, not
// as an error). The client does no cryptography, so a load run measures
// the node, not the client's verification.
func Call(ctx context.Context, h host.Host, p peer.ID, env *proto.Envelope) (*proto.Envelope, error) {
	s, err := openStream(ctx, h, p)
	if err != nil {
		return nil, err
	}
	if err := proto.WriteFrame(s, env); err != nil {
		s.Reset()
		return nil, err
	}
	return finish(s)
}

// CallRaw writes raw bytes (anything, framed or not) on a new RPC stream,
// closes the write side and returns the decoded answer.
func CallRaw(ctx context.Context, h host.Host, p peer.ID, raw []byte) (*proto.Envelope, error) {
	s, err := openStream(ctx, h, p)
	if err != nil {
		return nil, err
	}
	if _, err := s.Write(raw); err != nil {
		s.Reset()
		return nil, fmt.Errorf("write: %w", err)
	}
	return finish(s)
}

func openStream(ctx context.Context, h host.Host, p peer.ID) (network.Stream, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	s, err := h.NewStream(ctx, p, dht.RPCProtocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", dht.ErrUnreachable, err)
	}
	d, _ := ctx.Deadline()
	s.SetDeadline(d)
	return s, nil
}

func finish(s network.Stream) (*proto.Envelope, error) {
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, fmt.Errorf("close write: %w", err)
	}
	resp, err := proto.ReadFrame(bufio.NewReaderSize(s, 2048))
	if err != nil {
		s.Reset()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("stream closed without an answer: %w", err)
		}
		return nil, err
	}
	s.Close()
	return resp, nil
}

// Outcome names an answer: "ok", the refusal code (RATE_LIMITED, …), or a
// transport failure class ("reset", "timeout", "unreachable", "error").
func Outcome(resp *proto.Envelope, err error) string {
	if err != nil {
		var se *network.StreamError
		switch {
		case errors.As(err, &se):
			return fmt.Sprintf("reset(0x%x)", uint32(se.ErrorCode))
		case errors.Is(err, network.ErrReset):
			return "reset"
		case errors.Is(err, dht.ErrUnreachable):
			return "unreachable"
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return "timeout"
		}
		return "error"
	}
	if e := resp.GetError(); e != nil {
		return e.GetCode().String()
	}
	return "ok"
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Lat is a sample of latencies.
type Lat []time.Duration

// Pct returns the p-th percentile (0..100) by nearest rank.
func (l Lat) Pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append(Lat(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

// Max is the largest latency.
func (l Lat) Max() time.Duration { return l.Pct(100) }

// Summary is "n=…, p50 …, p99 …, max …".
func (l Lat) Summary() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", len(l), Ms(l.Pct(50)), Ms(l.Pct(99)), Ms(l.Max()))
}

// Ms formats a duration in milliseconds with 2 decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
