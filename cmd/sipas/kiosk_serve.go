package main

import (
	"context"
	"fmt"
	"github.com/sipas-vn/sipas/internal/version"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/loopback"
	"github.com/sipas-vn/sipas/kiosk"
)

// kioskServe runs the kiosk agent (package kiosk); this file only wires flags.
func kioskServe(ctx context.Context, e *env, args []string) error {
	var c common
	var cfg kiosk.Config
	var listen string
	fs := newFlags(e, "kiosk serve", "sipas kiosk serve [--listen 127.0.0.1:8089] [--data-dir DIR] [--token-file FILE]",
		"sipas kiosk serve --server sipas.example.gov.vn:7443 --ca-file ca.pem --token-file kiosk.token --data-dir /var/lib/sipas-kiosk",
		"sipas kiosk serve --data-dir /var/lib/sipas-kiosk   # later starts: the agent kept a 0600 copy of the token",
		"chromium --kiosk --app=http://127.0.0.1:8089/      # the touch screen's browser")
	c.register(fs, e)
	fs.StringVar(&listen, "listen", envOr(e, "SIPAS_KIOSK_LISTEN", "127.0.0.1:8089"), "loopback address the app is served on (env SIPAS_KIOSK_LISTEN)")
	fs.StringVar(&cfg.DataDir, "data-dir", envOr(e, "SIPAS_KIOSK_DATA_DIR", "./kiosk-data"), "the agent's directory: outbox, token copy, questionnaire copy (env SIPAS_KIOSK_DATA_DIR)")
	fs.StringVar(&cfg.QuestionnaireID, "questionnaire", "sipas-2023", "questionnaire id")
	fs.StringVar(&cfg.Part, "part", "DV", "formula node whose items the kiosk asks, as the served definition groups them")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 60*time.Second, "an untouched questionnaire returns to the start after this long")
	fs.BoolVar(&cfg.SendPartial, "send-partial", false, "send the answers of a questionnaire abandoned by the idle reset (default: discard them)")
	fs.DurationVar(&cfg.ThankYou, "thank-you", 8*time.Second, "how long the thank-you screen shows")
	fs.DurationVar(&cfg.Misuse.MinPerQuestion, "min-time-per-question", 1500*time.Millisecond, "flag questionnaires completed faster than this per answered question (negative: off)")
	fs.DurationVar(&cfg.Misuse.MinInterval, "min-interval", 20*time.Second, "flag questionnaires completed sooner than this after the previous one (negative: off)")
	fs.IntVar(&cfg.Misuse.IdenticalRun, "identical-run", 3, "flag each questionnaire of a run of this many identical ones in a row (below 2: off)")
	fs.StringVar(&cfg.OperatorPIN, "operator-pin", "", "PIN of the operator screen (env SIPAS_KIOSK_PIN; empty: no operator screen)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", time.Minute, "interval of the heartbeats sent to the server")
	fs.DurationVar(&cfg.Outbox.Backoff.Max, "retry-max", 30*time.Second, "longest wait between attempts to reach the server while it cannot be reached")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.Outbox.Backoff.Max < time.Second {
		cfg.Outbox.Backoff.Initial = cfg.Outbox.Backoff.Max / 4
		cfg.Outbox.Poll = cfg.Outbox.Backoff.Max
	}
	if cfg.OperatorPIN == "" {
		cfg.OperatorPIN = e.getenv("SIPAS_KIOSK_PIN")
	}
	if !loopback.Addr(listen) {
		return usageError{fmt.Sprintf("--listen %s: the kiosk app is served on loopback only (127.0.0.1 or [::1])", listen)}
	}
	given, err := givenToken(e, c.tokenFile)
	if err != nil {
		return err
	}
	token, err := kiosk.KeepToken(cfg.DataDir, given)
	if err != nil {
		return usageError{err.Error()}
	}
	if err := checkFormat(c.format); err != nil {
		return err
	}
	cl, err := client.Dial(client.Options{Server: c.server, Token: token, CAFile: c.caFile,
		CertFile: c.certFile, KeyFile: c.keyFile, Insecure: c.insecure, Getenv: e.getenv})
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg.Client, cfg.Version = cl, "sipas "+version.String()
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(e.stderr, "sipas: kiosk: "+format+"\n", args...) }
	agent, err := kiosk.New(ctx, cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "sipas: kiosk: serving the kiosk app on http://%s/\n", l.Addr())
	return agent.Serve(ctx, l)
}

// givenToken returns the token given by --token-file, SIPAS_TOKEN or
// SIPAS_TOKEN_FILE, or "" when none is.
func givenToken(e *env, tokenFile string) (string, error) {
	if tokenFile == "" {
		if t := strings.TrimSpace(e.getenv("SIPAS_TOKEN")); t != "" {
			return t, nil
		}
		tokenFile = e.getenv("SIPAS_TOKEN_FILE")
	}
	if tokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func envOr(e *env, key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}
