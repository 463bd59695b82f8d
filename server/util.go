package server

import (
	"context"
	"strconv"

	"google.golang.org/grpc"

	"github.com/sipas-vn/sipas"
)

func quote(s string) string { return strconv.Quote(s) }

func itoa(n int) string { return strconv.Itoa(n) }

// pageSize applies the default and the cap of a List method's page_size.
func pageSize(requested int32, def, max int) (int, error) {
	switch {
	case requested < 0:
		return 0, sipas.Invalid("list", sipas.Violation{Field: "page_size", Reason: "NEGATIVE", Description: "must not be negative"})
	case requested == 0:
		return def, nil
	case int(requested) > max:
		return max, nil
	}
	return int(requested), nil
}

// deadlineUnary caps the deadline of unary calls at Config.UnaryTimeout.
func (s *Server) deadlineUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.UnaryTimeout)
	defer cancel()
	return handler(ctx, req)
}
