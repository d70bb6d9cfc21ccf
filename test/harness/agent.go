package harness

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/agent/network"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
)

// AgentOptions are `berth agent`'s production defaults with what a test changes: the
// instance name and cluster, the test's containerd (in namespace), a state directory
// of its own under containerd's, 1 s lease and status intervals, no memory kept
// back for the machine, and a free port for the streaming server.
func AgentOptions(env *testenv.Env, ctr *ctrtest.Containerd, cluster, name, namespace string) agent.Options {
	o := agent.DefaultOptions()
	o.Kubeconfig, o.Cluster, o.Name = env.Kubeconfig, cluster, name
	o.ContainerdAddress, o.Namespace = ctr.Address, namespace
	o.Snapshotter, o.RegistryConfigDir, o.RuncRoot = ctr.Snapshotter, ctr.HostsDir, ctr.RuncRoot
	o.StateDir = filepath.Join(ctr.Dir, "agent-"+name)
	o.LeaseInterval, o.StatusInterval = time.Second, time.Second
	o.ReservedMemoryMiB = 0
	// A port of its own: tests run several agents at once.
	o.StreamingAddress = "127.0.0.1:0"
	return o
}

// StartAgent runs the agent with options o in this process until the returned stop
// is called or the test ends. Its containers keep running when it stops, as
// `berth agent`'s do.
func StartAgent(t testing.TB, o agent.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent %s: %v", o.Name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TearDownNetworks removes the task networks an agent with options o left (a failed
// test's running tasks), once it stopped, so that no namespace, iptables rule or
// published host port outlives the test.
func TearDownNetworks(t testing.TB, o agent.Options) {
	t.Helper()
	m, err := network.New(network.Config{StateDir: o.StateDir, Bridge: o.Bridge, Subnet: o.BridgeSubnet})
	if err != nil {
		t.Errorf("tearing down the task networks: %v", err)
		return
	}
	defer func() { _ = m.Close() }()
	uids, err := m.Recover(context.Background())
	if err != nil {
		t.Errorf("tearing down the task networks: %v", err)
	}
	for _, uid := range uids {
		if err := m.Teardown(context.Background(), uid); err != nil {
			t.Errorf("tearing down the network of task %s: %v", uid, err)
		}
	}
}

// StartHollow runs `berth hollow` (the real agent over in-memory runtimes) with the
// suites' fast timings, where cfg leaves them zero, until the test ends.
func StartHollow(t testing.TB, env *testenv.Env, cfg hollow.Config) *hollow.Agent {
	t.Helper()
	if cfg.RunningDelay == 0 {
		cfg.RunningDelay = 50 * time.Millisecond
	}
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = 500 * time.Millisecond
	}
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = time.Second
	}
	a, err := hollow.New(cfg, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("hollow agent: %v", err)
		}
	})
	return a
}
