// Package regtest runs a real OCI distribution registry (bin/registry, built by
// `make tools`) on a loopback port for tests, optionally behind htpasswd basic auth,
// and builds small test images to push to it.
//
// The registry listens on a private port; tests talk to a recording reverse proxy in
// front of it (Registry.Addr), so they can see which requests a client made (did a
// pull contact the registry at all?), simulate an outage (SetUnavailable) and hold a
// pull in the middle (SetStalled).
package regtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/berthdev/berth/internal/up/localrun"
	"github.com/berthdev/berth/test/testenv"
)

// Registry is a running test registry.
type Registry struct {
	// Addr is host:port of the registry as clients reach it (127.0.0.1:port).
	Addr string
	// Username and Password are the credentials when the registry requires auth.
	Username, Password string

	dir     string
	logPath string

	mu          sync.Mutex
	requests    []Request
	unavailable bool
	// stall, while not nil, holds blob downloads until it is closed; stalled counts
	// the requests it holds.
	stall   chan struct{}
	stalled int
}

// Request is one HTTP request the registry answered (through the proxy).
type Request struct {
	Method string
	Path   string
	Status int
}

// Option configures Start.
type Option func(*options)

type options struct {
	username, password string
}

// WithBasicAuth makes the registry require these credentials for every request
// (htpasswd with a bcrypt hash, as distribution requires).
func WithBasicAuth(username, password string) Option {
	return func(o *options) { o.username, o.password = username, password }
}

// BinaryPath is the registry binary: bin/registry (or $KUBEBUILDER_ASSETS/registry).
func BinaryPath() string { return filepath.Join(testenv.BinDir(), "registry") }

// Start starts a registry with a temporary storage directory and stops it when the
// test ends. It skips the test in -short mode; when bin/registry is missing it fails
// the test in CI and skips it elsewhere (testenv.Require).
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("tests with a registry are skipped in -short mode")
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := BinaryPath()
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, fmt.Sprintf("registry binary not found at %s (run `make tools`): %v", bin, err))
	}
	r := &Registry{Username: o.username, Password: o.password, dir: t.TempDir()}
	r.logPath = filepath.Join(r.dir, "registry.log")

	backend, stop, err := r.startBackend(bin)
	if err != nil {
		t.Fatalf("starting registry: %v\n%s", err, r.logTail())
	}
	t.Cleanup(stop)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening for the registry proxy: %v", err)
	}
	srv := &http.Server{Handler: r.proxy(backend), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.Addr = ln.Addr().String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log (last lines):\n%s", r.logTail())
		}
	})
	return r
}

// startBackend runs bin/registry on a free loopback port, waits for /v2/ and returns
// its address and a function that stops it. A port picked free can be taken before the
// registry binds it, so it retries a few times.
func (r *Registry) startBackend(bin string) (string, func(), error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return "", nil, err
		}
		cfg, err := r.writeConfig(addr)
		if err != nil {
			return "", nil, err
		}
		logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return "", nil, err
		}
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		// distribution v3 can export traces; never try here.
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		err = cmd.Start()
		_ = logf.Close() // the child has its own copy
		if err != nil {
			return "", nil, err
		}
		exited := make(chan struct{}) // closed once the registry has exited
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if lastErr = waitV2(addr, exited); lastErr == nil {
			return addr, stop, nil
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	return "", nil, lastErr
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// A failed close would leave the port taken, which startBackend retries like a
	// port taken meanwhile.
	defer func() { _ = ln.Close() }()
	return ln.Addr().String(), nil
}

func waitV2(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("registry exited before serving (see its log)")
		default:
		}
		resp, err := c.Get("http://" + addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close() // only the status matters
			// 401 counts: an auth-protected registry answers /v2/ with a challenge.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("registry on %s did not answer /v2/ within 30s", addr)
}

func (r *Registry) writeConfig(addr string) (string, error) {
	var auth string
	if r.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			return "", err
		}
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			return "", err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
	}
	cfg, err := localrun.RegistryConfig(filepath.Join(r.dir, "data"), addr, auth)
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.dir, "config.yml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// proxy forwards to the registry and records each request.
func (r *Registry) proxy(backend string) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: backend})
	// Keep the client's Host header so the registry builds upload URLs that point back
	// at the proxy.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		internal := req.Header.Get(internalHeader) != ""
		r.mu.Lock()
		down, stall := r.unavailable, r.stall
		r.mu.Unlock()
		if stall != nil && !internal && isBlobDownload(req) {
			w = &stallWriter{ResponseWriter: w, r: r, req: req, stall: stall}
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if down && !internal {
			http.Error(rec, "registry unavailable (simulated by regtest)", http.StatusServiceUnavailable)
		} else {
			rp.ServeHTTP(rec, req)
		}
		if !internal {
			r.mu.Lock()
			r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, Status: rec.status})
			r.mu.Unlock()
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Ref returns the reference of repo:tag in this registry.
func (r *Registry) Ref(repo, tag string) string { return r.Addr + "/" + repo + ":" + tag }

// Requests returns the requests answered so far.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// ResetRequests forgets the recorded requests.
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// RepoRequests counts the recorded requests that touched repository repo (its
// manifests or blobs), ignoring the /v2/ ping.
func (r *Registry) RepoRequests(repo string) int {
	n := 0
	for _, q := range r.Requests() {
		if strings.HasPrefix(q.Path, "/v2/"+repo+"/") {
			n++
		}
	}
	return n
}

// SetUnavailable makes every request fail with 503 Service Unavailable (true) or
// reach the registry again (false).
func (r *Registry) SetUnavailable(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unavailable = down
}

// SetStalled makes the registry stop sending in the middle of blob downloads (GET
// /v2/<repo>/blobs/<digest>) that start while stall is true: the first StallAfter
// bytes of a blob are sent, the rest is held. Manifests and small blobs (image
// configs) are served whole, so a client is caught in the middle of a layer, with
// part of it written. SetStalled(false) lets the held downloads go on; one whose
// client goes away is dropped.
func (r *Registry) SetStalled(stall bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case stall && r.stall == nil:
		r.stall = make(chan struct{})
	case !stall && r.stall != nil:
		close(r.stall)
		r.stall = nil
	}
}

// StallAfter is how much of a blob a stalled download sends before it is held.
const StallAfter = 32 << 10

// Stalled is how many blob downloads SetStalled holds now.
func (r *Registry) Stalled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stalled
}

// hold waits until stall is closed (true) or the client goes away (false).
func (r *Registry) hold(req *http.Request, stall <-chan struct{}) bool {
	r.mu.Lock()
	r.stalled++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.stalled--
		r.mu.Unlock()
	}()
	select {
	case <-stall:
		return true
	case <-req.Context().Done():
		return false
	}
}

// stallWriter passes the first StallAfter bytes of a response, then holds the rest
// until stall is closed.
type stallWriter struct {
	http.ResponseWriter
	r     *Registry
	req   *http.Request
	stall <-chan struct{} // nil once released
	n     int
}

func (w *stallWriter) Write(p []byte) (int, error) {
	written := 0
	if w.stall != nil && w.n+len(p) > StallAfter {
		head := max(StallAfter-w.n, 0)
		m, err := w.ResponseWriter.Write(p[:head])
		w.n, written = w.n+m, m
		if err != nil {
			return written, err
		}
		w.Flush()
		if !w.r.hold(w.req, w.stall) {
			return written, errors.New("the client went away while the download was held")
		}
		w.stall, p = nil, p[head:]
	}
	m, err := w.ResponseWriter.Write(p)
	w.n += m
	return written + m, err
}

func (w *stallWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func isBlobDownload(req *http.Request) bool {
	p := req.URL.Path
	return req.Method == http.MethodGet && strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/blobs/") && !strings.Contains(p, "/blobs/uploads/")
}

// logTail returns the end of the registry's log, for failure messages.
func (r *Registry) logTail() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}
