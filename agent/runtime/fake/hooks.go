package fake

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/berthdev/berth/agent/runtime"
)

// Exit makes the container's process exit with code, as if it ended on its own.
func (r *Runtime) Exit(id string, code int) error {
	return r.exit(id, code, false)
}

// OOM makes the kernel's OOM killer kill the container: an EventOOM, then an exit
// with code 137 and OOMKilled set.
func (r *Runtime) OOM(id string) error {
	r.mu.Lock()
	if c, ok := r.containers[id]; ok && c.info.Status == runtime.StatusRunning {
		r.publishLocked(runtime.Event{Type: runtime.EventOOM, ContainerID: id, Time: r.clock.Now()})
	}
	r.mu.Unlock()
	return r.exit(id, ExitSIGKILL, true)
}

func (r *Runtime) exit(id string, code int, oom bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if c.info.Status != runtime.StatusRunning {
		return fmt.Errorf("container %q: %w", id, runtime.ErrNotRunning)
	}
	r.exitLocked(c, code, oom)
	return nil
}

// SetIgnoreSIGTERM makes the container ignore SIGTERM (or heed it again), so Stop
// kills it after its timeout. It applies to the container once it has been created,
// over what its image's Behavior says.
func (r *Runtime) SetIgnoreSIGTERM(id string, ignore bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	c.ignoreTerm = &ignore
	return nil
}

// SetTermExitCode is the exit code of the container when SIGTERM stops it (143 by
// default, as a process without a handler; 0 for one that exits cleanly), over what
// its image's Behavior says.
func (r *Runtime) SetTermExitCode(id string, code int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	c.termExit = &code
	return nil
}

// FailPull makes pulls of ref (any spelling of it) fail with err, as the registry's
// answer (nil: succeed again).
func (r *Runtime) FailPull(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.pullErrors, normalize(ref))
		return
	}
	r.pullErrors[normalize(ref)] = err
}

// HoldPulls makes pulls of ref wait until the returned function is called (or their
// context ends, which fails them as containerd does).
func (r *Runtime) HoldPulls(ref string) (release func()) {
	key := normalize(ref)
	gate := make(chan struct{})
	r.mu.Lock()
	r.pullGates[key] = gate
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.pullGates[key] == gate {
				delete(r.pullGates, key)
			}
			r.mu.Unlock()
			close(gate)
		})
	}
}

// FailCreate makes creating container id fail with err (nil: succeed again).
func (r *Runtime) FailCreate(id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.createErr[id] = err
}

// FailStart makes starting container id fail with err (nil: succeed again).
func (r *Runtime) FailStart(id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startErr[id] = err
}

// FailStop makes stopping container id fail with err, leaving it running (nil:
// succeed again).
func (r *Runtime) FailStop(id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopErr[id] = err
}

// ScriptExec sets the results of the next Execs in container id, in order; the last
// one repeats. It may be called before the container exists.
func (r *Runtime) ScriptExec(id string, results ...ExecResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.execs[id] = slices.Clone(results)
}

// AddImage makes ref local, with the fake's digest, as an operator's import would:
// the runtime did not pull it, so it has no PulledAt and PullOnce does not trust it.
func (r *Runtime) AddImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[normalize(ref)] = Digest(ref)
}

// Calls returns every call made so far, in order (nothing with Lean).
func (r *Runtime) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// CallIDs returns the IDs (or refs) of the calls of one method, in order.
func (r *Runtime) CallIDs(method string) []string {
	var out []string
	for _, c := range r.Calls() {
		if c.Method == method {
			out = append(out, c.ID)
		}
	}
	return out
}

// Count is how many times method was called for id ("" counts every call).
func (r *Runtime) Count(method, id string) int {
	n := 0
	for _, c := range r.Calls() {
		if c.Method == method && (id == "" || c.ID == id) {
			n++
		}
	}
	return n
}

// Signals returns the signals the container's current process received.
func (r *Runtime) Signals(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		return slices.Clone(c.signals)
	}
	return nil
}

// Spec returns the spec the container was created with.
func (r *Runtime) Spec(id string) (runtime.ContainerSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerSpec{}, false
	}
	return c.spec, true
}

// Info returns the container as List would.
func (r *Runtime) Info(id string) (runtime.ContainerInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerInfo{}, false
	}
	return c.snapshot(), true
}

// IDs returns the IDs of every container, sorted.
func (r *Runtime) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.containers))
	for id := range r.containers {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
