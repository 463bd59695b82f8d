// Package crash is the kill -9 crash test of sipasd (reliability.md §2.0,
// DUR-1): it starts the real server as a child process, drives mixed kiosk
// (SubmitResponse) and batch (UploadBatch) traffic while logging every attempt
// to an fsynced history file, SIGKILLs the server at random moments while
// calls are in flight, restarts it on the same data directory and port,
// retries the indeterminate responses, and finally checks the database
// against the history: lost = 0, duplicated = 0, phantom = 0, mismatch = 0,
// aggregates equal to a recount, integrity_check ok.
//
// SIPAS_CRASH_KILLS sets the number of kills (default 10; `make reliability`
// uses 200). Skipped under -short.
package crash

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/pgtest"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// binPath is the sipasd binary built by TestMain ("" under -short).
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sipas-crash-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash test:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sipasd")
	build := exec.Command("go", "build", "-tags", "sqlite_omit_load_extension", "-o", binPath, "./cmd/sipasd")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "crash test: building sipasd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Traffic shape.
const (
	kioskWorkers = 8
	batchWorkers = 2
	// correctorWorkers submit as a survey team and then amend or withdraw.
	correctorWorkers = 2
	questionnaire    = "sipas-2023"
	province         = "48"
	kioskUnit        = "crash-kiosk-48"
	unaryTimeout     = 5 * time.Second
	streamTimeout    = 30 * time.Second
	finalRounds      = 20
	invalidPercent   = 3 // share of deliberately invalid responses (definite failures)
)

// Attempt results in the history.
const (
	resOK            = "ok"
	resDuplicate     = "duplicate"
	resDefiniteFail  = "definite-failure"
	resIndeterminate = "indeterminate"
)

func killsWanted(t *testing.T) int {
	v := os.Getenv("SIPAS_CRASH_KILLS")
	if v == "" {
		return 10
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("SIPAS_CRASH_KILLS=%q: want a positive integer", v)
	}
	return n
}

// ---------------------------------------------------------------------------
// History log

// record is one attempt: one JSON line of the history file.
type record struct {
	ID        string    `json:"response_id"`
	SHA       string    `json:"payload_sha256"`
	Principal string    `json:"principal"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Result    string    `json:"result"`
	Code      string    `json:"code"`
	Attempt   int       `json:"attempt"`
	// Epoch is the number of kills before the attempt started, EndEpoch at its end.
	Epoch    int64 `json:"epoch"`
	EndEpoch int64 `json:"end_epoch"`
	// Final marks the retry round after the last kill.
	Final bool `json:"final_round,omitempty"`
	// Probe marks a deliberate resend of an acknowledged id with other content.
	Probe bool `json:"conflict_probe,omitempty"`
	// Correction is "amend" or "withdraw" for a correction attempt (SHA is
	// then the amendment's content hash).
	Correction string `json:"correction,omitempty"`
}

// historyLog appends records to a file and fsyncs it periodically. It lives
// in the test process, never in the server's.
type historyLog struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	err  error
	n    int
	stop chan struct{}
	done chan struct{}
}

func newHistory(path string) (*historyLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	h := &historyLog{f: f, w: bufio.NewWriterSize(f, 1<<16), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.sync()
			}
		}
	}()
	return h, nil
}

func (h *historyLog) add(r record) {
	b, err := json.Marshal(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		b = append(b, '\n')
		_, err = h.w.Write(b)
	}
	if err != nil && h.err == nil {
		h.err = err
	}
	h.n++
}

func (h *historyLog) sync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.w.Flush(); err != nil && h.err == nil {
		h.err = err
	}
	if err := h.f.Sync(); err != nil && h.err == nil {
		h.err = err
	}
}

func (h *historyLog) close() error {
	close(h.stop)
	<-h.done
	h.sync()
	if err := h.f.Close(); err != nil && h.err == nil {
		h.err = err
	}
	return h.err
}

// ---------------------------------------------------------------------------
// Server process

type server struct {
	t       *testing.T
	bin     string
	dataDir string
	logPath string
	addr    string // fixed after the first start
	// extraArgs are appended to the command line (a later flag wins).
	extraArgs []string
	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	starts    int
}

var reServing = regexp.MustCompile(`sipasd: serving gRPC on (\S+) `)

// start launches sipasd and returns when it prints its listening line.
func (s *server) start() error {
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lastErr error
	for try := 0; try < 20; try++ {
		if lastErr = s.startOnce(addr); lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // e.g. the port still held
	}
	return lastErr
}

func (s *server) startOnce(addr string) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin,
		"--data-dir", s.dataDir,
		"--grpc-addr", addr,
		"--http-addr", "127.0.0.1:0",
		// --rate-limit 0 is documented to disable the limit, but the server
		// turns 0 into its default of 200/s (server.Config.withDefaults), so
		// a limit far above what this test sends is used instead.
		"--rate-limit", "1000000", "--rate-burst", "1000000",
		"--log-level", "warn",
		"--shutdown-grace", "10s",
	)
	cmd.Args = append(cmd.Args, s.extraArgs...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.starts++
	exited := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, "stdout:", line)
			if m := reServing.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() {
		s.waitErr = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	select {
	case a := <-found:
		s.cmd, s.exited = cmd, exited
		if s.addr == "" {
			s.addr = a
		} else if a != s.addr {
			s.cmd.Process.Kill()
			<-exited
			return fmt.Errorf("server listens on %s, want %s", a, s.addr)
		}
		return nil
	case <-exited:
		return fmt.Errorf("sipasd exited before serving: %v (see %s)", s.waitErr, s.logPath)
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("sipasd did not print its serving line within 15s (see %s)", s.logPath)
	}
}

// kill sends SIGKILL to the server (by pid) and waits for it to die.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop ends the server gracefully (SIGTERM) and returns its exit status.
func (s *server) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(40 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		return errors.New("sipasd did not exit within 40s of SIGTERM")
	}
}

// ---------------------------------------------------------------------------
// Traffic

// item is one response the load generator owns until it has a definite outcome.
type item struct {
	id        string
	principal string // "kiosk" or "surveyor"
	resp      *sipasv1.Response
	sha       string // content hash as the server computes it
	invalid   bool
	attempts  int
}

type harness struct {
	t      *testing.T
	srv    *server
	hist   *historyLog
	cat    *sipas.Catalog
	survey sipasv1.SurveyServiceClient

	kioskCtx, surveyorCtx context.Context

	kills     atomic.Int64 // epoch: kills so far
	inflight  atomic.Int64
	acks      atomic.Int64 // acknowledged attempts
	stopping  atomic.Bool
	itemsMade atomic.Int64

	mu       sync.Mutex
	leftover []*item // unresolved items handed back by stopped workers
	// epochAcks holds the ids acknowledged by each server incarnation, for
	// the check after the restart that follows its kill.
	epochAcks map[int64][]ackRef

	satItems []string

	corr correctionState
}

type ackRef struct{ id, sha string }

// noteAck remembers an acknowledged id under the incarnation that answered.
func (h *harness) noteAck(id, sha string) {
	ep := h.kills.Load()
	h.mu.Lock()
	h.epochAcks[ep] = append(h.epochAcks[ep], ackRef{id, sha})
	h.mu.Unlock()
}

// contentHash returns the hash the server stores for resp: the kiosk path
// fills unit and province from the credential before hashing.
func (h *harness) contentHash(resp *sipasv1.Response) string {
	r := &sipas.Response{
		ID:              resp.GetResponseId(),
		QuestionnaireID: resp.GetQuestionnaireId(),
		ProvinceCode:    resp.GetProvinceCode(),
		CollectedAt:     resp.GetCollectedAt().AsTime(),
		Channel:         sipas.Channel(resp.GetChannel()),
		UnitID:          resp.GetUnitId(),
		Answers:         map[string]int{},
	}
	if d := resp.GetDemographics(); d != nil {
		r.Demographics = sipas.Demographics{
			Gender: sipas.Gender(d.GetGender()), BirthYear: int(d.GetBirthYear()),
			Ethnicity: sipas.Ethnicity(d.GetEthnicity()), Education: sipas.Education(d.GetEducation()),
			Occupation: sipas.Occupation(d.GetOccupation()), Residence: sipas.Residence(d.GetResidence()),
			RespondentType: sipas.RespondentType(d.GetRespondentType()),
		}
		if d.DidProcedure != nil {
			v := d.GetDidProcedure()
			r.Demographics.DidProcedure = &v
		}
	}
	for k, v := range resp.GetAnswers() {
		r.Answers[k] = int(v)
	}
	sum := sipas.ContentHash(h.cat.Get(r.QuestionnaireID), r)
	return hex.EncodeToString(sum[:])
}

// newItem makes a new random response for a kiosk or a surveyor.
func (h *harness) newItem(rng *rand.Rand, principal string) *item {
	id := uuid.Must(uuid.NewV7()).String()
	resp := &sipasv1.Response{
		ResponseId:      id,
		QuestionnaireId: questionnaire,
		CollectedAt:     timestamppb.New(time.Now().Add(-time.Duration(rng.IntN(3600)) * time.Second)),
		Answers:         map[string]int32{},
	}
	it := &item{id: id, principal: principal, resp: resp}
	codes := []int32{1, 2, 3, 4, 5, sipas.CodeDontKnow, sipas.CodeNotApplicable}
	n := 1 + rng.IntN(len(h.satItems))
	for _, j := range rng.Perm(len(h.satItems))[:n] {
		resp.Answers[h.satItems[j]] = codes[rng.IntN(len(codes))]
	}
	if rng.IntN(100) < invalidPercent {
		resp.Answers[h.satItems[rng.IntN(len(h.satItems))]] = 6 // not a SAT5 code
		it.invalid = true
	}
	if rng.IntN(2) == 0 {
		resp.Demographics = &sipasv1.Demographics{
			Gender:    sipasv1.Gender(1 + rng.IntN(2)),
			BirthYear: int32(1950 + rng.IntN(50)),
			Education: sipasv1.Education(rng.IntN(8)),
		}
		if rng.IntN(2) == 0 {
			resp.Demographics.DidProcedure = proto.Bool(rng.IntN(2) == 0)
		}
	}
	// The content as the server will see it after applying the caller's scope.
	full := proto.Clone(resp).(*sipasv1.Response)
	if principal == "kiosk" {
		resp.Channel = sipasv1.Channel_CHANNEL_KIOSK
		full.Channel = sipasv1.Channel_CHANNEL_KIOSK
		full.UnitId, full.ProvinceCode = kioskUnit, province
	} else {
		resp.Channel = sipasv1.Channel_CHANNEL_FIELD
		resp.ProvinceCode = province
		full.Channel = sipasv1.Channel_CHANNEL_FIELD
		full.ProvinceCode = province
	}
	it.sha = h.contentHash(full)
	h.itemsMade.Add(1)
	return it
}

// classify maps a call error to a history result (reliability.md §2.0).
func classify(err error) (string, string) {
	if err == nil {
		return resOK, "OK"
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated:
		return resDefiniteFail, st.Code().String()
	}
	return resIndeterminate, st.Code().String()
}

// submit sends one kiosk response and logs the attempt.
func (h *harness) submit(it *item, final, probe bool) (string, string) {
	start, ep := time.Now(), h.kills.Load()
	h.inflight.Add(1)
	ctx, cancel := context.WithTimeout(h.kioskCtx, unaryTimeout)
	resp, err := h.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: it.resp})
	cancel()
	h.inflight.Add(-1)
	res, code := classify(err)
	if err == nil {
		if resp.GetDuplicate() {
			res = resDuplicate
		}
		if resp.GetResponseId() != it.id {
			h.t.Errorf("SubmitResponse(%s) acknowledged id %q", it.id, resp.GetResponseId())
		}
		h.acks.Add(1)
	}
	it.attempts++
	sha := it.sha
	if probe {
		sha = h.contentHash(kioskFull(it.resp))
	}
	if err == nil && !probe {
		h.noteAck(it.id, sha)
	}
	h.hist.add(record{ID: it.id, SHA: sha, Principal: "kiosk", Start: start, End: time.Now(), Result: res, Code: code,
		Attempt: it.attempts, Epoch: ep, EndEpoch: h.kills.Load(), Final: final, Probe: probe})
	return res, code
}

func kioskFull(resp *sipasv1.Response) *sipasv1.Response {
	full := proto.Clone(resp).(*sipasv1.Response)
	full.UnitId, full.ProvinceCode = kioskUnit, province
	return full
}

func jitter(rng *rand.Rand, min, max time.Duration) {
	time.Sleep(min + time.Duration(rng.Int64N(int64(max-min))))
}

// kioskWorker submits responses one at a time like a kiosk with an outbox:
// an indeterminate response stays in the outbox and is resent (same id, same
// content) until it gets a definite answer.
func (h *harness) kioskWorker(seed uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	var outbox, acked []*item
	for !h.stopping.Load() {
		// Now and then, resend an acknowledged id with other content: it
		// must be refused (ALREADY_EXISTS) and the stored row must not change.
		if len(acked) > 0 && rng.IntN(50) == 0 {
			orig := acked[rng.IntN(len(acked))]
			probe := &item{id: orig.id, principal: "kiosk", resp: proto.Clone(orig.resp).(*sipasv1.Response), attempts: orig.attempts}
			probe.resp.Answers = map[string]int32{h.satItems[0]: 1, h.satItems[1]: 2}
			for k, v := range orig.resp.Answers {
				if k == h.satItems[0] && v == 1 {
					probe.resp.Answers[k] = 3
				}
			}
			h.submit(probe, false, true)
			orig.attempts = probe.attempts
			continue
		}
		var it *item
		if len(outbox) > 0 && rng.IntN(2) == 0 {
			it, outbox = outbox[0], outbox[1:]
		} else {
			it = h.newItem(rng, "kiosk")
		}
		res, _ := h.submit(it, false, false)
		switch res {
		case resIndeterminate:
			outbox = append(outbox, it)
			jitter(rng, 5*time.Millisecond, 25*time.Millisecond) // server likely down
		case resOK, resDuplicate:
			if len(acked) < 64 {
				acked = append(acked, it)
			} else {
				acked[rng.IntN(len(acked))] = it
			}
		}
	}
	h.mu.Lock()
	h.leftover = append(h.leftover, outbox...)
	h.mu.Unlock()
}

// upload streams items as one batch, logs one attempt per item and returns
// the items whose outcome is indeterminate.
func (h *harness) upload(rng *rand.Rand, items []*item, final bool) []*item {
	start, ep := time.Now(), h.kills.Load()
	h.inflight.Add(1)
	inflight := true
	notInflight := func() {
		if inflight {
			h.inflight.Add(-1)
			inflight = false
		}
	}
	defer notInflight()
	ctx, cancel := context.WithTimeout(h.surveyorCtx, streamTimeout)
	defer cancel()
	type outcome struct {
		res, code string
		at        time.Time
	}
	got := make(map[string]outcome, len(items))
	var streamErr error
	stream, err := h.survey.UploadBatch(ctx)
	var sendDone chan struct{}
	if err != nil {
		streamErr = err
	} else {
		sendDone = make(chan struct{})
		batchID := uuid.NewString()
		go func() {
			defer close(sendDone)
			for i, it := range items {
				m := &sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: int64(i + 2), Response: it.resp}}}
				if i == 0 {
					m.BatchId = batchID
				}
				if err := stream.Send(m); err != nil {
					return
				}
			}
			_ = stream.CloseSend()
		}()
		for {
			m, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					streamErr = err
				}
				break
			}
			if c := m.GetChunk(); c != nil {
				now := time.Now()
				for _, r := range c.GetResults() {
					var o outcome
					switch r.GetOutcome() {
					case sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED:
						o = outcome{resOK, "ACCEPTED", now}
					case sipasv1.ItemOutcome_ITEM_OUTCOME_DUPLICATE:
						o = outcome{resDuplicate, "DUPLICATE", now}
					default:
						if r.GetReason() == "INTERNAL" {
							o = outcome{resIndeterminate, "REJECTED:INTERNAL", now}
						} else {
							o = outcome{resDefiniteFail, "REJECTED:" + r.GetReason(), now}
						}
					}
					got[r.GetResponseId()] = o
				}
			}
		}
		cancel()
		<-sendDone
	}
	notInflight()
	end, endEp := time.Now(), h.kills.Load()
	_, streamCode := classify(streamErr)
	if streamErr == nil {
		streamCode = "EOF"
	}
	var pending []*item
	for _, it := range items {
		it.attempts++
		o, ok := got[it.id]
		if !ok {
			o = outcome{resIndeterminate, "STREAM:" + streamCode, end}
		}
		if o.res == resOK || o.res == resDuplicate {
			h.acks.Add(1)
			h.noteAck(it.id, it.sha)
		}
		h.hist.add(record{ID: it.id, SHA: it.sha, Principal: "surveyor", Start: start, End: o.at, Result: o.res, Code: o.code,
			Attempt: it.attempts, Epoch: ep, EndEpoch: endEp, Final: final})
		if o.res == resIndeterminate {
			pending = append(pending, it)
		}
	}
	if streamErr != nil && rng != nil {
		jitter(rng, 5*time.Millisecond, 25*time.Millisecond)
	}
	return pending
}

// batchWorker uploads batches; items a broken stream left indeterminate go
// at the front of the next batch (resume by resending what was not acknowledged).
func (h *harness) batchWorker(seed uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, seed*13+5))
	var outbox []*item
	for !h.stopping.Load() {
		n := 50 + rng.IntN(350)
		batch := make([]*item, 0, n)
		for len(batch) < n && len(outbox) > 0 {
			batch = append(batch, outbox[0])
			outbox = outbox[1:]
		}
		for len(batch) < n {
			batch = append(batch, h.newItem(rng, "surveyor"))
		}
		outbox = append(outbox, h.upload(rng, batch, false)...)
	}
	h.mu.Lock()
	h.leftover = append(h.leftover, outbox...)
	h.mu.Unlock()
}

// ---------------------------------------------------------------------------
// The test

func TestCrash(t *testing.T) {
	runCrash(t, func(dataDir string) dbView { return sqliteView{path: filepath.Join(dataDir, "sipas.db")} }, nil)
}

// TestCrashPostgres is the same crash test with sipasd on PostgreSQL
// (--database), in a schema of its own.
func TestCrashPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped under -short")
	}
	dsn := pgtest.DSN(t)
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	runCrash(t, func(string) dbView { return &pgView{dsn: dsn, cat: cat} }, []string{"--database", dsn})
}

// runCrash runs the crash test on the database view makes for the data
// directory, sipasd started with extraArgs.
func runCrash(t *testing.T, view func(dataDir string) dbView, extraArgs []string) {
	if testing.Short() {
		t.Skip("crash test: skipped under -short")
	}
	wantKills := killsWanted(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SIPAS_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SIPAS_CRASH_SEED=%q", v)
		}
		seed = s
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	work := t.TempDir()
	if keep := os.Getenv("SIPAS_CRASH_KEEP"); keep != "" {
		// Keep the data directory and history (e.g. as a regression fixture).
		work = keep
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dataDir := filepath.Join(work, "data")
	histPath := filepath.Join(work, "history.jsonl")
	t.Logf("crash test: seed %d, %d kills, work dir %s", seed, wantKills, work)

	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	q := cat.Get(questionnaire)
	if q == nil {
		t.Fatalf("questionnaire %s not in the catalog", questionnaire)
	}
	var satItems []string
	for _, it := range q.Items {
		if it.Scale != nil && it.Scale.ID == "SAT5" {
			satItems = append(satItems, it.Code)
		}
	}
	if len(satItems) < 2 {
		t.Fatalf("questionnaire %s has %d SAT5 items", questionnaire, len(satItems))
	}

	srv := &server{t: t, bin: binPath, dataDir: dataDir, logPath: filepath.Join(work, "sipasd.log"), extraArgs: extraArgs}
	db := view(dataDir)
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	serverUp := true
	defer func() {
		if serverUp {
			srv.kill()
		}
	}()
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.5, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bearer := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+strings.TrimSpace(token))
	}
	adminCtx, cancelAdmin := context.WithTimeout(bearer(string(tok)), 30*time.Second)
	defer cancelAdmin()
	admin := sipasv1.NewAdminServiceClient(conn)
	if _, err := admin.CreateUnit(adminCtx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
		UnitId: kioskUnit, DisplayName: "Bộ phận Một cửa (crash test)", ProvinceCode: province}}); err != nil {
		t.Fatalf("CreateUnit: %v", err)
	}
	kc, err := admin.CreateCredential(adminCtx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
		Role: sipasv1.Role_ROLE_KIOSK, UnitId: kioskUnit, Description: "crash test kiosk"}})
	if err != nil {
		t.Fatalf("CreateCredential(kiosk): %v", err)
	}
	sc, err := admin.CreateCredential(adminCtx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{
		Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true, Description: "crash test survey team"}})
	if err != nil {
		t.Fatalf("CreateCredential(surveyor): %v", err)
	}

	hist, err := newHistory(histPath)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, hist: hist, cat: cat, survey: sipasv1.NewSurveyServiceClient(conn),
		kioskCtx: bearer(kc.GetToken()), surveyorCtx: bearer(sc.GetToken()), satItems: satItems,
		epochAcks: map[int64][]ackRef{}, corr: correctionState{correcting: map[string]bool{}}}

	// Load, with kills.
	var wg sync.WaitGroup
	for i := 0; i < kioskWorkers; i++ {
		wg.Add(1)
		go h.kioskWorker(rng.Uint64(), &wg)
	}
	for i := 0; i < batchWorkers; i++ {
		wg.Add(1)
		go h.batchWorker(rng.Uint64(), &wg)
	}
	for i := 0; i < correctorWorkers; i++ {
		wg.Add(1)
		go h.correctorWorker(rng.Uint64(), &wg)
	}
	var live liveCheck
	inflightAtKill := make([]int64, 0, wantKills)
	restartDur := make([]time.Duration, 0, wantKills)
	upSince := time.Now()
	for k := 1; k <= wantKills; k++ {
		acksBefore := h.acks.Load()
		delay := 50*time.Millisecond + time.Duration(rng.Int64N(int64(350*time.Millisecond)))
		time.Sleep(time.Until(upSince.Add(delay)))
		// Kill while traffic flows: after this incarnation acknowledged
		// something, and while calls are in flight.
		deadline := time.Now().Add(10 * time.Second)
		for h.acks.Load() == acksBefore && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if h.acks.Load() == acksBefore {
			h.stopping.Store(true)
			wg.Wait()
			t.Fatalf("kill %d: the server acknowledged nothing for 10s after restart (see %s)", k, srv.logPath)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		for i := 0; i < 2000 && h.inflight.Load() < 2; i++ {
			time.Sleep(250 * time.Microsecond)
		}
		inflightAtKill = append(inflightAtKill, h.inflight.Load())
		h.kills.Add(1)
		srv.kill()
		serverUp = false
		if k == wantKills {
			break
		}
		t0 := time.Now()
		if err := srv.start(); err != nil {
			h.stopping.Store(true)
			wg.Wait()
			t.Fatalf("restart after kill %d: %v", k, err)
		}
		serverUp = true
		upSince = time.Now()
		restartDur = append(restartDur, upSince.Sub(t0))
		// Checker after the restart (load keeps flowing): what the killed
		// incarnation acknowledged must be stored, with that content, and
		// the database must pass integrity_check.
		if err := h.checkAfterRestart(db, int64(k-1), &live); err != nil {
			h.stopping.Store(true)
			wg.Wait()
			t.Fatalf("check after restart %d: %v", k, err)
		}
	}
	// Stop the load while the server is down, then restart for the final retries.
	h.stopping.Store(true)
	wg.Wait()
	t0 := time.Now()
	if err := srv.start(); err != nil {
		t.Fatalf("final restart: %v", err)
	}
	serverUp = true
	restartDur = append(restartDur, time.Since(t0))

	// Final retry round: every indeterminate id, same content, until definite.
	pending := h.leftover
	retried := map[string]bool{}
	for _, it := range pending {
		retried[it.id] = true
	}
	for round := 0; len(pending) > 0 && round < finalRounds; round++ {
		if round > 0 {
			time.Sleep(min(50*time.Millisecond<<round, 2*time.Second))
		}
		var next, batch []*item
		for _, it := range pending {
			if it.principal == "kiosk" {
				if res, _ := h.submit(it, true, false); res == resIndeterminate {
					next = append(next, it)
				}
			} else {
				batch = append(batch, it)
			}
		}
		for len(batch) > 0 {
			n := min(len(batch), 500)
			next = append(next, h.upload(nil, batch[:n], true)...)
			batch = batch[n:]
		}
		pending = next
	}
	if len(pending) > 0 {
		ids := make([]string, 0, len(pending))
		for _, it := range pending {
			ids = append(ids, it.id)
		}
		t.Errorf("%d ids still indeterminate after %d final retry rounds: %v", len(pending), finalRounds, head(ids, 10))
	}
	if ids := h.finalCorrections(); len(ids) > 0 {
		t.Errorf("%d corrections still indeterminate after %d final retry rounds: %v", len(ids), finalRounds, head(ids, 10))
	}
	if err := srv.stop(); err != nil {
		t.Errorf("graceful stop (SIGTERM): %v (see %s)", err, srv.logPath)
	}
	serverUp = false
	conn.Close()
	if err := hist.close(); err != nil {
		t.Fatalf("history log: %v", err)
	}

	// Check.
	sum, err := check(t, cat, db, histPath, retried)
	if err != nil {
		t.Fatal(err)
	}
	sum.kills = int(h.kills.Load())
	sum.restarts = srv.starts - 1
	for _, n := range inflightAtKill {
		if n > 0 {
			sum.killsWithInflight++
		}
	}
	sort.Slice(restartDur, func(i, j int) bool { return restartDur[i] < restartDur[j] })
	if len(restartDur) > 0 {
		sum.restartMax = restartDur[len(restartDur)-1]
		sum.restartMedian = restartDur[len(restartDur)/2]
	}
	sum.report(t)
	t.Logf("checks after restart: %d, acknowledged ids verified there %d, integrity_check ok %d/%d, median check %s",
		live.checks, live.verified, live.integrityOK, live.checks, live.median())

	// Validity guard: the kills must have landed while calls (and so
	// commits) were in flight, or the run proves nothing.
	if sum.kills != wantKills {
		t.Errorf("invalid run: %d kills, want %d", sum.kills, wantKills)
	}
	if 10*sum.killsLanded < 8*sum.kills {
		t.Errorf("invalid run: only %d of %d kills interrupted an in-flight call (indeterminate outcome); want at least 80%% (reliability.md §2.0)", sum.killsLanded, sum.kills)
	}
	if sum.committedUnacked+sum.indeterminateAbsent == 0 {
		t.Errorf("invalid run: no indeterminate id was found committed-but-unacknowledged or absent: kills did not land inside writes")
	}
}

// liveCheck counts the checks run after restarts.
type liveCheck struct {
	checks, verified, integrityOK int
	durs                          []time.Duration
}

func (l *liveCheck) median() time.Duration {
	if len(l.durs) == 0 {
		return 0
	}
	d := append([]time.Duration(nil), l.durs...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2].Round(time.Millisecond)
}

// checkAfterRestart reads the database while the restarted server runs
// (see dbView.acknowledged): every id the incarnation before the kill
// acknowledged must be stored once with the acknowledged content hash, and
// the database must pass its integrity check.
func (h *harness) checkAfterRestart(db dbView, epoch int64, live *liveCheck) error {
	start := time.Now()
	h.mu.Lock()
	acks := h.epochAcks[epoch]
	delete(h.epochAcks, epoch)
	h.mu.Unlock()
	ids := make([]string, len(acks))
	for i, a := range acks {
		ids[i] = a.id
	}
	stored, err := db.acknowledged(ids)
	if err != nil {
		return err
	}
	var lost, mismatch []string
	for _, a := range acks {
		r, ok := stored[a.id]
		switch {
		case !ok:
			lost = append(lost, a.id)
		case r.n != 1:
			mismatch = append(mismatch, fmt.Sprintf("%s (%d rows)", a.id, r.n))
		case hex.EncodeToString(r.hash) != a.sha && !h.isCorrecting(a.id):
			mismatch = append(mismatch, fmt.Sprintf("%s (stored %x…, acknowledged %s…)", a.id, r.hash[:6], a.sha[:12]))
		}
	}
	live.checks++
	live.verified += len(acks)
	if len(lost)+len(mismatch) > 0 {
		return fmt.Errorf("after kill %d: %d of %d acknowledged ids lost %v, %d mismatched %v", epoch+1, len(lost), len(acks), head(lost, 10), len(mismatch), head(mismatch, 10))
	}
	if err := db.integrity(); err != nil {
		return fmt.Errorf("after kill %d: %w", epoch+1, err)
	}
	live.integrityOK++
	live.durs = append(live.durs, time.Since(start))
	return nil
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// ---------------------------------------------------------------------------
// Checker

type summary struct {
	kills, restarts, killsWithInflight, killsLanded int
	attempts, ids, acked, rows                      int
	indeterminate, indeterminateIDs                 int // attempts, distinct ids
	inflightIndeterminate                           int // indeterminate attempts interrupted by a kill
	committedUnacked, indeterminateAbsent           int
	retried, resolved, resolvedRefused              int
	definiteFailIDs, probes, probesRefused          int
	lost, duplicated, phantom, mismatch             int
	restartMedian, restartMax                       time.Duration
	corr                                            corrSummary
	notLanded                                       []int // kills that interrupted no call
}

func maxEpoch(recs []record) int64 {
	var m int64
	for _, r := range recs {
		m = max(m, r.EndEpoch)
	}
	return m
}

func (s summary) report(t *testing.T) {
	t.Logf("kills=%d (restarts=%d) kills_with_inflight_calls=%d kills_landed(indeterminate in-flight)=%d",
		s.kills, s.restarts, s.killsWithInflight, s.killsLanded)
	if len(s.notLanded) > 0 {
		t.Logf("kills that interrupted no in-flight call: %v", s.notLanded)
	}
	t.Logf("attempts=%d ids=%d acked_ids=%d rows=%d definite_failure_ids=%d conflict_probes=%d (refused %d)",
		s.attempts, s.ids, s.acked, s.rows, s.definiteFailIDs, s.probes, s.probesRefused)
	t.Logf("indeterminate: attempts=%d ids=%d interrupted_by_kill=%d; committed_but_unacked=%d indeterminate_absent=%d",
		s.indeterminate, s.indeterminateIDs, s.inflightIndeterminate, s.committedUnacked, s.indeterminateAbsent)
	t.Logf("final retry round: retried=%d resolved_present=%d resolved_refused=%d", s.retried, s.resolved, s.resolvedRefused)
	t.Logf("corrections: %d (amended %d, withdrawn %d, refused or left indeterminate %d); indeterminate attempts %d, in effect before their acknowledgement %d; lost=%d applied_twice=%d phantom=%d",
		s.corr.corrections, s.corr.amended, s.corr.withdrawn, s.corr.refused, s.corr.indeterminate, s.corr.committedUnacked, s.corr.lost, s.corr.doubled, s.corr.phantom)
	t.Logf("checker: lost=%d duplicated=%d phantom=%d mismatch=%d; restart median %s max %s",
		s.lost, s.duplicated, s.phantom, s.mismatch, s.restartMedian.Round(time.Millisecond), s.restartMax.Round(time.Millisecond))
	fmt.Printf("CRASH kills=%d landed=%d acked=%d rows=%d indeterminate=%d interrupted=%d committed_unacked=%d indeterminate_absent=%d resolved=%d/%d lost=%d duplicated=%d phantom=%d mismatch=%d\n",
		s.kills, s.killsLanded, s.acked, s.rows, s.indeterminate, s.inflightIndeterminate, s.committedUnacked, s.indeterminateAbsent,
		s.resolved+s.resolvedRefused, s.retried, s.lost, s.duplicated, s.phantom, s.mismatch)
}

// idState folds the history of one response id.
type idState struct {
	attempts   []record
	ackedSHA   map[string]bool // hashes of acknowledged attempts (should be one)
	firstAck   *record
	sawIndet   bool // an indeterminate attempt before the first ack
	anyIndet   bool
	allDefFail bool
	// corrections are the id's correction attempts (corrections_test.go).
	corrections []record
}

func readHistory(path string) (map[string]*idState, []record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, nil, fmt.Errorf("history line %d: %w", len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	ids := map[string]*idState{}
	for i := range recs {
		r := recs[i]
		s := ids[r.ID]
		if s == nil {
			s = &idState{ackedSHA: map[string]bool{}, allDefFail: true}
			ids[r.ID] = s
		}
		if r.Correction != "" {
			s.corrections = append(s.corrections, r)
			continue
		}
		s.attempts = append(s.attempts, r)
		switch r.Result {
		case resOK, resDuplicate:
			s.ackedSHA[r.SHA] = true
			s.allDefFail = false
			if s.firstAck == nil {
				s.firstAck = &recs[i]
			}
		case resIndeterminate:
			s.allDefFail = false
			s.anyIndet = true
			if s.firstAck == nil {
				s.sawIndet = true
			}
		}
	}
	return ids, recs, nil
}

// reporter is what the checker reports to: a *testing.T, or a recorder in
// the checker's own test.
type reporter interface {
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

func check(t reporter, cat *sipas.Catalog, db dbView, histPath string, retried map[string]bool) (summary, error) {
	var sum summary
	ids, recs, err := readHistory(histPath)
	if err != nil {
		return sum, fmt.Errorf("reading history: %w", err)
	}
	sum.attempts, sum.ids, sum.retried = len(recs), len(ids), len(retried)
	landed := map[int64]bool{}
	for _, r := range recs {
		if r.Result == resIndeterminate {
			sum.indeterminate++
			if r.EndEpoch > r.Epoch {
				sum.inflightIndeterminate++
				landed[r.Epoch] = true
			}
		}
		if r.Probe {
			sum.probes++
			if r.Result == resDefiniteFail && r.Code == codes.AlreadyExists.String() {
				sum.probesRefused++
			} else if r.Result != resIndeterminate {
				t.Errorf("conflict probe on %s (other content) got %s %s, want ALREADY_EXISTS", r.ID, r.Result, r.Code)
			}
		}
	}
	sum.killsLanded = len(landed)
	for e := int64(0); e < maxEpoch(recs); e++ {
		if !landed[e] {
			sum.notLanded = append(sum.notLanded, int(e+1))
		}
	}

	ctx := context.Background()
	st, err := db.open(ctx, cat)
	if err != nil {
		return sum, fmt.Errorf("opening the store after the run: %w", err)
	}
	defer st.Close()
	if err := db.integrity(); err != nil {
		t.Errorf("integrity: %v", err)
	}
	if err := st.CheckAggregates(ctx); err != nil {
		t.Errorf("aggregates differ from a recount: %v", err)
	}
	nRows, err := st.CountResponses(ctx)
	if err != nil {
		return sum, err
	}
	sum.rows = int(nRows)

	// Every stored row, by id, straight from SQL.
	uniq, err := db.uniqueOnID()
	if err != nil {
		return sum, fmt.Errorf("reading the indexes of responses: %w", err)
	}
	if !uniq {
		t.Errorf("no UNIQUE index on responses(response_id)")
	}
	stored, err := db.storedIDs()
	if err != nil {
		return sum, err
	}
	if len(stored) != sum.rows {
		t.Errorf("CountResponses = %d, but %d rows read", sum.rows, len(stored))
	}

	var lost, dup, phantom, mismatch, unackedPresent []string
	for id, n := range stored {
		if n > 1 {
			dup = append(dup, id)
		}
		s := ids[id]
		if s == nil || s.allDefFail {
			phantom = append(phantom, id)
			continue
		}
		if len(s.ackedSHA) == 0 {
			unackedPresent = append(unackedPresent, id)
		}
	}
	for id, s := range ids {
		if len(s.ackedSHA) == 0 {
			if s.allDefFail {
				sum.definiteFailIDs++
			}
			if retried[id] && !s.anyIndetAfterFinal() {
				sum.resolvedRefused++
			}
			if s.anyIndet {
				sum.indeterminateIDs++
			}
			continue
		}
		sum.acked++
		if s.anyIndet {
			sum.indeterminateIDs++
		}
		if s.sawIndet {
			if s.firstAck.Result == resDuplicate {
				sum.committedUnacked++
			} else {
				sum.indeterminateAbsent++
			}
		}
		if len(s.ackedSHA) > 1 {
			mismatch = append(mismatch, id+" (acknowledged with two different contents)")
			continue
		}
		_, _, hash, err := st.GetResponse(ctx, id)
		if sipas.KindOf(err) == sipas.KindNotFound {
			lost = append(lost, id)
			continue
		}
		if err != nil {
			return sum, fmt.Errorf("GetResponse(%s): %w", id, err)
		}
		if kind, sha := s.ackedCorrection(); kind == corrAmend {
			if got := hex.EncodeToString(hash[:]); got != sha {
				mismatch = append(mismatch, fmt.Sprintf("%s (stored %s…, acknowledged amendment %s…)", id, got[:12], sha[:12]))
			}
		} else if got := hex.EncodeToString(hash[:]); !s.ackedSHA[got] && !(kind == "" && len(s.corrections) > 0 && s.correctionIndeterminate()) {
			mismatch = append(mismatch, fmt.Sprintf("%s (stored %s…, acknowledged %s…)", id, got[:12], s.firstAck.SHA[:12]))
		}
		if retried[id] && stored[id] == 1 {
			sum.resolved++
		}
	}
	sum.lost, sum.duplicated, sum.phantom, sum.mismatch = len(lost), len(dup), len(phantom), len(mismatch)
	for _, l := range []struct {
		name string
		ids  []string
	}{{"lost (acknowledged, no row)", lost}, {"duplicated (more than one row)", dup},
		{"phantom (row whose every attempt failed definitely, or never attempted)", phantom},
		{"mismatch (stored content is not the acknowledged content)", mismatch},
		{"present but never acknowledged after the final retry round", unackedPresent}} {
		if len(l.ids) > 0 {
			sort.Strings(l.ids)
			t.Errorf("%s: %d, e.g. %v", l.name, len(l.ids), head(l.ids, 10))
			for _, id := range head(l.ids, 3) {
				if s := ids[id]; s != nil {
					for _, a := range s.attempts {
						t.Logf("  history %s: attempt %d %s %s %s epoch %d→%d final=%v probe=%v sha %s…",
							id, a.Attempt, a.Principal, a.Result, a.Code, a.Epoch, a.EndEpoch, a.Final, a.Probe, a.SHA[:12])
					}
				}
			}
		}
	}
	if sum.corr, err = checkCorrections(t, db, ids); err != nil {
		return sum, err
	}
	if sum.resolved+sum.resolvedRefused != sum.retried {
		t.Errorf("indeterminate_resolved: %d present + %d refused of %d retried", sum.resolved, sum.resolvedRefused, sum.retried)
	}
	return sum, nil
}

// anyIndetAfterFinal reports whether the id's last attempt was indeterminate.
func (s *idState) anyIndetAfterFinal() bool {
	return len(s.attempts) > 0 && s.attempts[len(s.attempts)-1].Result == resIndeterminate
}
