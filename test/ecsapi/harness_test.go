// Package ecsapi tests `berth api` with the AWS SDK for Go v2's ECS client against a
// real kube-apiserver and etcd, the whole Berth manager and hollow agents (the real
// agent over in-memory runtimes): every call is signed, verified, and made as the
// credential's Kubernetes user through impersonation, as in production.
package ecsapi

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/config"
	"github.com/berthdev/berth/ecsapi"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

const (
	credentialsNamespace = "berth-system"
	region               = "eu-west-3"
	account              = "123456789012"
)

// stack is a running manager and API server.
type stack struct {
	t        *testing.T
	endpoint string
}

var setupOnce sync.Once

// start runs the whole manager and `berth api` (ecsapi.Run, with SigV4) until the
// test ends.
func start(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	setupOnce.Do(func() {
		if err := env.Client.Create(ctx, namespace(credentialsNamespace)); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal(config.APIUserRole, &role); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	})
	harness.StartManager(t, env, harness.ManagerOptions{SchedulerWorkers: 4, ServiceWorkers: 4})
	runCtx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ecsapi.Run(runCtx, ecsapi.RunOptions{
			Config:     ecsapi.Config{Region: region, AccountID: account},
			Kubeconfig: env.Kubeconfig, QPS: 200, Burst: 400,
			Listen: "127.0.0.1:0", Auth: ecsapi.AuthSigV4, CredentialsNamespace: credentialsNamespace,
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
		return &stack{t: t, endpoint: "http://" + addr}
	case err := <-done:
		t.Fatalf("berth api did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("berth api did not start in 30s")
	}
	return nil
}

// user is an API credential and the RBAC that lets its user act.
type user struct {
	Namespace string
	Name      string
	Cred      *auth.Credential
}

// newUser makes a credential for a user in a fresh namespace, bound to
// berth-ecs-user there; clusterWide also binds it cluster-wide (clusters and
// container instances are cluster-scoped).
func (s *stack) newUser(name string, clusterWide bool) *user {
	t := s.t
	t.Helper()
	ctx := context.Background()
	ns := env.Namespace(t)
	cred, err := auth.NewCredential(ns, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, cred.Secret(credentialsNamespace)); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "berth-ecs-user"}
	if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ecs-" + name, Namespace: ns}, Subjects: subject, RoleRef: ref}); err != nil {
		t.Fatal(err)
	}
	if clusterWide {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ecs-" + ns + "-" + name}, Subjects: subject, RoleRef: ref}
		if err := env.Client.Create(ctx, crb); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), crb) })
	}
	return &user{Namespace: ns, Name: name, Cred: cred}
}

// ecs is the SDK's ECS client signed with u's credential. Retries are off: a test
// sees each answer as sent.
func (s *stack) ecs(u *user) *ecs.Client {
	return ecs.New(ecs.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(u.Cred.AccessKeyID, u.Cred.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

// startHollow runs `berth hollow` instances in cluster until the test ends.
func startHollow(t *testing.T, cfg hollow.Config) *hollow.Agent {
	t.Helper()
	cfg.RunningDelay = 50 * time.Millisecond
	cfg.LeaseInterval = 500 * time.Millisecond
	cfg.StatusInterval = time.Second
	a, err := hollow.New(cfg, env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("hollow agent: %v", err)
		}
	})
	return a
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
