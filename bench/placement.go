package bench

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// runPlacement measures PlacementThroughput: with 1,000 hollow instances, 10,000
// standalone tasks (RunTask: spec.taskDefinition names the family, so the scheduler
// resolves the revision and binds) are created as fast as the apiserver takes them,
// and every binding (spec.containerInstance set) is timed through a watch.
//
// Baseline: the same number of small ConfigMaps created the same way against the same
// apiserver, before Berth starts: the ratio is the share of raw write throughput that
// placement keeps, so it shows what Berth's logic (and its extra writes) costs.
func runPlacement(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	instances, tasks := r.size.n(1000, 10), r.size.n(10000, 100)
	out := &outcome{}

	bStart, bDone, err := rawCreates(ctx, l.c, benchNamespace, "cm", tasks)
	if err != nil {
		return nil, err
	}
	r.logf("placement: baseline: %d ConfigMaps in %s", tasks, lastOf(bDone).Sub(bStart).Round(10*time.Millisecond))
	cmRate := Baseline{
		What: fmt.Sprintf("%d ConfigMap creates (%d in flight) on the same apiserver before Berth started", tasks, createWorkers),
		Unit: "objects/s", Values: Throughput(bStart, bDone, time.Second),
	}

	const cluster = "placement"
	// The same tasks as the measurement's (names of the same length), so that the
	// baseline is what the apiserver can do for this very resource.
	taskBase, err := l.rawTaskCreates(ctx, tasks, func(i int) *ecsv1alpha1.Task {
		return testobj.Task(benchNamespace, fmt.Sprintf("b-%05d", i), "app").Cluster(cluster).Obj()
	})
	if err != nil {
		return nil, err
	}
	if err := l.startManager(ctx); err != nil {
		return nil, err
	}
	hollow, err := l.startHollow(hollowConfig{cluster: cluster, prefix: "p", instances: instances})
	if err != nil {
		return nil, err
	}
	if err := l.setupCluster(ctx, cluster, smallTaskDefinition(benchNamespace, "app", "bench/app:1")); err != nil {
		return nil, err
	}
	if err := l.waitInstances(ctx, cluster, instances, 2*time.Minute+time.Duration(instances)*20*time.Millisecond, hollow); err != nil {
		return nil, err
	}

	idle, err := l.idleCPU(ctx, r.size.d(10*time.Second, 2*time.Second))
	if err != nil {
		return nil, err
	}

	bound := newBindTracker(tasks)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := watchObjects(wctx, l.c, &ecsv1alpha1.TaskList{}, &client.ListOptions{Namespace: benchNamespace}, false, bound.observe); err != nil {
		return nil, err
	}

	writesBefore, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	passesBefore := reconciles()
	m := l.startMeasurement(ctx, PlacementThroughput, map[string]*child{"berth hollow": hollow})
	start := time.Now()
	created, err := runParallel(ctx, tasks, createWorkers, func(ctx context.Context, i int) error {
		t := testobj.Task(benchNamespace, fmt.Sprintf("t-%05d", i), "app").Cluster(cluster).Obj()
		return l.c.Create(ctx, t)
	})
	if err != nil {
		m.stop(ctx)
		return nil, fmt.Errorf("creating tasks: %w", err)
	}
	r.logf("placement: %d tasks created in %s", tasks, lastOf(created).Sub(start).Round(10*time.Millisecond))
	err = waitSignal(ctx, bound.all, 2*time.Minute+time.Duration(tasks)*30*time.Millisecond, bound.progress)
	out.contexts = m.stop(ctx)
	if err != nil {
		return nil, err
	}
	writesAfter, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	out.note("writes during the measurement: %s; reconciles: %s", describeCounts(diff(writesBefore, writesAfter)), describeCounts(diff(passesBefore, reconciles())))
	times := bound.times()
	r.logf("placement: %d tasks bound in %s", tasks, lastOf(times).Sub(start).Round(10*time.Millisecond))

	bindRate := Throughput(start, times, time.Second)
	out.figures = append(out.figures, Figure{
		Metric: PlacementThroughput, Name: "TasksBoundPerSecond", Unit: "tasks/s",
		Values: bindRate, Baseline: cmRate,
		Note: fmt.Sprintf("%d standalone tasks (family reference, so the scheduler also writes the resolved revision) created %d at a time on %d hollow instances; bindings seen through a watch; Average = tasks ÷ time to the last binding, percentiles over 1 s windows.",
			tasks, createWorkers, instances),
	}, Figure{
		Metric: PlacementThroughput, Name: "TasksBoundPerSecondVsTaskCreates", Unit: "tasks/s",
		Values: maps.Clone(bindRate), Baseline: taskBase.rate(),
		Note: fmt.Sprintf("the bindings of TasksBoundPerSecond against raw creates of the same %d Tasks (same spec, %d in flight) on the same apiserver before Berth started, then deleted: the ratio of the Averages is the share of the apiserver's Task write rate that placement keeps (the harness's create and one binding write per task make 0.5 its ceiling).",
			tasks, createWorkers),
	}, Figure{
		Metric: PlacementThroughput, Name: "TaskCreatesPerSecond", Unit: "objects/s",
		Values: maps.Clone(taskBase.rate().Values), Baseline: cmRate,
		Note: "the raw Task creates of the baseline above against the ConfigMap creates: what the custom resource costs the apiserver compared with a core object (a ratio of 0.2 is a Task create costing 5 ConfigMap creates).",
	})
	out.figures = append(out.figures, cpuFigures(PlacementThroughput, m.cpu, idle, tasks, tasks, taskBase, "placed")...)
	out.note("tasks were created at %.0f/s while the scheduler bound them", float64(tasks)/lastOf(created).Sub(start).Seconds())
	return out, nil
}

// bindTracker records when each task was first seen bound.
type bindTracker struct {
	want int
	mu   sync.Mutex
	at   map[string]time.Time
	all  chan struct{}
}

func newBindTracker(want int) *bindTracker {
	return &bindTracker{want: want, at: make(map[string]time.Time, want), all: make(chan struct{})}
}

func (b *bindTracker) observe(obj client.Object, at time.Time) {
	t, ok := obj.(*ecsv1alpha1.Task)
	if !ok || t.Spec.ContainerInstance == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, seen := b.at[t.Name]; seen {
		return
	}
	b.at[t.Name] = at
	if len(b.at) == b.want {
		close(b.all)
	}
}

func (b *bindTracker) times() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]time.Time, 0, len(b.at))
	for _, t := range b.at {
		out = append(out, t)
	}
	return out
}

func (b *bindTracker) progress() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%d of %d tasks bound", len(b.at), b.want)
}
