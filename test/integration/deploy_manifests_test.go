package integration

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

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

// TestKustomizeBaseGateway checks what config/default builds for the agents' read
// gateway: the manager's client CA Role and RoleBinding stay in kube-system (where
// the apiserver publishes that CA) though `namespace` moves everything else, and
// bind the manager's ServiceAccount; the manager serves the gateway, with flags
// `berth manager` accepts, from the Secret mounted at its certificate directory,
// behind a Service on the same port.
func TestKustomizeBaseGateway(t *testing.T) {
	const ns = "berth-system"
	c := chartObjects{t: t, ns: ns, objs: decodeDocuments(t, execTool(t, "kubectl", "kustomize", "config/default"))}
	for _, kind := range []string{"Role", "RoleBinding"} {
		if u := c.get(kind, "berth-manager"); u.GetNamespace() != "kube-system" {
			t.Errorf("%s berth-manager is in namespace %q, want kube-system", kind, u.GetNamespace())
		}
	}
	if !boundTo(t, c, "RoleBinding", "Role", "berth-manager", ns, "berth-manager") {
		t.Errorf("no RoleBinding binds ServiceAccount %s/berth-manager to the Role berth-manager", ns)
	}
	if diff := cmp.Diff(rulesOfKind(t, repoPath("config", "rbac", "role.yaml"), "Role"), typed[rbacv1.Role](t, c.get("Role", "berth-manager")).Rules); diff != "" {
		t.Errorf("Role berth-manager differs from config/rbac/role.yaml (-want +got):\n%s", diff)
	}
	d := typed[appsv1.Deployment](t, c.get("Deployment", "berth-manager"))
	pod := d.Spec.Template.Spec
	ctr := pod.Containers[0]
	if err := parseBerthFlags("manager", ctr.Args[1:]); err != nil {
		t.Errorf("`berth manager` rejects config/manager's args %q: %v", ctr.Args, err)
	}
	port := flagPort(ctr.Args, "--gateway-bind-address")
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "gateway" && fmt.Sprint(p.ContainerPort) == port }) {
		t.Errorf("manager ports %+v lack gateway %s (--gateway-bind-address)", ctr.Ports, port)
	}
	certDir := flagValue(ctr.Args, "--gateway-cert-dir")
	i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == certDir })
	if i < 0 || !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool {
		return v.Name == ctr.VolumeMounts[i].Name && v.Secret != nil && v.Secret.SecretName == "berth-gateway-tls"
	}) {
		t.Errorf("the manager does not mount the Secret berth-gateway-tls at --gateway-cert-dir %q", certDir)
	}
	svc := typed[corev1.Service](t, c.get("Service", "berth-gateway"))
	if svc.Namespace != ns || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) ||
		len(svc.Spec.Ports) != 1 || fmt.Sprint(svc.Spec.Ports[0].Port) != port || svc.Spec.Ports[0].TargetPort.String() != "gateway" {
		t.Errorf("Service berth-gateway = %+v, want one in %s selecting the managers' gateway port %s", svc.Spec, ns, port)
	}
}
