// Package usage keeps what the control plane counts over tasks, incrementally from
// the Task informer's events: per task-definition family the tasks that keep each
// revision in use, and per cluster the running and pending tasks. Every task's last
// contribution is remembered and an event applies only the difference (as Kueue's
// cache keeps a queue's usage), so a task event costs the same with ten tasks in a
// cluster as with ten thousand, and a controller reads a count without listing tasks.
//
// Controllers learn of changes through a Source that adds the changed key to their
// queue after a short window (DefaultWindow): a key already waiting is not added
// again, so a burst of task transitions in one cluster costs one reconcile and at
// most one status write per window (Karpenter's batcher), not one per task.
package usage

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/index"
)

// ClusterTasks are a cluster's task counts.
type ClusterTasks struct {
	Running int32
	Pending int32
}

// contribution is what one task adds to the counts. The zero value adds nothing and
// is not stored.
type contribution struct {
	// family and revision: the task keeps revision of family (in its namespace) in
	// use; revision 0 means none.
	family   string
	revision int32
	// cluster and phase: the task counts as running or pending in cluster.
	cluster string
	phase   Phase
}

func contributionOf(t *ecsv1alpha1.Task) contribution {
	c := contribution{revision: RevisionInUse(t), phase: PhaseOf(t)}
	if c.revision > 0 {
		c.family = index.Family(t.Spec.TaskDefinition)
	}
	if c.phase != PhaseOther {
		c.cluster = t.Spec.Cluster
	}
	return c
}

// Family names a task-definition family: the TaskDefinition named after it in its
// namespace.
type Family = types.NamespacedName

// Tracker holds the counts. It is a toolscache.ResourceEventHandler of Tasks; Register
// adds it to a cache's Task informer. Safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	// tasks holds every task's last non-zero contribution.
	tasks map[types.NamespacedName]contribution
	// revisions counts, per family, the tasks that use each revision (no zero
	// counts are kept).
	revisions map[Family]map[int32]int32
	clusters  map[string]ClusterTasks

	// subMu guards the subscribers and the registration. Subscribers are told the
	// keys whose counts changed, outside mu.
	subMu                  sync.RWMutex
	onFamilies, onClusters []func(types.NamespacedName)
	registration           toolscache.ResourceEventHandlerRegistration

	regOnce sync.Once
	regErr  error
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{
		tasks:     map[types.NamespacedName]contribution{},
		revisions: map[Family]map[int32]int32{},
		clusters:  map[string]ClusterTasks{},
	}
}

// Register feeds the tracker from the Task informer of c. Later calls do nothing, so
// every controller sharing the tracker may call it.
func (t *Tracker) Register(c cache.Informers) error {
	t.regOnce.Do(func() {
		// Not blocking: before the cache starts the informer is only created; the
		// controllers' sources wait for HasSynced instead.
		inf, err := c.GetInformer(context.Background(), &ecsv1alpha1.Task{}, cache.BlockUntilSynced(false))
		if err != nil {
			t.regErr = fmt.Errorf("getting the Task informer: %w", err)
			return
		}
		reg, err := inf.AddEventHandler(t)
		if err != nil {
			t.regErr = fmt.Errorf("adding the usage handler to the Task informer: %w", err)
			return
		}
		t.subMu.Lock()
		t.registration = reg
		t.subMu.Unlock()
	})
	return t.regErr
}

// HasSynced reports whether the tracker has seen every task of the informer's first
// list: only then are its counts the cluster's.
func (t *Tracker) HasSynced() bool {
	t.subMu.RLock()
	defer t.subMu.RUnlock()
	return t.registration != nil && t.registration.HasSynced()
}

// OnAdd implements toolscache.ResourceEventHandler.
func (t *Tracker) OnAdd(obj any, _ bool) { t.observe(obj) }

// OnUpdate implements toolscache.ResourceEventHandler. A resync delivers an object
// unchanged; its contribution is then the one remembered and nothing changes.
func (t *Tracker) OnUpdate(_, obj any) { t.observe(obj) }

// OnDelete implements toolscache.ResourceEventHandler. The remembered contribution is
// removed, whatever the deleted object (or a DeletedFinalStateUnknown's last known
// state) says: it is what the counts hold.
func (t *Tracker) OnDelete(obj any) {
	var key types.NamespacedName
	switch o := obj.(type) {
	case toolscache.DeletedFinalStateUnknown:
		ns, name, err := toolscache.SplitMetaNamespaceKey(o.Key)
		if err != nil {
			return
		}
		key = types.NamespacedName{Namespace: ns, Name: name}
	case client.Object:
		key = client.ObjectKeyFromObject(o)
	default:
		return
	}
	t.set(key, contribution{})
}

func (t *Tracker) observe(obj any) {
	task, ok := obj.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	t.set(client.ObjectKeyFromObject(task), contributionOf(task))
}

// set replaces a task's contribution with c, applies the difference and tells the
// subscribers which families' sets of revisions in use and which clusters' counts
// changed.
func (t *Tracker) set(key types.NamespacedName, c contribution) {
	t.mu.Lock()
	old := t.tasks[key]
	if old == c {
		t.mu.Unlock()
		return
	}
	if c == (contribution{}) {
		delete(t.tasks, key)
	} else {
		t.tasks[key] = c
	}
	// Each half of the contribution is moved only if it changed, so that a task
	// going from pending to running does not also take its revision out of use and
	// back (and wake the TaskDefinition controller for nothing).
	var families []Family
	var clusters []string
	if old.family != c.family || old.revision != c.revision {
		if f, flipped := t.addRevision(key.Namespace, old, -1); flipped {
			families = append(families, f)
		}
		if f, flipped := t.addRevision(key.Namespace, c, +1); flipped && !slices.Contains(families, f) {
			families = append(families, f)
		}
	}
	if old.cluster != c.cluster || old.phase != c.phase {
		if cl, changed := t.addPhase(old, -1); changed {
			clusters = append(clusters, cl)
		}
		if cl, changed := t.addPhase(c, +1); changed && !slices.Contains(clusters, cl) {
			clusters = append(clusters, cl)
		}
	}
	t.mu.Unlock()
	t.notify(families, clusters)
}

// addRevision adds delta to the count of c's revision and reports whether that
// revision started or stopped being in use: the only change the TaskDefinition
// controller acts on.
func (t *Tracker) addRevision(ns string, c contribution, delta int32) (Family, bool) {
	if c.revision == 0 {
		return Family{}, false
	}
	f := Family{Namespace: ns, Name: c.family}
	counts := t.revisions[f]
	if counts == nil {
		counts = map[int32]int32{}
		t.revisions[f] = counts
	}
	was := counts[c.revision]
	now := was + delta
	if now <= 0 {
		delete(counts, c.revision)
		if len(counts) == 0 {
			delete(t.revisions, f)
		}
	} else {
		counts[c.revision] = now
	}
	return f, (was > 0) != (now > 0)
}

// addPhase adds delta to c's cluster count of its phase.
func (t *Tracker) addPhase(c contribution, delta int32) (string, bool) {
	if c.phase == PhaseOther {
		return "", false
	}
	counts := t.clusters[c.cluster]
	switch c.phase {
	case PhaseRunning:
		counts.Running += delta
	case PhasePending:
		counts.Pending += delta
	}
	if counts == (ClusterTasks{}) {
		delete(t.clusters, c.cluster)
	} else {
		t.clusters[c.cluster] = counts
	}
	return c.cluster, true
}

func (t *Tracker) notify(families []Family, clusters []string) {
	if len(families) == 0 && len(clusters) == 0 {
		return
	}
	t.subMu.RLock()
	defer t.subMu.RUnlock()
	for _, f := range families {
		for _, fn := range t.onFamilies {
			fn(f)
		}
	}
	for _, cl := range clusters {
		for _, fn := range t.onClusters {
			fn(types.NamespacedName{Name: cl})
		}
	}
}

// RevisionsInUse returns the revisions of a family that tasks keep in use, in
// ascending order.
func (t *Tracker) RevisionsInUse(f Family) []int32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	counts := t.revisions[f]
	out := make([]int32, 0, len(counts))
	for n := range counts {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Cluster returns a cluster's task counts.
func (t *Tracker) Cluster(name string) ClusterTasks {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clusters[name]
}
