// Package metrics exposes the CPU and memory of the agent's tasks and containers as
// Prometheus metrics, read from containerd when Prometheus scrapes (the kubelet's
// cAdvisor endpoint works the same way), plus gauges about the agent itself.
//
// Series per running container, labelled cluster, service, task_definition_family,
// revision, namespace, task and container:
//
//	berth_container_cpu_usage_seconds_total  counter  CPU time since the container's process started
//	berth_container_memory_usage_bytes       gauge    working set (usage less inactive file pages)
//	berth_container_memory_limit_bytes       gauge    hard limit; absent when unlimited
//
// Per task, the sums over its running containers (the same labels without container):
//
//	berth_task_cpu_usage_seconds_total  counter
//	berth_task_memory_usage_bytes       gauge
//
// About the agent:
//
//	berth_agent_tasks{status}  gauge  tasks the engine knows, by lastStatus
//	berth_agent_runtime_up     gauge  1 when containerd answers, else 0
//
// A scrape costs one List of the runtime and one Stats call per running container,
// bounded by Config.Timeout: what is read by then is exposed.
//
// The Sampler reads the same containers the same way for the instance's
// status.utilization: ECS's CPUUtilization and MemoryUtilization, averaged over a
// window (a minute) and grouped by namespace, service and family.
package metrics

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// DefaultTimeout bounds a scrape when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// StatsReader is what the collector and the sampler read of the container runtime:
// its containers and their stats.
type StatsReader interface {
	List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error)
	Stats(ctx context.Context, id string) (runtime.ContainerStats, error)
}

// Runtime is what the collector reads from the container runtime.
type Runtime interface {
	StatsReader
	Version(ctx context.Context) (string, error)
}

// TaskInfo is what the agent knows of a task beyond its containers' labels.
type TaskInfo struct {
	// Service is the Service that started the task (the Task's ecs.berth.dev/service
	// label); "" for a standalone task.
	Service string
}

// Config configures a Collector.
type Config struct {
	// Runtime is read on every scrape.
	Runtime Runtime
	// Cluster is the value of the cluster label.
	Cluster string
	// Lookup tells what the agent knows of a task, from its name (the container's
	// berth.dev/task label) and UID. It must be cheap (a cache read). Optional.
	Lookup func(ctx context.Context, task types.NamespacedName, uid types.UID) TaskInfo
	// Tasks returns the engine's task reports, for berth_agent_tasks. Optional.
	Tasks func() []engine.Report
	// Timeout bounds one scrape (DefaultTimeout).
	Timeout time.Duration
	// Log receives what a scrape could not read, at V(1).
	Log logr.Logger
}

// Labels of the task and container series, in order.
var (
	taskLabels      = []string{"cluster", "service", "task_definition_family", "revision", "namespace", "task"}
	containerLabels = append(append([]string{}, taskLabels...), "container")
)

var (
	containerCPUDesc = prometheus.NewDesc("berth_container_cpu_usage_seconds_total",
		"CPU time used by the container's processes since its current process started, in seconds.", containerLabels, nil)
	containerMemoryDesc = prometheus.NewDesc("berth_container_memory_usage_bytes",
		"Working set of the container: memory usage less inactive file pages, in bytes.", containerLabels, nil)
	containerLimitDesc = prometheus.NewDesc("berth_container_memory_limit_bytes",
		"Hard memory limit of the container in bytes; absent when it has none.", containerLabels, nil)
	taskCPUDesc = prometheus.NewDesc("berth_task_cpu_usage_seconds_total",
		"CPU time used by the task's running containers, in seconds.", taskLabels, nil)
	taskMemoryDesc = prometheus.NewDesc("berth_task_memory_usage_bytes",
		"Working set of the task's running containers, in bytes.", taskLabels, nil)
	agentTasksDesc = prometheus.NewDesc("berth_agent_tasks",
		"Tasks the agent's engine knows, by lastStatus.", []string{"status"}, nil)
	runtimeUpDesc = prometheus.NewDesc("berth_agent_runtime_up",
		"1 when containerd answers the agent, 0 otherwise.", nil, nil)
)

// taskStatuses are the values of berth_agent_tasks' status label, all exposed (0
// when no task has it) so that dashboards see no gaps.
var taskStatuses = []ecsv1alpha1.TaskStatusValue{
	ecsv1alpha1.TaskProvisioning, ecsv1alpha1.TaskPending, ecsv1alpha1.TaskActivating, ecsv1alpha1.TaskRunning,
	ecsv1alpha1.TaskDeactivating, ecsv1alpha1.TaskStopping, ecsv1alpha1.TaskDeprovisioning, ecsv1alpha1.TaskStopped,
}

// Collector is a prometheus.Collector of the agent's task metrics.
type Collector struct {
	cfg Config
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector; register it on a registry.
func NewCollector(cfg Config) *Collector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Collector{cfg: cfg}
}

// Describe sends the descriptors of every metric the collector may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{containerCPUDesc, containerMemoryDesc, containerLimitDesc, taskCPUDesc, taskMemoryDesc, agentTasksDesc, runtimeUpDesc} {
		ch <- d
	}
}

// Collect reads the runtime and sends the current values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	c.collectAgent(ch)
	if _, err := c.cfg.Runtime.Version(ctx); err != nil {
		c.cfg.Log.V(1).Info("runtime does not answer", "reason", err.Error())
		ch <- prometheus.MustNewConstMetric(runtimeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(runtimeUpDesc, prometheus.GaugeValue, 1)
	samples, err := c.read(ctx)
	if err != nil {
		c.cfg.Log.V(1).Info("reading container metrics", "reason", err.Error())
	}
	for _, m := range series(samples) {
		ch <- m
	}
}

func (c *Collector) collectAgent(ch chan<- prometheus.Metric) {
	if c.cfg.Tasks == nil {
		return
	}
	counts := map[ecsv1alpha1.TaskStatusValue]int{}
	for _, r := range c.cfg.Tasks() {
		counts[r.LastStatus]++
	}
	for _, s := range taskStatuses {
		ch <- prometheus.MustNewConstMetric(agentTasksDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// reading is one running task container's stats, with what its labels say.
type reading struct {
	// ID is the container's.
	ID string
	// UID is the task's UID.
	UID                                          types.UID
	Namespace, Task, Family, Revision, Container string
	// CreatedAt orders containers whose labels collide (a task deleted and created
	// again under its name): the newest wins.
	CreatedAt time.Time
	Stats     runtime.ContainerStats
}

// TaskKey is the reading's Task.
func (r *reading) TaskKey() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Task}
}

// readRunning takes one List and one Stats per running task container (the pause
// container is the agent's, not one of the task's), until ctx ends. A container
// that stopped or went between the two is skipped.
func readRunning(ctx context.Context, rt StatsReader) ([]reading, error) {
	infos, err := rt.List(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []reading
	var errs []error
	for _, info := range infos {
		uid := types.UID(info.Labels[runtime.LabelTaskUID])
		if uid == "" || info.Status != runtime.StatusRunning || runtime.IsPause(info.Labels) {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		st, err := rt.Stats(ctx, info.ID)
		if err != nil {
			if !errors.Is(err, runtime.ErrNotRunning) && !errors.Is(err, runtime.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		r := reading{ID: info.ID, UID: uid, Container: info.Labels[runtime.LabelContainer], CreatedAt: info.CreatedAt, Stats: st}
		r.Namespace, r.Task, _ = strings.Cut(info.Labels[runtime.LabelTask], "/")
		r.Family, r.Revision = splitRevision(info.Labels[runtime.LabelRevision])
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// sample is a reading labelled for Prometheus.
type sample struct {
	reading
	Cluster, Service string
}

// read labels what readRunning read with the cluster and the agent's lookup.
func (c *Collector) read(ctx context.Context) ([]sample, error) {
	readings, err := readRunning(ctx, c.cfg.Runtime)
	out := make([]sample, 0, len(readings))
	for _, r := range readings {
		s := sample{reading: r, Cluster: c.cfg.Cluster}
		if c.cfg.Lookup != nil {
			s.Service = c.cfg.Lookup(ctx, r.TaskKey(), r.UID).Service
		}
		out = append(out, s)
	}
	return out, err
}

// splitRevision splits family:N; a value without a colon is all family.
func splitRevision(v string) (family, revision string) {
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return v, ""
	}
	return v[:i], v[i+1:]
}

// taskSum is the running total of one task.
type taskSum struct {
	labels []string
	uid    types.UID
	cpu    time.Duration
	memory uint64
}

// series turns samples into metrics: per container, and summed per task. When two
// tasks share their labels (a task deleted and created again under its name while
// the old containers still run) only the one with the newest container counts, so
// that a scrape never carries a series twice.
func series(samples []sample) []prometheus.Metric {
	sorted := append([]sample(nil), samples...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].CreatedAt.After(sorted[j].CreatedAt) })
	seen := map[string]bool{}
	tasks := map[string]*taskSum{}
	var taskOrder []string
	var out []prometheus.Metric
	for _, s := range sorted {
		tl := []string{s.Cluster, s.Service, s.Family, s.Revision, s.Namespace, s.Task}
		cl := append(append([]string{}, tl...), s.Container)
		tk, key := strings.Join(tl, "\x00"), strings.Join(cl, "\x00")
		sum, ok := tasks[tk]
		if seen[key] || ok && sum.uid != s.UID {
			continue
		}
		seen[key] = true
		out = append(out,
			prometheus.MustNewConstMetric(containerCPUDesc, prometheus.CounterValue, s.Stats.CPU.Seconds(), cl...),
			prometheus.MustNewConstMetric(containerMemoryDesc, prometheus.GaugeValue, float64(s.Stats.MemoryUsageBytes), cl...))
		if s.Stats.MemoryLimitBytes > 0 {
			out = append(out, prometheus.MustNewConstMetric(containerLimitDesc, prometheus.GaugeValue, float64(s.Stats.MemoryLimitBytes), cl...))
		}
		if !ok {
			sum = &taskSum{labels: tl, uid: s.UID}
			tasks[tk] = sum
			taskOrder = append(taskOrder, tk)
		}
		sum.cpu += s.Stats.CPU
		sum.memory += s.Stats.MemoryUsageBytes
	}
	for _, tk := range taskOrder {
		sum := tasks[tk]
		out = append(out,
			prometheus.MustNewConstMetric(taskCPUDesc, prometheus.CounterValue, sum.cpu.Seconds(), sum.labels...),
			prometheus.MustNewConstMetric(taskMemoryDesc, prometheus.GaugeValue, float64(sum.memory), sum.labels...))
	}
	return out
}
