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
