package utilization

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/status;taskdefinitions/status;clusters/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances;tasks;services;taskdefinitions;clusters,verbs=get;list;watch

// DefaultInterval is how often at most each object's status.utilization is
// written, and the agents' default measurement window.
const DefaultInterval = time.Minute

// The writer's work items are one workqueue of keys of three kinds. Kubernetes names
// contain no slash, so "<kind>/<name>" in a request's Name is unambiguous.
const (
	kindService = "service"
	kindFamily  = "family"
	kindCluster = "cluster"
)

func request(kind string, k types.NamespacedName) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: k.Namespace, Name: kind + "/" + k.Name}}
}

// Writer applies status.utilization to Services, TaskDefinitions and Clusters from
// the Aggregator, at most once per Interval per object.
type Writer struct {
	Client    client.Client
	Aggregate *Aggregator
	// Resolver says what waiting tasks reserve.
	Resolver *revision.Resolver
	// Interval bounds the write rate per object (DefaultInterval).
	Interval time.Duration
	Clock    clock.PassiveClock

	mu sync.Mutex
	// last is when each key was last written.
	last map[reconcile.Request]time.Time
}

// Reconcile writes one key's status.utilization when it changed and the key's
// interval has passed since its last write.
func (w *Writer) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	kind, name, ok := strings.Cut(req.Name, "/")
	if !ok {
		return ctrl.Result{}, nil
	}
	if wait := w.wait(req); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	key := types.NamespacedName{Namespace: req.Namespace, Name: name}
	var wrote bool
	var err error
	switch kind {
	case kindService:
		wrote, err = w.writeService(ctx, key)
	case kindFamily:
		wrote, err = w.writeFamily(ctx, key)
	case kindCluster:
		wrote, err = w.writeCluster(ctx, name)
	}
	if apierrors.IsNotFound(err) {
		w.forget(req)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if wrote {
		w.mu.Lock()
		w.last[req] = w.Clock.Now()
		w.mu.Unlock()
	}
	return ctrl.Result{}, nil
}

// wait is how long key must still wait before its next write.
func (w *Writer) wait(req reconcile.Request) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.last[req]
	if !ok {
		return 0
	}
	return w.Interval - w.Clock.Since(last)
}

func (w *Writer) forget(req reconcile.Request) {
	w.mu.Lock()
	delete(w.last, req)
	w.mu.Unlock()
}

func (w *Writer) writeService(ctx context.Context, key types.NamespacedName) (bool, error) {
	var svc ecsv1alpha1.Service
	if err := w.Client.Get(ctx, key, &svc); err != nil {
		return false, err
	}
	want := w.Aggregate.Service(key).Status()
	if !needsWrite(svc.Status.Utilization, want) {
		return false, nil
	}
	ac := ecsac.Service(key.Name, key.Namespace).WithStatus(ecsac.ServiceStatus().WithUtilization(utilizationAC(want)))
	return true, w.apply(ctx, ac, "Service", key.String())
}

func (w *Writer) writeFamily(ctx context.Context, key types.NamespacedName) (bool, error) {
	var td ecsv1alpha1.TaskDefinition
	if err := w.Client.Get(ctx, key, &td); err != nil {
		return false, err
	}
	want := w.Aggregate.Family(key).Status()
	if !needsWrite(td.Status.Utilization, want) {
		return false, nil
	}
	ac := ecsac.TaskDefinition(key.Name, key.Namespace).WithStatus(ecsac.TaskDefinitionStatus().WithUtilization(utilizationAC(want)))
	return true, w.apply(ctx, ac, "TaskDefinition", key.String())
}

func (w *Writer) writeCluster(ctx context.Context, name string) (bool, error) {
	var c ecsv1alpha1.Cluster
	if err := w.Client.Get(ctx, types.NamespacedName{Name: name}, &c); err != nil {
		return false, err
	}
	w.Aggregate.ResolveWaiting(name)
	totals, capacity := w.Aggregate.Cluster(name)
	want := capacity.ClusterStatus(totals)
	if c.Status.Utilization != nil && equality.Semantic.DeepEqual(*c.Status.Utilization, want) {
		return false, nil
	}
	u := utilizationAC(want.Utilization)
	cu := &ecsac.ClusterUtilizationApplyConfiguration{UtilizationApplyConfiguration: *u}
	cu.WithCapacityProviderReservation(want.CapacityProviderReservation).WithUnplaceableTasks(want.UnplaceableTasks).
		WithRegisteredCPU(want.RegisteredCPU).WithRegisteredMemory(want.RegisteredMemory).WithInstances(want.Instances)
	if want.CPUReservation != nil {
		cu.WithCPUReservation(*want.CPUReservation)
	}
	if want.MemoryReservation != nil {
		cu.WithMemoryReservation(*want.MemoryReservation)
	}
	ac := ecsac.Cluster(name).WithStatus(ecsac.ClusterStatus().WithUtilization(cu))
	return true, w.apply(ctx, ac, "Cluster", name)
}

// Reserves says what a waiting task reserves, from its revision in the cache.
func Reserves(resolver *revision.Resolver) ReserveFunc {
	return func(t Waiting) (cpu, memory int64, ok bool) {
		ref, err := revision.ParseRef(t.TaskDefinition)
		if err != nil {
			return 0, 0, true // never readable: count the task, not its resources
		}
		res, err := resolver.Resolve(context.Background(), t.Namespace, ref)
		if err != nil {
			return 0, 0, false
		}
		r, err := taskrules.TaskResources(res.Spec, t.Overrides)
		if err != nil {
			return 0, 0, true
		}
		return r.CPU, r.Memory, true
	}
}

// apply writes status.utilization as its own field manager: nothing else of the
// status is sent, so nothing else can be overwritten, and forcing is safe because
// no other writer sets this field.
func (w *Writer) apply(ctx context.Context, ac runtime.ApplyConfiguration, kind, name string) error {
	if err := w.Client.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerUtilization), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing the utilization of %s %s: %w", kind, name, err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("wrote utilization", "kind", kind, "name", name)
	return nil
}

// needsWrite: the status differs, or there is nothing yet and something to say.
func needsWrite(have *ecsv1alpha1.Utilization, want ecsv1alpha1.Utilization) bool {
	if have == nil {
		return want.Tasks > 0
	}
	return !equality.Semantic.DeepEqual(*have, want)
}

func utilizationAC(u ecsv1alpha1.Utilization) *ecsac.UtilizationApplyConfiguration {
	ac := ecsac.Utilization().WithCPUUsed(u.CPUUsed).WithCPUReserved(u.CPUReserved).
		WithMemoryUsed(u.MemoryUsed).WithMemoryReserved(u.MemoryReserved).WithTasks(u.Tasks)
	if u.CPUUtilization != nil {
		ac.WithCPUUtilization(*u.CPUUtilization)
	}
	if u.MemoryUtilization != nil {
		ac.WithMemoryUtilization(*u.MemoryUtilization)
	}
	if u.MeasuredAt != nil {
		ac.WithMeasuredAt(metav1.NewTime(u.MeasuredAt.Time))
	}
	return ac
}
