package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// pairedCalls measures two ways of doing the same work, one call of each per
// iteration, in turn: the first of a pair alternates, so that neither way always
// runs right after the other (and pays for the work it left behind: a task's
// placement follows its creation), and the machine's noise falls on both alike.
// Around each call it reads the CPU time of the server processes the call goes
// through, so each way's server-side CPU per call can be compared too.
type pairedCalls struct {
	value, ref callStats
}

// callStats is what the calls of one way cost.
type callStats struct {
	// servers are the processes each call is charged with, by name.
	servers   map[string]int
	latencies []time.Duration
	// cpu is the CPU seconds of each server process over the calls.
	cpu map[string]float64
}

func newCallStats(servers map[string]int, n int) callStats {
	return callStats{servers: servers, latencies: make([]time.Duration, 0, n), cpu: map[string]float64{}}
}

// newPairedCalls prepares n pairs of calls, each way charged with the CPU of its own
// servers.
func newPairedCalls(valueServers, refServers map[string]int, n int) *pairedCalls {
	return &pairedCalls{value: newCallStats(valueServers, n), ref: newCallStats(refServers, n)}
}

// run makes n pairs of calls: value (the way measured) and ref (its baseline).
func (p *pairedCalls) run(ctx context.Context, n int, value, ref func(ctx context.Context) error) error {
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		first := func(ctx context.Context) error { return p.value.measure(ctx, value) }
		second := func(ctx context.Context) error { return p.ref.measure(ctx, ref) }
		if i%2 == 1 {
			first, second = second, first
		}
		if err := first(ctx); err != nil {
			return err
		}
		if err := second(ctx); err != nil {
			return err
		}
	}
	return nil
}

// measure times one call and charges it with the CPU the servers used meanwhile.
func (s *callStats) measure(ctx context.Context, call func(context.Context) error) error {
	before, err := s.serverCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	err = call(ctx)
	took := time.Since(start)
	if err != nil {
		return err
	}
	after, err := s.serverCPU()
	if err != nil {
		return err
	}
	s.latencies = append(s.latencies, took)
	for name, v := range after {
		s.cpu[name] += v - before[name]
	}
	return nil
}

func (s *callStats) serverCPU() (map[string]float64, error) {
	out := make(map[string]float64, len(s.servers))
	for name, pid := range s.servers {
		v, err := cpuSeconds(pid)
		if err != nil {
			return nil, fmt.Errorf("CPU time of %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// latencyFigure compares the two ways' latencies (average, percentiles, max).
func (p *pairedCalls) latencyFigure(metric, what, note string) Figure {
	return Figure{Metric: metric, Name: "Latency", Unit: "ms",
		Values:   Summary(Millis(p.value.latencies)),
		Baseline: Baseline{What: what, Unit: "ms", Values: Summary(Millis(p.ref.latencies))},
		Note:     note}
}

// cpuFigure compares the server-side CPU per call: Value is the sum over the
// servers, and each server's share is a key of its own (so the ratio of the
// apiserver's key says how much more the apiserver itself works for one way).
func (p *pairedCalls) cpuFigure(metric, what, note string) Figure {
	return Figure{Metric: metric, Name: "ServerCPUPerCall", Unit: "CPU-ms",
		Values:   p.value.cpuPerCall(),
		Baseline: Baseline{What: what, Unit: "CPU-ms", Values: p.ref.cpuPerCall()},
		Note:     note}
}

// cpuPerCall is the mean CPU milliseconds per call of each server, keyed by name,
// and their sum as Value.
func (s *callStats) cpuPerCall() map[string]float64 {
	out := map[string]float64{}
	if len(s.latencies) == 0 {
		return out
	}
	var sum float64
	for _, name := range slices.Sorted(maps.Keys(s.cpu)) {
		ms := s.cpu[name] * 1000 / float64(len(s.latencies))
		out[metricKey(name)] = ms
		sum += ms
	}
	out["Value"] = sum
	return out
}

// metricKey turns a process name into a key of a figure's values: "berth api" is
// BerthAPI, "kube-apiserver" KubeAPIServer.
func metricKey(process string) string {
	switch process {
	case "berth api":
		return "BerthAPI"
	case "kube-apiserver":
		return "KubeAPIServer"
	case "etcd":
		return "Etcd"
	}
	return process
}
