package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
)

// DefaultAddress is where `berth agent` serves exec and logs unless told otherwise:
// loopback, so that nothing is exposed until an operator chooses an address.
const DefaultAddress = "127.0.0.1:51680"

// Timeouts of the server.
const (
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
)

// Runtime is what the server asks the container runtime: the task's containers, and
// an interactive exec in one.
type Runtime interface {
	runtime.Execer
	List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error)
}

// LogServer serves a container's log file (agent/httpapi's reader).
type LogServer interface {
	ServeContainerLog(w http.ResponseWriter, r *http.Request, task types.NamespacedName, container string)
}

// Config configures the handler.
type Config struct {
	// Instance is the ContainerInstance this agent runs: only its tasks are served.
	Instance string
	// Tasks reads Tasks (the agent's cache of its own).
	Tasks   client.Reader
	Runtime Runtime
	Logs    LogServer
	// Auth authenticates and authorizes callers (access.NewDelegated), shared with
	// the agent's HTTP endpoint.
	Auth *access.Delegated
	// Audit records the exec decisions on the tasks.
	Audit *Auditor
	Log   logr.Logger
}

// Server serves the routes.
type Server struct {
	cfg Config
}

// NewHandler returns the server's routes.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Auth == nil || cfg.Tasks == nil || cfg.Runtime == nil || cfg.Logs == nil || cfg.Audit == nil {
		return nil, errors.New("the streaming server needs auth, a task reader, a runtime, a log server and an auditor")
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	s := &Server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /exec/{namespace}/{task}", s.exec)
	mux.HandleFunc("POST /exec/{namespace}/{task}", s.exec)
	mux.HandleFunc("GET /logs/{namespace}/{task}/{container}", s.logs)
	return mux, nil
}

// Listener is the server's socket and serving certificate, made before the agent
// registers so that it can publish them.
type Listener struct {
	ln       net.Listener
	cert     tls.Certificate
	endpoint ecsv1alpha1.StreamingEndpoint
}

// Listen binds address (port 0 picks one) and makes a certificate for
// advertiseHost, the host of the published URL.
func Listen(address, advertiseHost string) (*Listener, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening on --streaming-address %s: %w", address, err)
	}
	cert, caPEM, err := selfSignedCert(servingHosts(advertiseHost), time.Now())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &Listener{ln: ln, cert: cert, endpoint: ecsv1alpha1.StreamingEndpoint{
		URL: "https://" + net.JoinHostPort(advertiseHost, port), CABundle: string(caPEM),
	}}, nil
}

// Endpoint is the URL and CA bundle the agent publishes in its ContainerInstance.
func (l *Listener) Endpoint() ecsv1alpha1.StreamingEndpoint { return l.endpoint }

// Port is the port the server listens on.
func (l *Listener) Port() int32 { return int32(l.ln.Addr().(*net.TCPAddr).Port) }

// Close closes the socket of a listener that is not served.
func (l *Listener) Close() error { return l.ln.Close() }

// Serve serves h over TLS until ctx ends. Client certificates are asked for but
// verified by the authenticator against the cluster's client CA, which changes at
// run time.
func (l *Listener) Serve(ctx context.Context, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{l.cert},
			ClientAuth:   tls.RequestClientCert,
			MinVersion:   tls.VersionTLS12,
			// Websockets and SPDY upgrade HTTP/1.1 connections.
			NextProtos: []string{"http/1.1"},
		},
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(l.ln, "", "") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// authorize authenticates the caller and asks the apiserver whether attrs allow
// it; on failure it has answered (401, 403, 500 or 503) and returns false, with the
// user only when RBAC denied it.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, attrs func(user.Info) authorizer.Attributes) (user.Info, bool) {
	u, serr := s.cfg.Auth.Check(r, attrs)
	if serr != nil {
		if serr.ErrStatus.Code == http.StatusInternalServerError {
			s.cfg.Log.Error(serr, "authorizing a streaming request", logUser, u.GetName())
		}
		access.WriteStatus(w, &serr.ErrStatus)
		return denied(u, serr), false
	}
	return u, true
}

// denied is u when RBAC refused it, nil otherwise (unauthenticated, or the
// apiserver could not be asked): only RBAC's refusals are audited.
func denied(u user.Info, serr *apierrors.StatusError) user.Info {
	if apierrors.IsForbidden(serr) {
		return u
	}
	return nil
}

// statusError is a refusal with its HTTP code.
func statusError(code int, reason metav1.StatusReason, format string, args ...any) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: fmt.Sprintf(format, args...),
	}}
}

// task reads a task of this instance, or says why it cannot be served here.
func (s *Server) task(ctx context.Context, key types.NamespacedName) (*ecsv1alpha1.Task, *apierrors.StatusError) {
	t := &ecsv1alpha1.Task{}
	if err := s.cfg.Tasks.Get(ctx, key, t); apierrors.IsNotFound(err) {
		return nil, statusError(http.StatusNotFound, metav1.StatusReasonNotFound,
			"task %s is not on container instance %s", key, s.cfg.Instance)
	} else if err != nil {
		return nil, statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "reading task %s: %v", key, err)
	}
	if t.Spec.ContainerInstance != s.cfg.Instance {
		return nil, statusError(http.StatusConflict, metav1.StatusReasonConflict,
			"task %s runs on container instance %q, not %s", key, t.Spec.ContainerInstance, s.cfg.Instance)
	}
	return t, nil
}

// runningContainer is the runtime ID of the task's container name, which must be
// running.
func (s *Server) runningContainer(ctx context.Context, t *ecsv1alpha1.Task, name string) (string, *apierrors.StatusError) {
	infos, err := s.cfg.Runtime.List(ctx, map[string]string{runtime.LabelTaskUID: string(t.UID), runtime.LabelContainer: name})
	if err != nil {
		return "", statusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "listing containers: %v", err)
	}
	for _, info := range infos {
		if info.Status == runtime.StatusRunning {
			return info.ID, nil
		}
	}
	return "", statusError(http.StatusConflict, metav1.StatusReasonConflict,
		"container %q of task %s/%s is not running", name, t.Namespace, t.Name)
}

// logs serves GET /logs/{namespace}/{task}/{container}.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	key := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("task")}
	if _, ok := s.authorize(w, r, func(u user.Info) authorizer.Attributes { return access.LogAttributes(u, key.Namespace, key.Name) }); !ok {
		return
	}
	if _, serr := s.task(r.Context(), key); serr != nil {
		access.WriteStatus(w, &serr.ErrStatus)
		return
	}
	s.cfg.Logs.ServeContainerLog(w, r, key, r.PathValue("container"))
}
