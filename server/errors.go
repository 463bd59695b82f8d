package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sipas-vn/sipas"
)

// errorDomain is the ErrorInfo domain of every error this service sends.
const errorDomain = "sipas.gov.vn"

// codeOf is the one table from domain error kinds to gRPC codes.
var codeOf = map[sipas.ErrorKind]codes.Code{
	sipas.KindOther:              codes.Internal,
	sipas.KindInvalid:            codes.InvalidArgument,
	sipas.KindFailedPrecondition: codes.FailedPrecondition,
	sipas.KindNotFound:           codes.NotFound,
	sipas.KindConflict:           codes.AlreadyExists,
	sipas.KindUnauthenticated:    codes.Unauthenticated,
	sipas.KindPermissionDenied:   codes.PermissionDenied,
	sipas.KindResourceExhausted:  codes.ResourceExhausted,
	sipas.KindUnavailable:        codes.Unavailable,
}

// toStatus converts err into a gRPC status error with details: ErrorInfo
// always, BadRequest field violations for bad input, RetryInfo for
// UNAVAILABLE. Internal causes are logged here and never sent to the client.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (e.g. from an interceptor)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	var de *sipas.Error
	if !errors.As(err, &de) || de.Kind == sipas.KindOther {
		// Error strings of the store may carry SQLite internals: log, don't send.
		log.ErrorContext(ctx, "internal error", "err", err)
		st, _ := status.New(codes.Internal, "internal error").WithDetails(&errdetails.ErrorInfo{Reason: "INTERNAL", Domain: errorDomain})
		return st.Err()
	}
	code := codeOf[de.Kind]
	// The message is the domain's words only: de.Op names an internal
	// function (store.revoke_credential) and stays in the logs.
	msg := de.Message
	if de.Kind == sipas.KindUnavailable && de.Err != nil {
		log.WarnContext(ctx, "unavailable", "err", de.Err)
	}
	reason := de.Reason
	if reason == "" {
		reason = code.String()
	}
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain}}
	if len(de.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range de.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description, Reason: v.Reason,
			})
		}
		details = append(details, br)
	}
	if code == codes.Unavailable || code == codes.ResourceExhausted {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)})
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}
