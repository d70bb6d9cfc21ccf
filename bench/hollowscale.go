package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// hollowLeaseInterval is `berth hollow`'s default Lease renewal interval, which the
// benchmark keeps: a real agent's.
const hollowLeaseInterval = 10 * time.Second

// runHollowScale measures HollowScale: one `berth hollow` process simulating 5,000
// instances that run 50,000 tasks and renew their Leases every 10 s, as a real agent
// does. The tasks are bound at creation (StartTask), round robin: the scheduler is
// measured elsewhere, and this halves the writes needed to get there. The manager
// only registers the task definition and is stopped before the hollow starts: what
// the hollow does does not depend on it, and on 2 cores its reconciles (and the
// watches it adds) would slow the setup down by minutes. Figures: the hollow
// process's RSS and CPU in steady state, and the Lease renewals per second it
// achieves. Baselines: the kube-apiserver's RSS and CPU at the same time (it holds
// the same objects and serves the same writes), and the renewals the instances
// should make (one per instance per 10 s).
func runHollowScale(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	instances, tasks := r.size.n(5000, 50), r.size.n(50000, 500)
	const cluster, family, prefix = "hollow", "hs", "h"
	stopManager, err := l.startStoppableManager(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.setupCluster(ctx, cluster, smallTaskDefinition(benchNamespace, family, "bench/hs:1")); err != nil {
		return nil, err
	}
	if err := stopManager(); err != nil {
		return nil, fmt.Errorf("stopping the manager: %w", err)
	}
	start := time.Now()
	hollow, err := l.startHollow(hollowConfig{cluster: cluster, prefix: prefix, instances: instances})
	if err != nil {
		return nil, err
	}
	if err := l.waitRegistered(ctx, cluster, instances, 2*time.Minute+time.Duration(instances)*40*time.Millisecond, hollow); err != nil {
		return nil, err
	}
	r.logf("hollowscale: %d instances registered in %s", instances, time.Since(start).Round(100*time.Millisecond))

	running := newRunningCounter(tasks)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := watchObjects(wctx, l.c, &ecsv1alpha1.TaskList{}, &client.ListOptions{Namespace: benchNamespace}, false, running.observe); err != nil {
		return nil, err
	}
	start = time.Now()
	if _, err := runParallel(ctx, tasks, createWorkers, func(ctx context.Context, i int) error {
		t := testobj.Task(benchNamespace, fmt.Sprintf("h-%05d", i), family+":1").Cluster(cluster).
			On(fmt.Sprintf("%s-%04d", prefix, i%instances)).Obj()
		return l.c.Create(ctx, t)
	}); err != nil {
		return nil, fmt.Errorf("creating tasks: %w", err)
	}
	r.logf("hollowscale: %d tasks created in %s", tasks, time.Since(start).Round(100*time.Millisecond))
	if err := waitSignal(ctx, running.all, 2*time.Minute+time.Duration(tasks)*20*time.Millisecond, running.progress); err != nil {
		return nil, err
	}
	stopWatch()
	r.logf("hollowscale: %d tasks RUNNING after %s", tasks, time.Since(start).Round(100*time.Millisecond))
	// Steady state: the instance status writes that follow 50,000 task starts
	// (batched per instance, a few workers) have drained; they share each
	// instance's API lock with its Lease renewals.
	quiet, err := l.waitQuiet(ctx, "containerinstances/status", max(1, float64(instances)/500), r.size.d(45*time.Second, 3*time.Second))
	if err != nil {
		return nil, err
	}
	r.logf("hollowscale: instance status writes settled after %s", quiet.Round(100*time.Millisecond))

	// Three Lease intervals: every instance renews three times.
	window := r.size.d(3*hollowLeaseInterval, 3*time.Second)
	before, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	meter := newCPUMeter(l.processes(map[string]*child{"berth hollow": hollow}))
	m := l.startMeasurement(ctx, HollowScale, map[string]*child{"berth hollow": hollow})
	time.Sleep(window)
	cores := meter.cores()
	contexts := m.stop(ctx)
	after, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return nil, err
	}
	hollowRSS, err := statusKiB(hollow.pid(), "VmRSS")
	if err != nil {
		return nil, err
	}
	apiRSS, err := statusKiB(l.apiserverPID, "VmRSS")
	if err != nil {
		return nil, err
	}
	renewals := (after["leases"] - before["leases"]) / window.Seconds()
	out := &outcome{contexts: contexts}
	out.note("instance status writes settled %s after the last task ran; writes during the steady-state window: %s",
		quiet.Round(100*time.Millisecond), describeCounts(diff(before, after)))
	out.figures = []Figure{
		{Metric: HollowScale, Name: "RSS", Unit: "MiB",
			Values: map[string]float64{"Value": mib(hollowRSS), "KiBPerInstance": float64(hollowRSS) / float64(instances),
				"KiBPerTask": float64(hollowRSS) / float64(tasks)},
			Baseline: Baseline{What: "kube-apiserver's RSS at the same moment, holding the same instances, Leases and tasks", Unit: "MiB",
				Values: map[string]float64{"Value": mib(apiRSS)}},
			Note: fmt.Sprintf("VmRSS of the `berth hollow` process simulating %d instances with %d RUNNING tasks (bound at creation, round robin).", instances, tasks)},
		{Metric: HollowScale, Name: "CPUSecondsPerMinute", Unit: "CPU-s/min",
			Values:   map[string]float64{"Value": cores["berth hollow"] * 60},
			Baseline: Baseline{What: "kube-apiserver's CPU over the same window", Unit: "CPU-s/min", Values: map[string]float64{"Value": cores["kube-apiserver"] * 60}},
			Note:     fmt.Sprintf("user+system CPU of the hollow process over %s of steady state: Lease renewals and nothing else to do.", window)},
		{Metric: HollowScale, Name: "LeaseRenewalsPerSecond", Unit: "renewals/s",
			Values: map[string]float64{"Value": renewals},
			Baseline: Baseline{What: fmt.Sprintf("one renewal per instance every %s", hollowLeaseInterval), Unit: "renewals/s",
				Values: map[string]float64{"Value": float64(instances) / hollowLeaseInterval.Seconds()}},
			Note: "Lease writes the apiserver counted (apiserver_request_total) over the window: a ratio near 1 means the heartbeats keep up."},
	}
	return out, nil
}

// waitRegistered waits until n instances of cluster have registered their resources
// (the agent's side of registration; "connected" is the manager's).
func (l *lab) waitRegistered(ctx context.Context, cluster string, n int, timeout time.Duration, hollow *child) error {
	return l.poll(ctx, timeout, time.Second, fmt.Sprintf("%d registered instances in %s", n, cluster), func() (bool, string, error) {
		if err := hollow.exited(); err != nil {
			return false, "", err
		}
		var list ecsv1alpha1.ContainerInstanceList
		if err := l.c.List(ctx, &list, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
			return false, "", err
		}
		registered := 0
		for _, ci := range list.Items {
			if ci.Spec.Cluster == cluster && ci.Status.RegisteredResources != nil {
				registered++
			}
		}
		return registered >= n, fmt.Sprintf("%d of %d registered", registered, n), nil
	})
}

// runningCounter counts the tasks seen RUNNING through a watch.
type runningCounter struct {
	want    int
	mu      sync.Mutex
	running map[string]bool
	all     chan struct{}
}

func newRunningCounter(want int) *runningCounter {
	return &runningCounter{want: want, running: make(map[string]bool, want), all: make(chan struct{})}
}

func (c *runningCounter) observe(obj client.Object, _ time.Time) {
	t, ok := obj.(*ecsv1alpha1.Task)
	if !ok || t.Status.LastStatus != ecsv1alpha1.TaskRunning {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[t.Name] {
		return
	}
	c.running[t.Name] = true
	if len(c.running) == c.want {
		close(c.all)
	}
}

func (c *runningCounter) progress() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%d of %d tasks RUNNING", len(c.running), c.want)
}

// waitQuiet waits until the apiserver counts at most perSecond writes of resource per
// second (over 2 s), or until limit; it returns how long it waited.
func (l *lab) waitQuiet(ctx context.Context, resource string, perSecond float64, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	const step = 2 * time.Second
	prev, err := mutatingRequests(ctx, l.env.Config)
	if err != nil {
		return 0, err
	}
	for time.Since(start) < limit {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(step):
		}
		cur, err := mutatingRequests(ctx, l.env.Config)
		if err != nil {
			return 0, err
		}
		if (cur[resource]-prev[resource])/step.Seconds() <= perSecond {
			break
		}
		prev = cur
	}
	return time.Since(start), nil
}
