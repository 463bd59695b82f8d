package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

const crashChildEnv = "SIPAS_STORE_CRASH_CHILD"

// TestCrashChild is the process that TestKill9 kills: it inserts responses
// from many goroutines and prints each acknowledged id.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestKill9")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashChildEnv+"_SEED"), 10, 64)
	cat, _ := catalog(t)
	s, err := Open(context.Background(), path, cat, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		g := newGen(t, seed*100+uint64(w))
		wg.Go(func() {
			for {
				batch := []*sipas.Accepted{g.accepted()}
				if w%4 == 0 { // some callers send chunks, as batch uploads do
					for range 20 {
						batch = append(batch, g.accepted())
					}
				}
				res, err := s.Insert(context.Background(), batch)
				if err != nil {
					continue
				}
				mu.Lock()
				for i, r := range res {
					if r.Err == nil {
						fmt.Fprintln(out, batch[i].Response.ID)
					}
				}
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKill9 kills a process that is inserting at a random point, several
// times over the same database, and checks after each restart that every
// acknowledged response is stored, that memory, the tallies table and a
// recount from the responses agree, and that the database is intact.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	var acked []string
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("%s_SEED=%d", crashChildEnv, round+1))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []string, 1)
		go func() {
			var ids []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if len(sc.Text()) == 36 {
					ids = append(ids, sc.Text())
				}
			}
			lines <- ids
		}()
		time.Sleep(time.Duration(400+round*250) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL, by PID
			t.Fatal(err)
		}
		ids := <-lines
		cmd.Wait()
		if len(ids) == 0 {
			t.Fatalf("round %d: the child acknowledged nothing before the kill", round)
		}
		acked = append(acked, ids...)

		cat, _ := catalog(t)
		s, err := Open(context.Background(), path, cat, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		ctx := context.Background()
		if err := s.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.CheckAggregates(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		lost := 0
		for _, id := range acked {
			if _, _, _, err := s.GetResponse(ctx, id); err != nil {
				lost++
			}
		}
		n, _ := s.CountResponses(ctx)
		t.Logf("round %d: %d acknowledged in total, %d rows, %d lost", round, len(acked), n, lost)
		if lost != 0 {
			t.Fatalf("round %d: %d acknowledged responses lost", round, lost)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
