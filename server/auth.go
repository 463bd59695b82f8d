package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// tokenPrefix marks sipas bearer tokens so that they are recognisable in
// secret scanners; the rest is 32 random bytes, base64url.
const tokenPrefix = "sps_"

// NewToken returns a fresh bearer token and the hash stored for it.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the stored form of a token. Tokens carry 256 random
// bits, so a plain SHA-256 is enough (no password stretching needed).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Principal is the authenticated caller.
type Principal struct {
	CredentialID string
	Role         sipasv1.Role
	// UnitID and UnitProvince are set for kiosks: the unit of the credential
	// and the province code of that unit.
	UnitID       string
	UnitProvince string
	// Provinces is the scope of surveyors and analysts; All means every province.
	Provinces map[string]bool
	All       bool
	// CreateTime and ExpireTime (nil: never) are the credential's: a kiosk's
	// collected_at is checked against the first, an open upload stream ends
	// at the second.
	CreateTime time.Time
	ExpireTime *time.Time
}

// RoleName is the lower-case role name used in logs and metrics.
func (p *Principal) RoleName() string {
	if p == nil {
		return "anonymous"
	}
	return roleName(p.Role)
}

func roleName(r sipasv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// InProvince reports whether a province code is within the caller's scope.
// Admins see everything; kiosks only their unit's province.
func (p *Principal) InProvince(code string) bool {
	switch p.Role {
	case sipasv1.Role_ROLE_ADMIN:
		return true
	case sipasv1.Role_ROLE_KIOSK:
		return code == p.UnitProvince
	}
	return p.All || p.Provinces[code]
}

type principalKey struct{}

// principalFrom returns the authenticated caller of ctx, or nil.
func principalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// authenticator turns the bearer token of a call into a Principal.
type authenticator struct {
	store store.Backend
	now   func() time.Time

	// cache holds recently authenticated credentials by token hash, so that
	// a busy kiosk costs no database read per call. Revocation through this
	// server evicts at once (forget); cacheTTL bounds how long a change made
	// elsewhere (another process on the same database) can go unseen.
	mu    sync.Mutex
	cache map[[32]byte]cachedPrincipal
	// generation counts revocations seen by forget. A lookup remembers its
	// result only if no revocation happened while it read the database:
	// otherwise a lookup that read the credential just before a revocation
	// could put it back into the cache just after forget removed it.
	generation uint64
	// afterLookup, when set (tests), runs between the database read of a
	// lookup and remembering its result.
	afterLookup func()
}

// cacheTTL is how long an authenticated credential is trusted without a
// database read. Expiry is still checked on every call. It is below the
// freshness bound of replicas over one database (pgstore.FreshnessBound,
// 2 s): a credential revoked through another replica is refused here
// within it.
const cacheTTL = 1 * time.Second

type cachedPrincipal struct {
	p       *Principal
	expires *time.Time // the credential's own expiry
	until   time.Time  // end of trust in this entry
}

// forget evicts a credential from the cache (after a revocation).
func (a *authenticator) forget(credentialID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.generation++
	for k, c := range a.cache {
		if c.p.CredentialID == credentialID {
			delete(a.cache, k)
		}
	}
}

func (a *authenticator) cached(hash [32]byte, now time.Time) *Principal {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[hash]
	if !ok || !now.Before(c.until) || (c.expires != nil && !now.Before(*c.expires)) {
		return nil
	}
	return c.p
}

// lookupGeneration returns the revocation generation before a lookup.
func (a *authenticator) lookupGeneration() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.generation
}

// remember caches p unless a revocation happened since generation gen.
func (a *authenticator) remember(gen uint64, hash [32]byte, p *Principal, expires *time.Time, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen != a.generation {
		return // a credential may have been revoked while p was read
	}
	if a.cache == nil || len(a.cache) > 100_000 {
		a.cache = map[[32]byte]cachedPrincipal{} // bounded: start over rather than grow
	}
	a.cache[hash] = cachedPrincipal{p: p, expires: expires, until: now.Add(cacheTTL)}
}

var errUnauthenticated = &sipas.Error{Kind: sipas.KindUnauthenticated, Reason: "UNAUTHENTICATED",
	Message: "missing, malformed, expired or revoked credential: send 'authorization: Bearer <token>'"}

// authenticate reads the token from the call metadata and looks it up. Every
// failure gives the same error so that callers learn nothing about which
// tokens exist.
func (a *authenticator) authenticate(ctx context.Context) (*Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return nil, errUnauthenticated
	}
	token, ok := bearerToken(vals[0])
	if !ok {
		return nil, errUnauthenticated
	}
	return a.byToken(ctx, token)
}

// byToken authenticates a bearer token.
func (a *authenticator) byToken(ctx context.Context, token string) (*Principal, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 128 {
		return nil, errUnauthenticated
	}
	return a.byHash(ctx, [32]byte(HashToken(token)))
}

// byHash authenticates the credential whose token has the given hash; the
// web dashboard's sessions keep the hash, never the token.
func (a *authenticator) byHash(ctx context.Context, key [32]byte) (*Principal, error) {
	hash := key[:]
	now := a.now()
	if p := a.cached(key, now); p != nil {
		return p, nil
	}
	gen := a.lookupGeneration()
	cred, err := a.store.CredentialByTokenHash(ctx, hash)
	if err != nil {
		if sipas.KindOf(err) == sipas.KindNotFound {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	// The lookup is by hash; compare again in constant time so that the
	// decision never depends on a timing-variable comparison.
	if subtle.ConstantTimeCompare(cred.TokenHash, hash) != 1 {
		return nil, errUnauthenticated
	}
	if !cred.Active(now) {
		return nil, errUnauthenticated
	}
	p := &Principal{CredentialID: cred.ID, Role: sipasv1.Role(cred.Role), All: cred.AllProvinces,
		CreateTime: cred.CreateTime, ExpireTime: cred.ExpireTime}
	if len(cred.Provinces) > 0 {
		p.Provinces = make(map[string]bool, len(cred.Provinces))
		for _, c := range cred.Provinces {
			p.Provinces[c] = true
		}
	}
	if p.Role == sipasv1.Role_ROLE_KIOSK {
		u, ok := a.store.Unit(cred.UnitID)
		if !ok {
			return nil, errUnauthenticated
		}
		p.UnitID, p.UnitProvince = u.ID, u.ProvinceCode
	}
	if a.afterLookup != nil {
		a.afterLookup()
	}
	a.remember(gen, key, p, cred.ExpireTime, now)
	return p, nil
}

// bearerToken returns the token of an authorization value. The scheme name
// is case-insensitive (RFC 6750 §2.1 after RFC 7235 §2.1).
func bearerToken(v string) (string, bool) {
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimLeft(v[len(scheme):], " "), true
}

// stillActive reads the credential of p from the database (not the cache)
// and reports whether it is neither revoked nor expired: an open upload
// stream asks it every few seconds, so that it ends with its credential even
// when the revocation was made by another process.
func (a *authenticator) stillActive(ctx context.Context, p *Principal) (bool, error) {
	now := a.now()
	if p.ExpireTime != nil && !now.Before(*p.ExpireTime) {
		return false, nil
	}
	c, err := a.store.GetCredential(ctx, p.CredentialID)
	if err != nil {
		if sipas.KindOf(err) == sipas.KindNotFound {
			return false, nil
		}
		return false, err
	}
	return c.Active(now), nil
}

// policy says who may call a method. open means no credential is needed.
type policy struct {
	open  bool
	roles []sipasv1.Role
}

func (p policy) allows(r sipasv1.Role) bool {
	for _, x := range p.roles {
		if x == r {
			return true
		}
	}
	return false
}

var (
	kiosk    = sipasv1.Role_ROLE_KIOSK
	surveyor = sipasv1.Role_ROLE_SURVEYOR
	analyst  = sipasv1.Role_ROLE_ANALYST
	admin    = sipasv1.Role_ROLE_ADMIN
)

// policies holds the access policy of every method the server registers.
// A method without an entry is refused (default deny); a test enumerates the
// registered methods and fails if one is missing here.
var policies = map[string]policy{
	sipasv1.SurveyService_GetQuestionnaire_FullMethodName:     {roles: []sipasv1.Role{kiosk, surveyor, analyst, admin}},
	sipasv1.SurveyService_ListQuestionnaires_FullMethodName:   {roles: []sipasv1.Role{kiosk, surveyor, analyst, admin}},
	sipasv1.SurveyService_SubmitResponse_FullMethodName:       {roles: []sipasv1.Role{kiosk, surveyor}},
	sipasv1.SurveyService_UploadBatch_FullMethodName:          {roles: []sipasv1.Role{surveyor}},
	sipasv1.SurveyService_ReportKioskHeartbeat_FullMethodName: {roles: []sipasv1.Role{kiosk}},
	// Corrections: a survey team corrects what it sent, an admin anything
	// (the store checks the sender). A kiosk token sits on a public device
	// and corrects nothing: its operator asks a survey team or an admin.
	sipasv1.SurveyService_WithdrawResponse_FullMethodName:   {roles: []sipasv1.Role{surveyor, admin}},
	sipasv1.SurveyService_AmendResponse_FullMethodName:      {roles: []sipasv1.Role{surveyor, admin}},
	sipasv1.SurveyService_GetResponseHistory_FullMethodName: {roles: []sipasv1.Role{surveyor, admin}},

	sipasv1.IndexService_GetIndex_FullMethodName:      {roles: []sipasv1.Role{analyst, admin}},
	sipasv1.IndexService_RankProvinces_FullMethodName: {roles: []sipasv1.Role{analyst, admin}},
	sipasv1.IndexService_RankUnits_FullMethodName:     {roles: []sipasv1.Role{analyst, admin}},
	sipasv1.IndexService_GetSeries_FullMethodName:     {roles: []sipasv1.Role{analyst, admin}},
	sipasv1.IndexService_GetWeakPoints_FullMethodName: {roles: []sipasv1.Role{analyst, admin}},

	sipasv1.AdminService_CreateUnit_FullMethodName:        {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_GetUnit_FullMethodName:           {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ListUnits_FullMethodName:         {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_CreateCredential_FullMethodName:  {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ListCredentials_FullMethodName:   {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_RevokeCredential_FullMethodName:  {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_Backup_FullMethodName:            {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ListAuditEvents_FullMethodName:   {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ListKiosks_FullMethodName:        {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_CountResponses_FullMethodName:    {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ClosePeriod_FullMethodName:       {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ListClosedPeriods_FullMethodName: {roles: []sipasv1.Role{admin}},
	sipasv1.AdminService_ReopenPeriod_FullMethodName:      {roles: []sipasv1.Role{admin}},

	"/grpc.health.v1.Health/Check": {open: true},
	"/grpc.health.v1.Health/Watch": {open: true},
	"/grpc.health.v1.Health/List":  {open: true},
}

var errPermissionDenied = &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "PERMISSION_DENIED",
	Message: "this credential's role may not call this method"}

var errUnknownMethod = &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "NO_POLICY",
	Message: "method has no access policy"}

// authorize authenticates the call and applies the method's policy. It
// returns the context carrying the principal.
func (a *authenticator) authorize(ctx context.Context, method string) (context.Context, *Principal, error) {
	pol, ok := policies[method]
	if !ok {
		return ctx, nil, errUnknownMethod
	}
	if pol.open {
		return ctx, nil, nil
	}
	p, err := a.authenticate(ctx)
	if err != nil {
		return ctx, nil, err
	}
	if !pol.allows(p.Role) {
		return ctx, p, errPermissionDenied
	}
	return context.WithValue(ctx, principalKey{}, p), p, nil
}
