// Package ecsapi tests `berth api` with the AWS SDK for Go v2's ECS client against a
// real kube-apiserver and etcd, the whole Berth manager and hollow agents (the real
// agent over in-memory runtimes): every call is signed, verified, and made as the
// credential's Kubernetes user through impersonation, as in production.
package ecsapi

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

const (
	region  = harness.APIRegion
	account = harness.APIAccount
)

// stack is a running manager and API server.
type stack struct {
	t        *testing.T
	endpoint string
}

// start runs the whole manager and `berth api` (ecsapi.Run, with SigV4) until the
// test ends.
func start(t *testing.T) *stack {
	t.Helper()
	harness.StartManager(t, env, harness.ManagerOptions{SchedulerWorkers: 4, ServiceWorkers: 4})
	return &stack{t: t, endpoint: harness.StartAPI(t, env)}
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
	s.t.Helper()
	ns := env.Namespace(s.t)
	return &user{Namespace: ns, Name: name, Cred: harness.APIUser(s.t, env, ns, name, clusterWide)}
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

// startHollow runs `berth hollow` with the suites' fast timings until the test ends.
func startHollow(t *testing.T, cfg hollow.Config) *hollow.Agent {
	t.Helper()
	return harness.StartHollow(t, env, cfg)
}
