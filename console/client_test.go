package console

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// browser is a test client that behaves as the user's browser does: it keeps
// cookies, does not follow redirects (tests check them), and sends Origin on POST.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, srv *httptest.Server) *browser {
	t.Helper()
	return newBrowserAt(t, srv.URL)
}

// newBrowserAt is a browser for a console at base (http://host:port).
func newBrowserAt(t testing.TB, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// login opens the URL `berth console` prints.
func (b *browser) login(token string) {
	b.t.Helper()
	res, body := b.get("/?token=" + url.QueryEscape(token))
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="signed-in"`) {
		b.t.Fatalf("login: status %d, body %s", res.StatusCode, body)
	}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return res, string(raw)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form as the page's own form would: with the page's Origin.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.postWithOrigin(path, form, b.base)
}

func (b *browser) postWithOrigin(path string, form url.Values, origin string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return b.do(req)
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// confirmAndPost does an action as a user does: GET the action's route (the form on
// the object's page), read the confirmation page, and POST its form.
func (b *browser) confirmAndPost(path string, query url.Values) (confirmPage string, res *http.Response, body string) {
	b.t.Helper()
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	r, page := b.get(target)
	if r.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: status %d: %s", target, r.StatusCode, page)
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	if form.Get("csrf") == "" {
		b.t.Fatalf("confirmation page of %s has no CSRF token: %s", target, page)
	}
	res, body = b.post(path, form)
	return page, res, body
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#43;", "+").Replace(s)
}

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page: %s", page)
	}
	return htmlUnescape(m[1])
}
