package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardServedAtRoot: sipasd serves the dashboard at / on its HTTP
// listener beside /metrics, and the token written to admin.token signs in.
func TestDashboardServedAtRoot(t *testing.T) {
	dir := t.TempDir()
	d, _, _ := startDaemon(t, dir)
	base := "http://" + d.httpLis.Addr().String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/signin" || !strings.Contains(body, "Đăng nhập") {
		t.Fatalf("GET / ends at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	if resp, _ := get("/metrics"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	if resp, css := get("/static/style.css"); resp.StatusCode != http.StatusOK || !strings.Contains(css, "@media print") {
		t.Fatalf("embedded stylesheet: %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF field")
	}
	r, err := c.PostForm(base+"/signin", url.Values{"csrf": {m[1]}, "token": {readToken(t, dir)}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || r.Request.URL.Path != "/national" || !strings.Contains(string(page), "national-mean") {
		t.Fatalf("after sign-in: %s %d", r.Request.URL, r.StatusCode)
	}
	if strings.Contains(string(page), "//cdn") || regexp.MustCompile(`(src|href)="https?://`).MatchString(string(page)) {
		t.Error("the page loads something from another host")
	}
}
