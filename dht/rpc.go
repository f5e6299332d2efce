package dht

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/kadre/kadre/proto"
)

// call sends one request to p on a new stream and returns the validated
// response. A refusal comes back as a *proto.RemoteError. The stream
// inherits ctx's deadline (DefaultCallTimeout if it has none): a hung peer
// costs at most that.
func (h *Host) call(ctx context.Context, p peer.ID, req *proto.Envelope) (*proto.Envelope, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	if err := proto.ValidateRequest(req); err != nil {
		return nil, fmt.Errorf("dht: refusing to send an invalid request: %w", err)
	}
	// A node that restarted is in the swarm's dial backoff for up to
	// minutes after a failed dial; every call has a deadline of its own,
	// so dial it anyway.
	dctx := network.WithDialPeerTimeout(network.WithForceDirectDial(ctx, "kadre rpc"), DefaultDialTimeout)
	s, err := h.h.NewStream(dctx, p, RPCProtocol)
	if errors.Is(err, swarm.ErrNoAddresses) {
		// The peerstore forgot the peer's addresses (they expire after a
		// disconnection): ask the DHT, then try once more.
		if ai, ferr := h.kad.FindPeer(ctx, p); ferr == nil && len(ai.Addrs) > 0 {
			h.h.Peerstore().AddAddrs(p, ai.Addrs, peerstore.TempAddrTTL)
			s, err = h.h.NewStream(dctx, p, RPCProtocol)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			// A dead peer: drop it now rather than at the next refresh.
			h.kad.RoutingTable().RemovePeer(p)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	resp, err := exchange(s, req)
	if err != nil {
		s.Reset()
		var re *proto.RemoteError
		if errors.As(err, &re) {
			return nil, err
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return nil, err
	}
	s.Close()
	return resp, nil
}

// newRequestID returns a random request id.
func newRequestID() uint64 {
	var id [8]byte
	rand.Read(id[:])
	return binary.BigEndian.Uint64(id[:])
}

func exchange(s network.Stream, req *proto.Envelope) (*proto.Envelope, error) {
	if err := proto.WriteFrame(s, req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, fmt.Errorf("dht: failed to close write side: %w", err)
	}
	return proto.ReadResponse(bufio.NewReaderSize(s, 1024), req)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Client-side errors that say why a node gave no answer.
var (
	ErrUnreachable = errors.New("dht: node unreachable")
	ErrTimeout     = errors.New("dht: node did not answer in time")
	ErrBadResponse = errors.New("dht: node sent an invalid answer")
)
