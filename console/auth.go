package console

// The console acts with its user's Kubernetes credentials on a loopback port, so
// every web page open in the user's browser can send requests to it. Four checks
// keep those pages out:
//
//   - the access token: a random secret printed once; only its holder gets a session
//     cookie (HttpOnly, SameSite=Strict), and every request without one gets 401;
//   - the Host header must name a loopback host, or a page on an attacker's domain
//     that resolves to 127.0.0.1 (DNS rebinding) would be same-origin with us;
//   - every POST carries a CSRF token derived from the session, and its Origin must
//     be this server's;
//   - headers forbid framing (clickjacking) and any script but our own files.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

const (
	// sessionCookie names the cookie that carries the session ID.
	sessionCookie = "berth_console_session"
	// csrfField is the form field (or X-CSRF-Token header) of the CSRF token.
	csrfField = "csrf"
	// maxSessions bounds the sessions kept; the oldest is dropped past it. Only the
	// token's holder makes sessions, so this only guards against a runaway client.
	maxSessions = 256
)

// securityHeaders are set on every response. default-src 'self' without
// 'unsafe-inline' allows our own script files and no inline script; the terminal's
// websocket is same-origin ('self' covers ws: on the same host). Inline styles are
// allowed, and only them: xterm.js's renderer writes its theme into a <style>
// element it creates, and style cannot run code.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Frame-Options":         "DENY",
	"X-Content-Type-Options":  "nosniff",
	// The login URL carries the token: never send it, or any URL, to another site.
	// same-origin, not no-referrer: under no-referrer browsers send "Origin: null"
	// on the console's own form posts, which the Origin check must refuse.
	"Referrer-Policy":              "same-origin",
	"Cache-Control":                "no-store",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// NewToken returns a random access token (256 bits, URL-safe).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// session is one browser signed in with the token.
type session struct {
	id string
	// flash is the message of the last action, shown once on the next page.
	flash string
}

// guard holds the token and the sessions made with it.
type guard struct {
	token string
	key   []byte // HMAC key of CSRF tokens

	mu       sync.Mutex
	sessions map[string]*session
	order    []string // session IDs, oldest first
}

func newGuard(token string) (*guard, error) {
	if len(token) < 16 {
		return nil, fmt.Errorf("token: must be at least 16 characters")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return &guard{token: token, key: key, sessions: map[string]*session{}}, nil
}

// tokenMatches compares in constant time, so response timing tells nothing.
func (g *guard) tokenMatches(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(g.token)) == 1
}

// newSession starts a session and returns its ID.
func (g *guard) newSession() (string, error) {
	id, err := NewToken()
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.order) >= maxSessions {
		delete(g.sessions, g.order[0])
		g.order = g.order[1:]
	}
	g.sessions[id] = &session{id: id}
	g.order = append(g.order, id)
	return id, nil
}

// session returns the request's session, or nil without a valid cookie.
func (g *guard) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[c.Value]
}

func (g *guard) setFlash(s *session, msg string) {
	g.mu.Lock()
	s.flash = msg
	g.mu.Unlock()
}

func (g *guard) takeFlash(s *session) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	msg := s.flash
	s.flash = ""
	return msg
}

// csrfToken is bound to a session: HMAC(key, session ID). A page of another origin
// can neither read it (same-origin policy) nor derive it.
func (g *guard) csrfToken(s *session) string {
	m := hmac.New(sha256.New, g.key)
	m.Write([]byte(s.id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (g *guard) csrfValid(s *session, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(g.csrfToken(s)))
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost (or a name under .localhost, which resolvers answer locally), or a
// loopback IP, with or without a port.
func loopbackHost(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// originMatches reports whether a request's Origin header is this server as the
// browser reached it: http://<Host>. A missing Origin fails: browsers send it on
// every POST and websocket handshake, so only a non-browser client omits it, and
// such a client can set it.
func originMatches(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return fmt.Errorf("the request has no Origin header")
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("origin %q is not this console (http://%s)", o, r.Host)
	}
	return nil
}

// checkPost verifies a state-changing request: its Origin and its CSRF token.
func (g *guard) checkPost(r *http.Request, s *session) error {
	if err := originMatches(r); err != nil {
		return err
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	if !g.csrfValid(s, got) {
		return fmt.Errorf("missing or invalid CSRF token: reload the page and try again")
	}
	return nil
}

// setSessionCookie gives the browser its session.
func setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}
