package integration

import (
	"bytes"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthdev/berth/test/testenv"
)

// The chart's ECS API (`berth api`): a Deployment and a Service, its identity and
// RBAC, TLS from an existing Secret.

// apiWant is what one value set must render of the API; the zero value means
// api.enabled=false.
type apiWant struct {
	replicas    int32
	servicePort int32
	serviceType corev1.ServiceType
	// tlsSecret is the kubernetes.io/tls Secret the API serves HTTPS with ("" for HTTP).
	tlsSecret string
	// args are among the API's arguments (--credentials-namespace is always checked).
	args []string
}

func (a apiWant) enabled() bool { return a.replicas > 0 }

// checkAPI: the API runs as its own ServiceAccount with restricted settings, with
// flags `berth api` accepts, its credentials in the release namespace (where its
// Role lets it read Secrets), probes and Service on the port it listens on, over
// TLS from the named Secret when asked.
func checkAPI(t *testing.T, c chartObjects, want apiWant) {
	name := releaseName + "-api"
	if !want.enabled() {
		for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "Role", "PodDisruptionBudget"} {
			if c.find(kind, name) != nil {
				t.Errorf("api.enabled=false still renders %s %s", kind, name)
			}
		}
		return
	}
	d := typed[appsv1.Deployment](t, c.get("Deployment", name))
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.replicas {
		t.Errorf("API replicas = %v, want %d", d.Spec.Replicas, want.replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("API pod has %d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("API container's root filesystem is writable")
	}
	if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("API container lacks a memory request and limit: %+v", ctr.Resources)
	}
	if len(ctr.Args) == 0 || ctr.Args[0] != "api" {
		t.Fatalf("API args = %q, want the api subcommand first", ctr.Args)
	}
	if err := parseBerthFlags("api", ctr.Args[1:]); err != nil {
		t.Errorf("`berth api` rejects the chart's args %q: %v", ctr.Args, err)
	}
	for _, a := range append(slices.Clone(want.args), "--credentials-namespace="+c.ns) {
		if !slices.Contains(ctr.Args, a) {
			t.Errorf("API args %q lack %s", ctr.Args, a)
		}
	}
	checkAPIPorts(t, ctr, want)
	checkAPITLS(t, pod, ctr, want)
	checkAPIDisruptionBudget(t, c, d, want)
	checkAPIService(t, c, d, want)
	if r := c.get("Role", name); r.GetNamespace() != c.ns {
		t.Errorf("Role %s is in namespace %q, want the release namespace %q, where the credentials are", name, r.GetNamespace(), c.ns)
	}
	if !boundTo(t, c, "RoleBinding", "Role", name, c.ns, name) {
		t.Errorf("no RoleBinding binds ServiceAccount %s to Role %s", name, name)
	}
}

// checkAPIDisruptionBudget: with more than one replica, a drain leaves all but one
// serving.
func checkAPIDisruptionBudget(t *testing.T, c chartObjects, d *appsv1.Deployment, want apiWant) {
	pdb := c.find("PodDisruptionBudget", releaseName+"-api")
	if (pdb != nil) != (want.replicas > 1) {
		t.Errorf("API PodDisruptionBudget rendered: %v, want it with %d replicas", pdb != nil, want.replicas)
	}
	if pdb == nil {
		return
	}
	spec := typed[policyv1.PodDisruptionBudget](t, pdb).Spec
	if !selects(t, spec.Selector, d.Spec.Template.Labels) || spec.MaxUnavailable == nil || spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("the API's PodDisruptionBudget %+v does not keep all but one of the API's pods", spec)
	}
}

// checkAPIPorts: the container port is the one --listen binds, and both probes GET
// /healthz on it, over HTTPS when the API serves TLS.
func checkAPIPorts(t *testing.T, ctr corev1.Container, want apiWant) {
	i := slices.IndexFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "api" })
	if i < 0 {
		t.Fatalf("the API container has no port named api: %+v", ctr.Ports)
	}
	if got, wantPort := flagPort(ctr.Args, "--listen"), ctr.Ports[i].ContainerPort; got != strconv.Itoa(int(wantPort)) {
		t.Errorf("--listen binds port %q, but the container port api is %d", got, wantPort)
	}
	scheme := corev1.URISchemeHTTP
	if want.tlsSecret != "" {
		scheme = corev1.URISchemeHTTPS
	}
	for kind, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "api" || p.HTTPGet.Scheme != scheme {
			t.Errorf("API %s probe = %+v, want %s GET /healthz on port api", kind, p, scheme)
		}
	}
}

// checkAPITLS: with TLS, the certificate and key flags name tls.crt and tls.key of
// the Secret's volume, mounted read-only; without, no flag and no volume.
func checkAPITLS(t *testing.T, pod corev1.PodSpec, ctr corev1.Container, want apiWant) {
	cert, key := flagValue(ctr.Args, "--tls-cert-file"), flagValue(ctr.Args, "--tls-private-key-file")
	if want.tlsSecret == "" {
		if cert != "" || key != "" || len(pod.Volumes) > 0 {
			t.Errorf("API without TLS has --tls-cert-file %q, --tls-private-key-file %q, volumes %+v", cert, key, pod.Volumes)
		}
		return
	}
	var volume string
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == want.tlsSecret {
			volume = v.Name
		}
	}
	i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volume })
	if volume == "" || i < 0 {
		t.Fatalf("the Secret %s is not mounted into the API container: volumes %+v, mounts %+v", want.tlsSecret, pod.Volumes, ctr.VolumeMounts)
	}
	m := ctr.VolumeMounts[i]
	if !m.ReadOnly {
		t.Errorf("the TLS Secret is mounted writable")
	}
	if cert != path.Join(m.MountPath, corev1.TLSCertKey) || key != path.Join(m.MountPath, corev1.TLSPrivateKeyKey) {
		t.Errorf("--tls-cert-file %q and --tls-private-key-file %q, want %s and %s of the Secret mounted at %s",
			cert, key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, m.MountPath)
	}
}

// checkAPIService: the Service selects the API's pods only, on the port asked for.
func checkAPIService(t *testing.T, c chartObjects, d *appsv1.Deployment, want apiWant) {
	svc := typed[corev1.Service](t, c.get("Service", releaseName+"-api"))
	if svc.Spec.Type != want.serviceType {
		t.Errorf("API Service type %q, want %q", svc.Spec.Type, want.serviceType)
	}
	sel := &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}
	if !selects(t, sel, d.Spec.Template.Labels) {
		t.Errorf("the API Service's selector %v does not select the API's pods", svc.Spec.Selector)
	}
	manager := typed[appsv1.Deployment](t, c.get("Deployment", releaseName+"-manager"))
	if selects(t, sel, manager.Spec.Template.Labels) {
		t.Errorf("the API Service's selector %v also selects the manager's pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != want.servicePort || svc.Spec.Ports[0].TargetPort.String() != "api" {
		t.Errorf("API Service ports = %+v, want %d targeting the container port api", svc.Spec.Ports, want.servicePort)
	}
}

// TestHelmChartRefusesBadAPIValues: values `berth api` would refuse fail the render
// with a message naming the value, instead of a crash-looping Deployment.
func TestHelmChartRefusesBadAPIValues(t *testing.T) {
	tests := []struct {
		name, values, wantErr string
	}{
		{"auth none", "api: {auth: none}", "api.auth"},
		{"unquoted account", "api: {accountId: 123456789012}", "api.accountId"},
		{"short account", `api: {accountId: "1234"}`, "api.accountId"},
		{"no region", `api: {region: ""}`, "api.region"},
		{"TLS without a Secret", "api: {tls: {enabled: true}}", "api.tls.secretName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkHelmRefuses(t, tc.values, tc.wantErr) })
	}
	// And the same values with api.enabled=false render: nothing of the API is made.
	runHelmInput(t, "api: {enabled: false, auth: none}", "template", releaseName, chartPath, "--values", "-")
}

// rulesOfKind returns the rules of the one object of kind (ClusterRole or Role) in
// a role file.
func rulesOfKind(t *testing.T, file, kind string) []rbacv1.PolicyRule {
	t.Helper()
	var found [][]rbacv1.PolicyRule
	for _, u := range readManifests(t, file) {
		switch {
		case u.GetKind() != kind:
		case kind == "Role":
			found = append(found, typed[rbacv1.Role](t, u).Rules)
		default:
			found = append(found, typed[rbacv1.ClusterRole](t, u).Rules)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s holds %d objects of kind %s, want 1", file, len(found), kind)
	}
	return found[0]
}

// flagValue is the value of a --flag=value argument, or "".
func flagValue(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// checkHelmRefuses renders the chart with values and wants the render to fail with
// a message naming wantErr (the value at fault).
func checkHelmRefuses(t *testing.T, values, wantErr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.BinDir(), "helm"), "template", releaseName, chartPath, "--values", "-")
	cmd.Dir = testenv.RepoRoot()
	cmd.Stdin = strings.NewReader(values)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), wantErr) {
		t.Errorf("helm template with %s: %v, want a failure naming %s:\n%s", values, err, wantErr, stderr.String())
	}
}
