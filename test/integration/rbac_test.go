package integration

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/berthdev/berth/test/testenv"
)

// Least privilege of the ClusterRoles controller-gen generates from the RBAC markers
// (config/rbac, and the chart's copies in charts/berth/files). Every permission is on
// an explicit allow-list below, with the reason it is needed: a new marker fails
// these tests until the list says why the code needs it.

// wantManagerRules is the manager's ClusterRole, by "group/resource".
var wantManagerRules = map[string][]string{
	"/namespaces":          {"create", "get"}, // creates berth-node-lease, where agents put their Leases
	"/services":            {"get", "list", "watch"},
	"/events":              {"create", "patch"}, // Events for every decision (legacy and events.k8s.io recorders)
	"events.k8s.io/events": {"create", "patch"},
	// Task definition revisions: created and collected by the manager, read by all.
	"apps/controllerrevisions": {"create", "delete", "get", "list", "watch"},
	// Leader election gets, creates and updates its Lease; heartbeats are watched.
	"coordination.k8s.io/leases":              {"create", "get", "list", "update", "watch"},
	"discovery.k8s.io/endpointslices":         {"create", "delete", "get", "list", "update", "watch"},
	"ecs.berth.dev/clusters":                  {"get", "list", "patch", "watch"}, // patch: the deletion finalizer
	"ecs.berth.dev/clusters/status":           {"get", "patch"},
	"ecs.berth.dev/containerinstances":        {"get", "list", "watch"},
	"ecs.berth.dev/containerinstances/status": {"get", "patch"},                  // Connected, status
	"ecs.berth.dev/services":                  {"get", "list", "patch", "watch"}, // patch: the stop-tasks finalizer
	// Owner references with blockOwnerDeletion (tasks and EndpointSlices of a Service).
	"ecs.berth.dev/services/finalizers":    {"update"},
	"ecs.berth.dev/services/scale":         {"update"}, // the auto scaler's desiredCount (controllers/autoscaling)
	"ecs.berth.dev/services/status":        {"get", "patch"},
	"ecs.berth.dev/taskdefinitions":        {"get", "list", "watch"},
	"ecs.berth.dev/taskdefinitions/status": {"get", "patch"},
	"ecs.berth.dev/tasks":                  {"create", "delete", "get", "list", "patch", "watch"}, // services' tasks; binding; stopping; collection
	"ecs.berth.dev/tasks/status":           {"get", "patch"},
	// The agents' read gateway (internal/gateway): the Secrets and ConfigMaps a task
	// bound to the calling agent references, read live by name for that agent, and
	// the agents' tokens, authenticated by the apiserver.
	"/secrets":                           {"get"},
	"/configmaps":                        {"get"},
	"authentication.k8s.io/tokenreviews": {"create"},
}

// wantManagerCARules is the manager's Role in kube-system: the cluster's client CA,
// which the gateway checks agents' client certificates against.
var wantManagerCARules = map[string][]string{
	"/configmaps[extension-apiserver-authentication]": {"get", "list", "watch"},
}

// wantHollowRules is what `berth hollow` reads beside the agent's role: the tasks of
// all the instances it simulates, directly (one identity for many instances).
var wantHollowRules = map[string][]string{
	"apps/controllerrevisions":      {"get", "list", "watch"},
	"ecs.berth.dev/clusters":        {"get", "list", "watch"},
	"ecs.berth.dev/taskdefinitions": {"get", "list", "watch"},
	"ecs.berth.dev/tasks":           {"get", "list", "watch"},
}

// wantAgentRules is the agent's ClusterRole. The admission policy (config/admission)
// narrows its writes to the agent's own objects.
var wantAgentRules = map[string][]string{
	// No reads of Secrets, ConfigMaps, Tasks, TaskDefinitions, ControllerRevisions or
	// Clusters: RBAC cannot say "those of my tasks", so the agent reads them through
	// the manager's gateway, which can.
	//
	// Its heartbeat Lease, renewed with an update.
	"coordination.k8s.io/leases": {"create", "get", "update"},
	// Registration, then its part of the status (server-side apply).
	"ecs.berth.dev/containerinstances":        {"create", "get"},
	"ecs.berth.dev/containerinstances/status": {"get", "patch"},
	// Its tasks' status (server-side apply), without a read.
	"ecs.berth.dev/tasks/status": {"patch"},
	// Delete, never read: a stopped task its service does not keep, instead of
	// reporting STOPPED (the admission policy allows exactly those, and only its own).
	"ecs.berth.dev/tasks": {"delete"},
	// The streaming server (exec, logs; agent/streaming) has the apiserver
	// authenticate its callers' tokens and authorize every request, as the kubelet
	// does, and audits execs as Events on the tasks (the admission policy keeps them
	// to its own reportingInstance).
	"authentication.k8s.io/tokenreviews":        {"create"},
	"authorization.k8s.io/subjectaccessreviews": {"create"},
	"/events": {"create", "patch"},
}

// wantAgentCARules is the agent's Role in kube-system: the cluster's client CA (for
// the streaming server's client certificates), that one ConfigMap only, followed
// with a watch.
var wantAgentCARules = map[string][]string{
	"/configmaps[extension-apiserver-authentication]": {"get", "list", "watch"},
}

// wantAPIRules is `berth api`'s ClusterRole. Every call is made as its caller, so
// the server's own identity needs almost no access to Berth's resources: only the
// reads ecsapi/rbac.go explains, whose answers carry no other namespace's data.
var wantAPIRules = map[string][]string{
	// Whether a shared cluster exists; the tasks bound to an instance in every
	// namespace, before deregistering it without force.
	"ecs.berth.dev/clusters": {"get"},
	"ecs.berth.dev/tasks":    {"list"},
	// Acting as the identity a credential names: a user and its groups, or a
	// ServiceAccount.
	"/users":           {"impersonate"},
	"/groups":          {"impersonate"},
	"/serviceaccounts": {"impersonate"},
	// The INACTIVE records of deleted services, which no user owns.
	"/configmaps": {"create", "delete", "get", "list", "update"},
}

// wantAPISecretsRules is `berth api`'s Role in the credentials' namespace: the
// credential Secrets, watched.
var wantAPISecretsRules = map[string][]string{
	"/secrets": {"get", "list", "watch"},
}

// TestRBACLeastPrivilege checks the generated roles and the chart's copies against
// the allow-lists, and the rules that must hold whatever the lists say.
func TestRBACLeastPrivilege(t *testing.T) {
	apiRole, chartFiles := repoPath("config", "rbac", "api", "role.yaml"), repoPath("charts", "berth", "files")
	roles := []struct {
		kind, name string
		files      []string
		want       map[string][]string
	}{
		{kind: "ClusterRole", name: "berth-manager", files: []string{repoPath("config", "rbac", "role.yaml"), filepath.Join(chartFiles, "manager-role.yaml")}, want: wantManagerRules},
		{kind: "ClusterRole", name: "berth-agent", files: []string{repoPath("config", "rbac", "agent", "role.yaml"), filepath.Join(chartFiles, "agent-role.yaml")}, want: wantAgentRules},
		{kind: "Role", name: "berth-manager", files: []string{repoPath("config", "rbac", "role.yaml"), filepath.Join(chartFiles, "manager-ca-role.yaml")}, want: wantManagerCARules},
		{kind: "ClusterRole", name: "berth-hollow", files: []string{repoPath("config", "rbac", "hollow", "role.yaml")}, want: wantHollowRules},
		{kind: "Role", name: "berth-agent", files: []string{repoPath("config", "rbac", "agent", "role.yaml"), filepath.Join(chartFiles, "agent-ca-role.yaml")}, want: wantAgentCARules},
		{kind: "ClusterRole", name: "berth-api", files: []string{apiRole, filepath.Join(chartFiles, "api-role.yaml")}, want: wantAPIRules},
		{kind: "Role", name: "berth-api", files: []string{apiRole, filepath.Join(chartFiles, "api-secrets-role.yaml")}, want: wantAPISecretsRules},
	}
	for _, role := range roles {
		for _, file := range role.files {
			t.Run(role.kind+" in "+strings.TrimPrefix(file, testenv.RepoRoot()+"/"), func(t *testing.T) {
				rules := roleRules(t, file, role.kind, role.name)
				got := verbsByResource(t, rules)
				if diff := gocmp.Diff(role.want, got); diff != "" {
					t.Errorf("permissions differ from the allow-list: a new one must be justified in %s (-want +got):\n%s", "test/integration/rbac_test.go", diff)
				}
				checkRuleInvariants(t, role.kind+"/"+role.name, got)
			})
		}
	}
}

// roleRules returns the rules of the one object of kind in file, which must be
// named name and, for a ClusterRole, aggregate nothing.
func roleRules(t *testing.T, file, kind, name string) []rbacv1.PolicyRule {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range readManifests(t, file) {
		if u.GetKind() == kind {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want one", len(found), kind)
	}
	if found[0].GetName() != name {
		t.Errorf("%s %q, want %q", kind, found[0].GetName(), name)
	}
	if kind == "Role" {
		return typed[rbacv1.Role](t, found[0]).Rules
	}
	cr := typed[rbacv1.ClusterRole](t, found[0])
	if cr.AggregationRule != nil {
		t.Errorf("ClusterRole %q aggregates %v, want no aggregation", cr.Name, cr.AggregationRule)
	}
	return cr.Rules
}

// checkRuleInvariants: what the issue requires of each role, independently of the
// allow-lists (so editing a list cannot quietly give these away).
func checkRuleInvariants(t *testing.T, role string, got map[string][]string) {
	t.Helper()
	has := func(resource string, verbs ...string) bool {
		return slices.ContainsFunc(verbs, func(v string) bool { return slices.Contains(got[resource], v) })
	}
	switch role {
	case "ClusterRole/berth-api":
		// Its calls act as the caller: its own identity never writes Berth's
		// objects, and reads Secrets only in the credentials' namespace.
		for key, verbs := range got {
			writes := slices.ContainsFunc(verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" })
			if (strings.HasPrefix(key, "ecs.berth.dev/") && writes) || key == "/secrets" {
				t.Errorf("the API's own identity has %v on %s", verbs, key)
			}
		}
	case "Role/berth-api":
		if has("/secrets", "create", "update", "patch", "delete", "deletecollection") {
			t.Errorf("the API may write credential Secrets: %v", got["/secrets"])
		}
	case "ClusterRole/berth-manager":
		// The gateway reads the Secrets agents' tasks reference by name; it never
		// lists, watches or caches them.
		if !slices.Equal(got["/secrets"], []string{"get"}) {
			t.Errorf("the manager's access to Secrets is %v, want get only (never list or watch)", got["/secrets"])
		}
	case "ClusterRole/berth-agent":
		for _, r := range []string{"/secrets", "/configmaps", "ecs.berth.dev/taskdefinitions", "apps/controllerrevisions"} {
			if _, ok := got[r]; ok {
				t.Errorf("the agent may read %s (%v): it reads what its tasks need through the manager's gateway", r, got[r])
			}
		}
		if has("ecs.berth.dev/tasks", "get", "list", "watch") {
			t.Errorf("the agent may read tasks (%v): it reads its own through the manager's gateway", got["ecs.berth.dev/tasks"])
		}
		if has("ecs.berth.dev/tasks", "create", "update", "patch", "deletecollection") {
			t.Errorf("the agent may write tasks (not only their status, or delete one): %v", got["ecs.berth.dev/tasks"])
		}
		if has("ecs.berth.dev/containerinstances", "update", "patch", "delete", "deletecollection") {
			t.Errorf("the agent may change or delete container instances: %v", got["ecs.berth.dev/containerinstances"])
		}
		if has("coordination.k8s.io/leases", "delete", "deletecollection") {
			t.Errorf("the agent may delete Leases: %v", got["coordination.k8s.io/leases"])
		}
	}
}

// verbsByResource flattens rules into sorted verbs by "group/resource" (with
// "[name,...]" appended for rules narrowed to resourceNames), failing on wildcards
// and non-resource URLs (markers never need them).
func verbsByResource(t *testing.T, rules []rbacv1.PolicyRule) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, r := range rules {
		for field, values := range map[string][]string{"verbs": r.Verbs, "resources": r.Resources, "apiGroups": r.APIGroups} {
			if slices.ContainsFunc(values, func(v string) bool { return strings.Contains(v, "*") }) {
				t.Errorf("rule %d has a wildcard in %s: %q", i, field, values)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %d has nonResourceURLs %q", i, r.NonResourceURLs)
		}
		names := ""
		if len(r.ResourceNames) > 0 {
			names = "[" + strings.Join(r.ResourceNames, ",") + "]"
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := g + "/" + res + names
				for _, v := range r.Verbs {
					if !slices.Contains(out[key], v) {
						out[key] = append(out[key], v)
					}
				}
				slices.Sort(out[key])
			}
		}
	}
	return out
}

// TestRBACAsAuthorized asks the apiserver what the generated roles, bound as `berth
// up` and the chart bind them, allow: the manager reads no Secret, the agent reads
// Secrets and ConfigMaps by name only and writes no task, the ECS API impersonates
// and reads the credential Secrets of its namespace but touches no Berth object
// itself.
func TestRBACAsAuthorized(t *testing.T) {
	ctx := t.Context()
	ns := env.Namespace(t)
	for _, file := range []string{repoPath("config", "rbac", "role.yaml"), repoPath("config", "rbac", "agent", "role.yaml")} {
		if err := testenv.Apply(ctx, env.Client, readManifests(t, file)[0], "berth-test"); err != nil {
			t.Fatal(err)
		}
	}
	// The API's Role goes into the credentials' namespace: ns here.
	for _, u := range readManifests(t, repoPath("config", "rbac", "api", "role.yaml")) {
		if u.GetKind() == "Role" {
			u.SetNamespace(ns)
		}
		if err := testenv.Apply(ctx, env.Client, u, "berth-test"); err != nil {
			t.Fatal(err)
		}
	}
	api := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "berth-api"}
	bindClusterRole(t, "berth-api", "berth-test-rbac-api-"+ns, []rbacv1.Subject{api}, nil)
	apiSecrets := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-test-rbac-api", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "berth-api"},
		Subjects:   []rbacv1.Subject{api},
	}
	if err := env.Client.Create(ctx, apiSecrets); err != nil {
		t.Fatal(err)
	}
	manager := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "berth-manager"}
	agent := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "berth:agent:worker-1"}
	bindClusterRole(t, "berth-manager", "berth-test-rbac-manager-"+ns, []rbacv1.Subject{manager}, nil)
	bindClusterRole(t, "berth-agent", "berth-test-rbac-agent-"+ns, []rbacv1.Subject{agent}, nil)

	tests := []accessCheck{
		{manager.Name, "get", "ecs.berth.dev", "tasks", true}, // the bindings are in force
		{manager.Name, "get", "", "secrets", true},
		{manager.Name, "list", "", "secrets", false},
		{manager.Name, "watch", "", "secrets", false},
		{manager.Name, "delete", "coordination.k8s.io", "leases", false},
		{agent.Name, "create", "ecs.berth.dev", "containerinstances", true}, // the bindings are in force
		{agent.Name, "get", "", "secrets", false},
		{agent.Name, "get", "", "configmaps", false},
		{agent.Name, "get", "ecs.berth.dev", "tasks", false},
		{agent.Name, "list", "ecs.berth.dev", "tasks", false},
		{agent.Name, "list", "", "secrets", false},
		{agent.Name, "watch", "", "secrets", false},
		{agent.Name, "list", "", "configmaps", false},
		{agent.Name, "create", "ecs.berth.dev", "tasks", false},
		// RBAC allows it; the admission policy allows only the stopped tasks bound to the
		// agent that their service does not keep (admission_test.go).
		{agent.Name, "delete", "ecs.berth.dev", "tasks", true},
		{agent.Name, "deletecollection", "ecs.berth.dev", "tasks", false},
		{agent.Name, "patch", "ecs.berth.dev", "tasks", false},
		{agent.Name, "delete", "ecs.berth.dev", "containerinstances", false},
		{agent.Name, "create", "", "pods", false},
		{agent.Name, "impersonate", "", "users", false},
		{api.Name, "impersonate", "", "users", true},
		{api.Name, "impersonate", "", "serviceaccounts", true},
		{api.Name, "watch", "", "secrets", true},
		{api.Name, "create", "", "secrets", false},
		{api.Name, "get", "ecs.berth.dev", "tasks", false},
		{api.Name, "create", "ecs.berth.dev", "services", false},
		{api.Name, "delete", "ecs.berth.dev", "clusters", false},
	}
	// What is allowed first, with a wait until the bindings are in force, so that what
	// is denied is denied by bindings in force, not by bindings not seen yet.
	slices.SortStableFunc(tests, func(a, b accessCheck) int { return cmp.Compare(b2i(b.want), b2i(a.want)) })
	for _, tc := range tests {
		name := tc.user + " " + tc.verb + " " + strings.TrimSuffix(tc.resource+"."+tc.group, ".")
		t.Run(name, func(t *testing.T) {
			check := func() error {
				r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: tc.user, Groups: []string{"system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: tc.verb, Group: tc.group, Resource: tc.resource},
				}}
				if err := env.Client.Create(ctx, r); err != nil {
					return err
				}
				if r.Status.Allowed != tc.want {
					return fmt.Errorf("allowed = %v, want %v (%s)", r.Status.Allowed, tc.want, r.Status.Reason)
				}
				return nil
			}
			if tc.want {
				testenv.Eventually(t, name, check)
			} else if err := check(); err != nil {
				t.Error(err)
			}
		})
	}
}

// accessCheck is whether user may verb group/resource.
type accessCheck struct {
	user                  string
	verb, group, resource string
	want                  bool
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
