// Package endpoints publishes the tasks of Services with spec.loadBalancers as
// EndpointSlices of the core Kubernetes Services they name, so that kube-proxy,
// ingress controllers and service meshes route to them: only RUNNING and healthy
// tasks are ready; tasks being stopped stay listed as terminating while connections
// drain.
package endpoints

import (
	"context"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
)

// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services;tasks;containerinstances,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=services/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;delete

// ReasonLoadBalancerServiceNotFound is the Warning Event reason when a load balancer
// names a core Service that does not exist.
const ReasonLoadBalancerServiceNotFound = "LoadBalancerServiceNotFound"

// loadBalancerServiceIndex indexes Berth Services by the core Services their load
// balancers name, to find them when a core Service changes.
const loadBalancerServiceIndex = "berth.serviceLoadBalancer"

// Reconciler publishes EndpointSlices for Services with load balancers.
type Reconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Resolver resolves task definition revisions; the manager shares one among its
	// controllers. Nil makes one of its own.
	Resolver *revision.Resolver

	once sync.Once

	mu sync.Mutex
	// warned holds `namespace/service/coreService` for each missing core Service
	// already reported, so the Warning is emitted once rather than every pass.
	warned map[string]bool
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Resolver == nil {
			r.Resolver = revision.NewResolver(r.Client)
		}
		r.warned = map[string]bool{}
	})
}

// SetupWithManager watches Services, their owned EndpointSlices, the tasks and
// instances that decide endpoints, and the core Services whose port names the
// slices carry.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.init()
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &ecsv1alpha1.Service{}, loadBalancerServiceIndex,
		func(o client.Object) []string {
			var names []string
			for _, lb := range o.(*ecsv1alpha1.Service).Spec.LoadBalancers {
				names = append(names, lb.ServiceName)
			}
			return names
		}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("endpoints").
		For(&ecsv1alpha1.Service{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&discoveryv1.EndpointSlice{}, builder.WithPredicates(predicate.NewPredicateFuncs(managedByBerth))).
		Watches(&ecsv1alpha1.Task{}, handler.EnqueueRequestsFromMapFunc(serviceOfTask),
			builder.WithPredicates(taskEndpointChanged())).
		Watches(&ecsv1alpha1.ContainerInstance{}, handler.EnqueueRequestsFromMapFunc(r.servicesOnInstance),
			builder.WithPredicates(instanceEndpointChanged())).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.servicesBehind),
			builder.WithPredicates(corePortsChanged())).
		Complete(r)
}

// Reconcile computes the slices the Service's load balancers need from its tasks and
// makes the owned slices match: create, update what changed, delete the rest.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	var svc ecsv1alpha1.Service
	if err := r.Client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.NamespacedName) // owner references delete its slices
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("service", klog.KObj(&svc))
	ctx = ctrl.LoggerInto(ctx, log)

	var members []member
	if len(svc.Spec.LoadBalancers) > 0 {
		// Without load balancers there is nothing to publish (only old slices to
		// delete), so skip the per-task work that dominates a large service.
		var err error
		if members, err = r.members(ctx, &svc); err != nil {
			return ctrl.Result{}, err
		}
	}
	cores, err := r.coreServices(ctx, &svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	existing, err := r.ownedSlices(ctx, &svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	// A Service being deleted keeps updating its slices while its tasks stop, so
	// their endpoints drain as terminating rather than vanish; it creates none, so
	// as not to fight the garbage collector of a foreground deletion.
	create := svc.DeletionTimestamp.IsZero()
	if err := r.apply(ctx, existing, desiredSlices(&svc, members, cores), create); err != nil {
		return ctrl.Result{}, err
	}
	r.warnMissing(&svc, cores)
	return ctrl.Result{}, nil
}

func managedByBerth(o client.Object) bool {
	return o.GetLabels()[discoveryv1.LabelManagedBy] == ManagedBy
}

func serviceOfTask(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[ecsv1alpha1.LabelService]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// servicesOnInstance maps an instance to the Services with tasks on it.
func (r *Reconciler) servicesOnInstance(ctx context.Context, o client.Object) []reconcile.Request {
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.MatchingFields{index.TaskInstance: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing tasks of an instance", "containerInstance", o.GetName())
		return nil
	}
	seen := map[types.NamespacedName]bool{}
	var out []reconcile.Request
	for i := range tasks.Items {
		for _, req := range serviceOfTask(ctx, &tasks.Items[i]) {
			if !seen[req.NamespacedName] {
				seen[req.NamespacedName] = true
				out = append(out, req)
			}
		}
	}
	return out
}

// servicesBehind maps a core Service to the Berth Services whose load balancers name it.
func (r *Reconciler) servicesBehind(ctx context.Context, o client.Object) []reconcile.Request {
	var list ecsv1alpha1.ServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{loadBalancerServiceIndex: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing services behind a core Service", "coreService", klog.KObj(o))
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// taskEndpointChanged passes creations, deletions and changes of what an endpoint
// is made of; the rest of a task's status churn (timestamps, per-container details)
// does not.
func taskEndpointChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.Task), e.ObjectNew.(*ecsv1alpha1.Task)
			return o.Status.LastStatus != n.Status.LastStatus ||
				o.Status.HealthStatus != n.Status.HealthStatus ||
				o.Spec.DesiredStatus != n.Spec.DesiredStatus ||
				o.Spec.ContainerInstance != n.Spec.ContainerInstance ||
				o.Status.TaskDefinitionRevision != n.Status.TaskDefinitionRevision ||
				o.Labels[ecsv1alpha1.LabelService] != n.Labels[ecsv1alpha1.LabelService] ||
				!bindingsEqual(o, n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// bindingsEqual compares where a task's containers are reached: their published
// ports and, in awsvpc mode, their addresses.
func bindingsEqual(a, b *ecsv1alpha1.Task) bool {
	type reach struct {
		Bindings   []ecsv1alpha1.NetworkBinding
		Interfaces []ecsv1alpha1.NetworkInterface
	}
	reached := func(t *ecsv1alpha1.Task) map[string]reach {
		m := map[string]reach{}
		for _, c := range t.Status.Containers {
			if len(c.NetworkBindings) > 0 || len(c.NetworkInterfaces) > 0 {
				m[c.Name] = reach{c.NetworkBindings, c.NetworkInterfaces}
			}
		}
		return m
	}
	return equality.Semantic.DeepEqual(reached(a), reached(b))
}

// instanceEndpointChanged passes instance creations, deletions and changes of the
// address or zone endpoints are built from; heartbeats and resource updates do not.
func instanceEndpointChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*ecsv1alpha1.ContainerInstance), e.ObjectNew.(*ecsv1alpha1.ContainerInstance)
			return instanceAddress(o) != instanceAddress(n) || instanceZone(o) != instanceZone(n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// corePortsChanged passes core Service creations, deletions and port changes (port
// names go into the slices).
func corePortsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1.Service), e.ObjectNew.(*corev1.Service)
			return !equality.Semantic.DeepEqual(o.Spec.Ports, n.Spec.Ports)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// warnMissing emits one Warning Event per missing core Service, and forgets the
// warning once the Service exists so that a later disappearance is reported again.
func (r *Reconciler) warnMissing(svc *ecsv1alpha1.Service, cores map[string]*corev1.Service) {
	prefix := svc.Namespace + "/" + svc.Name + "/"
	var report []string
	r.mu.Lock()
	for name, core := range cores {
		switch key := prefix + name; {
		case core != nil:
			delete(r.warned, key)
		case !r.warned[key]:
			r.warned[key] = true
			report = append(report, name)
		}
	}
	r.mu.Unlock()
	for _, name := range report {
		r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, ReasonLoadBalancerServiceNotFound, "PublishEndpoints",
			"Service %s/%s named in spec.loadBalancers does not exist; its EndpointSlices are published anyway and take effect once it is created",
			svc.Namespace, name)
	}
}

// forget drops the warnings of a deleted Service.
func (r *Reconciler) forget(key types.NamespacedName) {
	prefix := key.Namespace + "/" + key.Name + "/"
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.warned {
		if strings.HasPrefix(k, prefix) {
			delete(r.warned, k)
		}
	}
}
