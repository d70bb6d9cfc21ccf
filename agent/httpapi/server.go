// Package httpapi is the agent's HTTP endpoint, on the ECS agent's introspection
// port (127.0.0.1:51678 by default, loopback only: it serves container output):
//
//	GET /healthz                                 200 "ok" when containerd answers, else 503 with the error
//	GET /metrics                                 Prometheus metrics (agent/metrics, Go and process collectors)
//	GET /v1/tasks                                JSON list of the engine's task reports
//	GET /v1/logs/{namespace}/{task}/{container}  the container's log file; ?tail=N for the last N
//	                                             lines, ?follow=true to stream what is appended
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

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
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
	Log        logr.Logger
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

func (s *Server) tasks(w http.ResponseWriter, _ *http.Request) {
	reports := s.cfg.Tasks()
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
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		s.cfg.Log.V(1).Info("writing /v1/tasks", logReason, err.Error())
	}
}
