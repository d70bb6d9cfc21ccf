// Package layout checks the import rules that docs/architecture.md's map of the tree
// states, so that the layout keeps telling the architecture: the agent never links
// the controllers, the API types link only apimachinery, the controllers never link
// the agent, and nothing the product ships links the test harnesses.
package layout

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/berthdev/berth"

// deps lists the packages (of any module) that the patterns depend on, not counting
// their tests.
func deps(t *testing.T, patterns ...string) []string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"list", "-deps"}, patterns...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %v: %v", patterns, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		// forbidden are import path prefixes none of the patterns may depend on.
		forbidden []string
	}{
		{"the agent does not link the control plane", []string{"./agent/..."},
			[]string{module + "/controllers", module + "/internal/manager", module + "/internal/placement",
				module + "/internal/deployment", module + "/internal/expectations", module + "/test", module + "/bench"}},
		{"the controllers do not link the agent", []string{"./controllers/...", "./internal/manager/..."},
			[]string{module + "/agent", module + "/test", module + "/bench"}},
		{"the API types link only apimachinery", []string{"./apis/..."},
			[]string{module + "/internal", module + "/controllers", module + "/agent", "sigs.k8s.io/controller-runtime"}},
		{"the ECS API links neither the controllers nor the agent", []string{"./ecsapi/..."},
			[]string{module + "/controllers", module + "/agent", module + "/internal/manager", module + "/test", module + "/bench"}},
		{"the console links neither the controllers nor the agent", []string{"./console/..."},
			[]string{module + "/controllers", module + "/agent", module + "/internal/manager", module + "/test", module + "/bench"}},
		{"the binary does not link test harnesses or the benchmarks", []string{"."},
			[]string{module + "/test", module + "/bench"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range deps(t, tc.patterns...) {
				for _, f := range tc.forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%v depends on %s", tc.patterns, d)
					}
				}
			}
		})
	}
}
