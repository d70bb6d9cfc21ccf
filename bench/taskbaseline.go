package bench

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// taskBaseline is what n raw Task creates cost the apiserver of a run: when they
// started, when each returned, and the CPU of the apiserver, etcd and the harness
// over them. It is the baseline that placement is judged against (GitHub issue 16):
// the custom resource itself, whose create costs the apiserver several times a
// ConfigMap's (schema validation, CEL rules, defaulting, managed fields).
type taskBaseline struct {
	n     int
	start time.Time
	done  []time.Time
	cpu   serverCPU
}

// rate is the baseline as a throughput figure's baseline: creates per second.
func (b taskBaseline) rate() Baseline {
	return Baseline{
		What: fmt.Sprintf("%d raw Task creates (%d in flight) on the same apiserver before Berth started", b.n, createWorkers),
		Unit: "objects/s", Values: Throughput(b.start, b.done, time.Second),
	}
}

// elapsed is the baseline as a duration figure's baseline: seconds for all creates.
func (b taskBaseline) elapsed() Baseline {
	return Baseline{
		What: fmt.Sprintf("%d raw Task creates (%d in flight) on the same apiserver before Berth started", b.n, createWorkers),
		Unit: "s", Values: map[string]float64{"Value": lastOf(b.done).Sub(b.start).Seconds()},
	}
}

// taskBaselineWarmup Tasks are created, unmeasured, before the baseline's.
const taskBaselineWarmup = createWorkers

// rawTaskCreates creates the n Tasks that build makes (after taskBaselineWarmup
// others, build(n) and on, that are not measured), createWorkers at a time, while
// nothing of Berth runs (so nothing reacts to them), then deletes them all, so that
// they do not load what is measured after. It must run before the manager starts.
func (l *lab) rawTaskCreates(ctx context.Context, n int, build func(i int) *ecsv1alpha1.Task) (taskBaseline, error) {
	if l.managerRunning {
		return taskBaseline{}, fmt.Errorf("%s: the raw Task baseline must run before the manager starts", l.name)
	}
	// The first writes of a custom resource pay for what the apiserver builds once
	// (its CEL programs, the watch cache); the measurement comes after the
	// baseline, so the baseline must not pay for them either.
	if _, err := runParallel(ctx, taskBaselineWarmup, createWorkers, func(ctx context.Context, i int) error {
		return l.c.Create(ctx, build(n+i))
	}); err != nil {
		return taskBaseline{}, fmt.Errorf("creating the baseline's first Tasks: %w", err)
	}
	b := taskBaseline{n: n}
	meter := newCPUMeter(l.processes(nil))
	b.start = time.Now()
	done, err := runParallel(ctx, n, createWorkers, func(ctx context.Context, i int) error {
		return l.c.Create(ctx, build(i))
	})
	b.cpu = cpuOf(meter)
	if err != nil {
		return b, fmt.Errorf("creating the baseline's Tasks: %w", err)
	}
	b.done = done
	l.run.logf("%s: baseline: %d Tasks in %s", l.name, n, lastOf(done).Sub(b.start).Round(10*time.Millisecond))
	return b, l.deleteBaselineTasks(ctx, n+taskBaselineWarmup)
}

// deleteBaselineTasks deletes every Task of the namespace with one delete-collection
// (no finalizer holds them: no controller has seen them, and the baseline runs before
// the scenario creates any other) and checks that none is left.
func (l *lab) deleteBaselineTasks(ctx context.Context, n int) error {
	start := time.Now()
	if err := l.c.DeleteAllOf(ctx, &ecsv1alpha1.Task{}, client.InNamespace(benchNamespace)); err != nil {
		return fmt.Errorf("deleting the baseline's Tasks: %w", err)
	}
	var left metav1.PartialObjectMetadataList
	left.SetGroupVersionKind(ecsv1alpha1.GroupVersion.WithKind("TaskList"))
	if err := l.c.List(ctx, &left, client.InNamespace(benchNamespace), client.Limit(1)); err != nil {
		return err
	}
	if len(left.Items) > 0 {
		return fmt.Errorf("%s: baseline Tasks left after their deletion (%s)", l.name, left.Items[0].Name)
	}
	l.run.logf("%s: baseline: %d Tasks deleted in %s", l.name, n, time.Since(start).Round(10*time.Millisecond))
	return nil
}
