// Package fake is an in-memory runtime.Runtime for tests of the task engine and for
// `berth hollow`. It keeps containers with their states, processes with pids and exit
// statuses, an event stream and a log of every call, and lets a test make processes
// exit (Exit, OOM), script health-check commands (ScriptExec), make pulls, creates and
// starts fail, and make a container ignore SIGTERM so that Stop has to wait for its
// timeout and kill. SetBehavior gives every container of an image a behaviour of its
// own (exit or OOM after a while, SIGTERM handling, exec results, image user), which
// is how a hollow agent runs many containers without a test driving each one.
//
// Its semantics are checked against containerd's by the contract suite in
// agent/runtime/runtimetest, which runs against both: image references are
// normalized as containerd does (app:1 is docker.io/library/app:1), PullOnce trusts
// only images the runtime pulled itself, and so on.
//
// Time comes from a k8s.io/utils clock, so a test with a fake clock decides when stop
// and exec timeouts, pull latency and behaviours' exits pass.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/distribution/reference"
	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
)

// Exit codes of processes killed by a signal: 128 + the signal's number.
const (
	ExitSIGTERM = 128 + 15
	ExitSIGKILL = 128 + 9
)

// Signal names recorded by Signals.
const (
	SIGTERM = "SIGTERM"
	SIGKILL = "SIGKILL"
)

// Call is one call of a Runtime method, in the order they were made.
type Call struct {
	// Method is the method's name: Pull, Create, Start, Stop, Wait, Exec, Delete, List,
	// Stats, Images, RemoveImage, ImageUser.
	Method string
	// ID is the container ID, or the image reference (as given) for Pull, RemoveImage
	// and ImageUser.
	ID string
	// Auth is the credential given to Pull.
	Auth *runtime.Auth
	// Policy is the pull policy given to Pull.
	Policy runtime.PullPolicy
	// Timeout is the timeout given to Stop or Exec.
	Timeout time.Duration
	// Cmd is the command given to Exec.
	Cmd []string
}

// ExecResult is the scripted outcome of one Exec.
type ExecResult struct {
	Code   int
	Output string
	// Err is returned as Exec's error.
	Err error
	// Hang makes the command outlive its timeout: Exec waits for it and fails with
	// runtime.ErrExecTimeout.
	Hang bool
}

// Runtime is an in-memory runtime.Runtime. The zero value is not usable: call New.
type Runtime struct {
	clock       clock.Clock
	lean        bool
	pullLatency time.Duration
	// usage is what containers without SetStats use (WithUsage).
	usage runtime.ContainerStats
	// cpuShare is the part of a core they use (WithUsage).
	cpuShare float64

	mu         sync.Mutex
	images     map[string]string    // local refs (normalized) -> digest
	pulledAt   map[string]time.Time // refs the runtime pulled itself
	usedAt     map[string]time.Time
	stats      map[string]runtime.ContainerStats
	pullErrors map[string]error
	pullGates  map[string]chan struct{}
	createErr  map[string]error
	startErr   map[string]error
	stopErr    map[string]error
	containers map[string]*container
	execs      map[string][]ExecResult
	behaviors  []imageBehavior // SetBehavior's, oldest first
	subs       map[*subscriber]struct{}
	calls      []Call
	nextPid    uint32
}

type container struct {
	spec runtime.ContainerSpec
	info runtime.ContainerInfo
	proc *process
	// ignoreTerm and termExit are the per-container settings (SetIgnoreSIGTERM,
	// SetTermExitCode); nil defers to the image's Behavior.
	ignoreTerm *bool
	termExit   *int
	signals    []string
}

// process is one run of a container: Start makes a new one.
type process struct {
	pid     uint32
	started time.Time
	done    chan struct{} // closed at exit
	exit    runtime.ExitStatus
	// timers end the process by itself (Behavior.ExitAfter, OOMAfter); stopped at
	// exit so nothing outlives it.
	timers []stopper
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithClock makes the runtime use clk for timestamps and timeouts.
func WithClock(clk clock.Clock) Option { return func(r *Runtime) { r.clock = clk } }

// Lean keeps only what running containers need, for long runs with many of them
// (berth hollow): no call log (Calls, CallIDs and Count return nothing), which would
// grow without bound, and of each container's spec only its ID and image (Spec
// returns those), which tens of thousands of containers would otherwise hold.
func Lean() Option { return func(r *Runtime) { r.lean = true } }

// WithPullLatency makes every Pull take d on the runtime's clock before it returns
// (after HoldPulls lets it go); a pull whose context ends meanwhile fails as a held
// one does.
func WithPullLatency(d time.Duration) Option { return func(r *Runtime) { r.pullLatency = d } }

// WithUsage makes the containers SetStats did not set use cpuShare of a core from
// their process's start, and memoryBytes of memory, so that a simulated fleet
// (berth hollow) reports some utilization.
func WithUsage(cpuShare float64, memoryBytes uint64) Option {
	return func(r *Runtime) { r.cpuShare, r.usage.MemoryUsageBytes = cpuShare, memoryBytes }
}

// New returns an empty runtime on the real clock unless WithClock says otherwise.
func New(opts ...Option) *Runtime {
	r := &Runtime{
		clock:      clock.RealClock{},
		images:     map[string]string{},
		pulledAt:   map[string]time.Time{},
		usedAt:     map[string]time.Time{},
		stats:      map[string]runtime.ContainerStats{},
		pullErrors: map[string]error{},
		pullGates:  map[string]chan struct{}{},
		createErr:  map[string]error{},
		startErr:   map[string]error{},
		stopErr:    map[string]error{},
		containers: map[string]*container{},
		execs:      map[string][]ExecResult{},
		subs:       map[*subscriber]struct{}{},
		nextPid:    1000,
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ runtime.Runtime = (*Runtime)(nil)

// Digest is the digest the fake gives to an image reference (the same for every
// spelling of it: app:1 and docker.io/library/app:1).
func Digest(ref string) string {
	sum := sha256.Sum256([]byte(normalize(ref)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// normalize returns the full form of ref as containerd names images
// (app:1 -> docker.io/library/app:1), or ref itself if it does not parse.
func normalize(ref string) string {
	if named, err := reference.ParseDockerRef(ref); err == nil {
		return named.String()
	}
	return ref
}

func (r *Runtime) record(c Call) {
	if r.lean {
		return
	}
	r.calls = append(r.calls, c)
}

// Pull makes ref available as containerd does: Image.Ref is the normalized
// reference; refs that do not parse fail with *runtime.ReferenceError; refs given to
// FailPull fail with the error given there (the registry's answer), which the
// default policy recovers from with a local copy. PullOnce uses only a copy the
// runtime pulled itself, PullPreferCached any local copy (AddImage's too).
func (r *Runtime) Pull(ctx context.Context, ref string, policy runtime.PullPolicy, auth *runtime.Auth) (runtime.Image, error) {
	r.mu.Lock()
	r.record(Call{Method: "Pull", ID: ref, Auth: auth, Policy: policy})
	gate := r.pullGates[normalize(ref)]
	r.mu.Unlock()
	if err := r.pullWait(ctx, ref, gate); err != nil {
		return runtime.Image{}, err
	}
	if !policy.Valid() {
		return runtime.Image{}, fmt.Errorf("unknown pull policy %q", policy)
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return runtime.Image{}, &runtime.ReferenceError{Ref: ref, Err: err}
	}
	key := named.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return runtime.Image{}, err
	}
	digest, local := r.images[key]
	_, pulled := r.pulledAt[key]
	if local && (policy == runtime.PullPreferCached || policy == runtime.PullOnce && pulled) {
		r.usedAt[key] = r.clock.Now()
		return runtime.Image{Ref: key, Digest: digest, Cached: true}, nil
	}
	if err := r.pullErrors[key]; err != nil {
		if local && (policy == "" || policy == runtime.PullDefault) {
			r.usedAt[key] = r.clock.Now()
			return runtime.Image{Ref: key, Digest: digest, Cached: true, PullError: err}, nil
		}
		return runtime.Image{}, err
	}
	if r.images[key] == "" {
		r.images[key] = Digest(key) // one string per image, whatever the number of pulls
		if c, ok := named.(reference.Canonical); ok {
			r.images[key] = c.Digest().String() // pulled by digest: that one, as a registry serves it
		}
	}
	r.pulledAt[key], r.usedAt[key] = r.clock.Now(), r.clock.Now()
	return runtime.Image{Ref: key, Digest: r.images[key]}, nil
}

// pullWait holds a pull until HoldPulls' gate opens, then for the pull latency.
// Either ends early, failed as containerd fails an interrupted pull, when ctx ends.
func (r *Runtime) pullWait(ctx context.Context, ref string, gate <-chan struct{}) error {
	interrupted := func() error {
		return &runtime.ImageError{Ref: ref, Kind: runtime.ImageUnavailable, Reason: "pull interrupted: " + ctx.Err().Error(), Err: ctx.Err()}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return interrupted()
		}
	}
	if r.pullLatency <= 0 {
		return nil
	}
	timer := r.clock.NewTimer(r.pullLatency)
	defer timer.Stop()
	select {
	case <-timer.C():
		return nil
	case <-ctx.Done():
		return interrupted()
	}
}

// Create creates a container from a pulled image; see runtime.Runtime.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (runtime.ContainerInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Create", ID: spec.ID})
	if err := ctx.Err(); err != nil {
		return runtime.ContainerInfo{}, err
	}
	if err := spec.Validate(); err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", spec.ID, err)
	}
	image, err := imageOf(spec)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if spec.LogPath != "" {
		labels[runtime.LabelLogPath] = spec.LogPath
	}
	if c, ok := r.containers[spec.ID]; ok {
		if c.info.Image != image {
			return runtime.ContainerInfo{}, fmt.Errorf("container %q exists with image %q: %w", spec.ID, c.info.Image, runtime.ErrAlreadyExists)
		}
		for k, v := range labels {
			if got, ok := c.info.Labels[k]; !ok || got != v {
				return runtime.ContainerInfo{}, fmt.Errorf("container %q exists with label %s=%q: %w", spec.ID, k, got, runtime.ErrAlreadyExists)
			}
		}
		return c.snapshot(), nil
	}
	if err := r.createErr[spec.ID]; err != nil {
		return runtime.ContainerInfo{}, err
	}
	if _, ok := r.images[image]; !ok && spec.RootFS == "" {
		return runtime.ContainerInfo{}, fmt.Errorf("image %q is not pulled: %w", image, runtime.ErrNotFound)
	}
	if r.lean {
		spec = runtime.ContainerSpec{ID: spec.ID, Image: spec.Image, RootFS: spec.RootFS}
	}
	c := &container{
		spec: spec,
		info: runtime.ContainerInfo{
			ID: spec.ID, Image: image, Labels: labels, Status: runtime.StatusCreated,
			CreatedAt: r.clock.Now(), LogPath: spec.LogPath,
		},
	}
	r.containers[spec.ID] = c
	return c.snapshot(), nil
}

// imageOf is the normalized image of spec; a container from a root filesystem (a
// pause container) has none.
func imageOf(spec runtime.ContainerSpec) (string, error) {
	if spec.RootFS != "" {
		return "", nil
	}
	named, err := reference.ParseDockerRef(spec.Image)
	if err != nil {
		return "", &runtime.ReferenceError{Ref: spec.Image, Err: err}
	}
	return named.String(), nil
}

func (c *container) snapshot() runtime.ContainerInfo {
	info := c.info
	info.Labels = maps.Clone(c.info.Labels)
	if c.info.Exit != nil {
		e := *c.info.Exit
		info.Exit = &e
	}
	return info
}

// Start starts a created or stopped container with a new pid, or returns the pid of
// a running one.
func (r *Runtime) Start(ctx context.Context, id string) (uint32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Start", ID: id})
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c, ok := r.containers[id]
	if !ok {
		return 0, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if c.info.Status == runtime.StatusRunning {
		return c.info.Pid, nil
	}
	if err := r.startErr[id]; err != nil {
		return 0, err
	}
	r.nextPid++
	c.proc = &process{pid: r.nextPid, started: r.clock.Now(), done: make(chan struct{})}
	c.info.Status, c.info.Pid, c.info.Exit = runtime.StatusRunning, r.nextPid, nil
	c.signals = nil
	r.scheduleLocked(c)
	return c.proc.pid, nil
}

// Stop sends SIGTERM; a container that ignores it (SetIgnoreSIGTERM, or its image's
// Behavior) is killed with SIGKILL once timeout has passed on the runtime's clock.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) (runtime.ExitStatus, error) {
	r.mu.Lock()
	r.record(Call{Method: "Stop", ID: id, Timeout: timeout})
	c, ok := r.containers[id]
	switch {
	case r.stopErr[id] != nil:
		defer r.mu.Unlock()
		return runtime.ExitStatus{}, r.stopErr[id]
	case !ok:
		r.mu.Unlock()
		return runtime.ExitStatus{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	case c.info.Status == runtime.StatusStopped:
		defer r.mu.Unlock()
		return *c.info.Exit, nil
	case c.info.Status != runtime.StatusRunning:
		r.mu.Unlock()
		return runtime.ExitStatus{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotStarted)
	}
	c.signals = append(c.signals, SIGTERM)
	proc := c.proc
	if ignore, code := r.termLocked(c); !ignore {
		r.exitLocked(c, code, false)
		r.mu.Unlock()
		return proc.exit, nil
	}
	r.mu.Unlock()

	timer := r.clock.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-proc.done:
		return proc.exit, nil
	case <-timer.C():
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.proc == proc && c.info.Status == runtime.StatusRunning {
		c.signals = append(c.signals, SIGKILL)
		r.exitLocked(c, ExitSIGKILL, false)
	}
	<-proc.done
	return proc.exit, nil
}

// Wait returns a channel that receives the exit of the container's current process.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan runtime.ExitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Wait", ID: id})
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if c.proc == nil {
		return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotStarted)
	}
	proc := c.proc
	out := make(chan runtime.ExitStatus, 1)
	go func() {
		defer close(out)
		select {
		case <-proc.done:
			out <- proc.exit
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// Exec runs the next scripted result for the container (ScriptExec; the last one
// repeats), else its image's Behavior.Exec, else exits 0 with no output.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
	if len(cmd) == 0 {
		return -1, nil, errors.New("exec: empty command")
	}
	r.mu.Lock()
	r.record(Call{Method: "Exec", ID: id, Cmd: slices.Clone(cmd), Timeout: timeout})
	c, ok := r.containers[id]
	if !ok {
		r.mu.Unlock()
		return -1, nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if c.info.Status != runtime.StatusRunning {
		r.mu.Unlock()
		return -1, nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotRunning)
	}
	res := ExecResult{}
	if script := r.execs[id]; len(script) > 0 {
		res = script[0]
		if len(script) > 1 {
			r.execs[id] = script[1:]
		}
	} else if b, ok := r.behaviorLocked(c.spec.Image, c.info.Image); ok && b.Exec != nil {
		res = *b.Exec
	}
	r.mu.Unlock()

	if res.Hang {
		timer := r.clock.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-timer.C():
			return -1, nil, fmt.Errorf("command %q in container %q: %w", cmd[0], id, runtime.ErrExecTimeout)
		case <-ctx.Done():
			return -1, nil, ctx.Err()
		}
	}
	return res.Code, []byte(res.Output), res.Err
}

// Delete removes the container, killing its process if it runs.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Delete", ID: id})
	if err := ctx.Err(); err != nil {
		return err
	}
	c, ok := r.containers[id]
	if !ok {
		return nil
	}
	if c.info.Status == runtime.StatusRunning {
		c.signals = append(c.signals, SIGKILL)
		r.exitLocked(c, ExitSIGKILL, false)
	}
	delete(r.containers, id)
	return nil
}

// List returns the containers that carry all labels, sorted by ID.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "List"})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []runtime.ContainerInfo
	for _, c := range r.containers {
		match := true
		for k, v := range labels {
			if c.info.Labels[k] != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, c.snapshot())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Version is the fake's version.
func (r *Runtime) Version(context.Context) (string, error) { return "fake", nil }

// exitLocked ends the container's current process.
func (r *Runtime) exitLocked(c *container, code int, oom bool) {
	now := r.clock.Now()
	exit := runtime.ExitStatus{Code: code, ExitedAt: now, OOMKilled: oom}
	for _, t := range c.proc.timers {
		t.Stop()
	}
	c.proc.timers = nil
	c.proc.exit = exit
	close(c.proc.done)
	pid := c.proc.pid
	c.info.Status, c.info.Pid = runtime.StatusStopped, 0
	e := exit
	c.info.Exit = &e
	e2 := exit
	r.publishLocked(runtime.Event{Type: runtime.EventExit, ContainerID: c.info.ID, Pid: pid, Exit: &e2, Time: now})
}
