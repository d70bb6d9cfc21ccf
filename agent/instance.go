package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/go-logr/logr"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/agent/registration"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/secrets"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// InstanceConfig is one container instance of an agent process: the machine it
// describes and what it runs containers with. `berth agent` has one, on containerd
// and CNI; `berth hollow` has thousands, each on an in-memory runtime and network,
// running the same registration, engine and reporting code.
type InstanceConfig struct {
	// Registration describes the instance: name, cluster, resources, attributes,
	// addresses, versions, lease interval.
	Registration registration.Config
	// Runtime runs the instance's containers.
	Runtime runtime.Runtime
	// Network gives bridge-mode tasks their network; nil fails bridge tasks.
	Network engine.Network
	// Dirs is the host filesystem the engine keeps task directories in (default: the
	// real one).
	Dirs engine.HostDirs
	// PullPolicy is the image pull behaviour.
	PullPolicy runtime.PullPolicy
	// StateDir holds task volumes and container logs.
	StateDir string
	// ResolvConf is the instance's /etc/resolv.conf, the base of bridge and awsvpc
	// containers' own.
	ResolvConf string
	// DevDir is the machine's /dev, where assigned GPUs' device nodes are found;
	// empty gives containers none (berth hollow).
	DevDir string
	// PauseBinary is the static berth binary run as tasks' pause process ("" fails
	// tasks with pidMode or ipcMode task).
	PauseBinary string
	// StatusInterval bounds how often the instance's usage is written while its tasks
	// change (DefaultStatusInterval).
	StatusInterval time.Duration
	// UtilizationInterval is the window its tasks' use is measured over, for
	// status.utilization (default metrics.DefaultInterval, a minute).
	UtilizationInterval time.Duration
	// Client is the instance's own connection to the apiserver, for its writes and
	// the Secrets its tasks read; nil uses the agent's. A simulator gives each
	// instance its own so that one can lose its connection alone.
	Client client.Client
	// Secrets reads the Secrets and ConfigMaps task ns/task references; nil reads
	// them with the instance's client.
	Secrets func(ns, task string) client.Reader
}

// Instance runs the tasks bound to one container instance: it registers the instance,
// renews its heartbeat, hands each task's desired state to its task engine, and
// reports what runs on it.
type Instance struct {
	name, cluster string
	// gpus are the GPUs the instance registered.
	gpus []string
	// log is the agent's logger with the instance's name.
	log            logr.Logger
	statusInterval time.Duration
	c              client.Client
	rt             runtime.Runtime
	eng            *engine.Engine
	reg            *registration.Registrar
	// secrets reads what a task references (the manager's gateway, for a real agent).
	secrets func(ns, task string) client.Reader
	// guard checks tasks against the cluster's container policy before they start.
	guard *policyGuard
	// sampler measures the tasks' use; each window it reports goes to utilization,
	// and utilizationReady tells reportUsage to write it at once.
	sampler          *metrics.Sampler
	utilizationReady chan struct{}

	mu sync.Mutex
	// uids remembers each known task's UID, to forget its containers once its object
	// is deleted.
	uids map[types.NamespacedName]types.UID
	// usage is what each task the instance accepted holds on it until it stops.
	usage map[types.UID]taskrules.Resources
	// gpusHeld are the GPUs each task the instance accepted is assigned.
	gpusHeld map[types.UID][]string
	// utilization is the sampler's latest report, sent with every status write.
	utilization *ecsv1alpha1.InstanceUtilization
	// partitioned is set while the instance cannot see the apiserver's changes (a
	// simulated network partition); missed are the tasks that changed meanwhile.
	partitioned bool
	missed      map[types.NamespacedName]bool
	// stop ends the instance's goroutines; done is closed when they have ended.
	stop context.CancelFunc
	done chan struct{}
}

func newInstance(a *Agent, cfg InstanceConfig) (*Instance, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("an instance needs a container runtime")
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = DefaultStatusInterval
	}
	c := cfg.Client
	if c == nil {
		c = a.c
	}
	reg, err := registration.New(c, cfg.Registration)
	if err != nil {
		return nil, err
	}
	inst := &Instance{
		name: cfg.Registration.Name, cluster: cfg.Registration.Cluster, gpus: cfg.Registration.GPUs, statusInterval: cfg.StatusInterval,
		c: c, rt: cfg.Runtime, reg: reg, secrets: cfg.Secrets, guard: newPolicyGuard(),
		uids: map[types.NamespacedName]types.UID{}, usage: map[types.UID]taskrules.Resources{}, gpusHeld: map[types.UID][]string{},
		missed: map[types.NamespacedName]bool{}, done: make(chan struct{}), utilizationReady: make(chan struct{}, 1),
	}
	if inst.secrets == nil {
		inst.secrets = func(string, string) client.Reader { return c }
	}
	inst.log = a.log.WithValues(logInstance, inst.name)
	if cfg.UtilizationInterval == 0 {
		cfg.UtilizationInterval = metrics.DefaultInterval
	}
	inst.sampler = metrics.NewSampler(metrics.SamplerConfig{
		Runtime: cfg.Runtime, Interval: cfg.UtilizationInterval, Lookup: a.taskInfo, Reserved: inst.reservations,
		Report: inst.setUtilization, Log: inst.log.WithName("utilization"),
		// Instances started together (a fleet after an outage, berth hollow) would
		// otherwise measure and write in step.
		Offset: rand.N(metrics.SampleEvery(cfg.UtilizationInterval)),
	})
	inst.eng = engine.New(engine.Config{
		Runtime:    &policyRuntime{Runtime: cfg.Runtime, guard: inst.guard},
		PullPolicy: cfg.PullPolicy, StateDir: cfg.StateDir, Network: cfg.Network, Dirs: cfg.Dirs,
		Cluster: inst.cluster, Instance: inst.name, ResolvConf: cfg.ResolvConf, DevDir: cfg.DevDir, PauseBinary: cfg.PauseBinary,
		Report: func(r engine.Report) { a.reporter.enqueue(inst, r) },
		Log:    inst.log.WithName("engine"),
	})
	return inst, nil
}

// Name is the ContainerInstance's name.
func (i *Instance) Name() string { return i.name }

// Runtime is the runtime the instance's containers run in.
func (i *Instance) Runtime() runtime.Runtime { return i.rt }

// Tasks returns the engine's last report of every task the instance runs or ran.
func (i *Instance) Tasks() []engine.Report { return i.eng.Tasks() }

// prepare rebuilds the instance's state from its runtime and registers it, before
// any task is handed to its engine: a restarted agent adopts its containers instead
// of starting second copies.
func (i *Instance) prepare(ctx context.Context) error {
	if err := i.eng.Recover(ctx); err != nil {
		return fmt.Errorf("recovering the containers of instance %s: %w", i.name, err)
	}
	// A previous run admitted the tasks it started: the container policy does not
	// stop them when it was tightened since.
	i.guard.admitRecovered(i.eng.Unclaimed())
	return i.registerUntilDone(ctx)
}

// registerUntilDone retries registration while the apiserver is unreachable: the
// machine's containers keep running meanwhile.
func (i *Instance) registerUntilDone(ctx context.Context) error {
	for {
		err := i.reg.Register(ctx, i.currentUsage())
		if err == nil || ctx.Err() != nil {
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

// runHeartbeat renews the Lease, measures the tasks and writes the instance's usage
// until ctx ends.
func (i *Instance) runHeartbeat(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(3)
	go func() { defer wg.Done(); i.reg.Heartbeat(ctx) }()
	go func() { defer wg.Done(); i.reportUsage(ctx) }()
	go func() { defer wg.Done(); i.sampler.Run(ctx) }()
}

// reportUsage writes the instance's usage and the runtime's health when it is due
// (statusDue: at most every statusInterval while tasks change, at once when the
// instance empties or a utilization window ends). Report itself skips a write that
// would change nothing.
func (i *Instance) reportUsage(ctx context.Context) {
	t := time.NewTicker(min(statusCheckEvery, i.statusInterval))
	defer t.Stop()
	var last usageState
	for {
		ready := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-i.utilizationReady:
			ready = true
		}
		var u registration.Usage
		summed := false
		busy := func() bool {
			u, summed = i.currentUsage(), true
			return u.Running+u.Pending > 0
		}
		if !statusDue(time.Now(), last, i.statusInterval, ready, busy) {
			continue
		}
		if !summed {
			busy()
		}
		last = usageState{written: time.Now(), busy: u.Running+u.Pending > 0}
		if _, err := i.rt.Version(ctx); err != nil {
			u.RuntimeErr = fmt.Errorf("the container runtime is not reachable: %w", err)
		}
		if err := i.reg.Report(ctx, u); err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).Error(err, "reporting instance usage")
		}
	}
}

// currentUsage sums what the tasks on the instance hold, for its status: every task
// it accepted that has not STOPPED, counted from the engine's own reports.
func (i *Instance) currentUsage() registration.Usage {
	var u registration.Usage
	statuses := i.eng.LastStatuses()
	for _, st := range statuses {
		switch st {
		case ecsv1alpha1.TaskRunning:
			u.Running++
		case ecsv1alpha1.TaskStopped: // holds nothing, and is neither
		default:
			u.Pending++
		}
	}
	u.Volumes = i.sharedVolumes()
	i.mu.Lock()
	defer i.mu.Unlock()
	u.Utilization = i.utilization
	for uid, req := range i.usage {
		if statuses[uid] == ecsv1alpha1.TaskStopped {
			continue
		}
		u.CPU += req.CPU
		u.Memory += req.Memory
		u.TCPPorts = append(u.TCPPorts, req.TCPPorts...)
		u.UDPPorts = append(u.UDPPorts, req.UDPPorts...)
		u.GPUs = append(u.GPUs, i.gpusHeld[uid]...)
	}
	return u
}

// setUtilization keeps a window the sampler reports and has it written.
func (i *Instance) setUtilization(u *ecsv1alpha1.InstanceUtilization) {
	i.mu.Lock()
	i.utilization = u
	i.mu.Unlock()
	select {
	case i.utilizationReady <- struct{}{}:
	default: // a write is due already
	}
}

// reservations is what each task the instance accepted reserves on it, for the
// sampler.
func (i *Instance) reservations() map[types.UID]taskrules.Resources {
	i.mu.Lock()
	defer i.mu.Unlock()
	return maps.Clone(i.usage)
}

// sharedVolumes are the instance's shared Docker volumes, for its status. They are
// read from the agent's state directory, so a volume an operator removed there
// leaves the status with the next write.
func (i *Instance) sharedVolumes() []ecsv1alpha1.InstanceVolume {
	vols, err := i.eng.SharedVolumes()
	if err != nil {
		i.log.Error(err, "listing shared volumes")
		return nil
	}
	out := make([]ecsv1alpha1.InstanceVolume, 0, len(vols))
	for _, v := range vols {
		created := metav1.NewTime(v.CreatedAt)
		out = append(out, ecsv1alpha1.InstanceVolume{Namespace: v.Namespace, Name: v.Name, Driver: v.Driver, Type: v.Type, CreatedAt: &created})
	}
	return out
}

// sync hands task t's desired state to the engine.
func (i *Instance) sync(ctx context.Context, a *Agent, t *ecsv1alpha1.Task) error {
	key := client.ObjectKeyFromObject(t)
	i.mu.Lock()
	old, known := i.uids[key]
	i.uids[key] = t.UID
	i.mu.Unlock()
	if known && old != t.UID {
		i.forgetUID(old) // deleted and re-created under the same name
	}
	d, err := i.desired(ctx, a, t)
	if err == nil {
		err = i.admit(ctx, a, t, &d)
	}
	if err != nil {
		var failure *startFailure
		if errors.As(err, &failure) {
			i.release(t.UID)
			return a.reporter.failed(ctx, i, t, failure.reason)
		}
		return err
	}
	i.eng.Update(d)
	return nil
}

// forget is for a task whose object is gone: its containers are stopped and removed.
func (i *Instance) forget(key types.NamespacedName) {
	i.mu.Lock()
	uid, ok := i.uids[key]
	delete(i.uids, key)
	i.mu.Unlock()
	if ok {
		i.forgetUID(uid)
	}
}

func (i *Instance) forgetUID(uid types.UID) {
	i.release(uid)
	i.guard.forget(uid)
	i.eng.Forget(uid)
}

// forgetOrphans stops and removes the containers of tasks whose objects are gone
// (deleted while the agent was down, as when a Service is deleted meanwhile). It runs
// after the cache synced and every cached task was handed to the engine; a task is an
// orphan only if no cached task has its UID (the engine's workers claim recovered
// containers asynchronously, so "unclaimed" alone is not proof).
func (i *Instance) forgetOrphans(ctx context.Context) {
	i.mu.Lock()
	known := make(map[types.UID]bool, len(i.uids))
	for _, uid := range i.uids {
		known[uid] = true
	}
	i.mu.Unlock()
	for _, uid := range i.eng.Unclaimed() {
		if known[uid] {
			continue
		}
		ctrl.LoggerFrom(ctx).Info("removing the containers of a task that no longer exists", logTaskUID, uid)
		i.eng.Forget(uid)
	}
}

// definitionGrace is how long after its creation a task whose TaskDefinition is not
// found waits for it (retried with the queue's backoff) before it fails to start.
const definitionGrace = 30 * time.Second

// startFailure is a task that cannot start until its spec or its references change.
type startFailure struct{ reason string }

func (e *startFailure) Error() string { return e.reason }

// desired builds the engine's view of a task: its revision, environment and
// credentials.
func (i *Instance) desired(ctx context.Context, a *Agent, t *ecsv1alpha1.Task) (engine.Desired, error) {
	d := engine.Desired{
		Task: client.ObjectKeyFromObject(t), UID: t.UID, Overrides: t.Spec.Overrides,
		DesiredStatus: t.Spec.DesiredStatus, StopCode: t.Spec.StopCode, StopReason: t.Spec.StopReason,
		Status: t.Status.DeepCopy(),
	}
	ref, err := revision.TaskRef(t)
	if err != nil {
		return d, &startFailure{reason: "spec.taskDefinition: " + err.Error()}
	}
	res, err := a.revs.Resolve(ctx, t.Namespace, ref)
	if err != nil {
		if d.DesiredStatus == ecsv1alpha1.DesiredStopped {
			return d, nil // stop whatever runs; the revision is not needed for that
		}
		// A TaskDefinition applied together with the task may not have reached this
		// agent's cache yet: a young task waits for it a while before it fails.
		young := time.Since(t.CreationTimestamp.Time) < definitionGrace
		if revision.IsNotFound(err) && !revision.IsPending(err) && !young {
			return d, &startFailure{reason: err.Error()}
		}
		// A TaskDefinition applied together with the task (StartTask right after
		// RegisterTaskDefinition, a GitOps sync) is registered in a moment: retried
		// when its revision arrives (revisionWaiters), or after the queue's backoff.
		if revision.IsNotFound(err) {
			a.waiters.wait(types.NamespacedName{Namespace: t.Namespace, Name: ref.Family}, d.Task)
		}
		return d, err
	}
	d.Revision, d.Spec = res.Ref.String(), res.Spec
	if d.DesiredStatus == ecsv1alpha1.DesiredStopped {
		return d, nil
	}
	// Checked before anything is read for the task: an assignment this instance
	// cannot honour fails the task whatever else is wrong with it.
	if len(t.Spec.ImageDigests) > 0 {
		d.ImageDigests = make(map[string]string, len(t.Spec.ImageDigests))
		for _, p := range t.Spec.ImageDigests {
			d.ImageDigests[p.ContainerName] = p.Digest
		}
	}
	if d.GPUs, err = taskrules.CheckGPUAssignments(res.Spec, t.Spec.GPUAssignments, i.gpus); err != nil {
		return d, &startFailure{reason: "resourceRequirements: " + err.Error()}
	}
	if err := i.credentials(ctx, t, res.Spec, &d); err != nil {
		return d, err
	}
	if req, err := taskrules.TaskResources(res.Spec, t.Spec.Overrides); err == nil {
		i.mu.Lock()
		i.usage[t.UID] = req
		i.gpusHeld[t.UID] = taskrules.AssignedGPUs(t.Spec.GPUAssignments)
		i.mu.Unlock()
	}
	return d, nil
}

// credentials adds what the task's containers read from Secrets: their environment
// (secrets[].valueFrom) and their registries' auth (repositoryCredentials).
func (i *Instance) credentials(ctx context.Context, t *ecsv1alpha1.Task, spec *ecsv1alpha1.TaskDefinitionSpec, d *engine.Desired) error {
	r := &secrets.Resolver{Reader: i.secrets(t.Namespace, t.Name)}
	env, err := r.Env(ctx, t.Namespace, spec)
	if err != nil {
		var missing *secrets.MissingError
		if errors.As(err, &missing) {
			return &startFailure{reason: "CannotPullContainerSecrets: " + missing.Error()}
		}
		return err
	}
	for name, vals := range env {
		if len(vals) == 0 {
			continue // most containers read no secret: keep nothing for them
		}
		if d.Env == nil {
			d.Env = map[string]map[string]string{}
		}
		d.Env[name] = vals
	}
	auth, err := r.RegistryAuth(ctx, t.Namespace, spec)
	if err != nil {
		return &startFailure{reason: "CannotPullContainerError: " + err.Error()}
	}
	d.Auth = map[string]*runtime.Auth{}
	for _, c := range spec.ContainerDefinitions {
		if cred := auth[c.Name]; cred != nil {
			d.Auth[secrets.RegistryHost(c.Image)] = cred
		}
	}
	return nil
}

func (i *Instance) release(uid types.UID) {
	i.mu.Lock()
	delete(i.usage, uid)
	delete(i.gpusHeld, uid)
	i.mu.Unlock()
}
