package containerd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/berthdev/berth/agent/runtime"
)

// unlimited is the smallest memory limit taken as "no limit": cgroup v1 reports an
// unlimited cgroup as the largest page-aligned int64, v2 as "max" (MaxUint64).
const unlimited = 1 << 62

// Stats reads the container's cgroup through one Metrics call to containerd; see
// runtime.Runtime.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.ContainerStats, error) {
	ctx = r.withNamespace(ctx)
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: []string{"id==" + strconv.Quote(id)}})
	if err != nil {
		return runtime.ContainerStats{}, fmt.Errorf("metrics of container %q: %w", id, err)
	}
	for _, m := range resp.GetMetrics() {
		if m.GetID() != id || m.GetData() == nil {
			continue
		}
		v, err := typeurl.UnmarshalAny(m.GetData())
		if err != nil {
			return runtime.ContainerStats{}, fmt.Errorf("decoding metrics of container %q: %w", id, err)
		}
		at := time.Now()
		if ts := m.GetTimestamp(); ts != nil {
			at = ts.AsTime()
		}
		st, ok := statsFrom(v, at)
		if !ok {
			return runtime.ContainerStats{}, fmt.Errorf("metrics of container %q: unknown type %T", id, v)
		}
		if noProcesses(v) {
			// A stopped task keeps its cgroup, and so its metrics, until it is deleted.
			return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotRunning)
		}
		return st, nil
	}
	// No metrics: the container has no process, or does not exist.
	if _, err := r.client.LoadContainer(ctx, id); err != nil {
		if errdefs.IsNotFound(err) {
			return runtime.ContainerStats{}, notFound(id, err)
		}
		return runtime.ContainerStats{}, fmt.Errorf("looking up container %q: %w", id, err)
	}
	return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotRunning)
}

// noProcesses reports whether the metrics count no process in the cgroup (false when
// they do not count processes): a running container has at least its init.
func noProcesses(v any) bool {
	switch m := v.(type) {
	case *v1stats.Metrics:
		return m.GetPids() != nil && m.GetPids().GetCurrent() == 0
	case *v2stats.Metrics:
		return m.GetPids() != nil && m.GetPids().GetCurrent() == 0
	}
	return false
}

// statsFrom converts cgroup v1 or v2 metrics; false for another type.
func statsFrom(v any, at time.Time) (runtime.ContainerStats, bool) {
	st := runtime.ContainerStats{Time: at}
	var usage, inactive, limit uint64
	switch m := v.(type) {
	case *v1stats.Metrics:
		st.CPU = time.Duration(m.GetCPU().GetUsage().GetTotal()) // nanoseconds
		usage, limit = m.GetMemory().GetUsage().GetUsage(), m.GetMemory().GetUsage().GetLimit()
		inactive = m.GetMemory().GetTotalInactiveFile()
	case *v2stats.Metrics:
		st.CPU = time.Duration(m.GetCPU().GetUsageUsec()) * time.Microsecond
		usage, limit = m.GetMemory().GetUsage(), m.GetMemory().GetUsageLimit()
		inactive = m.GetMemory().GetInactiveFile()
	default:
		return st, false
	}
	if usage > inactive {
		st.MemoryUsageBytes = usage - inactive
	}
	if limit < unlimited {
		st.MemoryLimitBytes = limit
	}
	return st, true
}
