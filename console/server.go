package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/console/web"
)

// FieldManager is the field manager of every write the console makes, so
// managedFields show which changes came from it.
const FieldManager = "berth-console"

// Server is the console's HTTP handler.
type Server struct {
	guard *guard
	// reader is the informer cache of Berth's objects, read with the user's identity.
	reader client.Reader
	// direct reads what is not cached (events, revisions, access reviews) and makes
	// every write, with the user's identity.
	direct client.Client
	// forbidden maps a kind the user may not list or watch to the apiserver's
	// answer; pages show it instead of that kind's rows.
	forbidden map[string]error
	history   *history
	agent     Agent
	pages     map[string]*template.Template
	mux       *http.ServeMux
	log       logr.Logger
	now       func() time.Time
}

// page is what every template gets.
type page struct {
	Title   string
	Flash   string
	CSRF    string
	Notices []string
	// Nav is the top navigation item to highlight: clusters or taskdefinitions.
	Nav  string
	Body any
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(web.Static, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", s.clustersPage)
	m.HandleFunc("GET /clusters/{name}", s.clusterPage)
	m.HandleFunc("GET /instances/{name}", s.instancePage)
	m.HandleFunc("GET /services/{ns}/{name}", s.servicePage)
	m.HandleFunc("GET /tasks/{ns}/{name}", s.taskPage)
	m.HandleFunc("GET /taskdefinitions", s.familiesPage)
	m.HandleFunc("GET /taskdefinitions/{ns}/{name}", s.familyPage)
	m.HandleFunc("GET /taskdefinitions/{ns}/{name}/diff", s.diffPage)
	for _, a := range actions {
		m.HandleFunc("GET "+a.route, s.confirm(a))
		m.HandleFunc("POST "+a.route, s.perform(a))
	}
	m.HandleFunc("GET /tasks/{ns}/{name}/exec", s.execPage)
	m.HandleFunc("POST /tasks/{ns}/{name}/exec", s.execRun)
	m.HandleFunc("GET /tasks/{ns}/{name}/exec/ws", s.execSocket)
	s.mux = m
}

// ServeHTTP applies the security checks (auth.go) before any handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	if !loopbackHost(r.Host) {
		// DNS rebinding: the browser thinks it talks to the attacker's domain.
		http.Error(w, fmt.Sprintf("host %q is not a loopback name: open the console at http://127.0.0.1 or http://localhost", r.Host), http.StatusForbidden)
		return
	}
	if r.URL.Path == "/healthz" {
		_, _ = w.Write([]byte("ok\n"))
		return
	}
	if r.URL.Path == "/" && r.URL.Query().Has("token") {
		s.login(w, r)
		return
	}
	sess := s.guard.session(r)
	if sess == nil {
		s.unauthorized(w)
		return
	}
	if r.Method == http.MethodPost {
		// Bound the body before ParseForm reads it.
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := s.guard.checkPost(r, sess); err != nil {
			s.fail(w, r, sess, http.StatusForbidden, err)
			return
		}
	}
	s.mux.ServeHTTP(w, r.WithContext(withSession(r.Context(), sess)))
}

// login trades the token for a session cookie. The redirect is a page that
// refreshes itself rather than a 303: a browser that followed a link from another
// site (a terminal, a chat) treats a redirect chain as cross-site and would not send
// the new SameSite=Strict cookie on its last hop, while a refresh from our own page
// is same-site.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.guard.tokenMatches(r.URL.Query().Get("token")) {
		s.unauthorized(w)
		return
	}
	id, err := s.guard.newSession()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	setSessionCookie(w, id)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = fmt.Fprint(w, `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=/"><title>Berth console</title></head>`+
		`<body><p id="signed-in">Signed in. <a href="/">Continue to the console</a>.</p></body></html>`)
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = fmt.Fprint(w, `<!doctype html><html><head><meta charset="utf-8"><title>Berth console: sign in</title></head><body>`+
		`<h1 id="unauthorized">Sign in to the Berth console</h1>`+
		`<p>Open the URL with the access token that <code>berth console</code> printed when it started `+
		`(<code>Berth console: http://127.0.0.1:PORT/?token=...</code>). `+
		`<code>berth up</code> prints it at the end of its summary and keeps the token in <code>&lt;state-dir&gt;/console-token</code>.</p>`+
		`</body></html>`)
}

type sessionKey struct{}

func withSession(ctx context.Context, s *session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// render executes a page template with the layout.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		p.CSRF = s.guard.csrfToken(sess)
		if p.Flash == "" {
			p.Flash = s.guard.takeFlash(sess)
		}
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		s.log.Error(err, "rendering page", "template", name)
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorBody is the body of error.html.
type errorBody struct {
	Status  int
	Message string
	Back    string
}

// fail renders an error page; apiserver errors keep their status (403 forbidden,
// 404 not found, 422 invalid) and their message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, _ *session, status int, err error) {
	msg := err.Error()
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if code := int(st.Status().Code); code != 0 {
			status = code
		}
		if apierrors.IsForbidden(err) && !strings.HasPrefix(msg, "forbidden") {
			msg = "forbidden: " + msg
		}
	}
	s.render(w, r, status, "error.html", page{Title: http.StatusText(status), Body: errorBody{Status: status, Message: msg, Back: r.Referer()}})
}
