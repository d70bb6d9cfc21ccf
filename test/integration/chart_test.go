package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/internal/cli"
	"github.com/berthdev/berth/test/testenv"
)

// Tests of how Berth is deployed: the Helm chart (charts/berth) and the agent's
// systemd unit (config/agent). What they render or declare is checked against what
// it deploys: the flags `berth manager` and `berth agent` really accept, the RBAC
// controller-gen generates from the code, and a real apiserver's validation.

const (
	chartPath   = "charts/berth"
	releaseName = "berth"
)

// chartValues are the value sets the chart is rendered with.
var chartValues = []struct {
	name   string
	values string // YAML over the chart's values.yaml
	want   chartWant
}{
	{
		name:   "defaults",
		values: "",
		want: chartWant{
			agent: true, pdb: true, agentProbe: true, managerReplicas: 2,
			api: apiWant{replicas: 2, servicePort: 80, serviceType: "ClusterIP", args: []string{
				"--auth=sigv4", "--region=us-east-1", "--account-id=000000000000", "--zap-log-level=info",
			}},
			stateDir: "/var/lib/berth", containerdDir: "/run/containerd",
			agentArgs: []string{
				"--cluster=default", "--name=$(NODE_NAME)", "--state-dir=/var/lib/berth",
				"--containerd-address=/run/containerd/containerd.sock", "--cni-plugin-dir=/usr/lib/cni",
				"--http-bind-address=127.0.0.1:51678", "--berth-binary=/var/lib/berth/bin/berth",
				"--utilization-interval=1m",
			},
		},
	},
	{
		name: "serviceMonitor on with agent and API off",
		values: `
agent: {enabled: false}
api: {enabled: false}
metrics: {serviceMonitor: {enabled: true, labels: {release: prometheus}}}
`,
		want: chartWant{serviceMonitor: true, pdb: true, managerReplicas: 2},
	},
	{
		// TestHelmChartAlerts and TestHelmChartDashboard look inside the two.
		name: "alerts and dashboard on",
		values: `
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
  grafanaDashboard: {enabled: true}
`,
		want: chartWant{
			agent: true, pdb: true, agentProbe: true, managerReplicas: 2, serviceMonitor: true, prometheusRule: true, dashboard: true,
			api:      apiWant{replicas: 2, servicePort: 80, serviceType: "ClusterIP"},
			stateDir: "/var/lib/berth", containerdDir: "/run/containerd",
		},
	},
	{
		name: "node paths and host CNI plugins without HTTP endpoint and one manager",
		values: `
manager:
  replicas: 1
  extraArgs: ["--scheduler-workers=32"]
agent:
  cluster: edge
  stateDir: /data/berth/
  containerdSocket: /run/k3s/containerd/containerd.sock
  cniPluginDir: /opt/cni/bin:/usr/libexec/cni
  cniPluginDirFromHost: true
  httpBindAddress: "0"
  availabilityZone: zone-a
  attributes: {rack: "7", gpu: nvidia}
  utilizationInterval: 30s
  extraArgs: ["--image-pull-behavior=prefer-cached"]
`,
		want: chartWant{
			agent: true, managerReplicas: 1,
			api:      apiWant{replicas: 2, servicePort: 80, serviceType: "ClusterIP"},
			stateDir: "/data/berth", containerdDir: "/run/k3s/containerd",
			hostPluginDirs: []string{"/opt/cni/bin", "/usr/libexec/cni"},
			agentArgs: []string{
				"--cluster=edge", "--state-dir=/data/berth", "--containerd-address=/run/k3s/containerd/containerd.sock",
				"--cni-plugin-dir=/opt/cni/bin:/usr/libexec/cni", "--http-bind-address=0",
				"--availability-zone=zone-a", "--attribute=gpu=nvidia", "--attribute=rack=7",
				"--image-pull-behavior=prefer-cached", "--berth-binary=/data/berth/bin/berth",
				"--utilization-interval=30s",
			},
		},
	},
	{
		name: "gateway behind a load balancer with an existing Secret",
		values: `
gateway:
  port: 8443
  service: {type: LoadBalancer}
  tls: {existingSecret: gw-tls, caBundle: ` + fmt.Sprintf("%q", testCA) + `}
`,
		want: chartWant{
			agent: true, pdb: true, agentProbe: true, managerReplicas: 2,
			api:      apiWant{replicas: 2, servicePort: 80, serviceType: "ClusterIP"},
			stateDir: "/var/lib/berth", containerdDir: "/run/containerd",
			gateway: gatewayWant{port: 8443, serviceType: "LoadBalancer", existingSecret: "gw-tls"},
		},
	},
	{
		name: "API with TLS behind a load balancer",
		values: `
api:
  replicas: 3
  region: eu-west-3
  accountId: "123456789012"
  logLevel: debug
  tls: {enabled: true, secretName: berth-api-tls}
  service:
    type: LoadBalancer
    annotations: {service.beta.kubernetes.io/aws-load-balancer-internal: "true"}
  extraArgs: ["--kube-api-qps=400"]
`,
		want: chartWant{
			agent: true, pdb: true, agentProbe: true, managerReplicas: 2,
			api: apiWant{replicas: 3, servicePort: 443, serviceType: "LoadBalancer", tlsSecret: "berth-api-tls", args: []string{
				"--region=eu-west-3", "--account-id=123456789012", "--zap-log-level=debug", "--kube-api-qps=400",
			}},
			stateDir: "/var/lib/berth", containerdDir: "/run/containerd",
		},
	},
}

// chartWant is what one value set must render.
type chartWant struct {
	// api is the ECS API; its zero value means api.enabled=false.
	api                        apiWant
	agent, serviceMonitor, pdb bool
	// prometheusRule and dashboard: the PrometheusRule and the dashboard ConfigMap.
	prometheusRule, dashboard bool
	// agentProbe: the agent has a readiness probe on its HTTP endpoint.
	agentProbe      bool
	managerReplicas int32
	// stateDir and containerdDir are the host paths the agent must mount.
	stateDir, containerdDir string
	// hostPluginDirs are CNI plugin directories mounted from the node.
	hostPluginDirs []string
	agentArgs      []string
	gateway        gatewayWant
}

// TestHelmChartLint runs `helm lint --strict` with each value set.
func TestHelmChartLint(t *testing.T) {
	for _, tc := range chartValues {
		t.Run(tc.name, func(t *testing.T) {
			runHelmInput(t, tc.values, "lint", "--strict", chartPath, "--values", "-")
		})
	}
}

// TestHelmChartRender renders the chart with each value set and checks the objects:
// identities and RBAC, the security settings of each component, the agent's access
// to the node, the metrics objects, and that every flag it passes exists.
func TestHelmChartRender(t *testing.T) {
	// Not berth-system, the default of the namespaces Berth's flags name: what must
	// be the release namespace is seen to be.
	const ns = "berth-release"
	for _, tc := range chartValues {
		t.Run(tc.name, func(t *testing.T) {
			objs := decodeDocuments(t, renderChart(t, ns, tc.values))
			c := chartObjects{t: t, ns: ns, objs: objs}
			checkChartIdentities(t, c, tc.want)
			checkChartRBAC(t, c, tc.want)
			checkOnlyAgentPrivileged(t, c, tc.want)
			checkManager(t, c, tc.want)
			checkAPI(t, c, tc.want.api)
			if tc.want.agent {
				checkAgent(t, c, tc.want)
			} else if c.find("DaemonSet", releaseName+"-agent") != nil {
				t.Errorf("agent.enabled=false still renders the DaemonSet")
			}
			checkMetrics(t, c, tc.want)
			checkGateway(t, c, tc.want)
		})
	}
}

// TestHelmChartInstallsOnServer applies the rendered chart, CRDs included, with a
// server-side dry run, so the real apiserver validates every object (unknown fields
// are errors).
func TestHelmChartInstallsOnServer(t *testing.T) {
	kubectl := newKubectl(t)
	for _, tc := range chartValues {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			objs := decodeDocuments(t, renderChart(t, ns, tc.values, "--include-crds"))
			// The test apiserver has no Prometheus Operator: its ServiceMonitor and
			// PrometheusRule are checked by TestHelmChartRender, TestHelmChartAlerts.
			objs = slices.DeleteFunc(objs, func(u *unstructured.Unstructured) bool {
				return u.GroupVersionKind().Group == "monitoring.coreos.com"
			})
			out, err := kubectl.run(t.Context(), "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", testenv.WriteYAML(t, objs...))
			if err != nil {
				t.Fatalf("server-side dry run of the chart failed: %v", err)
			}
			if got := strings.Count(out, "(server dry run)"); got != len(objs) {
				t.Errorf("the apiserver accepted %d objects, want %d:\n%s", got, len(objs), out)
			}
		})
	}
}

// TestHelmChartPodSecurity checks the rendered workloads against the apiserver's own
// Pod Security admission: the manager and the API meet the "restricted" standard, and the
// agent, privileged by necessity, does not (so the check can tell them apart).
func TestHelmChartPodSecurity(t *testing.T) {
	kubectl := newKubectl(t)
	ns := env.Namespace(t)
	nsObj := &corev1.Namespace{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels == nil {
		nsObj.Labels = map[string]string{}
	}
	nsObj.Labels["pod-security.kubernetes.io/warn"] = "restricted"
	nsObj.Labels["pod-security.kubernetes.io/warn-version"] = "latest"
	if err := env.Client.Update(t.Context(), nsObj); err != nil {
		t.Fatalf("labelling namespace %s: %v", ns, err)
	}
	c := chartObjects{t: t, ns: ns, objs: decodeDocuments(t, renderChart(t, ns, ""))}
	tests := []struct {
		kind, name    string
		wantViolation bool
	}{
		{kind: "Deployment", name: releaseName + "-manager", wantViolation: false},
		{kind: "DaemonSet", name: releaseName + "-agent", wantViolation: true},
		{kind: "Deployment", name: releaseName + "-api", wantViolation: false},
	}
	for _, tc := range tests {
		obj := c.get(tc.kind, tc.name)
		t.Run(tc.kind, func(t *testing.T) {
			out, err := kubectl.run(t.Context(), "apply", "--server-side", "--dry-run=server", "-f", testenv.WriteYAML(t, obj))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(out, "would violate PodSecurity"); got != tc.wantViolation {
				t.Errorf("%s %s violates the restricted Pod Security Standard: %v, want %v\n%s", tc.kind, tc.name, got, tc.wantViolation, out)
			}
		})
	}
}

// TestHelmShowValuesDocumented checks that `helm show values` explains every knob: a
// comment right above each top-level key, and a comment naming each second-level key
// in the comment block above it (a comment may cover a few keys that go together).
func TestHelmShowValuesDocumented(t *testing.T) {
	out := runHelm(t, "show", "values", chartPath)
	lines := strings.Split(out, "\n")
	topLevel := 0
	for i, line := range lines {
		key, indent, ok := valuesKey(line)
		if !ok || indent > 2 {
			continue
		}
		block := commentAbove(lines, i, indent)
		switch {
		case indent == 0:
			topLevel++
			if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
				t.Errorf("values.yaml:%d: top-level key %q has no comment right above it", i+1, key)
			}
		case !strings.Contains(block, key):
			t.Errorf("values.yaml:%d: key %q is not named in the comment above it:\n%s", i+1, key, block)
		}
	}
	if topLevel < 5 {
		t.Fatalf("found %d top-level keys in `helm show values`, want at least 5:\n%s", topLevel, out)
	}
}

// TestSystemdUnitAgent checks config/agent/berth-agent.service: it runs `berth agent`
// with flags that `berth agent` accepts (with those of the example agent.env), keeps
// restarting it, and shares the host's mount namespace, which the agent's network
// namespace bind mounts need. systemd-analyze, where installed, parses it too.
func TestSystemdUnitAgent(t *testing.T) {
	unitPath := repoPath("config", "agent", "berth-agent.service")
	unit := parseUnit(t, unitPath)

	wants := []struct{ section, key, want string }{
		{"Service", "Restart", "always"},
		{"Service", "KillMode", "process"},
		{"Service", "EnvironmentFile", "-/etc/berth/agent.env"},
		{"Service", "Environment", "BERTH_AGENT_FLAGS="},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, w := range wants {
		if got := unit.values(w.section, w.key); !slices.Contains(got, w.want) {
			t.Errorf("[%s] %s = %q, want %q among them", w.section, w.key, got, w.want)
		}
	}
	// Each of these gives the unit a mount namespace of its own (or another user or
	// network), which would hide the agent's bind mounts from containerd and runc.
	for _, key := range []string{
		"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "PrivateNetwork",
		"PrivateUsers", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectProc", "ProcSubset", "ReadWritePaths", "ReadOnlyPaths",
		"InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem", "BindPaths",
		"BindReadOnlyPaths", "RootDirectory", "RootImage", "MountFlags", "MountAPIVFS",
		"NetworkNamespacePath", "DynamicUser", "User", "Group",
	} {
		if got := unit.values("Service", key); len(got) > 0 {
			t.Errorf("[Service] sets %s=%q: the agent must run as root in the host's namespaces", key, got)
		}
	}

	execStart := unit.values("Service", "ExecStart")
	if len(execStart) != 1 {
		t.Fatalf("[Service] ExecStart = %q, want exactly one", execStart)
	}
	argv := strings.Fields(execStart[0])
	if len(argv) < 2 || argv[0] != "/usr/local/bin/berth" || argv[1] != "agent" {
		t.Fatalf("ExecStart = %q, want /usr/local/bin/berth agent ...", execStart[0])
	}
	if !slices.Contains(argv, "--kubeconfig=/etc/berth/kubeconfig") {
		t.Errorf("ExecStart = %q lacks --kubeconfig=/etc/berth/kubeconfig", execStart[0])
	}
	// systemd splits an unbraced $VAR into words: expand it as the example file sets it.
	envFile := readEnvFile(t, repoPath("config", "agent", "agent.env"))
	var args []string
	for _, a := range argv[2:] {
		if name, ok := strings.CutPrefix(a, "$"); ok {
			v, set := envFile[name]
			if !set {
				t.Errorf("ExecStart uses $%s, which agent.env does not set", name)
			}
			args = append(args, strings.Fields(v)...)
			continue
		}
		args = append(args, a)
	}
	if err := parseBerthFlags("agent", args); err != nil {
		t.Errorf("`berth agent` rejects the unit's command line %q: %v", args, err)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			testenv.Require(t, "systemd-analyze not found in PATH (apt-get install systemd)")
		}
		// verify wants an executable at ExecStart's path: the test binary stands in.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(t.TempDir(), "berth-agent.service")
		if err := os.WriteFile(copyPath, bytes.ReplaceAll(data, []byte("/usr/local/bin/berth"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		// It exits 0 on most findings: every line about the unit is one.
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "berth-agent.service") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	})
}

// chartObjects are the objects of one rendering.
type chartObjects struct {
	t    *testing.T
	ns   string
	objs []*unstructured.Unstructured
}

func (c chartObjects) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range c.objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// find returns the object or nil.
func (c chartObjects) find(kind, name string) *unstructured.Unstructured {
	for _, u := range c.ofKind(kind) {
		if u.GetName() == name {
			return u
		}
	}
	return nil
}

// get returns the object, failing the test when it was not rendered.
func (c chartObjects) get(kind, name string) *unstructured.Unstructured {
	c.t.Helper()
	u := c.find(kind, name)
	if u == nil {
		c.t.Fatalf("the chart renders no %s %q", kind, name)
	}
	return u
}

// podTemplates are the pod templates of the rendered workloads, by "Kind/name".
func (c chartObjects) podTemplates() map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, u := range c.ofKind("Deployment") {
		out["Deployment/"+u.GetName()] = typed[appsv1.Deployment](c.t, u).Spec.Template
	}
	for _, u := range c.ofKind("DaemonSet") {
		out["DaemonSet/"+u.GetName()] = typed[appsv1.DaemonSet](c.t, u).Spec.Template
	}
	return out
}

// checkChartIdentities: one ServiceAccount per component, used by its workload and
// bound to its ClusterRole; the manager's also to its leader election Role.
func checkChartIdentities(t *testing.T, c chartObjects, want chartWant) {
	components := []string{"manager"}
	if want.agent {
		components = append(components, "agent")
	}
	if want.api.enabled() {
		components = append(components, "api")
	}
	var wantSAs, gotSAs []string
	for _, comp := range components {
		wantSAs = append(wantSAs, releaseName+"-"+comp)
	}
	for _, u := range c.ofKind("ServiceAccount") {
		gotSAs = append(gotSAs, u.GetName())
		if u.GetNamespace() != c.ns {
			t.Errorf("ServiceAccount %s is in namespace %q, want %q", u.GetName(), u.GetNamespace(), c.ns)
		}
	}
	slices.Sort(gotSAs)
	slices.Sort(wantSAs)
	if diff := cmp.Diff(wantSAs, gotSAs); diff != "" {
		t.Errorf("ServiceAccounts (-want +got):\n%s", diff)
	}
	workloads := map[string]string{"manager": "Deployment", "agent": "DaemonSet", "api": "Deployment"}
	templates := c.podTemplates()
	for _, comp := range components {
		sa := releaseName + "-" + comp
		key := workloads[comp] + "/" + releaseName + "-" + comp
		if got := templates[key].Spec.ServiceAccountName; got != sa {
			t.Errorf("%s runs as ServiceAccount %q, want %q", key, got, sa)
		}
		if !boundTo(t, c, "ClusterRoleBinding", "ClusterRole", sa, c.ns, releaseName+"-"+comp) {
			t.Errorf("no ClusterRoleBinding binds ServiceAccount %s to ClusterRole %s-%s", sa, releaseName, comp)
		}
	}
	if !boundTo(t, c, "RoleBinding", "Role", releaseName+"-manager", c.ns, releaseName+"-manager-leader-election") {
		t.Errorf("no RoleBinding binds the manager to its leader election Role")
	}
	if !boundTo(t, c, "RoleBinding", "Role", releaseName+"-manager", c.ns, releaseName+"-manager-client-ca") {
		t.Errorf("no RoleBinding binds the manager to its client CA Role")
	}
	for _, kind := range []string{"Role", "RoleBinding"} {
		if u := c.get(kind, releaseName+"-manager-client-ca"); u.GetNamespace() != "kube-system" {
			t.Errorf("the manager's client CA %s is in namespace %q, want kube-system, where the apiserver publishes that CA", kind, u.GetNamespace())
		}
	}
}

// boundTo tells whether a binding of bindingKind grants role (of roleKind) to the
// ServiceAccount ns/sa.
func boundTo(t *testing.T, c chartObjects, bindingKind, roleKind, sa, ns, role string) bool {
	t.Helper()
	for _, u := range c.ofKind(bindingKind) {
		var ref rbacv1.RoleRef
		var subjects []rbacv1.Subject
		if bindingKind == "ClusterRoleBinding" {
			b := typed[rbacv1.ClusterRoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		} else {
			b := typed[rbacv1.RoleBinding](t, u)
			ref, subjects = b.RoleRef, b.Subjects
		}
		if ref.Kind != roleKind || ref.Name != role {
			continue
		}
		if slices.Contains(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: ns}) {
			return true
		}
	}
	return false
}

// checkChartRBAC: no wildcard anywhere; the roles' rules are exactly the ones
// controller-gen generates from the code (the agent's rendered even without the
// agent, for external agents), and berth-ecs-user's those of
// config/rbac/api/user_role.yaml; the leader election Role allows what leader
// election does.
func checkChartRBAC(t *testing.T, c chartObjects, want chartWant) {
	rolesOf := map[string][]rbacv1.PolicyRule{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range c.ofKind(kind) {
			var rules []rbacv1.PolicyRule
			if kind == "ClusterRole" {
				rules = typed[rbacv1.ClusterRole](t, u).Rules
			} else {
				rules = typed[rbacv1.Role](t, u).Rules
			}
			rolesOf[kind+"/"+u.GetName()] = rules
			if len(rules) == 0 {
				t.Errorf("%s %s has no rules", kind, u.GetName())
			}
			for i, r := range rules {
				for field, values := range map[string][]string{
					"verbs": r.Verbs, "resources": r.Resources, "apiGroups": r.APIGroups,
					"resourceNames": r.ResourceNames, "nonResourceURLs": r.NonResourceURLs,
				} {
					if slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, "*") }) {
						t.Errorf("%s %s rule %d has a wildcard in %s: %q", kind, u.GetName(), i, field, values)
					}
				}
			}
		}
	}
	generated := map[string]string{
		"ClusterRole/" + releaseName + "-manager": repoPath("config", "rbac", "role.yaml"),
		"ClusterRole/" + releaseName + "-agent":   repoPath("config", "rbac", "agent", "role.yaml"),
		// The agent's streaming server reads the cluster's client CA in kube-system.
		"Role/" + releaseName + "-agent-client-ca": repoPath("config", "rbac", "agent", "role.yaml"),
		// The manager's gateway authenticates agents' client certificates with it too.
		"Role/" + releaseName + "-manager-client-ca": repoPath("config", "rbac", "role.yaml"),
	}
	apiRoles := map[string]string{
		"ClusterRole/" + releaseName + "-api":      repoPath("config", "rbac", "api", "role.yaml"),
		"Role/" + releaseName + "-api":             repoPath("config", "rbac", "api", "role.yaml"),
		"ClusterRole/" + releaseName + "-ecs-user": repoPath("config", "rbac", "api", "user_role.yaml"),
	}
	for key, file := range apiRoles {
		if want.api.enabled() {
			generated[key] = file
		} else if _, ok := rolesOf[key]; ok {
			t.Errorf("api.enabled=false still renders %s", key)
		}
	}
	for key, file := range generated {
		got, ok := rolesOf[key]
		if !ok {
			t.Errorf("the chart renders no %s", key)
			continue
		}
		kind, _, _ := strings.Cut(key, "/")
		if diff := cmp.Diff(rulesOfKind(t, file, kind), got); diff != "" {
			t.Errorf("%s differs from %s (run `make manifests`) (-want +got):\n%s", key, file, diff)
		}
	}
	election := rolesOf["Role/"+releaseName+"-manager-leader-election"]
	if !allows(election, "coordination.k8s.io", "leases", "get", "create", "update") {
		t.Errorf("the leader election Role does not allow get, create and update of Leases: %v", election)
	}
}

// allows tells whether one rule of rules grants every verb on group/resource.
func allows(rules []rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
			!slices.ContainsFunc(verbs, func(v string) bool { return !slices.Contains(r.Verbs, v) }) {
			return true
		}
	}
	return false
}

// checkOnlyAgentPrivileged: the agent's container is privileged, and nothing else
// (not even the agent's init container).
func checkOnlyAgentPrivileged(t *testing.T, c chartObjects, want chartWant) {
	var got []string
	for key, tmpl := range c.podTemplates() {
		for _, ctr := range slices.Concat(tmpl.Spec.InitContainers, tmpl.Spec.Containers) {
			if sc := ctr.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				got = append(got, key+"/"+ctr.Name)
			}
		}
	}
	var wantPrivileged []string
	if want.agent {
		wantPrivileged = []string{"DaemonSet/" + releaseName + "-agent/agent"}
	}
	if diff := cmp.Diff(wantPrivileged, got); diff != "" {
		t.Errorf("privileged containers (-want +got):\n%s", diff)
	}
}

// checkManager: non-root, read-only, no capabilities, seccomp; probes and ports that
// match the flags; leader election; flags `berth manager` accepts.
func checkManager(t *testing.T, c chartObjects, want chartWant) {
	d := typed[appsv1.Deployment](t, c.get("Deployment", releaseName+"-manager"))
	if d.Spec.Replicas == nil || *d.Spec.Replicas != want.managerReplicas {
		t.Errorf("manager replicas = %v, want %d", d.Spec.Replicas, want.managerReplicas)
	}
	pod := d.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("manager pod lacks runAsNonRoot: true")
	}
	if sc := pod.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("manager pod lacks seccompProfile RuntimeDefault")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("manager pod has %d containers, want 1", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	sc := ctr.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("manager container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("manager container's root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("manager container allows privilege escalation")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("manager container's capabilities = %+v, want drop ALL and add none", sc.Capabilities)
	}
	if ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("manager container lacks a memory request and limit: %+v", ctr.Resources)
	}
	args := ctr.Args
	for _, a := range []string{"--leader-elect", "--leader-election-namespace=" + c.ns} {
		if !slices.Contains(args, a) {
			t.Errorf("manager args %q lack %s", args, a)
		}
	}
	if len(args) == 0 || args[0] != "manager" {
		t.Fatalf("manager args = %q, want the manager subcommand first", args)
	}
	if err := parseBerthFlags("manager", args[1:]); err != nil {
		t.Errorf("`berth manager` rejects the chart's args %q: %v", args, err)
	}
	// The probes and the metrics Service reach the ports the flags bind.
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for flag, name := range map[string]string{"--health-probe-bind-address": "probes", "--metrics-bind-address": "metrics"} {
		if got, wantPort := flagPort(args, flag), fmt.Sprint(ports[name]); got != wantPort {
			t.Errorf("%s binds port %q, but the container port %q is %s", flag, got, name, wantPort)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "probes" {
			t.Errorf("manager %s probe = %+v, want an HTTP GET on the probes port", name, p)
		}
	}
	pdb := c.find("PodDisruptionBudget", releaseName+"-manager")
	if (pdb != nil) != want.pdb {
		t.Errorf("PodDisruptionBudget rendered: %v, want %v", pdb != nil, want.pdb)
	}
	if pdb != nil {
		sel := typed[policyv1.PodDisruptionBudget](t, pdb).Spec.Selector
		if !selects(t, sel, d.Spec.Template.Labels) {
			t.Errorf("the PodDisruptionBudget's selector %v does not select the manager's pods", sel)
		}
	}
}

// checkAgent: the node's network, no host PID, privileged; the state directory from
// the node at the same path with Bidirectional propagation; every host path at its
// node path; the instance named after the node; flags `berth agent` accepts.
func checkAgent(t *testing.T, c chartObjects, want chartWant) {
	ds := typed[appsv1.DaemonSet](t, c.get("DaemonSet", releaseName+"-agent"))
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("agent pod hostNetwork=%v hostPID=%v hostIPC=%v, want true, false, false", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	i := slices.IndexFunc(pod.Containers, func(ctr corev1.Container) bool { return ctr.Name == "agent" })
	if i < 0 {
		t.Fatalf("the DaemonSet has no agent container")
	}
	ctr := pod.Containers[i]
	if len(ctr.Args) == 0 || ctr.Args[0] != "agent" {
		t.Fatalf("agent args = %q, want the agent subcommand first", ctr.Args)
	}
	for _, a := range want.agentArgs {
		if !slices.Contains(ctr.Args, a) {
			t.Errorf("agent args %q lack %s", ctr.Args, a)
		}
	}
	if err := parseBerthFlags("agent", ctr.Args[1:]); err != nil {
		t.Errorf("`berth agent` rejects the chart's args %q: %v", ctr.Args, err)
	}
	if !slices.Contains(ctr.Args, "--name=$(NODE_NAME)") || !slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool {
		return e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
	}) {
		t.Errorf("the agent is not named after its node (--name=$(NODE_NAME), NODE_NAME from spec.nodeName)")
	}
	if (ctr.ReadinessProbe != nil) != want.agentProbe {
		t.Errorf("agent readiness probe = %+v, want one: %v", ctr.ReadinessProbe, want.agentProbe)
	}

	hostPaths := map[string]corev1.HostPathVolumeSource{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = *v.HostPath
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m
		// The shim, runc and the agent must agree on every path: same on both sides.
		if hp, ok := hostPaths[m.Name]; ok && path.Clean(hp.Path) != path.Clean(m.MountPath) {
			t.Errorf("host path %s is mounted at %s: the agent must see node paths at the node's paths", hp.Path, m.MountPath)
		}
	}
	state, ok := mounts[want.stateDir]
	switch {
	case !ok:
		t.Errorf("the agent does not mount the state directory %s; mounts: %v", want.stateDir, ctr.VolumeMounts)
	case state.MountPropagation == nil || *state.MountPropagation != corev1.MountPropagationBidirectional:
		t.Errorf("state directory mount propagation = %v, want Bidirectional", ptr.Deref(state.MountPropagation, "unset"))
	case hostPaths[state.Name].Path != want.stateDir:
		t.Errorf("state directory volume = %+v, want host path %s", hostPaths[state.Name], want.stateDir)
	}
	for p, m := range mounts {
		if p != want.stateDir && m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("%s is mounted Bidirectional: only the state directory needs it", p)
		}
	}
	if _, ok := mounts[want.containerdDir]; !ok {
		t.Errorf("the agent does not mount containerd's socket directory %s", want.containerdDir)
	}
	for _, d := range want.hostPluginDirs {
		if m, ok := mounts[d]; !ok || !m.ReadOnly {
			t.Errorf("CNI plugin directory %s is not mounted read-only from the node", d)
		}
	}
	if len(want.hostPluginDirs) == 0 {
		if _, ok := mounts["/usr/lib/cni"]; ok {
			t.Errorf("the image's CNI plugin directory is shadowed by a node mount")
		}
	}
}

// checkMetrics: the metrics Service selects the managers' metrics port; the
// ServiceMonitor exists only when enabled, selects the Service and keeps the series'
// own namespace and service labels; the PrometheusRule and the dashboard exist only
// when enabled.
func checkMetrics(t *testing.T, c chartObjects, want chartWant) {
	d := typed[appsv1.Deployment](t, c.get("Deployment", releaseName+"-manager"))
	svcObj := c.get("Service", releaseName+"-manager-metrics")
	svc := typed[corev1.Service](t, svcObj)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("the metrics Service's selector %v does not select the manager's pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("metrics Service ports = %+v, want one targeting the container port \"metrics\"", svc.Spec.Ports)
	}
	sms := c.ofKind("ServiceMonitor")
	if got := len(sms) > 0; got != want.serviceMonitor {
		t.Fatalf("ServiceMonitor rendered: %v, want %v", got, want.serviceMonitor)
	}
	for _, sm := range sms {
		var spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port        string `json:"port"`
				HonorLabels bool   `json:"honorLabels"`
			} `json:"endpoints"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(sm.Object["spec"].(map[string]any), &spec); err != nil {
			t.Fatalf("ServiceMonitor spec: %v", err)
		}
		if !selects(t, &spec.Selector, svcObj.GetLabels()) {
			t.Errorf("the ServiceMonitor's selector %v does not select the metrics Service", spec.Selector)
		}
		if len(spec.Endpoints) != 1 || spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || !spec.Endpoints[0].HonorLabels {
			t.Errorf("ServiceMonitor endpoints = %+v, want the Service's port %q with honorLabels", spec.Endpoints, svc.Spec.Ports[0].Name)
		}
		if sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor labels %v lack metrics.serviceMonitor.labels", sm.GetLabels())
		}
	}
	if got := c.find("PrometheusRule", releaseName) != nil; got != want.prometheusRule {
		t.Errorf("PrometheusRule rendered: %v, want %v", got, want.prometheusRule)
	}
	if got := c.find("ConfigMap", releaseName+"-dashboard") != nil; got != want.dashboard {
		t.Errorf("dashboard ConfigMap rendered: %v, want %v", got, want.dashboard)
	}
}

func selects(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(set))
}

// flagPort is the port of a --flag=host:port argument.
func flagPort(args []string, flag string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v[strings.LastIndex(v, ":")+1:]
		}
	}
	return ""
}

// parseBerthFlags parses args as `berth <command>` would, and reports any flag it does
// not define, a value it rejects, or a positional argument.
func parseBerthFlags(command string, args []string) error {
	cmd, _, err := cli.NewRootCommand().Find([]string{command})
	if err != nil {
		return err
	}
	if cmd.Name() != command {
		return fmt.Errorf("berth has no %q command", command)
	}
	if err := cmd.ParseFlags(args); err != nil {
		return err
	}
	if rest := cmd.Flags().Args(); len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q", rest)
	}
	return nil
}

// typed converts u into T, rejecting fields T does not have.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var obj T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &obj, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &obj
}

// runHelm runs bin/helm from the repository root and returns its standard output.
func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	return runHelmInput(t, "", args...)
}

// runHelmInput is runHelm with stdin (for "--values -").
func runHelmInput(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.BinDir(), "helm"), args...)
	cmd.Dir = testenv.RepoRoot()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// renderChart renders the chart for release "berth" in ns with values over the defaults.
func renderChart(t *testing.T, ns, values string, extra ...string) string {
	t.Helper()
	args := append([]string{"template", releaseName, chartPath, "--namespace", ns, "--values", "-"}, extra...)
	return runHelmInput(t, values, args...)
}

// decodeDocuments decodes every object of a multi-document YAML stream.
func decodeDocuments(t *testing.T, data string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading document %d: %v", i, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("decoding document %d: %v\n%s", i, err, doc)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	if len(objs) == 0 {
		t.Fatalf("no object in:\n%s", data)
	}
	return objs
}

var valuesKeyRE = regexp.MustCompile(`^( *)([A-Za-z][A-Za-z0-9]*):`)

// valuesKey returns the key a line of values.yaml defines and its indentation.
func valuesKey(line string) (key string, indent int, ok bool) {
	m := valuesKeyRE.FindStringSubmatch(line)
	if m == nil {
		return "", 0, false
	}
	return m[2], len(m[1]), true
}

// commentAbove is the nearest block of comment lines at indent above line i, skipping
// the sibling keys (and their values) in between.
func commentAbove(lines []string, i, indent int) string {
	prefix := strings.Repeat(" ", indent) + "#"
	j := i - 1
	for j >= 0 && !strings.HasPrefix(lines[j], prefix) {
		if _, ind, ok := valuesKey(lines[j]); ok && ind < indent {
			return "" // reached the parent key: no comment in between
		}
		j--
	}
	var block []string
	for ; j >= 0 && strings.HasPrefix(lines[j], prefix); j-- {
		block = append(block, lines[j])
	}
	slices.Reverse(block)
	return strings.Join(block, "\n")
}

// unitFile is a parsed systemd unit: values by section and key, in order.
type unitFile map[string]map[string][]string

func (u unitFile) values(section, key string) []string { return u[section][key] }

// parseUnit reads a systemd unit file: sections, Key=Value lines, comments and
// backslash continuations. An empty assignment is kept as "".
func parseUnit(t *testing.T, p string) unitFile {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	var pending string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a section or Key=Value: %q", p, n+1, line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(value))
	}
	return u
}

// readEnvFile reads NAME=value lines as systemd's EnvironmentFile= does, for the
// simple cases: comments, blank lines, and values in double quotes.
func readEnvFile(t *testing.T, p string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s:%d: not NAME=value: %q", p, n+1, line)
		}
		vars[name] = strings.Trim(value, `"`)
	}
	return vars
}
