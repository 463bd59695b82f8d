package kiosk_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/sipas-vn/sipas/kiosk"
)

// screenshotDir is where TestKioskScreens keeps its screenshots:
// $SIPAS_KIOSK_SCREENSHOTS when set (docs/kiosk is the committed set, made
// with `SIPAS_KIOSK_SCREENSHOTS=$PWD/docs/kiosk go test -run TestKioskScreens
// ./kiosk/`), else $SIPAS_ARTIFACTS/kiosk (CI artifacts), else a temporary dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SIPAS_KIOSK_SCREENSHOTS"); d != "" {
		return d
	}
	if d := os.Getenv("SIPAS_ARTIFACTS"); d != "" {
		return filepath.Join(d, "kiosk")
	}
	return t.TempDir()
}

// checkLayout fails when a visible button is smaller than 56×56 px or the
// page is wider than the window.
func checkLayout(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	small := eval[[]string](t, ctx, `[...document.querySelectorAll("button")].filter(b => b.offsetParent !== null)
		.map(b => [b, b.getBoundingClientRect()]).filter(([b, r]) => r.width < 56 || r.height < 56)
		.map(([b, r]) => (b.id || b.textContent.trim()) + " " + Math.round(r.width) + "x" + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("%s: touch targets below 56 px: %v", what, small)
	}
	if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
		t.Errorf("%s: the page is wider than the window", what)
	}
	// Every button is on screen without scrolling.
	below := eval[[]string](t, ctx, `[...document.querySelectorAll("button")].filter(b => b.offsetParent !== null)
		.filter(b => b.getBoundingClientRect().bottom > window.innerHeight + 1).map(b => b.id || b.textContent.trim())`)
	if len(below) > 0 {
		t.Errorf("%s: buttons below the window's edge: %v", what, below)
	}
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	time.Sleep(150 * time.Millisecond) // let transitions end
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// holdCorner holds a finger on the attract screen's top-left corner.
func holdCorner(d time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		one := 1.0
		p := input.DispatchTouchEventParams{Type: input.DispatchTouchEventTypeTouchStart,
			TouchPoints: []*input.TouchPoint{{X: 20, Y: 20, RadiusX: &one, RadiusY: &one, Force: &one}}}
		if _, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, p); err != nil {
			return err
		}
		time.Sleep(d)
		p.Type, p.TouchPoints = input.DispatchTouchEventTypeTouchEnd, []*input.TouchPoint{}
		_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, p)
		return err
	})
}

// TestKioskScreens walks every screen of the app in both orientations with
// touch emulation, checks touch-target sizes and overflow, and keeps a
// screenshot of each.
func TestKioskScreens(t *testing.T) {
	srv := startServer(t, t.TempDir(), "")
	token := srv.addKiosk("U-SCREENS")
	a := startAgent(t, srv.Addr, token, kiosk.Config{OperatorPIN: "2468", IdleTimeout: time.Minute})
	dir := screenshotDir(t)
	for _, size := range [][2]int{{1280, 800}, {800, 1280}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			ctx := browser(t, w, h)
			name := func(s string) string { return fmt.Sprintf("%s-%dx%d", s, w, h) }
			run(t, ctx, chromedp.Navigate(a.URL), screen("attract"))
			checkLayout(t, ctx, "attract")
			shoot(t, ctx, dir, name("1-attract"))

			run(t, ctx, tap("#start"), screen("question"))
			checkLayout(t, ctx, "question")
			shoot(t, ctx, dir, name("2-question"))
			run(t, ctx, answer(4))
			waitQuestion(t, ctx, 2)
			run(t, ctx, tap("#lang"))
			if got := eval[string](t, ctx, `document.getElementById("progress-text").textContent`); got != "Question 2 of 23" {
				t.Errorf("English progress = %q", got)
			}
			shoot(t, ctx, dir, name("3-question-english"))
			run(t, ctx, tap("#lang"), tap("#bigger"), tap("#bigger"), tap("#contrast"))
			checkLayout(t, ctx, "question, larger text, high contrast")
			shoot(t, ctx, dir, name("4-question-large-contrast"))
			run(t, ctx, tap("#bigger"), tap("#contrast"))
			for i := 2; i <= 23; i++ {
				waitQuestion(t, ctx, i)
				run(t, ctx, answer(5))
			}
			run(t, ctx, screen("review"))
			checkLayout(t, ctx, "review")
			shoot(t, ctx, dir, name("5-review"))
			run(t, ctx, tap("#submit"), screen("thanks"))
			checkLayout(t, ctx, "thanks")
			shoot(t, ctx, dir, name("6-thanks"))
			run(t, ctx, tap("#done"), screen("attract"))

			// The saving screen shows while the agent cannot store: seen
			// here by holding the app on it.
			run(t, ctx, evalJS(`show("saving")`))
			shoot(t, ctx, dir, name("7-saving"))
			run(t, ctx, evalJS(`home()`), screen("attract"))

			// The operator screen: a long press in the corner, then the PIN.
			run(t, ctx, holdCorner(3300*time.Millisecond), screen("pin"))
			for _, k := range "1111" {
				run(t, ctx, tap(fmt.Sprintf(`#pinpad button[data-key="%c"]`, k)))
			}
			run(t, ctx, tap(`#pinpad button[data-key="OK"]`))
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("pin-error").textContent !== ""`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
				t.Error("a wrong PIN shows no error")
			}
			checkLayout(t, ctx, "pin")
			shoot(t, ctx, dir, name("8-pin"))
			for _, k := range "2468" {
				run(t, ctx, tap(fmt.Sprintf(`#pinpad button[data-key="%c"]`, k)))
			}
			run(t, ctx, tap(`#pinpad button[data-key="OK"]`), screen("operator"))
			checkLayout(t, ctx, "operator")
			shoot(t, ctx, dir, name("9-operator"))
			run(t, ctx, tap("#op-exit"), screen("attract"))
		})
	}
}

// evalJS runs a statement in the page.
func evalJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr+"; null")(ctx, tg)
		return err
	})
}
