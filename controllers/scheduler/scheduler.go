// Package scheduler binds unplaced Tasks to ContainerInstances: the manager's side of
// ECS placement. It keeps the placement engine's in-memory view current from informer
// events (instances, and every task bound anywhere, assumed at once), places one task
// per reconcile, and binds it by setting spec.containerInstance. Standalone tasks
// (RunTask) and service tasks go through the same path. A task that cannot be placed
// waits: events of its cluster wake it, and a clock retries it (wakeup.go).
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
	"github.com/berthdev/berth/internal/wakeup"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;taskdefinitions;clusters,verbs=get;list;watch

// DefaultWorkers is how many tasks a Scheduler places in parallel when
// MaxConcurrentReconciles is zero. It is the manager's default too
// (controllers.DefaultSchedulerWorkers, where the measurements behind it are).
const DefaultWorkers = 64

// Scheduler places tasks.
type Scheduler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Resolver *revision.Resolver
	Engine   *placement.Engine
	// MaxConcurrentReconciles is the number of tasks placed in parallel
	// (DefaultWorkers when zero). The engine's assume cache keeps parallel placements
	// from overcommitting.
	MaxConcurrentReconciles int

	// retryBase and retryMax bound the clock-driven retry of waiting tasks
	// (unplacedRetryBase and unplacedRetryMax when zero; tests shorten them).
	retryBase, retryMax time.Duration

	mu sync.Mutex
	// unplaced holds, per cluster, the tasks waiting for placement, to wake when an
	// instance joins or resources free up.
	unplaced map[string]map[types.NamespacedName]bool
	// attempts counts, per waiting task, the attempts that left it waiting: its
	// clock-driven retry backs off with them.
	attempts map[types.NamespacedName]int
	wakeups  wakeup.Source
	synced   []toolscache.ResourceEventHandlerRegistration
	// placed batches the Placed Events (placedevents.go).
	placed placedBatch
	// roomListeners are called when room may have appeared in a cluster (OnRoom).
	roomListeners []func(cluster string)
}

// SetupWithManager feeds the engine from the manager's informers and registers the
// placement controller.
func (s *Scheduler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if s.MaxConcurrentReconciles == 0 {
		s.MaxConcurrentReconciles = DefaultWorkers
	}
	s.wakeups.Name = "scheduler wake-ups"

	instances, err := mgr.GetCache().GetInformer(ctx, &ecsv1alpha1.ContainerInstance{})
	if err != nil {
		return err
	}
	reg, err := instances.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.upsertInstance(o) },
		UpdateFunc: func(_, o any) { s.upsertInstance(o) },
		DeleteFunc: func(o any) { s.removeInstance(o) },
	})
	if err != nil {
		return err
	}
	s.synced = append(s.synced, reg)
	tasks, err := mgr.GetCache().GetInformer(ctx, &ecsv1alpha1.Task{})
	if err != nil {
		return err
	}
	reg, err = tasks.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { s.observeTask(ctx, o) },
		UpdateFunc: func(_, o any) { s.observeTask(ctx, o) },
		DeleteFunc: func(o any) { s.forgetTask(o) },
	})
	if err != nil {
		return err
	}
	s.synced = append(s.synced, reg)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { return s.placed.run(ctx, s.Recorder) })); err != nil {
		return err
	}

	return ctrl.NewControllerManagedBy(mgr).
		Named("scheduler").
		For(&ecsv1alpha1.Task{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return needsPlacement(o.(*ecsv1alpha1.Task))
		}))).
		WatchesRawSource(&s.wakeups).
		Watches(&ecsv1alpha1.TaskDefinition{}, handler.EnqueueRequestsFromMapFunc(s.unplacedOfFamily),
			builder.WithPredicates(revisionsChanged())).
		Watches(&ecsv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(s.unplacedOfCluster),
			builder.WithPredicates(containerPolicyChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: s.MaxConcurrentReconciles}).
		Complete(s)
}

// needsPlacement: not bound, not stopped, not asked to stop.
func needsPlacement(t *ecsv1alpha1.Task) bool {
	return t.Spec.ContainerInstance == "" && t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped &&
		t.Status.LastStatus != ecsv1alpha1.TaskStopped && t.DeletionTimestamp.IsZero()
}

// Reconcile places one task, or leaves it waiting with a retry.
func (s *Scheduler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !s.Synced() {
		// Placing before every bound task is assumed could overcommit an instance.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	var task ecsv1alpha1.Task
	if err := s.Client.Get(ctx, req.NamespacedName, &task); err != nil {
		s.settle(req.NamespacedName, "")
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !needsPlacement(&task) {
		s.settle(req.NamespacedName, task.Spec.Cluster)
		return ctrl.Result{}, nil
	}
	if _, ok := s.Engine.Assumed(keyOf(&task)); ok {
		// Assumed but not bound in the cache: this scheduler bound it moments ago (a
		// failed binding is forgotten). Binding again would be a wasted write.
		return ctrl.Result{}, nil
	}
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("task", klog.KObj(&task)))
	// Registered as waiting before trying, so that a change of the cluster between a
	// failed attempt and its bookkeeping still retries it (no lost wake-up).
	s.wait(req.NamespacedName, task.Spec.Cluster)
	waiting, err := s.place(ctx, &task)
	if err != nil {
		return ctrl.Result{}, err
	}
	if waiting {
		return ctrl.Result{RequeueAfter: s.retryAfter(req.NamespacedName)}, nil
	}
	s.settle(req.NamespacedName, task.Spec.Cluster)
	return ctrl.Result{}, nil
}

// place binds the task to an instance, or reports that it keeps waiting (with why on
// its Placed condition, except while its TaskDefinition is being registered).
func (s *Scheduler) place(ctx context.Context, task *ecsv1alpha1.Task) (waiting bool, err error) {
	resolved, err := s.resolve(ctx, task)
	if err != nil {
		return true, s.unresolved(ctx, task, err)
	}
	refused, err := s.policyViolation(ctx, task, resolved)
	if err != nil {
		return true, err
	}
	if refused != "" {
		return true, s.markUnplaced(ctx, task, resolved, ecsv1alpha1.ReasonContainerPolicyViolation, refused)
	}
	req, err := s.request(task, resolved)
	if err != nil {
		return true, s.markUnplaced(ctx, task, resolved, ecsv1alpha1.ReasonInvalidSpec, err.Error())
	}
	decision, err := s.Engine.Place(req)
	var unplaceable *placement.UnplaceableError
	if errors.As(err, &unplaceable) {
		return true, s.markUnplaced(ctx, task, resolved, ecsv1alpha1.ReasonUnplaceable, unplaceable.Error())
	}
	if err != nil {
		return true, err
	}
	if err := s.bind(ctx, task, resolved, decision); err != nil {
		s.Engine.Forget(req.Key)
		if apierrors.IsNotFound(err) {
			return false, nil // deleted meanwhile: nothing waits
		}
		return true, err
	}
	ctrl.LoggerFrom(ctx).V(1).Info("placed task", "instance", decision.Instance, "feasible", decision.Feasible)
	return false, nil
}

// retryAfter counts one more attempt that left a task waiting and returns when to
// try it again if no event does first.
func (s *Scheduler) retryAfter(key types.NamespacedName) time.Duration {
	base, limit := s.retryBase, s.retryMax
	if base == 0 {
		base = unplacedRetryBase
	}
	if limit == 0 {
		limit = unplacedRetryMax
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[types.NamespacedName]int{}
	}
	n := s.attempts[key]
	s.attempts[key] = n + 1
	return retryDelay(n, base, limit)
}

// unresolved handles a task whose revision does not resolve: it waits quietly for a
// TaskDefinition that is being registered, reports a missing revision or an invalid
// reference as Placed=False, and returns any other error for a retry.
func (s *Scheduler) unresolved(ctx context.Context, t *ecsv1alpha1.Task, err error) error {
	if revision.IsNotFound(err) && revision.AwaitingRegistration(ctx, s.Client, t.Namespace,
		index.Family(t.Spec.TaskDefinition), t.CreationTimestamp.Time, time.Now()) {
		// Applied together with its TaskDefinition, or just before it: the
		// TaskDefinition's status write that registers the revision requeues the task
		// (unplacedOfFamily), so neither a Placed=False nor a Warning is due.
		ctrl.LoggerFrom(ctx).V(1).Info("waiting for the task definition to be registered", "reason", err.Error())
		return nil
	}
	var invalid *invalidTaskError
	if revision.IsNotFound(err) || errors.As(err, &invalid) {
		reason := ecsv1alpha1.ReasonRevisionNotFound
		if invalid != nil {
			reason = ecsv1alpha1.ReasonInvalidSpec
		}
		return s.markUnplaced(ctx, t, nil, reason, err.Error())
	}
	return err
}

type invalidTaskError struct{ msg string }

func (e *invalidTaskError) Error() string { return e.msg }

// resolve finds the revision a task runs: the one already resolved in its status, or
// its reference's.
func (s *Scheduler) resolve(ctx context.Context, t *ecsv1alpha1.Task) (*revision.Resolved, error) {
	ref, err := revision.TaskRef(t)
	if err != nil {
		return nil, &invalidTaskError{msg: "spec.taskDefinition: " + err.Error()}
	}
	return s.Resolver.Resolve(ctx, t.Namespace, ref)
}

// request builds the placement request of a task.
func (s *Scheduler) request(t *ecsv1alpha1.Task, res *revision.Resolved) (placement.Request, error) {
	req, err := placement.RequestFor(keyOf(t), t.Spec.Group, res.Spec, t.Spec.Overrides)
	if err != nil {
		return req, &invalidTaskError{msg: fmt.Sprintf("task definition %s: %v", res.Ref, err)}
	}
	taskConstraints, err := placement.ParseConstraints(t.Spec.PlacementConstraints)
	if err != nil {
		return req, &invalidTaskError{msg: "spec." + err.Error()}
	}
	req.Cluster = t.Spec.Cluster
	req.Constraints = append(req.Constraints, taskConstraints...)
	req.Strategies = t.Spec.PlacementStrategy
	return req, nil
}

func keyOf(t *ecsv1alpha1.Task) string { return t.Namespace + "/" + t.Name }

// bind binds the task in one write: spec.containerInstance, the GPUs it is given and,
// for a `family` reference, the revision it resolved to (an annotation, as status is
// another write). The agent reports the revision and the Placed condition in its
// first status write, which it makes anyway.
func (s *Scheduler) bind(ctx context.Context, t *ecsv1alpha1.Task, res *revision.Resolved, decision placement.Decision) error {
	patch, err := bindingPatch(t, res, decision)
	if err != nil {
		return err
	}
	target := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}}
	if err := s.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ecsv1alpha1.FieldManagerScheduler)); err != nil {
		return fmt.Errorf("binding to %s: %w", decision.Instance, err)
	}
	s.placed.add(t.Spec.Cluster, decision.Instance)
	return nil
}

// bindingPatch is the binding: spec.containerInstance and, for a task that needs
// GPUs, spec.gpuAssignments, in one write so that the agent never sees the task
// bound without its GPUs, and the resolved revision of a family reference. Only these
// fields are sent. The schema makes the spec fields immutable once set, so if another
// manager bound the task first this fails instead of moving it.
func bindingPatch(t *ecsv1alpha1.Task, res *revision.Resolved, decision placement.Decision) ([]byte, error) {
	type bindingSpec struct {
		ContainerInstance string                      `json:"containerInstance"`
		GPUAssignments    []ecsv1alpha1.GPUAssignment `json:"gpuAssignments,omitempty"`
	}
	type bindingMeta struct {
		Annotations map[string]string `json:"annotations"`
	}
	type binding struct {
		Metadata *bindingMeta `json:"metadata,omitempty"`
		Spec     bindingSpec  `json:"spec"`
	}
	b := binding{Spec: bindingSpec{ContainerInstance: decision.Instance}}
	gpus, err := gpuAssignments(res, decision)
	if err != nil {
		return nil, err
	}
	b.Spec.GPUAssignments = gpus
	if ref, err := revision.ParseRef(t.Spec.TaskDefinition); err == nil && !ref.Pinned() {
		b.Metadata = &bindingMeta{Annotations: map[string]string{
			ecsv1alpha1.AnnotationTaskDefinitionRevision: strconv.Itoa(int(res.Ref.Revision)),
		}}
	}
	return json.Marshal(b)
}

// gpuAssignments names the GPUs a decision gives the task, per container.
func gpuAssignments(res *revision.Resolved, decision placement.Decision) ([]ecsv1alpha1.GPUAssignment, error) {
	if len(decision.GPUs) == 0 {
		return nil, nil
	}
	reqs, err := taskrules.GPURequests(res.Spec)
	if err != nil {
		return nil, err
	}
	return taskrules.AssignGPUs(reqs, decision.GPUs)
}

// markUnplaced records why a task cannot be placed, on its Placed condition and in an
// Event, only when the reason changed, and remembers it for a retry when the cluster
// changes.
func (s *Scheduler) markUnplaced(ctx context.Context, t *ecsv1alpha1.Task, res *revision.Resolved, reason, msg string) error {
	if c := findCondition(t, ecsv1alpha1.TaskConditionPlaced); c != nil && c.Status == metav1.ConditionFalse && c.Message == conditions.Truncate(msg) {
		return nil
	}
	st := schedulerStatus(t, res).WithConditions(condition(t, t.Generation, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionFalse, reason, msg))
	if err := s.Client.Status().Apply(ctx, ecsac.Task(t.Name, t.Namespace).WithStatus(st),
		client.FieldOwner(ecsv1alpha1.FieldManagerScheduler), client.ForceOwnership); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("recording that the task cannot be placed: %w", err)
	}
	s.Recorder.Eventf(t, nil, "Warning", reason, "Place", "%s", conditions.Truncate(msg))
	ctrl.LoggerFrom(ctx).Info("task cannot be placed", "reason", reason, "message", msg)
	return nil
}

// wait records a task as waiting for placement in its cluster.
func (s *Scheduler) wait(key types.NamespacedName, cluster string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unplaced == nil {
		s.unplaced = map[string]map[types.NamespacedName]bool{}
	}
	set := s.unplaced[cluster]
	if set == nil {
		set = map[types.NamespacedName]bool{}
		s.unplaced[cluster] = set
	}
	set[key] = true
}

// schedulerStatus is every status field the scheduler owns, so that each of its
// applies is whole (see FieldManagerScheduler): the creation time, PROVISIONING while
// no agent has reported, and the resolved revision when known.
func schedulerStatus(t *ecsv1alpha1.Task, res *revision.Resolved) *ecsac.TaskStatusApplyConfiguration {
	st := ecsac.TaskStatus()
	if t.Status.CreatedAt != nil {
		st.WithCreatedAt(*t.Status.CreatedAt)
	} else {
		st.WithCreatedAt(t.CreationTimestamp)
	}
	if t.Status.LastStatus == "" || t.Status.LastStatus == ecsv1alpha1.TaskProvisioning {
		st.WithLastStatus(ecsv1alpha1.TaskProvisioning)
	}
	if res != nil {
		st.WithTaskDefinitionRevision(res.Ref.Revision)
	} else if t.Status.TaskDefinitionRevision > 0 {
		st.WithTaskDefinitionRevision(t.Status.TaskDefinitionRevision)
	}
	return st
}

// waitingIn returns the requests of the tasks waiting for placement in cluster.
func (s *Scheduler) waitingIn(cluster string) []reconcile.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]reconcile.Request, 0, len(s.unplaced[cluster]))
	for k := range s.unplaced[cluster] {
		out = append(out, reconcile.Request{NamespacedName: k})
	}
	return out
}

// settle forgets a task that no longer waits for placement.
func (s *Scheduler) settle(key types.NamespacedName, cluster string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.attempts, key)
	if cluster != "" {
		delete(s.unplaced[cluster], key)
		return
	}
	for _, set := range s.unplaced {
		delete(set, key)
	}
}

// kick retries every unplaced task of a cluster: an instance joined or changed, or a
// task stopped and freed resources.
func (s *Scheduler) kick(cluster string) {
	s.wakeups.Add(s.waitingIn(cluster)...)
	s.mu.Lock()
	listeners := s.roomListeners
	s.mu.Unlock()
	for _, f := range listeners {
		f(cluster)
	}
}

func (s *Scheduler) upsertInstance(o any) {
	ci, ok := o.(*ecsv1alpha1.ContainerInstance)
	if !ok {
		return
	}
	s.Engine.UpsertInstance(inventory.Instance(ci))
	s.kick(ci.Spec.Cluster)
}

func (s *Scheduler) removeInstance(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if ci, ok := o.(*ecsv1alpha1.ContainerInstance); ok {
		s.Engine.RemoveInstance(ci.Name)
	}
}

// observeTask keeps the engine's assumptions in step with bound tasks: a bound task
// uses its instance's resources until it is STOPPED.
func (s *Scheduler) observeTask(ctx context.Context, o any) {
	t, ok := o.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	if t.Spec.ContainerInstance == "" {
		return
	}
	if t.Status.LastStatus == ecsv1alpha1.TaskStopped {
		s.Engine.Forget(keyOf(t))
		s.kick(t.Spec.Cluster)
		return
	}
	res, err := s.resolve(ctx, t)
	if err != nil {
		// The task runs somewhere; without its revision only its existence is known.
		s.Engine.Assume(keyOf(t), t.Spec.ContainerInstance, placement.Request{Key: keyOf(t), Group: t.Spec.Group, Cluster: t.Spec.Cluster,
			AssignedGPUs: taskrules.AssignedGPUs(t.Spec.GPUAssignments)})
		return
	}
	req, err := placement.RequestFor(keyOf(t), t.Spec.Group, res.Spec, t.Spec.Overrides)
	if err != nil {
		req = placement.Request{Key: keyOf(t), Group: t.Spec.Group}
	}
	req.Cluster = t.Spec.Cluster
	// The GPUs the binding recorded, so that a restarted scheduler holds the same
	// ones; a task bound at creation without them holds its count of GPUs unnamed.
	req.AssignedGPUs = taskrules.AssignedGPUs(t.Spec.GPUAssignments)
	s.Engine.Assume(keyOf(t), t.Spec.ContainerInstance, req)
}

func (s *Scheduler) forgetTask(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if t, ok := o.(*ecsv1alpha1.Task); ok {
		s.Engine.Forget(keyOf(t))
		s.settle(client.ObjectKeyFromObject(t), t.Spec.Cluster)
		s.kick(t.Spec.Cluster)
	}
}

// revisionsChanged passes TaskDefinition updates that register or remove revisions,
// what a task waiting for its revision waits for; not the utilization and condition
// writes, which would list the family's tasks for nothing.
func revisionsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.TaskDefinition), e.ObjectNew.(*ecsv1alpha1.TaskDefinition)
			return o.Status.LatestRevision != n.Status.LatestRevision || len(o.Status.Revisions) != len(n.Status.Revisions)
		},
	}
}

// unplacedOfFamily retries the unplaced tasks of a family whose revisions changed.
func (s *Scheduler) unplacedOfFamily(ctx context.Context, o client.Object) []reconcile.Request {
	var tasks ecsv1alpha1.TaskList
	if err := s.Client.List(ctx, &tasks, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.TaskFamily: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range tasks.Items {
		if needsPlacement(&tasks.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&tasks.Items[i])})
		}
	}
	return out
}

func findCondition(t *ecsv1alpha1.Task, typ string) *metav1.Condition {
	for i := range t.Status.Conditions {
		if t.Status.Conditions[i].Type == typ {
			return &t.Status.Conditions[i]
		}
	}
	return nil
}

// condition builds a condition apply configuration, observed at generation, that
// keeps the transition time when the status does not change.
func condition(t *ecsv1alpha1.Task, generation int64, typ string, status metav1.ConditionStatus, reason, msg string) *metav1ac.ConditionApplyConfiguration {
	return conditions.Apply(t.Status.Conditions, generation, typ, status, reason, msg, time.Now())
}
