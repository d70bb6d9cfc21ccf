package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPairedCallsAlternate: each pair runs both ways, the first of a pair in turn,
// and each way's latencies are its own.
func TestPairedCallsAlternate(t *testing.T) {
	self := map[string]int{"harness": os.Getpid()}
	p := newPairedCalls(self, self, 4)
	var order []string
	err := p.run(context.Background(), 4,
		func(context.Context) error { order = append(order, "api"); return nil },
		func(context.Context) error { order = append(order, "kube"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := "api kube kube api api kube kube api"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("call order %q, want %q", got, want)
	}
	if len(p.value.latencies) != 4 || len(p.ref.latencies) != 4 {
		t.Errorf("latencies: %d of the API's and %d of client-go's, want 4 each", len(p.value.latencies), len(p.ref.latencies))
	}
}

// TestPairedCallsStopAtError: a failed call ends the run with its error and is not
// counted as a latency.
func TestPairedCallsStopAtError(t *testing.T) {
	self := map[string]int{"harness": os.Getpid()}
	p := newPairedCalls(self, self, 3)
	boom := errors.New("boom")
	calls := 0
	err := p.run(context.Background(), 3,
		func(context.Context) error { calls++; return nil },
		func(context.Context) error {
			calls++
			if calls == 3 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("run returned %v, want %v", err, boom)
	}
	// The second pair starts with the baseline, which fails.
	if calls != 3 || len(p.value.latencies) != 1 || len(p.ref.latencies) != 1 {
		t.Errorf("%d calls, %d value and %d baseline latencies; want 3, 1 and 1", calls, len(p.value.latencies), len(p.ref.latencies))
	}
}

func TestCPUPerCall(t *testing.T) {
	s := callStats{latencies: make([]time.Duration, 4), cpu: map[string]float64{"berth api": 0.2, "kube-apiserver": 0.6, "etcd": 0.1}}
	want := map[string]float64{"BerthAPI": 50, "KubeAPIServer": 150, "Etcd": 25, "Value": 225}
	if diff := cmp.Diff(want, s.cpuPerCall(), cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })); diff != "" {
		t.Errorf("cpuPerCall (-want +got):\n%s", diff)
	}
}
