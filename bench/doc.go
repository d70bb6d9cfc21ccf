// Package bench is Berth's benchmark suite (`make bench`, `make bench-quick`, and
// bench/cmd/berth-bench): scenarios against a real kube-apiserver and etcd (and, as root, a real
// containerd), a results model in the Kubernetes scheduler_perf format (dataItems
// with data, unit and labels), JSON and Markdown writers, percentile and throughput
// helpers, and readers of the apiserver's metrics and of /proc.
//
// How it measures:
//
//   - Each scenario gets a fresh apiserver and etcd (testenv.Start, about 3 to 5 s):
//     cheaper than deleting the tens of thousands of tasks a scenario leaves, and no
//     scenario runs against the leftovers of another.
//   - The manager runs in this process with internal/manager's production defaults,
//     so that a change of a default shows in the figures, and its goroutines carry
//     the pprof label component=manager. Hollow agents, real agents and `berth api`
//     run as child processes of the berth binary, so that their CPU and memory are
//     their own.
//   - The harness's client has no rate limit, and the load it generates (creates) runs
//     64 requests at a time; results are observed through watches.
//   - Every figure has a baseline measured in the same run (raw ConfigMap creates, `ctr
//     run`, containerd's own footprint, the apiserver's, the ECS API's reads and writes
//     made with client-go): the machine is shared and noisy, the ratios much less so.
//   - Context items record where the CPU went during each measurement (cores per
//     process) and mean latencies (the manager's client-side rate limiter, the
//     apiserver's task and Lease writes), which is how each figure's bottleneck is
//     named; --profile adds CPU profiles of the manager and the apiserver.
package bench
