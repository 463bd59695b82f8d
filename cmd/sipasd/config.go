package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/loopback"
)

// Config is everything sipasd is configured with. Flags only in this
// package; each flag has a SIPAS_* environment fallback.
type Config struct {
	DataDir string
	// Database is "" for the embedded SQLite database in DataDir, or a
	// postgres:// URL: sipasd is then one of several stateless replicas
	// over that database.
	Database         string
	DBMaxConns       int
	DBAcquireTimeout time.Duration
	GRPCAddr         string
	HTTPAddr         string
	HealthAddr       string
	Questionnaires   string
	TLSCert          string
	TLSKey           string
	ClientCA         string
	Insecure         bool
	RatePerSecond    float64
	RateBurst        int
	MinSample        int64
	Disclosure       int64
	BackupDir        string
	BackupEvery      time.Duration
	BackupKeep       int
	RestoreFrom      string
	LogLevel         string
	LogFormat        string
	ShutdownGrace    time.Duration
	StreamMaxItems   int
	Pprof            bool
	// KioskMaxAge is how old a kiosk's collected_at may be.
	KioskMaxAge time.Duration
	// StreamsPerCredential and StreamsTotal cap open upload streams;
	// StreamSendTimeout ends a stream whose client stops reading.
	StreamsPerCredential int
	StreamsTotal         int
	StreamSendTimeout    time.Duration
	// CellCacheMiB bounds the aggregate cells kept in memory for reads.
	CellCacheMiB int
	// WebSecureCookies marks the dashboard's cookies Secure even though the
	// HTTP listener is plaintext: for a dashboard reached through a TLS proxy.
	WebSecureCookies bool
}

// envFlag describes one flag and its environment variable.
type envFlag struct {
	name, env, usage string
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	// envErrs collects environment values that do not parse: a bad value is
	// an error naming its variable, never silently replaced by the default
	// (SIPAS_BACKUP_EVERY=1d once disabled backups without a word).
	var envErrs []error
	badEnv := func(env, v, want string) {
		envErrs = append(envErrs, fmt.Errorf("environment variable %s=%q: want %s", env, v, want))
	}
	boolEnv := func(env string) bool {
		switch v := getenv(env); v {
		case "", "0", "false":
			return false
		case "1", "true":
			return true
		default:
			badEnv(env, v, "true, false, 1 or 0")
			return false
		}
	}
	fs := flag.NewFlagSet("sipasd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+env+")")
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		if v := getenv(env); v != "" {
			if d, err := time.ParseDuration(v); err == nil {
				def = d
			} else {
				badEnv(env, v, "a duration such as 30s, 15m or 24h")
			}
		}
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		if v := getenv(env); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				def = n
			} else {
				badEnv(env, v, "a whole number")
			}
		}
		fs.IntVar(p, name, def, usage+" (env "+env+")")
	}
	str(&c.DataDir, "data-dir", "SIPAS_DATA_DIR", "./data", "directory of the database and admin.token")
	str(&c.Database, "database", "SIPAS_DATABASE", "", "PostgreSQL URL (postgres://user@host:5432/db) for replicas sharing one database; empty: the SQLite database in --data-dir")
	num(&c.DBMaxConns, "db-max-conns", "SIPAS_DB_MAX_CONNS", 16, "PostgreSQL connections this replica may open (the sum over replicas must stay below max_connections)")
	dur(&c.DBAcquireTimeout, "db-acquire-timeout", "SIPAS_DB_ACQUIRE_TIMEOUT", 2*time.Second, "how long a call waits for a free PostgreSQL connection before it fails with UNAVAILABLE")
	str(&c.GRPCAddr, "grpc-addr", "SIPAS_GRPC_ADDR", "127.0.0.1:7443", "gRPC listen address")
	str(&c.HTTPAddr, "http-addr", "SIPAS_HTTP_ADDR", "127.0.0.1:7080", "HTTP listen address for /metrics, /healthz, /readyz")
	str(&c.HealthAddr, "health-grpc-addr", "SIPAS_HEALTH_GRPC_ADDR", "", "plaintext listen address serving only the gRPC health service, for probes that cannot do TLS (Kubernetes); empty: off")
	str(&c.Questionnaires, "questionnaires", "SIPAS_QUESTIONNAIRES", "", "directory of extra questionnaire definitions (one subdirectory each)")
	str(&c.TLSCert, "tls-cert", "SIPAS_TLS_CERT", "", "TLS certificate file (PEM)")
	str(&c.TLSKey, "tls-key", "SIPAS_TLS_KEY", "", "TLS private key file (PEM)")
	str(&c.ClientCA, "client-ca", "SIPAS_CLIENT_CA", "", "CA file to verify client certificates (mutual TLS for kiosks)")
	insecureDef := boolEnv("SIPAS_INSECURE")
	fs.BoolVar(&c.Insecure, "insecure", insecureDef, "allow plaintext on a non-loopback address (env SIPAS_INSECURE)")
	rate := 200.0
	if v := getenv("SIPAS_RATE_LIMIT"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			rate = f
		} else {
			badEnv("SIPAS_RATE_LIMIT", v, "a number of calls per second")
		}
	}
	fs.Float64Var(&c.RatePerSecond, "rate-limit", rate, "calls per second per credential; 0 disables (env SIPAS_RATE_LIMIT)")
	num(&c.RateBurst, "rate-burst", "SIPAS_RATE_BURST", 400, "burst of calls per credential")
	var minSample, disclosure int
	num(&minSample, "min-sample", "SIPAS_MIN_SAMPLE", 30, "figures with fewer respondents are flagged insufficient and not ranked")
	num(&disclosure, "disclosure-threshold", "SIPAS_DISCLOSURE_THRESHOLD", 10, "units with fewer respondents are suppressed (at least 5)")
	str(&c.BackupDir, "backup-dir", "SIPAS_BACKUP_DIR", "", "directory for scheduled backups")
	dur(&c.BackupEvery, "backup-every", "SIPAS_BACKUP_EVERY", 0, "interval of scheduled backups (0: none)")
	num(&c.BackupKeep, "backup-keep", "SIPAS_BACKUP_KEEP", 7, "scheduled backups to keep")
	str(&c.RestoreFrom, "restore", "SIPAS_RESTORE", "", "restore the database in --data-dir from this backup file, then exit")
	str(&c.LogLevel, "log-level", "SIPAS_LOG_LEVEL", "info", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "SIPAS_LOG_FORMAT", "json", "json or text")
	dur(&c.ShutdownGrace, "shutdown-grace", "SIPAS_SHUTDOWN_GRACE", 30*time.Second, "how long in-flight calls may run after SIGTERM")
	num(&c.StreamMaxItems, "stream-max-items", "SIPAS_STREAM_MAX_ITEMS", 250000, "items one upload stream may carry")
	dur(&c.KioskMaxAge, "kiosk-max-age", "SIPAS_KIOSK_MAX_AGE", 7*24*time.Hour, "oldest collected_at a kiosk may send (older data goes through a surveyor's upload)")
	num(&c.StreamsPerCredential, "streams-per-credential", "SIPAS_STREAMS_PER_CREDENTIAL", 4, "open upload streams per credential")
	num(&c.StreamsTotal, "streams-total", "SIPAS_STREAMS_TOTAL", 32, "open upload streams in total")
	dur(&c.StreamSendTimeout, "stream-send-timeout", "SIPAS_STREAM_SEND_TIMEOUT", 30*time.Second, "end an upload stream whose client does not read an acknowledgement for this long")
	num(&c.CellCacheMiB, "cell-cache-mib", "SIPAS_CELL_CACHE_MIB", 32, "MiB of aggregate cells cached for index reads (the rest is read from the database by key)")
	pprofDef := boolEnv("SIPAS_PPROF")
	fs.BoolVar(&c.Pprof, "pprof", pprofDef, "serve Go profiles at /debug/pprof/ on the HTTP listener (env SIPAS_PPROF)")
	secureDef := getenv("SIPAS_WEB_SECURE_COOKIES") == "true" || getenv("SIPAS_WEB_SECURE_COOKIES") == "1"
	fs.BoolVar(&c.WebSecureCookies, "web-secure-cookies", secureDef, "mark the dashboard's session cookies Secure, for a dashboard served through a TLS proxy (env SIPAS_WEB_SECURE_COOKIES)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// An environment value that a flag overrides is still reported: the
	// operator who set it should learn that it is wrong.
	if err := errors.Join(envErrs...); err != nil {
		return c, err
	}
	c.MinSample, c.Disclosure = int64(minSample), int64(disclosure)
	if c.CellCacheMiB < 1 {
		return c, fmt.Errorf("--cell-cache-mib must be at least 1, got %d", c.CellCacheMiB)
	}
	if c.KioskMaxAge <= 0 || c.StreamsPerCredential <= 0 || c.StreamsTotal <= 0 || c.StreamSendTimeout <= 0 {
		return c, fmt.Errorf("--kiosk-max-age, --streams-per-credential, --streams-total and --stream-send-timeout must be positive")
	}
	if c.Disclosure < sipas.MinDisclosure {
		return c, fmt.Errorf("--disclosure-threshold must be at least %d, got %d", sipas.MinDisclosure, c.Disclosure)
	}
	if err := c.Thresholds().Validate(); err != nil {
		return c, fmt.Errorf("--min-sample/--disclosure-threshold: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("--log-format %q: want json or text", c.LogFormat)
	}
	if c.Database != "" {
		if !c.Postgres() {
			return c, fmt.Errorf("--database: want a postgres:// or postgresql:// URL, got a value of another form")
		}
		if c.BackupEvery > 0 || c.RestoreFrom != "" {
			return c, fmt.Errorf("--backup-every and --restore copy the SQLite database; with --database postgres://… back up with pg_dump or PITR (docs/operations.md, \"PostgreSQL backups\")")
		}
		if c.DBMaxConns < 2 {
			return c, fmt.Errorf("--db-max-conns must be at least 2, got %d", c.DBMaxConns)
		}
	}
	if c.BackupEvery < 0 {
		return c, fmt.Errorf("--backup-every must not be negative, got %s", c.BackupEvery)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return c, fmt.Errorf("--client-ca needs --tls-cert and --tls-key")
	}
	if c.TLSCert == "" && !c.Insecure {
		for _, a := range []string{c.GRPCAddr} {
			if !loopback.Addr(a) {
				return c, fmt.Errorf("refusing plaintext gRPC on non-loopback address %s: give --tls-cert/--tls-key, or --insecure if a proxy terminates TLS", a)
			}
		}
	}
	return c, nil
}

// Postgres reports whether the configuration names a PostgreSQL database.
func (c Config) Postgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// Thresholds returns the sample-size rules the configuration sets.
func (c Config) Thresholds() sipas.Thresholds {
	return sipas.Thresholds{MinSample: c.MinSample, Disclosure: c.Disclosure}
}
