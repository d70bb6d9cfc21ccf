package v1alpha1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestTaskStatusIndex(t *testing.T) {
	cases := []struct {
		status TaskStatusValue
		want   int
	}{
		{TaskProvisioning, 0},
		{TaskRunning, 3},
		{TaskStopped, 7},
		{"BOGUS", -1},
	}
	for _, tc := range cases {
		if got := tc.status.Index(); got != tc.want {
			t.Errorf("%s.Index() = %d, want %d", tc.status, got, tc.want)
		}
	}
}

// TestLifecycleMatchesSchema keeps the Go lifecycle order and the CRD's "never moves
// backwards" CEL rule in step: both must list the statuses in the same order.
func TestLifecycleMatchesSchema(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "ecs.berth.dev_tasks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i, s := range TaskLifecycle {
		parts = append(parts, fmt.Sprintf("'%s': %d", s, i))
	}
	want := "{" + strings.Join(parts, ", ") + "}[self] >= {" + strings.Join(parts, ", ") + "}[oldSelf]"
	var doc any
	if err := yaml.Unmarshal(crd, &doc); err != nil {
		t.Fatal(err)
	}
	if !containsRule(doc, want) {
		t.Fatalf("tasks CRD lacks the lifecycle rule %q; regenerate with make manifests", want)
	}
}

// containsRule walks a decoded YAML document for an x-kubernetes-validations rule.
func containsRule(node any, rule string) bool {
	switch n := node.(type) {
	case map[string]any:
		if r, ok := n["rule"].(string); ok && r == rule {
			return true
		}
		for _, v := range n {
			if containsRule(v, rule) {
				return true
			}
		}
	case []any:
		for _, v := range n {
			if containsRule(v, rule) {
				return true
			}
		}
	}
	return false
}
