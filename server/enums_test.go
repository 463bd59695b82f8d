package server

import (
	"strings"
	"testing"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// TestAPIEnumsMatchTheDomain pins the numbering the handlers rely on when
// they convert with sipas.CredentialRole(req.GetRole()),
// sipasv1.Role(c.Role), sipas.Channel(req.GetChannel()) and
// sipasv1.Boundaries(b): every API value, read the other way than the
// client's TestDomainEnumsMatchTheAPI, is the domain value of the same name,
// and the unspecified values are the domain's zero values.
func TestAPIEnumsMatchTheDomain(t *testing.T) {
	same := func(what, api, prefix, domain string) {
		t.Helper()
		if want := strings.ToLower(strings.TrimPrefix(api, prefix)); strings.ReplaceAll(domain, "-", "_") != want {
			t.Errorf("%s: API %s is domain %q, want %q", what, api, domain, want)
		}
	}
	for n := range sipasv1.Role_name {
		r := sipasv1.Role(n)
		if r == sipasv1.Role_ROLE_UNSPECIFIED {
			if sipas.CredentialRole(r) != sipas.CredentialRoleUnspecified {
				t.Errorf("ROLE_UNSPECIFIED is domain %v", sipas.CredentialRole(r))
			}
			continue
		}
		same("role", r.String(), "ROLE_", sipas.CredentialRole(r).String())
		// The name the server logs and audits is the domain's.
		if roleName(r) != sipas.CredentialRole(r).String() {
			t.Errorf("roleName(%v) = %q, domain %q", r, roleName(r), sipas.CredentialRole(r))
		}
	}
	for n := range sipasv1.Channel_name {
		c := sipasv1.Channel(n)
		if c == sipasv1.Channel_CHANNEL_UNSPECIFIED {
			if sipas.Channel(c) != sipas.ChannelUnspecified {
				t.Errorf("CHANNEL_UNSPECIFIED is domain %v", sipas.Channel(c))
			}
			continue
		}
		same("channel", c.String(), "CHANNEL_", sipas.Channel(c).String())
	}
	for n := range sipasv1.Boundaries_name {
		b := sipasv1.Boundaries(n)
		if b == sipasv1.Boundaries_BOUNDARIES_UNSPECIFIED {
			continue
		}
		same("boundaries", b.String(), "BOUNDARIES_", sipas.Boundaries(b).String())
	}
}
