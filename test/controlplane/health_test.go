package controlplane

import (
	"testing"
	"time"

	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/test/scenario"
)

// TestHealthRulesUnderHollow runs the task-health scenarios that test/e2e runs on the
// real agent and containerd, against the agent's engine in `berth hollow`.
func TestHealthRulesUnderHollow(t *testing.T) {
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	startHollow(t, hollow.Config{Cluster: cluster, Instances: 2, NamePrefix: ns})
	e := scenario.Env{Client: env.Client, Namespace: ns, Cluster: cluster, Image: "registry.local/demo:1",
		Check: []string{"/demo", "healthcheck"}, Timeout: 60 * time.Second}
	t.Run("only a sidecar has a health check", func(t *testing.T) { scenario.SidecarOnlyHealthCheck(t, e) })
	t.Run("healthCheck NONE is a ready endpoint", func(t *testing.T) { scenario.NoneHealthCheckIsReady(t, e) })
}
