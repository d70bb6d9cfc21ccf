// Package scenario holds end-to-end scenarios that run unchanged against the real
// agent on containerd (test/e2e) and against `berth hollow` (test/controlplane), so
// that the simulator is held to what the agent does on a machine. A scenario takes
// what differs between the two (the image and the commands that behave as wanted)
// and checks only what a user sees through the API.
package scenario

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// Env is where a scenario runs: a namespace and a cluster whose instances run the
// agent under test (a manager converges it), and what the containers run.
type Env struct {
	Client    client.Client
	Namespace string
	Cluster   string
	// Image runs Serve, Sleep and Check.
	Image string
	// Serve is a command line that keeps running and serves HTTP on port 8080.
	Serve []string
	// Sleep is a command line that keeps running.
	Sleep []string
	// Check is a health check command (CMD form, without "CMD") that succeeds.
	Check []string
	// Timeout bounds each wait.
	Timeout time.Duration
}

func (e *Env) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// SidecarOnlyHealthCheck: a Service whose only health check is on a non-essential
// sidecar. Its tasks' health is UNKNOWN (no essential container has a check, ECS's
// rule), which counts as healthy: the deployment COMPLETES and the Service becomes
// steady. A control plane that read UNKNOWN as "not healthy yet" would never finish
// this deployment.
func SidecarOnlyHealthCheck(t *testing.T, e Env) {
	t.Helper()
	td := testobj.TaskDefinition(e.Namespace, "sidecar-check").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", e.Image).Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Command, c.Cpu = e.Sleep, 64 }).
		Container("side", e.Image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command, c.Cpu, c.Essential = e.Sleep, 64, ptr.To(false)
		c.HealthCheck = &ecsv1alpha1.HealthCheck{Command: append([]string{"CMD"}, e.Check...), Interval: ptr.To[int32](5), Retries: ptr.To[int32](1)}
	}).Obj()
	e.create(t, td, testobj.Service(e.Namespace, "sidecar-check", "sidecar-check", 2).Cluster(e.Cluster).Obj())
	var svc ecsv1alpha1.Service
	testenv.EventuallyWithin(t, e.Timeout, "a COMPLETED deployment and a steady Service", func() error {
		if err := e.Client.Get(context.Background(), client.ObjectKey{Namespace: e.Namespace, Name: "sidecar-check"}, &svc); err != nil {
			return err
		}
		st := svc.Status
		if len(st.Deployments) == 0 || st.Deployments[0].RolloutState != ecsv1alpha1.RolloutCompleted ||
			st.RunningCount != 2 || !conditionTrue(st.Conditions, ecsv1alpha1.ServiceConditionSteady) {
			return fmt.Errorf("running %d, deployments %+v; %s", st.RunningCount, st.Deployments, e.describe("sidecar-check"))
		}
		return nil
	})
	var tasks ecsv1alpha1.TaskList
	if err := e.Client.List(context.Background(), &tasks, client.InNamespace(e.Namespace),
		client.MatchingLabels{ecsv1alpha1.LabelService: "sidecar-check"}); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks.Items {
		if task.Status.LastStatus == ecsv1alpha1.TaskRunning && task.Status.HealthStatus != ecsv1alpha1.HealthUnknown {
			t.Errorf("task %s health %s, want UNKNOWN: only a non-essential container has a check", task.Name, task.Status.HealthStatus)
		}
	}
}

// NoneHealthCheckIsReady: a container whose healthCheck command is ["NONE"] has no
// check (Docker's and ECS's way of turning an image's check off), so its RUNNING task
// is a ready endpoint of the Service's load balancer.
func NoneHealthCheckIsReady(t *testing.T, e Env) {
	t.Helper()
	td := testobj.TaskDefinition(e.Namespace, "no-check").Network(ecsv1alpha1.NetworkModeBridge).
		Container("app", e.Image).Port(8080, 0).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command, c.Cpu = e.Serve, 64
		c.HealthCheck = &ecsv1alpha1.HealthCheck{Command: []string{"NONE"}}
	}).Obj()
	core := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.Namespace, Name: "no-check"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	svc := testobj.Service(e.Namespace, "no-check", "no-check", 1).Cluster(e.Cluster).Obj()
	svc.Spec.LoadBalancers = []ecsv1alpha1.LoadBalancer{{ServiceName: "no-check", ContainerName: "app", ContainerPort: 8080}}
	e.create(t, td, core, svc)
	testenv.EventuallyWithin(t, e.Timeout, "a ready endpoint for the task", func() error {
		var slices discoveryv1.EndpointSliceList
		if err := e.Client.List(context.Background(), &slices, client.InNamespace(e.Namespace),
			client.MatchingLabels{discoveryv1.LabelServiceName: "no-check"}); err != nil {
			return err
		}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ptr.Deref(ep.Conditions.Ready, false) {
					return nil
				}
			}
		}
		return fmt.Errorf("no ready endpoint in %d slices %+v; %s", len(slices.Items), slices.Items, e.describe("no-check"))
	})
}

func conditionTrue(conds []metav1.Condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// describe says what the service and its tasks show, for a failure message.
func (e *Env) describe(service string) string {
	ctx := context.Background()
	var b strings.Builder
	var svc ecsv1alpha1.Service
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: service}, &svc); err == nil {
		for _, c := range svc.Status.Conditions {
			fmt.Fprintf(&b, "service %s=%s (%s: %s); ", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	var tasks ecsv1alpha1.TaskList
	if err := e.Client.List(ctx, &tasks, client.InNamespace(e.Namespace), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err == nil {
		for _, t := range tasks.Items {
			fmt.Fprintf(&b, "task %s %s/%s health %s stop %s %q on %q containers %+v; ", t.Name, t.Spec.DesiredStatus, t.Status.LastStatus,
				t.Status.HealthStatus, t.Status.StopCode, t.Status.StoppedReason, t.Spec.ContainerInstance, t.Status.Containers)
		}
	}
	return b.String()
}
