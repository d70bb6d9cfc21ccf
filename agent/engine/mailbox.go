package engine

import (
	"context"
	"sync"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// eventKind is the kind of something that happened to a task's containers.
type eventKind int

const (
	// eventExit: a container's process exited (runtime event).
	eventExit eventKind = iota
	// eventOOM: the OOM killer hit a container (runtime event).
	eventOOM
	// eventHealth: a container's health check status changed.
	eventHealth
	// eventObserved: a List of the runtime, after the event stream was interrupted.
	eventObserved
	// eventStopped: a stop the worker began (stepStopContainer) returned.
	eventStopped
)

// event is something that happened to a task's containers, queued for its worker.
type event struct {
	kind eventKind
	// id is the container's runtime ID (exit, oom, health).
	id string
	// pid and exit of an eventExit; exit and err of an eventStopped.
	pid  uint32
	exit *runtime.ExitStatus
	err  error
	// health and generation of an eventHealth.
	health     ecsv1alpha1.HealthStatus
	generation int
	// observed (by ID) and epoch of an eventObserved: the task's containers in a
	// List taken at that engine epoch.
	observed map[string]runtime.ContainerInfo
	epoch    uint64
}

// mailbox is how the rest of the engine talks to a task's worker. It holds the
// newest desired state only (a stop is never replaced by a run), events in order,
// and a forget request. Senders never block.
type mailbox struct {
	mu      sync.Mutex
	desired *Desired
	events  []event
	forget  bool
	// interrupt cancels the worker's current interruptible call (a pull) when a stop
	// or a forget arrives.
	interrupt context.CancelFunc
	notify    chan struct{}
	// parked is set while the worker's goroutine has ended for lack of work; the next
	// message calls wake, which starts a new one.
	parked bool
	wake   func()
}

// newMailbox returns an empty mailbox whose parked worker wake starts again.
func newMailbox(wake func()) *mailbox {
	return &mailbox{notify: make(chan struct{}, 1), wake: wake}
}

// signal tells the worker there is news: a running worker wakes from its wait, a
// parked one is started again. Callers hold m.mu; the returned function, called once
// m.mu is released, starts the parked worker.
func (m *mailbox) signalLocked() (after func()) {
	select {
	case m.notify <- struct{}{}:
	default:
	}
	if !m.parked || m.wake == nil {
		return func() {}
	}
	m.parked = false
	return m.wake
}

// park ends the worker's goroutine when nothing is waiting in the mailbox (it returns
// true: the caller returns); with something waiting it returns false and the worker
// carries on.
func (m *mailbox) park() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.desired != nil || len(m.events) > 0 || m.forget {
		return false
	}
	m.parked = true
	return true
}

// unpark undoes a wake that could not start the worker (the engine is not running).
func (m *mailbox) unpark() {
	m.mu.Lock()
	m.parked = true
	m.mu.Unlock()
}

// stopping reports whether a stop or forget is waiting. Callers hold m.mu.
func (m *mailbox) stoppingLocked() bool {
	return m.forget || (m.desired != nil && m.desired.DesiredStatus == ecsv1alpha1.DesiredStopped)
}

// putDesired replaces a pending desired state with d, except that a pending stop
// survives a newer RUNNING (a stopped task never runs again).
func (m *mailbox) putDesired(d Desired) {
	m.mu.Lock()
	if old := m.desired; old != nil && old.DesiredStatus == ecsv1alpha1.DesiredStopped && d.DesiredStatus != ecsv1alpha1.DesiredStopped {
		d.DesiredStatus, d.StopCode, d.StopReason = old.DesiredStatus, old.StopCode, old.StopReason
	}
	m.desired = &d
	if m.stoppingLocked() && m.interrupt != nil {
		m.interrupt()
	}
	wake := m.signalLocked()
	m.mu.Unlock()
	wake()
}

func (m *mailbox) putEvent(ev event) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	wake := m.signalLocked()
	m.mu.Unlock()
	wake()
}

func (m *mailbox) putForget() {
	m.mu.Lock()
	m.forget = true
	if m.interrupt != nil {
		m.interrupt()
	}
	wake := m.signalLocked()
	m.mu.Unlock()
	wake()
}

// take empties the mailbox.
func (m *mailbox) take() (d *Desired, evs []event, forget bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, evs, forget = m.desired, m.events, m.forget
	m.desired, m.events = nil, nil
	return d, evs, forget
}

// interruptible returns a context that a stop or forget cancels, and the function to
// call when the interruptible call is over.
func (m *mailbox) interruptible(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stoppingLocked() {
		cancel()
	}
	m.interrupt = cancel
	return ctx, func() {
		m.mu.Lock()
		m.interrupt = nil
		m.mu.Unlock()
		cancel()
	}
}
