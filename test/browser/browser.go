// Package browser drives Debian's Chromium, headless, through the DevTools protocol
// (chromedp) for the tests of Berth's web console: it opens pages as a user's
// browser does, measures each load with the browser's own Navigation Timing, and
// keeps a screenshot of every page it is asked to as a test artifact.
//
// Artifacts go to $BERTH_ARTIFACTS/<suite> (default <repo>/_artifacts/<suite>): one
// PNG per screenshot, and page-loads.tsv with every measured load.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/berthdev/berth/test/testenv"
)

// Path is where Debian's chromium package installs the browser (`make tools`).
const Path = "/usr/bin/chromium"

// Missing names what this machine lacks to run a browser test, or "".
func Missing() string {
	if _, err := exec.LookPath(Path); err != nil {
		return "Chromium " + Path + " is not installed (make tools installs Debian's chromium)"
	}
	return ""
}

// flags start Chromium the way a closed test machine needs: headless, no sandbox (the
// tests run as root), and none of its background connections to Google's services,
// which this machine's network refuses many at a time.
func flags(userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	}
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	ctx       context.Context
	artifacts string

	mu    sync.Mutex
	loads []Load
}

// Load is one page load as the browser measured it.
type Load struct {
	Name string
	URL  string
	// Response is from the request's start to the last byte of the server's answer
	// (what the server-side rendering costs, over loopback).
	Response time.Duration
	// Loaded is from the navigation's start to the end of the load event: the page
	// with its styles, scripts and images, as a user waits for it.
	Loaded time.Duration
}

// New starts Chromium for t and stops it when t ends. suite names the artifact
// directory. It fails in CI, and skips elsewhere, when Chromium is missing.
func New(t *testing.T, suite string) *Browser {
	t.Helper()
	testenv.Require(t, Missing())
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags(t.TempDir())...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	// The first action starts the browser; fail here rather than in the first page.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", Path, err)
	}
	b := &Browser{ctx: ctx, artifacts: ArtifactDir(t, suite)}
	t.Cleanup(func() {
		b.writeLoads(t)
		cancel()
		cancelAlloc()
	})
	return b
}

// ArtifactDir is $BERTH_ARTIFACTS/suite (default <repo>/_artifacts/suite), created.
func ArtifactDir(t *testing.T, suite string) string {
	t.Helper()
	root := os.Getenv("BERTH_ARTIFACTS")
	if root == "" {
		root = filepath.Join(testenv.RepoRoot(), "_artifacts")
	}
	dir := filepath.Join(root, suite)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Do runs steps in the tab with a deadline, failing t with what was attempted.
func (b *Browser) Do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Try is Do that returns the error instead of failing.
func (b *Browser) Try(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Get runs one action that returns a value (chromedp.Text, chromedp.Evaluate, ...)
// in b's tab with a deadline, failing t with what was attempted.
func Get[T any](t *testing.T, b *Browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Text is the text of the first element that the CSS selector matches.
func (b *Browser) Text(t *testing.T, selector string) string {
	t.Helper()
	return Get(t, b, "read "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// Count is how many elements the CSS selector matches now, without waiting.
func (b *Browser) Count(t *testing.T, selector string) int {
	t.Helper()
	return Get(t, b, "count "+selector, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
}

// Type focuses the element the CSS selector matches and enters text as typed input
// (DevTools' Input.insertText: one input event, as an IME or a paste gives), then
// presses Enter if enter is set. Per-key events would reach a terminal emulator
// (xterm.js) twice, as keydown and as keypress.
func (b *Browser) Type(t *testing.T, selector, text string, enter bool) {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Focus(chromedp.CSS(selector)),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
			return err
		}),
	}
	if enter {
		// One keyDown carrying "\r", as a real Enter press gives xterm.js; a whole
		// key event (keyDown, char, keyUp) would reach it twice.
		steps = append(steps, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", Text: "\r",
				WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13})
			if err != nil {
				return err
			}
			_, err = chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13})
			return err
		}))
	}
	b.Do(t, "type into "+selector, steps...)
}

// navigationTiming reads the last navigation's timing (the browser's clock, not the
// test's, so the test's own overhead is not counted) and the document's location in
// one evaluation: both from the same document, even when the page navigates on.
const navigationTiming = `(() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {url: location.href, timing: n ? [n.responseEnd - n.requestStart, n.loadEventEnd - n.startTime] : []};
})()`

// navigation is what navigationTiming returns.
type navigation struct {
	URL    string    `json:"url"`
	Timing []float64 `json:"timing"`
}

// Open navigates to url, waits for the load event and records its timing under name.
func (b *Browser) Open(t *testing.T, name, url string) Load {
	t.Helper()
	b.Do(t, "open "+url, chromedp.Navigate(url))
	return b.Measure(t, name)
}

// Measure records the timing of the navigation that brought the tab to its current
// page (after a click or a form's submit) under name.
func (b *Browser) Measure(t *testing.T, name string) Load {
	t.Helper()
	var nav navigation
	// loadEventEnd is 0 until the load event's handlers have run.
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A page that navigates on (a sign-in page's refresh) can replace the
		// document under the read: read again, and measure the page it went to.
		// Timing and location come from one evaluation, so a refresh between two
		// reads cannot fail the second (CI saw "Inspected target navigated").
		var err error
		nav, err = b.evaluate(navigationTiming)
		if err == nil && len(nav.Timing) == 2 && nav.Timing[1] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("page %s never finished loading (navigation timing %v, %v)", name, nav.Timing, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ms := nav.Timing
	url := redactToken(nav.URL)
	l := Load{Name: name, URL: url, Response: msDuration(ms[0]), Loaded: msDuration(ms[1])}
	b.mu.Lock()
	b.loads = append(b.loads, l)
	b.mu.Unlock()
	t.Logf("page %s loaded in %v (server answered in %v): %s", name, l.Loaded, l.Response, url)
	return l
}

// tokenParam is an access token in a URL's query (the console's sign-in URL).
var tokenParam = regexp.MustCompile(`([?&]token=)[^&#]+`)

// redactToken keeps access tokens out of logs and artifacts.
func redactToken(url string) string { return tokenParam.ReplaceAllString(url, "${1}REDACTED") }

// evaluate reads the navigation timing with a short deadline of its own.
func (b *Browser) evaluate(expr string) (navigation, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[navigation](expr))
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// Screenshot saves the whole page as <artifacts>/<name>.png.
func (b *Browser) Screenshot(t *testing.T, name string) string {
	t.Helper()
	png := Get(t, b, "screenshot "+name, chromedp.FullScreenshot(100)) // 100 is PNG; below it, JPEG
	path := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}

// Loads returns every page load measured so far.
func (b *Browser) Loads() []Load {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Load(nil), b.loads...)
}

// writeLoads keeps the measured loads beside the screenshots.
func (b *Browser) writeLoads(t *testing.T) {
	loads := b.Loads()
	if len(loads) == 0 {
		return
	}
	var sb strings.Builder
	sb.WriteString("page\tresponse_ms\tloaded_ms\turl\n")
	for _, l := range loads {
		fmt.Fprintf(&sb, "%s\t%.1f\t%.1f\t%s\n", l.Name,
			float64(l.Response)/float64(time.Millisecond), float64(l.Loaded)/float64(time.Millisecond), l.URL)
	}
	path := filepath.Join(b.artifacts, "page-loads.tsv")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("page loads in %s", path)
}
