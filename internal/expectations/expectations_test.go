package expectations

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestSatisfied(t *testing.T) {
	now := time.Unix(1000, 0)
	cache := map[string]bool{} // name -> stopping
	observed := func(n string) (bool, bool) { s, ok := cache[n]; return ok, s }
	cases := []struct {
		name  string
		setup func(s *Store)
		cache map[string]bool
		at    time.Time
		want  bool
	}{
		{name: "nothing expected", setup: func(*Store) {}, want: true},
		{name: "creates not seen yet", setup: func(s *Store) { s.ExpectCreates("svc", []string{"a", "b"}, now) }, cache: map[string]bool{"a": false}, at: now, want: false},
		{name: "creates all seen", setup: func(s *Store) { s.ExpectCreates("svc", []string{"a", "b"}, now) }, cache: map[string]bool{"a": false, "b": false}, at: now, want: true},
		{name: "stop not seen yet", setup: func(s *Store) { s.ExpectStops("svc", []string{"a"}, now) }, cache: map[string]bool{"a": false}, at: now, want: false},
		{name: "stop seen", setup: func(s *Store) { s.ExpectStops("svc", []string{"a"}, now) }, cache: map[string]bool{"a": true}, at: now, want: true},
		{name: "stopped object gone counts as seen", setup: func(s *Store) { s.ExpectStops("svc", []string{"a"}, now) }, at: now, want: true},
		{name: "expired", setup: func(s *Store) { s.ExpectCreates("svc", []string{"a"}, now) }, at: now.Add(DefaultTTL + time.Second), want: true},
		{name: "a delete the cache still shows does not hold a pass back", setup: func(s *Store) { s.ExpectDeletes("svc", map[string]types.UID{"a": "u1"}, now) }, cache: map[string]bool{"a": true}, at: now, want: true},
		{name: "other keys do not matter", setup: func(s *Store) { s.ExpectCreates("other", []string{"a"}, now) }, at: now, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			tc.setup(s)
			cache = tc.cache
			if got := s.Satisfied("svc", tc.at, observed); got != tc.want {
				t.Errorf("Satisfied = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDeleted(t *testing.T) {
	now := time.Unix(1000, 0)
	shown := map[string]bool{"a": true, "b": true}
	observed := func(n string) (bool, bool) { return shown[n], true }
	s := New()
	s.ExpectDeletes("svc", map[string]types.UID{"a": "u1", "b": "u2"}, now)
	for _, tc := range []struct {
		name, obj string
		uid       types.UID
		key       string
		at        time.Time
		want      bool
	}{
		{name: "deleted, cache behind", obj: "a", uid: "u1", key: "svc", at: now, want: true},
		{name: "a later object of the same name", obj: "a", uid: "u9", key: "svc", at: now, want: false},
		{name: "never deleted", obj: "c", uid: "u3", key: "svc", at: now, want: false},
		{name: "another owner", obj: "a", uid: "u1", key: "other", at: now, want: false},
		{name: "expired", obj: "a", uid: "u1", key: "svc", at: now.Add(DefaultTTL + time.Second), want: false},
	} {
		if got := s.Deleted(tc.key, tc.obj, tc.uid, tc.at); got != tc.want {
			t.Errorf("%s: Deleted = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Once the cache shows a gone, its expectation goes; b's stays.
	delete(shown, "a")
	s.Satisfied("svc", now, observed)
	if s.Deleted("svc", "a", "u1", now) || !s.Deleted("svc", "b", "u2", now) {
		t.Errorf("after the cache showed a gone: a %v (want false), b %v (want true)", s.Deleted("svc", "a", "u1", now), s.Deleted("svc", "b", "u2", now))
	}
}
