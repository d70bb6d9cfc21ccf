package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/engine"
	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TaskWriteCost answers where the apiserver's time per Task write goes (GitHub issue
// 16: CEL validation, managed fields, the size of what is written), by measuring a
// task's writes (its create, the scheduler's binding of a standalone task, the
// agent's RUNNING report) and variants that each take one cost away:
//
//   - CreateWithoutCEL, ReportWithoutCEL: the same writes on a copy of the Task CRD
//     without its x-kubernetes-validations (what the CEL rules cost);
//   - ReportMergePatch: the same report as a JSON merge patch, which the apiserver
//     does not merge field by field as it does an apply (what server-side apply
//     costs over the cheapest patch);
//   - ReportLastStatusOnly: an apply of lastStatus alone (what any status write
//     costs, whatever it carries).
//
// Create, the service controller's create of a placed task, is the baseline of them
// all. There is no conversion to measure: Berth's CRDs serve one version.
//
// taskWriteWays are the ways, in the order of their figures; way 0 is the baseline.
var taskWriteWays = []string{"Create", "CreateWithoutCEL", "Bind", "Report", "ReportWithoutCEL", "ReportMergePatch", "ReportLastStatusOnly"}

const (
	wayCreate = iota
	wayCreateWithoutCEL
	wayBind
	wayReport
	wayReportWithoutCEL
	wayReportMergePatch
	wayReportLastStatusOnly
)

// taskWriteRounds are more than BindingPatchCost's: with seven ways, a round of each
// is a few seconds, and more of them keep a way's figure from resting on a few
// seconds of a shared machine.
const taskWriteRounds = 10

// withoutCELGroup is the API group of the copy of the Task CRD without CEL rules.
const withoutCELGroup = "nocel.bench.berth.dev"

// withoutCELTask is the GroupVersionKind of a Task of that copy.
var withoutCELTask = schema.GroupVersionKind{Group: withoutCELGroup, Version: ecsv1alpha1.GroupVersion.Version, Kind: "Task"}

// newWithoutCELTask is an empty Task of the copy.
func newWithoutCELTask() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(withoutCELTask)
	return u
}

// withoutCEL says whether way w writes to the copy without CEL rules.
func withoutCEL(w int) bool { return w == wayCreateWithoutCEL || w == wayReportWithoutCEL }

// runTaskWrite measures TaskWriteCost: n writes of each way, createWorkers in
// flight, each on a Task of its own, no manager running, in taskWriteRounds rounds
// taking turns (as BindingPatchCost). The bindings and reports go to Tasks created
// for them before the rounds.
func runTaskWrite(ctx context.Context, r *runner, l *lab) (*outcome, error) {
	n := r.size.n(2000, 40)
	if err := installTaskCRDWithoutCEL(ctx, l); err != nil {
		return nil, err
	}
	started := metav1.NewTime(time.Now().Truncate(time.Second))
	tw := taskWriter{c: l.c, started: started}

	// The tasks to bind and report on, and the warm-up writes of every way (the
	// first writes of a resource build its CEL programs and type converter):
	// unmeasured.
	perWay := n + bindingWarmup
	written := []int{wayBind, wayReport, wayReportWithoutCEL, wayReportMergePatch, wayReportLastStatusOnly}
	if _, err := runParallel(ctx, perWay*len(written), createWorkers, func(ctx context.Context, i int) error {
		w := written[i/perWay]
		return tw.create(ctx, w, i%perWay)
	}); err != nil {
		return nil, fmt.Errorf("creating the tasks to bind and report on: %w", err)
	}
	for w := range taskWriteWays {
		if _, err := runParallel(ctx, bindingWarmup, createWorkers, func(ctx context.Context, i int) error {
			return tw.write(ctx, w, n+i)
		}); err != nil {
			return nil, fmt.Errorf("%s (warm-up): %w", taskWriteWays[w], err)
		}
	}
	used, err := runWayRounds(ctx, l, n, taskWriteRounds, taskWriteWays, tw.write)
	if err != nil {
		return nil, err
	}

	out := &outcome{}
	create := used[wayCreate]
	base := Baseline{What: fmt.Sprintf("%d creates of placed Tasks shaped as the service's (Create), in the same rounds", n),
		Unit: "CPU s", Values: create.values()}
	out.note("Create: %.2f ms of kube-apiserver CPU per write (%.2f ms etcd)", create.apiserver/float64(n)*1000, create.etcd/float64(n)*1000)
	for w := 1; w < len(taskWriteWays); w++ {
		out.figures = append(out.figures, Figure{
			Metric: TaskWriteCost, Name: taskWriteWays[w], Unit: "CPU s", Values: used[w].values(), Baseline: base,
			Note: fmt.Sprintf("kube-apiserver CPU seconds (Value), etcd's and the wall time of %d writes (%s), %d in flight, in %d rounds taking turns with the other ways, each on a Task of its own; %.2f ms of apiserver CPU per write.",
				n, taskWriteWays[w], createWorkers, taskWriteRounds, used[w].apiserver/float64(n)*1000),
		})
	}
	placed := used[wayCreate].apiserver + used[wayBind].apiserver + used[wayReport].apiserver
	out.note("A standalone task placed and reported (Create, Bind, Report) costs %.2f creates' worth of apiserver CPU, so placement can keep at most %.2f of the raw Task create rate; 250 tasks/s would take %.2f cores of apiserver CPU at this run's cost per write",
		placed/create.apiserver, create.apiserver/placed, 250*placed/float64(n))
	for _, w := range []int{wayCreate, wayBind, wayReport, wayReportMergePatch, wayReportLastStatusOnly} {
		if size, fields, err := taskSize(ctx, l.c, taskWriteName(w, 0)); err == nil {
			out.note("%s: the written Task is %d bytes of JSON, %d of them managedFields", taskWriteWays[w], size, fields)
		}
	}
	return out, nil
}

// installTaskCRDWithoutCEL installs a copy of the lab's Task CRD in withoutCELGroup,
// its schema stripped of every x-kubernetes-validations rule and nothing else, and
// waits until it is served.
func installTaskCRDWithoutCEL(ctx context.Context, l *lab) error {
	scheme := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(l.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctx, client.ObjectKey{Name: "tasks." + ecsv1alpha1.GroupVersion.Group}, &crd); err != nil {
		return fmt.Errorf("reading the Task CRD: %w", err)
	}
	cp := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "tasks." + withoutCELGroup}, Spec: crd.Spec}
	cp.Spec.Group = withoutCELGroup
	rules := 0
	for i := range cp.Spec.Versions {
		if s := cp.Spec.Versions[i].Schema; s != nil && s.OpenAPIV3Schema != nil {
			rules += stripValidations(s.OpenAPIV3Schema)
		}
	}
	if rules == 0 {
		return fmt.Errorf("the Task CRD has no x-kubernetes-validations: TaskWriteCost's CEL ways would measure nothing")
	}
	if err := c.Create(ctx, cp); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("installing the Task CRD without CEL rules: %w", err)
	}
	l.run.logf("taskwrite: Task CRD copied without its %d CEL rules", rules)
	return l.poll(ctx, time.Minute, 200*time.Millisecond, "the Task CRD without CEL rules to be served", func() (bool, string, error) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(withoutCELTask.GroupVersion().WithKind("TaskList"))
		err := l.c.List(ctx, list, client.InNamespace(benchNamespace), client.Limit(1))
		return err == nil, fmt.Sprint(err), nil
	})
}

// stripValidations removes the x-kubernetes-validations of s and of every schema
// under it, and returns how many rules it removed.
func stripValidations(s *apiextensionsv1.JSONSchemaProps) int {
	n := len(s.XValidations)
	s.XValidations = nil
	for k, p := range s.Properties {
		n += stripValidations(&p)
		s.Properties[k] = p
	}
	if s.Items != nil && s.Items.Schema != nil {
		n += stripValidations(s.Items.Schema)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		n += stripValidations(s.AdditionalProperties.Schema)
	}
	return n
}

// taskWriter makes TaskWriteCost's writes.
type taskWriter struct {
	c       client.Client
	started metav1.Time
}

// taskWriteName is the i-th task of way w.
func taskWriteName(w, i int) string { return fmt.Sprintf("w%d-%05d", w, i) }

// task is the i-th task of way w as the service controller creates it: placed,
// shaped as the service's; for Bind, not placed yet.
func (tw taskWriter) task(w, i int) *ecsv1alpha1.Task {
	t := serviceLikeTask(i, "writes", "p", 1000)
	t.Name = taskWriteName(w, i)
	if w == wayBind {
		t.Spec.ContainerInstance = ""
	}
	return t
}

// create creates the i-th task of way w, on the copy without CEL rules for those
// ways.
func (tw taskWriter) create(ctx context.Context, w, i int) error {
	t := tw.task(w, i)
	if !withoutCEL(w) {
		return tw.c.Create(ctx, t)
	}
	u, err := toUnstructured(t)
	if err != nil {
		return err
	}
	return tw.c.Create(ctx, u)
}

// write is the i-th write of way w.
func (tw taskWriter) write(ctx context.Context, w, i int) error {
	name := taskWriteName(w, i)
	switch w {
	case wayCreate, wayCreateWithoutCEL:
		return tw.create(ctx, w, i)
	case wayBind:
		return mergePatchBinding(ctx, tw.c, name, instanceFor(i))
	case wayReportMergePatch:
		patch, err := json.Marshal(map[string]any{"status": tw.report(w, i)})
		if err != nil {
			return err
		}
		return tw.c.Status().Patch(ctx, taskRef(name), client.RawPatch(types.MergePatchType, patch),
			client.FieldOwner(ecsv1alpha1.FieldManagerAgent))
	}
	st := tw.report(w, i)
	if w == wayReportLastStatusOnly {
		st = ecsac.TaskStatus().WithLastStatus(ecsv1alpha1.TaskRunning)
	}
	var ac runtime.ApplyConfiguration = ecsac.Task(name, benchNamespace).WithStatus(st)
	if withoutCEL(w) {
		u, err := toUnstructured(ac)
		if err != nil {
			return err
		}
		ac = client.ApplyConfigurationFromUnstructured(u)
	}
	return tw.c.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerAgent), client.ForceOwnership)
}

// report is the status the agent applies when the i-th task of way w starts
// running: agent.StatusFromReport of an engine report of one container, pulled and
// started.
func (tw taskWriter) report(w, i int) *ecsac.TaskStatusApplyConfiguration {
	t := tw.task(w, i)
	t.Generation, t.CreationTimestamp = 1, tw.started
	at := tw.started.Time
	return agent.StatusFromReport(t, engine.Report{
		Task: types.NamespacedName{Namespace: t.Namespace, Name: t.Name}, LastStatus: ecsv1alpha1.TaskRunning,
		HealthStatus: ecsv1alpha1.HealthUnknown, PullStartedAt: &at, PullStoppedAt: &at, StartedAt: &at,
		Containers: []ecsv1alpha1.ContainerStatus{{
			Name: "web", LastStatus: ecsv1alpha1.ContainerRunning, HealthStatus: ecsv1alpha1.HealthUnknown,
			RuntimeID:   fmt.Sprintf("%064x", i),
			ImageDigest: "sha256:" + strings.Repeat("5e", 32),
		}},
	})
}

// toUnstructured is obj as an object of the copy of the Task CRD without CEL rules.
func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(withoutCELTask)
	return u, nil
}
