package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Identities for tests of what the apiserver lets a caller do: ServiceAccounts and
// their bearer tokens (the agent's HTTP endpoint takes tokens only), and RBAC
// bindings that are in force before the helper returns.

// tokenLifetime outlasts the longest suite.
const tokenLifetime = 6 * time.Hour

// TaskReader is the ServiceAccount, in namespace default, of TaskReaderToken.
const TaskReader = "berth-task-reader"

// TaskReaderRules are what TaskReader may do in every namespace: read tasks and
// their containers' logs, which is what the agent's /v1/tasks and /v1/logs ask.
var TaskReaderRules = []rbacv1.PolicyRule{
	{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"tasks"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"tasks/log"}, Verbs: []string{"get"}},
}

// ServiceAccountUser is the user name a ServiceAccount's tokens authenticate as.
func ServiceAccountUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// ServiceAccountToken creates the ServiceAccount ns/name unless it exists and
// returns a bearer token for it (a TokenRequest). It may do nothing until a test
// grants it rules (Grant).
func (e *Env) ServiceAccountToken(t testing.TB, ns, name string) string {
	t.Helper()
	token, err := e.serviceAccountToken(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func (e *Env) serviceAccountToken(ns, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := e.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating ServiceAccount %s/%s: %w", ns, name, err)
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(tokenLifetime / time.Second))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token of ServiceAccount %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}

// Grant binds user to rules: with a Role and a RoleBinding named name in ns, or a
// ClusterRole and a ClusterRoleBinding when ns is "". It returns once the
// apiserver's authorizer (which reads RBAC through its own informers) allows the
// first verb of each rule, so that the next request is not denied for lag.
func (e *Env) Grant(t testing.TB, ns, name, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	if err := e.grant(ns, name, user, rules); err != nil {
		t.Fatal(err)
	}
}

func (e *Env) grant(ns, name, user string, rules []rbacv1.PolicyRule) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}},
	}
	if ns != "" {
		objs = []client.Object{
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}},
		}
	}
	for _, o := range objs {
		if err := e.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("granting %s: %w", user, err)
		}
	}
	for _, r := range rules {
		a := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0]}
		if err := e.waitAllowed(ctx, user, a); err != nil {
			return err
		}
	}
	return nil
}

// WaitAllowed waits until the apiserver allows user a.
func (e *Env) WaitAllowed(t testing.TB, user string, a *authorizationv1.ResourceAttributes) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.waitAllowed(ctx, user, a); err != nil {
		t.Fatal(err)
	}
}

func (e *Env) waitAllowed(ctx context.Context, user string, a *authorizationv1.ResourceAttributes) error {
	var last string
	for {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: a}}
		if err := e.Client.Create(ctx, sar); err != nil {
			last = err.Error()
		} else if sar.Status.Allowed {
			return nil
		} else {
			last = sar.Status.Reason
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("RBAC does not allow %s to %s %s in namespace %q: %s", user, a.Verb, a.Resource, a.Namespace, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TaskReaderToken is a token of TaskReader, which may read every task and its
// logs (TaskReaderRules, cluster-wide): the identity tests call the agent's
// /v1/tasks and /v1/logs as. Made on first use, once per Env.
func (e *Env) TaskReaderToken(t testing.TB) string {
	t.Helper()
	e.readerOnce.Do(func() {
		if e.readerErr = e.grant("", TaskReader, ServiceAccountUser(metav1.NamespaceDefault, TaskReader), TaskReaderRules); e.readerErr == nil {
			e.readerToken, e.readerErr = e.serviceAccountToken(metav1.NamespaceDefault, TaskReader)
		}
	})
	if e.readerErr != nil {
		t.Fatal(e.readerErr)
	}
	return e.readerToken
}

// NodeBoundToken creates the ServiceAccount ns/name unless it exists, a Node node
// and a pod of that account on it, and returns a token bound to the pod: what the
// kubelet projects into a DaemonSet's pod, whose user the apiserver gives the extra
// authentication.kubernetes.io/node-name. The Node is removed at cleanup.
func (e *Env) NodeBoundToken(t testing.TB, ns, name, node string) string {
	t.Helper()
	e.ServiceAccountToken(t, ns, name) // creates the account
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := e.Client.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), n) })
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + node},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: name, Containers: []corev1.Container{{Name: "agent", Image: "berth"}}}}
	if err := e.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(int64(tokenLifetime / time.Second)),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token of %s/%s bound to a pod on %s: %v", ns, name, node, err)
	}
	return tr.Status.Token
}
