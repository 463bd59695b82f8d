package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
)

// The PostgreSQL figures run sipasd with --database against the server of
// SIPAS_BENCH_POSTGRES (default: SIPAS_TEST_POSTGRES, else the local server
// at 127.0.0.1:5432), each in a schema of its own dropped afterwards. Without
// a reachable server they are skipped, not failed.
const (
	figPGUnary    = "pg_unary_submit_c64"
	figPGBatch    = "pg_batch_upload"
	figPGReplicas = "pg_two_replicas"
)

// errSkipped marks a figure that cannot be measured on this machine.
var errSkipped = errors.New("skipped")

func pgURL() string {
	for _, v := range []string{"SIPAS_BENCH_POSTGRES", "SIPAS_TEST_POSTGRES"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// pgSchema creates a fresh schema and returns a URL whose connections use
// it, and a function that drops it.
func (b *bench) pgSchema() (string, func(), error) {
	base := pgURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("%w: no PostgreSQL server reachable (%v); set SIPAS_BENCH_POSTGRES=postgres://user@host:port/db", errSkipped, err)
	}
	defer c.Close(context.Background())
	r := make([]byte, 6)
	rand.Read(r)
	schema := "sipas_bench_" + hex.EncodeToString(r)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

// startPG starts a sipasd replica over dsn. A replica started on a database
// that has its first admin already (peer not nil) gets the peer's token.
func (b *bench) startPG(name, dsn string, peer *child) (*child, error) {
	dir, err := os.MkdirTemp(b.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	if peer != nil {
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(peer.adminTok+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return b.startServerIn(dir, 0, "--database", dsn, "--db-max-conns", "16")
}

// pgResult holds the PostgreSQL figures, measured together.
type pgResult struct {
	unary, two                []float64 // submit rates of one replica and of two, per round
	upload, copyFloor         []float64 // upload and COPY rates, per run
	uploadStreams, uploadRows int
	unaryCommits, twoCommits  string
	sqliteUnary               float64
	uploadCPU                 time.Duration
}

func (b *bench) runPG() (*pgResult, error) {
	if b.pg != nil || b.pgErr != nil {
		return b.pg, b.pgErr
	}
	res := &pgResult{}
	err := b.timed("PostgreSQL figures", func() error {
		g, err := newGen(b.cat, b.reg)
		if err != nil {
			return err
		}
		// One replica, then two over the same database, alternating, with
		// the same 64 workers: half on each replica in the second case.
		dsn, drop, err := b.pgSchema()
		if err != nil {
			return err
		}
		defer drop()
		a, err := b.startPG("pg-a", dsn, nil)
		if err != nil {
			return err
		}
		defer a.kill()
		bb, err := b.startPG("pg-b", dsn, a)
		if err != nil {
			return err
		}
		defer bb.kill()
		ka, err := b.newKioskLoad(g, a, "PG-A", unaryWorkers)
		if err != nil {
			return err
		}
		defer ka.close()
		kb, err := b.newKioskLoad(g, bb, "PG-B", unaryWorkers)
		if err != nil {
			return err
		}
		defer kb.close()
		for round := range unaryRounds {
			one, _, err := load(unaryWorkers, b.warmD, b.unaryD, a, ka.submit)
			if err != nil {
				return fmt.Errorf("one replica: %w", err)
			}
			two, _, err := load(unaryWorkers, b.warmD, b.unaryD, nil, func(w int) error {
				if w%2 == 0 {
					return ka.submit(w)
				}
				return kb.submit(w)
			})
			if err != nil {
				return fmt.Errorf("two replicas: %w", err)
			}
			b.logf("PostgreSQL unary round %d: one replica %.0f/s, two replicas %.0f/s", round+1, one, two)
			res.unary, res.two = append(res.unary, one), append(res.two, two)
		}
		res.unaryCommits, res.twoCommits = a.commitStats(), bb.commitStats()
		if err := bb.stop(); err != nil {
			return err
		}
		if err := a.stop(); err != nil {
			return err
		}

		// The upload of the batch figure's responses and a COPY of the
		// same rows into the same server, alternating.
		rows, err := b.floorRows()
		if err != nil {
			return err
		}
		rs, err := b.batchResponses()
		if err != nil {
			return err
		}
		for run := range b.batchRuns() {
			rate, err := b.pgCopyOnce(rows)
			if err != nil {
				return fmt.Errorf("COPY floor: %w", err)
			}
			res.copyFloor = append(res.copyFloor, rate)
			dsn, drop, err := b.pgSchema()
			if err != nil {
				return err
			}
			c, err := b.startPG(fmt.Sprintf("pg-upload-%d", run+1), dsn, nil)
			if err != nil {
				drop()
				return err
			}
			up, err := b.pgUploadOnce(c, rs, res)
			c.kill()
			drop()
			if err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			b.logf("PostgreSQL batch run %d: COPY %.0f/s, upload %.0f/s", run+1, rate, up)
			res.upload = append(res.upload, up)
		}
		return nil
	})
	if err != nil {
		b.pgErr = err
		return nil, err
	}
	b.pg = res
	return res, nil
}

// pgUploadOnce uploads rs through UploadBatch to c and returns the rate.
func (b *bench) pgUploadOnce(c *child, rs []*sipas.Response, res *pgResult) (float64, error) {
	admin, err := c.adminClient()
	if err != nil {
		return 0, err
	}
	tok, err := newSurveyor(admin, "bench PostgreSQL upload")
	admin.Close()
	if err != nil {
		return 0, err
	}
	cl, err := c.dial(tok)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	items := make([]client.BatchItem, len(rs))
	for i, r := range packedResponses(b.cat.Get(questionnaireID), rs) {
		items[i] = client.BatchItem{Line: int64(i + 2), Response: r}
	}
	cpu0 := c.cpuTimeOrZero()
	start := time.Now()
	sum, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{MaxStreamItems: len(items) + 1})
	d := time.Since(start)
	res.uploadCPU = c.cpuTimeOrZero() - cpu0
	if err != nil {
		return 0, err
	}
	if sum.Accepted != int64(len(rs)) {
		return 0, fmt.Errorf("%d accepted of %d", sum.Accepted, len(rs))
	}
	res.uploadStreams, res.uploadRows = int(sum.Streams), len(rs)
	return float64(len(rs)) / d.Seconds(), nil
}

// pgCopyOnce copies the rows into a responses table of the sipasd schema
// (made by a replica's migrations) in a fresh schema of the same server,
// with COPY in one transaction: no validation, no deduplication, no
// aggregates, no gRPC.
func (b *bench) pgCopyOnce(prep *floorPrep) (float64, error) {
	dsn, drop, err := b.pgSchema()
	if err != nil {
		return 0, err
	}
	defer drop()
	// A replica creates the schema, then stops.
	c, err := b.startPG("pg-copy-schema", dsn, nil)
	if err != nil {
		return 0, err
	}
	if err := c.stop(); err != nil {
		return 0, err
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	src := make([][]any, len(prep.rows))
	for i, r := range prep.rows {
		src[i] = []any{r.id, questionnaireID, r.province, r.provinceID, r.collected, int32(r.month), int16(r.channel), "", r.hash, r.payload}
	}
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"responses"},
		[]string{"response_id", "questionnaire_id", "province_code", "province_id", "collected_at", "month", "channel", "unit_id", "content_hash", "payload"},
		pgx.CopyFromRows(src))
	if err != nil {
		tx.Rollback(ctx)
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	if int(n) != len(prep.rows) {
		return 0, fmt.Errorf("COPY stored %d of %d rows", n, len(prep.rows))
	}
	return float64(len(prep.rows)) / time.Since(start).Seconds(), nil
}

func (b *bench) pgFigure(name string) (result, error) {
	p, err := b.runPG()
	if err != nil {
		return result{}, err
	}
	switch name {
	case figPGUnary:
		u, err := b.runUnary()
		if err != nil {
			return result{}, err
		}
		sq := mean(u.submit)
		return result{name: figPGUnary, value: mean(p.unary), unit: "calls/s", ceiling: sq,
			explain: fmt.Sprintf("SubmitResponse at %d concurrent kiosk clients over %d connections to one sipasd on PostgreSQL (--database, a fresh schema on the same machine): rounds %s/s (%s); "+
				"ceiling: the unary_submit_c64 figure of this run on SQLite, %s/s. Each call is a durable commit in both.",
				unaryWorkers, unaryConns, fmtRates(p.unary), p.unaryCommits, fmtRates(u.submit))}, nil
	case figPGBatch:
		up, fl := median(slices.Clone(p.upload)), median(slices.Clone(p.copyFloor))
		return result{name: figPGBatch, value: up, unit: "responses/s", ceiling: fl,
			explain: fmt.Sprintf("the batch_upload responses (%d, %d stream(s)) through UploadBatch to a sipasd on PostgreSQL (validation, exactly-once, aggregate cells in the same transaction): runs %s/s, server CPU %.1f µs/response in the last; "+
				"ceiling: COPY of the same rows (same payload encoding) into the responses table of a fresh schema on the same server, one transaction: runs %s/s (median of each, alternating).",
				p.uploadRows, p.uploadStreams, fmtRates(p.upload), perResponseUS(p.uploadCPU, max(p.uploadRows, 1)), fmtRates(p.copyFloor))}, nil
	case figPGReplicas:
		return result{name: figPGReplicas, value: mean(p.two), unit: "calls/s", ceiling: mean(p.unary),
			explain: fmt.Sprintf("SubmitResponse at %d concurrent kiosk clients split over two sipasd replicas sharing one PostgreSQL: rounds %s/s; "+
				"ceiling: the same load on one of them alone, %s/s (alternating rounds). On this 2-core machine the replicas, the load generator and PostgreSQL share the cores, so the ratio shows what a second replica costs or gains here, not on separate machines.",
				unaryWorkers, fmtRates(p.two), fmtRates(p.unary))}, nil
	}
	return result{}, fmt.Errorf("unknown figure %q", name)
}
