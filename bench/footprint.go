package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/berthdev/berth/test/testobj"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// memSample is the memory of the agent and containerd at one moment, in KiB.
type memSample struct {
	agentRSS, agentPSS, ctrdRSS, ctrdPSS, memAvailable int64
}

func sampleMemory(agentPID, ctrdPID int) (memSample, error) {
	var s memSample
	var err error
	for _, f := range []struct {
		dst  *int64
		read func() (int64, error)
	}{
		{&s.agentRSS, func() (int64, error) { return statusKiB(agentPID, "VmRSS") }},
		{&s.agentPSS, func() (int64, error) { return pssKiB(agentPID) }},
		{&s.ctrdRSS, func() (int64, error) { return statusKiB(ctrdPID, "VmRSS") }},
		{&s.ctrdPSS, func() (int64, error) { return pssKiB(ctrdPID) }},
		{&s.memAvailable, func() (int64, error) { return meminfoKiB("MemAvailable") }},
	} {
		if *f.dst, err = f.read(); err != nil {
			return s, err
		}
	}
	return s, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// footprint measures AgentFootprint: the real agent process (production flags and
// log level) idle, then running 100 tasks of one Service: its RSS, its CPU seconds
// per minute in steady state, and the host memory each running task adds. Baselines:
// containerd's own RSS and CPU at the same moments, and the memory per container of
// `ctr run`.
func (cl *ctrLab) footprint(ctx context.Context, r *runner, base *ctrBaseline, out *outcome) error {
	const cluster, family = "footprint", "fp"
	ctrdPID, err := cl.containerdPID()
	if err != nil {
		return err
	}
	agent, _, err := cl.startAgent(ctx, agentConfig{name: "fp", cluster: cluster})
	if err != nil {
		return err
	}
	if err := cl.setupCluster(ctx, cluster, smallTaskDefinition(benchNamespace, family, cl.image)); err != nil {
		return err
	}
	settle := r.size.d(10*time.Second, time.Second)
	time.Sleep(settle)
	idle, err := sampleMemory(agent.pid(), ctrdPID)
	if err != nil {
		return err
	}

	n := r.size.n(100, 3)
	if err := cl.c.Create(ctx, testobj.Service(benchNamespace, family, family, int32(n)).Cluster(cluster).Obj()); err != nil {
		return err
	}
	start := time.Now()
	if _, err := cl.waitService(ctx, family, 2*time.Minute+time.Duration(n)*2*time.Second, func(s *ecsv1alpha1.Service) bool {
		return s.Status.RunningCount == int32(n)
	}); err != nil {
		return err
	}
	r.logf("containerd: footprint service running %d tasks after %s", n, time.Since(start).Round(100*time.Millisecond))
	time.Sleep(settle)
	busy, err := sampleMemory(agent.pid(), ctrdPID)
	if err != nil {
		return err
	}
	shims, shimKiB, err := shimMemory(cl.ctr.Address, "berth-fp")
	if err != nil {
		return err
	}
	if shims != n {
		return fmt.Errorf("found %d shims for %d running tasks", shims, n)
	}

	// 30 s is three Lease renewals and status writes: the steady state's whole
	// cycle, scaled to a minute below.
	window := r.size.d(30*time.Second, 2*time.Second)
	meter := newCPUMeter(map[string]int{"agent": agent.pid(), "containerd": ctrdPID})
	time.Sleep(window)
	cpu := meter.cores() // cores = CPU seconds per second
	perMinute := func(name string) float64 { return cpu[name] * 60 }

	perTask := float64(shimKiB+busy.agentPSS-idle.agentPSS+busy.ctrdPSS-idle.ctrdPSS) / 1024 / float64(n)
	out.figures = append(out.figures,
		Figure{Metric: AgentFootprint, Name: "IdleRSS", Unit: "MiB",
			Values:   map[string]float64{"Value": mib(idle.agentRSS)},
			Baseline: Baseline{What: "containerd's RSS at the same moment", Unit: "MiB", Values: map[string]float64{"Value": mib(idle.ctrdRSS)}},
			Note:     fmt.Sprintf("VmRSS of the `berth agent` process, registered and connected, no task, %s after start.", settle)},
		Figure{Metric: AgentFootprint, Name: "RSSWithTasks", Unit: "MiB",
			Values:   map[string]float64{"Value": mib(busy.agentRSS)},
			Baseline: Baseline{What: "containerd's RSS at the same moment", Unit: "MiB", Values: map[string]float64{"Value": mib(busy.ctrdRSS)}},
			Note:     fmt.Sprintf("VmRSS of the agent with %d running tasks of one Service, %s after they all ran.", n, settle)},
		Figure{Metric: AgentFootprint, Name: "CPUSecondsPerMinute", Unit: "CPU-s/min",
			Values:   map[string]float64{"Value": perMinute("agent")},
			Baseline: Baseline{What: "containerd's CPU over the same window", Unit: "CPU-s/min", Values: map[string]float64{"Value": perMinute("containerd")}},
			Note:     fmt.Sprintf("user+system CPU of the agent over %s of steady state with %d running tasks (lease every 10 s, status and metrics).", window, n)},
		Figure{Metric: AgentFootprint, Name: "HostMemoryPerTask", Unit: "MiB",
			Values: map[string]float64{"Value": perTask,
				"MemAvailableDrop": mib(idle.memAvailable-busy.memAvailable) / float64(n)},
			Baseline: Baseline{What: fmt.Sprintf("the same measure for %d `ctr run` containers", len(base.latencies)), Unit: "MiB",
				Values: map[string]float64{"Value": base.perContainerMiB}},
			Note: "PSS of each task's shim and container process, plus the growth of the agent's and containerd's PSS, per task. MemAvailableDrop is the host's MemAvailable drop per task (kernel memory included; noisy on a shared machine)."},
	)
	return nil
}
