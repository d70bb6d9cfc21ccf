package deployment

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHistoryCollect(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	stopped := func(name string, at time.Time) StoppedTask { return StoppedTask{Name: name, StoppedAt: at} }
	failedOf := func(name, dep string, at time.Time) StoppedTask {
		return StoppedTask{Name: name, StoppedAt: at, Deployment: dep, Failed: true}
	}
	tests := []struct {
		name        string
		history     History
		tasks       []StoppedTask
		wantCollect []string
		wantNext    time.Time
	}{
		{
			name:     "standalone task before its retention period ends",
			history:  History{Retention: time.Hour},
			tasks:    []StoppedTask{stopped("a", ago(10*time.Minute))},
			wantNext: ago(10 * time.Minute).Add(time.Hour),
		},
		{
			name:        "standalone task past its retention period",
			history:     History{Retention: time.Hour},
			tasks:       []StoppedTask{stopped("a", ago(time.Hour))},
			wantCollect: []string{"a"},
		},
		{
			name:        "zero retention deletes at once",
			history:     History{},
			tasks:       []StoppedTask{stopped("a", now)},
			wantCollect: []string{"a"},
		},
		{
			name:    "a service keeps its newest stopped task past retention",
			history: History{Retention: time.Hour, Limit: 20, KeepNewest: true},
			tasks: []StoppedTask{
				stopped("old", ago(3*time.Hour)), stopped("newest", ago(2*time.Hour)), stopped("older", ago(4*time.Hour)),
			},
			wantCollect: []string{"old", "older"},
		},
		{
			name:        "equal stop times: the greater name is the newest",
			history:     History{Retention: time.Hour, KeepNewest: true},
			tasks:       []StoppedTask{stopped("a", ago(2*time.Hour)), stopped("b", ago(2*time.Hour))},
			wantCollect: []string{"a"},
		},
		{
			name:    "beyond the limit at once, the oldest first to go",
			history: History{Retention: time.Hour, Limit: 2, KeepNewest: true},
			tasks: []StoppedTask{
				stopped("t1", ago(4*time.Minute)), stopped("t2", ago(3*time.Minute)), stopped("t3", ago(2*time.Minute)), stopped("t4", ago(time.Minute)),
			},
			wantCollect: []string{"t2", "t1"},
			wantNext:    ago(2 * time.Minute).Add(time.Hour),
		},
		{
			name:    "the newest counts toward the limit",
			history: History{Retention: time.Hour, Limit: 1, KeepNewest: true},
			tasks:   []StoppedTask{stopped("t1", ago(2*time.Minute)), stopped("t2", ago(time.Minute))},
			// t2 is kept however old; nothing else is kept, so no deadline.
			wantCollect: []string{"t1"},
		},
		{
			name: "the failures a deployment in progress counts stay, past the limit and the retention period",
			history: History{Retention: time.Minute, Limit: 1, KeepNewest: true,
				Exempt: []Exemption{{Deployment: "d2", Count: 3}}},
			tasks: []StoppedTask{
				failedOf("d2-f1", "d2", ago(4*time.Hour)), failedOf("d2-f2", "d2", ago(3*time.Hour)),
				failedOf("d2-f3", "d2", ago(2*time.Hour)), failedOf("d2-f4", "d2", ago(time.Hour)),
				failedOf("d1-f1", "d1", ago(30*time.Minute)), stopped("d2-ok", ago(5*time.Hour)),
			},
			// d2's three newest failures are exempt and do not count toward the limit;
			// d1-f1 is the newest (kept), d2-f1 is beyond the count of three.
			wantCollect: []string{"d2-f1", "d2-ok"},
		},
		{
			name: "an exemption with a start keeps only failures since then",
			history: History{Retention: time.Minute, Limit: 1,
				Exempt: []Exemption{{Deployment: "d1", Count: 9, Since: ago(15 * time.Minute)}}},
			tasks: []StoppedTask{
				failedOf("recent", "d1", ago(5*time.Minute)), failedOf("stale", "d1", ago(20*time.Minute)),
			},
			wantCollect: []string{"stale"},
		},
		{
			name: "two exemptions over the same tasks each keep their own count",
			history: History{Retention: time.Minute, Limit: 1,
				Exempt: []Exemption{{Deployment: "d1", Count: 1}, {Deployment: "d1", Count: 2, Since: ago(time.Hour)}}},
			tasks: []StoppedTask{
				failedOf("f1", "d1", ago(3*time.Hour)), failedOf("f2", "d1", ago(20*time.Minute)), failedOf("f3", "d1", ago(10*time.Minute)),
			},
			// f3 is kept by both, f2 by the second; f1 by neither and past retention.
			wantCollect: []string{"f1"},
		},
		{
			name:    "no tasks",
			history: History{Retention: time.Hour, Limit: 1, KeepNewest: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotCollect, gotNext := tc.history.Collect(tc.tasks, now)
			if diff := cmp.Diff(tc.wantCollect, gotCollect); diff != "" {
				t.Errorf("collect (-want +got):\n%s", diff)
			}
			if !gotNext.Equal(tc.wantNext) {
				t.Errorf("next = %v, want %v", gotNext, tc.wantNext)
			}
		})
	}
}

func TestRetention(t *testing.T) {
	seconds := int32(90)
	if got := Retention(&seconds); got != 90*time.Second {
		t.Errorf("Retention(90) = %v", got)
	}
	if got := Retention(nil); got != DefaultStoppedTaskRetention {
		t.Errorf("Retention(nil) = %v, want %v", got, DefaultStoppedTaskRetention)
	}
}

func TestHistoryUnkept(t *testing.T) {
	tests := []struct {
		name      string
		history   History
		n, recent int
		want      int
	}{
		{name: "fewer stops than the limit: all kept", history: History{Retention: time.Hour, Limit: 20}, n: 5, want: 0},
		{name: "as many as the limit", history: History{Retention: time.Hour, Limit: 20}, n: 20, want: 0},
		{name: "a batch beyond the limit", history: History{Retention: time.Hour, Limit: 20, KeepNewest: true}, n: 500, want: 480},
		{name: "recent kept stops take their place first", history: History{Retention: time.Hour, Limit: 20}, n: 30, recent: 15, want: 25},
		{name: "a window's limit already kept: none more", history: History{Retention: time.Hour, Limit: 20}, n: 30, recent: 20, want: 30},
		{name: "more recent than the limit", history: History{Retention: time.Hour, Limit: 20}, n: 3, recent: 25, want: 3},
		{name: "no limit keeps all until the retention period ends", history: History{Retention: time.Hour}, n: 500, recent: 40, want: 0},
		{name: "zero retention keeps only the newest", history: History{Limit: 20, KeepNewest: true}, n: 30, want: 29},
		{name: "zero retention without KeepNewest keeps none", history: History{Limit: 20}, n: 30, want: 30},
		{name: "nothing stopped", history: History{Retention: time.Hour, Limit: 20}, n: 0, recent: 3, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.history.Unkept(tc.n, tc.recent); got != tc.want {
				t.Errorf("Unkept(%d, %d) = %d, want %d", tc.n, tc.recent, got, tc.want)
			}
		})
	}
}

// TestHistoryUnkeptAgreesWithCollect holds Unkept to Collect: of a batch stopped
// after the tasks already kept, with none of them recent, Collect deletes at least as
// many as Unkept says (tasks deleted by their agents are ones collection would have
// deleted anyway), and exactly as many when the batch alone fills the history.
func TestHistoryUnkeptAgreesWithCollect(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, h := range []History{
		{Retention: time.Hour, Limit: 20, KeepNewest: true},
		{Retention: time.Hour, Limit: 3},
		{Limit: 20, KeepNewest: true},
		{Retention: time.Hour},
	} {
		for _, older := range []int{0, 5, 40} {
			for _, n := range []int{0, 1, 3, 20, 21, 100} {
				var tasks []StoppedTask
				for i := range older {
					tasks = append(tasks, StoppedTask{Name: fmt.Sprintf("old-%03d", i), StoppedAt: now.Add(-time.Minute - time.Duration(i)*time.Second)})
				}
				for i := range n {
					tasks = append(tasks, StoppedTask{Name: fmt.Sprintf("new-%03d", i), StoppedAt: now.Add(time.Duration(i) * time.Millisecond)})
				}
				collect, _ := h.Collect(tasks, now.Add(time.Second))
				newCollected := 0
				for _, name := range collect {
					if strings.HasPrefix(name, "new-") {
						newCollected++
					}
				}
				if u := h.Unkept(n, 0); newCollected < u || (older == 0 && newCollected != u) {
					t.Errorf("%+v, %d older, %d new: Unkept says %d, Collect deletes %d of the new", h, older, n, u, newCollected)
				}
			}
		}
	}
}
