// Package ecsapi tests `berth api` with the AWS SDK for Go v2's ECS client against a
// real kube-apiserver and etcd, the whole Berth manager and hollow agents (the real
// agent over in-memory runtimes): every call is signed, verified, and made as the
// credential's Kubernetes user through impersonation, as in production.
package ecsapi

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
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

// putFamily creates or updates a TaskDefinition in its namespace (as its owner would
// with kubectl; the API's RegisterTaskDefinition is tested on its own) and waits for
// its latest revision to be wantRevision.
func putFamily(t *testing.T, td *ecsv1alpha1.TaskDefinition, wantRevision int32) {
	t.Helper()
	ctx := context.Background()
	var cur ecsv1alpha1.TaskDefinition
	switch err := env.Client.Get(ctx, client.ObjectKeyFromObject(td), &cur); {
	case apierrors.IsNotFound(err):
		if err := env.Client.Create(ctx, td); err != nil {
			t.Fatal(err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		// The manager writes the TaskDefinition's status meanwhile (revisions,
		// utilization): retry on a conflict, as kubectl edit would.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(td), &cur); err != nil {
				return err
			}
			cur.Spec, cur.Annotations = td.Spec, td.Annotations
			return env.Client.Update(ctx, &cur)
		}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, fmt.Sprintf("task definition %s revision %d", td.Name, wantRevision), func() error {
		var got ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(td), &got); err != nil {
			return err
		}
		if got.Status.LatestRevision != wantRevision {
			return fmt.Errorf("latestRevision %d", got.Status.LatestRevision)
		}
		return nil
	})
}

// newCluster creates an ECS cluster through the API (deleted when the test ends)
// with n hollow instances named after it, and waits until every one is ACTIVE,
// connected and counted by the cluster, as RunTask requires. It returns the
// instances' names.
func newCluster(t *testing.T, c *ecs.Client, name string, n int, edit func(*hollow.Config)) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	if n == 0 {
		return nil
	}
	cfg := hollow.Config{Cluster: name, Instances: n, NamePrefix: name}
	if edit != nil {
		edit(&cfg)
	}
	agents := startHollow(t, cfg)
	testenv.EventuallyWithin(t, 30*time.Second, "instances ACTIVE, connected and counted", func() error {
		l, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(name), Status: types.ContainerInstanceStatusActive})
		if err != nil {
			return err
		}
		if len(l.ContainerInstanceArns) != n {
			return fmt.Errorf("%d ACTIVE instances", len(l.ContainerInstanceArns))
		}
		d, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(name), ContainerInstances: l.ContainerInstanceArns})
		if err != nil {
			return err
		}
		for _, ci := range d.ContainerInstances {
			if !ci.AgentConnected {
				return fmt.Errorf("%s not connected", aws.ToString(ci.Ec2InstanceId))
			}
		}
		cl, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{name}})
		if err != nil {
			return err
		}
		if got := cl.Clusters[0].RegisteredContainerInstancesCount; got != int32(n) {
			return fmt.Errorf("cluster counts %d instances", got)
		}
		return nil
	})
	return agents.Names()
}

// tasksCluster is newCluster named after the test's namespace ("c-<ns>").
func tasksCluster(t *testing.T, c *ecs.Client, ns string, n int, edit func(*hollow.Config)) (string, []string) {
	t.Helper()
	name := "c-" + ns
	return name, newCluster(t, c, name, n, edit)
}
