package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/test/testenv"
)

// lab is the control plane of one scenario: a fresh kube-apiserver and etcd (a new
// one per scenario costs about 5 s and leaves no objects of an earlier scenario
// behind, which deleting 10,000 tasks would take longer than), a client for the
// harness, the manager in this process, and the child processes the scenario
// started. close undoes everything in reverse order.
type lab struct {
	run  *runner
	name string
	env  *testenv.Env
	// c is the harness's own client: no client-side rate limit, so that the load it
	// generates is limited by the apiserver only.
	c   client.WithWatch
	cfg *rest.Config

	apiserverPID, etcdPID int
	managerRunning        bool
	closers               []func() error
}

func newLab(ctx context.Context, r *runner, name string) (*lab, error) {
	start := time.Now()
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	l := &lab{run: r, name: name, env: env}
	l.closers = append(l.closers, env.Stop)
	l.cfg = rest.CopyConfig(env.Config)
	l.cfg.QPS, l.cfg.Burst = -1, 0 // client-go: a negative QPS disables rate limiting
	l.cfg.UserAgent = "berth-bench"
	if l.c, err = client.NewWithWatch(l.cfg, client.Options{Scheme: env.Scheme}); err != nil {
		return nil, errors.Join(err, l.close())
	}
	if err := l.findServerProcesses(); err != nil {
		return nil, errors.Join(err, l.close())
	}
	if err := l.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		return nil, errors.Join(err, l.close())
	}
	r.logf("%s: apiserver and etcd up in %s", name, time.Since(start).Round(100*time.Millisecond))
	return l, nil
}

// benchNamespace holds every namespaced object of a scenario; each scenario has its
// own apiserver.
const benchNamespace = "bench"

// findServerProcesses finds the pids of this lab's kube-apiserver (by its port) and
// etcd (by the URL the apiserver uses), to read their CPU and memory.
func (l *lab) findServerProcesses() error {
	u, err := url.Parse(l.env.Config.Host)
	if err != nil {
		return err
	}
	if l.apiserverPID, err = findProcess("kube-apiserver", "secure-port="+u.Port()); err != nil {
		return err
	}
	for _, a := range cmdline(l.apiserverPID) {
		if v, ok := strings.CutPrefix(a, "--etcd-servers="); ok {
			etcd, err := url.Parse(strings.Split(v, ",")[0])
			if err != nil {
				return err
			}
			l.etcdPID, err = findProcess("etcd", "127.0.0.1:"+etcd.Port())
			return err
		}
	}
	return errors.New("kube-apiserver has no --etcd-servers flag")
}

func (l *lab) onClose(f func() error) { l.closers = append(l.closers, f) }

func (l *lab) close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		if err := l.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	l.closers = nil
	return errors.Join(errs...)
}

// managerOptions are internal/manager's production defaults, with the overrides of
// an A/B experiment (--manager-qps and friends), if any.
func (r *runner) managerOptions() manager.Options {
	o := manager.DefaultOptions()
	ov := r.o.Manager
	if ov.QPS > 0 {
		o.QPS = ov.QPS
	}
	if ov.Burst > 0 {
		o.Burst = ov.Burst
	}
	if ov.SchedulerWorkers > 0 {
		o.Controllers.SchedulerWorkers = ov.SchedulerWorkers
	}
	if ov.ServiceWorkers > 0 {
		o.Controllers.ServiceWorkers = ov.ServiceWorkers
	}
	if ov.WritesPerPass > 0 {
		o.Controllers.ServiceMaxWritesPerPass = ov.WritesPerPass
	}
	return o
}

// startManager runs the manager in this process, as manager.New assembles it: the
// client rate limits, cache options and controller options of internal/manager's
// defaults, so that a change of a default shows in the figures. It is not
// manager.New itself only because controller-runtime refuses a second controller of
// the same name in one process unless SkipNameValidation is set, and each scenario
// starts a manager of its own. Its goroutines carry the pprof label
// component=manager, so `go tool pprof -tagfocus component=manager` separates them
// from the harness's in a profile. A scenario that needs another setting than the
// defaults (a shorter --utilization-interval) changes it in adjust, and says so.
func (l *lab) startManager(ctx context.Context, adjust ...func(*manager.Options)) error {
	_, err := l.startStoppableManager(ctx, adjust...)
	return err
}

// startStoppableManager is startManager, also returning a function that stops the
// manager before the lab closes.
func (l *lab) startStoppableManager(ctx context.Context, adjust ...func(*manager.Options)) (stop func() error, err error) {
	o := l.run.managerOptions()
	for _, f := range adjust {
		f(&o)
	}
	cfg, err := kube.RESTConfig(l.env.Kubeconfig, o.QPS, o.Burst)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "berth-manager"
	o.MetricsBindAddress, o.HealthProbeBindAddress, o.LeaderElection = "0", "0", false
	mctx, cancel := context.WithCancel(ctrl.LoggerInto(ctx, l.run.log.WithName(l.name)))
	// Built as `berth manager` builds itself; each scenario starts a manager of its own.
	mgr, err := manager.Build(mctx, cfg, o, func(co *ctrl.Options) {
		skip := true
		co.Logger = l.run.log.WithName(l.name)
		co.Controller = config.Controller{SkipNameValidation: &skip}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go pprof.Do(mctx, pprof.Labels("component", "manager"), func(ctx context.Context) { done <- mgr.Start(ctx) })
	var once sync.Once
	var stopErr error
	l.managerRunning = true
	stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			l.managerRunning = false
		})
		return stopErr
	}
	l.onClose(stop)
	if !mgr.GetCache().WaitForCacheSync(mctx) {
		return nil, errors.New("the manager's cache never synced")
	}
	return stop, nil
}

// hollowConfig is a `berth hollow` process's command line.
type hollowConfig struct {
	cluster, prefix string
	instances       int
	extra           []string
}

// startHollow runs `berth hollow` as a child process, so that its CPU and memory are
// its own (and so is the manager's CPU profile).
func (l *lab) startHollow(h hollowConfig) (*child, error) {
	args := []string{l.run.berth, "hollow", "--kubeconfig", l.env.Kubeconfig, "--cluster", h.cluster,
		"--instances", strconv.Itoa(h.instances), "--name-prefix", h.prefix, "--running-delay", "100ms"}
	if d := l.run.o.HollowStatusInterval; d > 0 {
		args = append(args, "--status-interval", d.String())
	}
	c, err := startChild("berth hollow", l.run.workFile(l.name+"-hollow.log"), append(args, h.extra...)...)
	if err != nil {
		return nil, err
	}
	l.onClose(func() error { return c.stop(30 * time.Second) })
	return c, nil
}

// waitInstances waits until n instances of cluster are ACTIVE and connected (the
// manager has seen their Leases).
func (l *lab) waitInstances(ctx context.Context, cluster string, n int, timeout time.Duration, procs ...*child) error {
	start := time.Now()
	err := l.poll(ctx, timeout, 200*time.Millisecond, fmt.Sprintf("%d connected instances in %s", n, cluster), func() (bool, string, error) {
		for _, p := range procs {
			if err := p.exited(); err != nil {
				return false, "", err
			}
		}
		var list ecsv1alpha1.ContainerInstanceList
		// From the watch cache: this poll must not load the apiserver it measures.
		if err := l.c.List(ctx, &list, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
			return false, "", err
		}
		ready := 0
		for _, ci := range list.Items {
			if ci.Spec.Cluster == cluster && ci.Status.AgentConnected && ci.Status.Status == ecsv1alpha1.InstanceActive {
				ready++
			}
		}
		return ready >= n, fmt.Sprintf("%d of %d connected", ready, n), nil
	})
	if err == nil {
		l.run.logf("%s: %d instances connected in %s", l.name, n, time.Since(start).Round(100*time.Millisecond))
	}
	return err
}

// poll calls cond every interval until it reports done, fails, or timeout passes;
// the timeout error carries cond's last progress message.
func (l *lab) poll(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	var progress string
	for {
		done, p, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		progress = p
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: timed out after %s waiting for %s (%s)", l.name, timeout, what, progress)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// processes names the processes whose CPU a scenario reports: the apiserver, etcd,
// this process (the manager and the harness) and the given children.
func (l *lab) processes(children map[string]*child) map[string]int {
	m := map[string]int{"kube-apiserver": l.apiserverPID, "etcd": l.etcdPID, l.self(): os.Getpid()}
	for name, c := range children {
		m[name] = c.pid()
	}
	return m
}

// self names this process in context items: the manager runs in it, when it runs.
func (l *lab) self() string {
	if l.managerRunning {
		return "manager+harness"
	}
	return "harness"
}

// cpuContext turns a meter's reading into context items of a metric.
func cpuContext(metric string, cores map[string]float64) []Context {
	var out []Context
	for _, name := range slices.Sorted(maps.Keys(cores)) {
		out = append(out, Context{Metric: metric, Name: name, Unit: "cores", Values: map[string]float64{"Value": cores[name]}})
	}
	return out
}

// startProfiles records, when --profile is set, a CPU profile of this process (the
// manager, labelled) until the returned function is called, and one of the
// apiserver for the first ProfileSeconds, into <out>/profiles/<metric>-*.pprof.
func (l *lab) startProfiles(ctx context.Context, metric string) (stop func()) {
	if !l.run.o.Profile {
		return func() {}
	}
	dir := filepath.Join(l.run.o.Out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.run.logf("profiles: %v", err)
		return func() {}
	}
	var f *os.File
	if l.managerRunning {
		var err error
		if f, err = os.Create(filepath.Join(dir, metric+"-manager.pprof")); err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				_ = f.Close()
				f = nil
			}
		}
		if err != nil {
			l.run.logf("profiling the manager: %v", err)
		}
	}
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		path := filepath.Join(dir, metric+"-apiserver.pprof")
		if err := apiserverProfile(ctx, l.env.Config, l.run.o.ProfileSeconds, path); err != nil {
			l.run.logf("%v", err)
		}
	}()
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			_ = f.Close()
		}
		<-apiDone
		l.run.logf("%s: profiles in %s", metric, dir)
	}
}

// measurement is what a scenario records while it measures: profiles (with
// --profile), the CPU of each process, and the latencies of writes.
type measurement struct {
	l            *lab
	metric       string
	stopProfiles func()
	meter        *cpuMeter
	lat          latencySnapshot
	// cpu is what the processes used over the measurement, once stopped.
	cpu serverCPU
}

func (l *lab) startMeasurement(ctx context.Context, metric string, children map[string]*child) *measurement {
	m := &measurement{l: l, metric: metric, lat: l.latencies(ctx)}
	m.stopProfiles = l.startProfiles(ctx, metric)
	m.meter = newCPUMeter(l.processes(children))
	return m
}

// stop ends the measurement and returns its context items, with the live heap of
// this process (the manager's caches, mostly) after a collection.
func (m *measurement) stop(ctx context.Context) []Context {
	m.cpu = cpuOf(m.meter)
	cores := m.meter.cores()
	m.stopProfiles()
	out := append(cpuContext(m.metric, cores), latencyContext(m.metric, m.lat, m.l.latencies(ctx), m.l.managerRunning)...)
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return append(out, Context{Metric: m.metric, Name: m.l.self() + " live heap", Unit: "MiB",
		Values: map[string]float64{"Value": float64(ms.HeapAlloc) / (1 << 20)}})
}
