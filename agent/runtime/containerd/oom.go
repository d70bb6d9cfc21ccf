package containerd

import (
	"context"

	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// oomKilled reports whether the kernel's OOM killer killed a process of the task's
// cgroup, from the cgroup's own counter (memory.oom_control on cgroup v1,
// memory.events on v2). The cgroup lives until the task is deleted, so this works
// for a stopped task too, and needs no event to have been seen: an agent that was
// down when the container died still reports OOMKilled.
func (r *Runtime) oomKilled(ctx context.Context, task ctrd.Task) bool {
	m, err := task.Metrics(ctx)
	if err != nil || m == nil || m.Data == nil {
		return false
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return false
	}
	switch s := v.(type) {
	case *v1stats.Metrics:
		return s.GetMemoryOomControl().GetOomKill() > 0
	case *v2stats.Metrics:
		return s.GetMemoryEvents().GetOomKill() > 0
	}
	return false
}
