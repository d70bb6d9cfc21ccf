package containerd

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/runtime"
)

// TestOOMEvents: every OOM-killed exit comes after an EventOOM, whether containerd
// sent its TaskOOM (before or, late, after the exit) or missed it.
func TestOOMEvents(t *testing.T) {
	at := time.Unix(100, 0)
	oom := func(id string) runtime.Event { return runtime.Event{Type: runtime.EventOOM, ContainerID: id, Time: at} }
	exit := func(id string, killed bool) runtime.Event {
		return runtime.Event{Type: runtime.EventExit, ContainerID: id, Time: at, Exit: &runtime.ExitStatus{Code: 137, OOMKilled: killed}}
	}
	for _, tc := range []struct {
		name string
		in   []runtime.Event
		want []runtime.Event
	}{
		{"containerd's OOM event, then the exit", []runtime.Event{oom("a"), exit("a", true)},
			[]runtime.Event{oom("a"), exit("a", true)}},
		{"the counter is gone by the exit: the event says OOMKilled", []runtime.Event{oom("a"), exit("a", false)},
			[]runtime.Event{oom("a"), exit("a", true)}},
		{"a missed OOM event is made before the exit", []runtime.Event{exit("a", true)},
			[]runtime.Event{oom("a"), exit("a", true)}},
		{"containerd's late event after a made one is dropped once", []runtime.Event{exit("a", true), oom("a"), oom("a")},
			[]runtime.Event{oom("a"), exit("a", true), oom("a")}},
		{"no OOM, no event made", []runtime.Event{exit("a", false)},
			[]runtime.Event{exit("a", false)}},
		{"containers apart", []runtime.Event{oom("a"), exit("b", false), exit("a", false)},
			[]runtime.Event{oom("a"), exit("b", false), exit("a", true)}},
		{"a later exit judges afresh", []runtime.Event{exit("a", true), exit("a", false), oom("a")},
			[]runtime.Event{oom("a"), exit("a", true), exit("a", false), oom("a")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o oomEvents
			var got []runtime.Event
			for _, ev := range tc.in {
				if ev.Exit != nil {
					e := *ev.Exit
					ev.Exit = &e
				}
				got = append(got, o.next(ev)...)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOOMEventsMadeIsBounded: the record of made events does not grow without end.
func TestOOMEventsMadeIsBounded(t *testing.T) {
	var o oomEvents
	for i := range 3 * maxMade {
		o.next(runtime.Event{Type: runtime.EventExit, ContainerID: strconv.Itoa(i),
			Exit: &runtime.ExitStatus{OOMKilled: true}})
	}
	if len(o.made) > maxMade {
		t.Errorf("%d made events remembered, want at most %d", len(o.made), maxMade)
	}
}
