// Package hollow simulates many Berth agents in one process, as kubemark's hollow
// nodes do for Kubernetes: each simulated instance registers its ContainerInstance,
// renews its Lease and reports the tasks bound to it as a real agent would, without
// containerd. The control plane can then be tested against a real apiserver and
// benchmarked with thousands of instances.
//
// The agent writes exactly the fields docs/architecture.md gives the agent, with the
// agent's field manager: ContainerInstance spec.cluster (at creation) and its
// resources, counts, attributes, addresses, versions and RuntimeReady condition; the
// Lease's renewTime; a Task's runtime facts (lastStatus, healthStatus, containers,
// timestamps, stopCode, stoppedReason, the Running and Stopped conditions). It never
// writes status.status, agentConnected or the Connected condition of an instance.
//
// The process is built to scale: one watch of the cluster's Tasks (a field selector
// on spec.cluster) feeds a worker pool; Lease renewals and instance status writes go
// through delaying work queues, so the goroutine count does not grow with the number
// of instances; a task reaches RUNNING in one status write; an instance's status is
// written only when it changed, at most every few seconds.
package hollow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/version"
)

// Worker pool sizes: enough to keep the client's QPS busy, independent of the
// number of instances.
const (
	taskWorkers   = 16
	leaseWorkers  = 8
	statusWorkers = 4
)

// statusMinInterval is the shortest time between two status writes of one instance:
// changes in between are batched into the next write.
var statusMinInterval = 2 * time.Second

// Agent simulates the instances of a Config against an apiserver.
type Agent struct {
	cfg    Config
	client client.Client
	cache  cache.Cache
	// cachedRevisions resolves through the cache; liveRevisions reads the apiserver
	// when the cache (a separate watch) has not yet seen a revision a task names.
	cachedRevisions *revision.Resolver
	liveRevisions   *revision.Resolver

	tasks    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	leases   workqueue.TypedRateLimitingInterface[string]
	statuses workqueue.TypedRateLimitingInterface[string]

	// synced is set once the cache has synced: Reconnect lists from it only then.
	synced atomic.Bool

	mu        sync.Mutex
	started   bool
	instances map[string]*instance
	names     []string
	// taskIndex finds the instance of a task known locally, for a task that is gone
	// from the cache.
	taskIndex map[types.NamespacedName]*instance
}

// New validates cfg (zero values take their defaults) and prepares an Agent that
// talks to the apiserver of restConfig. It does not contact the apiserver.
func New(cfg Config, restConfig *rest.Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if restConfig == nil {
		return nil, errors.New("hollow: no apiserver configuration")
	}
	rc := rest.CopyConfig(restConfig)
	if rc.UserAgent == "" {
		rc.UserAgent = "berth-hollow/" + version.Version
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := ecsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("hollow: building HTTP client: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("hollow: building REST mapper: %w", err)
	}
	c, err := client.New(rc, client.Options{Scheme: scheme, Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("hollow: building client: %w", err)
	}
	ca, err := cache.New(rc, cacheOptions(cfg.Cluster, scheme, mapper, httpClient))
	if err != nil {
		return nil, fmt.Errorf("hollow: building cache: %w", err)
	}

	limiter := func() workqueue.TypedRateLimiter[string] {
		return workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second)
	}
	a := &Agent{
		cfg:             cfg,
		client:          c,
		cache:           ca,
		cachedRevisions: revision.NewResolver(ca),
		liveRevisions:   revision.NewResolver(c),
		tasks: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](50*time.Millisecond, 30*time.Second)),
		leases:    workqueue.NewTypedRateLimitingQueue(limiter()),
		statuses:  workqueue.NewTypedRateLimitingQueue(limiter()),
		instances: make(map[string]*instance, cfg.Instances),
		taskIndex: map[types.NamespacedName]*instance{},
	}
	for i := range cfg.Instances {
		inst := newInstance(&a.cfg, i)
		a.instances[inst.name] = inst
		a.names = append(a.names, inst.name)
	}
	return a, nil
}

// cacheOptions limits the watches to what the agent uses: the Tasks of its cluster
// (a server-side field selector) and task definition revisions.
func cacheOptions(cluster string, scheme *runtime.Scheme, mapper meta.RESTMapper, httpClient *http.Client) cache.Options {
	revisions, err := labels.Parse(ecsv1alpha1.LabelFamily)
	if err != nil {
		panic(err) // a constant selector
	}
	return cache.Options{
		Scheme:     scheme,
		Mapper:     mapper,
		HTTPClient: httpClient,
		// Nothing here reads managed fields; at thousands of tasks they are most of the
		// cache's memory.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&ecsv1alpha1.Task{}:          {Field: fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldCluster, cluster)},
			&appsv1.ControllerRevision{}: {Label: revisions},
		},
	}
}

// Names lists the simulated instances, in index order (deregistered ones excluded).
func (a *Agent) Names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.names)
}

// RunningTasks is the number of tasks whose simulated containers run on the instance:
// what a real machine would be running, whatever the apiserver says. Tests use it to
// prove that no task runs twice.
func (a *Agent) RunningTasks(instance string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	inst := a.instances[instance]
	if inst == nil {
		return 0
	}
	n := 0
	for _, st := range inst.tasks {
		if st.phase == phaseRunning {
			n++
		}
	}
	return n
}

// Disconnect simulates the instance losing its network: it stops renewing its Lease,
// writing its status and processing its tasks. Its containers keep running.
func (a *Agent) Disconnect(instance string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	inst := a.instances[instance]
	if inst == nil {
		return fmt.Errorf("hollow: no instance %q", instance)
	}
	inst.disconnected = true
	return nil
}

// Reconnect ends a Disconnect: the instance renews its Lease again and catches up with
// its tasks, for example stopping those the control plane stopped meanwhile.
func (a *Agent) Reconnect(instance string) error {
	a.mu.Lock()
	inst := a.instances[instance]
	if inst == nil {
		a.mu.Unlock()
		return fmt.Errorf("hollow: no instance %q", instance)
	}
	inst.disconnected = false
	keys := make([]types.NamespacedName, 0, len(inst.tasks))
	for k := range inst.tasks {
		keys = append(keys, k)
	}
	a.mu.Unlock()

	// Before the cache has synced, Run looks at every task anyway.
	if a.synced.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var list ecsv1alpha1.TaskList
		if err := a.cache.List(ctx, &list, client.MatchingFields{index.TaskInstance: instance}); err == nil {
			for i := range list.Items {
				keys = append(keys, client.ObjectKeyFromObject(&list.Items[i]))
			}
		}
	}
	for _, k := range keys {
		a.tasks.Add(k)
	}
	a.leases.Add(instance)
	a.statuses.Add(instance)
	return nil
}

// Deregister stops simulating the instance and deletes its ContainerInstance and
// Lease, as an operator deregistering a machine.
func (a *Agent) Deregister(instance string) error {
	a.mu.Lock()
	inst := a.instances[instance]
	if inst == nil {
		a.mu.Unlock()
		return fmt.Errorf("hollow: no instance %q", instance)
	}
	inst.gone = true
	delete(a.instances, instance)
	a.names = slices.DeleteFunc(a.names, func(n string) bool { return n == instance })
	for k := range inst.tasks {
		delete(a.taskIndex, k)
	}
	inst.tasks = nil
	a.mu.Unlock()

	// Wait for an in-flight registration or renewal, which would otherwise recreate
	// what is deleted here.
	inst.apiMu.Lock()
	defer inst.apiMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: instance}}
	if err := a.client.Delete(ctx, lease); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("hollow: deleting Lease of %s: %w", instance, err)
	}
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: instance}}
	if err := a.client.Delete(ctx, ci); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("hollow: deleting ContainerInstance %s: %w", instance, err)
	}
	return nil
}

// Run registers the instances and simulates them until ctx is done. After a restart
// with the same Config it adopts the existing instances and tasks: tasks already
// RUNNING are not written again.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("hollow: Run called twice")
	}
	a.started = true
	a.mu.Unlock()
	defer a.shutDownQueues()

	log := ctrl.LoggerFrom(ctx).WithValues(logCluster, a.cfg.Cluster)
	ctx = ctrl.LoggerInto(ctx, log)
	if err := a.checkAPI(); err != nil {
		return err
	}
	if err := a.ensureLeaseNamespace(ctx); err != nil {
		return err
	}

	cacheCtx, stopCache := context.WithCancel(ctx)
	cacheDone := make(chan error, 1)
	defer func() {
		stopCache()
		if err := <-cacheDone; err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "hollow agent cache stopped with an error")
		}
	}()
	if err := a.prepareCache(cacheCtx); err != nil {
		cacheDone <- nil
		return err
	}
	go func() { cacheDone <- a.cache.Start(cacheCtx) }()
	if !a.cache.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("hollow: the task and revision caches never synced")
	}
	a.synced.Store(true)
	// Rebuild the simulated machines before any new work, so that ports and
	// resources of running tasks are not handed out again.
	a.adoptTasks(ctx)

	var wg sync.WaitGroup
	startWorkers(ctx, &wg, taskWorkers, a.tasks, logTask, a.syncTask)
	startWorkers(ctx, &wg, leaseWorkers, a.leases, logInstance, a.syncLease)
	startWorkers(ctx, &wg, statusWorkers, a.statuses, logInstance, a.syncStatus)
	for _, name := range a.Names() {
		a.statuses.Add(name)
	}
	log.Info("hollow agent running", logInstances, a.cfg.Instances, "leaseInterval", a.cfg.LeaseInterval, "runningDelay", a.cfg.RunningDelay)

	<-ctx.Done()
	a.shutDownQueues()
	wg.Wait()
	log.Info("hollow agent stopped")
	return nil
}

func (a *Agent) shutDownQueues() {
	a.tasks.ShutDown()
	a.leases.ShutDown()
	a.statuses.ShutDown()
}

// checkAPI fails early, with a message that says what to do, when the apiserver does
// not serve Berth's kinds.
func (a *Agent) checkAPI() error {
	for _, kind := range []string{"ContainerInstance", "Task"} {
		gvk := ecsv1alpha1.GroupVersion.WithKind(kind)
		if _, err := a.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("hollow: the apiserver does not serve %s (are Berth's CRDs installed?): %w", gvk, err)
		}
	}
	return nil
}

// ensureLeaseNamespace creates the namespace of the instance Leases if needed.
func (a *Agent) ensureLeaseNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.NodeLeaseNamespace}}
	err := a.client.Create(ctx, ns)
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	// Without the right to create namespaces (an agent's identity has none), the
	// namespace may still exist, or the manager creates it: heartbeats retry.
	if getErr := a.client.Get(ctx, client.ObjectKeyFromObject(ns), ns); getErr == nil || apierrors.IsForbidden(err) {
		return nil
	}
	return fmt.Errorf("hollow: creating namespace %s: %w", ecsv1alpha1.NodeLeaseNamespace, err)
}

// prepareCache registers the index and event handlers and creates the informers, so
// that Start begins every watch at once.
func (a *Agent) prepareCache(ctx context.Context) error {
	if err := a.cache.IndexField(ctx, &ecsv1alpha1.Task{}, index.TaskInstance, func(o client.Object) []string {
		return []string{o.(*ecsv1alpha1.Task).Spec.ContainerInstance}
	}); err != nil {
		return fmt.Errorf("hollow: indexing tasks: %w", err)
	}
	informer, err := a.cache.GetInformer(ctx, &ecsv1alpha1.Task{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("hollow: watching tasks: %w", err)
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    a.enqueueTask,
		UpdateFunc: func(_, obj any) { a.enqueueTask(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			a.enqueueTask(obj)
		},
	}); err != nil {
		return fmt.Errorf("hollow: watching tasks: %w", err)
	}
	// Revisions and task definitions (for `family` references) are read on demand;
	// creating their informers now makes the first read not wait for a list.
	for _, obj := range []client.Object{&appsv1.ControllerRevision{}, &ecsv1alpha1.TaskDefinition{}} {
		if _, err := a.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("hollow: watching %T: %w", obj, err)
		}
	}
	return nil
}

// enqueueTask queues a task bound to one of the simulated instances, or known to one.
func (a *Agent) enqueueTask(obj any) {
	task, ok := obj.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	key := client.ObjectKeyFromObject(task)
	a.mu.Lock()
	_, ours := a.instances[task.Spec.ContainerInstance]
	_, known := a.taskIndex[key]
	a.mu.Unlock()
	if ours || known {
		a.tasks.Add(key)
	}
}

// startWorkers runs n workers on q until the queue shuts down. sync returns how long
// to wait before processing the item again (0: not again) or an error (retried with
// backoff); logKey names the items in logs.
func startWorkers[T comparable](ctx context.Context, wg *sync.WaitGroup, n int, q workqueue.TypedRateLimitingInterface[T], logKey string, sync func(context.Context, T) (time.Duration, error)) {
	log := ctrl.LoggerFrom(ctx)
	for range n {
		wg.Go(func() {
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				after, err := sync(ctx, item)
				switch {
				case err != nil:
					if ctx.Err() == nil {
						log.Error(err, "retrying", logKey, item)
					}
					q.AddRateLimited(item)
				case after > 0:
					q.Forget(item)
					q.AddAfter(item, after)
				default:
					q.Forget(item)
				}
				q.Done(item)
			}
		})
	}
}
