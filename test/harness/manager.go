// Package harness starts Berth's own components inside a test process, the way
// production builds them: the manager through internal/manager.Build (the same cache
// limits, indexes and controllers as `berth manager`), and the agent through
// agent.Run with `berth agent`'s defaults. It is the one start-up helper of every
// suite that runs the whole manager or an agent in process (test/controlplane,
// test/e2e, test/conformance, test/faults). It imports the controllers, so the controllers' own package tests
// use test/testenv instead.
package harness

import (
	"context"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"

	"github.com/berthdev/berth/controllers"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/test/testenv"
)

// ManagerOptions are the manager settings tests choose; zero values take the
// production defaults (controllers.Options' own).
type ManagerOptions struct {
	// HeartbeatGrace is short in tests that lose instances on purpose.
	HeartbeatGrace time.Duration
	// SchedulerWorkers and ServiceWorkers bound the parallel reconciles; tests keep
	// them low on 2 cores.
	SchedulerWorkers, ServiceWorkers int
	// UtilizationInterval is short in tests that watch utilization figures.
	UtilizationInterval time.Duration
	// AutoScalingStaleAfter and AutoScalingInterval are short (seconds) in tests
	// that auto scale services.
	AutoScalingStaleAfter, AutoScalingInterval time.Duration
}

// StartManager runs the whole Berth manager against env until the returned stop is
// called or the test ends, and waits until its cache has synced. Metrics and probes
// are off and leader election is not used, so a test may run two managers at once
// (as two replicas without a lease would).
func StartManager(t testing.TB, env *testenv.Env, o ManagerOptions) (stop func()) {
	t.Helper()
	mo := manager.DefaultOptions()
	mo.MetricsBindAddress, mo.HealthProbeBindAddress, mo.LeaderElection = "0", "0", false
	mo.Controllers = controllers.Options{HeartbeatGrace: o.HeartbeatGrace, SchedulerWorkers: o.SchedulerWorkers, ServiceWorkers: o.ServiceWorkers,
		UtilizationInterval: o.UtilizationInterval, AutoScalingStaleAfter: o.AutoScalingStaleAfter, AutoScalingInterval: o.AutoScalingInterval}
	if mo.Controllers.HeartbeatGrace == 0 {
		mo.Controllers.HeartbeatGrace = manager.DefaultOptions().Controllers.HeartbeatGrace
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	mgr, err := manager.Build(ctx, env.Config, mo, func(co *ctrl.Options) {
		skip := true // several managers in one test process register the same controllers
		co.Controller = config.Controller{SkipNameValidation: &skip}
		co.Logger = testenv.TestLogger(t) // the controllers' logs, with BERTH_TEST_LOGS=1
	})
	if err != nil {
		cancel()
		t.Fatalf("building the manager: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache never synced")
	}
	return stop
}
