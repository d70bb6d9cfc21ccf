package containerd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/berthdev/berth/agent/runtime"
)

// Event topics of containerd's task service.
const (
	topicTaskExit = "/tasks/exit"
	topicTaskOOM  = "/tasks/oom"
)

// Events subscribes to task exits and OOM kills in the runtime's namespace.
// Exits of Exec processes are not reported.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	ctx = r.withNamespace(ctx)
	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	ns := strconv.Quote(r.namespace)
	envelopes, errs := r.client.EventService().Subscribe(ctx,
		fmt.Sprintf("namespace==%s,topic==%q", ns, topicTaskExit),
		fmt.Sprintf("namespace==%s,topic==%q", ns, topicTaskOOM),
	)
	go func() {
		defer close(errc)
		defer close(out)
		var ooms oomEvents
		for {
			select {
			case <-ctx.Done():
				return
			case err, ok := <-errs:
				if ok && err != nil && ctx.Err() == nil {
					errc <- fmt.Errorf("containerd event stream: %w", err)
				}
				return
			case env, ok := <-envelopes:
				if !ok {
					return
				}
				ev, ok := r.decodeEvent(ctx, env.Timestamp, env.Event)
				if !ok {
					continue
				}
				for _, ev := range ooms.next(ev) {
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out, errc
}

func (r *Runtime) decodeEvent(ctx context.Context, ts time.Time, data typeurl.Any) (runtime.Event, bool) {
	if data == nil {
		return runtime.Event{}, false
	}
	v, err := typeurl.UnmarshalAny(data)
	if err != nil {
		return runtime.Event{}, false
	}
	switch e := v.(type) {
	case *apievents.TaskExit:
		if e.ID != e.ContainerID {
			return runtime.Event{}, false // an exec process, not the container
		}
		exit := &runtime.ExitStatus{Code: int(e.ExitStatus), ExitedAt: e.ExitedAt.AsTime()}
		if _, task, err := r.loadTask(ctx, e.ContainerID); err == nil {
			exit.OOMKilled = r.oomKilled(ctx, task)
		}
		return runtime.Event{Type: runtime.EventExit, ContainerID: e.ContainerID, Pid: e.Pid, Exit: exit, Time: ts}, true
	case *apievents.TaskOOM:
		return runtime.Event{Type: runtime.EventOOM, ContainerID: e.ContainerID, Time: ts}, true
	}
	return runtime.Event{}, false
}

// oomEvents keeps a stream's OOM events to runtime.EventOOM's contract: an OOM kill
// of the main process comes as an EventOOM, then the EventExit.
//
// containerd's shim watches a container's memory.events for OOM kills (inotify, later
// changes only) from after it has started the process, so a kill in the first moments
// comes with no TaskOOM. The exit then says OOMKilled by the cgroup's own counter
// (oomKilled), and the stream sends the missing EventOOM before it. Either way the
// exit carries OOMKilled: the OOM event comes before the exit, and the task (with the
// counter) may be gone by the time a slow consumer makes the stream decode the exit.
type oomEvents struct {
	// seen are the containers whose OOM event came and whose exit did not yet.
	seen map[string]bool
	// made are the containers whose OOM event the stream made at their exit: a
	// TaskOOM that comes after all is dropped, once.
	made map[string]bool
}

// maxMade bounds made: an entry stays while its late TaskOOM never comes (the usual
// case), so a long stream forgets them in bulk rather than growing.
const maxMade = 1024

// next is what the stream sends for ev.
func (o *oomEvents) next(ev runtime.Event) []runtime.Event {
	if o.seen == nil {
		o.seen, o.made = map[string]bool{}, map[string]bool{}
	}
	id := ev.ContainerID
	switch ev.Type {
	case runtime.EventOOM:
		if o.made[id] {
			delete(o.made, id)
			return nil
		}
		o.seen[id] = true
	case runtime.EventExit:
		delete(o.made, id) // an earlier exit's; this one is judged afresh
		seen := o.seen[id]
		delete(o.seen, id)
		ev.Exit.OOMKilled = ev.Exit.OOMKilled || seen
		if ev.Exit.OOMKilled && !seen {
			if len(o.made) >= maxMade {
				clear(o.made)
			}
			o.made[id] = true
			return []runtime.Event{{Type: runtime.EventOOM, ContainerID: id, Time: ev.Time}, ev}
		}
	}
	return []runtime.Event{ev}
}
