package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

// TestJanitorBoundsWALAfterLongRead holds a long read while the WAL grows,
// and shows the janitor shrinking it soon after the read ends.
func TestJanitorBoundsWALAfterLongRead(t *testing.T) {
	s := openTest(t, "", Options{})
	g := newGen(t, 7)
	ctx := context.Background()
	insert := func(n int) {
		items := make([]*sipas.Accepted, n)
		for i := range items {
			items[i] = g.accepted()
		}
		mustInsert(t, s, items...)
	}
	insert(200)
	// A long read: an open result set pins a snapshot of the WAL.
	rows, err := s.reader.QueryContext(ctx, "SELECT seq FROM responses")
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatal("no rows")
	}
	const threshold = 64 << 10
	jctx, stop := context.WithCancel(ctx)
	defer stop()
	blocked := make(chan struct{}, 1)
	go s.RunJanitor(jctx, JanitorOptions{Every: 20 * time.Millisecond, Threshold: threshold, OnError: func(err error) {
		if errors.As(err, new(*sipas.Error)) {
			select {
			case blocked <- struct{}{}:
			default:
			}
		}
	}})
	for range 5 {
		insert(100)
	}
	if _, wal := s.Sizes(); wal <= threshold {
		t.Fatalf("WAL %d bytes did not grow past %d while the read was held", wal, threshold)
	}
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the janitor never tried (and failed) to checkpoint under the long read")
	}
	_, held := s.Sizes()
	rows.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, wal := s.Sizes()
		if wal <= threshold {
			t.Logf("WAL %d bytes while the read was held, %d after it ended", held, wal)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL still %d bytes 5 s after the long read ended", wal)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
