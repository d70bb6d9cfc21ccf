package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
)

const testToken = "test-token-0123456789abcdef"

// fakeServer is a console over a fake client holding objs, for tests of the HTTP
// layer that need no apiserver.
func fakeServer(t *testing.T, objs ...client.Object) (*Server, *httptest.Server, client.Client) {
	t.Helper()
	return fakeServerWith(t, fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(objs...).Build())
}

func fakeServerWith(t *testing.T, c client.Client) (*Server, *httptest.Server, client.Client) {
	t.Helper()
	s, err := assemble(Options{Token: testToken, Log: logr.Discard()}, c, c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, c
}

func webService() *ecsv1alpha1.Service {
	return &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       ecsv1alpha1.ServiceSpec{Cluster: "default", TaskDefinition: "web", DesiredCount: ptr.To[int32](3)},
	}
}

func TestLoopbackHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8484", true},
		{"127.0.0.1", true},
		{"127.1.2.3:80", true},
		{"localhost:8484", true},
		{"LOCALHOST", true},
		{"console.localhost:8484", true},
		{"[::1]:8484", true},
		{"::1", true},
		{"evil.example:8484", false},
		{"localhost.evil.example", false},
		{"10.0.0.1:8484", false},
		{"0.0.0.0:8484", false},
		{"", false},
	} {
		if got := loopbackHost(tc.host); got != tc.want {
			t.Errorf("loopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestOriginMatches(t *testing.T) {
	for _, tc := range []struct {
		name, host, origin string
		wantErr            bool
	}{
		{"same origin", "127.0.0.1:8484", "http://127.0.0.1:8484", false},
		{"missing", "127.0.0.1:8484", "", true},
		{"other port", "127.0.0.1:8484", "http://127.0.0.1:9999", true},
		{"other site", "127.0.0.1:8484", "http://evil.example", true},
		{"https", "127.0.0.1:8484", "https://127.0.0.1:8484", true},
		{"null", "127.0.0.1:8484", "null", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://"+tc.host+"/", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if err := originMatches(r); (err != nil) != tc.wantErr {
				t.Errorf("originMatches: err %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestValidateAddress(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantErr string
	}{
		{"127.0.0.1:8484", ""},
		{"127.0.0.1:0", ""},
		{"[::1]:8484", ""},
		{"localhost:8484", ""},
		{"0.0.0.0:8484", "not a loopback address"},
		{":8484", "not a loopback address"},
		{"192.168.1.10:8484", "not a loopback address"},
		{"example.com:8484", "not a loopback address"},
		{"127.0.0.1", "not host:port"},
	} {
		err := ValidateAddress(tc.addr)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ValidateAddress(%q): %v", tc.addr, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--address")):
			t.Errorf("ValidateAddress(%q) = %v, want an --address error containing %q", tc.addr, err, tc.wantErr)
		}
	}
}

func TestSignIn(t *testing.T) {
	_, srv, _ := fakeServer(t)
	b := newBrowser(t, srv)

	res, body := b.get("/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "?token=") {
		t.Fatalf("without a session: status %d, want 401 saying how to get the URL; body %s", res.StatusCode, body)
	}
	for k, v := range securityHeaders {
		if got := res.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if res, _ := b.get("/?token=wrong"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want 401", res.StatusCode)
	}
	if res, _ := b.get("/static/console.css"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("static file without a session: status %d, want 401", res.StatusCode)
	}

	res, _ = b.get("/?token=" + testToken)
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == testToken {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not the token itself", cookie)
	}
	if res, body := b.get("/"); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="clusters"`) {
		t.Errorf("signed in: status %d, body %s", res.StatusCode, body)
	}
}

func TestHostCheck(t *testing.T) {
	_, srv, _ := fakeServer(t)
	b := newBrowser(t, srv)
	b.login(testToken)
	// A DNS-rebinding page reaches our port under its own host name.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Host = "rebind.evil.example:80"
	if res, _ := b.do(req); res.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: status %d, want 403", res.StatusCode)
	}
}

func TestPostNeedsCSRFAndOrigin(t *testing.T) {
	_, srv, c := fakeServer(t, webService())
	b := newBrowser(t, srv)
	b.login(testToken)
	_, page := b.get("/services/default/web/scale?desiredCount=5")
	token := csrfOf(t, page)

	other := newBrowser(t, srv)
	other.login(testToken)
	_, otherPage := other.get("/services/default/web/scale?desiredCount=5")

	for _, tc := range []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no CSRF token", url.Values{"desiredCount": {"5"}}, srv.URL},
		{"wrong CSRF token", url.Values{"desiredCount": {"5"}, "csrf": {"x" + token}}, srv.URL},
		{"another session's token", url.Values{"desiredCount": {"5"}, "csrf": {csrfOf(t, otherPage)}}, srv.URL},
		{"no Origin", url.Values{"desiredCount": {"5"}, "csrf": {token}}, ""},
		{"foreign Origin", url.Values{"desiredCount": {"5"}, "csrf": {token}}, "http://evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res, body := b.postWithOrigin("/services/default/web/scale", tc.form, tc.origin); res.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403; body %s", res.StatusCode, body)
			}
		})
	}
	svc := &ecsv1alpha1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	if *svc.Spec.DesiredCount != 3 {
		t.Fatalf("a refused POST changed desiredCount to %d", *svc.Spec.DesiredCount)
	}

	res, _ := b.post("/services/default/web/scale", url.Values{"desiredCount": {"5"}, "csrf": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/services/default/web" {
		t.Fatalf("valid POST: status %d to %q, want 303 to the service", res.StatusCode, res.Header.Get("Location"))
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	if *svc.Spec.DesiredCount != 5 {
		t.Errorf("desiredCount %d after a confirmed scale to 5", *svc.Spec.DesiredCount)
	}
	if _, body := b.get("/services/default/web"); !strings.Contains(body, `id="flash"`) || !strings.Contains(body, "scaled to 5") {
		t.Errorf("no flash message after the scale: %s", body)
	}
}
