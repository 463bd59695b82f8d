// Package client is the Go client of the sipas.v1 API: dialing with TLS or
// plaintext on loopback, bearer tokens from a file or the environment,
// deadlines on every call, safe retries, and errors mapped back to domain
// error kinds. The kiosk outbox and the batch uploader build on it.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/loopback"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// DefaultServer is the address `make run` serves on.
const DefaultServer = "127.0.0.1:7443"

// Options say how to reach the server.
type Options struct {
	// Server is host:port. Empty means $SIPAS_SERVER, then DefaultServer.
	Server string
	// Token is the bearer token. Empty means the contents of TokenFile, then
	// $SIPAS_TOKEN, then the file named by $SIPAS_TOKEN_FILE.
	Token     string
	TokenFile string
	// CAFile, when set, enables TLS and verifies the server with this CA.
	CAFile string
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile, KeyFile string
	// TLS enables TLS with the system roots (implied by CAFile).
	TLS bool
	// Insecure allows plaintext to a non-loopback address.
	Insecure bool
	// Timeout is the deadline of unary calls (default 10 s).
	Timeout time.Duration
	// Getenv reads the environment (tests); nil means os.Getenv.
	Getenv func(string) string
}

// Client is a connection to a sipas server.
type Client struct {
	conn    *grpc.ClientConn
	timeout time.Duration

	ordersMu sync.Mutex
	orders   map[string]*itemOrder // by questionnaire id; nil value: unavailable
	Survey   sipasv1.SurveyServiceClient
	Index    sipasv1.IndexServiceClient
	Admin    sipasv1.AdminServiceClient
}

// retryPolicy is the one retry layer of the reads: gRPC retries a read
// refused with UNAVAILABLE (the call did not take effect). Writes are not in
// it: SubmitResponse and UploadBatch are retried by this library's own loops
// (Client.Submit, Client.Upload, the outbox), which keep ids and resend
// only what was not acknowledged; a second layer under them multiplied the
// sends of one response (5 × 5). Admin calls are not retried at all.
const retryPolicy = `{"methodConfig":[{"name":[{"service":"sipas.v1.IndexService"},
  {"service":"sipas.v1.SurveyService","method":"GetQuestionnaire"},{"service":"sipas.v1.SurveyService","method":"ListQuestionnaires"}],
 "retryPolicy":{"maxAttempts":5,"initialBackoff":"0.5s","maxBackoff":"30s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}`

// Dial connects to the server. It does not block: the first call waits for
// the connection.
func Dial(opts Options) (*Client, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	addr := firstNonEmpty(opts.Server, getenv("SIPAS_SERVER"), DefaultServer)
	token, err := resolveToken(opts, getenv)
	if err != nil {
		return nil, err
	}
	var tc credentials.TransportCredentials
	useTLS := opts.TLS || opts.CAFile != ""
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
			}
			cfg.RootCAs = pool
		}
		if opts.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		tc = credentials.NewTLS(cfg)
	} else {
		if !opts.Insecure && !loopback.Addr(addr) {
			return nil, fmt.Errorf("refusing to send a token in plaintext to %s: use --ca-file (TLS) or --insecure", addr)
		}
		tc = insecure.NewCredentials()
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(tc),
		grpc.WithDefaultServiceConfig(retryPolicy),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 60 * time.Second, Timeout: 20 * time.Second, PermitWithoutStream: true}),
	}
	if token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearer{token: token, secure: useTLS}))
	}
	conn, err := grpc.NewClient(addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Client{
		conn: conn, timeout: timeout,
		Survey: sipasv1.NewSurveyServiceClient(conn),
		Index:  sipasv1.NewIndexServiceClient(conn),
		Admin:  sipasv1.NewAdminServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying connection (e.g. for the health service).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// WithTimeout returns a context with the client's unary deadline.
func (c *Client) WithTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

func resolveToken(opts Options, getenv func(string) string) (string, error) {
	if opts.Token != "" {
		return opts.Token, nil
	}
	file := opts.TokenFile
	if file == "" {
		if t := getenv("SIPAS_TOKEN"); t != "" {
			return strings.TrimSpace(t), nil
		}
		file = getenv("SIPAS_TOKEN_FILE")
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// bearer sends the token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for plaintext, which Dial allows
// on loopback (or with Insecure) alone.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// kindOfCode maps gRPC codes back to domain error kinds.
var kindOfCode = map[codes.Code]sipas.ErrorKind{
	codes.InvalidArgument:    sipas.KindInvalid,
	codes.FailedPrecondition: sipas.KindFailedPrecondition,
	codes.NotFound:           sipas.KindNotFound,
	codes.AlreadyExists:      sipas.KindConflict,
	codes.Unauthenticated:    sipas.KindUnauthenticated,
	codes.PermissionDenied:   sipas.KindPermissionDenied,
	codes.ResourceExhausted:  sipas.KindResourceExhausted,
	codes.Unavailable:        sipas.KindUnavailable,
	codes.DeadlineExceeded:   sipas.KindUnavailable,
	codes.Canceled:           sipas.KindUnavailable,
}

// FromStatus converts a gRPC error into a *sipas.Error with the kind, reason
// and field violations the server sent. Errors that leave the outcome
// unknown (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, UNKNOWN)
// become KindUnavailable or KindOther; both are safe to retry with the same ids.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	var de *sipas.Error
	if errors.As(err, &de) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return &sipas.Error{Kind: sipas.KindUnavailable, Message: err.Error(), Err: err}
	}
	out := &sipas.Error{Kind: kindOfCode[st.Code()], Message: st.Message(), Err: err}
	if _, known := kindOfCode[st.Code()]; !known {
		out.Kind = sipas.KindOther
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			out.Reason = d.GetReason()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.Violations = append(out.Violations, sipas.Violation{Field: v.GetField(), Reason: v.GetReason(), Description: v.GetDescription()})
			}
		}
	}
	return out
}

// Definite reports whether err is a definite refusal: the server looked at
// the request and will refuse it again (retrying cannot help).
func Definite(err error) bool {
	switch sipas.KindOf(err) {
	case sipas.KindInvalid, sipas.KindFailedPrecondition, sipas.KindConflict,
		sipas.KindPermissionDenied, sipas.KindUnauthenticated, sipas.KindNotFound:
		return true
	}
	return false
}

// itemOrder returns the item order of a questionnaire as the server defines
// it, fetched once per client, or nil when the server does not give it.
func (c *Client) itemOrder(ctx context.Context, questionnaireID string) *itemOrder {
	c.ordersMu.Lock()
	defer c.ordersMu.Unlock()
	if o, ok := c.orders[questionnaireID]; ok {
		return o
	}
	if c.orders == nil {
		c.orders = map[string]*itemOrder{}
	}
	cctx, cancel := c.WithTimeout(ctx)
	defer cancel()
	q, err := c.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + questionnaireID})
	if err != nil {
		if Definite(FromStatus(err)) {
			c.orders[questionnaireID] = nil // the map form works without it
		}
		return nil
	}
	o := &itemOrder{pos: make(map[string]int, len(q.GetQuestionnaire().GetItems()))}
	for i, it := range q.GetQuestionnaire().GetItems() {
		o.codes = append(o.codes, it.Code)
		o.pos[it.Code] = i
	}
	c.orders[questionnaireID] = o
	return o
}

// RetryDelay returns the delay the server asked for with a refusal
// (google.rpc.RetryInfo, sent with UNAVAILABLE and RESOURCE_EXHAUSTED), or 0.
func RetryDelay(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// retryAfter is the wait before retrying after err: the backoff for this
// attempt, or longer when the server asked for longer.
func retryAfter(b Backoff, attempt int, err error) time.Duration {
	return max(b.Delay(attempt), RetryDelay(err))
}
