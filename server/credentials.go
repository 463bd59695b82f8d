package server

import (
	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// NewCredential is how every credential is issued, by the AdminService and
// by sipasd's first start: it checks c against the issuing rules
// (sipas.CheckCredential, at c.CreateTime) and makes its token. It returns
// the credential to store, with the hash of the token, and the token, which
// is shown once and never stored; and the audit event (actor acting) to
// store with it in the same transaction.
func NewCredential(c sipas.Credential, provinces *sipas.Registry, actor string) (store.Credential, string, store.AuditEvent, error) {
	if err := sipas.CheckCredential(c, c.CreateTime, provinces); err != nil {
		return store.Credential{}, "", store.AuditEvent{}, err
	}
	token, hash := NewToken()
	audit := store.AuditEvent{Actor: actor, Action: "credential.create", Time: c.CreateTime,
		Detail: "role=" + c.Role.String() + " scope=" + c.Scope()}
	return store.Credential{Credential: c, TokenHash: hash}, token, audit, nil
}
