// Package web is the dashboard officials read indices in: national,
// province and unit views with charts, and every table exported as CSV,
// XLSX or JSON and every chart as SVG. It is served by sipasd on its HTTP
// listener.
//
// The pages hold no second source of truth: every figure comes from
// server.Reader, which runs the gRPC IndexService handlers themselves (the
// same scope checks, engine and disclosure control) for the signed-in
// credential, and the exports are written by package export, which the
// sipas CLI uses too. Every asset is embedded; nothing is loaded from
// another host.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/server"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Config is what the dashboard needs.
type Config struct {
	Reader   *server.Reader
	Catalog  *sipas.Catalog
	Registry *sipas.Registry
	Logger   *slog.Logger
	// SecureCookies marks cookies Secure on every request, not only on
	// requests that came over TLS: for a dashboard behind a TLS proxy.
	SecureCookies bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// SignInBurst and SignInInterval bound sign-in attempts per client
	// address (defaults 5 and 12 s: five at once, then five a minute).
	SignInBurst    int
	SignInInterval time.Duration
}

// Handler serves the dashboard.
type Handler struct {
	cfg      Config
	mux      *http.ServeMux
	tmpl     *template.Template
	sessions sessions
	limit    limiter
}

// New builds the dashboard handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Reader == nil || cfg.Catalog == nil || cfg.Registry == nil {
		return nil, errors.New("web: Reader, Catalog and Registry are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SignInBurst <= 0 {
		cfg.SignInBurst = 5
	}
	if cfg.SignInInterval <= 0 {
		cfg.SignInInterval = 12 * time.Second
	}
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parsing templates: %w", err)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tmpl: t,
		limit: limiter{burst: cfg.SignInBurst, interval: cfg.SignInInterval}}
	h.mux.HandleFunc("GET /{$}", h.root)
	h.mux.HandleFunc("GET /signin", h.signinForm)
	h.mux.HandleFunc("POST /signin", h.signin)
	h.mux.HandleFunc("POST /signout", h.signout)
	h.mux.Handle("GET /static/", http.FileServerFS(assets))
	h.mux.HandleFunc("GET /national", h.authed(h.national))
	h.mux.HandleFunc("GET /national/{file}", h.authed(h.nationalFile))
	h.mux.HandleFunc("GET /province/{code}", h.authed(h.province))
	h.mux.HandleFunc("GET /province/{code}/{file}", h.authed(h.provinceFile))
	h.mux.HandleFunc("GET /unit/{id}", h.authed(h.unit))
	h.mux.HandleFunc("GET /unit/{id}/{file}", h.authed(h.unitFile))
	h.mux.HandleFunc("GET /fleet", h.authed(h.fleet))
	return h, nil
}

// Register adds the dashboard's routes to mux at "/" (the other routes of
// mux, such as /metrics, keep precedence being more specific).
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle("/", h) }

// ServeHTTP sets the security headers of every response and routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// request is one authenticated request.
type request struct {
	p    *server.Principal
	sess *session
	prm  params
}

func (h *Handler) authed(fn func(w http.ResponseWriter, r *http.Request, rq *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		var sess *session
		if err == nil {
			sess = h.sessions.get(c.Value, h.cfg.Now())
		}
		if sess == nil {
			h.toSignIn(w, r)
			return
		}
		p, err := h.cfg.Reader.Principal(r.Context(), sess.hash)
		if err != nil {
			switch status.Code(err) {
			case codes.Unauthenticated, codes.PermissionDenied: // revoked, expired, or no longer a reader
				h.sessions.delete(sess.id)
				h.toSignIn(w, r)
			default: // the store failed: keep the session, say so
				h.cfg.Logger.Error("web: authenticating a session", "err", err)
				http.Error(w, "internal error; try again", http.StatusInternalServerError)
			}
			return
		}
		prm, err := h.parseParams(r)
		if err != nil {
			h.fail(w, r, &request{p: p, sess: sess, prm: prm}, err)
			return
		}
		fn(w, r, &request{p: p, sess: sess, prm: prm})
	}
}

func (h *Handler) toSignIn(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// root sends a reader to the national view, or to their first province.
func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	h.authed(func(w http.ResponseWriter, r *http.Request, rq *request) {
		http.Redirect(w, r, h.home(r.Context(), rq), http.StatusSeeOther)
	})(w, r)
}

func (h *Handler) home(ctx context.Context, rq *request) string {
	if h.cfg.Reader.MayReadNation(ctx, rq.p) {
		return "/national" + rq.prm.Query()
	}
	if provs := h.ownProvinces(rq.p); len(provs) > 0 {
		return "/province/" + provs[0].Code + rq.prm.Query()
	}
	return "/signin"
}

// ownProvinces are the current provinces in a scoped credential's scope.
func (h *Handler) ownProvinces(p *server.Principal) []*sipas.Province {
	var out []*sipas.Province
	for _, pr := range h.cfg.Registry.ValidOn(h.cfg.Now()) {
		if p.InProvince(pr.Code) {
			out = append(out, pr)
		}
	}
	return out
}

type signinPage struct {
	L     lang
	CSRF  string
	Next  string
	Error string
	Lang  string
}

func (h *Handler) signinForm(w http.ResponseWriter, r *http.Request) {
	h.renderSignin(w, r, "", http.StatusOK)
}

func (h *Handler) renderSignin(w http.ResponseWriter, r *http.Request, msg string, code int) {
	l := langOf(r.FormValue("lang"))
	csrf := randomToken()
	http.SetCookie(w, h.cookie(r, preCookie, csrf, 30*time.Minute))
	next := r.FormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		next = ""
	}
	h.render(w, code, "signin.html", signinPage{L: l, CSRF: csrf, Next: next, Error: msg, Lang: l.code()})
}

// signin checks the CSRF token, the rate limit and the credential, and
// opens a session. Every refusal of a credential reads the same, so the
// form tells nothing about which tokens exist or what role they have.
func (h *Handler) signin(w http.ResponseWriter, r *http.Request) {
	l := langOf(r.FormValue("lang"))
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	pre, err := r.Cookie(preCookie)
	if err != nil || !equalTokens(pre.Value, r.PostFormValue("csrf")) || !sameOrigin(r) {
		h.renderSignin(w, r, l.t("err_csrf"), http.StatusForbidden)
		return
	}
	if !h.limit.allow(clientKey(r), h.cfg.Now()) {
		w.Header().Set("Retry-After", fmt.Sprint(int(h.cfg.SignInInterval/time.Second)+1))
		h.renderSignin(w, r, l.t("err_rate"), http.StatusTooManyRequests)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	p, hash, err := h.cfg.Reader.SignIn(r.Context(), token)
	if err != nil {
		h.cfg.Logger.Info("web sign-in refused", "code", status.Code(err).String(), "peer", clientKey(r))
		h.renderSignin(w, r, l.t("err_signin"), http.StatusUnauthorized)
		return
	}
	sess := h.sessions.create(hash, h.cfg.Now())
	http.SetCookie(w, h.cookie(r, sessionCookie, sess.id, SessionTTL))
	http.SetCookie(w, h.cookie(r, preCookie, "", -1))
	h.cfg.Logger.Info("web sign-in", "credential", p.CredentialID, "role", p.RoleName())
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/signin") {
		next = h.home(r.Context(), &request{p: p, prm: params{Lang: l}})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	sess := h.sessions.get(c.Value, h.cfg.Now())
	if sess == nil || !equalTokens(sess.csrf, r.PostFormValue("csrf")) || !sameOrigin(r) {
		http.Error(w, "forbidden: bad or missing CSRF token", http.StatusForbidden)
		return
	}
	h.sessions.delete(sess.id)
	http.SetCookie(w, h.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/signin?lang="+langOf(r.PostFormValue("lang")).code(), http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.cfg.Logger.Error("web: rendering", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	frame
	Code    int
	Message string
}

// fail shows an error the way the API refuses: the status code's HTTP
// equivalent, and the API's message for refusals the caller can act on.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	st, _ := status.FromError(err)
	code, msg := http.StatusInternalServerError, rq.prm.Lang.t("err_internal")
	switch st.Code() {
	case codes.PermissionDenied:
		code, msg = http.StatusForbidden, rq.prm.Lang.t("err_scope")
	case codes.NotFound:
		code, msg = http.StatusNotFound, st.Message()
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		code, msg = http.StatusBadRequest, st.Message()
	case codes.Unauthenticated:
		h.toSignIn(w, r)
		return
	default:
		h.cfg.Logger.Error("web: query failed", "path", r.URL.Path, "err", err)
	}
	h.render(w, code, "error.html", errorPage{frame: h.frame(r.Context(), rq, rq.prm.Lang.t("error")), Code: code, Message: msg})
}

// sendTable writes an export.
func (h *Handler) sendTable(w http.ResponseWriter, rq *request, t *export.Table, f export.Format, stem string) {
	var buf bytes.Buffer
	if err := t.Write(&buf, f, rq.prm.Lang.export(), h.cfg.Now()); err != nil {
		h.cfg.Logger.Error("web: export", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", stem+"."+string(f)))
	_, _ = w.Write(buf.Bytes())
}

func sendSVG(w http.ResponseWriter, svg template.HTML, stem string) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", stem+".svg"))
	_, _ = fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s", svg)
}

// splitFile splits "ranking.xlsx" into its table and format.
func splitFile(file string) (table string, f export.Format, ok bool) {
	i := strings.LastIndexByte(file, '.')
	if i <= 0 {
		return "", "", false
	}
	table, ext := file[:i], file[i+1:]
	switch export.Format(ext) {
	case export.CSV, export.XLSX, export.JSON, "svg":
		return table, export.Format(ext), true
	}
	return "", "", false
}

// stem is a file name stem for an export: what, where and when.
func stem(parts ...string) string {
	s := strings.Join(parts, "_")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

// boundaryProto is the boundaries of a view.
func boundaryProto(b sipas.Boundaries) sipasv1.Boundaries { return sipasv1.Boundaries(b) }
