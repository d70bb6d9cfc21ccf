package ctrtest_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
)

func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containerd")
	}
	testenv.Require(t, ctrtest.SkipReason())
	c, err := ctrtest.Launch()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	v, err := cl.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd %s at %s, snapshotter %s", v.Version, c.Address, c.Snapshotter)
	_ = cl.Close()
	if len(c.Address) >= 100 {
		t.Errorf("socket path %q is too long for a unix socket", c.Address)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", c.Dir, err)
	}
	if m, _ := ctrtest.MountsUnder(c.Dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestRestartKeepsState: a restart (here a crash) keeps containerd's state.
func TestRestartKeepsState(t *testing.T) {
	c := ctrtest.Start(t)
	ctx := namespaces.WithNamespace(context.Background(), "restart-test")
	cl, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.NewContainer(ctx, "kept", containerd.WithNewSpec()); err != nil {
		t.Fatal(err)
	}
	_ = cl.Close()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := c.Restart(sig); err != nil {
			t.Fatalf("restart with %s: %v", sig, err)
		}
		cl, err := c.Client()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.LoadContainer(ctx, "kept"); err != nil {
			t.Errorf("after a restart with %s: %v", sig, err)
		}
		_ = cl.Close()
	}
}
