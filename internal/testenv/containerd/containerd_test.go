package ctrtest_test

import (
	"context"
	"os"
	"testing"

	ctrtest "github.com/berthdev/berth/internal/testenv/containerd"
)

func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containerd")
	}
	if reason := ctrtest.SkipReason(); reason != "" {
		t.Skip(reason)
	}
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
