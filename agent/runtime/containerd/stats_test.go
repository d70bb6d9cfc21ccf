package containerd_test

import (
	"errors"
	"testing"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

func TestStats(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img, "alloc=16", "sleep=inf")
	spec.MemoryLimitBytes = 64 << 20
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer e.delete(spec.ID)
	if _, err := e.rt.Stats(e.ctx, spec.ID); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Stats of a created container: %v, want ErrNotRunning", err)
	}
	if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	e.waitLog(spec, "allocated")
	before := time.Now()
	st, err := e.rt.Stats(e.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryUsageBytes < 16<<20 || st.MemoryUsageBytes > 64<<20 {
		t.Errorf("memory usage %d bytes, want between the 16 MiB allocated and the 64 MiB limit", st.MemoryUsageBytes)
	}
	if st.MemoryLimitBytes != 64<<20 {
		t.Errorf("memory limit %d, want %d", st.MemoryLimitBytes, 64<<20)
	}
	if st.CPU <= 0 {
		t.Errorf("cpu %s, want some (touching 16 MiB takes CPU)", st.CPU)
	}
	if st.Time.Before(before.Add(-time.Minute)) || st.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("time %s, want about now", st.Time)
	}
	if _, err := e.rt.Stats(e.ctx, "no-such-container"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Stats of a missing container: %v, want ErrNotFound", err)
	}
}

func TestStatsUnlimited(t *testing.T) {
	e := newEnv(t)
	img := e.image()
	spec := e.spec("app", img, "echo=ready", "sleep=inf")
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	defer e.delete(spec.ID)
	if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	e.waitLog(spec, "ready")
	st, err := e.rt.Stats(e.ctx, spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryLimitBytes != 0 || st.MemoryUsageBytes == 0 {
		t.Errorf("stats %+v, want some memory and no limit", st)
	}
}

func TestImagesAndRemoveImage(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second)
	_, ref := e.registry("team/app")
	if _, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	find := func() (runtime.ImageInfo, bool) {
		t.Helper()
		imgs, err := e.rt.Images(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range imgs {
			if i.Ref == ref {
				return i, true
			}
		}
		return runtime.ImageInfo{}, false
	}
	img, ok := find()
	if !ok {
		t.Fatalf("Images lacks %s", ref)
	}
	if img.PulledAt.Before(before.Truncate(time.Second)) || img.LastUsed.Before(before) || img.Digest == "" {
		t.Errorf("image %+v, want pulled and used now, with a digest", img)
	}

	// An image the agent did not pull has no pull time.
	e.dropPulledLabel(ref)
	if img, _ := find(); !img.PulledAt.IsZero() {
		t.Errorf("PulledAt %s of an image without the pulled-at label, want zero", img.PulledAt)
	}

	if err := e.rt.RemoveImage(e.ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(); ok {
		t.Errorf("%s is still listed after RemoveImage", ref)
	}
	if err := e.rt.RemoveImage(e.ctx, ref); err != nil {
		t.Errorf("removing a removed image: %v, want success", err)
	}
	// It can be pulled and run again.
	if _, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	if st, out := e.run(e.spec("again", ref, "echo=hi", "exit=0")); st.Code != 0 {
		t.Errorf("exit %d after pulling a removed image again:\n%s", st.Code, out)
	}
}
