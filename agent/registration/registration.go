// Package registration is the agent's side of a ContainerInstance: it registers (or
// re-registers) the instance with what this machine offers, renews its heartbeat Lease,
// and keeps the agent's part of the instance status current without flooding the
// apiserver. The manager owns the rest of the status (connected, state).
package registration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// DefaultReservedPorts are the host ports ECS registers as taken on every instance
// (ssh, the Docker daemon and the ECS agent's own).
var DefaultReservedPorts = []int32{22, 2375, 2376, 51678, 51679}

// LeaseDurationSeconds is the Lease's declared duration; the manager times
// heartbeats on its own clock with its own grace, this is informative.
const LeaseDurationSeconds = 40

// Config describes the instance.
type Config struct {
	// Name of the ContainerInstance (the hostname by default).
	Name string
	// Cluster the instance registers in.
	Cluster string
	// CPU units (1024 per core) and Memory in MiB offered to tasks, after the
	// agent's reservation.
	CPU, Memory int64
	// ReservedPorts are host ports no task may bind (tcp and udp).
	ReservedPorts []int32
	// GPUs are the IDs of the GPUs offered to tasks (DetectGPUs, or --gpu-ids).
	GPUs []string
	// Attributes are reported as the agent's attributes (built-ins included).
	Attributes map[string]string
	// Addresses at which the instance is reachable.
	Addresses []ecsv1alpha1.InstanceAddress
	// AgentVersion and RuntimeVersion go into versionInfo.
	AgentVersion, RuntimeVersion string
	// RuntimeName names the container runtime in the RuntimeReady condition
	// (default "containerd").
	RuntimeName string
	// LeaseInterval is how often the Lease is renewed (default 10s).
	LeaseInterval time.Duration
	// StreamingEndpoint is the agent's exec and logs server, published in the
	// status; nil when it runs none (hollow agents, --streaming-address "").
	StreamingEndpoint *ecsv1alpha1.StreamingEndpoint
}

// DetectResources returns this machine's cores x 1024 and its memory in MiB minus
// reservedMiB, as ECS registers them.
func DetectResources(reservedMiB int64) (cpu, memory int64, err error) {
	total, err := memTotalMiB("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	memory = total - reservedMiB
	if memory <= 0 {
		return 0, 0, fmt.Errorf("--reserved-memory %d MiB leaves no memory of the %d MiB on this machine", reservedMiB, total)
	}
	return int64(goruntime.NumCPU()) * 1024, memory, nil
}

func memTotalMiB(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing MemTotal in %s: %w", path, err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

// BuiltinAttributes are the attributes every agent reports.
func BuiltinAttributes(zone string) map[string]string {
	attrs := map[string]string{
		ecsv1alpha1.AttributeOSType:          goruntime.GOOS,
		ecsv1alpha1.AttributeCPUArchitecture: ecsv1alpha1.CPUArchitectureAttribute(goruntime.GOARCH),
	}
	if zone != "" {
		attrs[ecsv1alpha1.AttributeAvailabilityZone] = zone
	}
	return attrs
}

// DetectAddresses lists this machine's hostname and non-loopback IPv4 addresses (the
// loopback address when there is no other, as on a laptop without a network).
func DetectAddresses() []ecsv1alpha1.InstanceAddress {
	var out []ecsv1alpha1.InstanceAddress
	if ifaces, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaces {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				out = append(out, ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressInternalIP, Address: ipn.IP.String()})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressInternalIP, Address: "127.0.0.1"})
	}
	if h, err := os.Hostname(); err == nil {
		out = append(out, ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressHostname, Address: h})
	}
	if len(out) > 16 {
		out = out[:16]
	}
	return out
}

// Usage is what runs on the instance now, for its status.
type Usage struct {
	Running, Pending int32
	// CPU and Memory held by the tasks on the instance.
	CPU, Memory int64
	// Ports (tcp and udp) bound by tasks.
	TCPPorts, UDPPorts []int32
	// GPUs assigned to tasks.
	GPUs []string
	// RuntimeErr is the container runtime's health: nil when reachable.
	RuntimeErr error
	// Volumes are the shared Docker volumes kept on the instance, sorted by
	// namespace and name.
	Volumes []ecsv1alpha1.InstanceVolume
	// Utilization is the latest measurement of the tasks' use, nil before the
	// first. Once there is one it goes with every report: a server-side apply that
	// leaves it out removes it.
	Utilization *ecsv1alpha1.InstanceUtilization
}

// Registrar registers the instance and keeps it alive.
type Registrar struct {
	c   client.Client
	cfg Config

	mu           sync.Mutex
	uid          string
	registeredAt metav1.Time
	readySince   metav1.Time
	lastJSON     []byte
	lastReady    bool
	lease        *coordinationv1.Lease
}

// New returns a Registrar for cfg.
func New(c client.Client, cfg Config) (*Registrar, error) {
	if cfg.Name == "" || cfg.Cluster == "" {
		return nil, errors.New("registration needs an instance name and a cluster")
	}
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = 10 * time.Second
	}
	if cfg.ReservedPorts == nil {
		cfg.ReservedPorts = DefaultReservedPorts
	}
	if cfg.RuntimeName == "" {
		cfg.RuntimeName = "containerd"
	}
	return &Registrar{c: c, cfg: cfg}, nil
}

// Register creates the ContainerInstance, or adopts the existing one of the same
// cluster (an agent restart), and writes the agent's part of its status. An instance
// of that name registered in another cluster is an error: moving needs a new name.
func (r *Registrar) Register(ctx context.Context, usage Usage) error {
	ci := &ecsv1alpha1.ContainerInstance{}
	ci.Name = r.cfg.Name
	ci.Spec.Cluster = r.cfg.Cluster
	err := r.c.Create(ctx, ci)
	if apierrors.IsAlreadyExists(err) {
		if err := r.c.Get(ctx, client.ObjectKey{Name: r.cfg.Name}, ci); err != nil {
			return fmt.Errorf("reading container instance %s: %w", r.cfg.Name, err)
		}
		if ci.Spec.Cluster != r.cfg.Cluster {
			return fmt.Errorf("container instance %s is registered in cluster %q, not %q: deregister it (kubectl delete ci %s) or use another --name",
				r.cfg.Name, ci.Spec.Cluster, r.cfg.Cluster, r.cfg.Name)
		}
	} else if err != nil {
		return fmt.Errorf("registering container instance %s: %w", r.cfg.Name, err)
	}
	now := metav1.NewTime(time.Now())
	r.mu.Lock()
	r.uid = string(ci.UID)
	r.registeredAt, r.readySince = now, now
	if ci.Status.RegisteredAt != nil {
		r.registeredAt = *ci.Status.RegisteredAt // kept across restarts
	}
	for _, c := range ci.Status.Conditions {
		if c.Type == ecsv1alpha1.InstanceConditionRuntimeReady {
			r.readySince = c.LastTransitionTime
		}
	}
	r.lastJSON = nil
	r.mu.Unlock()
	// The agent's logger carries the instance and cluster already.
	ctrl.LoggerFrom(ctx).Info("registered container instance",
		"cpu", r.cfg.CPU, "memoryMiB", r.cfg.Memory)
	return r.Report(ctx, usage)
}

// Report writes the agent's part of the instance status when it changed since the
// last write (the caller decides how often to call it).
func (r *Registrar) Report(ctx context.Context, usage Usage) error {
	st := r.status(usage)
	// Compared as JSON taken before the write: Apply decodes the server's answer back
	// into the apply configuration, and JSON is also what the server compares.
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	r.mu.Lock()
	unchanged := bytes.Equal(r.lastJSON, data)
	r.mu.Unlock()
	if unchanged {
		return nil
	}
	ac := ecsac.ContainerInstance(r.cfg.Name).WithStatus(st)
	if err := r.c.Status().Apply(ctx, ac, client.FieldOwner(ecsv1alpha1.FieldManagerAgent), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing container instance status: %w", err)
	}
	r.mu.Lock()
	r.lastJSON, r.lastReady = data, usage.RuntimeErr == nil
	r.mu.Unlock()
	return nil
}

func (r *Registrar) status(u Usage) *ecsac.ContainerInstanceStatusApplyConfiguration {
	tcp := mergePorts(r.cfg.ReservedPorts, u.TCPPorts)
	udp := mergePorts(r.cfg.ReservedPorts, u.UDPPorts)
	attrs := make([]*ecsac.AttributeApplyConfiguration, 0, len(r.cfg.Attributes))
	for _, name := range slices.Sorted(maps.Keys(r.cfg.Attributes)) {
		attrs = append(attrs, ecsac.Attribute().WithName(name).WithValue(r.cfg.Attributes[name]))
	}
	vols := make([]*ecsac.InstanceVolumeApplyConfiguration, 0, len(u.Volumes))
	for _, v := range u.Volumes {
		av := ecsac.InstanceVolume().WithNamespace(v.Namespace).WithName(v.Name).WithDriver(v.Driver).WithType(v.Type)
		if v.CreatedAt != nil {
			av.WithCreatedAt(*v.CreatedAt)
		}
		vols = append(vols, av)
	}
	addrs := make([]*ecsac.InstanceAddressApplyConfiguration, 0, len(r.cfg.Addresses))
	for _, a := range r.cfg.Addresses {
		addrs = append(addrs, ecsac.InstanceAddress().WithType(a.Type).WithAddress(a.Address))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ready := metav1ac.Condition().WithType(ecsv1alpha1.InstanceConditionRuntimeReady)
	if u.RuntimeErr == nil {
		ready.WithStatus(metav1.ConditionTrue).WithReason(ecsv1alpha1.ReasonRuntimeUp).WithMessage(r.cfg.RuntimeName + " " + r.cfg.RuntimeVersion + " is reachable")
	} else {
		ready.WithStatus(metav1.ConditionFalse).WithReason(ecsv1alpha1.ReasonRuntimeDown).WithMessage(u.RuntimeErr.Error())
	}
	if r.lastJSON != nil && r.lastReady != (u.RuntimeErr == nil) {
		r.readySince = metav1.NewTime(time.Now())
	}
	ready.WithLastTransitionTime(r.readySince)
	st := ecsac.ContainerInstanceStatus()
	if u.Utilization != nil {
		st.WithUtilization(utilizationStatus(u.Utilization))
	}
	if ep := r.cfg.StreamingEndpoint; ep != nil {
		st.WithStreamingEndpoint(ecsac.StreamingEndpoint().WithURL(ep.URL).WithCABundle(ep.CABundle))
	}
	return st.
		WithRegisteredResources(ecsac.Resources().WithCpu(r.cfg.CPU).WithMemory(r.cfg.Memory).
			WithPorts(r.cfg.ReservedPorts...).WithUDPPorts(r.cfg.ReservedPorts...).WithGPUs(r.cfg.GPUs...)).
		WithRemainingResources(ecsac.Resources().WithCpu(max(0, r.cfg.CPU-u.CPU)).WithMemory(max(0, r.cfg.Memory-u.Memory)).
			WithPorts(tcp...).WithUDPPorts(udp...).WithGPUs(remainingGPUs(r.cfg.GPUs, u.GPUs)...)).
		WithRunningTasksCount(u.Running).
		WithPendingTasksCount(u.Pending).
		WithAttributes(attrs...).
		WithAddresses(addrs...).
		WithVolumes(vols...).
		WithVersionInfo(ecsac.VersionInfo().WithAgentVersion(r.cfg.AgentVersion).WithContainerdVersion(r.cfg.RuntimeVersion).
			WithKernelVersion(kernelVersion())).
		WithRegisteredAt(r.registeredAt).
		WithConditions(ready)
}

// utilizationStatus is u as an apply configuration.
func utilizationStatus(u *ecsv1alpha1.InstanceUtilization) *ecsac.InstanceUtilizationApplyConfiguration {
	groups := make([]*ecsac.UtilizationGroupApplyConfiguration, 0, len(u.Groups))
	for _, g := range u.Groups {
		ag := ecsac.UtilizationGroup().WithNamespace(g.Namespace).WithFamily(g.Family).WithTasks(g.Tasks).
			WithCPUUsed(g.CPUUsed).WithCPUReserved(g.CPUReserved).WithMemoryUsed(g.MemoryUsed).WithMemoryReserved(g.MemoryReserved)
		if g.Service != "" {
			ag.WithService(g.Service)
		}
		groups = append(groups, ag)
	}
	return ecsac.InstanceUtilization().WithWindowStart(u.WindowStart).WithWindowEnd(u.WindowEnd).WithGroups(groups...)
}

// RenewLease creates or renews the heartbeat Lease. It is owned by the
// ContainerInstance, so deregistering the instance collects it.
func (r *Registrar) RenewLease(ctx context.Context) error {
	r.mu.Lock()
	lease, uid := r.lease, r.uid
	r.mu.Unlock()
	now := metav1.NewMicroTime(time.Now())
	if lease == nil {
		lease = &coordinationv1.Lease{}
		err := r.c.Get(ctx, client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: r.cfg.Name}, lease)
		if apierrors.IsNotFound(err) {
			lease = &coordinationv1.Lease{}
			lease.Namespace, lease.Name = ecsv1alpha1.NodeLeaseNamespace, r.cfg.Name
			lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: ecsv1alpha1.GroupVersion.String(),
				Kind: "ContainerInstance", Name: r.cfg.Name, UID: types.UID(uid)}}
			lease.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To(r.cfg.Name),
				LeaseDurationSeconds: ptr.To[int32](LeaseDurationSeconds), RenewTime: &now}
			if err := r.c.Create(ctx, lease); err != nil {
				return fmt.Errorf("creating lease: %w", err)
			}
			r.mu.Lock()
			r.lease = lease
			r.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading lease: %w", err)
		}
	}
	lease = lease.DeepCopy()
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(r.cfg.Name)
	// Update with the last seen resourceVersion, as the kubelet renews node leases:
	// one write, and a conflict means someone else changed it, so read it again.
	if err := r.c.Update(ctx, lease); err != nil {
		r.mu.Lock()
		r.lease = nil
		r.mu.Unlock()
		return fmt.Errorf("renewing lease: %w", err)
	}
	r.mu.Lock()
	r.lease = lease
	r.mu.Unlock()
	return nil
}

// Heartbeat renews the Lease every interval until ctx ends. A failure is retried
// sooner, from half a second doubling up to the interval, so a first renewal that
// races the lease namespace's creation does not leave the instance disconnected
// for a whole interval; containers keep running while the apiserver is away.
// Instances that start together (a fleet after an outage, `berth hollow`) must not
// renew in step, or the apiserver sees every renewal of the fleet in one burst per
// interval: the second renewal comes after a random part of the interval, which
// spreads the phases evenly, and every later one is jittered by up to 5% of the
// interval (as the kubelet's are) so they do not line up again. The Lease lasts
// LeaseDurationSeconds, several intervals, so the shorter first wait costs nothing.
func (r *Registrar) Heartbeat(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	const firstRetry = 500 * time.Millisecond
	retry := firstRetry
	for first := true; ; first = false {
		next := wait.Jitter(r.cfg.LeaseInterval*95/100, 0.1)
		if first {
			next = rand.N(r.cfg.LeaseInterval) + time.Millisecond
		}
		if err := r.RenewLease(ctx); err != nil && ctx.Err() == nil {
			next = min(retry, r.cfg.LeaseInterval)
			retry *= 2
			log.Error(err, "heartbeat failed; retrying", "retryIn", next)
		} else {
			retry = firstRetry
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// remainingGPUs are the registered GPUs no task holds, in registration order.
func remainingGPUs(registered, used []string) []string {
	out := make([]string, 0, len(registered))
	for _, id := range registered {
		if !slices.Contains(used, id) {
			out = append(out, id)
		}
	}
	return out
}

// DetectGPUs lists the NVIDIA GPUs of the machine by their device nodes in devDir
// (/dev/nvidia0, /dev/nvidia1, ...): the IDs are the minor numbers, in order, which
// NVIDIA_VISIBLE_DEVICES accepts. Control nodes (nvidiactl, nvidia-uvm) are not GPUs.
func DetectGPUs(devDir string) ([]string, error) {
	entries, err := os.ReadDir(devDir)
	if err != nil {
		return nil, fmt.Errorf("looking for GPUs in %s: %w", devDir, err)
	}
	var minors []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "nvidia")
		if !ok || rest == "" {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && strconv.Itoa(n) == rest {
			minors = append(minors, n)
		}
	}
	slices.Sort(minors)
	ids := make([]string, 0, len(minors))
	for _, n := range minors {
		ids = append(ids, strconv.Itoa(n))
	}
	if len(ids) > maxGPUs {
		return nil, fmt.Errorf("%d GPUs in %s; an instance registers at most %d", len(ids), devDir, maxGPUs)
	}
	return ids, nil
}

// maxGPUs is the schema's bound on registeredResources.gpus.
const maxGPUs = 64

func mergePorts(a, b []int32) []int32 {
	out := append(append([]int32(nil), a...), b...)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > 1000 { // the schema's bound
		out = out[:1000]
	}
	return out
}

func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	v := strings.TrimSpace(string(b))
	if len(v) > 128 {
		v = v[:128]
	}
	return v
}
