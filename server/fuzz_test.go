package server

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
)

// fuzzSeeds are the bad-input catalogue plus a valid response, marshaled.
func fuzzSeeds(t testing.TB) [][]byte {
	cat, _, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	tt := &testing.T{}
	var out [][]byte
	good := serviceResponse(tt, cat, "48", time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	for _, bi := range append(badInputCatalogue(), badInput{name: "valid", mutate: func(*sipasv1.Response) {}}) {
		r := proto.Clone(good).(*sipasv1.Response)
		bi.mutate(r)
		b, err := proto.Marshal(&sipasv1.UploadBatchRequest{Items: []*sipasv1.BatchItem{&sipasv1.BatchItem{Line: 2, Response: r}}})
		if err != nil {
			continue // a mutation the encoder itself refuses (invalid UTF-8)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeValidate feeds arbitrary bytes through the request decoding and
// validation path: it must never panic, and an accepted response must hash
// the same when validated twice.
func FuzzDecodeValidate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req sipasv1.UploadBatchRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		for _, item := range req.GetItems() {
			acc, err := sipas.Validate(cat, reg, responseFromProto(item.GetResponse()), now)
			if err != nil {
				if sipas.KindOf(err) != sipas.KindInvalid && sipas.KindOf(err) != sipas.KindFailedPrecondition {
					t.Fatalf("validation error of kind %v: %v", sipas.KindOf(err), err)
				}
				continue
			}
			again, err := sipas.Validate(cat, reg, responseFromProto(item.GetResponse()), now)
			if err != nil || again.Hash != acc.Hash || acc.Province == nil {
				t.Fatalf("accepted response not stable: %v", err)
			}
			// Either answer form hashes as the map form of the same answers.
			m := *acc.Response
			m.Packed, m.Answers = nil, map[string]int{}
			for i, v := range acc.Answers {
				if v != 0 {
					m.Answers[acc.Questionnaire.Items[i].Code] = int(v) - 1
				}
			}
			if sipas.ContentHash(acc.Questionnaire, &m) != acc.Hash {
				t.Fatal("the accepted hash differs from the hash of the same answers in the map form")
			}
		}
	})
}

var (
	fuzzOnce sync.Once
	fuzzEnv  *testEnv
)

// FuzzUploadBatch sends arbitrary items through the real upload stream of a
// real server: every item gets exactly one outcome, the summary adds up, and
// the server keeps serving.
func FuzzUploadBatch(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, copies uint8) {
		var req sipasv1.UploadBatchRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		fuzzOnce.Do(func() {
			// One server for the whole fuzzing process; its cleanup is tied to
			// a throwaway test so it outlives each input.
			fuzzEnv = surveyorEnv(&testing.T{}, func(c *Config) { c.RatePerSecond = -1 })
		})
		e := fuzzEnv
		e.t = t
		n := int(copies%4) + 1
		st, err := e.survey.UploadBatch(e.as("surveyor"))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := st.Send(&req); err != nil {
				t.Fatal(err)
			}
		}
		st.CloseSend()
		want := n * len(req.GetItems())
		sum, res := drainUpload(t, st)
		if sum == nil || sum.Received != int64(want) || len(res) != want || sum.Accepted+sum.Duplicate+sum.Rejected != int64(want) {
			t.Fatalf("sent %d messages of %d items: summary %v, %d results", n, len(req.GetItems()), sum, len(res))
		}
		for _, r := range res {
			if r.Outcome == sipasv1.ItemOutcome_ITEM_OUTCOME_UNSPECIFIED {
				t.Fatalf("item without outcome: %v", r)
			}
		}
		// Each response, however often it is sent, is stored at most once.
		ids := map[uuid.UUID]bool{}
		for _, it := range req.GetItems() {
			if id, err := uuid.Parse(strings.TrimSpace(it.GetResponse().GetResponseId())); err == nil {
				ids[id] = true
			}
		}
		if sum.Accepted > int64(len(ids)) {
			t.Fatalf("%d distinct responses accepted %d times", len(ids), sum.Accepted)
		}
	})
}
