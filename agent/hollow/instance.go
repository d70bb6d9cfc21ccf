package hollow

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/version"
)

// maxReportedPorts is the API's bound on the port lists of an instance's resources.
const maxReportedPorts = 1000

// instance is one simulated machine. Its fields after apiMu are guarded by Agent.mu.
type instance struct {
	name       string
	attributes []ecsv1alpha1.Attribute

	// apiMu serializes the instance's registration and Lease writes with Deregister,
	// so that a write in flight cannot recreate what Deregister deletes.
	apiMu sync.Mutex

	disconnected bool
	gone         bool
	registered   bool
	uid          types.UID
	registeredAt metav1.Time
	readySince   metav1.Time
	tasks        map[types.NamespacedName]*simTask
	ports        *portTable
	lastReport   *instanceReport
	lastReportAt time.Time
	lease        *coordinationv1.Lease
}

func newInstance(cfg *Config, i int) *instance {
	attrs := map[string]string{
		AttributeOSType:          "linux",
		AttributeCPUArchitecture: cpuArchitecture(goruntime.GOARCH),
		AttributeInstanceType:    "hollow",
	}
	for k, v := range cfg.Attributes {
		attrs[k] = v
	}
	attrs[AttributeZone] = cfg.Zones[i%len(cfg.Zones)]
	list := make([]ecsv1alpha1.Attribute, 0, len(attrs))
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		list = append(list, ecsv1alpha1.Attribute{Name: k, Value: attrs[k]})
	}
	return &instance{
		name:       instanceName(cfg.NamePrefix, i),
		attributes: list,
		tasks:      map[types.NamespacedName]*simTask{},
		ports:      newPortTable(),
	}
}

// cpuArchitecture names GOARCH as ECS's ecs.cpu-architecture attribute does.
func cpuArchitecture(goarch string) string {
	if goarch == "amd64" {
		return "x86_64"
	}
	return goarch
}

// instanceReport is the part of an instance's status the agent owns.
type instanceReport struct {
	registered, remaining ecsv1alpha1.Resources
	running, pending      int32
	attributes            []ecsv1alpha1.Attribute
	registeredAt          metav1.Time
	readySince            metav1.Time
}

// report computes the instance's status from its simulated tasks. Callers hold
// Agent.mu.
func (inst *instance) report(cfg *Config) instanceReport {
	r := instanceReport{
		registered:   ecsv1alpha1.Resources{Cpu: cfg.CPU, Memory: cfg.Memory, Ports: capPorts(ReservedPorts)},
		attributes:   inst.attributes,
		registeredAt: inst.registeredAt,
		readySince:   inst.readySince,
	}
	cpu, memory := cfg.CPU, cfg.Memory
	for _, st := range inst.tasks {
		switch st.phase {
		case phaseStopped:
			continue
		case phaseRunning:
			r.running++
		default:
			r.pending++
		}
		cpu -= st.cpu
		memory -= st.memory
	}
	tcp, udp := staticPorts(inst.tasks)
	// The API forbids negative amounts; an instance overcommitted by StartTask has
	// nothing left.
	r.remaining = ecsv1alpha1.Resources{Cpu: max(cpu, 0), Memory: max(memory, 0), Ports: capPorts(tcp), UDPPorts: capPorts(udp)}
	return r
}

func capPorts(p []int32) []int32 {
	if len(p) > maxReportedPorts {
		return p[:maxReportedPorts]
	}
	return p
}

func resourcesAC(r ecsv1alpha1.Resources) *ecsac.ResourcesApplyConfiguration {
	ac := ecsac.Resources().WithCpu(r.Cpu).WithMemory(r.Memory)
	if len(r.Ports) > 0 {
		ac.WithPorts(r.Ports...)
	}
	if len(r.UDPPorts) > 0 {
		ac.WithUDPPorts(r.UDPPorts...)
	}
	return ac
}

// applyConfig is the whole agent-owned status of the instance. It leaves out
// status.status, agentConnected and the Connected condition: the manager owns them.
func (r *instanceReport) applyConfig(name string) *ecsac.ContainerInstanceApplyConfiguration {
	attrs := make([]*ecsac.AttributeApplyConfiguration, 0, len(r.attributes))
	for _, a := range r.attributes {
		attrs = append(attrs, ecsac.Attribute().WithName(a.Name).WithValue(a.Value))
	}
	return ecsac.ContainerInstance(name).WithStatus(ecsac.ContainerInstanceStatus().
		WithRegisteredResources(resourcesAC(r.registered)).
		WithRemainingResources(resourcesAC(r.remaining)).
		WithRunningTasksCount(r.running).
		WithPendingTasksCount(r.pending).
		WithAttributes(attrs...).
		WithAddresses(ecsac.InstanceAddress().WithType(ecsv1alpha1.AddressInternalIP).WithAddress("127.0.0.1")).
		WithVersionInfo(ecsac.VersionInfo().WithAgentVersion("hollow/" + version.Version).WithContainerdVersion("hollow")).
		WithRegisteredAt(r.registeredAt).
		WithConditions(metav1ac.Condition().
			WithType(ecsv1alpha1.InstanceConditionRuntimeReady).
			WithStatus(metav1.ConditionTrue).
			WithReason(ecsv1alpha1.ReasonRuntimeUp).
			WithMessage("hollow runtime: containers are simulated").
			WithLastTransitionTime(r.readySince)))
}

// syncStatus registers the instance if needed and writes its status when it changed,
// at most every statusMinInterval.
func (a *Agent) syncStatus(ctx context.Context, name string) (time.Duration, error) {
	a.mu.Lock()
	inst := a.instances[name]
	if inst == nil || inst.disconnected {
		a.mu.Unlock()
		return 0, nil
	}
	registered := inst.registered
	a.mu.Unlock()
	if !registered {
		if err := a.register(ctx, inst); err != nil {
			return 0, err
		}
		a.leases.Add(name)
	}

	a.mu.Lock()
	if inst.gone || inst.disconnected {
		a.mu.Unlock()
		return 0, nil
	}
	if wait := time.Until(inst.lastReportAt.Add(statusMinInterval)); inst.lastReport != nil && wait > 0 {
		a.mu.Unlock()
		return wait, nil
	}
	report := inst.report(&a.cfg)
	unchanged := inst.lastReport != nil && reflect.DeepEqual(report, *inst.lastReport)
	a.mu.Unlock()
	if unchanged {
		return 0, nil
	}

	err := a.client.Status().Apply(ctx, report.applyConfig(name), client.FieldOwner(ecsv1alpha1.FieldManagerAgent), client.ForceOwnership)
	if apierrors.IsNotFound(err) {
		// Deleted behind the agent's back: register again, as a kubelet does.
		a.mu.Lock()
		inst.registered = false
		a.mu.Unlock()
		return 0, fmt.Errorf("writing status of ContainerInstance %s: %w", name, err)
	}
	if err != nil {
		return 0, fmt.Errorf("writing status of ContainerInstance %s: %w", name, err)
	}
	a.mu.Lock()
	inst.lastReport = &report
	inst.lastReportAt = time.Now()
	a.mu.Unlock()
	return 0, nil
}

// register creates the instance's ContainerInstance, or adopts an existing one of the
// same cluster (a restarted agent) keeping its registration time.
func (a *Agent) register(ctx context.Context, inst *instance) error {
	inst.apiMu.Lock()
	defer inst.apiMu.Unlock()
	log := ctrl.LoggerFrom(ctx).WithValues(logInstance, inst.name)
	a.mu.Lock()
	gone := inst.gone
	a.mu.Unlock()
	if gone {
		return nil
	}

	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: inst.name},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: a.cfg.Cluster},
	}
	now := metav1.Now().Rfc3339Copy()
	registeredAt, readySince := now, now
	err := a.client.Create(ctx, ci, client.FieldOwner(ecsv1alpha1.FieldManagerAgent))
	switch {
	case err == nil:
		log.V(1).Info("registered instance")
	case apierrors.IsAlreadyExists(err):
		if err := a.client.Get(ctx, client.ObjectKeyFromObject(ci), ci); err != nil {
			return fmt.Errorf("reading ContainerInstance %s: %w", inst.name, err)
		}
		if ci.Spec.Cluster != a.cfg.Cluster {
			return fmt.Errorf("ContainerInstance %s is registered in cluster %q, not %q: deregister it first", inst.name, ci.Spec.Cluster, a.cfg.Cluster)
		}
		if ci.Status.RegisteredAt != nil {
			registeredAt = *ci.Status.RegisteredAt
		}
		if c := meta.FindStatusCondition(ci.Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady); c != nil && c.Status == metav1.ConditionTrue {
			readySince = c.LastTransitionTime
		}
		log.V(1).Info("adopted registered instance")
	default:
		return fmt.Errorf("creating ContainerInstance %s: %w", inst.name, err)
	}
	a.mu.Lock()
	inst.registered = true
	inst.uid = ci.UID
	inst.registeredAt, inst.readySince = registeredAt, readySince
	a.mu.Unlock()
	return nil
}

// markDirty schedules a status write of the instance.
func (a *Agent) markDirty(inst *instance) {
	a.statuses.Add(inst.name)
}
