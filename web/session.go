package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// Sessions are kept in memory: a restart signs everybody out, which is
// acceptable for a handful of officials and keeps no secret on disk. A
// session holds the hash of the credential's token (never the token), and
// every request authenticates that hash again, so revoking or expiring the
// credential ends its sessions at once.

const (
	sessionCookie = "sipas_session"
	// preCookie carries the CSRF token of the sign-in form, before a session exists.
	preCookie = "sipas_signin"
	// SessionTTL is how long a session lasts after sign-in.
	SessionTTL  = 8 * time.Hour
	maxSessions = 10_000
)

type session struct {
	id      string
	hash    [32]byte
	csrf    string
	expires time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[string]*session
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(hash [32]byte, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	if len(s.m) >= maxSessions {
		for id, x := range s.m {
			if !now.Before(x.expires) {
				delete(s.m, id)
			}
		}
		if len(s.m) >= maxSessions { // still full: drop an arbitrary one rather than grow
			for id := range s.m {
				delete(s.m, id)
				break
			}
		}
	}
	x := &session{id: randomToken(), hash: hash, csrf: randomToken(), expires: now.Add(SessionTTL)}
	s.m[x.id] = x
	return x
}

func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil {
		return nil
	}
	if !now.Before(x.expires) {
		delete(s.m, id)
		return nil
	}
	return x
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// cookie builds a cookie with the attributes every dashboard cookie has:
// HttpOnly, SameSite=Strict, Secure when the request came over TLS (or
// always, with Config.SecureCookies).
func (h *Handler) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.cfg.SecureCookies, MaxAge: int(maxAge / time.Second)}
	if maxAge > 0 {
		c.Expires = time.Now().Add(maxAge)
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	return c
}

func equalTokens(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin reports whether a state-changing request comes from a page of
// this server: browsers send Sec-Fetch-Site or Origin on POSTs. Requests
// with neither (non-browser clients) fall back on the CSRF token alone.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == "http://"+r.Host || o == "https://"+r.Host
	}
	return true
}

// limiter bounds sign-in attempts per client address: burst attempts at
// once, then one per interval. A failed attempt and a successful one cost
// the same, so the limit cannot be probed.
type limiter struct {
	mu       sync.Mutex
	burst    int
	interval time.Duration
	m        map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) > 100_000 {
		l.m = map[string]*bucket{}
	}
	b := l.m[key]
	if b == nil {
		b = &bucket{tokens: float64(l.burst), last: now}
		l.m[key] = b
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.interval)
	if b.tokens > float64(l.burst) {
		b.tokens = float64(l.burst)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// clientKey is the peer address without its port.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
