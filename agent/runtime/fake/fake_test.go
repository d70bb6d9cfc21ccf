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

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func spec(id, image string) runtime.ContainerSpec {
	return runtime.ContainerSpec{ID: id, Image: image, Labels: map[string]string{runtime.LabelTaskUID: "u1", runtime.LabelContainer: id}}
}

// created returns a runtime with container c1 created from a pulled image.
func created(t *testing.T) (*Runtime, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	r := New(WithClock(clk))
	ctx := context.Background()
	if _, err := r.Pull(ctx, "app:1", runtime.PullDefault, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, spec("c1", "app:1")); err != nil {
		t.Fatal(err)
	}
	return r, clk
}

func TestPull(t *testing.T) {
	ctx := context.Background()
	r := New()
	img, err := r.Pull(ctx, "app:1", runtime.PullAlways, &runtime.Auth{Username: "u", Password: "p"})
	if err != nil || img.Digest != Digest("app:1") || img.Cached {
		t.Fatalf("Pull = %+v, %v", img, err)
	}
	var refErr *runtime.ReferenceError
	if _, err := r.Pull(ctx, "Shop/App:1", runtime.PullDefault, nil); !errors.As(err, &refErr) {
		t.Errorf("malformed ref: %v, want a *ReferenceError", err)
	}
	denied := &runtime.ImageError{Ref: "app:1", Kind: runtime.ImageUnauthorized, Reason: "401 Unauthorized"}
	r.FailPull("app:1", denied)
	if img, err := r.Pull(ctx, "app:1", runtime.PullDefault, nil); err != nil || !img.Cached || !errors.Is(img.PullError, denied) {
		t.Errorf("default policy falls back to the cached image: %+v, %v", img, err)
	}
	if _, err := r.Pull(ctx, "app:1", runtime.PullAlways, nil); !errors.Is(err, denied) {
		t.Errorf("always policy: %v, want the registry's error", err)
	}
	if img, err := r.Pull(ctx, "app:1", runtime.PullPreferCached, nil); err != nil || !img.Cached {
		t.Errorf("prefer-cached: %+v, %v", img, err)
	}
	if got := r.Calls()[0]; got.Auth == nil || got.Policy != runtime.PullAlways {
		t.Errorf("first call recorded as %+v", got)
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	r, _ := created(t)
	ctx := context.Background()
	info, err := r.Create(ctx, spec("c1", "app:1"))
	if err != nil || info.Status != runtime.StatusCreated {
		t.Fatalf("same spec again: %+v, %v", info, err)
	}
	if _, err := r.Create(ctx, spec("c1", "other:1")); !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Errorf("other image: %v, want ErrAlreadyExists", err)
	}
	if _, err := r.Create(ctx, spec("c2", "never-pulled:1")); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("image not pulled: %v, want ErrNotFound", err)
	}
	if _, err := r.Create(ctx, runtime.ContainerSpec{ID: "bad id", Image: "app:1"}); err == nil {
		t.Errorf("invalid spec accepted")
	}
}

func TestLifecycleAndEvents(t *testing.T) {
	r, _ := created(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, _ := r.Events(ctx)

	pid, err := r.Start(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Start(ctx, "c1"); again != pid {
		t.Errorf("Start of a running container returned pid %d, want %d", again, pid)
	}
	wait, err := r.Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Exit("c1", 3); err != nil {
		t.Fatal(err)
	}
	if es := <-wait; es.Code != 3 {
		t.Errorf("Wait got %+v", es)
	}
	ev := <-events
	if ev.Type != runtime.EventExit || ev.Pid != pid || ev.Exit.Code != 3 {
		t.Errorf("event %+v", ev)
	}
	infos, _ := r.List(ctx, map[string]string{runtime.LabelTaskUID: "u1"})
	if len(infos) != 1 || infos[0].Status != runtime.StatusStopped || infos[0].Exit.Code != 3 {
		t.Errorf("List = %+v", infos)
	}
	if infos, _ := r.List(ctx, map[string]string{runtime.LabelTaskUID: "u2"}); len(infos) != 0 {
		t.Errorf("List by another label = %+v", infos)
	}

	// Restart: a new pid; then an OOM kill.
	pid2, err := r.Start(ctx, "c1")
	if err != nil || pid2 == pid {
		t.Fatalf("restart: pid %d, %v", pid2, err)
	}
	if err := r.OOM("c1"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != runtime.EventOOM {
		t.Errorf("want an OOM event, got %+v", ev)
	}
	if ev := <-events; ev.Type != runtime.EventExit || ev.Pid != pid2 || !ev.Exit.OOMKilled || ev.Exit.Code != ExitSIGKILL {
		t.Errorf("want an OOM exit, got %+v", ev)
	}

	if err := r.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "c1"); err != nil {
		t.Errorf("deleting a missing container: %v", err)
	}
	if _, err := r.Start(ctx, "c1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Start of a deleted container: %v", err)
	}
}

func TestStop(t *testing.T) {
	ctx := context.Background()
	t.Run("SIGTERM", func(t *testing.T) {
		r, _ := created(t)
		if _, err := r.Stop(ctx, "c1", time.Second); !errors.Is(err, runtime.ErrNotStarted) {
			t.Errorf("Stop of a created container: %v", err)
		}
		if _, err := r.Start(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		es, err := r.Stop(ctx, "c1", time.Minute)
		if err != nil || es.Code != ExitSIGTERM {
			t.Errorf("Stop = %+v, %v", es, err)
		}
		if again, err := r.Stop(ctx, "c1", time.Minute); err != nil || again.Code != ExitSIGTERM {
			t.Errorf("Stop of a stopped container = %+v, %v", again, err)
		}
		if diff := cmp.Diff([]string{SIGTERM}, r.Signals("c1")); diff != "" {
			t.Errorf("signals (-want +got):\n%s", diff)
		}
	})
	t.Run("SIGKILL after the timeout", func(t *testing.T) {
		r, clk := created(t)
		if _, err := r.Start(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetIgnoreSIGTERM("c1", true); err != nil {
			t.Fatal(err)
		}
		done := make(chan runtime.ExitStatus)
		go func() {
			es, _ := r.Stop(ctx, "c1", 10*time.Second)
			done <- es
		}()
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		clk.Step(9 * time.Second)
		select {
		case es := <-done:
			t.Fatalf("stopped before the timeout: %+v", es)
		case <-time.After(20 * time.Millisecond):
		}
		clk.Step(time.Second)
		if es := <-done; es.Code != ExitSIGKILL || !es.ExitedAt.Equal(t0.Add(10*time.Second)) {
			t.Errorf("Stop = %+v", es)
		}
		if diff := cmp.Diff([]string{SIGTERM, SIGKILL}, r.Signals("c1")); diff != "" {
			t.Errorf("signals (-want +got):\n%s", diff)
		}
	})
}

func TestExec(t *testing.T) {
	r, clk := created(t)
	ctx := context.Background()
	if _, _, err := r.Exec(ctx, "c1", []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exec in a created container: %v", err)
	}
	if _, err := r.Start(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	r.ScriptExec("c1", ExecResult{Code: 1, Output: "not yet"}, ExecResult{Hang: true}, ExecResult{Code: 0})
	code, out, err := r.Exec(ctx, "c1", []string{"check"}, time.Second)
	if code != 1 || string(out) != "not yet" || err != nil {
		t.Errorf("first exec = %d %q %v", code, out, err)
	}
	errc := make(chan error)
	go func() {
		_, _, err := r.Exec(ctx, "c1", []string{"check"}, 2*time.Second)
		errc <- err
	}()
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(2 * time.Second)
	if err := <-errc; !errors.Is(err, runtime.ErrExecTimeout) {
		t.Errorf("hanging exec: %v, want ErrExecTimeout", err)
	}
	for i := 0; i < 2; i++ {
		if code, _, err := r.Exec(ctx, "c1", []string{"check"}, time.Second); code != 0 || err != nil {
			t.Errorf("exec %d = %d %v, want the last result repeated", i+3, code, err)
		}
	}
	if n := r.Count("Exec", "c1"); n != 5 {
		t.Errorf("%d execs recorded, want 5", n)
	}
}

func TestBreakEvents(t *testing.T) {
	r, _ := created(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, errs := r.Events(ctx)
	r.BreakEvents(errors.New("connection reset"))
	if err := <-errs; err == nil || err.Error() != "connection reset" {
		t.Errorf("errs = %v", err)
	}
	if _, ok := <-events; ok {
		t.Errorf("events still open")
	}
	if n := r.Subscribers(); n != 0 {
		t.Errorf("%d subscribers", n)
	}
}

func TestHoldPulls(t *testing.T) {
	r := New()
	release := r.HoldPulls("app:1")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := r.Pull(ctx, "app:1", runtime.PullDefault, nil)
		errc <- err
	}()
	cancel()
	if err := <-errc; err == nil {
		t.Errorf("a held pull ignored its context")
	}
	release()
	if _, err := r.Pull(context.Background(), "app:1", runtime.PullDefault, nil); err != nil {
		t.Errorf("released pull: %v", err)
	}
}

// TestPullByDigest: an image pulled by digest reports that digest, as from a
// registry (a deployment's pinned image, versionConsistency).
func TestPullByDigest(t *testing.T) {
	r := New()
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	img, err := r.Pull(context.Background(), "registry.example/app@"+dg, runtime.PullDefault, nil)
	if err != nil || img.Digest != dg {
		t.Fatalf("Pull by digest = %+v, %v; want digest %s", img, err, dg)
	}
}
