package metrics

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/internal/utilization"
)

// Windows of the sampler.
const (
	// DefaultInterval is the length of a measurement window: ECS's CPUUtilization
	// and MemoryUtilization are per-minute figures.
	DefaultInterval = time.Minute
	// MinInterval is the shortest window (--utilization-interval).
	MinInterval = time.Second
	// maxGroups is the schema's bound on status.utilization.groups.
	maxGroups = 1024
)

// SampleEvery is how often a sampler with windows of interval reads its containers:
// four times a window, at most once a second.
func SampleEvery(interval time.Duration) time.Duration {
	return max(interval/4, time.Second)
}

// SamplerConfig configures a Sampler.
type SamplerConfig struct {
	// Runtime is read on every sample.
	Runtime StatsReader
	// Interval is the length of a window (DefaultInterval).
	Interval time.Duration
	// Offset delays the first sample: instances that start together (berth hollow)
	// then do not all read and report in the same second.
	Offset time.Duration
	// Lookup tells the Service of a task, as for the Collector. Optional.
	Lookup func(ctx context.Context, task types.NamespacedName, uid types.UID) TaskInfo
	// Reserved returns what each task the instance accepted reserves on it
	// (taskrules.TaskResources, as placement reserves it). A task it has no entry
	// for is not counted: its use would have nothing to divide by.
	Reserved func() map[types.UID]taskrules.Resources
	// Report receives each window's measurement that Run decides to report.
	Report func(*ecsv1alpha1.InstanceUtilization)
	// Clock times the samples (the real clock by default).
	Clock clock.WithTicker
	// Log receives what a sample could not read and truncations, at V(1).
	Log logr.Logger
}

// Sampler measures the running tasks of one container instance, window by window:
// it reads every running task container's stats SampleEvery(Interval), averages
// each container over the window (utilization.Window), and at the end of the window
// sums them per task and groups the tasks by namespace, service and family, with
// what they reserve, as status.utilization of the instance.
//
// Sample and Close are what Run calls in turn; they are not safe for concurrent use.
type Sampler struct {
	cfg       SamplerConfig
	every     time.Duration
	perWindow int

	// windows are the open window of each running container, by container ID.
	windows map[string]*containerWindow
	// start is when the open window began (its first sample), last the time of the
	// latest sample; zero before the first.
	start, last time.Time
	// hadGroups is whether the last measurement reported had groups.
	hadGroups bool
}

// containerWindow is a container's samples in the open window, with its task.
type containerWindow struct {
	uid                     types.UID
	namespace, task, family string
	window                  utilization.Window
	// latest is its newest sample, taken at seenAt (the sampler's time).
	latest utilization.Sample
	seenAt time.Time
}

// NewSampler returns a sampler; Run starts it.
func NewSampler(cfg SamplerConfig) *Sampler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Reserved == nil {
		cfg.Reserved = func() map[types.UID]taskrules.Resources { return nil }
	}
	every := SampleEvery(cfg.Interval)
	return &Sampler{
		cfg: cfg, every: every, perWindow: max(1, int((cfg.Interval+every/2)/every)),
		windows: map[string]*containerWindow{},
	}
}

// Run samples until ctx ends, closes a window every Interval and hands it to
// Report unless it says nothing new: an instance that ran no task in the window
// and reported none in the previous one is not reported again, so idle instances
// cost no write; the first window after the last task stopped is reported, empty,
// so that the manager sees zero.
func (s *Sampler) Run(ctx context.Context) {
	if s.cfg.Offset > 0 {
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Clock.After(s.cfg.Offset):
		}
	}
	t := s.cfg.Clock.NewTicker(s.every)
	defer t.Stop()
	s.Sample(ctx) // the first window starts now
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		s.Sample(ctx)
		if n%s.perWindow != 0 {
			continue
		}
		if u, changed := s.Close(ctx); changed && s.cfg.Report != nil {
			s.cfg.Report(u)
		}
	}
}

// Sample reads every running task container once and adds what it read to its
// window.
func (s *Sampler) Sample(ctx context.Context) {
	now := s.cfg.Clock.Now()
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	readings, err := readRunning(ctx, s.cfg.Runtime)
	if err != nil {
		s.cfg.Log.V(1).Info("reading container stats", "reason", err.Error())
	}
	if s.start.IsZero() {
		s.start = now
	}
	s.last = now
	for _, r := range readings {
		if r.Namespace == "" {
			continue // not labelled as the agent labels its tasks' containers
		}
		w := s.windows[r.ID]
		if w == nil {
			w = &containerWindow{uid: r.UID, namespace: r.Namespace, task: r.Task, family: r.Family}
			s.windows[r.ID] = w
		}
		at := r.Stats.Time
		if at.IsZero() {
			at = now
		}
		w.latest = utilization.Sample{At: at, CPU: r.Stats.CPU, MemoryBytes: int64(r.Stats.MemoryUsageBytes)}
		w.window.Add(w.latest)
		w.seenAt = now
	}
}

// taskUse is the sum of one task's averaged containers over a window.
type taskUse struct {
	namespace, task, family string
	cpu, memory             int64
}

// groupKey identifies a group of status.utilization.
type groupKey struct{ namespace, service, family string }

// Close ends the open window and returns its measurement, and whether Run reports
// it (see Run). The next window starts with the last sample of every container
// still running, so that no CPU time falls between windows; the rest of the closed
// window's samples are dropped, and so are the containers not seen in its last
// sample. Nil before any sample.
func (s *Sampler) Close(ctx context.Context) (u *ecsv1alpha1.InstanceUtilization, report bool) {
	if s.start.IsZero() {
		return nil, false
	}
	tasks := map[types.UID]*taskUse{}
	for id, w := range s.windows {
		// A container with fewer than two samples has no rate and counts nothing.
		if cpu, mem, ok := w.window.Average(); ok {
			t := tasks[w.uid]
			if t == nil {
				t = &taskUse{namespace: w.namespace, task: w.task, family: w.family}
				tasks[w.uid] = t
			}
			t.cpu += cpu
			t.memory += mem
		}
		if !w.seenAt.Equal(s.last) {
			delete(s.windows, id)
			continue
		}
		w.window = utilization.Window{}
		w.window.Add(w.latest)
	}
	u = &ecsv1alpha1.InstanceUtilization{
		WindowStart: metav1.NewTime(s.start), WindowEnd: metav1.NewTime(s.last),
		Groups: s.groups(ctx, tasks),
	}
	s.start = s.last
	report = len(u.Groups) > 0 || s.hadGroups
	s.hadGroups = len(u.Groups) > 0
	return u, report
}

// groups adds the tasks up by namespace, service and family, sorted by those; past
// the schema's bound, the groups that reserve the most CPU are kept.
func (s *Sampler) groups(ctx context.Context, tasks map[types.UID]*taskUse) []ecsv1alpha1.UtilizationGroup {
	if len(tasks) == 0 {
		return nil
	}
	reserved := s.cfg.Reserved()
	byKey := map[groupKey]*ecsv1alpha1.UtilizationGroup{}
	for uid, t := range tasks {
		res, ok := reserved[uid]
		if !ok {
			continue
		}
		key := groupKey{namespace: t.namespace, family: t.family}
		if s.cfg.Lookup != nil {
			key.service = s.cfg.Lookup(ctx, types.NamespacedName{Namespace: t.namespace, Name: t.task}, uid).Service
		}
		g := byKey[key]
		if g == nil {
			g = &ecsv1alpha1.UtilizationGroup{Namespace: key.namespace, Service: key.service, Family: key.family}
			byKey[key] = g
		}
		g.Tasks++
		g.CPUUsed += t.cpu
		g.MemoryUsed += t.memory
		g.CPUReserved += res.CPU
		g.MemoryReserved += res.Memory
	}
	out := make([]ecsv1alpha1.UtilizationGroup, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	if len(out) > maxGroups {
		slices.SortFunc(out, func(a, b ecsv1alpha1.UtilizationGroup) int {
			return cmp.Or(cmp.Compare(b.CPUReserved, a.CPUReserved), compareGroups(a, b))
		})
		s.cfg.Log.V(1).Info("too many task groups to report; keeping those that reserve the most CPU",
			"groups", len(out), "kept", maxGroups)
		out = out[:maxGroups]
	}
	slices.SortFunc(out, compareGroups)
	return out
}

func compareGroups(a, b ecsv1alpha1.UtilizationGroup) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Family, b.Family))
}
