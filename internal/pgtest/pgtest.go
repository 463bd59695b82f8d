// Package pgtest gives tests a throw-away PostgreSQL schema on the server
// named by SIPAS_TEST_POSTGRES (default: the server at 127.0.0.1:5432), or
// skips them with one line naming that variable when no server answers.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the test server's URL.
const Env = "SIPAS_TEST_POSTGRES"

// DefaultURL is used when Env is empty: the development and CI server
// (trust authentication).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	probeOnce sync.Once
	probeErr  error
)

// ServerURL returns the test server's URL, or an error saying why no
// server can be used.
func ServerURL() (string, error) {
	u := os.Getenv(Env)
	if u == "" {
		u = DefaultURL
	}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			probeErr = err
			return
		}
		probeErr = c.Ping(ctx)
		c.Close(ctx)
	})
	return u, probeErr
}

// SkipMessage is the line a test skipped for want of a server prints.
func SkipMessage(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Sprintf("SKIP: PostgreSQL tests: no server reachable (%s); set %s=postgres://user@host:port/db to run them", msg, Env)
}

// Require skips t when no test server is reachable and returns its URL.
func Require(t testing.TB) string {
	t.Helper()
	u, err := ServerURL()
	if err != nil {
		t.Skip(SkipMessage(err))
	}
	return u
}

// DSN creates a fresh schema on the test server and returns a URL whose
// connections use it (search_path), so that each test has its own empty
// database; the schema is dropped when t ends. It skips t when no server
// is reachable.
func DSN(t testing.TB) string {
	t.Helper()
	u := Require(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sipas_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop(u, schema) })
	return WithSchema(t, u, schema)
}

// WithSchema returns u with its connections' search_path set to schema.
func WithSchema(t testing.TB, u, schema string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s is not a postgres:// URL: %v", Env, err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}

func drop(u, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	// Connections still open on the schema (a replica killed by a test)
	// do not block DROP SCHEMA; their sessions end with the test binary.
	_, _ = c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
}
