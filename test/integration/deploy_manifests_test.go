package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/testenv"
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

// TestHelmChartInstallsOnServer lints the chart, renders it, and applies the result
// with a server-side dry run, so the real apiserver validates every object.
func TestHelmChartInstallsOnServer(t *testing.T) {
	helm := filepath.Join(testenv.BinDir(), "helm")
	execTool(t, helm, "lint", "--strict", "charts/berth")
	ns := env.Namespace(t)
	rendered := execTool(t, helm, "template", "berth", "charts/berth", "--namespace", ns, "--include-crds")
	for _, kind := range []string{"kind: Deployment", "kind: ClusterRole", "kind: ServiceAccount", "kind: CustomResourceDefinition"} {
		if !strings.Contains(rendered, kind) {
			t.Errorf("rendered chart lacks %q", kind)
		}
	}
	if strings.Contains(rendered, `"*"`) || strings.Contains(rendered, "- '*'") {
		t.Errorf("rendered chart contains a wildcard RBAC rule")
	}
	cmd := exec.Command("kubectl", "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")
	cmd.Stdin = strings.NewReader(rendered)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("server-side dry run of the chart failed: %v\n%s", err, out)
	}
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
