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
		// Containers seen OOM-killed in this stream: the OOM event comes before the
		// exit, and the task (with the cgroup counter) may be gone by the time a slow
		// consumer makes us decode the exit.
		oomed := map[string]bool{}
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
				switch ev.Type {
				case runtime.EventOOM:
					oomed[ev.ContainerID] = true
				case runtime.EventExit:
					ev.Exit.OOMKilled = ev.Exit.OOMKilled || oomed[ev.ContainerID]
					delete(oomed, ev.ContainerID)
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
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
