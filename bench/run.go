package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/test/testenv"
)

// Options configure a run of the suite.
type Options struct {
	// Size scales every benchmark: 1.0 is the full suite of the issue (1,000 hollow
	// instances and 10,000 tasks for PlacementThroughput, ...), 0.1 the quick run.
	// Counts never go below a small minimum, so 0.01 is a smoke test.
	Size float64
	// Only restricts the run to the scenarios that measure these metrics (nil: all).
	Only []string
	// Out is the results directory (bench/results).
	Out string
	// Profile writes CPU profiles of the manager and the apiserver into Out/profiles.
	Profile bool
	// ProfileSeconds is the length of the apiserver's profile, from the start of the
	// measurement (default 20).
	ProfileSeconds int
	// Berth is the berth binary to run hollow agents and agents with; empty builds
	// one from this repository.
	Berth string
	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
	// KeepWorkDir keeps the logs of the child processes and the manager even when
	// the run succeeded (they are always kept when it failed).
	KeepWorkDir bool
	// Concurrent runs the scenarios at the same time, each against its own
	// apiserver. Only for the smoke test of the harness: the figures of scenarios
	// that share the CPU mean nothing.
	Concurrent bool
	// Manager overrides the manager's production defaults for an A/B experiment;
	// zero fields keep the defaults. Results say when an override was used.
	Manager ManagerOverrides
	// HollowStatusInterval, when set, is the hollow instances' --status-interval
	// instead of the agent's default: an A/B experiment on the fleet's own writes.
	HollowStatusInterval time.Duration
}

// ManagerOverrides are manager options to try instead of the defaults.
type ManagerOverrides struct {
	QPS              float64
	Burst            int
	SchedulerWorkers int
	ServiceWorkers   int
	// WritesPerPass is the service controller's bound on one pass's creates and
	// stops; a very large one is unbounded.
	WritesPerPass int
}

func (m ManagerOverrides) String() string {
	var parts []string
	if m.QPS > 0 {
		parts = append(parts, fmt.Sprintf("--kube-api-qps=%g", m.QPS))
	}
	if m.Burst > 0 {
		parts = append(parts, fmt.Sprintf("--kube-api-burst=%d", m.Burst))
	}
	if m.SchedulerWorkers > 0 {
		parts = append(parts, fmt.Sprintf("--scheduler-workers=%d", m.SchedulerWorkers))
	}
	if m.ServiceWorkers > 0 {
		parts = append(parts, fmt.Sprintf("--service-workers=%d", m.ServiceWorkers))
	}
	if m.WritesPerPass > 0 {
		parts = append(parts, fmt.Sprintf("--service-max-writes-per-pass=%d", m.WritesPerPass))
	}
	return strings.Join(parts, " ")
}

// scenario measures one or more metrics against one lab.
type scenario struct {
	name    string
	metrics []string
	run     func(ctx context.Context, r *runner, l *lab) (*outcome, error)
}

// outcome is what a scenario measured.
type outcome struct {
	figures  []Figure
	contexts []Context
	notes    []string
}

func (o *outcome) note(format string, args ...any) {
	o.notes = append(o.notes, fmt.Sprintf(format, args...))
}

// scenarios in the order they run: the control-plane ones first, the real
// containerd ones, then the largest.
var scenarios = []scenario{
	{name: "placement", metrics: []string{PlacementThroughput}, run: runPlacement},
	{name: "service", metrics: []string{ServiceScaleOut, RollingDeploy, WritesPerTask}, run: runService},
	{name: "bindingpatch", metrics: []string{BindingPatchCost}, run: runBindingPatch},
	{name: "taskwrite", metrics: []string{TaskWriteCost}, run: runTaskWrite},
	{name: "utilization", metrics: []string{UtilizationWrites}, run: runUtilization},
	{name: "ecsapi", metrics: []string{ECSAPIDescribeTasks, ECSAPIRunTask, ECSAPIFootprint}, run: runECSAPI},
	{name: "gateway", metrics: []string{GatewayRead}, run: runGateway},
	{name: "containerd", metrics: []string{TaskStartupLatency, AgentFootprint}, run: runContainerd},
	{name: "hollowscale", metrics: []string{HollowScale}, run: runHollowScale},
}

// runner holds what every scenario of a run shares.
type runner struct {
	o       Options
	size    sizer
	berth   string
	work    string
	log     logr.Logger
	started time.Time
}

func (r *runner) logf(format string, args ...any) {
	if r.o.Progress != nil {
		_, _ = fmt.Fprintf(r.o.Progress, "[%6.1fs] %s\n", time.Since(r.started).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (r *runner) workFile(name string) string { return filepath.Join(r.work, name) }

// wants reports whether a metric was selected.
func (r *runner) wants(metric string) bool {
	return len(r.o.Only) == 0 || slices.Contains(r.o.Only, metric)
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Size <= 0 || o.Size > 10 || math.IsNaN(o.Size) {
		return fmt.Errorf("--size must be in (0, 10], got %v", o.Size)
	}
	for _, m := range o.Only {
		if !slices.Contains(Metrics, m) {
			return fmt.Errorf("--only: unknown metric %q (known: %s)", m, strings.Join(Metrics, ","))
		}
	}
	if o.Out == "" {
		return errors.New("--out must be set")
	}
	if o.ProfileSeconds == 0 {
		o.ProfileSeconds = 20
	}
	return nil
}

// Run runs the selected scenarios and returns their report; it also writes it to
// o.Out. A scenario that fails does not stop the others: the report says so and
// Run returns an error after writing it.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &runner{o: o, size: sizer(o.Size), started: time.Now()}
	enableClientLatencies()
	var err error
	if r.work, err = os.MkdirTemp("", "berth-bench-"); err != nil {
		return nil, err
	}
	logFile, err := os.Create(r.workFile("manager.log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the log is only for debugging
	// The manager logs as in production (JSON, info), to a file.
	r.log = zap.New(zap.WriteTo(logFile))
	if r.berth, err = r.berthBinary(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Version: "v1", Size: o.Size, StartedAt: r.started, Machine: readMachine(), Versions: readVersions(r.berth)}
	if s := o.Manager.String(); s != "" {
		rep.Versions["Manager options (overridden)"] = s
	}
	if d := o.HollowStatusInterval; d > 0 {
		rep.Versions["Hollow options (overridden)"] = "--status-interval=" + d.String()
	}
	r.runScenarios(ctx, rep)
	rep.Duration = time.Since(r.started).Seconds()
	jsonPath, mdPath, werr := rep.WriteFiles(o.Out)
	if werr == nil {
		r.logf("wrote %s and %s", jsonPath, mdPath)
	}
	failed := rep.Failed()
	if failed || o.KeepWorkDir {
		r.logf("logs of the run are in %s", r.work)
	} else {
		_ = os.RemoveAll(r.work) // temporary logs only
	}
	if failed {
		return rep, errors.Join(werr, errors.New("some scenarios failed; see the results"))
	}
	return rep, werr
}

// runScenarios runs the selected scenarios, one after the other unless Concurrent,
// and adds their results to rep in the order of scenarios.
func (r *runner) runScenarios(ctx context.Context, rep *Report) {
	var selected []scenario
	for _, sc := range scenarios {
		if slices.ContainsFunc(sc.metrics, r.wants) {
			selected = append(selected, sc)
		}
	}
	results := make([]ScenarioResult, len(selected))
	outs := make([]*outcome, len(selected))
	var wg sync.WaitGroup
	for i, sc := range selected {
		if !r.o.Concurrent {
			results[i], outs[i] = r.runScenario(ctx, sc)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], outs[i] = r.runScenario(ctx, sc)
		}()
	}
	wg.Wait()
	for i := range selected {
		if outs[i] != nil {
			rep.add(outs[i].figures, outs[i].contexts)
		}
		rep.Scenarios = append(rep.Scenarios, results[i])
	}
}

func (r *runner) runScenario(ctx context.Context, sc scenario) (ScenarioResult, *outcome) {
	res := ScenarioResult{Name: sc.name, Metrics: sc.metrics}
	if f := strings.Fields(loadAverage()); len(f) > 0 {
		_, _ = fmt.Sscanf(f[0], "%g", &res.LoadAvg1)
	}
	start := time.Now()
	r.logf("== %s (%s), size %g", sc.name, strings.Join(sc.metrics, ", "), r.o.Size)
	out, err := r.withLab(ctx, sc)
	res.Seconds = time.Since(start).Seconds()
	if out != nil {
		res.Notes = out.notes
	}
	if reason, ok := skipReason(err); ok {
		res.Skipped = reason
		r.logf("%s skipped: %s", sc.name, reason)
	} else if err != nil {
		res.Error = err.Error()
		r.logf("%s FAILED: %v", sc.name, err)
	} else {
		r.logf("%s done in %s", sc.name, time.Since(start).Round(time.Second))
	}
	return res, out
}

func (r *runner) withLab(ctx context.Context, sc scenario) (*outcome, error) {
	l, err := newLab(ctx, r, sc.name)
	if err != nil {
		return nil, err
	}
	out, err := sc.run(ctx, r, l)
	return out, errors.Join(err, l.close())
}

// berthBinary returns Options.Berth, or builds berth from this repository into the
// work directory (as `make build` does: static, so it also runs in images).
func (r *runner) berthBinary(ctx context.Context) (string, error) {
	if r.o.Berth != "" {
		return filepath.Abs(r.o.Berth)
	}
	out := r.workFile("berth")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building berth: %w\n%s", err, b)
	}
	r.logf("built %s in %s", out, time.Since(start).Round(100*time.Millisecond))
	return out, nil
}

// sizer scales the counts and durations of the full suite.
type sizer float64

// n is full scaled, at least least.
func (s sizer) n(full, least int) int {
	return max(least, int(math.Round(float64(full)*float64(s))))
}

// d is full scaled, at least least.
func (s sizer) d(full, least time.Duration) time.Duration {
	return max(least, time.Duration(float64(full)*float64(s)))
}
