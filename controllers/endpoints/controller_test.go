package endpoints_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/controllers/endpoints"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/manager"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func startController(t *testing.T) ctrl.Manager {
	t.Helper()
	return env.StartManager(t, ctrl.Options{Cache: manager.CacheOptions()}, func(ctx context.Context, mgr ctrl.Manager) error {
		if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return err
		}
		return (&endpoints.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("test")}).SetupWithManager(mgr)
	})
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// registerRevision creates a TaskDefinition and stores its spec as revision 1, the
// task definition controller's job.
func registerRevision(t *testing.T, td *ecsv1alpha1.TaskDefinition) {
	t.Helper()
	create(t, td)
	cr, err := revision.Snapshot(td, 1)
	if err != nil {
		t.Fatal(err)
	}
	create(t, cr)
}

// newInstance registers a container instance with addresses and attributes, as its
// agent would, and deletes it at cleanup (instances are cluster-scoped).
func newInstance(t *testing.T, name string, attrs []ecsv1alpha1.Attribute, addrs ...ecsv1alpha1.InstanceAddress) {
	t.Helper()
	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: ecsv1alpha1.DefaultClusterName},
	}
	create(t, ci)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ci) })
	ci.Status.Addresses = addrs
	ci.Status.Attributes = attrs
	if err := env.Client.Status().Update(context.Background(), ci); err != nil {
		t.Fatal(err)
	}
}

func internalIP(a string) ecsv1alpha1.InstanceAddress {
	return ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressInternalIP, Address: a}
}

func newService(t *testing.T, ns, name string, lbs ...ecsv1alpha1.LoadBalancer) *ecsv1alpha1.Service {
	t.Helper()
	svc := &ecsv1alpha1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ecsv1alpha1.ServiceSpec{
			TaskDefinition: "web", DesiredCount: ptr.To[int32](3), LoadBalancers: lbs,
		},
	}
	create(t, svc)
	return svc
}

func newCoreService(t *testing.T, ns, name string) {
	t.Helper()
	create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP,
		}}},
	})
}

// newTask creates a task of a service on an instance and reports it RUNNING with the
// app container's port 8080 published on hostPort, playing the agent's part.
func newTask(t *testing.T, ns, name, service, taskDefinition, instance string, health ecsv1alpha1.HealthStatus, hostPort int32) {
	t.Helper()
	task := testobj.Task(ns, name, taskDefinition).On(instance).Obj()
	task.Labels = map[string]string{ecsv1alpha1.LabelService: service}
	create(t, task)
	task.Status.LastStatus = ecsv1alpha1.TaskRunning
	task.Status.HealthStatus = health
	task.Status.Containers = []ecsv1alpha1.ContainerStatus{{
		Name: "app", LastStatus: ecsv1alpha1.ContainerRunning,
		NetworkBindings: []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: hostPort, Protocol: ecsv1alpha1.ProtocolTCP}},
	}}
	if err := env.Client.Status().Update(context.Background(), task); err != nil {
		t.Fatal(err)
	}
}

func editTask(t *testing.T, ns, name string, status bool, edit func(*ecsv1alpha1.Task)) {
	t.Helper()
	ctx := context.Background()
	var task ecsv1alpha1.Task
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &task); err != nil {
		t.Fatal(err)
	}
	edit(&task)
	var err error
	if status {
		err = env.Client.Status().Update(ctx, &task)
	} else {
		err = env.Client.Update(ctx, &task)
	}
	if err != nil {
		t.Fatalf("updating task %s: %v", name, err)
	}
}

// slicesOf lists the EndpointSlices published for a Berth Service.
func slicesOf(t *testing.T, ns, service string) []discoveryv1.EndpointSlice {
	t.Helper()
	var list discoveryv1.EndpointSliceList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns),
		client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
		t.Fatal(err)
	}
	var out []discoveryv1.EndpointSlice
	for _, s := range list.Items {
		if s.DeletionTimestamp == nil {
			out = append(out, s)
		}
	}
	return out
}

type sliceSummary struct {
	Name      string
	Service   string
	Port      int32
	Endpoints []string
}

func summarize(slices []discoveryv1.EndpointSlice) []sliceSummary {
	var out []sliceSummary
	for _, s := range slices {
		sum := sliceSummary{Name: s.Name, Service: s.Labels[discoveryv1.LabelServiceName], Port: *s.Ports[0].Port}
		for _, ep := range s.Endpoints {
			sum.Endpoints = append(sum.Endpoints, fmt.Sprintf("%s %s ready=%v serving=%v terminating=%v zone=%s",
				ep.Addresses[0], ep.TargetRef.Name, *ep.Conditions.Ready, *ep.Conditions.Serving, *ep.Conditions.Terminating, ptr.Deref(ep.Zone, "")))
		}
		out = append(out, sum)
	}
	return out
}

func waitSlices(t *testing.T, ns, service string, want []sliceSummary) []discoveryv1.EndpointSlice {
	t.Helper()
	var got []discoveryv1.EndpointSlice
	testenv.Eventually(t, "EndpointSlices", func() error {
		got = slicesOf(t, ns, service)
		if diff := cmp.Diff(want, summarize(got)); diff != "" {
			return fmt.Errorf("slices (-want +got):\n%s", diff)
		}
		return nil
	})
	return got
}

func TestEndpointsFollowTasks(t *testing.T) {
	mgr := startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	i1, i2 := ns+"-i1", ns+"-i2"
	newCoreService(t, ns, "web")
	registerRevision(t, testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Port(8080, 0).HealthCheck("true").Obj())
	newInstance(t, i1, []ecsv1alpha1.Attribute{{Name: ecsv1alpha1.AttributeAvailabilityZone, Value: "zone-a"}},
		ecsv1alpha1.InstanceAddress{Type: ecsv1alpha1.AddressExternalIP, Address: "203.0.113.1"}, internalIP("10.0.0.1"))
	newInstance(t, i2, nil, internalIP("10.0.0.2"))
	// A slice of another manager for the same core Service must be left alone.
	foreign := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-manual", Labels: map[string]string{
			discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "someone-else", ecsv1alpha1.LabelService: "websvc",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}},
	}
	create(t, foreign)

	svc := newService(t, ns, "websvc", ecsv1alpha1.LoadBalancer{ServiceName: "web", ContainerName: "app", ContainerPort: 8080})
	newTask(t, ns, "t1", "websvc", "web:1", i1, ecsv1alpha1.HealthHealthy, 32768)
	newTask(t, ns, "t2", "websvc", "web:1", i1, ecsv1alpha1.HealthHealthy, 32769)
	newTask(t, ns, "t3", "websvc", "web:1", i2, ecsv1alpha1.HealthHealthy, 32768)

	ours := func(slices []discoveryv1.EndpointSlice) []discoveryv1.EndpointSlice {
		var out []discoveryv1.EndpointSlice
		for _, s := range slices {
			if s.Labels[discoveryv1.LabelManagedBy] == endpoints.ManagedBy {
				out = append(out, s)
			}
		}
		return out
	}
	waitOurs := func(want []sliceSummary) []discoveryv1.EndpointSlice {
		t.Helper()
		var got []discoveryv1.EndpointSlice
		testenv.Eventually(t, "EndpointSlices", func() error {
			got = ours(slicesOf(t, ns, "websvc"))
			if diff := cmp.Diff(want, summarize(got)); diff != "" {
				return fmt.Errorf("slices (-want +got):\n%s", diff)
			}
			return nil
		})
		return got
	}

	got := waitOurs([]sliceSummary{
		{Name: "web-websvc-32768t", Service: "web", Port: 32768, Endpoints: []string{
			"10.0.0.1 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.0.0.2 t3 ready=true serving=true terminating=false zone=",
		}},
		{Name: "web-websvc-32769t", Service: "web", Port: 32769, Endpoints: []string{
			"10.0.0.1 t2 ready=true serving=true terminating=false zone=zone-a",
		}},
	})
	for _, s := range got {
		ref := metav1.GetControllerOf(&s)
		if ref == nil || ref.UID != svc.UID || ref.Kind != "Service" || ref.APIVersion != ecsv1alpha1.GroupVersion.String() {
			t.Errorf("slice %s controller reference = %+v, want the Service %s", s.Name, ref, svc.UID)
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 || *s.Ports[0].Protocol != corev1.ProtocolTCP || *s.Ports[0].Name != "" {
			t.Errorf("slice %s: addressType %s, port %+v", s.Name, s.AddressType, s.Ports[0])
		}
		for _, ep := range s.Endpoints {
			if ep.TargetRef.Kind != "Task" || ep.TargetRef.APIVersion != ecsv1alpha1.GroupVersion.String() || ep.TargetRef.UID == "" || ep.NodeName != nil {
				t.Errorf("slice %s endpoint %+v: want a Task targetRef and no nodeName", s.Name, ep)
			}
		}
	}

	// Settled: a pass that finds nothing new writes nothing.
	rvs := func() map[string]string {
		m := map[string]string{}
		for _, s := range slicesOf(t, ns, "websvc") {
			m[s.Name] = s.ResourceVersion
		}
		return m
	}
	before := rvs()
	recorder, writes := testenv.RecordingClient(mgr.GetClient())
	r := &endpoints.Reconciler{Client: recorder, Recorder: mgr.GetEventRecorder("test")}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(svc)}); err != nil {
		t.Fatal(err)
	}
	if len(writes.List()) > 0 {
		t.Errorf("a pass with nothing changed wrote: %v", writes.List())
	}
	editTask(t, ns, "t1", true, func(task *ecsv1alpha1.Task) { task.Status.PullStartedAt = ptr.To(metav1.Now()) })
	time.Sleep(time.Second)
	if diff := cmp.Diff(before, rvs()); diff != "" {
		t.Errorf("an unchanged slice was written (-before +after):\n%s", diff)
	}

	// A task turning UNHEALTHY stays listed but is not ready.
	editTask(t, ns, "t3", true, func(task *ecsv1alpha1.Task) { task.Status.HealthStatus = ecsv1alpha1.HealthUnhealthy })
	// StopTask: terminating, still serving while it drains.
	editTask(t, ns, "t2", false, func(task *ecsv1alpha1.Task) { task.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped })
	waitOurs([]sliceSummary{
		{Name: "web-websvc-32768t", Service: "web", Port: 32768, Endpoints: []string{
			"10.0.0.1 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.0.0.2 t3 ready=false serving=false terminating=false zone=",
		}},
		{Name: "web-websvc-32769t", Service: "web", Port: 32769, Endpoints: []string{
			"10.0.0.1 t2 ready=false serving=true terminating=true zone=zone-a",
		}},
	})

	// STOPPED: gone, and its port's slice with it.
	editTask(t, ns, "t2", true, func(task *ecsv1alpha1.Task) { task.Status.LastStatus = ecsv1alpha1.TaskStopped })
	waitOurs([]sliceSummary{
		{Name: "web-websvc-32768t", Service: "web", Port: 32768, Endpoints: []string{
			"10.0.0.1 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.0.0.2 t3 ready=false serving=false terminating=false zone=",
		}},
	})

	// An instance's new address reaches its endpoints.
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(ctx, client.ObjectKey{Name: i2}, &ci); err != nil {
		t.Fatal(err)
	}
	ci.Status.Addresses = []ecsv1alpha1.InstanceAddress{internalIP("10.0.0.22")}
	if err := env.Client.Status().Update(ctx, &ci); err != nil {
		t.Fatal(err)
	}
	waitOurs([]sliceSummary{
		{Name: "web-websvc-32768t", Service: "web", Port: 32768, Endpoints: []string{
			"10.0.0.1 t1 ready=true serving=true terminating=false zone=zone-a",
			"10.0.0.22 t3 ready=false serving=false terminating=false zone=",
		}},
	})

	// A slice deleted by hand comes back.
	if err := env.Client.Delete(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-websvc-32768t"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "slice recreated", func() error {
		var s discoveryv1.EndpointSlice
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-websvc-32768t"}, &s); err != nil {
			return err
		}
		if s.DeletionTimestamp != nil || len(s.Endpoints) != 2 {
			return fmt.Errorf("slice not recreated yet: %+v", s.Endpoints)
		}
		return nil
	})

	// Removing the load balancer removes the slices, but not the foreign one.
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.LoadBalancers = nil
	if err := env.Client.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitOurs(nil)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), &discoveryv1.EndpointSlice{}); err != nil {
		t.Errorf("the foreign slice: %v", err)
	}
}

// TestReadinessFromRevisionAndMissingService: without health checks in the revision
// a RUNNING task is ready; a task whose revision cannot be found is not; a missing
// core Service still gets its slices, and a Warning Event says it is missing.
func TestReadinessFromRevisionAndMissingService(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	inst := ns + "-i1"
	registerRevision(t, testobj.TaskDefinition(ns, "plain").Container("app", "demo:1").Port(8080, 0).Obj())
	newInstance(t, inst, nil, internalIP("10.0.1.1"))
	svc := newService(t, ns, "api", ecsv1alpha1.LoadBalancer{ServiceName: "missing", ContainerName: "app", ContainerPort: 8080})
	newTask(t, ns, "a", "api", "plain:1", inst, ecsv1alpha1.HealthUnknown, 31000)
	newTask(t, ns, "b", "api", "ghost:1", inst, ecsv1alpha1.HealthUnknown, 31000)

	waitSlices(t, ns, "api", []sliceSummary{
		{Name: "missing-api-31000t", Service: "missing", Port: 31000, Endpoints: []string{
			"10.0.1.1 a ready=true serving=true terminating=false zone=",
			"10.0.1.1 b ready=false serving=false terminating=false zone=",
		}},
	})
	testenv.Eventually(t, "Warning Event", func() error {
		var list eventsv1.EventList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		n := 0
		for _, e := range list.Items {
			if e.Regarding.Name == svc.Name && e.Type == corev1.EventTypeWarning && e.Reason == endpoints.ReasonLoadBalancerServiceNotFound {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%d LoadBalancerServiceNotFound Events for %s, want 1", n, svc.Name)
		}
		return nil
	})

	// Once the core Service exists, the slices carry its port's name, which is how
	// kube-proxy pairs them with the Service's port.
	create(t, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	})
	got := waitSlices(t, ns, "api", []sliceSummary{
		{Name: "missing-api-http-31000t", Service: "missing", Port: 31000, Endpoints: []string{
			"10.0.1.1 a ready=true serving=true terminating=false zone=",
			"10.0.1.1 b ready=false serving=false terminating=false zone=",
		}},
	})
	if name := ptr.Deref(got[0].Ports[0].Name, ""); name != "http" {
		t.Errorf("port name = %q, want http", name)
	}
}
