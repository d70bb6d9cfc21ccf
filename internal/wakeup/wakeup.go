// Package wakeup is an event source that adds requests straight to a controller's
// queue, for wake-ups that come from a controller's own bookkeeping rather than from
// a watch (a task waiting for room, a service short of room).
//
// A wake-up is never dropped: the controller's queue is unbounded and deduplicates,
// so a burst of them costs one reconcile per key, where a buffered channel (as
// source.Channel uses) drops or blocks once full. Requests added before the
// controller starts are kept and added at start.
package wakeup

import (
	"context"
	"sync"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Source is a source.TypedSource of reconcile.Requests. The zero value is ready.
type Source struct {
	// Name is what String reports, in the controller's logs.
	Name string

	mu      sync.Mutex
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
	pending map[reconcile.Request]bool
}

// Start implements source.TypedSource: the controller hands over its queue.
func (s *Source) Start(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = q
	for req := range s.pending {
		q.Add(req)
	}
	s.pending = nil
	return nil
}

func (s *Source) String() string { return s.Name }

// Add wakes the requests. It never blocks: the queue grows as needed.
func (s *Source) Add(reqs ...reconcile.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, req := range reqs {
		if s.queue != nil {
			s.queue.Add(req)
			continue
		}
		if s.pending == nil {
			s.pending = map[reconcile.Request]bool{}
		}
		s.pending[req] = true
	}
}
