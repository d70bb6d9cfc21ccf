package fake

import (
	"context"
	"sync"

	"github.com/berthdev/berth/agent/runtime"
)

// subscriber is one Events stream. Events queue without bound, so a slow reader
// never blocks the runtime (containerd buffers the same way).
type subscriber struct {
	mu     sync.Mutex
	queue  []runtime.Event
	notify chan struct{}
	fail   chan error
}

// Events delivers exits and OOM kills until ctx ends or BreakEvents is called.
func (r *Runtime) Events(ctx context.Context) (<-chan runtime.Event, <-chan error) {
	s := &subscriber{notify: make(chan struct{}, 1), fail: make(chan error, 1)}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()

	out := make(chan runtime.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(out)
		defer func() {
			r.mu.Lock()
			delete(r.subs, s)
			r.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			var ev *runtime.Event
			if len(s.queue) > 0 {
				e := s.queue[0]
				s.queue = s.queue[1:]
				ev = &e
			}
			s.mu.Unlock()
			if ev == nil {
				select {
				case <-s.notify:
					continue
				case err := <-s.fail:
					errc <- err
					return
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- *ev:
			case err := <-s.fail:
				errc <- err
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

// publishLocked queues ev for every subscriber. Callers hold r.mu.
func (r *Runtime) publishLocked(ev runtime.Event) {
	for s := range r.subs {
		s.mu.Lock()
		s.queue = append(s.queue, ev)
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// BreakEvents ends every open Events stream with err, as a lost connection to the
// runtime would. Events queued and not yet read are lost with it.
func (r *Runtime) BreakEvents(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		select {
		case s.fail <- err:
		default:
		}
		delete(r.subs, s)
	}
}

// Subscribers is the number of open Events streams.
func (r *Runtime) Subscribers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs)
}
