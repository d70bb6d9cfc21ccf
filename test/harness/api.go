package harness

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/config"
	"github.com/berthdev/berth/ecsapi"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/test/testenv"
)

// API settings of the suites: a region and account other than the defaults, so a
// test sees that ARNs take them from the flags.
const (
	APICredentialsNamespace = "berth-system"
	APIRegion               = "eu-west-3"
	APIAccount              = "123456789012"
)

// StartAPI runs `berth api` (ecsapi.Run, SigV4 against credential Secrets in
// APICredentialsNamespace) on a loopback port until the test ends, and returns its
// endpoint URL. It installs the berth-ecs-user ClusterRole that APIUser binds.
func StartAPI(t testing.TB, env *testenv.Env) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: APICredentialsNamespace}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(config.APIUserRole, &role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ecsapi.Run(runCtx, ecsapi.RunOptions{
			Config:     ecsapi.Config{Region: APIRegion, AccountID: APIAccount},
			Kubeconfig: env.Kubeconfig, QPS: 200, Burst: 400,
			Listen: "127.0.0.1:0", Auth: ecsapi.AuthSigV4, CredentialsNamespace: APICredentialsNamespace,
			Ready: func(addr string) { ready <- addr },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("berth api: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("berth api did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("berth api did not start in 30s")
	}
	return ""
}

// APIUser makes a credential acting in namespace ns as the Kubernetes user name,
// bound to berth-ecs-user in ns, and cluster-wide too when clusterWide (clusters
// and container instances are cluster-scoped).
func APIUser(t testing.TB, env *testenv.Env, ns, name string, clusterWide bool) *auth.Credential {
	t.Helper()
	ctx := context.Background()
	cred, err := auth.NewCredential(ns, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, cred.Secret(APICredentialsNamespace)); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "berth-ecs-user"}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ecs-" + name, Namespace: ns}, Subjects: subject, RoleRef: ref}
	if err := env.Client.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if clusterWide {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ecs-" + ns + "-" + name}, Subjects: subject, RoleRef: ref}
		if err := env.Client.Create(ctx, crb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crb) })
	}
	waitAuthorized(t, env, name, ns, clusterWide)
	return cred
}

// waitAuthorized waits until the apiserver's authorizer has seen the bindings just
// made (it reads RBAC through its own informers): a call made at once could
// otherwise be denied.
func waitAuthorized(t testing.TB, env *testenv.Env, user, ns string, clusterWide bool) {
	t.Helper()
	attrs := []*authorizationv1.ResourceAttributes{{Namespace: ns, Verb: "list", Group: ecsv1alpha1.GroupVersion.Group, Resource: "tasks"}}
	if clusterWide {
		attrs = append(attrs, &authorizationv1.ResourceAttributes{Verb: "create", Group: ecsv1alpha1.GroupVersion.Group, Resource: "clusters"})
	}
	for _, a := range attrs {
		env.WaitAllowed(t, user, a)
	}
}
