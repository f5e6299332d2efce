package proto_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// A node reads a request, refuses it, and the client sees the refusal as an
// error that matches the policy sentinel.
func Example() {
	var stream bytes.Buffer // stands in for a libp2p stream

	// Client.
	req := proto.Request(42, &proto.Envelope_NodeInfo{NodeInfo: &proto.NodeInfoRequest{}})
	if err := proto.WriteFrame(&stream, req); err != nil {
		panic(err)
	}

	// Node.
	got, err := proto.ReadRequest(bufio.NewReader(&stream))
	if err != nil {
		panic(err)
	}
	fmt.Println("node got", got.GetRequestId(), got.GetNodeInfo() != nil)
	refusal := fmt.Errorf("%w: grant expires in 400 days, this node keeps 90", policy.ErrExpiryTooLong)
	if err := proto.WriteFrame(&stream, proto.Refuse(got, refusal)); err != nil {
		panic(err)
	}

	// Client.
	_, err = proto.ReadResponse(bufio.NewReader(&stream), req)
	fmt.Println(errors.Is(err, policy.ErrExpiryTooLong))
	fmt.Println(err)
	// Output:
	// node got 42 true
	// true
	// proto: node refused (EXPIRY_TOO_LONG): policy: grant expiry beyond the node's maximum duration: grant expires in 400 days, this node keeps 90
}
