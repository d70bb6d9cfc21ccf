package containerd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/go-logr/logr"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthdev/berth/agent/logdriver"
	"github.com/berthdev/berth/agent/runtime"
)

// Start starts the container's task; see runtime.Runtime.
func (r *Runtime) Start(ctx context.Context, id string) (uint32, error) {
	ctx = r.withNamespace(ctx)
	defer r.locks.lock(id)()
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return 0, notFound(id, err)
		}
		return 0, fmt.Errorf("looking up container %q: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		st, err := task.Status(ctx)
		if err != nil {
			return 0, fmt.Errorf("status of container %q: %w", id, err)
		}
		switch st.Status {
		case ctrd.Running, ctrd.Paused, ctrd.Pausing:
			return task.Pid(), nil
		case ctrd.Created:
			// Created by a Start that did not finish: start it.
			return r.startTask(ctx, id, task)
		default:
			// Stopped (or unknown): a start is a restart with a new task.
			if err := deleteTask(ctx, task); err != nil {
				return 0, fmt.Errorf("deleting the previous task of container %q: %w", id, err)
			}
		}
	case !errdefs.IsNotFound(err):
		return 0, fmt.Errorf("loading task of container %q: %w", id, err)
	}

	ioCreator, err := r.ioCreator(ctx, ctr)
	if err != nil {
		return 0, fmt.Errorf("container %q: %w", id, err)
	}
	// Runs to its end, as a delete does (deleteTask): containerd starts the task's
	// shim first, and a create cut short by its caller may leave that shim behind. A
	// task created while the agent stops is adopted by the next agent.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), taskDeleteTimeout)
	defer cancel()
	task, err = ctr.NewTask(cctx, ioCreator)
	if err != nil {
		return 0, fmt.Errorf("creating task of container %q: %w", id, err)
	}
	return r.startTask(ctx, id, task)
}

// ioCreator is where the container's output goes. Without a terminal the shim
// appends stdout and stderr to the log file itself, so output is kept while the
// agent is down and survives its restarts. The shim copies a terminal's output only
// to FIFOs or a logging binary, not to a file: `berth log-driver`, run by the shim
// as its child, appends it to the same file, so it too outlives the agent.
func (r *Runtime) ioCreator(ctx context.Context, ctr ctrd.Container) (cio.Creator, error) {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	logPath := labels[runtime.LabelLogPath]
	if spec.Process == nil || !spec.Process.Terminal {
		if stdin := labels[labelStdin]; stdin != "" {
			return stdinIO(stdin, logPath), nil
		}
		if logPath == "" {
			return cio.NullIO, nil
		}
		return cio.LogFile(logPath), nil
	}
	if r.helper == "" {
		return nil, errNoHelper
	}
	// An empty log path is logDriver none: the driver discards the output.
	uri, err := cio.LogURIGenerator("binary", r.helper, map[string]string{logdriver.Command: logPath})
	if err != nil {
		return nil, fmt.Errorf("log driver: %w", err)
	}
	return cio.TerminalLogURI(uri), nil
}

// labelStdin is the named pipe a container's stdin reads (ContainerSpec.StdinPath).
const labelStdin = runtime.LabelPrefix + "stdin"

// stdinIO has the shim copy the named pipe at stdin to the process's standard input
// and append its output to logPath (to /dev/null with logDriver none), as
// cio.LogFile does with a stdin added.
func stdinIO(stdin, logPath string) cio.Creator {
	if logPath == "" {
		logPath = os.DevNull
	}
	out := (&url.URL{Scheme: "file", Path: logPath}).String()
	return func(string) (cio.IO, error) {
		return shimIO{cio.Config{Stdin: stdin, Stdout: out, Stderr: out}}, nil
	}
}

// shimIO is stdio that the shim handles alone: nothing to copy on this side.
type shimIO struct{ config cio.Config }

func (s shimIO) Config() cio.Config { return s.config }
func (shimIO) Cancel()              {}
func (shimIO) Wait()                {}
func (shimIO) Close() error         { return nil }

// taskDeleteTimeout bounds a task's create and delete.
const taskDeleteTimeout = 30 * time.Second

// deleteTask deletes task (killing its process) and runs to the end whatever ctx
// says: containerd shuts a task's shim down only once its delete returns, and a
// delete cut short by its caller (an agent stopping while it cleans up) leaves the
// shim running with no task to show for it, for good ("the shim might be leaked",
// containerd logs). A task already gone is no error.
func deleteTask(ctx context.Context, task ctrd.Task) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), taskDeleteTimeout)
	defer cancel()
	if _, err := task.Delete(ctx, ctrd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

func (r *Runtime) startTask(ctx context.Context, id string, task ctrd.Task) (uint32, error) {
	if err := task.Start(ctx); err != nil {
		if derr := deleteTask(ctx, task); derr != nil {
			logr.FromContextOrDiscard(ctx).Error(derr, "deleting a task that failed to start", logContainer, id)
		}
		return 0, fmt.Errorf("starting container %q: %w", id, err)
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("started container", logContainer, id, logPid, task.Pid())
	return task.Pid(), nil
}

// Stop stops the container; see runtime.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) (runtime.ExitStatus, error) {
	ctx = r.withNamespace(ctx)
	defer r.locks.lock(id)()
	ctr, task, err := r.loadTask(ctx, id)
	if err != nil {
		return runtime.ExitStatus{}, err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return runtime.ExitStatus{}, fmt.Errorf("status of container %q: %w", id, err)
	}
	switch st.Status {
	case ctrd.Stopped:
		return r.exitStatus(ctx, task, st.ExitStatus, st.ExitTime), nil
	case ctrd.Created:
		// Never started: its process is runc's, waiting to exec the entrypoint.
		if err := deleteTask(ctx, task); err != nil {
			return runtime.ExitStatus{}, fmt.Errorf("deleting unstarted task of container %q: %w", id, err)
		}
		return runtime.ExitStatus{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotStarted)
	}
	return r.stopTask(ctx, id, ctr, task, timeout)
}

// stopTask stops a running task: it signals the container's stop signal and, if the
// task outlives timeout, kills all its processes. It returns the exit status.
func (r *Runtime) stopTask(ctx context.Context, id string, ctr ctrd.Container, task ctrd.Task, timeout time.Duration) (runtime.ExitStatus, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues(logContainer, id)
	// Wait before signalling, so the exit cannot be missed.
	statusC, err := task.Wait(ctx)
	if err != nil {
		return runtime.ExitStatus{}, fmt.Errorf("waiting for container %q: %w", id, err)
	}
	sig, err := ctrd.GetStopSignal(ctx, ctr, syscall.SIGTERM)
	if err != nil {
		sig = syscall.SIGTERM
	}
	log.V(1).Info("stopping container", logSignal, sig.String(), "timeout", timeout.String())
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return runtime.ExitStatus{}, fmt.Errorf("signalling container %q: %w", id, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case es := <-statusC:
		return r.exitStatus(ctx, task, es.ExitCode(), es.ExitTime()), nil
	case <-timer.C:
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
	log.V(1).Info("container outlived its stop timeout, killing it", logSignal, syscall.SIGKILL.String())
	if err := task.Kill(ctx, syscall.SIGKILL, ctrd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return runtime.ExitStatus{}, fmt.Errorf("killing container %q: %w", id, err)
	}
	select {
	case es := <-statusC:
		return r.exitStatus(ctx, task, es.ExitCode(), es.ExitTime()), nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
}

// loadTask returns the container and its task, or ErrNotFound / ErrNotStarted.
func (r *Runtime) loadTask(ctx context.Context, id string) (ctrd.Container, ctrd.Task, error) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, notFound(id, err)
		}
		return nil, nil, fmt.Errorf("looking up container %q: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotStarted)
		}
		return nil, nil, fmt.Errorf("loading task of container %q: %w", id, err)
	}
	return ctr, task, nil
}

func (r *Runtime) exitStatus(ctx context.Context, task ctrd.Task, code uint32, at time.Time) runtime.ExitStatus {
	return runtime.ExitStatus{Code: int(code), ExitedAt: at, OOMKilled: r.oomKilled(ctx, task)}
}

// Wait returns the exit status of the container's current task; see runtime.Runtime.
// The channel is closed without a value if ctx ends first.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan runtime.ExitStatus, error) {
	ctx = r.withNamespace(ctx)
	_, task, err := r.loadTask(ctx, id)
	if err != nil {
		return nil, err
	}
	statusC, err := task.Wait(ctx)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %q: %w", id, runtime.ErrNotStarted)
		}
		return nil, fmt.Errorf("waiting for container %q: %w", id, err)
	}
	out := make(chan runtime.ExitStatus, 1)
	go func() {
		defer close(out)
		es := <-statusC
		if es.Error() != nil || ctx.Err() != nil {
			return
		}
		out <- r.exitStatus(context.WithoutCancel(ctx), task, es.ExitCode(), es.ExitTime())
	}()
	return out, nil
}

// Exec runs cmd in the container; see runtime.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (int, []byte, error) {
	if len(cmd) == 0 {
		return -1, nil, errors.New("exec: empty command")
	}
	ctx = r.withNamespace(ctx)
	task, pspec, err := r.execTarget(ctx, id, cmd)
	if err != nil {
		return -1, nil, err
	}
	execID, err := newExecID()
	if err != nil {
		return -1, nil, err
	}
	out := &limitedBuffer{max: runtime.MaxExecOutput}
	process, statusC, remove, err := startExec(ctx, task, id, execID, pspec, cio.NewCreator(cio.WithStreams(nil, out, out), cio.WithFIFODir(r.fifoDir)))
	if err != nil {
		return -1, nil, err
	}
	defer remove()
	es, timedOut := waitExec(ctx, process, statusC, timeout)
	awaitExecOutput(process)
	if timedOut {
		if ctx.Err() != nil {
			return -1, out.Bytes(), ctx.Err()
		}
		return -1, out.Bytes(), fmt.Errorf("command %q in container %q did not finish within %s: %w", cmd[0], id, timeout, runtime.ErrExecTimeout)
	}
	code, _, err := es.Result()
	if err != nil {
		return -1, out.Bytes(), fmt.Errorf("exec in container %q: %w", id, err)
	}
	return int(code), out.Bytes(), nil
}

// execTarget returns the task of a running container and the process spec to exec
// cmd with: the container's process, without a terminal.
func (r *Runtime) execTarget(ctx context.Context, id string, cmd []string) (ctrd.Task, *specs.Process, error) {
	ctr, task, err := r.loadTask(ctx, id)
	if errors.Is(err, runtime.ErrNotStarted) {
		// For Exec, a container that never started is one that is not running.
		return nil, nil, fmt.Errorf("container %q has not started: %w", id, runtime.ErrNotRunning)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("status of container %q: %w", id, err)
	}
	if st.Status != ctrd.Running {
		return nil, nil, fmt.Errorf("container %q is %s: %w", id, st.Status, runtime.ErrNotRunning)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("spec of container %q: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	return task, &pspec, nil
}

// startExec creates and starts exec process execID of task (container id) and
// returns it, its exit and remove, which deletes it (killing it first) with its
// FIFOs: call remove once the output is copied, whatever happened.
//
// The create, the start and remove run to their end whatever ctx says (bounded by
// taskDeleteTimeout), and the exit is waited for outside ctx: a start cut short by
// its caller (an exec client that went away, under load, before the start's reply)
// can leave the command running in the container while the exec process holds no
// pid to kill, so it can neither be killed nor deleted, for good. The caller acts
// on ctx's end itself (waitExec kills the process), and the exit then reports the
// process's real end, not the caller's cancellation.
func startExec(ctx context.Context, task ctrd.Task, id, execID string, pspec *specs.Process, ioc cio.Creator) (
	ctrd.Process, <-chan ctrd.ExitStatus, func(), error) {
	detached := context.WithoutCancel(ctx)
	rctx, cancel := context.WithTimeout(detached, taskDeleteTimeout)
	defer cancel()
	process, err := task.Exec(rctx, execID, pspec, ioc)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	remove := func() {
		dctx, cancel := context.WithTimeout(detached, taskDeleteTimeout)
		defer cancel()
		if _, err := process.Delete(dctx, ctrd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			logr.FromContextOrDiscard(ctx).Error(err, "deleting exec process", logContainer, id)
		}
	}
	// Waited for outside ctx: the wait ends with the process, or with remove.
	statusC, err := process.Wait(detached)
	if err != nil {
		remove()
		return nil, nil, nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	if err := process.Start(rctx); err != nil {
		remove()
		return nil, nil, nil, fmt.Errorf("exec in container %q: %w", id, err)
	}
	return process, statusC, remove, nil
}

// waitExec waits up to timeout for the exec process to exit. When the timeout passes
// or ctx ends first, it kills the process and waits for its exit a little longer;
// timedOut reports that, and es is then the zero value if the exit never came.
func waitExec(ctx context.Context, process ctrd.Process, statusC <-chan ctrd.ExitStatus, timeout time.Duration) (es ctrd.ExitStatus, timedOut bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case es = <-statusC:
		return es, false
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = process.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
	select {
	case es = <-statusC:
	case <-time.After(10 * time.Second):
	}
	return es, true
}

// awaitExecOutput lets the copy of the exec's output finish, bounded: a background
// child of the command could keep the pipes open.
func awaitExecOutput(process ctrd.Process) {
	copied := make(chan struct{})
	go func() { process.IO().Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		process.IO().Cancel()
	}
}

// ExecStream runs an interactive command in the container; see runtime.Execer.
func (r *Runtime) ExecStream(ctx context.Context, id string, o runtime.StreamOptions) (int, error) {
	if len(o.Cmd) == 0 {
		return -1, errors.New("exec: empty command")
	}
	ctx = r.withNamespace(ctx)
	task, pspec, err := r.execTarget(ctx, id, o.Cmd)
	if err != nil {
		return -1, err
	}
	pspec.Terminal = o.TTY
	stdin := newStdinCloser(&o)
	process, statusC, remove, err := startExec(ctx, task, id, r.streamExecID(), pspec, cio.NewCreator(streamIO(o, r.fifoDir)...))
	if err != nil {
		return -1, err
	}
	defer remove()
	// The end of the caller's stdin reaches the command only when the shim closes
	// its end of the FIFO, as `ctr task exec` does.
	if !stdin.typed {
		stdin.setCloser(func() { _ = process.CloseIO(context.WithoutCancel(ctx), ctrd.WithStdinCloser) })
	}
	if o.TTY && o.Resize != nil {
		go resizeLoop(ctx, process, o.Resize)
	}
	var es ctrd.ExitStatus
	select {
	case es = <-statusC:
	case <-ctx.Done():
		// The caller went away: the command goes with it, as kubelet's exec does.
		es, _ = waitExec(ctx, process, statusC, 0)
	}
	awaitExecOutput(process)
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	code, _, err := es.Result()
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", id, err)
	}
	return int(code), nil
}

// terminalEOF is VEOF, the character a terminal in canonical mode reads as the end
// of input (Ctrl-D).
const terminalEOF = "\x04"

// stdinCloser calls its closer when the reader it wraps ends, even if that happens
// before the closer is set (an empty stdin ends before the process exists).
type stdinCloser struct {
	r      io.Reader
	typed  bool // a terminal's: its end is the typed terminalEOF, never a close
	mu     sync.Mutex
	closer func()
	ended  bool
}

// newStdinCloser wraps o.Stdin, when there is one, in the stdinCloser it returns.
func newStdinCloser(o *runtime.StreamOptions) *stdinCloser {
	s := &stdinCloser{}
	if o.Stdin == nil {
		return s
	}
	s.r = o.Stdin
	if o.TTY {
		// Closing a terminal's input hangs it up: the command would get SIGHUP,
		// racing its own output. The end of the caller's input is typed as a
		// terminal user ends input instead, with one end-of-file character
		// (Ctrl-D); the terminal stays open until the command exits or the
		// caller goes away.
		s.r = io.MultiReader(o.Stdin, strings.NewReader(terminalEOF))
		s.typed = true
	}
	o.Stdin = s
	return s
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if errors.Is(err, io.EOF) {
		s.mu.Lock()
		s.ended = true
		closer := s.closer
		s.mu.Unlock()
		if closer != nil {
			closer()
		}
	}
	return n, err
}

func (s *stdinCloser) setCloser(f func()) {
	s.mu.Lock()
	s.closer = f
	ended := s.ended
	s.mu.Unlock()
	if ended {
		f()
	}
}

// streamIO are the cio options of an interactive exec: the caller's streams, and a
// terminal (whose output is all on stdout) when asked.
func streamIO(o runtime.StreamOptions, fifoDir string) []cio.Opt {
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil || o.TTY {
		stderr = io.Discard
	}
	opts := []cio.Opt{cio.WithStreams(o.Stdin, stdout, stderr), cio.WithFIFODir(fifoDir)}
	if o.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	return opts
}

// resizeLoop passes terminal sizes to the process until the channel closes or ctx
// ends.
func resizeLoop(ctx context.Context, process ctrd.Process, sizes <-chan runtime.TerminalSize) {
	for {
		select {
		case <-ctx.Done():
			return
		case sz, ok := <-sizes:
			if !ok {
				return
			}
			if err := process.Resize(ctx, uint32(sz.Width), uint32(sz.Height)); err != nil && !errdefs.IsNotFound(err) {
				logr.FromContextOrDiscard(ctx).V(1).Info("resizing an exec terminal", logReason, err.Error())
			}
		}
	}
}

// streamExecID names an interactive exec process: the runtime's start time and a
// sequence number, unique within containerd's task (a restarted agent starts from
// another time) and telling in `ctr task ps` which session came first.
func (r *Runtime) streamExecID() string {
	return fmt.Sprintf("session-%x-%d", r.started.UnixNano(), r.execSeq.Add(1))
}

func newExecID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "exec-" + hex.EncodeToString(b), nil
}

// limitedBuffer keeps the first max bytes written to it; stdout and stderr are
// copied into it concurrently.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
