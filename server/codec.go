package server

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"

	"github.com/sipas-vn/sipas"
)

// undecodable holds request messages that could not be decoded (malformed
// protobuf bytes, invalid UTF-8 in a string field), from the codec to the
// decode interceptors. grpc-go turns a codec error into INTERNAL, which
// tells a client the server failed; it is the client's message that is bad,
// so the codec reports success with an empty message and records it here,
// and the decode interceptor (after auth) refuses the call with
// INVALID_ARGUMENT. Entries live only between the two: every decoded unary
// request passes the decode interceptor or is dropped by auth's refusal,
// every stream message passes the wrapped RecvMsg.
type undecodable struct {
	msgs sync.Map // message pointer → decode error
}

// codec returns the server's codec: grpc's proto codec, recording failures.
func (u *undecodable) codec() encoding.CodecV2 {
	return undecodableCodec{CodecV2: encoding.GetCodecV2(proto.Name), u: u}
}

type undecodableCodec struct {
	encoding.CodecV2
	u *undecodable
}

func (c undecodableCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(protov2.Message)
	if !ok {
		return err
	}
	protov2.Reset(m)
	c.u.msgs.Store(v, err)
	return nil
}

// take reports whether m failed to decode, forgetting it.
func (u *undecodable) take(m any) bool {
	_, bad := u.msgs.LoadAndDelete(m)
	return bad
}

var errUndecodable = &sipas.Error{Kind: sipas.KindInvalid, Op: "decode request", Reason: "MALFORMED_MESSAGE",
	Message: "the request could not be decoded",
	Violations: []sipas.Violation{{Field: "request", Reason: "MALFORMED_MESSAGE",
		Description: "the request is not a valid protobuf message of this method (bad wire format or invalid UTF-8 in a string field)"}}}

func (s *Server) decodedUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.undecodable.take(req) {
		return nil, toStatus(ctx, s.log, errUndecodable)
	}
	return handler(ctx, req)
}

func (s *Server) decodedStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &decodedStream{ServerStream: ss, u: s.undecodable, s: s})
}

// decodedStream refuses a stream message that failed to decode.
type decodedStream struct {
	grpc.ServerStream
	u *undecodable
	s *Server
}

func (d *decodedStream) RecvMsg(m any) error {
	if err := d.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if d.u.take(m) {
		return toStatus(d.Context(), d.s.log, errUndecodable)
	}
	return nil
}
