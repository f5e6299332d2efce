package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	gproto "google.golang.org/protobuf/proto"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// Role is how a simulated node behaves.
type Role int

const (
	// Honest nodes run kadre unchanged.
	Honest Role = iota
	// Liar nodes run kadre but lie where lying is cheapest: they accept
	// fragments (valid receipts) and answer re-encryption with cfrags that
	// do not verify, say they kept map pages and drop them, and say they
	// keep no map.
	Liar
	// Sybil nodes are the attacker's: they accept every fragment offered
	// (that is how they capture grants), refuse to re-encrypt (NOT_GRANTED),
	// drop map pages and hide the ones they have, and answer every DHT
	// lookup with the attacker's nodes closest to its target, to eclipse
	// discovery.
	Sybil
)

func (r Role) String() string {
	return [...]string{"honest", "liar", "sybil"}[r]
}

// Node is one simulated kadre node: its own identity, machine (endpoint),
// LMDB store on tmpfs, and the real dht.Host and dht.Service.
type Node struct {
	Index int
	Key   *rekey.SecretKey
	PK    policy.PublicKey
	E     *Endpoint
	Host  *dht.Host
	Store *store.Store
	Svc   *dht.Service
	dir   string

	mu       sync.Mutex
	role     Role
	stopped  bool
	retiring bool
}

// SetRole changes how the node answers kadre's RPCs from now on.
func (nd *Node) SetRole(r Role) {
	nd.mu.Lock()
	nd.role = r
	nd.mu.Unlock()
	if r == Honest {
		nd.E.Intercept(dht.RPCProtocol, nil)
	} else {
		nd.E.Intercept(dht.RPCProtocol, nd.lie)
	}
}

// Role is how the node behaves.
func (nd *Node) Role() Role {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.role
}

// NodeOptions are the knobs of one node.
type NodeOptions struct {
	Role      Role
	IP        net.IP
	Slow      time.Duration // extra one-way latency on its links
	Bootstrap []peer.AddrInfo
	Refresh   time.Duration // routing-table refresh period (dht.Config)
	// Sybils lists the attacker's nodes (for a sybil's lookup answers);
	// called at answer time, as the attacker adds nodes.
	Sybils func() *SybilSet
}

// SybilSet is the attacker's nodes with their Kademlia keys, hashed once
// (every poisoned answer ranks all of them). It is never changed: adding a
// node makes a new set.
type SybilSet struct {
	infos []peer.AddrInfo
	keys  []kb.ID
}

// With is the set and one more node.
func (ss *SybilSet) With(ai peer.AddrInfo) *SybilSet {
	out := &SybilSet{}
	if ss != nil {
		out.infos = append(out.infos, ss.infos...)
		out.keys = append(out.keys, ss.keys...)
	}
	out.infos = append(out.infos, ai)
	out.keys = append(out.keys, kb.ConvertPeerID(ai.ID))
	return out
}

// Len is the number of nodes in the set.
func (ss *SybilSet) Len() int {
	if ss == nil {
		return 0
	}
	return len(ss.infos)
}

// Closest is the k nodes of the set closest to key, closest first.
func (ss *SybilSet) Closest(key []byte, k int) []peer.AddrInfo {
	if ss == nil {
		return nil
	}
	target := kb.ConvertKey(string(key))
	dist := make([][]byte, len(ss.keys))
	idx := make([]int, len(ss.keys))
	for i, id := range ss.keys {
		d := make([]byte, len(id))
		for j := range d {
			d[j] = id[j] ^ target[j]
		}
		dist[i], idx[i] = d, i
	}
	sort.Slice(idx, func(a, b int) bool { return bytes.Compare(dist[idx[a]], dist[idx[b]]) < 0 })
	out := make([]peer.AddrInfo, 0, min(k, len(idx)))
	for _, i := range idx[:min(k, len(idx))] {
		out = append(out, ss.infos[i])
	}
	return out
}

// StartNode starts a node with identity key on the network: host, DHT in
// server mode, store in dir, service, then joins through the bootstrap
// peers.
func StartNode(ctx context.Context, n *Net, index int, key *rekey.SecretKey, dir string, opt NodeOptions) (*Node, error) {
	priv, err := libp2pKeyOf(key.Bytes())
	if err != nil {
		return nil, err
	}
	e, err := n.AddEndpoint(priv, opt.IP, opt.Slow)
	if err != nil {
		return nil, err
	}
	nd := &Node{Index: index, Key: key, PK: policy.PublicKeyOf(key.PublicKey()), E: e, dir: dir}
	nd.SetRole(opt.Role)
	if opt.Role == Sybil {
		e.Intercept(dht.ProtocolPrefix+"/kad/1.0.0", func(s network.Stream, _ network.StreamHandler) { poison(s, opt.Sybils) })
	}
	// An honest node waits for its first refresh to end before it counts
	// as up, as a node that has run a while has; clients, and the
	// attacker's nodes (which answer lookups with each other whatever
	// their tables hold), wait DefaultJoinRefreshWait.
	var refreshWait time.Duration
	if opt.Role != Sybil {
		refreshWait = 5 * time.Minute
	}
	h, err := dht.New(ctx, dht.Config{Identity: key, Server: true, Host: e.Host(), Bootstrap: opt.Bootstrap, RefreshPeriod: opt.Refresh,
		JoinRefreshWait: refreshWait})
	if err != nil {
		e.Kill(true)
		return nil, err
	}
	st, err := store.Open(dir, store.Options{InitialMapSize: 4 << 20})
	if err != nil {
		h.Close()
		e.Kill(true)
		return nil, err
	}
	svc, err := dht.NewService(h, dht.ServiceConfig{Store: st, Identity: key, PeerRate: 1e6})
	if err != nil {
		st.Close()
		h.Close()
		e.Kill(true)
		return nil, err
	}
	nd.Host, nd.Store, nd.Svc = h, st, svc
	if len(opt.Bootstrap) > 0 {
		if err := h.Bootstrap(ctx); err != nil {
			nd.Stop()
			return nil, fmt.Errorf("node %d: %w", index, err)
		}
	}
	return nd, nil
}

// Stop ends the node as a crash would: the machine vanishes (dials to it
// hang), then its service, DHT and store stop.
func (nd *Node) Stop() { nd.stop(false) }

// Exit ends the node as a clean exit would: the machine stays up without
// kadre (dials to it are refused).
func (nd *Node) Exit() { nd.stop(true) }

func (nd *Node) stop(refuse bool) {
	nd.mu.Lock()
	if nd.stopped {
		nd.mu.Unlock()
		return
	}
	nd.stopped = true
	nd.mu.Unlock()
	nd.E.Kill(refuse)
	nd.Svc.Close()
	nd.Host.Close()
	nd.Store.Close()
}

// Alive reports whether the node runs.
func (nd *Node) Alive() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return !nd.stopped
}

// Serves reports whether the node answers re-encryption honestly.
func (nd *Node) Serves() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.role == Honest && !nd.stopped
}

// Dir is the node's data directory.
func (nd *Node) Dir() string { return nd.dir }

// replay is a stream whose first bytes were already read: they are read
// again first.
type replay struct {
	network.Stream
	r io.Reader
}

func (r *replay) Read(p []byte) (int, error) { return r.r.Read(p) }

// lie answers kadre's RPCs as a Liar or a Sybil does; what it does not
// forge goes to the real service.
func (nd *Node) lie(s network.Stream, real network.StreamHandler) {
	var seen bytes.Buffer
	req, err := proto.ReadRequest(bufio.NewReader(io.TeeReader(s, &seen)))
	if err != nil {
		s.Reset()
		return
	}
	var resp *proto.Envelope
	switch b := req.GetBody().(type) {
	case *proto.Envelope_PutMap:
		resp = proto.Respond(req, &proto.Envelope_PutMapResponse{PutMapResponse: &proto.PutMapResponse{}})
	case *proto.Envelope_PutLink:
		resp = proto.Respond(req, &proto.Envelope_PutLinkResponse{PutLinkResponse: &proto.PutLinkResponse{}})
	case *proto.Envelope_GetMap, *proto.Envelope_GetLinks:
		resp = proto.Refuse(req, proto.ErrNotFound)
	case *proto.Envelope_Reencrypt:
		resp = proto.Refuse(req, policy.ErrNotGranted)
		if nd.Role() == Liar {
			if r := nd.badCFrag(s, b.Reencrypt); r != nil {
				resp = proto.Respond(req, &proto.Envelope_ReencryptResponse{ReencryptResponse: r})
			}
		}
	default:
		real(&replay{Stream: s, r: io.MultiReader(bytes.NewReader(seen.Bytes()), s)})
		return
	}
	if err := proto.WriteFrame(s, resp); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// badCFrag is a liar's answer to a re-encryption it could serve: the real
// public grant, and a cfrag of random bytes.
func (nd *Node) badCFrag(s network.Stream, r *proto.ReencryptRequest) *proto.ReencryptResponse {
	k := s.Conn().RemotePublicKey()
	if k == nil {
		return nil
	}
	raw, err := k.Raw()
	if err != nil {
		return nil
	}
	recipient, err1 := policy.ParsePublicKey(raw)
	owner, err2 := policy.ParsePublicKey(r.GetOwner())
	if err1 != nil || err2 != nil {
		return nil
	}
	var hashes []policy.PathHash
	for _, l := range r.GetLevels() {
		hashes = append(hashes, policy.PathHash(l.GetPathHash()))
	}
	level, _, rec, err := nd.Store.Lookup(owner, recipient, hashes, time.Now())
	if err != nil {
		return nil
	}
	g, err := policy.ParseGrant(rec)
	if err != nil {
		return nil
	}
	junk := make([]byte, 160)
	rand.Read(junk)
	return &proto.ReencryptResponse{Level: uint32(level), Cfrag: junk, Grant: g.PublicBytes()}
}

// poison answers kad-dht requests as the attacker: every FIND_NODE gets
// the attacker's 20 nodes closest to its target, so that a lookup through
// them meets only the attacker.
func poison(s network.Stream, sybils func() *SybilSet) {
	defer s.Close()
	r := bufio.NewReader(s)
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > network.MessageSizeMax {
			if !errors.Is(err, io.EOF) {
				s.Reset()
			}
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			s.Reset()
			return
		}
		var req pb.Message
		if err := gproto.Unmarshal(buf, &req); err != nil {
			s.Reset()
			return
		}
		resp := pb.NewMessage(req.GetType(), nil, req.GetClusterLevel())
		if req.GetType() == pb.Message_FIND_NODE {
			resp.CloserPeers = pb.RawPeerInfosToPBPeers(sybils().Closest(req.GetKey(), dht.DefaultCandidates))
		}
		out, err := gproto.Marshal(resp)
		if err != nil {
			s.Reset()
			return
		}
		frame := binary.AppendUvarint(nil, uint64(len(out)))
		if _, err := s.Write(append(frame, out...)); err != nil {
			s.Reset()
			return
		}
	}
}

func nodeDir(root string, i int) string { return filepath.Join(root, fmt.Sprintf("node-%04d", i)) }
