package scheduler

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Retries of tasks that wait for placement. They are event-driven first: an instance
// that joins or changes, a bound task that stops or goes away, a TaskDefinition or a
// Cluster policy that changes, each wakes the waiting tasks of its cluster or family.
// A wake-up is never dropped: wakeups adds to the controller's own queue, which is
// unbounded and deduplicates, so a burst of them costs one reconcile per task (a
// buffered channel, as source.Channel uses, drops or blocks once full). And in case
// no event comes, for whatever the events do not cover, a task that still waits is
// retried on a clock too, from unplacedRetryBase doubling to unplacedRetryMax.

const (
	unplacedRetryBase = 30 * time.Second
	unplacedRetryMax  = 5 * time.Minute
)

// wakeups is the scheduler's own event source: it adds requests straight to the
// controller's queue. Requests added before the controller starts are kept and
// added at start.
type wakeups struct {
	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
	pending map[reconcile.Request]bool
}

// Start implements source.TypedSource: the controller hands over its queue.
func (w *wakeups) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue = q
	for req := range w.pending {
		q.Add(req)
	}
	w.pending = nil
	return nil
}

func (w *wakeups) String() string { return "scheduler wake-ups" }

// add wakes the tasks keys name. It never blocks: the queue grows as needed.
func (w *wakeups) add(keys []types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		req := reconcile.Request{NamespacedName: k}
		if w.queue != nil {
			w.queue.Add(req)
			continue
		}
		if w.pending == nil {
			w.pending = map[reconcile.Request]bool{}
		}
		w.pending[req] = true
	}
}

// retryDelay is how long a task that waited attempts times already waits before its
// next clock-driven retry.
func retryDelay(attempts int, base, limit time.Duration) time.Duration {
	if attempts > 20 { // far past any limit; keeps the shift from overflowing
		return limit
	}
	return min(base<<attempts, limit)
}
