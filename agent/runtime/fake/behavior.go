package fake

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"
	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
)

// Behavior is how the containers of an image behave, set with SetBehavior.
type Behavior struct {
	// ExitAfter, when positive, makes each process exit by itself with ExitCode that
	// long after it starts, on the runtime's clock (a restart starts a new countdown).
	ExitAfter time.Duration
	ExitCode  int
	// OOMAfter, when positive, makes the OOM killer kill each process that long after
	// it starts: an EventOOM, then an exit with code 137 and OOMKilled.
	OOMAfter time.Duration
	// IgnoreSIGTERM makes Stop wait for its timeout and kill (as SetIgnoreSIGTERM).
	IgnoreSIGTERM bool
	// TermExitCode is the exit code when SIGTERM stops the process (as
	// SetTermExitCode); nil keeps the default, 143.
	TermExitCode *int
	// Exec is the result of every Exec in such containers, unless ScriptExec scripted
	// the container; nil keeps the default (exit 0, no output).
	Exec *ExecResult
	// User is what ImageUser answers for such images ("" is root).
	User string
}

type imageBehavior struct {
	substring string
	behavior  Behavior
}

// SetBehavior makes the containers whose image reference contains imageSubstring
// (as given to Create, or normalized) behave as b, and ImageUser answer b.User for
// such images. The most recently set matching behaviour wins; setting one for the
// same substring again replaces it. The per-container setters (SetIgnoreSIGTERM,
// SetTermExitCode, ScriptExec) take precedence. ExitAfter and OOMAfter apply to
// processes started afterwards; the rest applies at once.
//
// Exits and OOM kills happen in their own goroutine once the clock has passed (as
// AfterFunc runs its function), so with a fake clock they follow Step shortly after,
// not within it: wait for their events.
func (r *Runtime) SetBehavior(imageSubstring string, b Behavior) {
	if b.TermExitCode != nil {
		code := *b.TermExitCode
		b.TermExitCode = &code
	}
	if b.Exec != nil {
		res := *b.Exec
		b.Exec = &res
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ib := range r.behaviors {
		if ib.substring == imageSubstring {
			r.behaviors = append(r.behaviors[:i], r.behaviors[i+1:]...)
			break
		}
	}
	r.behaviors = append(r.behaviors, imageBehavior{substring: imageSubstring, behavior: b})
}

// behaviorLocked returns the most recently set behaviour that matches one of the
// spellings of an image reference.
func (r *Runtime) behaviorLocked(refs ...string) (Behavior, bool) {
	for i := len(r.behaviors) - 1; i >= 0; i-- {
		for _, ref := range refs {
			if strings.Contains(ref, r.behaviors[i].substring) {
				return r.behaviors[i].behavior, true
			}
		}
	}
	return Behavior{}, false
}

// termLocked says whether the container ignores SIGTERM and the code it exits with
// when SIGTERM stops it: its own settings, else its image's behaviour, else 143.
func (r *Runtime) termLocked(c *container) (ignore bool, code int) {
	b, _ := r.behaviorLocked(c.spec.Image, c.info.Image)
	ignore, code = b.IgnoreSIGTERM, ExitSIGTERM
	if b.TermExitCode != nil {
		code = *b.TermExitCode
	}
	if c.ignoreTerm != nil {
		ignore = *c.ignoreTerm
	}
	if c.termExit != nil {
		code = *c.termExit
	}
	return ignore, code
}

// scheduleLocked arms the timers that end the container's new process by itself,
// as its image's behaviour says.
func (r *Runtime) scheduleLocked(c *container) {
	b, ok := r.behaviorLocked(c.spec.Image, c.info.Image)
	if !ok {
		return
	}
	proc := c.proc
	if b.ExitAfter > 0 {
		code := b.ExitCode
		proc.timers = append(proc.timers, afterFunc(r.clock, b.ExitAfter, func() { r.expire(c, proc, code, false) }))
	}
	if b.OOMAfter > 0 {
		proc.timers = append(proc.timers, afterFunc(r.clock, b.OOMAfter, func() { r.expire(c, proc, ExitSIGKILL, true) }))
	}
}

// expire ends proc, if it still runs, as its behaviour's timer says.
func (r *Runtime) expire(c *container, proc *process, code int, oom bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-proc.done:
		return // stopped, killed or deleted meanwhile
	default:
	}
	if c.proc != proc {
		return
	}
	if oom {
		r.publishLocked(runtime.Event{Type: runtime.EventOOM, ContainerID: c.info.ID, Time: r.clock.Now()})
	}
	r.exitLocked(c, code, oom)
}

// stopper is a timer that can be stopped.
type stopper interface{ Stop() bool }

// afterFunc calls f in its own goroutine once d has passed on clk. The goroutine
// matters with a fake clock, whose Step runs the callback while holding the clock's
// lock: f takes the runtime's lock, under which the runtime reads the clock.
func afterFunc(clk clock.Clock, d time.Duration, f func()) stopper {
	if dc, ok := clk.(clock.WithDelayedExecution); ok {
		return dc.AfterFunc(d, func() { go f() })
	}
	t := &chanTimer{timer: clk.NewTimer(d), stop: make(chan struct{})}
	go func() {
		select {
		case <-t.timer.C():
			f()
		case <-t.stop:
		}
	}()
	return t
}

// chanTimer is afterFunc's timer on a clock without AfterFunc.
type chanTimer struct {
	timer clock.Timer
	stop  chan struct{}
}

func (t *chanTimer) Stop() bool {
	select {
	case <-t.stop:
		return false
	default:
		close(t.stop)
		return t.timer.Stop()
	}
}

// ImageUser returns the user of the image's Behavior ("" for root, the default). An
// image that is not local is an error wrapping runtime.ErrNotFound, a malformed
// reference a *runtime.ReferenceError, as with containerd.
func (r *Runtime) ImageUser(ctx context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "ImageUser", ID: ref})
	if err := ctx.Err(); err != nil {
		return "", err
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", &runtime.ReferenceError{Ref: ref, Err: err}
	}
	if _, ok := r.images[named.String()]; !ok {
		return "", fmt.Errorf("image %q is not pulled: %w", named, runtime.ErrNotFound)
	}
	b, _ := r.behaviorLocked(ref, named.String())
	return b.User, nil
}
