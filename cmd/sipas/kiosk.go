package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

func init() {
	register(command{name: "kiosk", summary: "serve the touch-screen kiosk agent (kiosk serve), try a terminal kiosk, or simulate many", run: runKiosk})
}

// serviceGroups are the formula nodes of the service block (DV) a kiosk asks.
const serviceGroups = "DV,TC,TT,CC,KQ,PA"

// kioskItem is one question as the kiosk shows it.
type kioskItem struct {
	code, label string
	codes       []kioskCode // the scale's codes, in order
}

type kioskCode struct {
	code  int
	label string
}

func runKiosk(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "simulate" {
		return kioskSimulate(ctx, e, args[1:])
	}
	if len(args) > 0 && args[0] == "serve" {
		return kioskServe(ctx, e, args[1:])
	}
	return kioskInteractive(ctx, e, args)
}

// kioskItemsFromProto picks the satisfaction items of the given groups, in
// questionnaire order.
func kioskItemsFromProto(q *sipasv1.Questionnaire, groups string) []kioskItem {
	want := groupSet(groups)
	scales := map[string][]kioskCode{}
	for _, s := range q.Scales {
		for _, c := range s.Codes {
			scales[s.ScaleId] = append(scales[s.ScaleId], kioskCode{int(c.Code), c.LabelVi})
		}
	}
	var out []kioskItem
	for _, it := range q.Items {
		if it.Kind == sipasv1.ItemKind_ITEM_KIND_SATISFACTION && want[it.Group] {
			out = append(out, kioskItem{code: it.Code, label: it.LabelVi, codes: scales[it.Scale]})
		}
	}
	return out
}

func kioskItemsFromDomain(q *sipas.Questionnaire, groups string) []kioskItem {
	want := groupSet(groups)
	var out []kioskItem
	for _, it := range q.Items {
		if it.Kind == sipas.KindSatisfaction && want[it.Group] {
			ki := kioskItem{code: it.Code, label: it.LabelVi}
			for _, c := range it.Scale.Codes {
				ki.codes = append(ki.codes, kioskCode{c.Code, c.LabelVi})
			}
			out = append(out, ki)
		}
	}
	return out
}

func groupSet(groups string) map[string]bool {
	m := map[string]bool{}
	for _, g := range strings.Split(groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			m[g] = true
		}
	}
	return m
}

// embeddedKioskItems reads the questionnaire from the embedded definitions
// (when the server cannot be reached: a kiosk must work offline).
func embeddedKioskItems(id, groups string) (string, []kioskItem, error) {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		return "", nil, err
	}
	q := cat.Get(id)
	if q == nil {
		return "", nil, usageError{fmt.Sprintf("unknown questionnaire %q", id)}
	}
	return q.TitleVi, kioskItemsFromDomain(q, groups), nil
}

func kioskInteractive(ctx context.Context, e *env, args []string) error {
	var c common
	var outboxPath, qid, groups, pin string
	var drain time.Duration
	fs := newFlags(e, "kiosk", "sipas kiosk [--outbox FILE] [--questionnaire ID]   |   sipas kiosk serve --help   |   sipas kiosk simulate --help",
		"sipas kiosk --token-file kiosk.token --outbox ./kiosk-outbox.db --operator-pin 4321   # a terminal kiosk for trying the service",
		"yes 4 | head -n 23 | sipas kiosk --token-file kiosk.token   # scripted: one answer per line for the 23 questions, saves one response",
		"(a kiosk citizens use is 'sipas kiosk serve', the touch-screen app)")
	c.register(fs, e)
	fs.StringVar(&outboxPath, "outbox", "./kiosk-outbox.db", "the kiosk's durable outbox (SQLite); responses wait here until the server acknowledges them")
	fs.StringVar(&qid, "questionnaire", "sipas-2023", "questionnaire id")
	fs.StringVar(&groups, "groups", serviceGroups, "formula groups whose satisfaction items are asked")
	fs.DurationVar(&drain, "drain-timeout", 10*time.Second, "at the end of input, wait this long for the outbox to empty (0: don't wait)")
	fs.StringVar(&pin, "operator-pin", "", "PIN that lets an operator quit with q (env SIPAS_KIOSK_PIN; empty: q does not quit, only the end of input or Ctrl-C)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q (did you mean 'sipas kiosk serve' or 'sipas kiosk simulate'?)", fs.Arg(0))}
	}
	if pin == "" {
		pin = e.getenv("SIPAS_KIOSK_PIN")
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()

	var title string
	var items []kioskItem
	cctx, cancel := cl.WithTimeout(ctx)
	qresp, qerr := cl.Survey.GetQuestionnaire(cctx, &sipasv1.GetQuestionnaireRequest{Name: "questionnaires/" + qid})
	q := qresp.GetQuestionnaire()
	cancel()
	switch {
	case qerr == nil:
		title, items = q.TitleVi, kioskItemsFromProto(q, groups)
	case client.Definite(client.FromStatus(qerr)) && sipas.KindOf(client.FromStatus(qerr)) != sipas.KindNotFound:
		return qerr // e.g. the token is refused: fix that first
	default:
		var lerr error
		title, items, lerr = embeddedKioskItems(qid, groups)
		if lerr != nil {
			return fmt.Errorf("questionnaire %s: not from the server (%v), nor embedded: %w", qid, describe(client.FromStatus(qerr)), lerr)
		}
		fmt.Fprintf(e.stderr, "sipas: kiosk: server not reachable (%s); using the built-in %s, responses are kept in %s\n",
			sipas.KindOf(client.FromStatus(qerr)), qid, outboxPath)
	}
	if len(items) == 0 {
		return usageError{fmt.Sprintf("questionnaire %s has no satisfaction items in groups %s", qid, groups)}
	}

	ob, err := client.OpenOutbox(outboxPath, cl, client.OutboxOptions{})
	if err != nil {
		return err
	}
	defer ob.Close()
	if err := ob.Start(); err != nil {
		return err
	}

	out := e.stdout
	in := bufio.NewScanner(e.stdin)
	recorded := 0
	quit := false
	for n := 1; !quit && ctx.Err() == nil; n++ {
		fmt.Fprintf(out, "\n=== %s — phiếu số %d ===\n", title, n)
		fmt.Fprintln(out, "Trả lời bằng một số theo thang dưới đây; 8 = không biết, 9 = không áp dụng; Enter = bỏ qua.")
		fmt.Fprintln(out, legend(items[0].codes))
		answers := map[string]int{}
		eof := false
		for i, it := range items {
			v, ok, stop := askItem(out, in, i+1, len(items), it, pin)
			if stop {
				eof, quit = true, true
				break
			}
			if ok {
				answers[it.code] = v
			}
		}
		if eof {
			if len(answers) > 0 {
				fmt.Fprintln(out, "\nPhiếu chưa hoàn thành nên không được gửi. / Incomplete response discarded.")
			}
			break
		}
		if len(answers) == 0 {
			fmt.Fprintln(out, "\nKhông có câu trả lời nào; phiếu không được gửi. / No answers; nothing recorded.")
			continue
		}
		r := &sipas.Response{QuestionnaireID: qid, CollectedAt: time.Now(), Channel: sipas.ChannelKiosk, Answers: answers}
		if err := ob.Submit(ctx, r); err != nil {
			return err
		}
		recorded++
		depth, _, _ := ob.Stats()
		fmt.Fprintf(out, "\nXin cảm ơn! Phiếu đã được ghi nhận (mã %s; %d phiếu đang chờ gửi). / Thank you, response recorded.\n", r.ID, depth)
	}
	if drain > 0 {
		dctx, cancel := context.WithTimeout(ctx, drain)
		_ = ob.Flush(dctx)
		cancel()
	}
	depth, oldest, dead := ob.Stats()
	fmt.Fprintf(e.stderr, "sipas: kiosk: %d responses recorded this session; outbox %s: %d waiting (oldest %s), %d dead letters\n",
		recorded, outboxPath, depth, oldest.Round(time.Second), dead)
	return nil
}

func legend(codes []kioskCode) string {
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d = %s", c.code, c.label))
	}
	return "Thang: " + strings.Join(parts, " · ")
}

// askItem asks one question until it gets a valid answer, an empty line
// (skip), the end of input (stop) or "q" followed by the operator's PIN
// (stop): a citizen cannot quit the kiosk.
func askItem(out io.Writer, in *bufio.Scanner, i, n int, it kioskItem, pin string) (v int, ok, stop bool) {
	for {
		fmt.Fprintf(out, "[%d/%d] %s\n> ", i, n, it.label)
		if !in.Scan() {
			fmt.Fprintln(out)
			return 0, false, true
		}
		s := strings.TrimSpace(in.Text())
		switch strings.ToLower(s) {
		case "":
			return 0, false, false
		case "q", "quit", "thoát", "thoat":
			if pin != "" {
				fmt.Fprint(out, "Mã PIN vận hành / Operator PIN: ")
				if !in.Scan() {
					return 0, false, true
				}
				if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(in.Text())), []byte(pin)) == 1 {
					return 0, false, true
				}
			}
			fmt.Fprintln(out, "Chỉ cán bộ vận hành mới thoát được. / Only an operator can quit.")
			continue
		}
		a, err := strconv.Atoi(s)
		if err == nil {
			if a == sipas.CodeDontKnow || a == sipas.CodeNotApplicable {
				return a, true, false
			}
			for _, c := range it.codes {
				if c.code == a {
					return a, true, false
				}
			}
		}
		fmt.Fprintf(out, "Câu trả lời không hợp lệ. %s; 8, 9 hoặc Enter để bỏ qua. / Invalid answer.\n", legend(it.codes))
	}
}

// simKiosk is one simulated kiosk's tally.
type simKiosk struct {
	Kiosk        string `json:"kiosk"`
	Submitted    int64  `json:"submitted"`
	Acknowledged int64  `json:"acknowledged"`
	Dead         int64  `json:"dead"`
	Pending      int64  `json:"pending"`
}

func kioskSimulate(ctx context.Context, e *env, args []string) error {
	var c common
	var kiosks, count int
	var rate float64
	var duration, drain time.Duration
	var outboxDir, qid, groups string
	var seed uint64
	fs := newFlags(e, "kiosk simulate", "sipas kiosk simulate [--kiosks N] [--rate R] [--duration D | --count N] [--outbox-dir DIR]",
		"sipas kiosk simulate --kiosks 20 --rate 2 --duration 1m --outbox-dir /tmp/kiosks",
		"sipas kiosk simulate --kiosks 1 --count 10000 --rate 0 --duration 0 --outbox-dir /tmp/k --drain-timeout 0   # build a backlog",
		"sipas kiosk simulate --count 0 --duration 0 --outbox-dir /tmp/k --drain-timeout 5m                        # drain it")
	c.register(fs, e)
	fs.IntVar(&kiosks, "kiosks", 1, "number of simulated kiosks")
	fs.Float64Var(&rate, "rate", 1, "responses per second per kiosk (0: as fast as possible)")
	fs.DurationVar(&duration, "duration", 10*time.Second, "how long to generate responses (0: no time limit, use --count)")
	fs.IntVar(&count, "count", 0, "stop each kiosk after this many responses (0: no limit)")
	fs.StringVar(&outboxDir, "outbox-dir", "", "give each kiosk its own outbox DIR/kiosk-NNN.db (empty: submit directly, with retries)")
	fs.DurationVar(&drain, "drain-timeout", 30*time.Second, "after generating, wait this long for the outboxes to empty (0: don't wait)")
	fs.StringVar(&qid, "questionnaire", "sipas-2023", "questionnaire id")
	fs.StringVar(&groups, "groups", serviceGroups, "formula groups whose satisfaction items are answered")
	fs.Uint64Var(&seed, "seed", 0, "random seed (0: random)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if kiosks < 1 || rate < 0 || count < 0 || duration < 0 {
		return usageError{"--kiosks must be at least 1; --rate, --count and --duration must not be negative"}
	}
	if outboxDir == "" && duration == 0 && count == 0 {
		return usageError{"give --duration or --count (draining only makes sense with --outbox-dir)"}
	}
	_, items, err := embeddedKioskItems(qid, groups)
	if err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	if outboxDir != "" {
		if err := os.MkdirAll(outboxDir, 0o755); err != nil {
			return err
		}
		// A drain-only run drains every outbox already in the directory.
		var existing []string
		if count == 0 && duration == 0 {
			existing, _ = filepath.Glob(filepath.Join(outboxDir, "kiosk-*.db"))
		}
		for _, p := range existing {
			var k int
			if _, err := fmt.Sscanf(filepath.Base(p), "kiosk-%d.db", &k); err == nil && k > kiosks {
				kiosks = k
			}
		}
	}
	if seed == 0 {
		seed = rand.Uint64()
	}

	gctx := ctx
	var cancel context.CancelFunc = func() {}
	if duration > 0 {
		gctx, cancel = context.WithTimeout(ctx, duration)
	}
	defer cancel()

	tallies := make([]*simKiosk, kiosks)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for k := range kiosks {
		t := &simKiosk{Kiosk: fmt.Sprintf("kiosk-%03d", k+1)}
		tallies[k] = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := simulateOne(ctx, gctx, cl, t, items, qid, rate, count, outboxDir, drain, seed+uint64(k)); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()

	total := &simKiosk{Kiosk: "total"}
	t := &table{header: []string{"kiosk", "submitted", "acknowledged", "dead", "pending"}}
	for _, s := range tallies {
		total.Submitted += s.Submitted
		total.Acknowledged += s.Acknowledged
		total.Dead += s.Dead
		total.Pending += s.Pending
		t.add(s.Kiosk, fmt.Sprint(s.Submitted), fmt.Sprint(s.Acknowledged), fmt.Sprint(s.Dead), fmt.Sprint(s.Pending))
	}
	t.add(total.Kiosk, fmt.Sprint(total.Submitted), fmt.Sprint(total.Acknowledged), fmt.Sprint(total.Dead), fmt.Sprint(total.Pending))
	t.objects = map[string]any{"kiosks": tallies, "total": total}
	if err := t.write(e.stdout, c.format); err != nil {
		return err
	}
	if v := firstErr.Load(); v != nil {
		return v.(error)
	}
	if total.Dead > 0 {
		return rejectedError{fmt.Sprintf("%d responses were refused by the server (kept as dead letters)", total.Dead)}
	}
	if drain > 0 && total.Pending > 0 {
		return &sipas.Error{Kind: sipas.KindUnavailable, Message: fmt.Sprintf("%d responses still waiting in the outboxes after %s; they are safe and will be sent on the next run", total.Pending, drain)}
	}
	return nil
}

// simulateOne runs one kiosk: generate until gctx ends or count is reached,
// then (with an outbox) wait up to drain for the queue to empty.
func simulateOne(ctx, gctx context.Context, cl *client.Client, t *simKiosk, items []kioskItem, qid string,
	rate float64, count int, outboxDir string, drain time.Duration, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5195a5))
	var ob *client.Outbox
	if outboxDir != "" {
		var err error
		ob, err = client.OpenOutbox(filepath.Join(outboxDir, t.Kiosk+".db"), cl, client.OutboxOptions{})
		if err != nil {
			return err
		}
		defer ob.Close()
		if err := ob.Start(); err != nil {
			return err
		}
	}
	var tick <-chan time.Time
	if rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tk.Stop()
		tick = tk.C
	}
	generate := count > 0 || gctx != ctx
	for generate && gctx.Err() == nil && (count == 0 || t.Submitted < int64(count)) {
		if tick != nil {
			select {
			case <-gctx.Done():
			case <-tick:
			}
			if gctx.Err() != nil {
				break
			}
		}
		r := simResponse(rng, items, qid)
		if ob != nil {
			if err := ob.Submit(ctx, r); err != nil {
				return err
			}
			t.Submitted++
			continue
		}
		t.Submitted++
		_, err := cl.Submit(ctx, r, 8, client.Backoff{})
		switch {
		case err == nil:
			t.Acknowledged++
		case client.Definite(err):
			t.Dead++
		default:
			t.Pending++
		}
	}
	if ob == nil {
		return nil
	}
	if drain > 0 {
		dctx, cancel := context.WithTimeout(ctx, drain)
		_ = ob.Flush(dctx)
		cancel()
	}
	depth, _, dead := ob.Stats()
	t.Acknowledged, t.Dead, t.Pending = ob.Acknowledged(), int64(dead), int64(depth)
	if err := ob.LastError(); err != nil && depth > 0 && errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return nil
}

// simResponse makes a realistic kiosk response: satisfaction skewed
// positive, a few "don't know", "not applicable" and skipped items.
func simResponse(rng *rand.Rand, items []kioskItem, qid string) *sipas.Response {
	answers := make(map[string]int, len(items))
	for _, it := range items {
		p := rng.Float64()
		switch {
		case p < 0.05:
			continue // skipped
		case p < 0.08:
			answers[it.code] = sipas.CodeDontKnow
		case p < 0.10:
			answers[it.code] = sipas.CodeNotApplicable
		default:
			answers[it.code] = skewed(rng, it.codes)
		}
	}
	if len(answers) == 0 && len(items) > 0 {
		answers[items[0].code] = skewed(rng, items[0].codes)
	}
	return &sipas.Response{QuestionnaireID: qid, CollectedAt: time.Now(), Channel: sipas.ChannelKiosk, Answers: answers}
}

// skewed picks a code with weights rising towards the top of the scale
// (for SAT5: 3%, 7%, 20%, 45%, 25%).
func skewed(rng *rand.Rand, codes []kioskCode) int {
	if len(codes) == 0 {
		return sipas.CodeDontKnow
	}
	if len(codes) == 5 {
		w := [5]float64{0.03, 0.07, 0.20, 0.45, 0.25}
		p := rng.Float64()
		for i, x := range w {
			if p < x {
				return codes[i].code
			}
			p -= x
		}
		return codes[4].code
	}
	return codes[len(codes)/2+rng.IntN(len(codes)-len(codes)/2)].code
}
