package containerd_test

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"

	"github.com/berthdev/berth/agent/runtime/containerd"
)

// TestNewReleasesLeasesOfAKilledAgent: an agent killed in the middle of a pull
// leaves the runtime's lease, which holds what the pull wrote (here an active
// snapshot, as an interrupted unpack leaves) for a day. A new runtime deletes it and
// containerd collects the snapshot at once; other clients' leases are left alone.
func TestNewReleasesLeasesOfAKilledAgent(t *testing.T) {
	e := newEnv(t)
	c, ctx := e.client()
	ls, sn := c.LeasesService(), c.SnapshotService(daemon.Snapshotter)
	hold := func(name string, opts ...leases.Opt) leases.Lease {
		t.Helper()
		l, err := ls.Create(ctx, append(opts, leases.WithRandomID(), leases.WithExpiration(time.Hour))...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Prepare(leases.WithLease(ctx, l.ID), name, ""); err != nil {
			t.Fatal(err)
		}
		return l
	}
	hold("extract-killed-pull", leases.WithLabel(containerd.LeaseLabel, "true"))
	other := hold("someone-elses")
	t.Cleanup(func() { _ = ls.Delete(context.WithoutCancel(ctx), other, leases.SynchronousDelete) })

	rt, err := containerd.New(e.ctx, containerd.Options{Address: daemon.Address, Namespace: e.ns,
		Snapshotter: daemon.Snapshotter, HostsDir: daemon.HostsDir, FIFODir: daemon.FIFODir, RuncRoot: daemon.RuncRoot})
	if err != nil {
		t.Fatal(err)
	}
	_ = rt.Close()

	left, err := ls.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != other.ID {
		t.Errorf("leases after New: %v, want only the other client's %s", left, other.ID)
	}
	var active []string
	if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			active = append(active, info.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0] != "someone-elses" {
		t.Errorf("active snapshots after New: %v, want only someone-elses", active)
	}
}
