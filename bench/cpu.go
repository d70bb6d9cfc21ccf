package bench

import (
	"context"
	"fmt"
	"os"
	"time"
)

// serverCPU is the CPU seconds the processes of a lab used over an interval of wall
// seconds: the kube-apiserver, etcd and this process (the harness, and the manager
// when it runs).
type serverCPU struct {
	apiserver, etcd, self float64
	wall                  float64
}

// cpuOf reads a meter: the apiserver and etcd by name, this process by pid (its name
// says whether the manager runs in it).
func cpuOf(m *cpuMeter) serverCPU {
	secs, wall := m.seconds()
	c := serverCPU{wall: wall}
	for name, pid := range m.pids {
		switch {
		case pid == os.Getpid():
			c.self = secs[name]
		case name == "kube-apiserver":
			c.apiserver = secs[name]
		case name == "etcd":
			c.etcd = secs[name]
		}
	}
	return c
}

// perThousand is seconds per 1,000 of n.
func perThousand(seconds float64, n int) float64 { return seconds / float64(n) * 1000 }

// idleCPU measures the CPU the apiserver and etcd use when nothing but the
// background of a scenario runs (the hollow instances' heartbeats and reports), over
// d, so that the CPU a measurement spends on its tasks can be told from it.
func (l *lab) idleCPU(ctx context.Context, d time.Duration) (serverCPU, error) {
	m := newCPUMeter(l.processes(nil))
	select {
	case <-ctx.Done():
		return serverCPU{}, ctx.Err()
	case <-time.After(d):
	}
	return cpuOf(m), nil
}

// cpuFigures are the CPU figures of a measurement that handled tasks tasks: the
// apiserver's and etcd's CPU seconds per 1,000 tasks against their CPU per 1,000 raw
// Task creates of the baseline, and the manager's.
//
// The manager runs in this process with the harness, so its CPU is this process's
// CPU less what the harness spent per Task create in the baseline (the same creates,
// the same parallelism) times the tasks it created in the measurement; the
// harness's watch of the tasks stays in it, so the estimate is a little high. `go
// tool pprof -tagfocus component=manager` of a --profile run splits it exactly.
//
// The apiserver's and etcd's "less idle" values take away the CPU they used in an
// idle window with the same instances connected (their heartbeats), scaled to the
// measurement's length; the baseline ran before any instance existed, so its
// "less idle" values are its plain ones.
func cpuFigures(metric string, used, idle serverCPU, tasks, created int, base taskBaseline, what string) []Figure {
	bc, bn := base.cpu, base.n
	lessIdle := func(v, idleRate float64) float64 { return max(0, v-idleRate*used.wall) }
	var idleAPI, idleEtcd float64
	if idle.wall > 0 {
		idleAPI, idleEtcd = idle.apiserver/idle.wall, idle.etcd/idle.wall
	}
	harnessPerCreate := bc.self / float64(bn)
	manager := used.self - harnessPerCreate*float64(created)
	baseWhat := fmt.Sprintf("%d raw Task creates (%d in flight) on the same apiserver before Berth started", bn, createWorkers)
	return []Figure{
		{
			Metric: metric, Name: "ApiserverCPUPer1000Tasks", Unit: "CPU s/1000 tasks",
			Values: map[string]float64{
				"Value":            perThousand(used.apiserver, tasks),
				"less idle":        perThousand(lessIdle(used.apiserver, idleAPI), tasks),
				"etcd":             perThousand(used.etcd, tasks),
				"etcd less idle":   perThousand(lessIdle(used.etcd, idleEtcd), tasks),
				"apiserver+etcd":   perThousand(used.apiserver+used.etcd, tasks),
				"idle (CPU s/min)": idleAPI * 60,
			},
			Baseline: Baseline{
				What: baseWhat, Unit: "CPU s/1000 creates",
				Values: map[string]float64{
					"Value":          perThousand(bc.apiserver, bn),
					"less idle":      perThousand(bc.apiserver, bn),
					"etcd":           perThousand(bc.etcd, bn),
					"etcd less idle": perThousand(bc.etcd, bn),
					"apiserver+etcd": perThousand(bc.apiserver+bc.etcd, bn),
				},
			},
			Note: fmt.Sprintf("kube-apiserver CPU seconds (Value) and etcd's per 1,000 tasks %s, over the whole measurement (%.1f s), agents' status reports and heartbeats included; \"less idle\" takes away their CPU in an idle window of %.1f s with the same instances connected. The ratio says how many raw Task creates' worth of apiserver work a task costs.",
				what, used.wall, idle.wall),
		},
		{
			Metric: metric, Name: "ManagerCPUPer1000Tasks", Unit: "CPU s/1000 tasks",
			Values: map[string]float64{
				"Value":           perThousand(max(manager, 0), tasks),
				"manager+harness": perThousand(used.self, tasks),
			},
			Baseline: Baseline{
				What: baseWhat + ": the kube-apiserver's CPU for them (harness: this process's)", Unit: "CPU s/1000 creates",
				Values: map[string]float64{
					"Value":   perThousand(bc.apiserver, bn),
					"harness": perThousand(bc.self, bn),
				},
			},
			Note: fmt.Sprintf("CPU seconds of the manager per 1,000 tasks %s: this process's CPU (manager+harness) less the harness's CPU per Task create in the baseline times the %d tasks it created (its watch of the tasks stays in, so the estimate is a little high; a --profile run's `-tagfocus component=manager` splits it exactly). The ratio compares the manager with the apiserver's CPU for a raw create of the same tasks.",
				what, created),
		},
	}
}
