package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distribution/reference"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Pull retries: a retryable failure (registry unreachable, rate limited) is retried
// this many times in all, pullBackoff apart times the attempt.
const (
	pullAttempts = 3
	pullBackoff  = 5 * time.Second
)

// retryBackoff bounds the delay before retrying a failed runtime call.
const (
	retryBackoffMin = time.Second
	retryBackoffMax = 30 * time.Second
)

// pull makes c's image available, once per image per task. A failure the registry
// gives (or a malformed reference) fails the task with the registry's message as the
// container's reason. A stop interrupts the pull.
func (w *worker) pull(ctx context.Context, c *container) {
	for _, p := range w.pulls {
		if p.image == c.image {
			c.known, c.digest = containerPulled, p.digest
			return
		}
	}
	pctx, done := w.mb.interruptible(ctx)
	defer done()
	img, err := w.pullWithRetries(pctx, c.image)
	if err != nil {
		if pctx.Err() != nil {
			return // stopping, forgetting or shutting down: next decides
		}
		w.log.Info("pull failed", logContainer, c.name, logImage, c.image, logReason, err.Error())
		c.known, c.fatal, c.reason = containerStopped, true, pullReason(err)
		w.touch(c)
		return
	}
	if img.PullError != nil {
		w.log.Info("pull failed, using the cached image", logImage, c.image, logReason, img.PullError.Error())
	}
	w.pulls = append(w.pulls, pulled{image: c.image, digest: img.Digest})
	c.known, c.digest = containerPulled, img.Digest
}

func (w *worker) pullWithRetries(ctx context.Context, ref string) (runtime.Image, error) {
	auth := w.authFor(ref)
	for attempt := 1; ; attempt++ {
		img, err := w.e.rt.Pull(ctx, ref, w.e.cfg.PullPolicy, auth)
		var ie *runtime.ImageError
		if err == nil || attempt >= pullAttempts || !errors.As(err, &ie) || !ie.Retryable() {
			return img, err
		}
		w.log.V(1).Info("pull failed, retrying", logImage, ref, logAttempt, attempt, logReason, ie.Reason)
		t := w.e.clock.NewTimer(time.Duration(attempt) * pullBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return runtime.Image{}, ctx.Err()
		case <-t.C():
		}
	}
}

// dockerHubKeys are the other names Docker Hub's credentials go by: "" (an image
// reference without a registry), and the hosts docker config files use.
var dockerHubKeys = []string{"", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"}

// authFor is the credential of ref's registry, if the agent gave one.
func (w *worker) authFor(ref string) *runtime.Auth {
	if len(w.auth) == 0 {
		return nil
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil // the pull reports the malformed reference
	}
	domain := reference.Domain(named)
	if a, ok := w.auth[domain]; ok {
		return a
	}
	if domain == "docker.io" {
		for _, k := range dockerHubKeys {
			if a, ok := w.auth[k]; ok {
				return a
			}
		}
	}
	return nil
}

// pullReason is ECS's container reason for a failed pull.
func pullReason(err error) string {
	var ie *runtime.ImageError
	if errors.As(err, &ie) {
		return "CannotPullContainerError: " + ie.Reason
	}
	return "CannotPullContainerError: " + err.Error()
}

// create creates c in the runtime with its volumes and log directory. A container
// that exists already (the engine restarted during a create) is taken as it is.
func (w *worker) create(ctx context.Context, c *container) {
	def := findDef(w.in.spec, c.name)
	spec, err := containerSpec(w.in, def)
	if err == nil {
		err = w.makeDirs(spec)
	}
	if err == nil {
		err = w.writeEtcFiles(def)
	}
	var info runtime.ContainerInfo
	if err == nil {
		w.log.V(1).Info("creating container", logContainer, c.name, logSpec, runtime.Redacted(spec))
		info, err = w.e.rt.Create(ctx, spec)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.log.Info("create failed", logContainer, c.name, logReason, err.Error())
		c.known, c.fatal, c.reason = containerStopped, true, "CannotCreateContainerError: "+err.Error()
		w.touch(c)
		return
	}
	c.known = containerPulled
	w.adopt(ctx, c, info)
	w.touch(c)
}

// makeDirs creates the container's log directory (the task's volumes are made
// before, by volumesUp).
func (w *worker) makeDirs(spec runtime.ContainerSpec) error {
	if spec.LogPath != "" {
		d := logsDir(w.e.stateDir, w.in.task, w.uid)
		if err := w.e.cfg.Dirs.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	return nil
}

// makeShared creates a directory the task's containers share, writable by all with
// the sticky bit, as /tmp.
func (w *worker) makeShared(d string) error {
	if err := w.e.cfg.Dirs.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d, err)
	}
	// Chmod, not MkdirAll's mode: the umask does not apply to it.
	if err := w.e.cfg.Dirs.Chmod(d, os.ModeSticky|0o777); err != nil {
		return fmt.Errorf("making %s writable by the task's users: %w", d, err)
	}
	return nil
}

// writeEtcFiles writes the container's /etc/hosts and /etc/resolv.conf on the host
// (etcFiles), which its spec mounts.
func (w *worker) writeEtcFiles(def *ecsv1alpha1.ContainerDefinition) error {
	for _, f := range etcFiles(w.in, def) {
		if err := w.e.cfg.Dirs.MkdirAll(filepath.Dir(f.hostPath), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(f.hostPath), err)
		}
		if err := w.e.cfg.Dirs.WriteFile(f.hostPath, f.content, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.hostPath, err)
		}
	}
	return nil
}

// start starts c (again, for a restart) and its health check.
func (w *worker) start(ctx context.Context, c *container, restart bool) {
	pid, err := w.e.rt.Start(ctx, c.id)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.log.Info("start failed", logContainer, c.name, logReason, err.Error())
		c.known, c.exit, c.reason = containerStopped, nil, "CannotStartContainerError: "+err.Error()
		w.touch(c)
		return
	}
	c.known, c.started, c.startedAt, c.pid = containerRunning, true, w.e.clock.Now(), pid
	c.exit, c.reason, c.oomSeen = nil, "", false
	if c.check != nil {
		c.health = ecsv1alpha1.HealthUnknown
	}
	if restart {
		c.restarts++
		w.log.Info("restarted container", logContainer, c.name, logRestarts, c.restarts)
	} else {
		w.log.V(1).Info("started container", logContainer, c.name)
	}
	w.startHealthCheck(ctx, c)
	w.touch(c)
}

// stopContainer stops c: SIGTERM, then SIGKILL after its stopTimeout.
func (w *worker) stopContainer(ctx context.Context, c *container) {
	c.stopping = true
	id, timeout, rt, mb := c.id, c.stopTimeout, w.e.rt, w.mb
	w.e.wg.Add(1) // the worker's own count is held: Add cannot race Wait
	go func() {
		defer w.e.wg.Done()
		exit, err := rt.Stop(ctx, id, timeout)
		mb.putEvent(event{kind: eventStopped, id: id, exit: &exit, err: err})
	}()
}

// stopReturned applies the result of a stop begun by stopContainer. An exit event
// may have told already; a failed stop is tried again after a backoff.
func (w *worker) stopReturned(ctx context.Context, c *container, ev *event) {
	c.stopping = false
	if c.known != containerRunning {
		return
	}
	switch err := ev.err; {
	case ctx.Err() != nil:
		return
	case err == nil:
		w.failures = 0
		w.exited(c, ev.exit)
	case errors.Is(err, runtime.ErrNotStarted):
		w.exited(c, nil)
	case errors.Is(err, runtime.ErrNotFound):
		w.lost(c)
	default:
		w.log.Error(err, "stopping container failed, will retry", logContainer, c.name)
		w.backOff()
	}
}

// backOff delays the next step after a failed runtime call, doubling each time.
func (w *worker) backOff() {
	d := retryBackoffMin << min(w.failures, 5)
	w.failures++
	w.retryAt = w.e.clock.Now().Add(min(d, retryBackoffMax))
}

// startHealthCheck runs c's health check while its current process runs.
func (w *worker) startHealthCheck(ctx context.Context, c *container) {
	if c.check == nil {
		return
	}
	w.stopHealthCheck(c)
	hctx, cancel := context.WithCancel(ctx)
	if w.healthCancel == nil {
		w.healthCancel = map[string]context.CancelFunc{}
	}
	w.healthCancel[c.name] = cancel
	started := c.startedAt
	if started.IsZero() {
		started = w.e.clock.Now()
	}
	id, gen, hc, initial := c.id, c.generation+1, c.check, c.health
	c.generation = gen
	mb, rt, clk := w.mb, w.e.rt, w.e.clock
	w.healthWG.Add(1)
	go func() {
		defer w.healthWG.Done()
		runHealthCheck(hctx, rt, clk, id, hc, started, initial, func(s ecsv1alpha1.HealthStatus) {
			mb.putEvent(event{kind: eventHealth, id: id, health: s, generation: gen})
		})
	}()
}

func (w *worker) stopHealthCheck(c *container) {
	if cancel, ok := w.healthCancel[c.name]; ok {
		cancel()
		delete(w.healthCancel, c.name)
	}
}

// stopHealthChecks ends every health check of the task and waits for them.
func (w *worker) stopHealthChecks() {
	for name, cancel := range w.healthCancel {
		cancel()
		delete(w.healthCancel, name)
	}
	w.healthWG.Wait()
}
