package store

import (
	"context"
	"time"
)

// JanitorOptions tune the WAL janitor.
type JanitorOptions struct {
	// Every is how often the janitor looks at the WAL (default 10 s).
	Every time.Duration
	// Threshold is the WAL size above which it truncates (default 4 MiB).
	Threshold int64
	// OnError, when set, is told about checkpoints that could not complete
	// (a long read holds the WAL); the janitor retries on the next tick.
	OnError func(error)
}

// RunJanitor keeps the WAL bounded until ctx is done (long reads
// pin the WAL and automatic checkpoints cannot reset it, so it grows without
// bound). Each tick it tries a TRUNCATE checkpoint when the WAL is above the
// threshold; a checkpoint blocked by readers is retried on the next tick,
// so the WAL shrinks soon after the long read ends.
func (s *Store) RunJanitor(ctx context.Context, o JanitorOptions) {
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.Threshold <= 0 {
		o.Threshold = 4 << 20
	}
	t := time.NewTicker(o.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, wal := s.Sizes(); wal <= o.Threshold {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.Checkpoint(cctx, "TRUNCATE")
			cancel()
			if err != nil && o.OnError != nil {
				o.OnError(err)
			}
		}
	}
}
