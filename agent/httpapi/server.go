// Package httpapi is the agent's HTTP endpoint, on the ECS agent's introspection
// port (127.0.0.1:51678 by default):
//
//	GET /healthz                                 200 "ok" when containerd answers, else 503 with the error
//	GET /metrics                                 Prometheus metrics (agent/metrics, Go and process collectors)
//	GET /v1/tasks                                JSON list of the engine's reports of the tasks the caller may get
//	GET /v1/logs/{namespace}/{task}/{container}  the container's log file, for a caller that may get tasks/log
//	                                             of the task; ?tail=N for the last N lines, ?follow=true to
//	                                             stream what is appended
//
// /healthz and /metrics are open, as the kubelet's are (probes and node-local
// scrapers carry no identity; neither reveals a task's data beyond its name in
// metric labels). /v1/tasks and /v1/logs reveal tasks, so they take a Kubernetes
// bearer token (Authorization: Bearer) that the apiserver checks (internal/access:
// TokenReview, then SubjectAccessReviews, cached a few seconds): anything on the
// machine, a task on the host network included, reaches this port, and must not
// read another team's output. The rules are the apiserver's own for the same data:
// get on tasks/log for a task's logs (as the streaming server's /logs, and
// pods/log), get on tasks for a task's report (visible.go). Without credentials
// they answer 401 with a WWW-Authenticate: Bearer challenge; an agent without
// delegated authentication answers 503 and serves no task's data.
//
// Container output is the file containerd's shim writes,
// StateDir/logs/<namespace>_<task>_<taskUID>/<container>.log, found through the
// container's berth.dev/log-path label; rotated copies (.log.1, ...) are not served.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
)

// DefaultAddress is the ECS agent's introspection address.
const DefaultAddress = "127.0.0.1:51678"

// Timeouts of the server.
const (
	healthTimeout     = 5 * time.Second
	readHeaderTimeout = 10 * time.Second
	shutdownTimeout   = 5 * time.Second
	// DefaultFollowPoll is how often a followed log file is checked for output.
	DefaultFollowPoll = 250 * time.Millisecond
)

// Runtime is what the endpoint asks the container runtime.
type Runtime interface {
	Version(ctx context.Context) (string, error)
	List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error)
}

// Config configures a Server.
type Config struct {
	// Address to listen on, host:port.
	Address string
	Runtime Runtime
	// Tasks returns the engine's task reports.
	Tasks func() []engine.Report
	// StateDir is the agent's state directory: only log files under StateDir/logs are
	// served.
	StateDir string
	// Collector is exposed on /metrics with Go and process metrics. Optional.
	Collector prometheus.Collector
	// FollowPoll is how often a followed log is checked (DefaultFollowPoll).
	FollowPoll time.Duration
	// Auth authenticates and authorizes the callers of /v1/tasks and /v1/logs
	// (access.NewDelegated, shared with the streaming server). Nil refuses them
	// all with 503: closed, never open.
	Auth *access.Delegated
	Log  logr.Logger
}

// Server is the agent's HTTP endpoint.
type Server struct {
	cfg     Config
	logRoot string
	ln      net.Listener
	handler http.Handler
}

// New returns a server that is not listening yet; Handler serves its routes.
func New(cfg Config) (*Server, error) {
	if cfg.FollowPoll <= 0 {
		cfg.FollowPoll = DefaultFollowPoll
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Tasks == nil {
		cfg.Tasks = func() []engine.Report { return nil }
	}
	root, err := filepath.Abs(filepath.Join(cfg.StateDir, "logs"))
	if err != nil {
		return nil, fmt.Errorf("state directory %q: %w", cfg.StateDir, err)
	}
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if cfg.Collector != nil {
		cs = append(cs, cfg.Collector)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	s := &Server{cfg: cfg, logRoot: root}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /v1/tasks", s.tasks)
	mux.HandleFunc("GET /v1/logs/{namespace}/{task}/{container}", s.logs)
	s.handler = mux
	return s, nil
}

// Listen binds cfg.Address; Serve then serves on it.
func Listen(cfg Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s.ln, err = net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on --http-bind-address %s: %w", cfg.Address, err)
	}
	return s, nil
}

// Handler serves the routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves on the listener until ctx ends, then shuts down; requests (followed
// logs among them) see their context end with ctx.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.ln) }()
	s.cfg.Log.Info("serving the agent's HTTP endpoint", logAddress, s.ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("serving HTTP on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if _, err := s.cfg.Runtime.Version(ctx); err != nil {
		http.Error(w, "containerd does not answer: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Task is one task in /v1/tasks.
type Task struct {
	// Task is namespace/name.
	Task          string                        `json:"task"`
	Namespace     string                        `json:"namespace"`
	Name          string                        `json:"name"`
	UID           string                        `json:"uid"`
	LastStatus    ecsv1alpha1.TaskStatusValue   `json:"lastStatus"`
	HealthStatus  ecsv1alpha1.HealthStatus      `json:"healthStatus,omitempty"`
	StopCode      ecsv1alpha1.StopCode          `json:"stopCode,omitempty"`
	StoppedReason string                        `json:"stoppedReason,omitempty"`
	StartedAt     *time.Time                    `json:"startedAt,omitempty"`
	StoppedAt     *time.Time                    `json:"stoppedAt,omitempty"`
	Containers    []ecsv1alpha1.ContainerStatus `json:"containers"`
}

func (s *Server) tasks(w http.ResponseWriter, r *http.Request) {
	u, serr := s.cfg.Auth.Authenticate(r)
	if serr != nil {
		s.refuse(w, r, nil, serr)
		return
	}
	reports, err := visible(r.Context(), s.cfg.Auth, u, s.cfg.Tasks())
	if err != nil {
		s.refuse(w, r, u, apierrors.NewInternalError(err))
		return
	}
	out := make([]Task, 0, len(reports))
	for _, r := range reports {
		t := Task{
			Task: r.Task.String(), Namespace: r.Task.Namespace, Name: r.Task.Name, UID: string(r.UID),
			LastStatus: r.LastStatus, HealthStatus: r.HealthStatus, StopCode: r.StopCode, StoppedReason: r.StoppedReason,
			StartedAt: r.StartedAt, StoppedAt: r.StoppedAt, Containers: r.Containers,
		}
		if t.Containers == nil {
			t.Containers = []ecsv1alpha1.ContainerStatus{}
		}
		out = append(out, t)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		s.cfg.Log.V(1).Info("writing /v1/tasks", logReason, err.Error())
	}
}

// refuse answers serr as plain text and logs who was refused what; u is nil when
// the caller is unknown. The request's credentials are never logged.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, u user.Info, serr *apierrors.StatusError) {
	kv := []any{logPath, r.URL.Path, logCode, serr.ErrStatus.Code, logReason, serr.ErrStatus.Message}
	if u != nil {
		kv = append(kv, logUser, u.GetName())
	}
	if serr.ErrStatus.Code >= http.StatusInternalServerError {
		s.cfg.Log.Info("refused a request: the caller could not be checked", kv...)
	} else {
		s.cfg.Log.V(1).Info("refused a request", kv...)
	}
	access.WriteText(w, serr)
}
