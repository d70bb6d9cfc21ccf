package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// bindingWrite is one way of writing a task's binding (or the scheduler's status
// beside it) that BindingPatchCost compares.
type bindingWrite struct {
	name  string
	write func(ctx context.Context, c client.Client, name, instance string) error
}

// bindingWrites are the ways compared; the first is the baseline of the others.
//
//   - MergePatchSpec: a JSON merge patch of spec.containerInstance, as the scheduler
//     binds today.
//   - ApplySpec: a server-side apply of the same field (the scheduler's field
//     manager, force), which keeps a managedFields entry of its own on the task.
//   - MergePatchStatus: a merge patch of the status the scheduler records beside the
//     binding (createdAt, lastStatus PROVISIONING, the resolved revision, Placed).
//   - ApplyStatus: the same status as a server-side apply, as the scheduler writes
//     it today.
var bindingWrites = []bindingWrite{
	{name: "MergePatchSpec", write: mergePatchBinding},
	{name: "ApplySpec", write: func(ctx context.Context, c client.Client, name, instance string) error {
		ac := ecsac.Task(name, benchNamespace).WithSpec(ecsac.TaskSpec().WithContainerInstance(instance))
		return c.Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerScheduler), client.ForceOwnership)
	}},
	{name: "MergePatchStatus", write: func(ctx context.Context, c client.Client, name, instance string) error {
		patch, err := json.Marshal(map[string]any{"status": placedStatus(instance)})
		if err != nil {
			return err
		}
		return c.Status().Patch(ctx, taskRef(name), client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ecsv1alpha1.FieldManagerScheduler))
	}},
	{name: "ApplyStatus", write: func(ctx context.Context, c client.Client, name, instance string) error {
		st := placedStatus(instance)
		cond := st.Conditions[0]
		ac := ecsac.Task(name, benchNamespace).WithStatus(ecsac.TaskStatus().
			WithCreatedAt(*st.CreatedAt).WithLastStatus(st.LastStatus).WithTaskDefinitionRevision(st.TaskDefinitionRevision).
			WithConditions(metav1ac.Condition().WithType(cond.Type).WithStatus(cond.Status).WithObservedGeneration(cond.ObservedGeneration).
				WithLastTransitionTime(cond.LastTransitionTime).WithReason(cond.Reason).WithMessage(cond.Message)))
		return c.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerScheduler), client.ForceOwnership)
	}},
}

// mergePatchBinding binds task name to instance as the scheduler does a task that
// needs no GPUs: a JSON merge patch of spec.containerInstance (the scheduler's
// bindingPatch adds only gpuAssignments and, for a family reference, the resolved
// revision's annotation).
func mergePatchBinding(ctx context.Context, c client.Client, name, instance string) error {
	patch := fmt.Appendf(nil, `{"spec":{"containerInstance":%q}}`, instance)
	return c.Patch(ctx, taskRef(name), client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ecsv1alpha1.FieldManagerScheduler))
}

func taskRef(name string) *ecsv1alpha1.Task {
	return &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: benchNamespace, Name: name}}
}

// placedStatus is the status the scheduler records when it places a task of a
// family reference.
func placedStatus(instance string) ecsv1alpha1.TaskStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	return ecsv1alpha1.TaskStatus{
		CreatedAt: &now, LastStatus: ecsv1alpha1.TaskProvisioning, TaskDefinitionRevision: 1,
		Conditions: []metav1.Condition{{
			Type: ecsv1alpha1.TaskConditionPlaced, Status: metav1.ConditionTrue, ObservedGeneration: 2,
			LastTransitionTime: now, Reason: ecsv1alpha1.ReasonPlaced, Message: "Placed on container instance " + instance,
		}},
	}
}

// bindingRounds splits each way's writes into rounds, the ways taking turns (in a
// rotating order) round by round, so that the machine's noise and the apiserver's
// growing store fall on every way alike.
const bindingRounds = 4

// bindingWarmup writes of each way, unmeasured, come first: the first server-side
// apply of a kind builds the apiserver's type converter.
const bindingWarmup = 8

// runBindingPatch measures BindingPatchCost: the apiserver's and etcd's CPU seconds
// and the wall time of n binding writes of each way of bindingWrites, n at a time
// as the scheduler's workers would, each on a Task of its own that nothing else
// touches (no manager runs), created for it as PlacementThroughput creates its
// tasks. The baseline of MergePatchSpec is the creates of n of those Tasks; the
// baseline of the others is MergePatchSpec.
func runBindingPatch(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	n := r.size.n(2000, 40)
	perWay := bindingWarmup + n
	out := &outcome{}
	create := newCPUMeter(l.processes(nil))
	createStart := time.Now()
	created, err := runParallel(ctx, perWay*len(bindingWrites), createWorkers, func(ctx context.Context, i int) error {
		return l.c.Create(ctx, testobj.Task(benchNamespace, bindingTaskName(i/perWay, i%perWay), "app").Cluster("binding").Obj())
	})
	createCPU := cpuOf(create)
	if err != nil {
		return nil, fmt.Errorf("creating tasks: %w", err)
	}
	createWall := lastOf(created).Sub(createStart).Seconds()
	r.logf("bindingpatch: %d tasks created in %.2fs", len(created), createWall)

	for w, way := range bindingWrites {
		if _, err := runParallel(ctx, bindingWarmup, createWorkers, func(ctx context.Context, i int) error {
			return way.write(ctx, l.c, bindingTaskName(w, n+i), instanceFor(i))
		}); err != nil {
			return nil, fmt.Errorf("%s (warm-up): %w", way.name, err)
		}
	}
	used, err := runBindingRounds(ctx, l, n)
	if err != nil {
		return nil, err
	}
	// Scale the creates' cost to n writes: creates of len(bindingWrites) × perWay tasks.
	scale := float64(n) / float64(len(created))
	createValues := map[string]float64{
		"Value": createCPU.apiserver * scale, "etcd": createCPU.etcd * scale, "wall s": createWall * scale,
	}
	mergeValues := used[0].values()
	for w, way := range bindingWrites {
		base := Baseline{What: fmt.Sprintf("%d merge patches of spec.containerInstance (MergePatchSpec) in the same rounds", n), Unit: "CPU s", Values: mergeValues}
		if w == 0 {
			base = Baseline{What: fmt.Sprintf("%d creates of the same Tasks (%d in flight) before the writes, scaled from %d", n, createWorkers, len(created)),
				Unit: "CPU s", Values: createValues}
		}
		out.figures = append(out.figures, Figure{
			Metric: BindingPatchCost, Name: way.name, Unit: "CPU s", Values: used[w].values(), Baseline: base,
			Note: fmt.Sprintf("kube-apiserver CPU seconds (Value), etcd's and the wall time of %d writes (%s), %d in flight, in %d rounds taking turns with the other ways, each on a Task of its own.",
				n, way.name, createWorkers, bindingRounds),
		})
		if size, fields, err := taskSize(ctx, l.c, bindingTaskName(w, 0)); err == nil {
			out.note("%s: a written Task is %d bytes of JSON, %d of them managedFields", way.name, size, fields)
		}
	}
	return out, nil
}

// bindingCost is what one way's writes cost over every round.
type bindingCost struct{ apiserver, etcd, wall float64 }

func (b bindingCost) values() map[string]float64 {
	return map[string]float64{"Value": b.apiserver, "etcd": b.etcd, "wall s": b.wall}
}

// runBindingRounds runs the writes: n of each way, in bindingRounds rounds.
func runBindingRounds(ctx context.Context, l *lab, n int) ([]bindingCost, error) {
	names := make([]string, len(bindingWrites))
	for w, way := range bindingWrites {
		names[w] = way.name
	}
	return runWayRounds(ctx, l, n, bindingRounds, names, func(ctx context.Context, w, i int) error {
		return bindingWrites[w].write(ctx, l.c, bindingTaskName(w, i), instanceFor(i))
	})
}

// runWayRounds runs n writes of each of the ways named, write(w, i) being the i-th
// of way w, createWorkers at a time, in rounds in which the ways take turns in a
// rotating order, so that the machine's noise and the apiserver's growing store
// fall on every way alike. It returns what each way cost.
func runWayRounds(ctx context.Context, l *lab, n, rounds int, names []string, write func(ctx context.Context, w, i int) error) ([]bindingCost, error) {
	used := make([]bindingCost, len(names))
	per := (n + rounds - 1) / rounds
	for round := range rounds {
		from, to := round*per, min(n, (round+1)*per)
		for k := range names {
			w := (k + round) % len(names)
			meter := newCPUMeter(l.processes(nil))
			_, err := runParallel(ctx, to-from, createWorkers, func(ctx context.Context, i int) error {
				return write(ctx, w, from+i)
			})
			c := cpuOf(meter)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", names[w], err)
			}
			used[w].apiserver += c.apiserver
			used[w].etcd += c.etcd
			used[w].wall += c.wall
		}
	}
	return used, nil
}

// bindingTaskName is the i-th task of way w.
func bindingTaskName(w, i int) string { return fmt.Sprintf("b%d-%05d", w, i) }

// instanceFor is the instance task i is bound to: hollow instance names, 1,000 of them.
func instanceFor(i int) string { return fmt.Sprintf("p-%04d", i%1000) }

// taskSize is the size of a Task as JSON, and of its managedFields.
func taskSize(ctx context.Context, c client.Client, name string) (int, int, error) {
	var t ecsv1alpha1.Task
	if err := c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, &t); err != nil {
		return 0, 0, err
	}
	all, err := json.Marshal(&t)
	if err != nil {
		return 0, 0, err
	}
	fields, err := json.Marshal(t.ManagedFields)
	return len(all), len(fields), err
}
