package engine

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestParseHealthCheck(t *testing.T) {
	tests := []struct {
		name string
		in   *ecsv1alpha1.HealthCheck
		want *healthCheck
	}{
		{"none defined", nil, nil},
		{"NONE disables", &ecsv1alpha1.HealthCheck{Command: []string{"NONE"}}, nil},
		{"CMD runs directly, ECS defaults", &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "/bin/check", "--fast"}},
			&healthCheck{argv: []string{"/bin/check", "--fast"}, interval: 30 * time.Second, timeout: 5 * time.Second, retries: 3}},
		{"CMD-SHELL runs through /bin/sh", &ecsv1alpha1.HealthCheck{
			Command:  []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
			Interval: ptr.To[int32](10), Timeout: ptr.To[int32](2), Retries: ptr.To[int32](5), StartPeriod: ptr.To[int32](60),
		}, &healthCheck{argv: []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}, interval: 10 * time.Second, timeout: 2 * time.Second, retries: 5, startPeriod: time.Minute}},
		{"CMD without an executable", &ecsv1alpha1.HealthCheck{Command: []string{"CMD"}}, nil},
		{"unknown form", &ecsv1alpha1.HealthCheck{Command: []string{"curl", "localhost"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseHealthCheck(tc.in), cmp.AllowUnexported(healthCheck{})); diff != "" {
				t.Errorf("parseHealthCheck() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealthState(t *testing.T) {
	hc := &healthCheck{interval: 5 * time.Second, retries: 3, startPeriod: 12 * time.Second}
	type result struct {
		at time.Duration // since the container started
		ok bool
	}
	const (
		healthy   = ecsv1alpha1.HealthHealthy
		unhealthy = ecsv1alpha1.HealthUnhealthy
		unknown   = ecsv1alpha1.HealthUnknown
	)
	tests := []struct {
		name    string
		initial ecsv1alpha1.HealthStatus
		results []result
		want    []ecsv1alpha1.HealthStatus // after each result
	}{
		{"a success is healthy at once", "", []result{{5 * time.Second, true}}, []ecsv1alpha1.HealthStatus{healthy}},
		{"failures in the start period do not count", "",
			[]result{{5 * time.Second, false}, {10 * time.Second, false}, {15 * time.Second, false}, {20 * time.Second, false}, {25 * time.Second, false}},
			[]ecsv1alpha1.HealthStatus{unknown, unknown, unknown, unknown, unhealthy}},
		{"a success ends the start period", "",
			[]result{{5 * time.Second, true}, {6 * time.Second, false}, {7 * time.Second, false}, {8 * time.Second, false}},
			[]ecsv1alpha1.HealthStatus{healthy, healthy, healthy, unhealthy}},
		{"retries consecutive failures", "",
			[]result{{15 * time.Second, false}, {20 * time.Second, false}, {25 * time.Second, true}, {30 * time.Second, false}, {35 * time.Second, false}, {40 * time.Second, false}},
			[]ecsv1alpha1.HealthStatus{unknown, unknown, healthy, healthy, healthy, unhealthy}},
		{"unhealthy recovers on a success", "",
			[]result{{15 * time.Second, false}, {20 * time.Second, false}, {25 * time.Second, false}, {30 * time.Second, true}},
			[]ecsv1alpha1.HealthStatus{unknown, unknown, unhealthy, healthy}},
		{"an adopted healthy container keeps its status and counts failures at once", healthy,
			[]result{{time.Second, false}, {2 * time.Second, false}, {3 * time.Second, false}},
			[]ecsv1alpha1.HealthStatus{healthy, healthy, unhealthy}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newHealthState(t0, tc.initial)
			var got []ecsv1alpha1.HealthStatus
			for _, r := range tc.results {
				before := st.status
				changed := st.observe(hc, r.ok, t0.Add(r.at))
				if changed != (st.status != before) {
					t.Errorf("observe at %s returned changed=%t, status %s -> %s", r.at, changed, before, st.status)
				}
				got = append(got, st.status)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("statuses mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaskHealth(t *testing.T) {
	tests := []struct {
		name       string
		containers []container
		want       ecsv1alpha1.HealthStatus
	}{
		{"no checks", []container{c("app", containerRunning)}, ecsv1alpha1.HealthUnknown},
		{"every essential check healthy", []container{c("app", containerRunning, withCheck(ecsv1alpha1.HealthHealthy)), c("db", containerRunning)}, ecsv1alpha1.HealthHealthy},
		{"one essential not yet healthy", []container{c("app", containerRunning, withCheck(ecsv1alpha1.HealthHealthy)), c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnknown))}, ecsv1alpha1.HealthUnknown},
		{"an essential unhealthy", []container{c("app", containerRunning, withCheck(ecsv1alpha1.HealthUnknown)), c("db", containerRunning, withCheck(ecsv1alpha1.HealthUnhealthy))}, ecsv1alpha1.HealthUnhealthy},
		{"non-essential checks do not count", []container{c("app", containerRunning, withCheck(ecsv1alpha1.HealthHealthy)), c("side", containerRunning, nonEssential, withCheck(ecsv1alpha1.HealthUnhealthy))}, ecsv1alpha1.HealthHealthy},
		{"only a non-essential check", []container{c("app", containerRunning), c("side", containerRunning, nonEssential, withCheck(ecsv1alpha1.HealthHealthy))}, ecsv1alpha1.HealthUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := taskHealth(tc.containers); got != tc.want {
				t.Errorf("taskHealth() = %s, want %s", got, tc.want)
			}
		})
	}
}
