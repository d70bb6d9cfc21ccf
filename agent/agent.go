// Package agent is the node agent: it registers a machine as a ContainerInstance,
// renews its heartbeat, watches only the Tasks bound to it, runs them through the
// task engine and reports their status.
//
// One process may run several instances (Instance) that share one client, one cache
// (one watch of their tasks), one revision resolver and one status reporter (Agent).
// `berth agent` runs one instance on this machine's containerd (New); `berth hollow`
// runs thousands on in-memory runtimes (agent/hollow), so that the control plane is
// tested and benchmarked against this package's own logic, as kubemark runs the real
// kubelet with fakes injected.
//
// Rooms: registration (instance and heartbeat), secrets (what tasks read from Secrets
// and ConfigMaps), runtime (the container runtime), engine (one worker per task), and
// this package, which wires them to the apiserver.
package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/metrics"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
)

// RBAC of the agent: its writes, in reads.go. RBAC cannot express "its own": the
// admission policy of config/admission narrows these writes to the agent's own
// ContainerInstance, its own Lease and the status of the tasks bound to it, and the
// manager's gateway its reads to what its tasks need (docs/security.md).

// Defaults of Config.
const (
	// DefaultSyncWorkers is how many tasks are brought in step with the API at once;
	// the engine runs each task on its own worker regardless.
	DefaultSyncWorkers = 4
	// prepareWorkers register instances in parallel when a process has many.
	prepareWorkers = 32
)

// syncRetryMax caps the backoff of a task whose sync keeps failing (the apiserver
// away, a Secret not yet readable). client-go's default goes up to 1000 s, which
// would leave a task waiting a quarter of an hour after an outage ends.
const syncRetryMax = 30 * time.Second

// syncRateLimiter retries a failing task from 100 ms, doubling up to syncRetryMax,
// within an overall 50/s budget so a mass failure does not hammer the apiserver.
func syncRateLimiter() workqueue.TypedRateLimiter[types.NamespacedName] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, syncRetryMax),
		&workqueue.TypedBucketRateLimiter[types.NamespacedName]{Limiter: rate.NewLimiter(rate.Limit(50), 100)},
	)
}

// Config is what the instances of one agent process share.
type Config struct {
	// Client writes, and reads what is not cached (Secrets, ConfigMaps).
	Client client.Client
	// Cache holds the instances' Tasks (a field selector: spec.containerInstance for
	// one instance, spec.cluster for many), task definition revisions and the
	// instances' Cluster. NewCache builds one.
	Cache cache.Cache
	// SyncWorkers is how many tasks are synced in parallel (DefaultSyncWorkers).
	SyncWorkers int
	// ReportWorkers is how many task statuses are written in parallel
	// (DefaultReportWorkers).
	ReportWorkers int
	// Log is the agent's logger (default: the context's).
	Log logr.Logger
}

// Agent runs the tasks of the container instances of one process.
type Agent struct {
	c        client.Client
	cache    cache.Cache
	log      logr.Logger
	workers  int
	revs     *revision.Resolver
	reporter *reporter
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu        sync.Mutex
	instances map[string]*Instance
	names     []string
	// owner is the instance each known task belongs to, for tasks gone from the cache.
	owner map[types.NamespacedName]*Instance

	waiters revisionWaiters
}

// NewAgent prepares the instances; it does not contact the apiserver.
func NewAgent(cfg Config, instances ...InstanceConfig) (*Agent, error) {
	if cfg.Client == nil || cfg.Cache == nil {
		return nil, errors.New("an agent needs a client and a cache")
	}
	if cfg.SyncWorkers == 0 {
		cfg.SyncWorkers = DefaultSyncWorkers
	}
	if cfg.ReportWorkers == 0 {
		cfg.ReportWorkers = DefaultReportWorkers
	}
	a := &Agent{
		c: cfg.Client, cache: cfg.Cache, log: cfg.Log, workers: cfg.SyncWorkers,
		revs: revision.NewResolver(cfg.Cache),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(syncRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "agent-tasks"}),
		instances: make(map[string]*Instance, len(instances)),
		owner:     map[types.NamespacedName]*Instance{},
	}
	if a.log.GetSink() == nil {
		a.log = logr.Discard()
	}
	a.reporter = newReporter(cfg.Cache, cfg.ReportWorkers)
	for _, ic := range instances {
		inst, err := newInstance(a, ic)
		if err != nil {
			return nil, err
		}
		if _, dup := a.instances[inst.name]; dup {
			return nil, fmt.Errorf("instance %s is given twice", inst.name)
		}
		a.instances[inst.name] = inst
		a.names = append(a.names, inst.name)
	}
	return a, nil
}

// taskInfo is what metrics and utilization say of a task beyond its containers'
// labels: its Service, from the cached Task.
func (a *Agent) taskInfo(ctx context.Context, key types.NamespacedName, uid types.UID) metrics.TaskInfo {
	var t ecsv1alpha1.Task
	if err := a.cache.Get(ctx, key, &t); err != nil || t.UID != uid {
		return metrics.TaskInfo{}
	}
	return metrics.TaskInfo{Service: t.Labels[ecsv1alpha1.LabelService]}
}

// Instance returns the named instance, or nil.
func (a *Agent) Instance(name string) *Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.instances[name]
}

// Names lists the running instances in the order they were given.
func (a *Agent) Names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.names...)
}

// Run prepares every instance (recovering its containers, registering it), then
// serves the tasks bound to them until ctx ends. Containers keep running when it
// returns.
func (a *Agent) Run(ctx context.Context) error {
	ctx = ctrl.LoggerInto(ctx, a.log)
	defer a.queue.ShutDown()
	if err := a.prepareAll(ctx); err != nil {
		return err
	}
	if err := a.watchTasks(ctx); err != nil {
		return err
	}
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- a.cache.Start(ctx) }()
	if !a.cache.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("the task cache never synced")
	}
	var wg sync.WaitGroup
	engineErr := make(chan error, len(a.instances))
	for _, inst := range a.instanceList() {
		ictx, cancel := context.WithCancel(ctrl.LoggerInto(ctx, inst.log))
		inst.mu.Lock()
		inst.stop = cancel
		inst.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(inst.done)
			var iwg sync.WaitGroup
			inst.runHeartbeat(ictx, &iwg)
			if err := inst.eng.Run(ictx); err != nil {
				engineErr <- fmt.Errorf("instance %s: %w", inst.name, err)
			}
			cancel()
			iwg.Wait()
		}()
	}
	a.syncAll(ctx)
	for _, inst := range a.instanceList() {
		inst.forgetOrphans(ctx)
	}
	for range a.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.processNext(ctx) {
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.reporter.run(ctx) }()
	a.log.Info("agent running", "instances", len(a.instances))

	var err error
	select {
	case <-ctx.Done():
	case err = <-engineErr:
	case err = <-cacheErr:
	}
	a.queue.ShutDown()
	for _, inst := range a.instanceList() {
		inst.halt()
	}
	a.reporter.shutDown()
	wg.Wait()
	return err
}

func (a *Agent) instanceList() []*Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Instance, 0, len(a.instances))
	for _, name := range a.names {
		out = append(out, a.instances[name])
	}
	return out
}

// prepareAll recovers and registers every instance, a few at a time, before any
// task is handed to an engine.
func (a *Agent) prepareAll(ctx context.Context) error {
	insts := a.instanceList()
	work := make(chan *Instance)
	errs := make(chan error, len(insts))
	var wg sync.WaitGroup
	for range min(prepareWorkers, len(insts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for inst := range work {
				errs <- inst.prepare(ctrl.LoggerInto(ctx, inst.log))
			}
		}()
	}
	for _, inst := range insts {
		work <- inst
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// watchTasks queues every change of a task bound to one of the instances that the
// agent acts on: a new task, a change of its spec (the binding, a stop), its deletion.
// The status writes that follow the agent's own reports change no spec and are not
// queued: the engine reads a task's status only when it first learns of it.
func (a *Agent) watchTasks(ctx context.Context) error {
	if err := a.cache.IndexField(ctx, &ecsv1alpha1.Task{}, index.TaskInstance, func(o client.Object) []string {
		return []string{o.(*ecsv1alpha1.Task).Spec.ContainerInstance}
	}); err != nil {
		return fmt.Errorf("indexing tasks by instance: %w", err)
	}
	inf, err := a.cache.GetInformer(ctx, &ecsv1alpha1.Task{}, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: a.enqueue,
		UpdateFunc: func(o, n any) {
			ot, ok1 := o.(*ecsv1alpha1.Task)
			nt, ok2 := n.(*ecsv1alpha1.Task)
			if ok1 && ok2 && ot.UID == nt.UID && ot.Generation == nt.Generation {
				return
			}
			a.enqueue(n)
		},
		DeleteFunc: func(o any) {
			if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			a.enqueue(o)
		},
	})
	if err != nil {
		return err
	}
	// The instances' Cluster, for its container policy: synced with the tasks, so that
	// no task is judged without it.
	if _, err := a.cache.GetInformer(ctx, &ecsv1alpha1.Cluster{}, cache.BlockUntilSynced(false)); err != nil {
		return err
	}
	// A revision deleted (its family's history trimmed, or the family deleted) leaves
	// the resolver's cache, so a long-running agent keeps only revisions that exist.
	revisions, err := a.cache.GetInformer(ctx, &appsv1.ControllerRevision{}, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	if err := a.requeueOnRevision(revisions); err != nil {
		return err
	}
	return revision.ForgetOnDelete(revisions, a.revs)
}

// enqueue queues a task bound to one of the instances, or known to one.
func (a *Agent) enqueue(o any) {
	t, ok := o.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	key := client.ObjectKeyFromObject(t)
	a.mu.Lock()
	_, ours := a.instances[t.Spec.ContainerInstance]
	_, known := a.owner[key]
	a.mu.Unlock()
	if ours || known {
		a.queue.Add(key)
	}
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			a.log.Error(err, "syncing task; retrying", logTask, key.String())
		}
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// syncAll brings every cached task into the engines once, before orphans are judged.
func (a *Agent) syncAll(ctx context.Context) {
	var tasks ecsv1alpha1.TaskList
	if err := a.cache.List(ctx, &tasks); err != nil {
		a.log.Error(err, "listing tasks")
		return
	}
	for i := range tasks.Items {
		key := client.ObjectKeyFromObject(&tasks.Items[i])
		if err := a.sync(ctx, key); err != nil {
			a.log.Error(err, "syncing task", logTask, key.String())
			a.queue.AddRateLimited(key)
		}
	}
}

// sync hands a task's newest state to the engine of its instance, or tells that
// instance it is gone.
func (a *Agent) sync(ctx context.Context, key types.NamespacedName) error {
	var t ecsv1alpha1.Task
	err := a.cache.Get(ctx, key, &t)
	if client.IgnoreNotFound(err) != nil {
		return err
	}
	a.mu.Lock()
	inst := a.owner[key]
	if err == nil {
		if bound := a.instances[t.Spec.ContainerInstance]; bound != nil {
			inst = bound
			a.owner[key] = bound
		}
	} else {
		delete(a.owner, key)
	}
	a.mu.Unlock()
	if inst == nil || inst.skip(key) {
		return nil
	}
	ictx := ctrl.LoggerInto(ctx, inst.log)
	if err != nil {
		inst.forget(key)
		return nil
	}
	return inst.sync(ictx, a, &t)
}

// skip records a task change the instance cannot see while it is partitioned.
func (i *Instance) skip(key types.NamespacedName) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.partitioned {
		i.missed[key] = true
	}
	return i.partitioned
}

// Partition makes instance name blind to the apiserver's changes, as a machine cut
// off from it is (partitioned true), or lets it catch up with everything that
// changed meanwhile (false). It does not touch the instance's client: a simulator
// makes that fail too. Its containers keep running.
func (a *Agent) Partition(name string, partitioned bool) error {
	inst := a.Instance(name)
	if inst == nil {
		return fmt.Errorf("no instance %q", name)
	}
	inst.mu.Lock()
	inst.partitioned = partitioned
	var keys []types.NamespacedName
	if !partitioned {
		for k := range inst.missed {
			keys = append(keys, k)
		}
		for k := range inst.uids {
			keys = append(keys, k)
		}
		clear(inst.missed)
	}
	inst.mu.Unlock()
	if partitioned {
		return nil
	}
	// Tasks bound to it meanwhile are new to it too.
	var bound ecsv1alpha1.TaskList
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.cache.List(ctx, &bound, client.MatchingFields{index.TaskInstance: name}); err != nil {
		return fmt.Errorf("listing the tasks of instance %s: %w", name, err)
	}
	for i := range bound.Items {
		keys = append(keys, client.ObjectKeyFromObject(&bound.Items[i]))
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		a.queue.Add(k)
	}
	return nil
}

// StopInstance stops running instance name (its heartbeat, status and engine) and
// forgets it, as when its machine is switched off: its containers are left as they
// are. It waits until the instance's goroutines have ended.
func (a *Agent) StopInstance(name string) error {
	a.mu.Lock()
	inst := a.instances[name]
	if inst == nil {
		a.mu.Unlock()
		return fmt.Errorf("no instance %q", name)
	}
	delete(a.instances, name)
	for i, n := range a.names {
		if n == name {
			a.names = append(a.names[:i], a.names[i+1:]...)
			break
		}
	}
	for k, owner := range a.owner {
		if owner == inst {
			delete(a.owner, k)
		}
	}
	a.mu.Unlock()
	if inst.halt() {
		<-inst.done
	}
	return nil
}

// halt cancels the instance's goroutines; false when they never started.
func (i *Instance) halt() bool {
	i.mu.Lock()
	stop := i.stop
	i.mu.Unlock()
	if stop == nil {
		return false
	}
	stop()
	return true
}
