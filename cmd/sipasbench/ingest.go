package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3" // registers "sqlite3" for the plain-insert floor
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

const (
	unaryWorkers = 64 // concurrent clients
	unaryConns   = 4  // gRPC connections they share (one kiosk credential each)
	unaryRounds  = 2  // health and submit runs alternate, twice each
	floorTxRows  = 10_000
)

// memory of a child after its load, in MiB.
type memory struct {
	hwm, maxSampled, after float64
}

// unaryResult is the outcome of the unary load on its own sipasd.
type unaryResult struct {
	health, submit []float64 // calls per second of each run
	// CPU per call (µs) of the server and of this process (the clients),
	// each run.
	healthCPU, submitCPU []cpuPerCall
	dur, warm            time.Duration
	mem                  memory
	commits              string
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}

func (u *unaryResult) figure() result {
	return result{name: figUnary, value: mean(u.submit), unit: "submissions/s", ceiling: mean(u.health),
		explain: fmt.Sprintf("SubmitResponse (kiosk credentials, ~20 DV answers in the packed form the client library sends, UUIDv7 ids, durable: synchronous=FULL group commit) "+
			"from %d goroutines over %d gRPC connections to a sipasd child on loopback, rate limit off; runs %s/s. "+
			"Ceiling: grpc.health.v1.Health/Check over the same connections and goroutines, which passes the same "+
			"interceptor chain (recovery, logging, metrics, auth, limits) but is an open method, so no token lookup; runs %s/s. "+
			"Each run %s after %s warm-up, health and submit alternating. Server: %s. "+
			"CPU per call, server+clients µs: submit %s, health %s. Goal ratio >= 0.5.",
			unaryWorkers, unaryConns, fmtRates(u.submit), fmtRates(u.health), u.dur, u.warm, u.commits,
			fmtCPU(u.submitCPU), fmtCPU(u.healthCPU))}
}

func fmtRates(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += " and "
		}
		s += formatNum(x)
	}
	return s
}

// load runs call from workers goroutines: warm, then counts completed calls
// for dur. Any failed call fails the run.
// cpuPerCall is the CPU time per call of the server and of the load
// generator during a measured run, in µs.
type cpuPerCall struct{ server, client float64 }

func (c cpuPerCall) String() string {
	return fmt.Sprintf("%.0f+%.0f", c.server, c.client)
}

func fmtCPU(v []cpuPerCall) string {
	s := make([]string, len(v))
	for i, c := range v {
		s[i] = c.String()
	}
	return strings.Join(s, " and ")
}

// load runs call from workers goroutines for warm, then measures calls per
// second over dur, and the CPU time per call of srv (when not nil) and of
// this process.
func load(workers int, warm, dur time.Duration, srv *child, call func(w int) error) (float64, cpuPerCall, error) {
	var ops, nerr atomic.Int64
	var stop atomic.Bool
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := call(w); err != nil {
					if nerr.Add(1) == 1 {
						firstErr.Store(err)
					}
					continue
				}
				ops.Add(1)
			}
		}()
	}
	time.Sleep(warm)
	var srv0, srv1 time.Duration
	if srv != nil {
		srv0 = srv.cpuTimeOrZero()
	}
	c0, t0, cli0 := ops.Load(), time.Now(), selfCPUTime()
	time.Sleep(dur)
	c1, el, cli1 := ops.Load(), time.Since(t0), selfCPUTime()
	if srv != nil {
		srv1 = srv.cpuTimeOrZero()
	}
	stop.Store(true)
	wg.Wait()
	if n := nerr.Load(); n > 0 {
		return 0, cpuPerCall{}, fmt.Errorf("%d calls failed, first: %v", n, firstErr.Load())
	}
	n := float64(max(c1-c0, 1))
	cpu := cpuPerCall{server: float64((srv1 - srv0).Microseconds()) / n, client: float64((cli1 - cli0).Microseconds()) / n}
	return float64(c1-c0) / el.Seconds(), cpu, nil
}

// runUnary starts a sipasd, issues kiosk credentials and measures the
// health Check rate and the SubmitResponse rate at 64 concurrent clients.
func (b *bench) runUnary() (*unaryResult, error) {
	if b.unary != nil || b.unaryErr != nil {
		return b.unary, b.unaryErr
	}
	res := &unaryResult{dur: b.unaryD, warm: b.warmD}
	err := b.timed("unary load on sipasd", func() error {
		g, err := newGen(b.cat, b.reg)
		if err != nil {
			return err
		}
		c, err := b.startServer("unary")
		if err != nil {
			return err
		}
		defer c.kill()
		kl, err := b.newKioskLoad(g, c, "BENCH-K", unaryWorkers)
		if err != nil {
			return err
		}
		defer kl.close()
		check, submit := kl.check, kl.submit
		for round := range unaryRounds {
			h, hcpu, err := load(unaryWorkers, b.warmD, b.unaryD, c, check)
			if err != nil {
				return fmt.Errorf("health load: %w", err)
			}
			s, scpu, err := load(unaryWorkers, b.warmD, b.unaryD, c, submit)
			if err != nil {
				return fmt.Errorf("submit load: %w", err)
			}
			res.healthCPU, res.submitCPU = append(res.healthCPU, hcpu), append(res.submitCPU, scpu)
			b.logf("unary round %d: health %.0f/s, submit %.0f/s", round+1, h, s)
			res.health, res.submit = append(res.health, h), append(res.submit, s)
		}
		if res.mem.hwm, res.mem.maxSampled, res.mem.after, err = c.memory(); err != nil {
			return err
		}
		res.commits = c.commitStats()
		return c.stop()
	})
	if err != nil {
		b.unaryErr = err
		return nil, err
	}
	b.unary = res
	return res, nil
}

// kioskLoad is a kiosk fleet on one sipasd: unaryConns kiosk credentials
// (each on its own gRPC connection, in units of distinct provinces) shared
// by workers, with prepared responses.
type kioskLoad struct {
	clients []*client.Client
	health  []healthpb.HealthClient
	tpls    [][]*sipasv1.Response
	next    []int
}

// newKioskLoad issues the kiosk credentials (units named prefix+i) through
// c and prepares the responses of workers workers.
func (b *bench) newKioskLoad(g *gen, c *child, prefix string, workers int) (*kioskLoad, error) {
	admin, err := c.adminClient()
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	kl := &kioskLoad{clients: make([]*client.Client, unaryConns), health: make([]healthpb.HealthClient, unaryConns),
		tpls: make([][]*sipasv1.Response, workers), next: make([]int, workers)}
	for i := range kl.clients {
		tok, err := newKiosk(admin, fmt.Sprintf("%s%d", prefix, i), g.codes2026[(i*7)%len(g.codes2026)])
		if err != nil {
			kl.close()
			return nil, err
		}
		if kl.clients[i], err = c.dial(tok); err != nil {
			kl.close()
			return nil, err
		}
		kl.health[i] = healthpb.NewHealthClient(kl.clients[i].Conn())
	}
	// Each worker rotates over a few prepared kiosk responses (the kiosk's
	// unit and province come from its credential) and gives each send a
	// fresh UUIDv7. Templates in the wire form the client library sends
	// (the packed answer form, as kiosks do once they know the item order).
	const perWorker = 8
	rng := rand.New(rand.NewPCG(1, 2))
	at := timestamppb.New(time.Now().Add(-time.Minute))
	for w := range kl.tpls {
		for range perWorker {
			r := &sipas.Response{QuestionnaireID: questionnaireID, CollectedAt: at.AsTime(),
				Channel: sipas.ChannelKiosk, Answers: g.dvAnswers(rng)}
			kl.tpls[w] = append(kl.tpls[w], kl.clients[w%unaryConns].WireResponse(context.Background(), r))
		}
	}
	return kl, nil
}

func (kl *kioskLoad) close() {
	for _, c := range kl.clients {
		if c != nil {
			c.Close()
		}
	}
}

// check is one health Check of worker w.
func (kl *kioskLoad) check(w int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := kl.health[w%unaryConns].Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
		err = fmt.Errorf("health: %s", r.Status)
	}
	return err
}

// submit is one SubmitResponse of worker w, with a new response id.
func (kl *kioskLoad) submit(w int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t := kl.tpls[w][kl.next[w]%len(kl.tpls[w])]
	kl.next[w]++
	t.ResponseId = uuid.Must(uuid.NewV7()).String()
	r, err := kl.clients[w%unaryConns].Survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: t})
	if err == nil && r.Duplicate {
		err = errors.New("unexpected duplicate")
	}
	return err
}

// batchN is the number of responses of the upload and the floor.
func (b *bench) batchN() int {
	if b.quick {
		return 2_000
	}
	return 100_000
}

// batchResponses are the responses of the upload and of the floor: every
// item answered, demographics given, channel field, provinces of 2024 and
// 2026. Generated once with a fixed seed.
func (b *bench) batchResponses() ([]*sipas.Response, error) {
	if b.batchRS != nil {
		return b.batchRS, nil
	}
	g, err := newGen(b.cat, b.reg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rs := make([]*sipas.Response, b.batchN())
	for i := range rs {
		rs[i] = g.fullResponse(rng)
	}
	b.batchRS = rs
	return rs, nil
}

// packedResponses returns copies of rs with their answers in the packed
// form of q (sipas.Response.Packed) instead of the map.
func packedResponses(q *sipas.Questionnaire, rs []*sipas.Response) []*sipas.Response {
	out := make([]*sipas.Response, len(rs))
	for i, r := range rs {
		p := *r
		p.Answers, p.Packed = nil, make([]uint32, len(q.Items))
		for j, it := range q.Items {
			if a, ok := r.Answers[it.Code]; ok {
				p.Packed[j] = uint32(a) + 1
			}
		}
		out[i] = &p
	}
	return out
}

// batchResult is the outcome of the upload on its own sipasd.
type batchResult struct {
	n          int
	streams    int
	rate       float64
	dur        time.Duration
	mem        memory
	dbBytes    int64
	rows       int64
	avgPayload float64
	commits    string
	// CPU time of the server process and of this process (the client)
	// during the upload.
	serverCPU, clientCPU time.Duration
	rates                []float64 // every run's rate; rate is their median
}

// batchRuns is how many times the upload and the floor are each measured,
// alternately; the figures are the medians.
func (b *bench) batchRuns() int {
	if b.quick {
		return 1
	}
	return 3
}

// runBatch measures the upload and the plain-insert floor batchRuns times
// each, alternating (floor, upload, floor, upload, ...) so that noise from
// the machine falls on both alike, and keeps the run of median rate of each.
func (b *bench) runBatch() (*batchResult, error) {
	if b.batch != nil || b.batchErr != nil {
		return b.batch, b.batchErr
	}
	bt, fl, err := b.runBatchAndFloor()
	if err != nil {
		b.batchErr = err
		return nil, err
	}
	b.batch, b.floor = bt, fl
	return bt, nil
}

func (b *bench) runBatchAndFloor() (*batchResult, *floorResult, error) {
	rows, err := b.floorRows()
	if err != nil {
		return nil, nil, err
	}
	var uploads []*batchResult
	var floors []*floorResult
	for i := range b.batchRuns() {
		fl, err := b.floorOnce(rows, i)
		if err != nil {
			return nil, nil, err
		}
		floors = append(floors, fl)
		bt, err := b.uploadOnce(i)
		if err != nil {
			return nil, nil, err
		}
		uploads = append(uploads, bt)
	}
	var hwm float64
	var rates, floorRates []float64
	for i := range uploads {
		hwm = max(hwm, uploads[i].mem.hwm)
		rates = append(rates, uploads[i].rate)
		floorRates = append(floorRates, floors[i].rate)
	}
	bt := medianBy(uploads, func(r *batchResult) float64 { return r.rate })
	bt.mem.hwm = hwm
	bt.rates = rates
	fl := medianBy(floors, func(r *floorResult) float64 { return r.rate })
	fl.rates = floorRates
	return bt, fl, nil
}

// medianBy returns the element of median key (the upper one of an even count).
func medianBy[T any](xs []T, key func(T) float64) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return s[len(s)/2]
}

// uploadOnce uploads the responses through one UploadBatch stream with the
// client library to a fresh server, then stops it and measures its database.
func (b *bench) uploadOnce(run int) (*batchResult, error) {
	rs, err := b.batchResponses()
	if err != nil {
		return nil, err
	}
	res := &batchResult{n: len(rs)}
	err = b.timed(fmt.Sprintf("batch upload on sipasd, run %d", run+1), func() error {
		c, tok, err := b.startWithSurveyor("batch", "bench batch upload")
		if err != nil {
			return err
		}
		defer c.kill()
		cl, err := c.dial(tok)
		if err != nil {
			return err
		}
		defer cl.Close()
		// The responses in the packed answer form, as a bulk client holds
		// them (converting from the answer map is the client's own work,
		// not the ingestion's).
		items := make([]client.BatchItem, len(rs))
		for i, r := range packedResponses(b.cat.Get(questionnaireID), rs) {
			items[i] = client.BatchItem{Line: int64(i + 2), Response: r}
		}
		c.profile(fmt.Sprintf("batch-%d", run))
		srvCPU0, cliCPU0 := c.cpuTimeOrZero(), selfCPUTime()
		start := time.Now()
		sum, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{MaxStreamItems: len(items) + 1})
		res.dur = time.Since(start)
		res.serverCPU, res.clientCPU = c.cpuTimeOrZero()-srvCPU0, selfCPUTime()-cliCPU0
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		res.streams = sum.Streams
		if sum.Accepted != int64(len(rs)) {
			first := ""
			if len(sum.Rejects) > 0 {
				first = fmt.Sprintf("; first rejection: line %d %s %s", sum.Rejects[0].Line, sum.Rejects[0].Reason, sum.Rejects[0].Message)
			}
			return fmt.Errorf("upload: %d accepted, %d duplicate, %d rejected of %d over %d streams%s",
				sum.Accepted, sum.Duplicate, sum.Rejected, len(rs), sum.Streams, first)
		}
		res.rate = float64(len(rs)) / res.dur.Seconds()
		res.commits = c.commitStats()
		if res.mem.hwm, res.mem.maxSampled, res.mem.after, err = c.memory(); err != nil {
			return err
		}
		if err := c.stop(); err != nil {
			return fmt.Errorf("stopping sipasd: %w", err)
		}
		if res.dbBytes, err = c.dbBytes(); err != nil {
			return err
		}
		db, err := sql.Open("sqlite3", "file:"+filepath.Join(c.dir, "sipas.db")+"?mode=ro")
		if err != nil {
			return err
		}
		defer db.Close()
		return db.QueryRow("SELECT count(*), avg(length(payload)) FROM responses").Scan(&res.rows, &res.avgPayload)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// floorResult is the plain-insert floor of the same rows.
type floorResult struct {
	n          int
	rate       float64
	dur        time.Duration
	dbBytes    int64
	payloadLen float64
	validateUS float64   // sipas.Validate + payload encoding per response, one goroutine
	marshalUS  float64   // client.ResponseToProto + proto.Marshal per response
	rates      []float64 // every run's rate; rate is their median
}

// floorPrep is the floor's rows, computed once before any timing.
type floorPrep struct {
	rows       []floorRow
	payloadLen float64
	validateUS float64
	marshalUS  float64
}

// floorRow is one row of the responses table, computed before timing.
type floorRow struct {
	id         []byte
	province   string
	provinceID string
	collected  int64
	month      int
	channel    int64
	hash       []byte
	payload    []byte
}

// floorRows computes the stored rows of the upload's responses for the
// floor, and what validation and marshalling cost per response.
func (b *bench) floorRows() (*floorPrep, error) {
	rs, err := b.batchResponses()
	if err != nil {
		return nil, err
	}
	q := b.cat.Get(questionnaireID)
	rows := make([]floorRow, len(rs))
	now := time.Now()
	var plen int
	prepStart := time.Now()
	for i, r := range rs {
		r2 := *r
		acc, err := sipas.Validate(b.cat, b.reg, &r2, now)
		if err != nil {
			return nil, fmt.Errorf("floor rows: %w", err)
		}
		id := uuid.MustParse(r.ID)
		p := store.EncodePayload(q, &acc.Response.Demographics, acc.Answers)
		plen += len(p)
		rows[i] = floorRow{id: id[:], province: r.ProvinceCode, provinceID: acc.Province.ID,
			collected: r.CollectedAt.UnixNano(), month: sipas.MonthOf(r.CollectedAt), channel: int64(r.Channel),
			hash: append([]byte(nil), acc.Hash[:]...), payload: p}
	}
	res := &floorPrep{rows: rows, payloadLen: float64(plen) / float64(len(rows)),
		validateUS: float64(time.Since(prepStart).Microseconds()) / float64(len(rows))}
	// For the explanation: what one full response costs to convert and
	// marshal in the packed answer form the client library sends (client
	// side; the server unmarshals and converts back).
	mStart := time.Now()
	for _, r := range packedResponses(q, rs) {
		if _, err := proto.Marshal(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{{Response: client.ResponseToProto(r)}}}); err != nil {
			return nil, err
		}
	}
	res.marshalUS = float64(time.Since(mStart).Microseconds()) / float64(len(rows))
	return res, nil
}

// floorOnce inserts the rows with one prepared INSERT in 10,000-row
// transactions, on a fresh database made by store.Open (same schema and
// settings) and then written through database/sql with the writer's DSN: no
// validation, no deduplication read, no aggregates, no gRPC.
func (b *bench) floorOnce(prep *floorPrep, run int) (*floorResult, error) {
	rows := prep.rows
	res := &floorResult{n: len(rows), payloadLen: prep.payloadLen, validateUS: prep.validateUS, marshalUS: prep.marshalUS}
	err := b.timed(fmt.Sprintf("plain-insert floor, run %d", run+1), func() error {
		dir := filepath.Join(b.tmp, fmt.Sprintf("floor-%d", run+1))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		path := filepath.Join(dir, "sipas.db")
		st, err := store.Open(context.Background(), path, b.cat, store.Options{})
		if err != nil {
			return err
		}
		if err := st.Close(); err != nil {
			return err
		}
		// The store's writer DSN (store/store.go writerDSN).
		db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?mode=rwc&_journal=WAL&_sync=FULL&_busy_timeout=2000&_txlock=immediate&_fk=1", path))
		if err != nil {
			return err
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		ins, err := db.Prepare(`INSERT INTO responses
			(response_id, questionnaire_id, province_code, province_id, collected_at, month, channel, unit_id, content_hash, payload)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		start := time.Now()
		for off := 0; off < len(rows); off += floorTxRows {
			tx, err := db.Begin()
			if err != nil {
				return err
			}
			st := tx.Stmt(ins)
			for _, r := range rows[off:min(off+floorTxRows, len(rows))] {
				if _, err := st.Exec(r.id, questionnaireID, r.province, r.provinceID, r.collected, r.month, r.channel, "", r.hash, r.payload); err != nil {
					tx.Rollback()
					return err
				}
			}
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		res.dur = time.Since(start)
		res.rate = float64(len(rows)) / res.dur.Seconds()
		var busy, logFrames, done int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
			return err
		}
		if busy != 0 {
			return errors.New("floor checkpoint: database busy")
		}
		ins.Close()
		db.Close()
		for _, f := range []string{"sipas.db", "sipas.db-wal"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
				res.dbBytes += st.Size()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func batchFigure(bt *batchResult, fl *floorResult) result {
	return result{name: figBatch, value: bt.rate, unit: "responses/s", ceiling: fl.rate,
		explain: fmt.Sprintf("median of %d runs alternating with the floor's (uploads %s/s; floors %s/s); the median run: %d full sipas-2023 responses (106 answers, demographics, channel field, 63 provinces in 2024 and 34 in 2026, UUIDv7) "+
			"through UploadBatch with client.Upload (%d stream(s); validation, dedup, aggregates, chunk acks of 2000) to a sipasd child: %s (%s). "+
			"Ceiling: the same rows (same payload encoding, %.1f bytes/payload) with one prepared INSERT in %d-row transactions "+
			"into a store.Open-made database with the writer's DSN, no validation or aggregates: %s. "+
			"For reference, in this process on one goroutine: sipas.Validate + payload encoding %.1f µs/response, "+
			"packed-form ResponseToProto + proto.Marshal %.1f µs/response; CPU during the upload: server %.1f µs/response, "+
			"client (this process) %.1f µs/response. Goal ratio >= 0.5.",
			len(bt.rates), fmtRates(bt.rates), fmtRates(fl.rates), bt.n, bt.streams, bt.dur.Round(10*time.Millisecond), bt.commits, fl.payloadLen, floorTxRows, fl.dur.Round(10*time.Millisecond), fl.validateUS, fl.marshalUS,
			perResponseUS(bt.serverCPU, bt.n), perResponseUS(bt.clientCPU, bt.n))}
}

func perResponseUS(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(max(n, 1))
}

func rssFigure(u *unaryResult, bt *batchResult) result {
	v := max(u.mem.hwm, bt.mem.hwm)
	return result{name: figRSS, value: v, unit: "MiB", ceiling: 150,
		explain: fmt.Sprintf("peak resident memory (VmHWM of /proc/PID/status) of the sipasd child processes, the larger of the two loads: "+
			"unary load VmHWM %.1f MiB (largest sampled VmRSS %.1f, VmRSS after %.1f); batch upload VmHWM %.1f MiB "+
			"(largest sampled VmRSS %.1f, VmRSS after %.1f). Ceiling: the 150 MiB budget.",
			u.mem.hwm, u.mem.maxSampled, u.mem.after, bt.mem.hwm, bt.mem.maxSampled, bt.mem.after)}
}

func bytesFigure(bt *batchResult, fl *floorResult) result {
	v := float64(bt.dbBytes) / float64(bt.n)
	c := float64(fl.dbBytes) / float64(fl.n)
	note := ""
	if bt.avgPayload != fl.payloadLen {
		note = fmt.Sprintf(" WARNING: the server's payloads average %.2f bytes, the floor's %.2f: the copied payload encoding differs.", bt.avgPayload, fl.payloadLen)
	}
	return result{name: figBytes, value: v, unit: "bytes/response", ceiling: c,
		explain: fmt.Sprintf("sipas.db (+ WAL, empty after the checkpoint of the graceful SIGTERM stop) of the batch-upload server: %d bytes for %d responses "+
			"(%d rows, average payload %.1f bytes). Ceiling: the plain-insert floor's database of the same rows after a TRUNCATE checkpoint: %d bytes.%s",
			bt.dbBytes, bt.n, bt.rows, bt.avgPayload, fl.dbBytes, note)}
}
