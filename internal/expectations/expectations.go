// Package expectations remembers what a controller just wrote so that it does not act
// again on a cache that has not caught up: after creating tasks a service waits until
// its cache shows them (as the ReplicaSet controller does), and a task it deleted is
// not deleted again while the cache still shows it. Expectations expire, so a
// lost watch event delays a controller instead of stopping it.
//
// Expectations save wasted requests within one manager; deterministic object names
// are what keeps two managers from duplicating work, since they share no memory.
package expectations

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// DefaultTTL bounds how long a controller waits for its cache; the ReplicaSet
// controller uses five minutes, Berth less because a wasted request is cheap.
const DefaultTTL = time.Minute

// Store holds expectations per owner key.
type Store struct {
	TTL time.Duration

	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	creates map[string]bool
	stops   map[string]bool
	// deletes are by name and UID: a later object of the same name is not the one
	// deleted.
	deletes  map[string]types.UID
	deadline time.Time
}

// New returns an empty store with DefaultTTL.
func New() *Store { return &Store{TTL: DefaultTTL, m: map[string]*entry{}} }

func (s *Store) entry(key string, now time.Time) *entry {
	e := s.m[key]
	if e == nil {
		e = &entry{creates: map[string]bool{}, stops: map[string]bool{}, deletes: map[string]types.UID{}}
		s.m[key] = e
	}
	e.deadline = now.Add(s.TTL)
	return e
}

// ExpectCreates records objects created for key that the cache must show.
func (s *Store) ExpectCreates(key string, names []string, now time.Time) {
	s.expect(key, len(names), now, func(e *entry) {
		for _, n := range names {
			e.creates[n] = true
		}
	})
}

// ExpectStops records objects asked to stop that the cache must show stopping.
func (s *Store) ExpectStops(key string, names []string, now time.Time) {
	s.expect(key, len(names), now, func(e *entry) {
		for _, n := range names {
			e.stops[n] = true
		}
	})
}

// ExpectDeletes records objects deleted for key (name to UID) that the cache must stop
// showing. Unlike creates and stops they do not hold Satisfied back: what is deleted
// is stopped already and plans nothing; they only answer Deleted.
func (s *Store) ExpectDeletes(key string, deleted map[string]types.UID, now time.Time) {
	s.expect(key, len(deleted), now, func(e *entry) {
		for n, uid := range deleted {
			e.deletes[n] = uid
		}
	})
}

// expect adds n expectations to key's entry with add, and restarts its deadline.
func (s *Store) expect(key string, n int, now time.Time, add func(*entry)) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	add(s.entry(key, now))
}

// Deleted reports whether the object name with uid was deleted for key and the
// expectation stands: a cache that still shows it has not caught up, and deleting it
// again would only be answered 404.
func (s *Store) Deleted(key, name string, uid types.UID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	return e != nil && !now.After(e.deadline) && e.deletes[name] == uid
}

// Observed reports what the cache shows of one object.
type Observed func(name string) (exists, stopping bool)

// Satisfied drops the expectations the cache now meets and reports whether none are
// left (or they expired).
func (s *Store) Satisfied(key string, now time.Time, observed Observed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		return true
	}
	for n := range e.creates {
		if exists, _ := observed(n); exists {
			delete(e.creates, n)
		}
	}
	for n := range e.stops {
		if exists, stopping := observed(n); !exists || stopping {
			delete(e.stops, n)
		}
	}
	for n := range e.deletes {
		if exists, _ := observed(n); !exists {
			delete(e.deletes, n)
		}
	}
	if now.After(e.deadline) || len(e.creates)+len(e.stops)+len(e.deletes) == 0 {
		delete(s.m, key)
		return true
	}
	return len(e.creates) == 0 && len(e.stops) == 0
}

// Forget drops every expectation of key (the owner was deleted).
func (s *Store) Forget(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}
