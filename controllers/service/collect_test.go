package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/test/testobj"
)

// TestServiceHistory: the policy a service's stopped tasks follow: the cluster's
// retention period, the service's history limit (at least one), and exemptions for
// the failures its circuit breaker (while a rollout is in progress) and its launch
// backoff still count.
func TestServiceHistory(t *testing.T) {
	backoff := deployment.Exemption{Deployment: primaryID, Count: launchBackoffKeep(), Since: now.Add(-launchBackoffWindow)}
	withLimit := func(n int32) *ecsv1alpha1.Service {
		svc := testobj.Service("ns", "web", "web", 10).Obj()
		svc.Spec.StoppedTaskHistoryLimit = ptr.To(n)
		return svc
	}
	tests := []struct {
		name      string
		svc       *ecsv1alpha1.Service
		cluster   *ecsv1alpha1.Cluster
		completed bool
		noPrimary bool
		want      deployment.History
	}{
		{
			name: "defaults, no Cluster object",
			svc:  testobj.Service("ns", "web", "web", 10).Obj(),
			want: deployment.History{Retention: deployment.DefaultStoppedTaskRetention, Limit: 20, KeepNewest: true, Exempt: []deployment.Exemption{backoff}},
		},
		{
			name:    "the cluster's retention, the service's limit",
			svc:     withLimit(5),
			cluster: &ecsv1alpha1.Cluster{Spec: ecsv1alpha1.ClusterSpec{StoppedTaskRetentionSeconds: ptr.To[int32](60)}},
			want:    deployment.History{Retention: time.Minute, Limit: 5, KeepNewest: true, Exempt: []deployment.Exemption{backoff}},
		},
		{
			name: "a limit of zero keeps the newest",
			svc:  withLimit(0),
			want: deployment.History{Retention: deployment.DefaultStoppedTaskRetention, Limit: 1, KeepNewest: true, Exempt: []deployment.Exemption{backoff}},
		},
		{
			name: "circuit breaker, rollout in progress: its threshold of failures stays",
			svc:  testobj.Service("ns", "web", "web", 10).CircuitBreaker(true).Obj(),
			want: deployment.History{Retention: deployment.DefaultStoppedTaskRetention, Limit: 20, KeepNewest: true, Exempt: []deployment.Exemption{
				{Deployment: primaryID, Count: 5}, backoff,
			}},
		},
		{
			name:      "circuit breaker, rollout completed: nothing left to count",
			svc:       testobj.Service("ns", "web", "web", 10).CircuitBreaker(true).Obj(),
			completed: true,
			want:      deployment.History{Retention: deployment.DefaultStoppedTaskRetention, Limit: 20, KeepNewest: true, Exempt: []deployment.Exemption{backoff}},
		},
		{
			name:      "no deployment",
			svc:       testobj.Service("ns", "web", "web", 10).CircuitBreaker(true).Obj(),
			noPrimary: true,
			want:      deployment.History{Retention: deployment.DefaultStoppedTaskRetention, Limit: 20, KeepNewest: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(tc.svc, nil)
			s.cluster = tc.cluster
			if tc.completed {
				s.primary.RolloutState = ecsv1alpha1.RolloutCompleted
			}
			if tc.noPrimary {
				s.primary = nil
			}
			if diff := cmp.Diff(tc.want, s.history()); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCollectStoppedTasks: what a pass deletes from the API, and that it comes back
// when the next kept task's retention period ends.
func TestCollectStoppedTasks(t *testing.T) {
	ctx := context.Background()
	stoppedTasks := func(svc *ecsv1alpha1.Service, dep string, code ecsv1alpha1.StopCode, n int, from time.Duration) []*ecsv1alpha1.Task {
		var out []*ecsv1alpha1.Task
		for i := range n { // the first is the newest
			out = append(out, task(fmt.Sprintf("%s-%s-%d", dep, code, i), dep, ownedBy(svc),
				stoppedWith(code, now.Add(-from-time.Duration(i)*time.Minute))))
		}
		return out
	}
	limited := func(limit int32, cb bool) *ecsv1alpha1.Service {
		b := testobj.Service("ns", "web", "web", 2)
		if cb {
			b.CircuitBreaker(true)
		}
		svc := b.Obj()
		svc.UID = "svc-uid"
		svc.Spec.StoppedTaskHistoryLimit = ptr.To(limit)
		return svc
	}
	tests := []struct {
		name        string
		svc         *ecsv1alpha1.Service
		tasks       func(*ecsv1alpha1.Service) []*ecsv1alpha1.Task
		wantDeleted []string
		wantRequeue time.Duration
	}{
		{
			name: "beyond the limit, oldest first; back when the next retention period ends",
			svc:  limited(2, false),
			tasks: func(svc *ecsv1alpha1.Service) []*ecsv1alpha1.Task {
				return stoppedTasks(svc, oldID, ecsv1alpha1.StopServiceSchedulerInitiated, 4, time.Hour)
			},
			wantDeleted: []string{"dold-ServiceSchedulerInitiated-2", "dold-ServiceSchedulerInitiated-3"},
			// The second newest stopped 61 minutes ago; the default retention is a day.
			wantRequeue: deployment.DefaultStoppedTaskRetention - 61*time.Minute,
		},
		{
			name: "a small limit keeps the failures the launch backoff counts",
			svc:  limited(1, false),
			tasks: func(svc *ecsv1alpha1.Service) []*ecsv1alpha1.Task {
				return append(stoppedTasks(svc, primaryID, ecsv1alpha1.StopEssentialContainerExited, 5, time.Minute),
					stoppedTasks(svc, oldID, ecsv1alpha1.StopServiceSchedulerInitiated, 2, time.Hour)...)
			},
			// The five recent failures stay (the backoff keeps 9), one of the rest stays.
			wantDeleted: []string{"dold-ServiceSchedulerInitiated-1"},
			wantRequeue: deployment.DefaultStoppedTaskRetention - time.Hour,
		},
		{
			name: "a rollout in progress keeps the failures its circuit breaker counts",
			svc:  limited(1, true),
			tasks: func(svc *ecsv1alpha1.Service) []*ecsv1alpha1.Task {
				// Failures older than the backoff's window: only the breaker keeps them.
				return stoppedTasks(svc, primaryID, ecsv1alpha1.StopTaskFailedToStart, 5, time.Hour)
			},
			// The threshold is 3 for 2 tasks: the three newest stay, and one more under
			// the limit.
			wantDeleted: []string{"dnew-TaskFailedToStart-4"},
			wantRequeue: deployment.DefaultStoppedTaskRetention - 63*time.Minute,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tasks := tc.tasks(tc.svc)
			objs := []client.Object{tc.svc}
			for _, tk := range tasks {
				objs = append(objs, tk)
			}
			c := fakeClient(t, objs...)
			r := &Reconciler{Client: c, Expectations: expectations.New()}
			s := newTestState(tc.svc, nil, tasks...)
			if err := r.collectStoppedTasks(ctx, s); err != nil {
				t.Fatal(err)
			}
			var left ecsv1alpha1.TaskList
			if err := c.List(ctx, &left); err != nil {
				t.Fatal(err)
			}
			kept := map[string]bool{}
			for _, tk := range left.Items {
				kept[tk.Name] = true
			}
			var deleted []string
			for _, tk := range tasks {
				if !kept[tk.Name] {
					deleted = append(deleted, tk.Name)
				}
			}
			if diff := cmp.Diff(tc.wantDeleted, deleted, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if s.requeueAfter != tc.wantRequeue {
				t.Errorf("requeue after %v, want %v", s.requeueAfter, tc.wantRequeue)
			}
		})
	}
}

// TestCollectDeletesOnce: a pass on a cache that still shows the tasks the last pass
// deleted (the rollout's many task events wake the service faster than deletions
// reach its cache) deletes nothing again; once the expectation expires it would.
func TestCollectDeletesOnce(t *testing.T) {
	ctx := context.Background()
	svc := testobj.Service("ns", "web", "web", 2).Obj()
	svc.UID = "svc-uid"
	svc.Spec.StoppedTaskHistoryLimit = ptr.To[int32](1)
	var tasks []*ecsv1alpha1.Task
	objs := []client.Object{svc}
	for i := range 3 {
		tk := task(fmt.Sprintf("old-%d", i), oldID, ownedBy(svc), stoppedWith(ecsv1alpha1.StopServiceSchedulerInitiated, now.Add(-time.Hour-time.Duration(i)*time.Minute)))
		tk.UID = types.UID(fmt.Sprint("uid-", i))
		tasks = append(tasks, tk)
		objs = append(objs, tk)
	}
	deletes := 0
	c := interceptor.NewClient(fakeClient(t, objs...).(client.WithWatch), interceptor.Funcs{
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			deletes++
			return c.Delete(ctx, obj, opts...)
		},
	})
	r := &Reconciler{Client: c, Expectations: expectations.New()}
	for pass, want := range []int{2, 2} { // the second pass sees the same stale cache
		s := newTestState(svc, nil, tasks...)
		if err := r.collectStoppedTasks(ctx, s); err != nil {
			t.Fatal(err)
		}
		if deletes != want {
			t.Fatalf("pass %d: %d deletes in all, want %d", pass+1, deletes, want)
		}
	}
	s := newTestState(svc, nil, tasks...)
	s.now = now.Add(expectations.DefaultTTL + time.Second)
	if err := r.collectStoppedTasks(ctx, s); err != nil {
		t.Fatal(err)
	}
	if deletes != 4 {
		t.Errorf("after the expectations expired: %d deletes in all, want 4 (the cache is trusted again)", deletes)
	}
}
