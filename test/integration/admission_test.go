package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/agentidentity"
	"github.com/berthdev/berth/test/testenv"
)

// Tests of the admission policy that restricts each Berth agent to its own container
// instance (config/admission, rendered by the Helm chart too; docs/security.md). Every
// identity form an agent can have acts as instance worker-1 against a real apiserver
// with the generated berth-agent ClusterRole: each allowed write succeeds and each
// forbidden one is denied, by RBAC where the role already forbids it and otherwise by
// the policy with its stable message. The same identities with a deliberately broad
// role show that the policy alone denies every forbidden write.

const (
	// policyName is the policy's and its binding's name in config/admission.
	policyName = "berth-agent"
	// configDaemonSetUser is the chart's agent ServiceAccount, for a release "berth" in
	// berth-system, as config/admission names it; the chart and these tests put their
	// own in its place.
	configDaemonSetUser = "system:serviceaccount:berth-system:berth-agent"
	// overprivilegedGroup is bound to a role that allows every write the policy forbids.
	overprivilegedGroup = "berth-test:overprivileged"
	nodeNameExtra       = "authentication.kubernetes.io/node-name"
)

// agentAction is one write (or read) an agent acting for worker-1 attempts.
type agentAction struct {
	name string
	do   func(ctx context.Context, c client.Client, ns string) error
	// rbac is the denial of the generated berth-agent ClusterRole, when it already
	// forbids the action ({user} and {ns} stand for the identity and the namespace).
	rbac string
	// policy is the policy's message for the action; "" when the action is allowed.
	policy string
}

// Objects the actions work on: worker-2 is another agent's instance; the tasks live
// in the test's namespace.
const (
	ownInstance   = "worker-1"
	otherInstance = "worker-2"
	newInstance   = "worker-3"
	taskHere      = "bound-here"
	taskThere     = "bound-there"
	taskUnbound   = "unbound"
	// taskMarkedThere is a stopped task bound to worker-2 that its service does not
	// keep: worker-2's agent may delete it, worker-1's may not.
	taskMarkedThere = "marked-there"
	// managerLease stands for the manager's leader election Lease (and any other Lease
	// of the cluster): the agent ClusterRole's lease rights are cluster-wide.
	managerLease = "berth-manager.ecs.berth.dev"
)

var allowedActions = []agentAction{
	{name: "register its own instance", do: func(ctx context.Context, c client.Client, _ string) error {
		return c.Create(ctx, instance(ownInstance))
	}},
	{name: "write its own instance's status", do: func(ctx context.Context, c client.Client, _ string) error {
		return c.Status().Patch(ctx, instance(ownInstance), mergePatch(`{"status":{"runningTasksCount":1}}`))
	}},
	{name: "create its own heartbeat Lease", do: func(ctx context.Context, c client.Client, _ string) error {
		return c.Create(ctx, lease(ecsv1alpha1.NodeLeaseNamespace, ownInstance))
	}},
	{name: "renew its own heartbeat Lease", do: func(ctx context.Context, c client.Client, _ string) error {
		return renew(ctx, c, ecsv1alpha1.NodeLeaseNamespace, ownInstance)
	}},
	{name: "write the status of a task bound to it", do: func(ctx context.Context, c client.Client, ns string) error {
		return c.Status().Patch(ctx, task(ns, taskHere, ""), mergePatch(`{"status":{"lastStatus":"PENDING"}}`))
	}},
	// Instead of reporting STOPPED, a task its service does not keep (the service
	// scheduler created this one as the administrator).
	{name: "delete a stopped task bound to it that its service does not keep", do: func(ctx context.Context, c client.Client, ns string) error {
		t := markedTask(ns, "", ownInstance)
		if err := env.Client.Create(ctx, t); err != nil {
			return fmt.Errorf("creating it as the administrator: %w", err)
		}
		return c.Delete(ctx, t)
	}},
	// The streaming server (exec, logs): audit Events, and asking who a caller is and
	// what it may do.
	{name: "record an Event as its own instance", do: func(ctx context.Context, c client.Client, ns string) error {
		return c.Create(ctx, auditEvent(ns, ownInstance))
	}},
	{name: "review a token", do: func(ctx context.Context, c client.Client, _ string) error {
		return c.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}})
	}},
	{name: "review a caller's access", do: func(ctx context.Context, c client.Client, ns string) error {
		return c.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: "alice",
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "exec", Group: "ecs.berth.dev", Resource: "tasks", Name: taskHere}}})
	}},
}

// auditEvent is an exec audit Event on taskHere reported by instance.
func auditEvent(ns, instance string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, GenerateName: taskHere + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "Task", APIVersion: ecsv1alpha1.GroupVersion.String(), Namespace: ns, Name: taskHere},
		Reason:         "ExecCommand", Message: "alice ran [\"ls\"] in container app", Type: corev1.EventTypeNormal,
		Source:              corev1.EventSource{Component: "berth-agent", Host: instance},
		ReportingController: "berth-agent", ReportingInstance: instance,
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
	}
}

var forbiddenActions = []agentAction{
	{
		name: "register another instance",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Create(ctx, instance(newInstance))
		},
		policy: "berth agent worker-1 may only register and write its own container instance worker-1, not worker-3",
	},
	{
		name: "write another instance's status",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Status().Patch(ctx, instance(otherInstance), mergePatch(`{"status":{"runningTasksCount":0}}`))
		},
		policy: "berth agent worker-1 may only register and write its own container instance worker-1, not worker-2",
	},
	{
		name: "drain its own instance (spec)",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Patch(ctx, instance(ownInstance), mergePatch(`{"spec":{"draining":true}}`))
		},
		rbac:   `containerinstances.ecs.berth.dev "worker-1" is forbidden: User "{user}" cannot patch resource "containerinstances" in API group "ecs.berth.dev" at the cluster scope`,
		policy: "berth agent worker-1 may only write the status of container instance worker-1: its spec, labels and annotations are the operator's",
	},
	{
		name: "delete its own instance",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Delete(ctx, instance(ownInstance))
		},
		rbac:   `containerinstances.ecs.berth.dev "worker-1" is forbidden: User "{user}" cannot delete resource "containerinstances" in API group "ecs.berth.dev" at the cluster scope`,
		policy: "berth agent worker-1 may not delete container instance worker-1: deregistering an instance is an operator's action",
	},
	{
		name: "delete another instance",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Delete(ctx, instance(otherInstance))
		},
		rbac:   `containerinstances.ecs.berth.dev "worker-2" is forbidden: User "{user}" cannot delete resource "containerinstances" in API group "ecs.berth.dev" at the cluster scope`,
		policy: "berth agent worker-1 may not delete container instance worker-2: deregistering an instance is an operator's action",
	},
	{
		name: "create another instance's Lease",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Create(ctx, lease(ecsv1alpha1.NodeLeaseNamespace, newInstance))
		},
		policy: "berth agent worker-1 may only write its own heartbeat Lease berth-node-lease/worker-1, not berth-node-lease/worker-3",
	},
	{
		name: "renew another instance's Lease",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return renew(ctx, c, ecsv1alpha1.NodeLeaseNamespace, otherInstance)
		},
		policy: "berth agent worker-1 may only write its own heartbeat Lease berth-node-lease/worker-1, not berth-node-lease/worker-2",
	},
	{
		name: "take over the manager's leader election Lease",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return renew(ctx, c, ns, managerLease)
		},
		policy: "berth agent worker-1 may only write its own heartbeat Lease berth-node-lease/worker-1, not {ns}/" + managerLease,
	},
	{
		name: "delete its own Lease",
		do: func(ctx context.Context, c client.Client, _ string) error {
			return c.Delete(ctx, lease(ecsv1alpha1.NodeLeaseNamespace, ownInstance))
		},
		rbac:   `leases.coordination.k8s.io "worker-1" is forbidden: User "{user}" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "berth-node-lease"`,
		policy: "berth agent worker-1 may not delete Lease berth-node-lease/worker-1",
	},
	{
		name: "create a task bound to itself",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Create(ctx, task(ns, "made-by-agent", ownInstance))
		},
		rbac:   `tasks.ecs.berth.dev is forbidden: User "{user}" cannot create resource "tasks" in API group "ecs.berth.dev" in the namespace "{ns}"`,
		policy: "berth agent worker-1 may not create tasks",
	},
	{
		name: "delete a task bound to it that is not marked deleteWhenStopped",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Delete(ctx, task(ns, taskHere, ""))
		},
		policy: "berth agent worker-1 may delete only the stopped tasks bound to it that their service does not keep " +
			"(spec.deleteWhenStopped with desiredStatus STOPPED); task bound-here is not marked deleteWhenStopped",
	},
	{
		name: "delete a marked task bound to worker-2",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Delete(ctx, task(ns, taskMarkedThere, ""))
		},
		policy: "berth agent worker-1 may delete only the stopped tasks bound to it that their service does not keep " +
			"(spec.deleteWhenStopped with desiredStatus STOPPED); task marked-there is bound to worker-2",
	},
	{
		name: "bind an unbound task to itself (spec)",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Patch(ctx, task(ns, taskUnbound, ""), mergePatch(`{"spec":{"containerInstance":"worker-1"}}`))
		},
		rbac:   `tasks.ecs.berth.dev "unbound" is forbidden: User "{user}" cannot patch resource "tasks" in API group "ecs.berth.dev" in the namespace "{ns}"`,
		policy: "berth agent worker-1 may only write the status of tasks, not their spec or metadata",
	},
	{
		name: "update a task bound to it (main resource)",
		do: func(ctx context.Context, c client.Client, ns string) error {
			// Read as the administrator: an agent may not get tasks (it watches its
			// own through the manager's gateway).
			t := &ecsv1alpha1.Task{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: taskHere}, t); err != nil {
				return err
			}
			t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
			return c.Update(ctx, t)
		},
		rbac:   `tasks.ecs.berth.dev "bound-here" is forbidden: User "{user}" cannot update resource "tasks" in API group "ecs.berth.dev" in the namespace "{ns}"`,
		policy: "berth agent worker-1 may only write the status of tasks, not their spec or metadata",
	},
	{
		name: "write the status of a task bound to worker-2",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Status().Patch(ctx, task(ns, taskThere, ""), mergePatch(`{"status":{"lastStatus":"STOPPED"}}`))
		},
		policy: "berth agent worker-1 may only write the status of tasks bound to it (task is bound to worker-2)",
	},
	{
		name: "write the status of an unbound task",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Status().Patch(ctx, task(ns, taskUnbound, ""), mergePatch(`{"status":{"lastStatus":"STOPPED"}}`))
		},
		policy: "berth agent worker-1 may only write the status of tasks bound to it (task is not bound to an instance)",
	},
	{
		name: "record an Event as another instance",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Create(ctx, auditEvent(ns, otherInstance))
		},
		policy: "berth agent worker-1 may only create and patch Events whose reportingInstance is worker-1",
	},
	{
		name: "create a Secret",
		do: func(ctx context.Context, c client.Client, ns string) error {
			return c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "planted"}})
		},
		rbac:   `secrets is forbidden: User "{user}" cannot create resource "secrets" in API group "" in the namespace "{ns}"`,
		policy: "berth agent worker-1 may not create secrets: agents write only their own ContainerInstance, their heartbeat Lease, the status of the tasks bound to them and their Events",
	},
	{
		name: "create a TaskDefinition",
		do: func(ctx context.Context, c client.Client, ns string) error {
			td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "planted"}}
			td.Spec.ContainerDefinitions = []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "busybox", Memory: ptr.To[int32](64)}}
			return c.Create(ctx, td)
		},
		rbac:   `taskdefinitions.ecs.berth.dev is forbidden: User "{user}" cannot create resource "taskdefinitions" in API group "ecs.berth.dev" in the namespace "{ns}"`,
		policy: "berth agent worker-1 may not create taskdefinitions.ecs.berth.dev: agents write only their own ContainerInstance, their heartbeat Lease, the status of the tasks bound to them and their Events",
	},
}

// agentIdentity is one way an agent authenticates.
type agentIdentity struct {
	name string
	// user is the user name the apiserver gives it.
	user   string
	config *rest.Config
}

// TestAgentAdmissionPolicy runs every action as every agent identity form, first with
// the generated ClusterRole, then with a broad one.
func TestAgentAdmissionPolicy(t *testing.T) {
	ctx := t.Context()
	ns, daemonSetUser := policyNamespace(t)
	setupAgentWorld(t, ns)

	// The generated role, as deployed: real ServiceAccount tokens for the two
	// ServiceAccount forms; the certificate's user and group by impersonation (what
	// the apiserver takes from a client certificate's CN and O).
	podToken := serviceAccountToken(t, ns, "berth-agent", ownInstance)
	external := serviceAccountToken(t, ns, "berth-agent-"+ownInstance, "")
	asGenerated := []agentIdentity{
		{name: "certificate", user: "berth:agent:worker-1", config: impersonate("berth:agent:worker-1", []string{"berth:agents"}, nil)},
		{name: "DaemonSet token bound to node worker-1", user: daemonSetUser, config: podToken},
		{name: "external ServiceAccount", user: "system:serviceaccount:" + ns + ":berth-agent-worker-1", config: external},
	}
	bindClusterRole(t, "berth-agent", "berth-test-agent-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "berth:agent:worker-1"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "berth-agent"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "berth-agent-worker-1"},
	}, asGenerated)

	for _, id := range asGenerated {
		t.Run("generated role/"+id.name, func(t *testing.T) {
			c := clientFor(t, id.config)
			resetOwnInstance(t)
			for _, a := range allowedActions {
				if err := a.do(ctx, c, ns); err != nil {
					t.Errorf("%s: %v, want allowed", a.name, err)
				}
			}
			var denials []string
			for _, a := range forbiddenActions {
				err := a.do(ctx, c, ns)
				if a.rbac != "" {
					want := strings.NewReplacer("{user}", id.user, "{ns}", ns).Replace(a.rbac)
					if err == nil || err.Error() != want {
						t.Errorf("%s: got %v\nwant RBAC's denial %s", a.name, err, want)
					}
				} else {
					checkPolicyDenial(t, a, ns, err)
				}
				if err != nil {
					denials = append(denials, fmt.Sprintf("| %s | %s |", a.name, strings.ReplaceAll(err.Error(), ns, "<ns>")))
				}
			}
			checkSpecThroughStatus(t, c, ns)
			t.Logf("denials of %s:\n%s", id.name, strings.Join(denials, "\n"))
		})
	}

	// Reads: the generated role allows none of Secrets, ConfigMaps, Tasks and their
	// definitions; the agent reads what its tasks need through the manager's gateway
	// (test/integration/gateway_test.go).
	t.Run("reads", func(t *testing.T) {
		c := clientFor(t, asGenerated[0].config)
		for _, obj := range []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}, &ecsv1alpha1.Task{}, &ecsv1alpha1.TaskDefinition{}} {
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db"}, obj); !apierrors.IsForbidden(err) {
				t.Errorf("getting a %T by name: %v, want Forbidden", obj, err)
			}
		}
		for _, list := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &ecsv1alpha1.TaskList{}, &appsv1.ControllerRevisionList{}} {
			if err := c.List(ctx, list); !apierrors.IsForbidden(err) {
				t.Errorf("listing %T: %v, want Forbidden", list, err)
			}
		}
	})

	// The same identities bound to a role that allows everything the policy forbids
	// (an agent given too much RBAC): the policy alone denies every forbidden write.
	bindClusterRole(t, overprivilegedRole(t), "berth-test-overprivileged-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: overprivilegedGroup},
	}, nil)
	saGroups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, overprivilegedGroup}
	asOverprivileged := []agentIdentity{
		{name: "certificate", user: "berth:agent:worker-1",
			config: impersonate("berth:agent:worker-1", []string{"berth:agents", overprivilegedGroup}, nil)},
		{name: "DaemonSet token bound to node worker-1", user: daemonSetUser,
			config: impersonate(daemonSetUser, saGroups, map[string][]string{nodeNameExtra: {ownInstance}})},
		{name: "external ServiceAccount", user: "system:serviceaccount:" + ns + ":berth-agent-worker-1",
			config: impersonate("system:serviceaccount:"+ns+":berth-agent-worker-1", saGroups, nil)},
	}
	for _, id := range asOverprivileged {
		waitAllowed(t, id, "delete", "ecs.berth.dev", "tasks")
	}
	for _, id := range asOverprivileged {
		t.Run("broad role/"+id.name, func(t *testing.T) {
			c := clientFor(t, id.config)
			resetOwnInstance(t)
			for _, a := range allowedActions {
				if err := a.do(ctx, c, ns); err != nil {
					t.Errorf("%s: %v, want allowed", a.name, err)
				}
			}
			for _, a := range forbiddenActions {
				checkPolicyDenial(t, a, ns, a.do(ctx, c, ns))
			}
			checkSpecThroughStatus(t, c, ns)
		})
	}
}

// TestAgentAdmissionPolicyIdentities: identities that look like agents but name no
// instance may write nothing; administrators and the manager are not restricted.
func TestAgentAdmissionPolicyIdentities(t *testing.T) {
	ctx := t.Context()
	ns, daemonSetUser := policyNamespace(t)
	setupAgentWorld(t, ns)
	bindClusterRole(t, overprivilegedRole(t), "berth-test-overprivileged-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: overprivilegedGroup},
	}, nil)
	bindClusterRole(t, "berth-agent", "berth-test-agent-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "berth-agent"},
	}, nil)
	manager := readManifests(t, repoPath("config", "rbac", "role.yaml"))[0]
	if err := testenv.Apply(ctx, env.Client, manager, "berth-test"); err != nil {
		t.Fatal(err)
	}
	bindClusterRole(t, "berth-manager", "berth-test-manager-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "berth-manager"},
	}, nil)
	resetOwnInstance(t)
	if err := env.Client.Create(ctx, instance(ownInstance)); err != nil {
		t.Fatal(err)
	}

	unbound := serviceAccountToken(t, ns, "berth-agent", "")
	writeOwnStatus := func(ctx context.Context, c client.Client) error {
		return c.Status().Patch(ctx, instance(ownInstance), mergePatch(`{"status":{"runningTasksCount":2}}`))
	}
	tests := []struct {
		name   string
		config *rest.Config
		write  func(context.Context, client.Client) error
		// wantDenied is the policy's message, or "" when the write is allowed.
		wantDenied string
	}{
		{
			name:       "DaemonSet ServiceAccount with a token bound to no pod",
			config:     unbound,
			write:      writeOwnStatus,
			wantDenied: "berth agent identity " + daemonSetUser + " names no container instance: agents authenticate as berth:agent:<instance>, as the ServiceAccount berth-agent-<instance>, or as the DaemonSet's ServiceAccount with a token bound to a pod on their node",
		},
		{
			name:       "member of berth:agents under another name",
			config:     impersonate("mallory", []string{"berth:agents", overprivilegedGroup}, nil),
			write:      writeOwnStatus,
			wantDenied: "berth agent identity mallory names no container instance: agents authenticate as berth:agent:<instance>, as the ServiceAccount berth-agent-<instance>, or as the DaemonSet's ServiceAccount with a token bound to a pod on their node",
		},
		{
			name:       "certificate of another instance",
			config:     impersonate("berth:agent:worker-2", []string{"berth:agents", overprivilegedGroup}, nil),
			write:      writeOwnStatus,
			wantDenied: "berth agent worker-2 may only register and write its own container instance worker-2, not worker-1",
		},
		{
			name:   "manager",
			config: impersonate("berth-manager", nil, nil),
			write: func(ctx context.Context, c client.Client) error {
				return c.Status().Patch(ctx, task(ns, taskThere, ""), mergePatch(`{"status":{"lastStatus":"PENDING"}}`))
			},
		},
		{
			name:   "administrator",
			config: env.Config,
			write: func(ctx context.Context, c client.Client) error {
				return c.Delete(ctx, instance(ownInstance))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write(ctx, clientFor(t, tc.config))
			if tc.wantDenied == "" {
				if err != nil {
					t.Errorf("got %v, want allowed", err)
				}
				return
			}
			checkPolicyDenial(t, agentAction{name: tc.name, policy: tc.wantDenied}, ns, err)
		})
	}
}

// TestAgentAdmissionPolicyFailClosed: the policy denies when it cannot decide (an
// expression that fails, or a policy the apiserver cannot evaluate), and its binding
// denies rather than warns or audits.
func TestAgentAdmissionPolicyFailClosed(t *testing.T) {
	policy, binding := agentPolicyObjects(t, configDaemonSetUser)
	if got := ptr.Deref(policy.Spec.FailurePolicy, ""); got != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy = %q, want Fail", got)
	}
	if diff := cmp.Diff([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}, binding.Spec.ValidationActions); diff != "" {
		t.Errorf("validationActions (-want +got):\n%s", diff)
	}
	if binding.Spec.PolicyName != policy.Name || binding.Spec.MatchResources != nil || binding.Spec.ParamRef != nil {
		t.Errorf("binding %+v does not bind policy %s everywhere", binding.Spec, policy.Name)
	}
	for _, v := range policy.Spec.Validations {
		if v.Reason == nil || *v.Reason != metav1.StatusReasonForbidden || v.Message == "" || v.MessageExpression == "" {
			t.Errorf("validation %q lacks reason Forbidden, a message or a message expression", v.Expression)
		}
	}
}

// TestAgentAdmissionPolicyInChart: the chart renders config/admission, with its own
// names and labels and its release's agent ServiceAccount, also without the agent's
// DaemonSet, and nothing when admissionPolicy.enabled is false.
func TestAgentAdmissionPolicyInChart(t *testing.T) {
	tests := []struct {
		name, release, ns, values string
		// wantUser is the DaemonSet's ServiceAccount the rendering names; "" for no policy.
		wantUser string
	}{
		{name: "defaults", release: "berth", ns: "berth-system", wantUser: configDaemonSetUser},
		{name: "another release and namespace", release: "edge", ns: "ops", wantUser: "system:serviceaccount:ops:edge-berth-agent"},
		{name: "agent off", release: "berth", ns: "berth-system", values: "agent: {enabled: false}", wantUser: configDaemonSetUser},
		{name: "policy off", release: "berth", ns: "berth-system", values: "admissionPolicy: {enabled: false}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := runHelmInput(t, tc.values, "template", tc.release, chartPath, "--namespace", tc.ns, "--values", "-")
			var got []*unstructured.Unstructured
			for _, u := range decodeDocuments(t, out) {
				if strings.HasPrefix(u.GetKind(), "ValidatingAdmissionPolicy") && strings.HasSuffix(u.GetName(), "-agent") {
					got = append(got, u)
				}
			}
			if tc.wantUser == "" {
				if len(got) > 0 {
					t.Fatalf("admissionPolicy.enabled=false renders %d admission objects", len(got))
				}
				return
			}
			// berth.fullname: the release name when it contains "berth".
			prefix := tc.release
			if !strings.Contains(prefix, "berth") {
				prefix += "-berth"
			}
			wantName := prefix + "-agent"
			want := map[string]map[string]any{}
			for _, u := range agentPolicyManifests(t, tc.wantUser) {
				u.SetName(wantName)
				if u.GetKind() == "ValidatingAdmissionPolicyBinding" {
					_ = unstructured.SetNestedField(u.Object, wantName, "spec", "policyName")
				}
				want[u.GetKind()] = u.Object
			}
			gotByKind := map[string]map[string]any{}
			for _, u := range got {
				if u.GetLabels()["app.kubernetes.io/instance"] != tc.release {
					t.Errorf("%s %s lacks the chart's labels: %v", u.GetKind(), u.GetName(), u.GetLabels())
				}
				u.SetLabels(nil)
				gotByKind[u.GetKind()] = u.Object
			}
			if diff := cmp.Diff(want, gotByKind); diff != "" {
				t.Errorf("the chart's admission policy differs from config/admission (run `make manifests`) (-want +got):\n%s", diff)
			}
		})
	}
}

// checkPolicyDenial checks that err is the policy's denial with a.policy's message.
func checkPolicyDenial(t *testing.T, a agentAction, ns string, err error) {
	t.Helper()
	want := "ValidatingAdmissionPolicy '" + policyName + "' with binding '" + policyName + "' denied request: " +
		strings.ReplaceAll(a.policy, "{ns}", ns)
	if !apierrors.IsForbidden(err) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("%s: got %v\nwant the policy's denial %s", a.name, err, want)
	}
}

// checkSpecThroughStatus: a status write that also changes the spec (re-binding the
// task to worker-2) is a status write only: the apiserver keeps the spec of the
// status subresource as it was, and the policy would deny it otherwise.
func checkSpecThroughStatus(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := t.Context()
	err := c.Status().Patch(ctx, task(ns, taskHere, ""),
		mergePatch(`{"spec":{"containerInstance":"worker-2","desiredStatus":"STOPPED"},"status":{"lastStatus":"PENDING"}}`))
	if err != nil {
		t.Errorf("status write with a spec change: %v, want the status written and the spec kept", err)
	}
	got := &ecsv1alpha1.Task{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: taskHere}, got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.ContainerInstance != ownInstance || got.Spec.DesiredStatus != ecsv1alpha1.DesiredRunning {
		t.Errorf("a status write changed the spec: containerInstance %q, desiredStatus %q", got.Spec.ContainerInstance, got.Spec.DesiredStatus)
	}
}

// agentPolicyObjects reads config/admission in its kustomization's order, with
// daemonSetUser as the DaemonSet's ServiceAccount.
func agentPolicyObjects(t *testing.T, daemonSetUser string) (*admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	policy, binding := &admissionregistrationv1.ValidatingAdmissionPolicy{}, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	for _, u := range agentPolicyManifests(t, daemonSetUser) {
		switch u.GetKind() {
		case "ValidatingAdmissionPolicy":
			policy = typed[admissionregistrationv1.ValidatingAdmissionPolicy](t, u)
		case "ValidatingAdmissionPolicyBinding":
			binding = typed[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, u)
		default:
			t.Fatalf("config/admission holds a %s", u.GetKind())
		}
	}
	if policy.Name != policyName || binding.Name != policyName {
		t.Fatalf("config/admission holds policy %q and binding %q, want both %q", policy.Name, binding.Name, policyName)
	}
	return policy, binding
}

// agentPolicyManifests reads config/admission as agentPolicyObjects does.
func agentPolicyManifests(t *testing.T, daemonSetUser string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, r := range kustomizationFiles(t, "admission") {
		text := r.text
		if strings.Contains(text, "ValidatingAdmissionPolicy\n") && strings.Count(text, "'"+configDaemonSetUser+"'") != 2 {
			t.Fatalf("%s names the DaemonSet's ServiceAccount '%s' %d times, want 2 (the match condition and the instance)",
				r.name, configDaemonSetUser, strings.Count(text, "'"+configDaemonSetUser+"'"))
		}
		text = strings.ReplaceAll(text, "'"+configDaemonSetUser+"'", "'"+daemonSetUser+"'")
		objs = append(objs, decodeDocuments(t, text)...)
	}
	return objs
}

// installAgentPolicy applies config/admission with daemonSetUser as the DaemonSet's
// ServiceAccount, as the chart does for its release, and removes it at cleanup.
// kustomizationFile is one resource of a config/ kustomization: its name and text.
type kustomizationFile struct{ name, text string }

// kustomizationFiles reads the resources config/<dir>/kustomization.yaml lists, in
// its order.
func kustomizationFiles(t *testing.T, dir string) []kustomizationFile {
	t.Helper()
	root := repoPath("config", dir)
	data, err := os.ReadFile(path.Join(root, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	out := make([]kustomizationFile, 0, len(k.Resources))
	for _, r := range k.Resources {
		data, err := os.ReadFile(path.Join(root, r))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kustomizationFile{name: r, text: string(data)})
	}
	return out
}

func installAgentPolicy(t *testing.T, daemonSetUser string) {
	t.Helper()
	ctx := t.Context()
	objs := agentPolicyManifests(t, daemonSetUser)
	for _, u := range objs {
		if err := testenv.Apply(ctx, env.Client, u, "berth-test"); err != nil {
			t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), u) })
	}
}

// waitForPolicy waits until the apiserver enforces the policy for daemonSetUser (its
// admission plugin learns policies from a watch): a dry run of a write by that
// ServiceAccount with a token bound to no node is denied. (The policy's type checking
// is reported by kube-controller-manager, which the test apiserver lacks; an
// expression that fails to evaluate fails the tests' exact messages instead.)
func waitForPolicy(t *testing.T, daemonSetUser string) {
	t.Helper()
	// system:masters passes RBAC: only the policy can deny.
	c := clientFor(t, impersonate(daemonSetUser, []string{"system:masters"}, nil))
	testenv.Eventually(t, "the policy to be enforced", func() error {
		err := c.Create(t.Context(), instance(newInstance), client.DryRunAll)
		switch {
		case err == nil:
			return fmt.Errorf("a write by %s was allowed", daemonSetUser)
		case !strings.Contains(err.Error(), "berth agent identity "+daemonSetUser+" names no container instance"):
			return fmt.Errorf("a write by %s: %w", daemonSetUser, err)
		}
		return nil
	})
}

// setupAgentWorld creates, as an administrator, what the actions work on: the other
// instance and its Lease, a Lease standing for the manager's, a Secret, and three
// tasks (bound to worker-1, to worker-2, unbound).
func setupAgentWorld(t *testing.T, ns string) {
	t.Helper()
	ctx := t.Context()
	leaseNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.NodeLeaseNamespace}}
	if err := env.Client.Create(ctx, leaseNS); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	objs := []client.Object{
		instance(otherInstance),
		lease(ecsv1alpha1.NodeLeaseNamespace, otherInstance),
		lease(ns, managerLease),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, StringData: map[string]string{"password": "s3cret"}},
		task(ns, taskHere, ownInstance),
		task(ns, taskThere, otherInstance),
		task(ns, taskUnbound, ""),
		markedTask(ns, taskMarkedThere, otherInstance),
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
		if o.GetNamespace() != ns {
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{instance(ownInstance), instance(newInstance), lease(ecsv1alpha1.NodeLeaseNamespace, ownInstance)} {
			_ = env.Client.Delete(context.Background(), o)
		}
	})
}

// resetOwnInstance deletes worker-1's ContainerInstance and Lease, so that the next
// identity registers them afresh.
func resetOwnInstance(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for _, o := range []client.Object{instance(ownInstance), lease(ecsv1alpha1.NodeLeaseNamespace, ownInstance)} {
		if err := env.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "deletion of "+o.GetName(), func() error {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return errors.New("still there")
		})
	}
}

// policyNamespace is a namespace of the test with the admission policy in force for
// the DaemonSet account berth-agent of that namespace, returned with its user.
func policyNamespace(t *testing.T) (ns, daemonSetUser string) {
	t.Helper()
	ns = env.Namespace(t)
	daemonSetUser = "system:serviceaccount:" + ns + ":berth-agent"
	installAgentPolicy(t, daemonSetUser)
	waitForPolicy(t, daemonSetUser)
	return ns, daemonSetUser
}

// serviceAccountToken creates the ServiceAccount ns/name and returns a config with a
// token of it: bound to a pod on node when node is set (as the kubelet's projected
// tokens are, carrying the node's name), else a plain one.
func serviceAccountToken(t *testing.T, ns, name, node string) *rest.Config {
	t.Helper()
	cfg := rest.AnonymousClientConfig(env.Config)
	if node != "" {
		cfg.BearerToken = env.NodeBoundToken(t, ns, name, node)
	} else {
		cfg.BearerToken = env.ServiceAccountToken(t, ns, name)
	}
	return cfg
}

// impersonate returns an administrator's config that acts as user, with groups and
// extra; the apiserver authorizes and admits its requests as that user's.
func impersonate(user string, groups []string, extra map[string][]string) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups, Extra: extra}
	return cfg
}

func clientFor(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// overprivilegedRole creates a ClusterRole that allows every write of the actions,
// with explicit verbs (no wildcards), and returns its name.
func overprivilegedRole(t *testing.T) string {
	t.Helper()
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "berth-test-overprivileged"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Verbs: all,
				Resources: []string{"containerinstances", "containerinstances/status", "tasks", "tasks/status", "taskdefinitions"}},
			{APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"}, Verbs: all},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create"}},
		},
	}
	if err := env.Client.Create(t.Context(), role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return role.Name
}

// bindClusterRole binds role to subjects (creating the generated berth-agent role
// first when it is the one), removes the binding at cleanup, and waits until RBAC
// lets each of ids register an instance.
func bindClusterRole(t *testing.T, role, name string, subjects []rbacv1.Subject, ids []agentIdentity) {
	t.Helper()
	ctx := t.Context()
	if role == "berth-agent" {
		generated := readManifests(t, repoPath("config", "rbac", "agent", "role.yaml"))[0]
		if err := testenv.Apply(ctx, env.Client, generated, "berth-test"); err != nil {
			t.Fatal(err)
		}
	}
	b := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
	if err := env.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), b) })
	for _, id := range ids {
		waitAllowed(t, id, "create", ecsv1alpha1.GroupVersion.Group, "containerinstances")
	}
}

// waitAllowed waits until RBAC allows id verb on group/resource (bindings reach the
// authorizer through a watch).
func waitAllowed(t *testing.T, id agentIdentity, verb, group, resource string) {
	t.Helper()
	c := clientFor(t, id.config)
	testenv.Eventually(t, fmt.Sprintf("RBAC to allow %s %s %s", id.name, verb, resource), func() error {
		r := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource},
		}}
		if err := c.Create(t.Context(), r); err != nil {
			return err
		}
		if !r.Status.Allowed {
			return errors.New("not allowed yet")
		}
		return nil
	})
}

func instance(name string) *ecsv1alpha1.ContainerInstance {
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
	ci.Spec.Cluster = "default"
	return ci
}

func lease(ns, name string) *coordinationv1.Lease {
	now := metav1.NewMicroTime(time.Now())
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now},
	}
}

// renew renews a Lease as the agent does: read, then update with a new renewTime.
func renew(ctx context.Context, c client.Client, ns, name string) error {
	l := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
		return err
	}
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	return c.Update(ctx, l)
}

func task(ns, name, instance string) *ecsv1alpha1.Task {
	t := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	t.Spec.TaskDefinition = "web:1"
	t.Spec.ContainerInstance = instance
	return t
}

// markedTask is a task the service scheduler stopped with deleteWhenStopped: its
// agent deletes it once stopped. An empty name is generated.
func markedTask(ns, name, instance string) *ecsv1alpha1.Task {
	t := task(ns, name, instance)
	if name == "" {
		t.GenerateName = "marked-"
	}
	t.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
	t.Spec.DeleteWhenStopped = true
	return t
}

func mergePatch(p string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(p)) }

// TestAgentIdentityRuleMatchesPolicy holds the admission policy's CEL and
// internal/agentidentity (the manager's gateway's rule for reads) to one answer: for
// each identity, the policy lets it write the status of exactly the instance
// agentidentity.Instance names, and of none when that names none.
func TestAgentIdentityRuleMatchesPolicy(t *testing.T) {
	ctx := t.Context()
	ns, daemonSetUser := policyNamespace(t)
	bindClusterRole(t, overprivilegedRole(t), "berth-test-overprivileged-rule-"+ns, []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: overprivilegedGroup},
	}, nil)
	resetOwnInstance(t)
	for _, name := range []string{ownInstance, otherInstance} {
		if err := env.Client.Create(ctx, instance(name)); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	node := func(n string) map[string][]string { return map[string][]string{nodeNameExtra: {n}} }
	for _, u := range []user.DefaultInfo{
		{Name: "berth:agent:" + ownInstance, Groups: []string{agentidentity.Group}},
		{Name: "berth:agent:" + otherInstance},
		{Name: "system:serviceaccount:" + ns + ":berth-agent-" + ownInstance},
		{Name: daemonSetUser, Extra: node(ownInstance)},
		{Name: daemonSetUser, Extra: node(otherInstance)},
		{Name: daemonSetUser},
		{Name: "mallory", Groups: []string{agentidentity.Group}},
		{Name: "system:serviceaccount:" + ns + ":berth-agent", Extra: map[string][]string{nodeNameExtra: {ownInstance, otherInstance}}},
	} {
		want, err := agentidentity.Instance(&u, daemonSetUser)
		if err != nil {
			want = ""
		}
		t.Run(fmt.Sprintf("%s %v", u.Name, u.Extra[nodeNameExtra]), func(t *testing.T) {
			c := clientFor(t, impersonate(u.Name, append(slices.Clone(u.Groups), overprivilegedGroup), u.Extra))
			for _, inst := range []string{ownInstance, otherInstance} {
				err := c.Status().Patch(ctx, instance(inst), mergePatch(`{"status":{"runningTasksCount":3}}`))
				if allowed := err == nil; allowed != (inst == want) {
					t.Errorf("writing the status of %s: %v; agentidentity.Instance says %q", inst, err, want)
				}
			}
		})
	}
}
