// Package agent is `berth agent`: the node agent of one machine. It registers the
// machine as a ContainerInstance, renews its heartbeat, watches only the Tasks bound
// to it (a field selector on spec.containerInstance), runs them with containerd through
// the task engine, and reports their status.
//
// Rooms: registration (instance and heartbeat), secrets (what tasks read from Secrets
// and ConfigMaps), runtime (containerd), engine (one worker per task), and this
// package, which wires them to the apiserver.
package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/network"
	"github.com/berthdev/berth/agent/registration"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/containerd"
	"github.com/berthdev/berth/agent/secrets"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/version"
)

// RBAC of the agent. RBAC cannot express "its own": the admission policy of
// config/admission narrows these writes to the agent's own ContainerInstance, its own
// Lease and the status of the tasks bound to it (docs/security.md). Secrets and
// ConfigMaps are read by name only (get, never list or watch).
//
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances,verbs=get;create
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=containerinstances/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks/status,verbs=get;patch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=taskdefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// syncWorkers is how many tasks are brought in step with the API at once; the engine
// runs each task on its own worker regardless.
const syncWorkers = 4

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

// Agent runs one machine's tasks.
type Agent struct {
	opts     Options
	c        client.Client // direct: writes, and reads of Secrets that are not cached
	cache    cache.Cache
	rt       runtime.Runtime
	eng      *engine.Engine
	reg      *registration.Registrar
	revs     *revision.Resolver
	secrets  *secrets.Resolver
	reporter *reporter
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	// guard checks tasks against the cluster's container policy before they start.
	guard *policyGuard

	mu sync.Mutex
	// uids remembers each known task's UID, to forget its containers once its object
	// is deleted.
	uids map[types.NamespacedName]types.UID
	// usage is what each desired-RUNNING task holds on the instance.
	usage map[types.UID]placement.Request
}

// Run runs the agent until ctx ends. Containers keep running when it returns.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	a, err := New(ctx, o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// New connects to containerd and the apiserver; it does not register yet.
func New(ctx context.Context, o Options) (*Agent, error) {
	cfg, err := kube.RESTConfig(o.Kubeconfig, o.QPS, o.Burst)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "berth-agent/" + o.Name
	scheme := kube.Scheme
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	rt, err := containerd.New(ctx, containerd.Options{
		Address: o.ContainerdAddress, Namespace: o.Namespace, Snapshotter: o.Snapshotter,
		HostsDir: o.RegistryConfigDir, RuncRoot: o.RuncRoot, FIFODir: filepath.Join(o.StateDir, "fifo"),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", o.ContainerdAddress, err)
	}
	family, err := labels.Parse(ecsv1alpha1.LabelFamily)
	if err != nil {
		return nil, err
	}
	ch, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		// Only this instance's tasks: the apiserver filters with the CRD's selectable field.
		&ecsv1alpha1.Task{}:          {Field: fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldContainerInstance, o.Name)},
		&appsv1.ControllerRevision{}: {Label: family},
		// Only this instance's Cluster, for its container policy.
		&ecsv1alpha1.Cluster{}: {Field: fields.OneTermEqualSelector("metadata.name", o.Cluster)},
	}})
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts: o, c: c, cache: ch, rt: rt,
		revs:    revision.NewResolver(ch),
		secrets: &secrets.Resolver{Reader: c},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(syncRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "agent-tasks"}),
		uids:  map[types.NamespacedName]types.UID{},
		usage: map[types.UID]placement.Request{},
		guard: newPolicyGuard(),
	}
	nw, err := network.New(network.Config{
		StateDir: o.StateDir, PluginDirs: filepath.SplitList(o.CNIPluginDir), Subnet: o.BridgeSubnet, Bridge: o.Bridge,
		Log: ctrl.LoggerFrom(ctx).WithName("network"),
	})
	if err != nil {
		return nil, fmt.Errorf("bridge networking: %w", err)
	}
	a.reporter = newReporter(c, ch)
	a.eng = engine.New(engine.Config{
		Runtime: &policyRuntime{Runtime: rt, users: rt, guard: a.guard}, PullPolicy: runtime.PullPolicy(o.PullPolicy), StateDir: o.StateDir,
		Report: a.reporter.enqueue, Log: ctrl.LoggerFrom(ctx).WithName("engine"), Network: nw,
	})
	return a, nil
}

// Run registers the instance, recovers the containers a previous agent left, and
// then serves the tasks bound to the instance until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("instance", a.opts.Name, "cluster", a.opts.Cluster)
	ctx = ctrl.LoggerInto(ctx, log)
	defer a.queue.ShutDown()
	stopHousekeeping := a.startHousekeeping(ctx)
	defer stopHousekeeping()

	if err := a.newRegistrar(ctx); err != nil {
		return err
	}
	// State is rebuilt from the runtime before any new work is accepted, so a
	// restarted agent adopts its containers instead of starting second copies.
	if err := a.eng.Recover(ctx); err != nil {
		return fmt.Errorf("recovering containers: %w", err)
	}
	// A previous run admitted the tasks it started: the container policy does not
	// stop them when it was tightened since.
	a.guard.admitRecovered(a.eng.Unclaimed())
	if err := a.registerUntilDone(ctx); err != nil {
		return err
	}
	go a.reg.Heartbeat(ctx)

	if err := a.watchTasks(ctx); err != nil {
		return err
	}
	// Synced with the tasks, so that no task is judged without its cluster's policy.
	if _, err := a.cache.GetInformer(ctx, &ecsv1alpha1.Cluster{}); err != nil {
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
	engineErr := make(chan error, 1)
	go func() { engineErr <- a.eng.Run(ctx) }()
	a.syncAll(ctx)
	a.forgetOrphans(ctx)

	var wg sync.WaitGroup
	for i := 0; i < syncWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.processNext(ctx) {
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); a.reporter.run(ctx) }()
	go func() { defer wg.Done(); a.reportUsage(ctx) }()
	log.Info("agent running")

	var err error
	select {
	case <-ctx.Done():
	case err = <-engineErr:
	case err = <-cacheErr:
	}
	a.queue.ShutDown()
	wg.Wait()
	return err
}

// newRegistrar describes this machine: containerd's version, its cores and memory,
// its attributes and addresses.
func (a *Agent) newRegistrar(ctx context.Context) error {
	rtVersion, err := a.rt.Version(ctx)
	if err != nil {
		return fmt.Errorf("asking containerd for its version: %w", err)
	}
	cpu, mem, err := registration.DetectResources(a.opts.ReservedMemoryMiB)
	if err != nil {
		return err
	}
	attrs := registration.BuiltinAttributes(a.opts.Zone)
	for k, v := range a.opts.Attributes {
		attrs[k] = v
	}
	a.reg, err = registration.New(a.c, registration.Config{
		Name: a.opts.Name, Cluster: a.opts.Cluster, CPU: cpu, Memory: mem, Attributes: attrs,
		Addresses: registration.DetectAddresses(), AgentVersion: version.Version, RuntimeVersion: rtVersion,
		LeaseInterval: a.opts.LeaseInterval,
	})
	return err
}

// watchTasks queues every change of a task bound to this instance.
func (a *Agent) watchTasks(ctx context.Context) error {
	inf, err := a.cache.GetInformer(ctx, &ecsv1alpha1.Task{})
	if err != nil {
		return err
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { a.enqueue(o) },
		UpdateFunc: func(_, o any) { a.enqueue(o) },
		DeleteFunc: func(o any) { a.enqueue(o) },
	})
	return err
}

// registerUntilDone retries registration while the apiserver is unreachable: the
// machine's containers keep running meanwhile.
func (a *Agent) registerUntilDone(ctx context.Context) error {
	for {
		err := a.reg.Register(ctx, a.currentUsage())
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		ctrl.LoggerFrom(ctx).Error(err, "registration failed; retrying")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (a *Agent) enqueue(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if t, ok := o.(*ecsv1alpha1.Task); ok {
		a.queue.Add(client.ObjectKeyFromObject(t))
	}
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "syncing task; retrying", "task", key.String())
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// syncAll brings every cached task into the engine once, before orphans are judged.
func (a *Agent) syncAll(ctx context.Context) {
	var tasks ecsv1alpha1.TaskList
	if err := a.cache.List(ctx, &tasks); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing tasks")
		return
	}
	for i := range tasks.Items {
		if err := a.sync(ctx, client.ObjectKeyFromObject(&tasks.Items[i])); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "syncing task", "task", client.ObjectKeyFromObject(&tasks.Items[i]).String())
			a.queue.AddRateLimited(client.ObjectKeyFromObject(&tasks.Items[i]))
		}
	}
}

// forgetOrphans stops and removes the containers of tasks whose objects are gone
// (deleted while the agent was down, as when a Service is deleted meanwhile). It runs
// after the cache synced and every cached task was handed to the engine; a task is an
// orphan only if no cached task has its UID (the engine's workers claim recovered
// containers asynchronously, so "unclaimed" alone is not proof).
func (a *Agent) forgetOrphans(ctx context.Context) {
	a.mu.Lock()
	known := make(map[types.UID]bool, len(a.uids))
	for _, uid := range a.uids {
		known[uid] = true
	}
	a.mu.Unlock()
	for _, uid := range a.eng.Unclaimed() {
		if known[uid] {
			continue
		}
		ctrl.LoggerFrom(ctx).Info("removing the containers of a task that no longer exists", "taskUID", uid)
		a.eng.Forget(uid)
	}
}

// sync hands the task's desired state to the engine.
func (a *Agent) sync(ctx context.Context, key types.NamespacedName) error {
	var t ecsv1alpha1.Task
	if err := a.cache.Get(ctx, key, &t); err != nil {
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		a.mu.Lock()
		uid, ok := a.uids[key]
		delete(a.uids, key)
		delete(a.usage, uid)
		a.mu.Unlock()
		if ok {
			a.guard.forget(uid)
			a.eng.Forget(uid)
		}
		return nil
	}
	a.mu.Lock()
	if old, ok := a.uids[key]; ok && old != t.UID {
		a.mu.Unlock()
		a.eng.Forget(old) // deleted and re-created under the same name
		a.mu.Lock()
	}
	a.uids[key] = t.UID
	a.mu.Unlock()
	if t.Status.LastStatus == ecsv1alpha1.TaskStopped && t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
		a.release(t.UID)
	}
	d, err := a.desired(ctx, &t)
	if err == nil {
		err = a.admit(ctx, &t, d)
	}
	if err != nil {
		var failure *startFailure
		if errors.As(err, &failure) {
			a.release(t.UID)
			return a.reporter.failed(ctx, &t, failure.reason)
		}
		return err
	}
	a.eng.Update(d)
	return nil
}

// startFailure is a task that cannot start until its spec or its references change.
type startFailure struct{ reason string }

func (e *startFailure) Error() string { return e.reason }

// desired builds the engine's view of a task: its revision, environment and
// credentials.
func (a *Agent) desired(ctx context.Context, t *ecsv1alpha1.Task) (engine.Desired, error) {
	d := engine.Desired{
		Task: client.ObjectKeyFromObject(t), UID: t.UID, Overrides: t.Spec.Overrides,
		DesiredStatus: t.Spec.DesiredStatus, StopCode: t.Spec.StopCode, StopReason: t.Spec.StopReason,
		Status: t.Status.DeepCopy(),
	}
	ref, err := revision.ParseRef(t.Spec.TaskDefinition)
	if err != nil {
		return d, &startFailure{reason: "spec.taskDefinition: " + err.Error()}
	}
	if n := t.Status.TaskDefinitionRevision; n > 0 {
		ref.Revision = n
	}
	res, err := a.revs.Resolve(ctx, t.Namespace, ref)
	if err != nil {
		if d.DesiredStatus == ecsv1alpha1.DesiredStopped {
			return d, nil // stop whatever runs; the revision is not needed for that
		}
		if revision.IsNotFound(err) {
			return d, &startFailure{reason: err.Error()}
		}
		return d, err
	}
	d.Revision, d.Spec = res.Ref.String(), res.Spec
	if d.DesiredStatus == ecsv1alpha1.DesiredStopped {
		return d, nil
	}
	env, err := a.secrets.Env(ctx, t.Namespace, res.Spec)
	if err != nil {
		var missing *secrets.MissingError
		if errors.As(err, &missing) {
			return d, &startFailure{reason: "CannotPullContainerSecrets: " + missing.Error()}
		}
		return d, err
	}
	d.Env = map[string]map[string]string{}
	for _, c := range res.Spec.ContainerDefinitions {
		d.Env[c.Name] = a.metadataEnv(t, res.Ref.String(), c.Name)
		for k, v := range env[c.Name] {
			d.Env[c.Name][k] = v
		}
	}
	auth, err := a.secrets.RegistryAuth(ctx, t.Namespace, res.Spec)
	if err != nil {
		return d, &startFailure{reason: "CannotPullContainerError: " + err.Error()}
	}
	d.Auth = map[string]*runtime.Auth{}
	for _, c := range res.Spec.ContainerDefinitions {
		if cred := auth[c.Name]; cred != nil {
			d.Auth[secrets.RegistryHost(c.Image)] = cred
		}
	}
	if req, err := placement.RequestFor(string(t.UID), t.Spec.Group, res.Spec, t.Spec.Overrides); err == nil {
		a.mu.Lock()
		a.usage[t.UID] = req
		a.mu.Unlock()
	}
	return d, nil
}

// Environment variables the agent gives every container, as the ECS agent gives
// ECS_CONTAINER_METADATA_URI: where the container runs. They are the lowest layer of
// the environment, so the task definition, secrets and overrides can replace them.
const (
	EnvCluster           = "BERTH_CLUSTER"
	EnvContainerInstance = "BERTH_CONTAINER_INSTANCE"
	EnvTask              = "BERTH_TASK"
	EnvTaskDefinition    = "BERTH_TASK_DEFINITION"
	EnvContainerName     = "BERTH_CONTAINER_NAME"
)

// metadataEnv is the metadata environment of container name of task t, which runs
// revision rev ("family:N").
func (a *Agent) metadataEnv(t *ecsv1alpha1.Task, rev, name string) map[string]string {
	return map[string]string{
		EnvCluster:           a.opts.Cluster,
		EnvContainerInstance: a.opts.Name,
		EnvTask:              t.Namespace + "/" + t.Name,
		EnvTaskDefinition:    rev,
		EnvContainerName:     name,
	}
}

func (a *Agent) release(uid types.UID) {
	a.mu.Lock()
	delete(a.usage, uid)
	a.mu.Unlock()
}

// currentUsage sums what the tasks on the instance hold, for its status.
func (a *Agent) currentUsage() registration.Usage {
	var u registration.Usage
	for _, r := range a.eng.Tasks() {
		switch r.LastStatus {
		case ecsv1alpha1.TaskRunning:
			u.Running++
		case ecsv1alpha1.TaskStopped:
		default:
			u.Pending++
		}
	}
	a.mu.Lock()
	for _, req := range a.usage {
		u.CPU += req.CPU
		u.Memory += req.Memory
		u.TCPPorts = append(u.TCPPorts, req.TCPPorts...)
		u.UDPPorts = append(u.UDPPorts, req.UDPPorts...)
	}
	a.mu.Unlock()
	return u
}

// reportUsage writes the instance's usage when it changed, at most every
// StatusInterval, and the runtime's health.
func (a *Agent) reportUsage(ctx context.Context) {
	t := time.NewTicker(a.opts.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u := a.currentUsage()
		if _, err := a.rt.Version(ctx); err != nil {
			u.RuntimeErr = fmt.Errorf("containerd at %s is not reachable: %w", a.opts.ContainerdAddress, err)
		}
		if err := a.reg.Report(ctx, u); err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "reporting instance usage")
		}
	}
}
