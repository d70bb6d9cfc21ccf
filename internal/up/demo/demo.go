// Package demo is the demo web server of `berth up` and the samples: a small HTTP
// server that says which task, revision and container instance it runs in (from the
// BERTH_* environment the agent gives every container), with a health endpoint and
// switches to fail or exit on demand, so that health checks, circuit breakers and
// essential-container stops can be shown with one image.
//
// It is compiled into the berth binary: the demo image holds that binary as /demo,
// and berth runs this package when it is started under the name "demo" (see
// internal/cli). Flags:
//
//	--listen=:8080           address to serve on
//	--exit-after=5s          exit by itself after this long (with --exit-code)
//	--exit-code=0            exit code for --exit-after and POST /exit
//	--fail-start             exit 1 at once, as a crashing release would
//	--unhealthy-after=30s    /healthz answers 503 from then on
//
// Endpoints: GET / (a page, or JSON with Accept: application/json), GET /healthz,
// POST /fail (health fails from now on), POST /exit?code=N (exit now with N).
// `demo healthcheck [--url URL]` is the container health check command: it exits 0
// when the server's /healthz answers 200.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// Name is the program name under which berth runs the demo server.
const Name = "demo"

// DefaultListen is where the server listens without --listen.
const DefaultListen = ":8080"

// Config is the server's configuration, from its flags.
type Config struct {
	Listen         string
	ExitAfter      time.Duration
	ExitCode       int
	FailStart      bool
	UnhealthyAfter time.Duration
}

// Main runs the demo program with args (without the program name) and returns its
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:], stderr)
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.FailStart {
		_, _ = fmt.Fprintln(stderr, "demo: --fail-start: exiting with code 1")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "demo: listening on %s: %v\n", cfg.Listen, err)
		return 1
	}
	return Serve(ctx, ln, cfg, stdout)
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet(Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{}
	fs.StringVar(&cfg.Listen, "listen", DefaultListen, "Address to serve HTTP on.")
	fs.DurationVar(&cfg.ExitAfter, "exit-after", 0, "Exit by itself after this long (0: never), with --exit-code.")
	fs.IntVar(&cfg.ExitCode, "exit-code", 0, "Exit code for --exit-after and POST /exit.")
	fs.BoolVar(&cfg.FailStart, "fail-start", false, "Exit with code 1 at once, as a crashing release would.")
	fs.DurationVar(&cfg.UnhealthyAfter, "unhealthy-after", 0, "Answer 503 on /healthz from this long after start (0: never).")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments %q", fs.Args())
		_, _ = fmt.Fprintln(stderr, "demo:", err)
		return cfg, err
	}
	return cfg, nil
}

// Info is what the server says about where it runs.
type Info struct {
	Greeting          string `json:"greeting,omitempty"`
	Cluster           string `json:"cluster,omitempty"`
	ContainerInstance string `json:"containerInstance,omitempty"`
	Task              string `json:"task,omitempty"`
	TaskDefinition    string `json:"taskDefinition,omitempty"`
	Container         string `json:"container,omitempty"`
	Hostname          string `json:"hostname,omitempty"`
	Healthy           bool   `json:"healthy"`
	Uptime            string `json:"uptime"`
}

// server is one running demo server.
type server struct {
	started time.Time
	failed  atomic.Bool
	exit    chan int
	cfg     Config
	logf    func(format string, args ...any)
}

// Serve serves on ln until ctx ends (exit code 0), --exit-after passes or POST
// /exit asks (their exit code), and returns the exit code.
func Serve(ctx context.Context, ln net.Listener, cfg Config, stdout io.Writer) int {
	s := &server{started: time.Now(), exit: make(chan int, 1), cfg: cfg, logf: accessLog(stdout)}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.logf("demo: serving on %s (task %s, revision %s, instance %s)",
		ln.Addr(), os.Getenv("BERTH_TASK"), os.Getenv("BERTH_TASK_DEFINITION"), os.Getenv("BERTH_CONTAINER_INSTANCE"))

	var exitAfter <-chan time.Time
	if cfg.ExitAfter > 0 {
		exitAfter = time.After(cfg.ExitAfter)
	}
	code := 0
	select {
	case <-ctx.Done():
		s.logf("demo: stopping on signal")
	case <-exitAfter:
		code = cfg.ExitCode
		s.logf("demo: --exit-after %s passed: exiting with code %d", cfg.ExitAfter, code)
	case code = <-s.exit:
		s.logf("demo: POST /exit: exiting with code %d", code)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return code
}

// accessLog writes lines to stdout and, when $LOG_DIR is set and writable, appends
// them to $LOG_DIR/access.log too, so a sidecar sharing the volume can read them.
func accessLog(stdout io.Writer) func(string, ...any) {
	var file io.Writer
	if dir := os.Getenv("LOG_DIR"); dir != "" {
		f, err := os.OpenFile(filepath.Join(dir, "access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			file = f // open for the life of the process
		} else {
			_, _ = fmt.Fprintf(stdout, "demo: not logging to $LOG_DIR: %v\n", err)
		}
	}
	return func(format string, args ...any) {
		line := time.Now().UTC().Format(time.RFC3339) + " " + fmt.Sprintf(format, args...) + "\n"
		_, _ = io.WriteString(stdout, line)
		if file != nil {
			_, _ = io.WriteString(file, line)
		}
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, _ *http.Request) {
		s.failed.Store(true)
		s.logf("demo: POST /fail: health checks fail from now on")
		_, _ = io.WriteString(w, "health checks now fail\n")
	})
	mux.HandleFunc("POST /exit", s.exitNow)
	return mux
}

func (s *server) healthy() bool {
	if s.failed.Load() {
		return false
	}
	return s.cfg.UnhealthyAfter <= 0 || time.Since(s.started) < s.cfg.UnhealthyAfter
}

func (s *server) info() Info {
	host, _ := os.Hostname()
	return Info{
		Greeting:          os.Getenv("GREETING"),
		Cluster:           os.Getenv("BERTH_CLUSTER"),
		ContainerInstance: os.Getenv("BERTH_CONTAINER_INSTANCE"),
		Task:              os.Getenv("BERTH_TASK"),
		TaskDefinition:    os.Getenv("BERTH_TASK_DEFINITION"),
		Container:         os.Getenv("BERTH_CONTAINER_NAME"),
		Hostname:          host,
		Healthy:           s.healthy(),
		Uptime:            time.Since(s.started).Truncate(time.Second).String(),
	}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><title>Berth demo</title></head>
<body style="font-family: sans-serif">
<h1>{{if .Greeting}}{{.Greeting}}{{else}}Hello from Berth{{end}}</h1>
<table>
<tr><td>Task</td><td>{{.Task}}</td></tr>
<tr><td>Task definition</td><td>{{.TaskDefinition}}</td></tr>
<tr><td>Container</td><td>{{.Container}}</td></tr>
<tr><td>Container instance</td><td>{{.ContainerInstance}}</td></tr>
<tr><td>Cluster</td><td>{{.Cluster}}</td></tr>
<tr><td>Healthy</td><td>{{.Healthy}}</td></tr>
<tr><td>Up for</td><td>{{.Uptime}}</td></tr>
</table>
</body></html>
`))

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	s.logf("%s %s %s", r.RemoteAddr, r.Method, r.URL.Path)
	inf := s.info()
	if r.Header.Get("Accept") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(inf)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, inf)
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.healthy() {
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (s *server) exitNow(w http.ResponseWriter, r *http.Request) {
	code := s.cfg.ExitCode
	if v := r.URL.Query().Get("code"); v != "" {
		if _, err := fmt.Sscanf(v, "%d", &code); err != nil || code < 0 || code > 255 {
			http.Error(w, "code: want an integer from 0 to 255", http.StatusBadRequest)
			return
		}
	}
	_, _ = fmt.Fprintf(w, "exiting with code %d\n", code)
	select {
	case s.exit <- code:
	default: // already exiting
	}
}

// healthcheck asks the local server's /healthz; exit code 0 when healthy.
func healthcheck(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(Name+" healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1"+DefaultListen+"/healthz", "URL that answers 200 when healthy.")
	timeout := fs.Duration("timeout", 3*time.Second, "How long to wait for the answer.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "unhealthy:", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = fmt.Fprintln(stderr, "unhealthy:", resp.Status)
		return 1
	}
	return 0
}
