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
	"runtime/debug"
	"syscall"

	"github.com/sipas-vn/sipas/internal/version"
)

func main() {
	// The heap is small (tens of MiB) and ingestion allocates per call, so
	// the default GOGC=100 spends a large share of the CPU collecting: a
	// higher target (200: the heap peaks at about three times what is live,
	// about 85 MiB of resident memory under a full-speed upload) with a soft
	// memory limit trades a little memory for throughput. An explicit GOGC or
	// GOMEMLIMIT in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
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
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(stdout, "sipasd", version.String())
		return nil
	}
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
