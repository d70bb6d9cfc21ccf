package usage

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// recordingQueue records what a Source adds, and after how long.
type recordingQueue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	added []string
	after []time.Duration
}

func (q *recordingQueue) Add(r reconcile.Request) { q.AddAfter(r, 0) }

func (q *recordingQueue) AddAfter(r reconcile.Request, d time.Duration) {
	q.added = append(q.added, r.String())
	q.after = append(q.after, d)
}

type taskOpt func(*ecsv1alpha1.Task)

func resolved(n int32) taskOpt {
	return func(t *ecsv1alpha1.Task) { t.Status.TaskDefinitionRevision = n }
}
func last(s ecsv1alpha1.TaskStatusValue) taskOpt {
	return func(t *ecsv1alpha1.Task) { t.Status.LastStatus = s }
}
func desiredStopped(t *ecsv1alpha1.Task) { t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped }
func inCluster(c string) taskOpt         { return func(t *ecsv1alpha1.Task) { t.Spec.Cluster = c } }

func task(ns, name, ref string, opts ...taskOpt) *ecsv1alpha1.Task {
	t := testobj.Task(ns, name, ref).Cluster("c1").Obj()
	for _, o := range opts {
		o(t)
	}
	return t
}

// step is one informer event.
type step func(*Tracker)

func add(t *ecsv1alpha1.Task) step    { return func(tr *Tracker) { tr.OnAdd(t, false) } }
func update(t *ecsv1alpha1.Task) step { return func(tr *Tracker) { tr.OnUpdate(nil, t) } }
func del(t *ecsv1alpha1.Task) step    { return func(tr *Tracker) { tr.OnDelete(t) } }

// tombstone delivers a deletion the informer missed, with the object as last known
// (possibly older than what the tracker saw).
func tombstone(t *ecsv1alpha1.Task) step {
	return func(tr *Tracker) {
		tr.OnDelete(toolscache.DeletedFinalStateUnknown{Key: t.Namespace + "/" + t.Name, Obj: t})
	}
}

// TestTracker: each case plays informer events, then checks the counts and what the
// last event told the controllers.
func TestTracker(t *testing.T) {
	pending := task("a", "t1", "web")
	tests := []struct {
		name  string
		steps []step
		// want after every step; wantNotified by the last step only.
		wantRevisions map[string][]int32 // by "namespace/family"
		wantClusters  map[string]ClusterTasks
		wantNotified  []string
	}{
		{
			name:         "new task is pending in its cluster, uses no revision yet",
			steps:        []step{add(pending)},
			wantClusters: map[string]ClusterTasks{"c1": {Pending: 1}},
			wantNotified: []string{"/c1"},
		},
		{
			name:          "resolution puts the revision in use; the cluster count is unchanged",
			steps:         []step{add(pending), update(task("a", "t1", "web", resolved(3)))},
			wantRevisions: map[string][]int32{"a/web": {3}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 1}},
			wantNotified:  []string{"a/web"},
		},
		{
			name: "a second task of an in-use revision changes counts, not the set in use",
			steps: []step{add(task("a", "t1", "web", resolved(3))),
				add(task("a", "t2", "web", resolved(3)))},
			wantRevisions: map[string][]int32{"a/web": {3}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 2}},
			wantNotified:  []string{"/c1"},
		},
		{
			name:          "pinned reference is in use before resolution",
			steps:         []step{add(task("a", "t1", "web:2"))},
			wantRevisions: map[string][]int32{"a/web": {2}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 1}},
			wantNotified:  []string{"a/web", "/c1"},
		},
		{
			name: "pending to running moves one count, told once",
			steps: []step{add(task("a", "t1", "web", resolved(3))),
				update(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning)))},
			wantRevisions: map[string][]int32{"a/web": {3}},
			wantClusters:  map[string]ClusterTasks{"c1": {Running: 1}},
			wantNotified:  []string{"/c1"},
		},
		{
			name: "resync delivers the same object: nothing changes, nobody is woken",
			steps: []step{add(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning))),
				update(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning)))},
			wantRevisions: map[string][]int32{"a/web": {3}},
			wantClusters:  map[string]ClusterTasks{"c1": {Running: 1}},
		},
		{
			name: "asked to stop before it started: no longer pending, revision still in use",
			steps: []step{add(task("a", "t1", "web", resolved(3))),
				update(task("a", "t1", "web", resolved(3), desiredStopped))},
			wantRevisions: map[string][]int32{"a/web": {3}},
			wantNotified:  []string{"/c1"},
		},
		{
			name: "stopped releases both",
			steps: []step{add(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning))),
				update(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskStopped), desiredStopped))},
			wantNotified: []string{"a/web", "/c1"},
		},
		{
			name: "deleting a stopped task changes nothing",
			steps: []step{add(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskStopped))),
				del(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskStopped)))},
		},
		{
			name: "deletion removes what the task added",
			steps: []step{add(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning))),
				add(task("a", "t2", "web", resolved(4))),
				del(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning)))},
			wantRevisions: map[string][]int32{"a/web": {4}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 1}},
			wantNotified:  []string{"a/web", "/c1"},
		},
		{
			name: "a missed deletion removes what the tracker counted, not the stale last state",
			steps: []step{add(task("a", "t1", "web")),
				update(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning))),
				tombstone(task("a", "t1", "web"))},
			wantNotified: []string{"a/web", "/c1"},
		},
		{
			name:         "a tombstone of a task never seen changes nothing",
			steps:        []step{add(pending), tombstone(task("a", "other", "web", resolved(3)))},
			wantClusters: map[string]ClusterTasks{"c1": {Pending: 1}},
		},
		{
			name: "a task recreated under its name after a missed deletion replaces its old contribution",
			steps: []step{add(task("a", "t1", "web", resolved(3), last(ecsv1alpha1.TaskRunning))),
				update(task("a", "t1", "web:5"))},
			wantRevisions: map[string][]int32{"a/web": {5}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 1}},
			wantNotified:  []string{"a/web", "/c1"},
		},
		{
			name: "a task that changes cluster is counted in the new one, both told",
			steps: []step{add(pending),
				update(task("a", "t1", "web", inCluster("c2")))},
			wantClusters: map[string]ClusterTasks{"c2": {Pending: 1}},
			wantNotified: []string{"/c1", "/c2"},
		},
		{
			name: "families are per namespace",
			steps: []step{add(task("a", "t1", "web", resolved(3))),
				add(task("b", "t1", "web", resolved(7)))},
			wantRevisions: map[string][]int32{"a/web": {3}, "b/web": {7}},
			wantClusters:  map[string]ClusterTasks{"c1": {Pending: 2}},
			wantNotified:  []string{"b/web", "/c1"},
		},
		{
			name:  "an object that is not a task is ignored",
			steps: []step{func(tr *Tracker) { tr.OnAdd(&ecsv1alpha1.Service{}, false); tr.OnDelete("junk") }},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker()
			q := &recordingQueue{}
			for _, s := range []*Source{tr.FamilyChanges(DefaultWindow), tr.ClusterChanges(DefaultWindow)} {
				if err := s.Start(context.Background(), q); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range tc.steps {
				q.added, q.after = nil, nil
				s(tr)
			}
			if diff := cmp.Diff(tc.wantNotified, q.added, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("keys added to the queues by the last event (-want +got):\n%s", diff)
			}
			for _, d := range q.after {
				if d != DefaultWindow {
					t.Errorf("key added after %s, want the window %s", d, DefaultWindow)
				}
			}
			if diff := cmp.Diff(tc.wantRevisions, revisionsOf(tr), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("revisions in use (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantClusters, tr.clusters, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("cluster counts (-want +got):\n%s", diff)
			}
			for cl, want := range tc.wantClusters {
				if got := tr.Cluster(cl); got != want {
					t.Errorf("Cluster(%q) = %+v, want %+v", cl, got, want)
				}
			}
		})
	}
}

// revisionsOf reads every family's revisions in use through RevisionsInUse.
func revisionsOf(tr *Tracker) map[string][]int32 {
	var families []Family
	for f := range tr.revisions {
		families = append(families, f)
	}
	sort.Slice(families, func(i, j int) bool { return families[i].String() < families[j].String() })
	out := map[string][]int32{}
	for _, f := range families {
		out[f.String()] = tr.RevisionsInUse(f)
	}
	return out
}

// TestTrackerAgreesWithARecount: after a random walk of events over many tasks, the
// incremental counts equal a recount of the tasks' final states, the rule a list of
// every task would apply.
func TestTrackerAgreesWithARecount(t *testing.T) {
	tr := NewTracker()
	states := []taskOpt{
		func(*ecsv1alpha1.Task) {}, resolved(1), resolved(2), last(ecsv1alpha1.TaskRunning),
		desiredStopped, last(ecsv1alpha1.TaskStopped), inCluster("c2"),
	}
	live := map[string]*ecsv1alpha1.Task{}
	seed := uint32(7)
	next := func(n int) int { seed = seed*1664525 + 1013904223; return int(seed>>8) % n }
	for i := 0; i < 5000; i++ {
		name := "t" + string(rune('a'+next(26)))
		ref := []string{"web", "web:2", "api"}[next(3)]
		switch next(4) {
		case 0:
			if old, ok := live[name]; ok {
				delete(live, name)
				if next(2) == 0 {
					tr.OnDelete(old)
				} else {
					tr.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "a/" + name, Obj: task("a", name, "web")})
				}
			}
		default:
			obj := task("a", name, ref, states[next(len(states))], states[next(len(states))])
			live[name] = obj
			tr.OnUpdate(nil, obj)
		}
	}
	wantRev := map[string][]int32{}
	wantClusters := map[string]ClusterTasks{}
	for _, obj := range live {
		if n := RevisionInUse(obj); n > 0 {
			k := "a/" + obj.Spec.TaskDefinition[:3]
			if !containsInt32(wantRev[k], n) {
				wantRev[k] = append(wantRev[k], n)
			}
		}
		c := wantClusters[obj.Spec.Cluster]
		switch PhaseOf(obj) {
		case PhaseRunning:
			c.Running++
		case PhasePending:
			c.Pending++
		}
		if c != (ClusterTasks{}) {
			wantClusters[obj.Spec.Cluster] = c
		}
	}
	for k := range wantRev {
		sort.Slice(wantRev[k], func(i, j int) bool { return wantRev[k][i] < wantRev[k][j] })
	}
	if diff := cmp.Diff(wantRev, revisionsOf(tr), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("revisions in use (-recount +tracker):\n%s", diff)
	}
	if diff := cmp.Diff(wantClusters, tr.clusters, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("cluster counts (-recount +tracker):\n%s", diff)
	}
}

func containsInt32(s []int32, n int32) bool {
	for _, x := range s {
		if x == n {
			return true
		}
	}
	return false
}
