package server

import (
	"sync"

	"github.com/sipas-vn/sipas"
)

// streamSlots caps the open upload streams, per credential and in total.
// A stream holds at most maxChunksInFlight+1 chunks in memory (see
// UploadBatch), so the caps bound the memory all uploads can take.
type streamSlots struct {
	perCredential, total int

	mu   sync.Mutex
	open map[string]int // by credential id
	n    int
}

var errStreamLimit = &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "STREAM_LIMIT",
	Message: "too many open upload streams for this credential or this server; finish or cancel one, then retry"}

// acquire takes a slot for credential id, or fails with errStreamLimit. The
// returned release gives it back (call it once).
func (s *streamSlots) acquire(id string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= s.total || s.open[id] >= s.perCredential {
		return nil, errStreamLimit
	}
	s.n++
	s.open[id]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n--
		if s.open[id]--; s.open[id] <= 0 {
			delete(s.open, id)
		}
	}, nil
}

// count returns the open streams.
func (s *streamSlots) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
