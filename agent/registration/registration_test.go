package registration

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

func config(name string) Config {
	return Config{
		Name: name, Cluster: "c1", CPU: 2048, Memory: 4000, GPUs: []string{"0", "1", "2"},
		Attributes: BuiltinAttributes("zone-a"), Addresses: []ecsv1alpha1.InstanceAddress{{Type: ecsv1alpha1.AddressInternalIP, Address: "10.0.0.5"}},
		AgentVersion: "test", RuntimeVersion: "v2.2.9",
	}
}

func getInstance(t *testing.T, name string) *ecsv1alpha1.ContainerInstance {
	t.Helper()
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &ci); err != nil {
		t.Fatal(err)
	}
	return &ci
}

func TestRegisterReportAndReRegister(t *testing.T) {
	ctx := context.Background()
	name := "reg-" + env.Namespace(t)
	c, writes := testenv.RecordingClient(env.Client)
	r, err := New(c, config(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	ci := getInstance(t, name)
	reg := ci.Status.RegisteredResources
	if ci.Spec.Cluster != "c1" || reg == nil || reg.Cpu != 2048 || reg.Memory != 4000 || len(reg.Ports) != len(DefaultReservedPorts) ||
		!slices.Equal(reg.GPUs, []string{"0", "1", "2"}) {
		t.Fatalf("registered %+v / %+v", ci.Spec, reg)
	}
	if !meta.IsStatusConditionTrue(ci.Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady) {
		t.Errorf("RuntimeReady not True: %+v", ci.Status.Conditions)
	}
	registeredAt := ci.Status.RegisteredAt

	// Unchanged usage: no write. Changed usage: remaining resources follow.
	before := len(writes.List())
	if err := r.Report(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	if n := len(writes.List()); n != before {
		t.Errorf("an unchanged report wrote: %v", writes.List()[before:])
	}
	if err := r.Report(ctx, Usage{Running: 2, CPU: 512, Memory: 1000, TCPPorts: []int32{8080}, GPUs: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	ci = getInstance(t, name)
	rem := ci.Status.RemainingResources
	if ci.Status.RunningTasksCount != 2 || rem.Cpu != 1536 || rem.Memory != 3000 || !containsPort(rem.Ports, 8080) ||
		!slices.Equal(rem.GPUs, []string{"0", "2"}) {
		t.Errorf("after usage: running %d remaining %+v", ci.Status.RunningTasksCount, rem)
	}
	if err := r.Report(ctx, Usage{RuntimeErr: errors.New("containerd is not reachable")}); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(getInstance(t, name).Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "not reachable") {
		t.Errorf("RuntimeReady after a runtime failure: %+v", c)
	}

	// A restarted agent adopts its instance and keeps registeredAt.
	time.Sleep(1100 * time.Millisecond)
	r2, _ := New(env.Client, config(name))
	if err := r2.Register(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	if got := getInstance(t, name).Status.RegisteredAt; !got.Equal(registeredAt) {
		t.Errorf("registeredAt changed on re-registration: %v -> %v", registeredAt, got)
	}
	// The same name in another cluster is refused, naming both clusters.
	other := config(name)
	other.Cluster = "c2"
	r3, _ := New(env.Client, other)
	if err := r3.Register(ctx, Usage{}); err == nil || !strings.Contains(err.Error(), `cluster "c1", not "c2"`) {
		t.Errorf("re-registering in another cluster: %v", err)
	}
}

// TestUtilizationReported: the agent's measurement goes into status.utilization
// with the rest of its status; the same report again writes nothing; a later
// window replaces it whole (an empty one leaves no groups), and a report without
// one removes it, which is why the instance sends its last one every time.
func TestUtilizationReported(t *testing.T) {
	ctx := context.Background()
	name := "util-" + env.Namespace(t)
	c, writes := testenv.RecordingClient(env.Client)
	r, err := New(c, config(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	start := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := metav1.NewTime(start.Add(time.Minute))
	u := &ecsv1alpha1.InstanceUtilization{WindowStart: start, WindowEnd: end, Groups: []ecsv1alpha1.UtilizationGroup{
		{Namespace: "team", Family: "batch", Tasks: 1, CPUUsed: 100, CPUReserved: 256, MemoryUsed: 64, MemoryReserved: 512},
		{Namespace: "team", Service: "web", Family: "web", Tasks: 2, CPUUsed: 1365, CPUReserved: 1024, MemoryUsed: 240, MemoryReserved: 2048},
	}}
	usage := Usage{Running: 3, CPU: 1280, Memory: 2560, Utilization: u}
	if err := r.Report(ctx, usage); err != nil {
		t.Fatal(err)
	}
	ci := getInstance(t, name)
	if diff := cmp.Diff(u, ci.Status.Utilization); diff != "" {
		t.Errorf("status.utilization (-want +got):\n%s", diff)
	}
	if ci.Status.RunningTasksCount != 3 || ci.Status.RemainingResources.Cpu != 2048-1280 {
		t.Errorf("the rest of the status: running %d, remaining %+v", ci.Status.RunningTasksCount, ci.Status.RemainingResources)
	}

	before := len(writes.List())
	if err := r.Report(ctx, Usage{Running: 3, CPU: 1280, Memory: 2560, Utilization: u.DeepCopy()}); err != nil {
		t.Fatal(err)
	}
	if n := len(writes.List()); n != before {
		t.Errorf("an unchanged report wrote: %v", writes.List()[before:])
	}

	empty := &ecsv1alpha1.InstanceUtilization{WindowStart: end, WindowEnd: metav1.NewTime(end.Add(time.Minute))}
	if err := r.Report(ctx, Usage{Utilization: empty}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(empty, getInstance(t, name).Status.Utilization); diff != "" {
		t.Errorf("after an empty window (-want +got):\n%s", diff)
	}
	if err := r.Report(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	if got := getInstance(t, name).Status.Utilization; got != nil {
		t.Errorf("a report without utilization left %+v", got)
	}
}

func TestLeaseRenewals(t *testing.T) {
	ctx := context.Background()
	name := "lease-" + env.Namespace(t)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ecsv1alpha1.NodeLeaseNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	r, _ := New(env.Client, config(name))
	if err := r.Register(ctx, Usage{}); err != nil {
		t.Fatal(err)
	}
	var renewals []time.Time
	for i := 0; i < 3; i++ {
		if err := r.RenewLease(ctx); err != nil {
			t.Fatal(err)
		}
		var lease coordinationv1.Lease
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: name}, &lease); err != nil {
			t.Fatal(err)
		}
		if *lease.Spec.HolderIdentity != name || len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].Kind != "ContainerInstance" {
			t.Fatalf("lease %+v", lease)
		}
		renewals = append(renewals, lease.Spec.RenewTime.Time)
		time.Sleep(20 * time.Millisecond)
	}
	if !renewals[2].After(renewals[0]) {
		t.Errorf("renewTime did not advance: %v", renewals)
	}
	// Someone else touched the lease: the next renewal re-reads it and succeeds.
	var lease coordinationv1.Lease
	_ = env.Client.Get(ctx, client.ObjectKey{Namespace: ecsv1alpha1.NodeLeaseNamespace, Name: name}, &lease)
	lease.Labels = map[string]string{"touched": "yes"}
	if err := env.Client.Update(ctx, &lease); err != nil {
		t.Fatal(err)
	}
	if err := r.RenewLease(ctx); err == nil {
		t.Log("renewal over a stale lease succeeded without a conflict") // the apiserver may accept it
	}
	if err := r.RenewLease(ctx); err != nil {
		t.Errorf("renewal after a conflict: %v", err)
	}
}

func TestDetectResources(t *testing.T) {
	cpu, mem, err := DetectResources(256)
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 1024 || cpu%1024 != 0 || mem <= 0 {
		t.Errorf("detected cpu %d memory %d", cpu, mem)
	}
	if _, _, err := DetectResources(1 << 40); err == nil || !strings.Contains(err.Error(), "--reserved-memory") {
		t.Errorf("an impossible reservation: %v", err)
	}
}

func containsPort(ports []int32, p int32) bool {
	for _, x := range ports {
		if x == p {
			return true
		}
	}
	return false
}
