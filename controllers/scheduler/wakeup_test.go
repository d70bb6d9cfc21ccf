package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func testQueue() workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
}

// waitingTasks registers n tasks, named after their cluster c, as waiting in c.
func waitingTasks(s *Scheduler, c string, n int) {
	for i := range n {
		s.wait(types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("%s-%05d", c, i)}, c)
	}
}

// TestKickBurstIsNotLost: a burst of wake-ups far larger than the 1,024 the old
// channel held reaches the queue whole: every waiting task of the cluster is retried,
// once.
func TestKickBurstIsNotLost(t *testing.T) {
	const n = 5000
	s := &Scheduler{}
	waitingTasks(s, "c1", n)
	waitingTasks(s, "c2", 3) // another cluster's: not woken
	q := testQueue()
	defer q.ShutDown()
	if err := s.wakeups.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}

	s.kick("c1")
	s.kick("c1") // a second burst before any is processed costs nothing more
	if got := q.Len(); got != n {
		t.Errorf("queue holds %d tasks after a burst of %d wake-ups, want %d", got, 2*n, n)
	}
}

// TestKicksBeforeStartAreKept: wake-ups that come before the controller hands over
// its queue are delivered when it does.
func TestKicksBeforeStartAreKept(t *testing.T) {
	s := &Scheduler{}
	waitingTasks(s, "c1", 2)
	s.kick("c1")
	q := testQueue()
	defer q.ShutDown()
	if err := s.wakeups.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	var got []string
	for q.Len() > 0 {
		req, _ := q.Get()
		got = append(got, req.Name)
		q.Done(req)
	}
	want := []string{"c1-00000", "c1-00001"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		attempts int
		want     time.Duration
	}{
		{0, 30 * time.Second},
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{4, 5 * time.Minute},
		{63, 5 * time.Minute}, // no overflow
	}
	for _, tc := range tests {
		if got := retryDelay(tc.attempts, unplacedRetryBase, unplacedRetryMax); got != tc.want {
			t.Errorf("retryDelay(%d) = %v, want %v", tc.attempts, got, tc.want)
		}
	}
}

// TestRetryAfterBacksOffPerTask: each attempt that leaves a task waiting pushes its
// next clock-driven retry further, per task, until it is placed or gone.
func TestRetryAfterBacksOffPerTask(t *testing.T) {
	s := &Scheduler{}
	a, b := types.NamespacedName{Namespace: "ns", Name: "a"}, types.NamespacedName{Namespace: "ns", Name: "b"}
	var got []time.Duration
	for range 3 {
		got = append(got, s.retryAfter(a))
	}
	got = append(got, s.retryAfter(b))
	s.settle(a, "c1")
	got = append(got, s.retryAfter(a))
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retry delays (-want +got):\n%s", diff)
	}
}
