package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const image = "registry.example/app:1"

// run creates and starts a container of task ns/name (uid) running revision rev,
// with stats.
func run(t *testing.T, rt *fake.Runtime, uid, task, container, rev string, st runtime.ContainerStats) string {
	t.Helper()
	ctx := context.Background()
	id := runtime.ContainerID(uid, container)
	spec := runtime.ContainerSpec{ID: id, Image: image, Labels: map[string]string{
		runtime.LabelTaskUID: uid, runtime.LabelTask: task, runtime.LabelContainer: container, runtime.LabelRevision: rev,
	}}
	if _, err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	rt.SetStats(id, st)
	return id
}

func TestCollector(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := fake.New(fake.WithClock(clk))
	if _, err := rt.Pull(context.Background(), image, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	const gib = 1 << 30
	run(t, rt, "uid-web", "team/web-1", "app", "web:3", runtime.ContainerStats{CPU: 1500 * time.Millisecond, MemoryUsageBytes: 100, MemoryLimitBytes: gib})
	run(t, rt, "uid-web", "team/web-1", "sidecar", "web:3", runtime.ContainerStats{CPU: 500 * time.Millisecond, MemoryUsageBytes: 20})
	run(t, rt, "uid-job", "team/job", "main", "batch:1", runtime.ContainerStats{CPU: 2 * time.Second, MemoryUsageBytes: 7})
	// A stopped container has no series.
	stopped := run(t, rt, "uid-old", "team/old", "main", "batch:1", runtime.ContainerStats{CPU: time.Hour})
	if err := rt.Exit(stopped, 0); err != nil {
		t.Fatal(err)
	}
	// A task deleted and created again under its name while its old container still
	// runs: only the newer task is exposed.
	run(t, rt, "uid-again-old", "team/again", "main", "batch:1", runtime.ContainerStats{MemoryUsageBytes: 1})
	clk.Step(time.Second)
	run(t, rt, "uid-again-new", "team/again", "main", "batch:1", runtime.ContainerStats{MemoryUsageBytes: 2})

	c := NewCollector(Config{
		Runtime: rt, Cluster: "prod",
		Lookup: func(_ context.Context, task types.NamespacedName, uid types.UID) TaskInfo {
			if task.Name == "web-1" && uid == "uid-web" {
				return TaskInfo{Service: "web"}
			}
			return TaskInfo{}
		},
		Tasks: func() []engine.Report {
			return []engine.Report{{LastStatus: ecsv1alpha1.TaskRunning}, {LastStatus: ecsv1alpha1.TaskRunning}, {LastStatus: ecsv1alpha1.TaskStopped}}
		},
	})
	want := `
# HELP berth_agent_runtime_up 1 when containerd answers the agent, 0 otherwise.
# TYPE berth_agent_runtime_up gauge
berth_agent_runtime_up 1
# HELP berth_agent_tasks Tasks the agent's engine knows, by lastStatus.
# TYPE berth_agent_tasks gauge
berth_agent_tasks{status="ACTIVATING"} 0
berth_agent_tasks{status="DEACTIVATING"} 0
berth_agent_tasks{status="DEPROVISIONING"} 0
berth_agent_tasks{status="PENDING"} 0
berth_agent_tasks{status="PROVISIONING"} 0
berth_agent_tasks{status="RUNNING"} 2
berth_agent_tasks{status="STOPPED"} 1
berth_agent_tasks{status="STOPPING"} 0
# HELP berth_container_cpu_usage_seconds_total CPU time used by the container's processes since its current process started, in seconds.
# TYPE berth_container_cpu_usage_seconds_total counter
berth_container_cpu_usage_seconds_total{cluster="prod",container="app",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 1.5
berth_container_cpu_usage_seconds_total{cluster="prod",container="main",namespace="team",revision="1",service="",task="again",task_definition_family="batch"} 0
berth_container_cpu_usage_seconds_total{cluster="prod",container="main",namespace="team",revision="1",service="",task="job",task_definition_family="batch"} 2
berth_container_cpu_usage_seconds_total{cluster="prod",container="sidecar",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 0.5
# HELP berth_container_memory_limit_bytes Hard memory limit of the container in bytes; absent when it has none.
# TYPE berth_container_memory_limit_bytes gauge
berth_container_memory_limit_bytes{cluster="prod",container="app",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 1.073741824e+09
# HELP berth_container_memory_usage_bytes Working set of the container: memory usage less inactive file pages, in bytes.
# TYPE berth_container_memory_usage_bytes gauge
berth_container_memory_usage_bytes{cluster="prod",container="app",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 100
berth_container_memory_usage_bytes{cluster="prod",container="main",namespace="team",revision="1",service="",task="again",task_definition_family="batch"} 2
berth_container_memory_usage_bytes{cluster="prod",container="main",namespace="team",revision="1",service="",task="job",task_definition_family="batch"} 7
berth_container_memory_usage_bytes{cluster="prod",container="sidecar",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 20
# HELP berth_task_cpu_usage_seconds_total CPU time used by the task's running containers, in seconds.
# TYPE berth_task_cpu_usage_seconds_total counter
berth_task_cpu_usage_seconds_total{cluster="prod",namespace="team",revision="1",service="",task="again",task_definition_family="batch"} 0
berth_task_cpu_usage_seconds_total{cluster="prod",namespace="team",revision="1",service="",task="job",task_definition_family="batch"} 2
berth_task_cpu_usage_seconds_total{cluster="prod",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 2
# HELP berth_task_memory_usage_bytes Working set of the task's running containers, in bytes.
# TYPE berth_task_memory_usage_bytes gauge
berth_task_memory_usage_bytes{cluster="prod",namespace="team",revision="1",service="",task="again",task_definition_family="batch"} 2
berth_task_memory_usage_bytes{cluster="prod",namespace="team",revision="1",service="",task="job",task_definition_family="batch"} 7
berth_task_memory_usage_bytes{cluster="prod",namespace="team",revision="3",service="web",task="web-1",task_definition_family="web"} 120
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	// One List, and one Stats per running task container.
	if n := rt.Count("List", ""); n != 1 {
		t.Errorf("%d Lists per scrape, want 1", n)
	}
	if n := rt.Count("Stats", ""); n != 5 {
		t.Errorf("%d Stats calls per scrape, want 5", n)
	}
}

// downRuntime is a runtime whose daemon does not answer.
type downRuntime struct{ *fake.Runtime }

func (downRuntime) Version(context.Context) (string, error) {
	return "", errors.New("connection refused")
}

func TestCollectorRuntimeDown(t *testing.T) {
	rt := fake.New()
	c := NewCollector(Config{Runtime: downRuntime{rt}, Cluster: "prod"})
	want := `
# HELP berth_agent_runtime_up 1 when containerd answers the agent, 0 otherwise.
# TYPE berth_agent_runtime_up gauge
berth_agent_runtime_up 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if n := rt.Count("List", ""); n != 0 {
		t.Errorf("%d Lists of a runtime that is down, want 0", n)
	}
}

// slowRuntime makes every Stats call outlive the scrape's timeout.
type slowRuntime struct{ *fake.Runtime }

func (slowRuntime) Stats(ctx context.Context, _ string) (runtime.ContainerStats, error) {
	<-ctx.Done()
	return runtime.ContainerStats{}, ctx.Err()
}

func TestCollectorScrapeIsBounded(t *testing.T) {
	rt := fake.New()
	if _, err := rt.Pull(context.Background(), image, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		run(t, rt, "uid-"+name, "team/"+name, "main", "x:1", runtime.ContainerStats{})
	}
	c := NewCollector(Config{Runtime: slowRuntime{rt}, Timeout: 100 * time.Millisecond})
	start := time.Now()
	if n := testutil.CollectAndCount(c, "berth_container_memory_usage_bytes"); n != 0 {
		t.Errorf("%d series, want none", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("scrape took %s, want it bounded by the 100ms timeout", d)
	}
}

func TestSplitRevision(t *testing.T) {
	tests := []struct{ in, wantFamily, wantRevision string }{
		{"web:3", "web", "3"},
		{"web", "web", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		f, r := splitRevision(tc.in)
		if f != tc.wantFamily || r != tc.wantRevision {
			t.Errorf("splitRevision(%q) = %q, %q; want %q, %q", tc.in, f, r, tc.wantFamily, tc.wantRevision)
		}
	}
}
