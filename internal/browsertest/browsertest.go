// Package browsertest starts a headless Chromium for browser tests driven
// from Go with chromedp. Tests that need a browser call New; without a
// Chromium on the machine they are skipped with one line saying how to
// install it.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// candidates are the Chromium executables looked for, in order, after the
// SIPAS_CHROMIUM environment variable.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Path returns the Chromium executable to use, or "": $SIPAS_CHROMIUM,
// Debian's /usr/bin/chromium, then the candidates on PATH.
func Path() string {
	if p := os.Getenv("SIPAS_CHROMIUM"); p != "" {
		return p
	}
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// New starts a fresh headless Chromium (its own profile directory, no
// network beyond what the test opens) with a window of the given size and
// returns a chromedp context for it; the browser is closed when the test
// ends. Without a Chromium it skips the test.
func New(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		t.Skip("SKIP browser tests: no Chromium found; install it with `apt-get install chromium` (or set SIPAS_CHROMIUM)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // start the browser now, to fail early
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	return ctx
}
