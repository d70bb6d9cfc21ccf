package fake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/berthdev/berth/agent/runtime"
)

func TestImages(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk))
	if _, err := r.Pull(ctx, "registry.example/a:1", runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	r.AddImage("registry.example/imported:1")
	clk.Step(time.Minute)
	if _, err := r.Pull(ctx, "registry.example/a:1", runtime.PullPreferCached, nil); err != nil {
		t.Fatal(err)
	}
	got, err := r.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []runtime.ImageInfo{
		{Ref: "registry.example/a:1", Digest: Digest("registry.example/a:1"), PulledAt: t0, LastUsed: t0.Add(time.Minute)},
		{Ref: "registry.example/imported:1", Digest: Digest("registry.example/imported:1")},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("images (-want +got):\n%s", d)
	}
	if err := r.RemoveImage(ctx, "registry.example/a:1"); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveImage(ctx, "registry.example/a:1"); err != nil {
		t.Errorf("removing a missing image: %v", err)
	}
	if _, err := r.Create(ctx, spec("c", "registry.example/a:1")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("create from a removed image: %v, want ErrNotFound", err)
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	r := New(WithClock(clocktesting.NewFakeClock(t0)))
	r.AddImage("registry.example/a:1")
	if _, err := r.Create(ctx, spec("c", "registry.example/a:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Stats(ctx, "c"); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("stats of a created container: %v, want ErrNotRunning", err)
	}
	if _, err := r.Stats(ctx, "missing"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("stats of a missing container: %v, want ErrNotFound", err)
	}
	r.SetStats("c", runtime.ContainerStats{CPU: time.Second, MemoryUsageBytes: 10})
	if _, err := r.Start(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	got, err := r.Stats(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(runtime.ContainerStats{CPU: time.Second, MemoryUsageBytes: 10, Time: t0}, got); d != "" {
		t.Errorf("stats (-want +got):\n%s", d)
	}
}

// TestUsage: containers SetStats did not set use WithUsage's share of a core from
// their process's start, counted again from a restart.
func TestUsage(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk), WithUsage(0.25, 16<<20))
	r.AddImage("registry.example/a:1")
	for _, id := range []string{"c", "set"} {
		if _, err := r.Create(ctx, spec(id, "registry.example/a:1")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	r.SetStats("set", runtime.ContainerStats{CPU: time.Hour})
	stats := func(id string) runtime.ContainerStats {
		t.Helper()
		st, err := r.Stats(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	clk.Step(8 * time.Second)
	if d := cmp.Diff(runtime.ContainerStats{CPU: 2 * time.Second, MemoryUsageBytes: 16 << 20, Time: t0.Add(8 * time.Second)}, stats("c")); d != "" {
		t.Errorf("stats after 8 s (-want +got):\n%s", d)
	}
	if got := stats("set").CPU; got != time.Hour {
		t.Errorf("SetStats's CPU %v, want 1h", got)
	}
	if err := r.Exit("c", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	clk.Step(4 * time.Second)
	if got := stats("c").CPU; got != time.Second {
		t.Errorf("CPU 4 s after a restart: %v, want 1s", got)
	}
}
