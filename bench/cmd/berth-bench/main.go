// Command bench runs Berth's benchmark suite (`make bench`, `make bench-quick`)
// against a local kube-apiserver + etcd and, as root, a real containerd, and writes
// bench/results/latest.json (scheduler_perf-style dataItems) and latest.md.
//
//	go run ./bench/cmd/berth-bench --size 0.1 --only PlacementThroughput --profile
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/bench"
)

func main() {
	o := bench.Options{Progress: os.Stderr}
	var only string
	flag.Float64Var(&o.Size, "size", 1.0, "Scale of every benchmark: 1.0 is the full suite, 0.1 the quick run, 0.01 a smoke test.")
	flag.StringVar(&only, "only", "", "Comma-separated metrics to measure (default all): "+strings.Join(bench.Metrics, ","))
	flag.StringVar(&o.Out, "out", "bench/results", "Directory of the results (latest.json, latest.md, dated copies, profiles/).")
	flag.BoolVar(&o.Profile, "profile", false, "Write CPU profiles of the manager (this process) and the apiserver into <out>/profiles.")
	flag.IntVar(&o.ProfileSeconds, "profile-seconds", 20, "Length of the apiserver's CPU profile, from the start of each measurement.")
	flag.StringVar(&o.Berth, "berth", "", "berth binary for hollow agents, agents and berth api (default: built from this repository).")
	flag.BoolVar(&o.KeepWorkDir, "keep-logs", false, "Keep the logs of the manager and the child processes.")
	flag.Float64Var(&o.Manager.QPS, "manager-qps", 0, "Experiment: the manager's --kube-api-qps instead of its default.")
	flag.IntVar(&o.Manager.Burst, "manager-burst", 0, "Experiment: the manager's --kube-api-burst instead of its default.")
	flag.IntVar(&o.Manager.SchedulerWorkers, "scheduler-workers", 0, "Experiment: the manager's --scheduler-workers instead of its default.")
	flag.IntVar(&o.Manager.ServiceWorkers, "service-workers", 0, "Experiment: the manager's --service-workers instead of its default.")
	flag.IntVar(&o.Manager.WritesPerPass, "service-max-writes-per-pass", 0, "Experiment: the manager's --service-max-writes-per-pass instead of its default (500); 1000000 is unbounded.")
	flag.DurationVar(&o.HollowStatusInterval, "hollow-status-interval", 0, "Experiment: the hollow instances' --status-interval instead of the agent's default.")
	flag.Parse()
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	// The manager logs to a file of the run; this only silences controller-runtime's
	// warning about a logger never set.
	ctrl.SetLogger(logr.Discard())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
