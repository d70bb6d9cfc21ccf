package taskrules

import (
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const (
	healthy   = ecsv1alpha1.HealthHealthy
	unhealthy = ecsv1alpha1.HealthUnhealthy
	unknown   = ecsv1alpha1.HealthUnknown
)

func TestHasHealthCheck(t *testing.T) {
	tests := []struct {
		name string
		hc   *ecsv1alpha1.HealthCheck
		want bool
	}{
		{"none defined", nil, false},
		{"empty command", &ecsv1alpha1.HealthCheck{}, false},
		{"NONE switches the check off", &ecsv1alpha1.HealthCheck{Command: []string{"NONE"}}, false},
		{"CMD without arguments", &ecsv1alpha1.HealthCheck{Command: []string{"CMD"}}, false},
		{"CMD", &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "true"}}, true},
		{"CMD-SHELL", &ecsv1alpha1.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost || exit 1"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasHealthCheck(tc.hc); got != tc.want {
				t.Errorf("HasHealthCheck = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestEssentialHealthChecks(t *testing.T) {
	check := &ecsv1alpha1.HealthCheck{Command: []string{"CMD", "true"}}
	def := func(name string, essential bool, hc *ecsv1alpha1.HealthCheck) ecsv1alpha1.ContainerDefinition {
		return ecsv1alpha1.ContainerDefinition{Name: name, Essential: ptr.To(essential), HealthCheck: hc}
	}
	tests := []struct {
		name string
		defs []ecsv1alpha1.ContainerDefinition
		want bool
	}{
		{"no checks", []ecsv1alpha1.ContainerDefinition{def("app", true, nil)}, false},
		{"essential check", []ecsv1alpha1.ContainerDefinition{def("app", true, check), def("side", false, nil)}, true},
		{"only a sidecar's check", []ecsv1alpha1.ContainerDefinition{def("app", true, nil), def("side", false, check)}, false},
		{"NONE on the essential container", []ecsv1alpha1.ContainerDefinition{def("app", true, &ecsv1alpha1.HealthCheck{Command: []string{"NONE"}})}, false},
		{"essential by default", []ecsv1alpha1.ContainerDefinition{{Name: "app", HealthCheck: check}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EssentialHealthChecks(&ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: tc.defs}); got != tc.want {
				t.Errorf("EssentialHealthChecks = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestTaskHealth(t *testing.T) {
	essential := func(s ecsv1alpha1.HealthStatus) ContainerHealth {
		return ContainerHealth{Essential: true, Checked: true, Status: s}
	}
	sidecar := func(s ecsv1alpha1.HealthStatus) ContainerHealth { return ContainerHealth{Checked: true, Status: s} }
	unchecked := ContainerHealth{Essential: true, Status: unknown}
	tests := []struct {
		name string
		cs   []ContainerHealth
		want ecsv1alpha1.HealthStatus
	}{
		{"no containers", nil, unknown},
		{"no checks", []ContainerHealth{unchecked}, unknown},
		{"every essential check healthy", []ContainerHealth{essential(healthy), unchecked}, healthy},
		{"one essential not checked yet", []ContainerHealth{essential(healthy), essential(unknown)}, unknown},
		{"an essential unhealthy wins", []ContainerHealth{essential(unknown), essential(unhealthy), essential(healthy)}, unhealthy},
		{"a sidecar's unhealthy check does not count", []ContainerHealth{essential(healthy), sidecar(unhealthy)}, healthy},
		{"only a sidecar's check", []ContainerHealth{unchecked, sidecar(healthy)}, unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TaskHealth(tc.cs); got != tc.want {
				t.Errorf("TaskHealth = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestServing(t *testing.T) {
	tests := []struct {
		name            string
		last            ecsv1alpha1.TaskStatusValue
		health          ecsv1alpha1.HealthStatus
		essentialChecks bool
		want            bool
	}{
		{"pending", ecsv1alpha1.TaskPending, healthy, false, false},
		{"running without essential checks", ecsv1alpha1.TaskRunning, unknown, false, true},
		{"running, essential check not passed yet", ecsv1alpha1.TaskRunning, unknown, true, false},
		{"running and healthy", ecsv1alpha1.TaskRunning, healthy, true, true},
		{"running and unhealthy", ecsv1alpha1.TaskRunning, unhealthy, true, false},
		{"unhealthy is never serving", ecsv1alpha1.TaskRunning, unhealthy, false, false},
		{"stopping", ecsv1alpha1.TaskStopping, healthy, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Serving(tc.last, tc.health, tc.essentialChecks); got != tc.want {
				t.Errorf("Serving = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	long := strings.Repeat("é", MaxReason) // 2 bytes each
	got := TruncateReason(long)
	if len(got) > MaxReason || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("TruncateReason: %d bytes, valid %t", len(got), utf8.ValidString(got))
	}
	if TruncateReason("short") != "short" {
		t.Errorf("short reasons are kept")
	}
}

func TestDefaultStoppedReason(t *testing.T) {
	for _, code := range []ecsv1alpha1.StopCode{ecsv1alpha1.StopUserInitiated, ecsv1alpha1.StopServiceSchedulerInitiated,
		ecsv1alpha1.StopInstanceUnreachable, ecsv1alpha1.StopTerminationNotice} {
		if DefaultStoppedReason(code) == "" {
			t.Errorf("no default stoppedReason for %s", code)
		}
	}
	if got := DefaultStoppedReason(ecsv1alpha1.StopEssentialContainerExited); got != "" {
		t.Errorf("the agent states its own stops' reasons, got a default %q", got)
	}
}
