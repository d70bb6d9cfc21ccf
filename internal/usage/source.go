package usage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// DefaultWindow is how long a changed count waits before its controller reconciles
// it. Every change within the window joins the same reconcile, so a Cluster's counts
// are written at most about once a second however many of its tasks change, and a
// user sees them at most that much late.
const DefaultWindow = time.Second

type view int

const (
	familiesView view = iota
	clustersView
)

// Source is a controller source of the keys whose counts changed: TaskDefinitions
// (namespace and family) whose set of revisions in use changed, or Clusters (name)
// whose task counts changed. It adds each key to the controller's queue after its
// window; the queue keeps one entry for a key already waiting, which is what turns a
// burst of task events into one reconcile. Its WaitForSync holds the controller's
// workers until the tracker has counted every task of the first list.
type Source struct {
	tracker *Tracker
	view    view
	window  time.Duration
}

var _ source.TypedSyncingSource[reconcile.Request] = &Source{}

// FamilyChanges is a Source of the families whose set of revisions in use changed.
func (t *Tracker) FamilyChanges(window time.Duration) *Source {
	return &Source{tracker: t, view: familiesView, window: window}
}

// ClusterChanges is a Source of the clusters whose running or pending counts changed.
func (t *Tracker) ClusterChanges(window time.Duration) *Source {
	return &Source{tracker: t, view: clustersView, window: window}
}

// Start implements source.TypedSource: the controller hands over its queue. Changes
// before Start are not replayed: every controller reads the counts when it first
// reconciles each of its objects, which its own kind's watch does at start.
func (s *Source) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	add := func(k types.NamespacedName) {
		req := reconcile.Request{NamespacedName: k}
		if s.window <= 0 {
			q.Add(req)
			return
		}
		q.AddAfter(req, s.window)
	}
	t := s.tracker
	t.subMu.Lock()
	defer t.subMu.Unlock()
	switch s.view {
	case familiesView:
		t.onFamilies = append(t.onFamilies, add)
	case clustersView:
		t.onClusters = append(t.onClusters, add)
	}
	return nil
}

// WaitForSync implements source.TypedSyncingSource: a controller must not read counts
// that do not yet include every task.
func (s *Source) WaitForSync(ctx context.Context) error {
	s.tracker.subMu.RLock()
	registered := s.tracker.registration != nil
	s.tracker.subMu.RUnlock()
	if !registered {
		return errors.New("the task usage tracker is not registered on a Task informer")
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), s.tracker.HasSynced) {
		return fmt.Errorf("waiting for the task usage counts: %w", context.Cause(ctx))
	}
	return nil
}

func (s *Source) String() string {
	if s.view == familiesView {
		return "task usage of revisions"
	}
	return "task counts of clusters"
}

// Prepare is the part of SetupWithManager every controller that reads a tracker
// shares: its own tracker when it was given none, DefaultWindow when window is zero,
// and the tracker registered on the cache (once, however many controllers share it).
func Prepare(c cache.Informers, tr *Tracker, window time.Duration) (*Tracker, time.Duration, error) {
	if tr == nil {
		tr = NewTracker()
	}
	if window == 0 {
		window = DefaultWindow
	}
	return tr, window, tr.Register(c)
}
