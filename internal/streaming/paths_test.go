package streaming

import (
	"strings"
	"testing"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func taskWith(containers ...string) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{}
	t.Namespace, t.Name = "ns", "web-1"
	for _, c := range containers {
		t.Status.Containers = append(t.Status.Containers, ecsv1alpha1.ContainerStatus{Name: c})
	}
	return t
}

// TestPickContainer: -c may be left out only for a task of one container; an
// error lists the containers to choose from.
func TestPickContainer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		task       *ecsv1alpha1.Task
		container  string
		want       string
		wantErrHas string
	}{
		{name: "the only container", task: taskWith("app"), want: "app"},
		{name: "named", task: taskWith("app", "sidecar"), container: "sidecar", want: "sidecar"},
		{name: "two, none named", task: taskWith("app", "sidecar"), wantErrHas: "has 2 containers: name one with container (-c), one of: app, sidecar"},
		{name: "unknown name", task: taskWith("app"), container: "db", wantErrHas: `has no container "db"; its containers: app`},
		{name: "not started", task: taskWith(), wantErrHas: "has no containers yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PickContainer(tc.task, tc.container)
			if tc.wantErrHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrHas) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErrHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("PickContainer = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestPaths: names are escaped, so a path never gains a segment.
func TestPaths(t *testing.T) {
	if got := ExecPath("ns", "a/b"); got != "/exec/ns/a%2Fb" {
		t.Errorf("ExecPath = %s", got)
	}
	if got := LogsPath("ns", "web", "app"); got != "/logs/ns/web/app" {
		t.Errorf("LogsPath = %s", got)
	}
}
