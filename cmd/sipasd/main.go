// Command sipasd is the SIPAS survey server: it takes in responses from kiosks
// and survey teams over gRPC, stores them durably in SQLite and serves
// satisfaction indices. See docs/operations.md for every flag.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sipasd:", err)
		os.Exit(1)
	}
}

// run is main without the process: it parses args (with SIPAS_* environment
// fallbacks from getenv), starts the daemon and blocks until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.RestoreFrom != "" {
		return restore(ctx, cfg, stdout)
	}
	d, err := start(ctx, cfg, stdout, stderr)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return d.stop()
}
