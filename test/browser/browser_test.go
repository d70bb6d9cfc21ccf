package browser_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berthdev/berth/test/browser"
)

// TestBrowserMeasuresAndScreenshots checks the harness itself against a page whose
// server takes a known time: the load it measures includes that time, the page's
// content is read from the DOM, a click navigates, and the screenshot is a PNG.
func TestBrowserMeasuresAndScreenshots(t *testing.T) {
	const delay = 120 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		_, _ = fmt.Fprint(w, `<!doctype html><title>t</title><h1 id="h">hello</h1><a id="next" href="/next">next</a>`)
	})
	mux.HandleFunc("/type", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, `<!doctype html><textarea id="ta"></textarea><p id="n"></p><script>
let inputs = 0, enters = 0;
const ta = document.getElementById("ta"), n = document.getElementById("n");
const show = () => { n.textContent = inputs + " " + enters + " " + ta.value; };
ta.addEventListener("input", () => { inputs++; show(); });
ta.addEventListener("keydown", (e) => { if (e.key === "Enter") { enters++; show(); } });
</script>`)
	})
	// A page that navigates on at once, as the console's sign-in page does.
	mux.HandleFunc("/refresh", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, `<!doctype html><meta http-equiv="refresh" content="0; url=/next"><title>r</title>`)
	})
	mux.HandleFunc("/next", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, `<!doctype html><title>n</title><p id="p">second</p>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	t.Setenv("BERTH_ARTIFACTS", t.TempDir())
	b := browser.New(t, "harness")
	l := b.Open(t, "first", srv.URL+"/")
	if l.Response < delay || l.Loaded < l.Response {
		t.Errorf("load %+v: want response >= %v and loaded >= response", l, delay)
	}
	if h := b.Text(t, "#h"); h != "hello" {
		t.Errorf("h1 = %q", h)
	}
	if n := b.Count(t, "a"); n != 1 {
		t.Errorf("%d links, want 1", n)
	}
	b.Do(t, "click next", chromedp.Click(chromedp.CSS("#next")), chromedp.WaitVisible(chromedp.CSS("#p")))
	if l := b.Measure(t, "second"); l.URL != srv.URL+"/next" {
		t.Errorf("measured %s after the click, want /next", l.URL)
	}
	path := b.Screenshot(t, "second")
	png, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %v (%d bytes)", path, err, len(png))
	}
	if got := len(b.Loads()); got != 2 {
		t.Errorf("%d loads recorded, want 2", got)
	}

	// Type gives one input event for the text and one Enter.
	b.Open(t, "type", srv.URL+"/type")
	b.Type(t, "#ta", "echo hi", true)
	if got := b.Text(t, "#n"); got != "2 1 echo hi" {
		t.Errorf("after Type: inputs, enters and value %q, want %q", got, "2 1 echo hi")
	}
	// A page that replaces itself while it is measured is measured, never failed:
	// the timing and the location come from one of the two documents. Repeated,
	// since the refresh lands between reads only sometimes. Each round waits for the
	// refresh to land, as the console test waits for the page after sign-in: a new
	// navigation started before it would be aborted by it (net::ERR_ABORTED).
	for i := range 20 {
		l := b.Open(t, fmt.Sprintf("refresh-%d", i), srv.URL+"/refresh")
		if l.URL != srv.URL+"/refresh" && l.URL != srv.URL+"/next" {
			t.Errorf("measured %s after opening a page that refreshes to /next", l.URL)
		}
		b.Do(t, "wait for the refresh to land", chromedp.WaitVisible(chromedp.CSS("#p")))
	}

	if filepath.Dir(path) != filepath.Join(os.Getenv("BERTH_ARTIFACTS"), "harness") {
		t.Errorf("screenshot in %s", filepath.Dir(path))
	}
}
