package engine

import (
	"context"
	"errors"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// Health check defaults, ECS's (and Docker's).
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 5 * time.Second
	defaultHealthRetries  = 3
)

// healthCheck is a container's healthCheck with defaults applied and the command
// turned into the argv to exec.
type healthCheck struct {
	argv        []string
	interval    time.Duration
	timeout     time.Duration
	retries     int
	startPeriod time.Duration
}

// parseHealthCheck returns nil for no check: none defined, ["NONE"], or a command
// that is neither CMD nor CMD-SHELL (the schema rejects those).
func parseHealthCheck(hc *ecsv1alpha1.HealthCheck) *healthCheck {
	if !taskrules.HasHealthCheck(hc) {
		return nil
	}
	var argv []string
	switch hc.Command[0] {
	case "CMD":
		argv = append(argv, hc.Command[1:]...)
	case "CMD-SHELL":
		if len(hc.Command) > 1 {
			argv = []string{"/bin/sh", "-c", strings.Join(hc.Command[1:], " ")}
		}
	}
	if len(argv) == 0 {
		return nil
	}
	return &healthCheck{
		argv:        argv,
		interval:    seconds(hc.Interval, defaultHealthInterval),
		timeout:     seconds(hc.Timeout, defaultHealthTimeout),
		retries:     int(valueOr(hc.Retries, defaultHealthRetries)),
		startPeriod: seconds(hc.StartPeriod, 0),
	}
}

// healthState follows Docker's health check rules, which ECS uses: a success makes
// the container HEALTHY and ends its start period; retries consecutive failures make
// it UNHEALTHY; failures during the start period (before any success) do not count.
type healthState struct {
	status   ecsv1alpha1.HealthStatus
	failures int
	// started is when the container started; the start period runs from there.
	started time.Time
	// warmedUp is true once a check succeeded (which ends the start period).
	warmedUp bool
}

// newHealthState starts from status (UNKNOWN for a new process; the last reported
// status for a container adopted after an agent restart).
func newHealthState(started time.Time, status ecsv1alpha1.HealthStatus) healthState {
	if status == "" {
		status = ecsv1alpha1.HealthUnknown
	}
	return healthState{status: status, started: started, warmedUp: status == ecsv1alpha1.HealthHealthy}
}

// observe records one check's result at time at and reports whether the status
// changed.
func (h *healthState) observe(hc *healthCheck, ok bool, at time.Time) bool {
	before := h.status
	switch {
	case ok:
		h.status, h.failures, h.warmedUp = ecsv1alpha1.HealthHealthy, 0, true
	case !h.warmedUp && at.Sub(h.started) < hc.startPeriod:
		// Still starting: the failure does not count.
	default:
		h.failures++
		if h.failures >= hc.retries {
			h.status = ecsv1alpha1.HealthUnhealthy
		}
	}
	return h.status != before
}

// runHealthCheck execs hc in container id every interval, the first one interval
// after it begins, until ctx ends, and calls post with each new status.
func runHealthCheck(ctx context.Context, rt runtime.Runtime, clk clock.Clock, id string, hc *healthCheck, started time.Time, initial ecsv1alpha1.HealthStatus, post func(ecsv1alpha1.HealthStatus)) {
	state := newHealthState(started, initial)
	timer := clk.NewTimer(hc.interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		}
		code, _, err := rt.Exec(ctx, id, hc.argv, hc.timeout)
		if ctx.Err() != nil {
			return
		}
		// A container that is no longer running is not unhealthy: its exit is on its
		// way and ends this check.
		if !errors.Is(err, runtime.ErrNotRunning) && !errors.Is(err, runtime.ErrNotFound) {
			if state.observe(hc, err == nil && code == 0, clk.Now()) {
				post(state.status)
			}
		}
		timer.Reset(hc.interval)
	}
}

// taskHealth is the task's healthStatus from its containers' (taskrules.TaskHealth:
// ECS's rule, which the service and endpoints controllers apply too).
func taskHealth(cs []container) ecsv1alpha1.HealthStatus {
	hs := make([]taskrules.ContainerHealth, len(cs))
	for i := range cs {
		hs[i] = taskrules.ContainerHealth{Essential: cs[i].essential, Checked: cs[i].check != nil, Status: cs[i].health}
	}
	return taskrules.TaskHealth(hs)
}

func seconds(v *int32, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	return time.Duration(*v) * time.Second
}

func valueOr[T any](v *T, def T) T {
	if v == nil {
		return def
	}
	return *v
}
