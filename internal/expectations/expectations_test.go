package expectations

import (
	"testing"
	"time"
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
