package utilization

import (
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/utilization"
)

// GroupKey names a service or a family: Name is the Service or TaskDefinition name.
type GroupKey = types.NamespacedName

// Keys are what one change touches, for the writers to wake.
type Keys struct {
	Services, Families []GroupKey
	Clusters           []string
}

func (k *Keys) empty() bool { return len(k.Services)+len(k.Families)+len(k.Clusters) == 0 }

// instanceView is what the aggregator keeps of a ContainerInstance.
type instanceView struct {
	cluster string
	// measured: the agent is connected, so its report is current.
	measured bool
	// active: the instance takes new tasks, so its capacity counts.
	active                          bool
	registeredCPU, registeredMemory int64
	placedCPU, placedMemory         int64
	report                          *ecsv1alpha1.InstanceUtilization
}

func viewOf(ci *ecsv1alpha1.ContainerInstance) *instanceView {
	v := &instanceView{
		cluster:  ci.Spec.Cluster,
		measured: ci.Status.AgentConnected,
		// The scheduler's rule for an instance that takes tasks (internal/inventory),
		// so capacity counts what placement can use.
		active: ci.Status.AgentConnected && inventory.Status(ci) == ecsv1alpha1.InstanceActive,
		report: ci.Status.Utilization,
	}
	if r := ci.Status.RegisteredResources; r != nil {
		v.registeredCPU, v.registeredMemory = r.Cpu, r.Memory
		if left := ci.Status.RemainingResources; left != nil {
			v.placedCPU, v.placedMemory = max(0, r.Cpu-left.Cpu), max(0, r.Memory-left.Memory)
		}
	}
	return v
}

// touches adds the keys whose sums v contributes to.
func (v *instanceView) touches(k *Keys) {
	if v == nil {
		return
	}
	k.Clusters = append(k.Clusters, v.cluster)
	if v.report == nil || !v.measured {
		return
	}
	for _, g := range v.report.Groups {
		if g.Service != "" {
			k.Services = append(k.Services, GroupKey{Namespace: g.Namespace, Name: g.Service})
		}
		k.Families = append(k.Families, GroupKey{Namespace: g.Namespace, Name: g.Family})
	}
}

// Waiting is a task that no instance has room for, or Count alike tasks a Service
// needs and could not place (it creates none it cannot place): their cluster, and the
// revision and overrides that say what each reserves.
type Waiting struct {
	Cluster   string
	Namespace string
	// Count is how many tasks wait (1 for a task).
	Count int64
	// TaskDefinition is the reference to resolve (family:N once known).
	TaskDefinition string
	Overrides      *ecsv1alpha1.TaskOverrides
	// CPU and Memory are what the task reserves, once Resolved.
	CPU, Memory int64
	Resolved    bool
}

// ReserveFunc says what a waiting task reserves; ok is false while its revision
// cannot be read (it is tried again when its cluster is written).
type ReserveFunc func(Waiting) (cpu, memory int64, ok bool)

// waitingOf returns what t waits with, or false when t does not wait for room: it
// is bound, stopping, or unplaced for a reason more capacity cannot fix (a
// container policy violation).
func waitingOf(t *ecsv1alpha1.Task) (Waiting, bool) {
	if t == nil || t.Spec.ContainerInstance != "" || t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped ||
		t.Status.LastStatus == ecsv1alpha1.TaskStopped || !t.DeletionTimestamp.IsZero() {
		return Waiting{}, false
	}
	c := meta.FindStatusCondition(t.Status.Conditions, ecsv1alpha1.TaskConditionPlaced)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ecsv1alpha1.ReasonUnplaceable {
		return Waiting{}, false
	}
	ref := t.Spec.TaskDefinition
	if r, err := revision.TaskRef(t); err == nil && r.Pinned() {
		ref = r.String()
	}
	return Waiting{Cluster: t.Spec.Cluster, Namespace: t.Namespace, Count: 1, TaskDefinition: ref, Overrides: t.Spec.Overrides}, true
}

// serviceWaitingOf returns the tasks svc needs and has no room for (status.unplacedCount,
// of its PRIMARY deployment's revision), or false when it has none.
func serviceWaitingOf(svc *ecsv1alpha1.Service) (Waiting, bool) {
	if svc == nil || svc.Status.UnplacedCount <= 0 || svc.Status.TaskDefinition == "" || !svc.DeletionTimestamp.IsZero() {
		return Waiting{}, false
	}
	return Waiting{Cluster: svc.Spec.Cluster, Namespace: svc.Namespace, Count: int64(svc.Status.UnplacedCount),
		TaskDefinition: svc.Status.TaskDefinition}, true
}

// sameAs ignores the overrides: a task's are immutable.
func (w Waiting) sameAs(o Waiting) bool {
	return w.Cluster == o.Cluster && w.Namespace == o.Namespace && w.TaskDefinition == o.TaskDefinition && w.Count == o.Count
}

// Aggregator keeps the latest measurement and capacity of every instance and the
// tasks waiting for room, fed by informer events.
type Aggregator struct {
	// reserve resolves what waiting tasks reserve, once each (nil: nothing).
	reserve ReserveFunc

	mu        sync.RWMutex
	instances map[string]*instanceView
	waiting   map[types.UID]Waiting
}

// NewAggregator returns an empty Aggregator; reserve may be nil.
func NewAggregator(reserve ReserveFunc) *Aggregator {
	return &Aggregator{reserve: reserve, instances: map[string]*instanceView{}, waiting: map[types.UID]Waiting{}}
}

// SetInstance records ci (nil: deleted, by name) and returns the keys whose sums
// it may have changed: those of its old and its new report and cluster.
func (a *Aggregator) SetInstance(name string, ci *ecsv1alpha1.ContainerInstance) Keys {
	var nv *instanceView
	if ci != nil {
		nv = viewOf(ci)
	}
	a.mu.Lock()
	old := a.instances[name]
	if nv == nil {
		delete(a.instances, name)
	} else {
		a.instances[name] = nv
	}
	a.mu.Unlock()
	var k Keys
	if !changed(old, nv) {
		return k
	}
	old.touches(&k)
	nv.touches(&k)
	return dedup(k)
}

// changed reports whether an instance's contribution differs: the agent's other
// status writes (counts, conditions) re-send the same report, which must wake
// nothing, so only what is summed is compared (a new report has a new windowEnd).
func changed(a, b *instanceView) bool {
	if (a == nil) != (b == nil) {
		return true
	}
	if a == nil {
		return false
	}
	if a.cluster != b.cluster || a.measured != b.measured || a.active != b.active ||
		a.registeredCPU != b.registeredCPU || a.registeredMemory != b.registeredMemory ||
		a.placedCPU != b.placedCPU || a.placedMemory != b.placedMemory {
		return true
	}
	if (a.report == nil) != (b.report == nil) {
		return true
	}
	return a.report != nil && !a.report.WindowEnd.Equal(&b.report.WindowEnd)
}

// SetTask records whether task uid waits for room (t nil: deleted) and returns the
// cluster to wake when that changed.
func (a *Aggregator) SetTask(uid types.UID, t *ecsv1alpha1.Task) Keys {
	w, waits := waitingOf(t)
	return a.setWaiting(uid, w, waits)
}

// SetService records the tasks Service uid needs and has no room for (svc nil:
// deleted) and returns the cluster to wake when that changed.
func (a *Aggregator) SetService(uid types.UID, svc *ecsv1alpha1.Service) Keys {
	w, waits := serviceWaitingOf(svc)
	return a.setWaiting(uid, w, waits)
}

// setWaiting records what uid (a task's or a service's) waits with.
func (a *Aggregator) setWaiting(uid types.UID, w Waiting, waits bool) Keys {
	a.mu.Lock()
	old, had := a.waiting[uid]
	if had && waits && old.sameAs(w) {
		a.mu.Unlock()
		return Keys{}
	}
	a.mu.Unlock()
	if waits {
		a.resolve(&w) // outside the lock: it reads the cache
	}
	a.mu.Lock()
	switch {
	case waits:
		a.waiting[uid] = w
	case had:
		delete(a.waiting, uid)
	}
	a.mu.Unlock()
	if !had && !waits {
		return Keys{}
	}
	var k Keys
	if had {
		k.Clusters = append(k.Clusters, old.Cluster)
	}
	if waits {
		k.Clusters = append(k.Clusters, w.Cluster)
	}
	return dedup(k)
}

func (a *Aggregator) resolve(w *Waiting) {
	if a.reserve == nil || w.Resolved {
		return
	}
	if cpu, memory, ok := a.reserve(*w); ok {
		w.CPU, w.Memory, w.Resolved = cpu, memory, true
	}
}

// ResolveWaiting tries again to tell what the waiting tasks of cluster reserve,
// for those whose revision could not be read when they started waiting.
func (a *Aggregator) ResolveWaiting(cluster string) {
	a.mu.RLock()
	var todo []types.UID
	for uid, w := range a.waiting {
		if w.Cluster == cluster && !w.Resolved {
			todo = append(todo, uid)
		}
	}
	a.mu.RUnlock()
	for _, uid := range todo {
		a.mu.RLock()
		w, ok := a.waiting[uid]
		a.mu.RUnlock()
		if !ok {
			continue
		}
		a.resolve(&w)
		a.mu.Lock()
		if cur, ok := a.waiting[uid]; ok && cur.sameAs(w) {
			a.waiting[uid] = w
		}
		a.mu.Unlock()
	}
}

// groupSums adds up the measured groups that match, per cluster.
func (a *Aggregator) groupSums(match func(*ecsv1alpha1.UtilizationGroup) bool) map[string]*utilization.Totals {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := map[string]*utilization.Totals{}
	for _, v := range a.instances {
		if !v.measured || v.report == nil {
			continue
		}
		for i := range v.report.Groups {
			g := &v.report.Groups[i]
			if !match(g) {
				continue
			}
			t := out[v.cluster]
			if t == nil {
				t = &utilization.Totals{}
				out[v.cluster] = t
			}
			t.Add(g, v.report.WindowEnd)
		}
	}
	return out
}

func total(byCluster map[string]*utilization.Totals) utilization.Totals {
	var t utilization.Totals
	for _, c := range byCluster {
		t.Tasks += c.Tasks
		t.CPUUsed += c.CPUUsed
		t.CPUReserved += c.CPUReserved
		t.MemoryUsed += c.MemoryUsed
		t.MemoryReserved += c.MemoryReserved
		if c.MeasuredAt.After(t.MeasuredAt.Time) {
			t.MeasuredAt = c.MeasuredAt
		}
	}
	return t
}

// Service is the sum over a service's measured tasks.
func (a *Aggregator) Service(k GroupKey) utilization.Totals {
	return total(a.groupSums(func(g *ecsv1alpha1.UtilizationGroup) bool {
		return g.Namespace == k.Namespace && g.Service == k.Name
	}))
}

// Family is the sum over a task definition family's measured tasks, in every
// cluster.
func (a *Aggregator) Family(k GroupKey) utilization.Totals {
	return total(a.groupSums(func(g *ecsv1alpha1.UtilizationGroup) bool {
		return g.Namespace == k.Namespace && g.Family == k.Name
	}))
}

// Cluster is the sum over a cluster's measured tasks and its capacity, counting
// the tasks that wait for room in it.
func (a *Aggregator) Cluster(name string) (utilization.Totals, utilization.Capacity) {
	a.mu.RLock()
	var t utilization.Totals
	var c utilization.Capacity
	for _, v := range a.instances {
		if v.cluster != name {
			continue
		}
		if v.active {
			c.Instances++
			c.RegisteredCPU += v.registeredCPU
			c.RegisteredMemory += v.registeredMemory
			c.PlacedCPU += v.placedCPU
			c.PlacedMemory += v.placedMemory
		}
		if v.measured && v.report != nil {
			for i := range v.report.Groups {
				t.Add(&v.report.Groups[i], v.report.WindowEnd)
			}
		}
	}
	for _, w := range a.waiting {
		if w.Cluster == name {
			c.Unplaceable += int32(w.Count)
			c.WaitingCPU += w.Count * w.CPU
			c.WaitingMemory += w.Count * w.Memory
		}
	}
	a.mu.RUnlock()
	return t, c
}

// Snapshot is every sum at once, for a scrape.
type Snapshot struct {
	// Services by cluster and service.
	Services map[string]map[GroupKey]utilization.Totals
	Families map[GroupKey]utilization.Totals
	Clusters map[string]ClusterSums
}

// ClusterSums is a cluster's use and capacity.
type ClusterSums struct {
	Totals   utilization.Totals
	Capacity utilization.Capacity
}

// Snapshot takes every sum in one pass over the instances.
func (a *Aggregator) Snapshot() Snapshot {
	a.mu.RLock()
	defer a.mu.RUnlock()
	s := Snapshot{Services: map[string]map[GroupKey]utilization.Totals{}, Families: map[GroupKey]utilization.Totals{}, Clusters: map[string]ClusterSums{}}
	for _, v := range a.instances {
		cs := s.Clusters[v.cluster]
		if v.active {
			cs.Capacity.Instances++
			cs.Capacity.RegisteredCPU += v.registeredCPU
			cs.Capacity.RegisteredMemory += v.registeredMemory
			cs.Capacity.PlacedCPU += v.placedCPU
			cs.Capacity.PlacedMemory += v.placedMemory
		}
		if v.measured && v.report != nil {
			for i := range v.report.Groups {
				g := &v.report.Groups[i]
				cs.Totals.Add(g, v.report.WindowEnd)
				fk := GroupKey{Namespace: g.Namespace, Name: g.Family}
				ft := s.Families[fk]
				ft.Add(g, v.report.WindowEnd)
				s.Families[fk] = ft
				if g.Service == "" {
					continue
				}
				if s.Services[v.cluster] == nil {
					s.Services[v.cluster] = map[GroupKey]utilization.Totals{}
				}
				sk := GroupKey{Namespace: g.Namespace, Name: g.Service}
				st := s.Services[v.cluster][sk]
				st.Add(g, v.report.WindowEnd)
				s.Services[v.cluster][sk] = st
			}
		}
		s.Clusters[v.cluster] = cs
	}
	for _, w := range a.waiting {
		cs := s.Clusters[w.Cluster]
		cs.Capacity.Unplaceable += int32(w.Count)
		cs.Capacity.WaitingCPU += w.Count * w.CPU
		cs.Capacity.WaitingMemory += w.Count * w.Memory
		s.Clusters[w.Cluster] = cs
	}
	return s
}

func dedup(k Keys) Keys {
	k.Services = uniq(k.Services, func(a, b GroupKey) bool { return a.String() < b.String() })
	k.Families = uniq(k.Families, func(a, b GroupKey) bool { return a.String() < b.String() })
	k.Clusters = uniq(k.Clusters, func(a, b string) bool { return a < b })
	return k
}

func uniq[T comparable](s []T, less func(a, b T) bool) []T {
	if len(s) < 2 {
		return s
	}
	sort.Slice(s, func(i, j int) bool { return less(s[i], s[j]) })
	out := s[:1]
	for _, x := range s[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}
