package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/server"
	"github.com/sipas-vn/sipas/store"
)

// shutdownGrace is the default of sipasd's --shutdown-grace; stop timeouts
// of the deployments must leave room beyond it for the final checkpoint.
const shutdownGrace = 30 * time.Second

// deployFiles returns the files under this directory whose names end in one
// of the suffixes, as slash paths relative to it.
func deployFiles(t *testing.T, suffixes ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, s := range suffixes {
			if strings.HasSuffix(path, s) {
				out = append(out, filepath.ToSlash(path))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// yamlDocs decodes every document of a YAML file (Kubernetes files hold several).
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// get walks nested maps and lists: get(v, "spec", "template", 0, "name").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestFilesParse(t *testing.T) {
	ymls := deployFiles(t, ".yaml", ".yml")
	if len(ymls) < 8 {
		t.Fatalf("found only %d YAML files: %v", len(ymls), ymls)
	}
	for _, p := range ymls {
		yamlDocs(t, p)
	}
	jsons := deployFiles(t, ".json")
	if len(jsons) == 0 {
		t.Fatal("no JSON file (the Grafana dashboard is missing)")
	}
	for _, p := range jsons {
		readJSON(t, p)
	}
}

// dockerInstr is one Dockerfile instruction with continuation lines joined.
type dockerInstr struct {
	cmd, args string
	line      int
}

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	start, n := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t, "Dockerfile")
	var stages [][]dockerInstr
	stageNames := map[string]bool{}
	for _, in := range instrs {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stageNames[f[2]] = true
			}
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM", len(stages))
	}
	all := func(stage []dockerInstr, cmd string) []dockerInstr {
		var out []dockerInstr
		for _, in := range stage {
			if in.cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}
	var build strings.Builder
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			build.WriteString(in.cmd + " " + in.args + "\n")
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "-tags sqlite_omit_load_extension", "-trimpath", "./cmd/sipasd", "./cmd/sipas"} {
		if !strings.Contains(build.String(), want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	final := stages[len(stages)-1]
	for _, in := range all(final, "COPY") {
		for _, f := range strings.Fields(in.args) {
			if from, ok := strings.CutPrefix(f, "--from="); ok && !stageNames[from] {
				t.Errorf("line %d: COPY --from=%s names no stage", in.line, from)
			}
		}
	}
	users := all(final, "USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage has no USER: it would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1].args, ":")
	if user == "" || user == "root" || user == "0" {
		t.Errorf("the runtime stage runs as %q", users[len(users)-1].args)
	}
	hc := all(final, "HEALTHCHECK")
	if len(hc) == 0 || strings.HasPrefix(strings.ToUpper(hc[0].args), "NONE") {
		t.Error("the runtime stage has no HEALTHCHECK")
	} else if !strings.Contains(hc[0].args, "7080/readyz") && !strings.Contains(hc[0].args, "7080/healthz") {
		t.Errorf("HEALTHCHECK does not probe the HTTP listener: %s", hc[0].args)
	}
	var exposed, volumes string
	for _, in := range all(final, "EXPOSE") {
		exposed += " " + in.args + " "
	}
	for _, in := range all(final, "VOLUME") {
		volumes += " " + in.args + " "
	}
	for _, port := range []string{"7443", "7080"} {
		if !strings.Contains(exposed, " "+port+" ") && !strings.Contains(exposed, " "+port+"/tcp ") {
			t.Errorf("EXPOSE lacks %s", port)
		}
	}
	if !strings.Contains(volumes, "/var/lib/sipas") {
		t.Error("VOLUME /var/lib/sipas missing")
	}
}

// iniSections parses a systemd unit into section → key → values.
func iniSections(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secs := map[string]map[string][]string{}
	var cur map[string][]string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string][]string{}
			secs[strings.Trim(line, "[]")] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, i+1, line)
			}
			cur[strings.TrimSpace(k)] = append(cur[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return secs
}

func TestSystemdUnit(t *testing.T) {
	secs := iniSections(t, "systemd/sipasd.service")
	for _, s := range []string{"Unit", "Service", "Install"} {
		if secs[s] == nil {
			t.Errorf("section [%s] missing", s)
		}
	}
	svc := secs["Service"]
	if svc == nil {
		t.FailNow()
	}
	last := func(k string) string {
		if v := svc[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	if u := last("User"); (u == "" || u == "root" || u == "0") && last("DynamicUser") != "yes" {
		t.Errorf("the service runs as %q: want a dedicated user", u)
	}
	if !strings.Contains(" "+strings.Join(svc["StateDirectory"], " ")+" ", " sipas ") {
		t.Errorf("StateDirectory = %v, want sipas in it", svc["StateDirectory"])
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"KillSignal": "SIGTERM", "Restart": "on-failure", "EnvironmentFile": "-/etc/sipas/sipasd.env",
	} {
		if got := last(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if len(svc["ReadWritePaths"]) == 0 {
		t.Error("ReadWritePaths missing (ProtectSystem=strict makes everything else read-only)")
	}
	stop, err := strconv.Atoi(last("TimeoutStopSec"))
	if err != nil || time.Duration(stop)*time.Second <= shutdownGrace {
		t.Errorf("TimeoutStopSec=%q: want whole seconds above the shutdown grace of %v", last("TimeoutStopSec"), shutdownGrace)
	}
}

// TestKioskSystemdUnit: the kiosk agent runs as its own user, restarts
// whatever ends it, keeps its files private and writes only its state
// directory.
func TestKioskSystemdUnit(t *testing.T) {
	svc := iniSections(t, "systemd/sipas-kiosk.service")["Service"]
	if svc == nil {
		t.Fatal("section [Service] missing")
	}
	last := func(k string) string {
		if v := svc[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for k, want := range map[string]string{
		"User": "sipas-kiosk", "ExecStart": "/usr/local/bin/sipas kiosk serve", "Restart": "always", "UMask": "0077",
		"StateDirectory": "sipas-kiosk", "StateDirectoryMode": "0700", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"ReadWritePaths": "/var/lib/sipas-kiosk",
	} {
		if got := last(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	found := false
	for _, e := range svc["Environment"] {
		if strings.HasPrefix(e, "SIPAS_KIOSK_LISTEN=127.0.0.1:") {
			found = true
		}
	}
	if !found {
		t.Errorf("Environment = %v: want SIPAS_KIOSK_LISTEN on loopback", svc["Environment"])
	}
}

func TestCompose(t *testing.T) {
	doc := yamlDocs(t, "compose.yaml")[0]
	services, _ := doc["services"].(map[string]any)
	for _, s := range []string{"sipasd", "prometheus", "grafana"} {
		if services[s] == nil {
			t.Errorf("service %s missing", s)
		}
	}
	// Every bind mount of a file of the repository points at something that exists.
	mounts := map[string]string{} // target → source
	for name, s := range services {
		vols, _ := get(s, "volumes").([]any)
		for _, v := range vols {
			src, target, _ := strings.Cut(fmt.Sprint(v), ":")
			target, _, _ = strings.Cut(target, ":")
			mounts[target] = src
			if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			}
		}
	}
	if ctx, _ := get(services, "sipasd", "build", "context").(string); ctx != "" {
		df, _ := get(services, "sipasd", "build", "dockerfile").(string)
		if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
			t.Errorf("sipasd build: %v", err)
		}
	}
	env, _ := get(services, "sipasd", "environment").(map[string]any)
	if env["SIPAS_INSECURE"] == nil && env["SIPAS_TLS_CERT"] == nil {
		t.Error("sipasd listens on 0.0.0.0 in the container: it needs SIPAS_TLS_CERT/SIPAS_TLS_KEY or SIPAS_INSECURE")
	}
	if g, _ := get(services, "sipasd", "stop_grace_period").(string); g == "" {
		t.Error("sipasd has no stop_grace_period (docker's default 10s is below the shutdown grace)")
	} else if d, err := time.ParseDuration(g); err != nil || d <= shutdownGrace {
		t.Errorf("stop_grace_period %q: want more than %v", g, shutdownGrace)
	}

	// Prometheus scrapes sipasd's HTTP listener and loads alert rules that exist.
	prom := yamlDocs(t, "prometheus/prometheus.yml")[0]
	found := false
	scrapes, _ := prom["scrape_configs"].([]any)
	for _, sc := range scrapes {
		for _, tg := range asList(get(sc, "static_configs", 0, "targets")) {
			if tg == "sipasd:7080" && get(sc, "job_name") == "sipasd" {
				found = true
			}
		}
	}
	if !found {
		t.Error("prometheus.yml has no job sipasd scraping sipasd:7080")
	}
	for _, rf := range asList(prom["rule_files"]) {
		src, ok := mounts[rf]
		if !ok {
			t.Errorf("rule file %s is not mounted into the prometheus service", rf)
		} else if filepath.Clean(src) != filepath.Clean("./prometheus/"+filepath.Base(rf)) {
			t.Errorf("rule file %s is mounted from %s", rf, src)
		}
	}

	// Grafana loads the dashboards from where compose mounts them, with the
	// datasource uid the dashboards refer to.
	prov := yamlDocs(t, "grafana/provisioning/dashboards/dashboards.yaml")[0]
	dpath, _ := get(prov, "providers", 0, "options", "path").(string)
	if src := mounts[dpath]; filepath.Clean(src) != "grafana/dashboards" {
		t.Errorf("dashboard provider path %q is mounted from %q, want ./grafana/dashboards", dpath, src)
	}
	ds := yamlDocs(t, "grafana/provisioning/datasources/prometheus.yaml")[0]
	uid, _ := get(ds, "datasources", 0, "uid").(string)
	if uid == "" {
		t.Fatal("the provisioned datasource has no uid")
	}
	for _, p := range deployFiles(t, ".json") {
		walkJSON(readJSON(t, p), "", func(key string, v any) {
			if key == "datasource" {
				if u, _ := get(v, "uid").(string); u != "" && u != uid {
					t.Errorf("%s: datasource uid %q, want the provisioned %q", p, u, uid)
				}
			}
		})
	}
}

func asList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// walkJSON calls fn for every key and value of v, depth first.
func walkJSON(v any, key string, fn func(key string, v any)) {
	fn(key, v)
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			walkJSON(y, k, fn)
		}
	case []any:
		for _, y := range x {
			walkJSON(y, key, fn)
		}
	}
}

func TestKubernetes(t *testing.T) {
	kinds := map[string]map[string]any{}
	for _, p := range deployFiles(t, ".yaml", ".yml") {
		if !strings.HasPrefix(p, "k8s/") || strings.HasPrefix(p, "k8s/postgres/") {
			continue // the replicated variant has its own test
		}
		for _, d := range yamlDocs(t, p) {
			kind, _ := d["kind"].(string)
			if kind == "" || d["apiVersion"] == nil {
				t.Errorf("%s: a document without kind or apiVersion", p)
			}
			if get(d, "metadata", "namespace") != nil {
				t.Errorf("%s: %s sets a namespace; the manifests are namespace-less", p, kind)
			}
			if _, dup := kinds[kind]; !dup {
				kinds[kind] = d
			}
		}
	}
	sts := kinds["StatefulSet"]
	if sts == nil {
		t.Fatal("no StatefulSet")
	}
	if r, _ := get(sts, "spec", "replicas").(int); r != 1 {
		t.Errorf("replicas = %v: SQLite has one writer, want 1", get(sts, "spec", "replicas"))
	}
	if l, _ := get(sts, "spec", "volumeClaimTemplates").([]any); len(l) == 0 {
		t.Error("no volumeClaimTemplates")
	}
	pod := get(sts, "spec", "template", "spec")
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	c := get(pod, "containers", 0)
	if get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("container readOnlyRootFilesystem is not true")
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("container allowPrivilegeEscalation is not false")
	}
	// Readiness through the gRPC health protocol, on sipasd's plaintext
	// health-only listener (the kubelet's grpc probe cannot do TLS); liveness
	// on /healthz, which does not fail on a full disk (that is readiness).
	if got := get(c, "readinessProbe", "grpc", "port"); got != 7444 {
		t.Errorf("readinessProbe grpc port = %v, want 7444 (the health-only listener)", got)
	}
	if got := get(c, "livenessProbe", "httpGet", "path"); got != "/healthz" {
		t.Errorf("livenessProbe path = %v, want /healthz", got)
	}
	healthAddr := ""
	if cm := kinds["ConfigMap"]; cm != nil {
		healthAddr, _ = get(cm, "data", "SIPAS_HEALTH_GRPC_ADDR").(string)
	}
	if healthAddr != "0.0.0.0:7444" {
		t.Errorf("ConfigMap SIPAS_HEALTH_GRPC_ADDR = %q, want 0.0.0.0:7444 for the grpc probe", healthAddr)
	}
	if g, _ := get(pod, "terminationGracePeriodSeconds").(int); time.Duration(g)*time.Second <= shutdownGrace {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than %v", g, shutdownGrace)
	}
	svc := kinds["Service"]
	ports := map[int]bool{}
	for _, p := range get(svc, "spec", "ports").([]any) {
		if n, ok := get(p, "port").(int); ok {
			ports[n] = true
		}
	}
	if !ports[7443] || !ports[7080] {
		t.Errorf("Service ports %v, want 7443 and 7080", ports)
	}
	if kinds["ConfigMap"] == nil || kinds["Secret"] == nil {
		t.Error("want a ConfigMap and an example TLS Secret")
	}
}

// metricRef matches the metric names the checks care about in PromQL.
var metricRef = regexp.MustCompile(`\b(?:sipas|grpc_server|go|process)_[a-z0-9_]*[a-z0-9]\b`)

// unknownMetrics returns the metric names used in exprs that are not in
// exported, after stripping a histogram's _bucket, _sum or _count suffix.
func unknownMetrics(exprs []string, exported map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range exprs {
		for _, name := range metricRef.FindAllString(e, -1) {
			base := name
			if !exported[base] {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, suf); ok && exported[b] {
						base = b
					}
				}
			}
			if !exported[base] && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// recordingRegisterer passes registrations on and remembers the collectors,
// so that the names of vectors without any child yet are known too.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// exportedMetrics builds the server as sipasd does — Go and process
// collectors, server.NewMetrics, a real store in a temporary directory and
// server.New, which registers the gRPC and store metrics — and returns the
// names of every metric family it exports.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := server.NewMetrics(rec)
	if err != nil {
		t.Fatal(err)
	}
	cat, preg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "sipas.db"), cat, store.Options{OnCommit: m.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{
		Catalog: cat, Registry: preg, Store: st, Metrics: m,
		Engine: &sipas.Engine{Catalog: cat, Registry: preg, Source: st},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(time.Second) })
	// Vectors appear in Gather only once they have a child.
	m.ResponsesIngested.WithLabelValues("kiosk", "accepted").Inc()
	m.Refusals.WithLabelValues("TEST").Inc()
	m.IndexReadSeconds.WithLabelValues("test").Observe(0.001)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	// Names of everything registered, observed or not (future vectors).
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range rec.collectors {
			c.Describe(ch)
		}
		close(ch)
	}()
	for d := range ch {
		if mm := descName.FindStringSubmatch(d.String()); mm != nil {
			names[mm[1]] = true
		}
	}
	// The check is only meaningful if the server really exported these.
	for _, want := range []string{"sipas_responses_ingested_total", "sipas_commit_duration_seconds",
		"sipas_wal_size_bytes", "sipas_last_backup_timestamp_seconds", "grpc_server_handled_total", "process_start_time_seconds"} {
		if !names[want] {
			t.Fatalf("the server does not export %s; exported: %v", want, sortedKeys(names))
		}
	}
	return names
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dashboardExprs returns the PromQL of every panel target and template
// variable of a Grafana dashboard.
func dashboardExprs(v any) []string {
	var out []string
	walkJSON(v, "", func(key string, v any) {
		if s, ok := v.(string); ok && (key == "expr" || key == "query" || key == "definition") {
			out = append(out, s)
		}
	})
	return out
}

// alertExprs returns the expressions of every rule of a Prometheus rule file
// and checks the shape of each alerting rule.
func alertExprs(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	doc := yamlDocs(t, path)[0]
	groups, _ := doc["groups"].([]any)
	if len(groups) == 0 {
		t.Fatalf("%s: no rule groups", path)
	}
	for _, g := range groups {
		rules, _ := get(g, "rules").([]any)
		for i, r := range rules {
			expr, _ := get(r, "expr").(string)
			name, _ := get(r, "alert").(string)
			if expr == "" {
				t.Errorf("%s: rule %d (%s) has no expr", path, i, name)
			}
			if name != "" {
				if get(r, "labels", "severity") == nil || get(r, "annotations", "summary") == nil {
					t.Errorf("%s: alert %s lacks labels.severity or annotations.summary", path, name)
				}
				if f, ok := get(r, "for").(string); ok {
					if _, err := time.ParseDuration(f); err != nil {
						t.Errorf("%s: alert %s: for: %v", path, name, err)
					}
				}
			}
			out = append(out, expr)
		}
	}
	return out
}

func TestDashboardsAndAlertsUseExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	sources := map[string][]string{}
	for _, p := range deployFiles(t, ".json") {
		if strings.Contains(p, "dashboards/") {
			sources[p] = dashboardExprs(readJSON(t, p))
		}
	}
	sources["prometheus/alerts.yml"] = alertExprs(t, "prometheus/alerts.yml")
	for p, exprs := range sources {
		if len(exprs) == 0 {
			t.Errorf("%s: no expressions found", p)
			continue
		}
		used := 0
		for _, e := range exprs {
			used += len(metricRef.FindAllString(e, -1))
		}
		if used == 0 {
			t.Errorf("%s: no sipas_/grpc_server_ metric used at all", p)
		}
		if bad := unknownMetrics(exprs, exported); len(bad) > 0 {
			t.Errorf("%s uses metrics the server does not export: %v", p, bad)
		}
	}
	// The check itself can fail.
	if bad := unknownMetrics([]string{`rate(sipas_no_such_thing_total[5m]) + grpc_server_handling_seconds_bucket`}, exported); len(bad) != 1 || bad[0] != "sipas_no_such_thing_total" {
		t.Errorf("unknownMetrics = %v, want [sipas_no_such_thing_total]", bad)
	}
}

// sipasdFlag is a flag defined in cmd/sipasd/config.go.
type sipasdFlag struct {
	name, env, def string
	hasDef         bool // the default is a literal (def), not an expression
}

var envInUsage = regexp.MustCompile(`\(env (SIPAS_[A-Z0-9_]+)\)`)

// sipasdFlags reads the flag definitions from the source of cmd/sipasd: calls
// of the str/dur/num helpers (name, env, default) and direct fs.XxxVar calls
// (name, env from the usage text).
func sipasdFlags(t *testing.T) []sipasdFlag {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../cmd/sipasd/config.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	lit := func(e ast.Expr) (string, bool) {
		if b, ok := e.(*ast.BasicLit); ok {
			if b.Kind == token.STRING {
				s, err := strconv.Unquote(b.Value)
				return s, err == nil
			}
			return b.Value, true
		}
		return "", false
	}
	var flags []sipasdFlag
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 3 {
			return true
		}
		name, ok := lit(call.Args[1])
		if !ok {
			return true
		}
		switch fn := call.Fun.(type) {
		case *ast.Ident: // str(&c.X, "name", "SIPAS_X", default, usage)
			if len(call.Args) >= 4 {
				env, _ := lit(call.Args[2])
				def, hasDef := lit(call.Args[3])
				if strings.HasPrefix(env, "SIPAS_") {
					flags = append(flags, sipasdFlag{name: name, env: env, def: def, hasDef: hasDef})
				}
			}
		case *ast.SelectorExpr: // fs.BoolVar(&c.X, "name", default, "usage (env SIPAS_X)")
			if x, ok := fn.X.(*ast.Ident); ok && x.Name == "fs" && strings.HasSuffix(fn.Sel.Name, "Var") {
				fl := sipasdFlag{name: name}
				if len(call.Args) >= 4 {
					if u, ok := lit(call.Args[3]); ok {
						if m := envInUsage.FindStringSubmatch(u); m != nil {
							fl.env = m[1]
						}
					}
				}
				flags = append(flags, fl)
			}
		}
		return true
	})
	return flags
}

func TestOperationsGuideDocumentsEveryFlag(t *testing.T) {
	flags := sipasdFlags(t)
	if len(flags) < 15 {
		t.Fatalf("found only %d flags in cmd/sipasd/config.go: the parser no longer matches it", len(flags))
	}
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	// The table of the "Configuration reference" section, up to the next section.
	var lines []string
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "## ") {
			in = strings.HasPrefix(l, "## Configuration reference")
		}
		if in {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatal(`docs/operations.md has no "## Configuration reference" section`)
	}
	known := map[string]bool{}
	for _, fl := range flags {
		known[fl.name] = true
		var row string
		for _, l := range lines {
			if strings.HasPrefix(l, "| `--"+fl.name+"` |") {
				row = l
				break
			}
		}
		if row == "" {
			t.Errorf("the configuration table of docs/operations.md has no row for `--%s`", fl.name)
			continue
		}
		// | `--flag` | `SIPAS_ENV` | `default` or empty | meaning |
		cells := strings.Split(row, "|")
		if len(cells) < 5 {
			t.Errorf("the row of --%s has too few columns: %s", fl.name, row)
			continue
		}
		envCell, defCell := strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])
		if fl.env == "" {
			t.Errorf("--%s has no SIPAS_* environment variable in cmd/sipasd/config.go", fl.name)
		} else if envCell != "`"+fl.env+"`" {
			t.Errorf("the row of --%s gives the variable %s, want `%s`", fl.name, envCell, fl.env)
		}
		want := ""
		if fl.def != "" {
			want = "`" + fl.def + "`"
		}
		if fl.hasDef && defCell != want {
			t.Errorf("the row of --%s gives the default %q, want %q", fl.name, defCell, want)
		}
	}
	// And the table lists no flag that does not exist (stale docs).
	rowFlag := regexp.MustCompile("^\\| `--([a-z0-9-]+)`")
	for _, l := range lines {
		if m := rowFlag.FindStringSubmatch(l); m != nil && !known[m[1]] {
			t.Errorf("docs/operations.md documents --%s, which sipasd does not have", m[1])
		}
	}
}

// TestComposePostgresProfile: the "postgres" profile runs PostgreSQL, two
// sipasd replicas over it and a gRPC-aware proxy (nginx grpc_pass) balancing
// over both, and Prometheus scrapes both replicas.
func TestComposePostgresProfile(t *testing.T) {
	doc := yamlDocs(t, "compose.yaml")[0]
	services, _ := doc["services"].(map[string]any)
	inProfile := func(name string) bool {
		for _, p := range asList(get(services, name, "profiles")) {
			if p == "postgres" {
				return true
			}
		}
		return false
	}
	for _, name := range []string{"postgres", "sipasd-a", "sipasd-b", "grpc-proxy"} {
		if services[name] == nil || !inProfile(name) {
			t.Fatalf("service %s missing or not in the postgres profile", name)
		}
	}
	for _, name := range []string{"sipasd-a", "sipasd-b"} {
		env, _ := get(services, name, "environment").(map[string]any)
		db, _ := env["SIPAS_DATABASE"].(string)
		if !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, "@postgres:5432/") {
			t.Errorf("%s: SIPAS_DATABASE = %q, want the postgres service", name, db)
		}
		if env["SIPAS_INSECURE"] == nil && env["SIPAS_TLS_CERT"] == nil {
			t.Errorf("%s listens on 0.0.0.0: it needs TLS or SIPAS_INSECURE", name)
		}
		if env["SIPAS_BACKUP_EVERY"] != nil {
			t.Errorf("%s: scheduled backups are refused with PostgreSQL", name)
		}
		if get(services, name, "ports") != nil {
			t.Errorf("%s publishes ports: only the proxy should", name)
		}
		if g, _ := get(services, name, "stop_grace_period").(string); g == "" {
			t.Errorf("%s has no stop_grace_period", name)
		} else if d, err := time.ParseDuration(g); err != nil || d <= shutdownGrace {
			t.Errorf("%s: stop_grace_period %q: want more than %v", name, g, shutdownGrace)
		}
	}
	// The second replica waits for the first (one first admin).
	if get(services, "sipasd-b", "depends_on", "sipasd-a") == nil {
		t.Error("sipasd-b does not wait for sipasd-a")
	}
	// The proxy: nginx with grpc_pass to both replicas, from a config that exists.
	var conf string
	for _, v := range asList(get(services, "grpc-proxy", "volumes")) {
		src, target, _ := strings.Cut(v, ":")
		if strings.HasPrefix(target, "/etc/nginx/") {
			conf = src
		}
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatalf("grpc-proxy config %q: %v", conf, err)
	}
	c := string(data)
	for _, want := range []string{"grpc_pass grpc://", "server sipasd-a:7443", "server sipasd-b:7443", "http2 on"} {
		if !strings.Contains(c, want) {
			t.Errorf("%s lacks %q", conf, want)
		}
	}
	prom := yamlDocs(t, "prometheus/prometheus.yml")[0]
	targets := map[string]bool{}
	scrapes, _ := prom["scrape_configs"].([]any)
	for _, sc := range scrapes {
		for _, tg := range asList(get(sc, "static_configs", 0, "targets")) {
			targets[tg] = true
		}
	}
	if !targets["sipasd-a:7080"] || !targets["sipasd-b:7080"] {
		t.Errorf("prometheus.yml scrapes %v, want both replicas", sortedKeys(targets))
	}
	if services["prometheus"] == nil || services["grafana"] == nil {
		t.Error("prometheus or grafana missing")
	}
}

// TestKubernetesPostgres: the replicated variant is a stateless Deployment
// (no volume claims) of more than one replica, reading the database URL
// from a Secret, with the same probes and hardening as the StatefulSet.
func TestKubernetesPostgres(t *testing.T) {
	kinds := map[string]map[string]any{}
	for _, p := range deployFiles(t, ".yaml") {
		if !strings.HasPrefix(p, "k8s/postgres/") {
			continue
		}
		for _, d := range yamlDocs(t, p) {
			kind, _ := d["kind"].(string)
			if kind == "" || d["apiVersion"] == nil {
				t.Errorf("%s: a document without kind or apiVersion", p)
			}
			kinds[kind] = d
		}
	}
	dep := kinds["Deployment"]
	if dep == nil {
		t.Fatal("no Deployment in k8s/postgres/")
	}
	if r, _ := get(dep, "spec", "replicas").(int); r < 2 {
		t.Errorf("replicas = %v, want at least 2", get(dep, "spec", "replicas"))
	}
	if get(dep, "spec", "volumeClaimTemplates") != nil {
		t.Error("a Deployment of stateless replicas has no volume claims")
	}
	pod := get(dep, "spec", "template", "spec")
	for _, v := range get(pod, "volumes").([]any) {
		if get(v, "persistentVolumeClaim") != nil {
			t.Errorf("volume %v: replicas keep no persistent state", get(v, "name"))
		}
	}
	c := get(pod, "containers", 0)
	var dbFromSecret bool
	for _, e := range get(c, "env").([]any) {
		if get(e, "name") == "SIPAS_DATABASE" && get(e, "valueFrom", "secretKeyRef", "name") != nil {
			dbFromSecret = true
		}
	}
	if !dbFromSecret {
		t.Error("SIPAS_DATABASE does not come from a Secret")
	}
	if get(pod, "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "readOnlyRootFilesystem") != true ||
		get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("pod or container hardening missing")
	}
	if got := get(c, "readinessProbe", "grpc", "port"); got != 7444 {
		t.Errorf("readinessProbe grpc port = %v, want 7444", got)
	}
	if g, _ := get(pod, "terminationGracePeriodSeconds").(int); time.Duration(g)*time.Second <= shutdownGrace {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than %v", g, shutdownGrace)
	}
	cm := kinds["ConfigMap"]
	if cm == nil || get(cm, "data", "SIPAS_DB_MAX_CONNS") == nil || get(cm, "data", "SIPAS_BACKUP_EVERY") != nil {
		t.Error("the replicas' ConfigMap must size the pool and schedule no SQLite backup")
	}
	if get(cm, "metadata", "name") != get(c, "envFrom", 0, "configMapRef", "name") {
		t.Error("the Deployment does not read the replicas' ConfigMap")
	}
	svc := kinds["Service"]
	if sel := get(svc, "spec", "selector", "app.kubernetes.io/name"); sel == nil || sel != get(dep, "spec", "template", "metadata", "labels", "app.kubernetes.io/name") {
		t.Error("the Service does not select the replicas")
	}
	if kinds["Secret"] == nil || kinds["PodDisruptionBudget"] == nil {
		t.Error("want an example Secret and a PodDisruptionBudget")
	}
}
