// Package hollow simulates many container instances in one process, as kubemark's
// hollow nodes do for Kubernetes: each simulated instance is the real node agent
// (package agent: its registration and heartbeat, its task engine with the same
// dependsOn, health check, essential-exit, stop and restart rules, its status
// reporting) running over an in-memory container runtime (agent/runtime/fake) and an
// in-memory network (agent/network.Memory) that allocates host ports by the real
// rules. Nothing here decides a task's status: the engine does, as on a machine.
//
// The process is built to scale: every instance shares one client, one watch of
// the cluster's Tasks (a field selector on spec.cluster), one revision resolver and
// one status reporter; each instance has its own registration, engine and runtime.
// The control plane is then tested (test/controlplane) and benchmarked (bench)
// against the agent's own logic, with thousands of instances.
//
// Simulated behaviour is chosen by image: images named by FailImages exit with code 1
// right after they start (an essential one stops its task with
// EssentialContainerExited), health checks in images named by UnhealthyImages fail
// (so the engine marks them UNHEALTHY after their retries). Disconnect cuts one
// instance off the apiserver (its writes fail, it sees no changes) while its
// containers keep running. Every simulated container uses 16 CPU units and 16 MiB,
// which the agent measures for status.utilization as it would a real one's.
package hollow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/network"
	"github.com/berthdev/berth/agent/registration"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/version"
)

// syncWorkers bring tasks in step with the API for all the instances together.
const syncWorkers = 16

// maxReportWorkers bounds reportWorkers.
const maxReportWorkers = 64

// reportWorkers is how many task statuses the simulated instances write in parallel:
// as many as that many machines would (agent.DefaultReportWorkers each), up to
// maxReportWorkers, beyond which the process's client rate limit (--kube-api-qps)
// bounds them anyway. With the one machine's 4 for 1,000 instances, a scale-out's
// RUNNING reports trailed their starts by up to 85 s (the benchmarks' timeline,
// issue 16): the simulator, not the control plane, set the pace.
func reportWorkers(instances int) int {
	return min(maxReportWorkers, instances*agent.DefaultReportWorkers)
}

// Agent simulates the instances of a Config against an apiserver.
type Agent struct {
	cfg    Config
	client client.Client
	agent  *agent.Agent
	// runtimes and gates are each instance's in-memory runtime and its connection to
	// the apiserver.
	runtimes map[string]*fake.Runtime
	gates    map[string]*gate

	mu      sync.Mutex
	started bool
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
	c, err := client.New(rc, client.Options{Scheme: kube.Scheme})
	if err != nil {
		return nil, fmt.Errorf("hollow: building client: %w", err)
	}
	ch, err := agent.NewCache(rc, cfg.Cluster, fields.OneTermEqualSelector(ecsv1alpha1.TaskFieldCluster, cfg.Cluster), nil)
	if err != nil {
		return nil, fmt.Errorf("hollow: building cache: %w", err)
	}
	h := &Agent{cfg: cfg, client: c, runtimes: map[string]*fake.Runtime{}, gates: map[string]*gate{}}
	instances := make([]agent.InstanceConfig, 0, cfg.Instances)
	for i := range cfg.Instances {
		ic := h.instance(i)
		instances = append(instances, ic)
	}
	h.agent, err = agent.NewAgent(agent.Config{Client: c, Cache: ch, SyncWorkers: syncWorkers,
		ReportWorkers: reportWorkers(cfg.Instances), Log: ctrl.Log.WithName("hollow")}, instances...)
	if err != nil {
		return nil, fmt.Errorf("hollow: %w", err)
	}
	return h, nil
}

// instance builds simulated instance i: the agent's configuration of a machine with
// the Config's resources and attributes, on an in-memory runtime and network.
func (h *Agent) instance(i int) agent.InstanceConfig {
	cfg := &h.cfg
	name := instanceName(cfg.NamePrefix, i)
	rt := fake.New(fake.Lean(), fake.WithPullLatency(cfg.RunningDelay), fake.WithUsage(simulatedCPUShare, simulatedMemory))
	for sub, b := range cfg.behaviors() {
		rt.SetBehavior(sub, b)
	}
	g := &gate{Client: h.client, instance: name}
	h.runtimes[name], h.gates[name] = rt, g
	attrs := map[string]string{
		ecsv1alpha1.AttributeOSType:          "linux",
		ecsv1alpha1.AttributeCPUArchitecture: ecsv1alpha1.CPUArchitectureAttribute(goruntime.GOARCH),
		ecsv1alpha1.AttributeInstanceType:    "hollow",
	}
	maps.Copy(attrs, cfg.Attributes)
	attrs[ecsv1alpha1.AttributeAvailabilityZone] = cfg.Zones[i%len(cfg.Zones)]
	return agent.InstanceConfig{
		Registration: registration.Config{
			Name: name, Cluster: cfg.Cluster, CPU: cfg.CPU, Memory: cfg.Memory, GPUs: cfg.gpuIDs(), Attributes: attrs,
			Addresses:    []ecsv1alpha1.InstanceAddress{{Type: ecsv1alpha1.AddressInternalIP, Address: instanceAddress(i)}},
			AgentVersion: "hollow/" + version.Version, RuntimeName: "hollow", RuntimeVersion: "in-memory",
			LeaseInterval: cfg.LeaseInterval,
		},
		Runtime: rt, Network: network.NewMemory(), Dirs: noDirs{},
		// The in-memory runtime runs no process: any path lets simulated tasks with
		// pidMode or ipcMode task run as on a real agent.
		PauseBinary: "/hollow/berth",
		PullPolicy:  runtime.PullDefault, StateDir: "/hollow/" + name, StatusInterval: cfg.StatusInterval,
		UtilizationInterval: cfg.UtilizationInterval,
		Client:              g,
	}
}

// gpuIDs are the IDs of an instance's simulated GPUs: 0 to GPUs-1, as a machine's
// device nodes number them.
func (c *Config) gpuIDs() []string {
	if c.GPUs == 0 {
		return nil
	}
	ids := make([]string, c.GPUs)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return ids
}

// instanceAddress is simulated instance i's InternalIP, 10.250.0.1 onwards: an
// address an EndpointSlice can hold (the apiserver refuses loopback ones), unique
// per instance, as machines' addresses are. Nothing listens on it.
func instanceAddress(i int) string {
	n := i + 1
	return fmt.Sprintf("10.%d.%d.%d", 250+n>>16, n>>8&0xff, n&0xff)
}

// What every simulated container uses, so that status.utilization and the figures
// the manager adds up from it are not all zero: 16 CPU units and 16 MiB.
const (
	simulatedCPUShare = 1.0 / 64
	simulatedMemory   = 16 << 20
)

// failAfter is how long a process of a FailImages image runs before it exits.
const failAfter = 10 * time.Millisecond

// Names lists the simulated instances, in index order (deregistered ones excluded).
func (h *Agent) Names() []string { return h.agent.Names() }

// Runtime is the in-memory runtime of an instance, for tests that look at or act on
// its containers; nil for an unknown instance.
func (h *Agent) Runtime(instance string) *fake.Runtime { return h.runtimes[instance] }

// RunningTasks is the number of tasks with a running container on the instance:
// what the machine runs, whatever the apiserver says. Tests use it to prove that no
// task runs twice.
func (h *Agent) RunningTasks(instance string) int {
	rt := h.runtimes[instance]
	if rt == nil || h.agent.Instance(instance) == nil {
		return 0
	}
	infos, err := rt.List(context.Background(), nil)
	if err != nil {
		return 0
	}
	tasks := map[string]bool{}
	for _, info := range infos {
		if info.Status == runtime.StatusRunning {
			tasks[info.Labels[runtime.LabelTaskUID]] = true
		}
	}
	return len(tasks)
}

// Disconnect cuts the instance off the apiserver, as a machine that loses its
// network: its Lease renewals and status writes fail, and it sees no changes of its
// tasks. Its containers keep running.
func (h *Agent) Disconnect(instance string) error {
	g := h.gates[instance]
	if g == nil {
		return fmt.Errorf("hollow: no instance %q", instance)
	}
	g.cut(true)
	return h.agent.Partition(instance, true)
}

// Reconnect ends a Disconnect: the instance renews its Lease again and catches up
// with its tasks, for example stopping those the control plane stopped meanwhile.
func (h *Agent) Reconnect(instance string) error {
	g := h.gates[instance]
	if g == nil {
		return fmt.Errorf("hollow: no instance %q", instance)
	}
	g.cut(false)
	return h.agent.Partition(instance, false)
}

// Deregister switches the instance off and deletes its ContainerInstance and Lease,
// as an operator deregistering a machine.
func (h *Agent) Deregister(instance string) error {
	if err := h.agent.StopInstance(instance); err != nil {
		return fmt.Errorf("hollow: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: instance}}
	if err := h.client.Delete(ctx, lease); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("hollow: deleting Lease of %s: %w", instance, err)
	}
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: instance}}
	if err := h.client.Delete(ctx, ci); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("hollow: deleting ContainerInstance %s: %w", instance, err)
	}
	return nil
}

// Run registers the instances and simulates them until ctx is done. A process
// started again with the same Config is the same machines after a reboot: they
// register again, and the tasks the API shows running on them are found without
// containers (ContainerLost) and stopped, as the agent does on a rebooted machine.
func (h *Agent) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("hollow: Run called twice")
	}
	h.started = true
	h.mu.Unlock()
	log := ctrl.LoggerFrom(ctx).WithValues(logCluster, h.cfg.Cluster)
	if err := h.checkAPI(); err != nil {
		return err
	}
	if err := h.ensureLeaseNamespace(ctx); err != nil {
		return err
	}
	log.Info("hollow agent running", logInstances, h.cfg.Instances, "leaseInterval", h.cfg.LeaseInterval, "runningDelay", h.cfg.RunningDelay)
	err := h.agent.Run(ctrl.LoggerInto(ctx, log))
	log.Info("hollow agent stopped")
	return err
}

// checkAPI fails early, with a message that says what to do, when the apiserver does
// not serve Berth's kinds.
func (h *Agent) checkAPI() error {
	for _, kind := range []string{"ContainerInstance", "Task"} {
		gvk := ecsv1alpha1.GroupVersion.WithKind(kind)
		if _, err := h.client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("hollow: the apiserver does not serve %s (are Berth's CRDs installed?): %w", gvk, err)
		}
	}
	return nil
}

// ensureLeaseNamespace creates the namespace of the instance Leases if needed.
func (h *Agent) ensureLeaseNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.NodeLeaseNamespace}}
	err := h.client.Create(ctx, ns)
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	// Without the right to create namespaces (an agent's identity has none), the
	// namespace may still exist, or the manager creates it: heartbeats retry.
	if getErr := h.client.Get(ctx, client.ObjectKeyFromObject(ns), ns); getErr == nil || apierrors.IsForbidden(err) {
		return nil
	}
	return fmt.Errorf("hollow: creating namespace %s: %w", ecsv1alpha1.NodeLeaseNamespace, err)
}

// noDirs is a host filesystem that keeps nothing: simulated tasks need no volume or
// log directories, nor /etc files.
type noDirs struct{}

func (noDirs) MkdirAll(string, os.FileMode) error { return nil }
func (noDirs) Chmod(string, os.FileMode) error    { return nil }
func (noDirs) RemoveAll(string) error             { return nil }
func (noDirs) WriteFile(string, []byte, os.FileMode) error {
	return nil
}

// ReadFile finds nothing: a simulated shared volume is never found again, so one
// with autoprovision is made (as nothing) each time and one without fails its task.
func (noDirs) ReadFile(string) ([]byte, error)            { return nil, fs.ErrNotExist }
func (noDirs) Rename(string, string) error                { return nil }
func (noDirs) ReadDir(string) ([]string, error)           { return nil, fs.ErrNotExist }
func (noDirs) MountTmpfs(string, []string) error          { return nil }
func (noDirs) UnmountAll(string) error                    { return nil }
func (noDirs) Mkfifo(string, os.FileMode, int, int) error { return nil }

// RBAC of `berth hollow`, beside the berth-agent ClusterRole's writes: it simulates
// many instances through one identity, so it reads their tasks directly, not
// through the gateway (which serves one instance per identity). Never give a real
// machine this identity.
//
// +kubebuilder:rbac:groups=ecs.berth.dev,resources=tasks;taskdefinitions;clusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch
