package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/berthdev/berth/test/testenv"
)

// execTool runs a command from the repository root and returns its combined output,
// failing the test when it exits non-zero.
func execTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKustomizeBaseApplies checks that config/default builds and that the real
// apiserver accepts every object it produces.
func TestKustomizeBaseApplies(t *testing.T) {
	// A dry run does not create the namespace, so the namespaced objects need it to exist.
	execTool(t, "kubectl", "--kubeconfig", env.Kubeconfig, "create", "namespace", "berth-system")
	t.Cleanup(func() {
		_ = exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "delete", "namespace", "berth-system", "--wait=false").Run()
	})
	out := execTool(t, "kubectl", "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", "config/default")
	for _, want := range []string{"deployment.apps/berth-manager", "clusterrole.rbac.authorization.k8s.io/berth-manager", "serviceaccount/berth-manager"} {
		if !strings.Contains(out, want) {
			t.Errorf("kustomize base output lacks %q:\n%s", want, out)
		}
	}
}
