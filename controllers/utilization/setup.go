package utilization

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// SetupWithManager feeds the Aggregator from ContainerInstance and Task events and
// registers the writer and the Prometheus collector.
func (w *Writer) SetupWithManager(mgr ctrl.Manager) error {
	if w.Interval <= 0 {
		w.Interval = DefaultInterval
	}
	if w.Clock == nil {
		w.Clock = clock.RealClock{}
	}
	if w.Aggregate == nil {
		w.Aggregate = NewAggregator(Reserves(w.Resolver))
	}
	w.last = map[reconcile.Request]time.Time{}
	if err := registerCollector(NewCollector(w.Aggregate, mgr.GetCache())); err != nil {
		return fmt.Errorf("registering the utilization metrics: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("utilization").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) { w.instance(e.Object, q) },
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) { w.instance(e.ObjectNew, q) },
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
				wake(q, w.Aggregate.SetInstance(e.Object.GetName(), nil))
			},
		}).
		Watches(&ecsv1alpha1.Service{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) { w.service(e.Object, q) },
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) { w.service(e.ObjectNew, q) },
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
				wake(q, w.Aggregate.SetService(e.Object.GetUID(), nil))
			},
		}).
		Watches(&ecsv1alpha1.Task{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) { w.task(e.Object, q) },
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) { w.task(e.ObjectNew, q) },
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
				wake(q, w.Aggregate.SetTask(e.Object.GetUID(), nil))
			},
		}).
		Complete(w)
}

func (w *Writer) instance(o client.Object, q queue) {
	if ci, ok := o.(*ecsv1alpha1.ContainerInstance); ok {
		wake(q, w.Aggregate.SetInstance(ci.Name, ci))
	}
}

func (w *Writer) service(o client.Object, q queue) {
	if svc, ok := o.(*ecsv1alpha1.Service); ok {
		wake(q, w.Aggregate.SetService(svc.UID, svc))
	}
}

func (w *Writer) task(o client.Object, q queue) {
	if t, ok := o.(*ecsv1alpha1.Task); ok {
		wake(q, w.Aggregate.SetTask(t.UID, t))
	}
}

// registerCollector registers c on the manager's registry, replacing the collector
// of an earlier manager of the same process (test suites start several).
func registerCollector(c *Collector) error {
	err := ctrlmetrics.Registry.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		ctrlmetrics.Registry.Unregister(already.ExistingCollector)
		err = ctrlmetrics.Registry.Register(c)
	}
	return err
}

// wake queues the keys a change touched; the queue collapses repeats, and the
// writer's interval bounds what they cost.
func wake(q queue, k Keys) {
	for _, s := range k.Services {
		q.Add(request(kindService, s))
	}
	for _, f := range k.Families {
		q.Add(request(kindFamily, f))
	}
	for _, c := range k.Clusters {
		q.Add(request(kindCluster, types.NamespacedName{Name: c}))
	}
}
