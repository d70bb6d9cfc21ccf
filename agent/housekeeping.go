package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/agent/cleanup"
	"github.com/berthdev/berth/agent/httpapi"
	"github.com/berthdev/berth/agent/logs"
	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/streaming"
	"github.com/berthdev/berth/internal/access"
	"github.com/berthdev/berth/internal/revision"
)

// HousekeepingOptions configure what the agent runs beside its tasks: the HTTP
// endpoint (health, metrics, task list, container logs), log rotation and the
// cleanup of stopped tasks and unused images. Embedded in Options.
type HousekeepingOptions struct {
	// HTTPBindAddress is the HTTP endpoint's host:port; "0" disables it.
	HTTPBindAddress string
	// StreamingAddress is the authenticated exec and logs server's host:port
	// (agent/streaming); empty disables it.
	StreamingAddress string
	// StreamingAdvertiseAddress is the host clients reach that server at (default:
	// the listen host, or the instance's first InternalIP when it listens on all
	// interfaces).
	StreamingAdvertiseAddress string
	// TaskCleanupWait is how long a STOPPED task's containers, volumes and logs are
	// kept (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
	TaskCleanupWait time.Duration
	// ImageCleanupAge is how long an unused image the agent pulled is kept after its
	// pull (ECS_IMAGE_MINIMUM_CLEANUP_AGE); 0 disables image cleanup.
	ImageCleanupAge time.Duration
	// CleanupInterval is the time between cleanup passes.
	CleanupInterval time.Duration
}

// defaultHousekeeping returns the ECS agent's defaults.
func defaultHousekeeping() HousekeepingOptions {
	return HousekeepingOptions{
		HTTPBindAddress:  httpapi.DefaultAddress,
		StreamingAddress: streaming.DefaultAddress,
		TaskCleanupWait:  cleanup.DefaultTaskCleanupWait,
		ImageCleanupAge:  cleanup.DefaultImageCleanupAge,
		CleanupInterval:  cleanup.DefaultInterval,
	}
}

func (o *HousekeepingOptions) bindHousekeepingFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.HTTPBindAddress, "http-bind-address", o.HTTPBindAddress, "host:port of the agent's HTTP endpoint (/healthz, /metrics, /v1/tasks, /v1/logs/<namespace>/<task>/<container>); \"0\" disables it. /v1/tasks and /v1/logs take a Kubernetes bearer token and answer what RBAC lets its identity read; tokens travel in clear: keep it on loopback.")
	fs.StringVar(&o.StreamingAddress, "streaming-address", o.StreamingAddress, "host:port of the agent's HTTPS server for exec (berth exec, the console's terminal) and container logs, authenticated and authorized by the apiserver; empty disables it. Its URL and certificate are published in the ContainerInstance's status.streamingEndpoint.")
	fs.StringVar(&o.StreamingAdvertiseAddress, "streaming-advertise-address", o.StreamingAdvertiseAddress, "Host (IP or name) clients reach the streaming server at, and that its certificate names (default: the --streaming-address host, or the instance's first InternalIP when it listens on all interfaces).")
	fs.DurationVar(&o.TaskCleanupWait, "task-cleanup-wait", o.TaskCleanupWait, "How long the containers, volumes and logs of a stopped task are kept (as ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).")
	fs.DurationVar(&o.ImageCleanupAge, "image-cleanup-age", o.ImageCleanupAge, "Images the agent pulled that no container uses are removed this long after their pull (as ECS_IMAGE_MINIMUM_CLEANUP_AGE); 0 disables image cleanup.")
	fs.DurationVar(&o.CleanupInterval, "cleanup-interval", o.CleanupInterval, "Time between cleanup passes.")
}

func (o *HousekeepingOptions) validateHousekeeping() error {
	if o.HTTPBindAddress != "0" {
		if _, _, err := net.SplitHostPort(o.HTTPBindAddress); err != nil {
			return fmt.Errorf("--http-bind-address must be host:port or 0, got %q", o.HTTPBindAddress)
		}
	}
	if o.StreamingAddress != "" {
		if _, _, err := net.SplitHostPort(o.StreamingAddress); err != nil {
			return fmt.Errorf("--streaming-address must be host:port or empty, got %q", o.StreamingAddress)
		}
	}
	switch {
	case o.TaskCleanupWait < 0:
		return fmt.Errorf("--task-cleanup-wait must not be negative, got %s", o.TaskCleanupWait)
	case o.ImageCleanupAge < 0:
		return fmt.Errorf("--image-cleanup-age must not be negative, got %s", o.ImageCleanupAge)
	case o.CleanupInterval <= 0:
		return fmt.Errorf("--cleanup-interval must be positive, got %s", o.CleanupInterval)
	}
	return nil
}

// httpRetry is how long the agent waits before binding its HTTP endpoint again.
const httpRetry = 10 * time.Second

// startHousekeeping starts the HTTP endpoint, the streaming server, the log rotator
// and the cleanup loop; the returned func stops them and waits. An address in use
// does not stop the agent (its tasks matter more than its endpoint): the error is
// logged and binding is retried.
func (n *Node) startHousekeeping(ctx context.Context) (stop func()) {
	log := ctrl.LoggerFrom(ctx)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	n.startServers(ctx, run)
	rotator := logs.NewRotator(logs.Config{
		Runtime: n.inst.rt, Options: n.logOptions, Root: filepath.Join(n.opts.StateDir, "logs"), Log: log.WithName("logs"),
	})
	run(func() { rotator.Run(ctx) })
	cleaner := cleanup.New(cleanup.Config{
		Tasks: n.inst.eng, Runtime: n.inst.rt, TaskCleanupWait: n.opts.TaskCleanupWait, ImageCleanupAge: n.opts.ImageCleanupAge,
		Interval: n.opts.CleanupInterval, Log: log.WithName("cleanup"),
	})
	run(func() { cleaner.Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// startServers starts, with run, the streaming server and the HTTP endpoint that
// are enabled, sharing one delegated authentication between them.
func (n *Node) startServers(ctx context.Context, run func(func())) {
	log := ctrl.LoggerFrom(ctx)
	var auth *access.Delegated
	if n.streamingLn != nil || n.opts.HTTPBindAddress != "0" {
		auth = n.delegated(ctx)
	}
	switch {
	case n.streamingLn != nil && auth != nil:
		// The client CA is followed for the streaming server's client certificates;
		// the HTTP endpoint is plain HTTP and takes tokens only.
		run(func() { auth.Run(ctx) })
		run(func() { n.serveStreaming(ctx, auth) })
	case n.streamingLn != nil:
		_ = n.streamingLn.Close()
	}
	if n.opts.HTTPBindAddress != "0" {
		cfg := httpapi.Config{
			Address: n.opts.HTTPBindAddress, Runtime: n.inst.rt, Tasks: n.inst.eng.Tasks, StateDir: n.opts.StateDir,
			Collector: metrics.NewCollector(metrics.Config{
				Runtime: n.inst.rt, Cluster: n.opts.Cluster, Lookup: n.agent.taskInfo, Tasks: n.inst.eng.Tasks, Log: log.WithName("metrics"),
			}),
			Auth: auth, Log: log.WithName("http"),
		}
		run(func() { serveHTTP(ctx, cfg) })
	}
}

// serveHTTP serves the endpoint until ctx ends, binding again after a failure.
func serveHTTP(ctx context.Context, cfg httpapi.Config) {
	for {
		srv, err := httpapi.Listen(cfg)
		if err == nil {
			if err = srv.Serve(ctx); err == nil {
				return
			}
		}
		cfg.Log.Error(err, "the agent's HTTP endpoint is down; retrying", "retryIn", httpRetry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(httpRetry):
		}
	}
}

// logOptions are the logConfiguration options of a container, from the task
// definition revision on its labels (revisions are immutable, and overrides cannot
// change a container's log configuration).
func (n *Node) logOptions(ctx context.Context, info runtime.ContainerInfo) (map[string]string, error) {
	ns, _, ok := strings.Cut(info.Labels[runtime.LabelTask], "/")
	if !ok {
		return nil, errors.New("container has no " + runtime.LabelTask + " label")
	}
	ref, err := revision.ParseRef(info.Labels[runtime.LabelRevision])
	if err != nil {
		return nil, fmt.Errorf("label %s: %w", runtime.LabelRevision, err)
	}
	res, err := n.agent.revs.Resolve(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	for _, c := range res.Spec.ContainerDefinitions {
		if c.Name == info.Labels[runtime.LabelContainer] && c.LogConfiguration != nil {
			return c.LogConfiguration.Options, nil
		}
	}
	return nil, nil
}
