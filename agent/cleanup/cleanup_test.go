package cleanup

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
)

// tasks records the Cleanup calls the engine would get.
type tasks struct {
	mu    sync.Mutex
	waits []time.Duration
	err   error
}

func (t *tasks) Cleanup(_ context.Context, olderThan time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.waits = append(t.waits, olderThan)
	return t.err
}

func (t *tasks) calls() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.waits...)
}

func refs(t *testing.T, rt *fake.Runtime) []string {
	t.Helper()
	imgs, err := rt.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range imgs {
		out = append(out, i.Ref)
	}
	return out
}

// TestImageCleanup: of images pulled two hours ago, with a one-hour age, only those
// no container uses and no pull handed out since go; imported and recent ones stay.
func TestImageCleanup(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := fake.New(fake.WithClock(clk))
	pull := func(ref string, policy runtime.PullPolicy) {
		t.Helper()
		if _, err := rt.Pull(ctx, ref, policy, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"r.example/unused:1", "r.example/running:1", "r.example/stopped:1", "r.example/cached:1"} {
		pull(ref, runtime.PullDefault)
	}
	rt.AddImage("r.example/imported:1") // not pulled by the agent
	for _, c := range []struct{ id, image string }{{"run", "r.example/running:1"}, {"stop", "r.example/stopped:1"}} {
		if _, err := rt.Create(ctx, runtime.ContainerSpec{ID: c.id, Image: c.image}); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Start(ctx, c.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Exit("stop", 0); err != nil {
		t.Fatal(err)
	}
	clk.Step(2 * time.Hour)
	pull("r.example/recent:1", runtime.PullDefault)
	pull("r.example/cached:1", runtime.PullPreferCached) // about to be used by a new container

	eng := &tasks{}
	c := New(Config{Tasks: eng, Runtime: rt, TaskCleanupWait: 3 * time.Hour, ImageCleanupAge: time.Hour, Clock: clk})
	if err := c.Once(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"r.example/cached:1", "r.example/imported:1", "r.example/recent:1", "r.example/running:1", "r.example/stopped:1"}
	if d := cmp.Diff(want, refs(t, rt)); d != "" {
		t.Errorf("images left (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]time.Duration{3 * time.Hour}, eng.calls()); d != "" {
		t.Errorf("task cleanups (-want +got):\n%s", d)
	}

	// Once the stopped container is gone, its image goes at the next pass.
	if err := rt.Delete(ctx, "stop"); err != nil {
		t.Fatal(err)
	}
	if err := c.Once(ctx); err != nil {
		t.Fatal(err)
	}
	want = []string{"r.example/cached:1", "r.example/imported:1", "r.example/recent:1", "r.example/running:1"}
	if d := cmp.Diff(want, refs(t, rt)); d != "" {
		t.Errorf("images left after the container was deleted (-want +got):\n%s", d)
	}
}

func TestImageCleanupDisabled(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := fake.New(fake.WithClock(clk))
	if _, err := rt.Pull(ctx, "r.example/unused:1", runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	clk.Step(24 * time.Hour)
	eng := &tasks{err: errors.New("deleting container x: boom")}
	err := New(Config{Tasks: eng, Runtime: rt, TaskCleanupWait: time.Minute, Clock: clk}).Once(ctx)
	if err == nil {
		t.Error("the engine's cleanup error was not returned")
	}
	if n := rt.Count("Images", ""); n != 0 {
		t.Errorf("images listed %d times with image cleanup disabled", n)
	}
	if d := cmp.Diff([]string{"r.example/unused:1"}, refs(t, rt)); d != "" {
		t.Errorf("images (-want +got):\n%s", d)
	}
}

// TestRunEveryInterval: a pass runs each time the interval passes, until ctx ends.
func TestRunEveryInterval(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	eng := &tasks{}
	c := New(Config{Tasks: eng, Runtime: fake.New(), TaskCleanupWait: time.Second, Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	for i := 1; i <= 3; i++ {
		deadline := time.Now().Add(5 * time.Second)
		for !clk.HasWaiters() {
			if time.Now().After(deadline) {
				t.Fatal("Run never waited for its interval")
			}
			time.Sleep(time.Millisecond)
		}
		clk.Step(DefaultInterval)
		for len(eng.calls()) < i {
			if time.Now().After(deadline) {
				t.Fatalf("%d passes after %d intervals", len(eng.calls()), i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	<-done
}
