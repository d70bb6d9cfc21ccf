package hollow

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/version"
	"github.com/berthdev/berth/test/testenv"
)

// instanceView is what a test checks of a registered instance.
type instanceView struct {
	Cluster       string
	Registered    *ecsv1alpha1.Resources
	Remaining     *ecsv1alpha1.Resources
	Running       int32
	Pending       int32
	Attributes    map[string]string
	Addresses     []ecsv1alpha1.InstanceAddress
	Versions      *ecsv1alpha1.VersionInfo
	RuntimeReady  string
	ManagerFields string // status.status, agentConnected, Connected: never the agent's
	RegisteredAt  bool
}

func registrationOf(ci *ecsv1alpha1.ContainerInstance) instanceView {
	r := instanceView{
		Cluster: ci.Spec.Cluster, Registered: ci.Status.RegisteredResources, Remaining: ci.Status.RemainingResources,
		Running: ci.Status.RunningTasksCount, Pending: ci.Status.PendingTasksCount, Attributes: map[string]string{},
		Addresses: ci.Status.Addresses, Versions: ci.Status.VersionInfo, RegisteredAt: ci.Status.RegisteredAt != nil,
	}
	for _, a := range ci.Status.Attributes {
		r.Attributes[a.Name] = a.Value
	}
	if c := meta.FindStatusCondition(ci.Status.Conditions, ecsv1alpha1.InstanceConditionRuntimeReady); c != nil {
		r.RuntimeReady = string(c.Status) + "/" + c.Reason
	}
	r.ManagerFields = fmt.Sprintf("status=%q agentConnected=%v connected=%v", ci.Status.Status, ci.Status.AgentConnected,
		meta.FindStatusCondition(ci.Status.Conditions, ecsv1alpha1.InstanceConditionConnected) != nil)
	return r
}

// TestRegistration: every simulated instance registers through the agent's own
// registration, with the Config's resources, zones and attributes.
func TestRegistration(t *testing.T) {
	needEnv(t)
	a, _ := runAgent(t, Config{
		Cluster: "reg", Instances: 3, NamePrefix: "reg", CPU: 2048, Memory: 4096,
		Zones:      []string{"zone-a", "zone-b"},
		Attributes: map[string]string{"stack": "prod", "ecs.instance-type": "m5.large"},
	})
	if diff := cmp.Diff([]string{"reg-0000", "reg-0001", "reg-0002"}, a.Names()); diff != "" {
		t.Fatalf("Names (-want +got):\n%s", diff)
	}
	arch := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[goruntime.GOARCH]
	reserved := []int32{22, 2375, 2376, 51678, 51679}
	resources := &ecsv1alpha1.Resources{Cpu: 2048, Memory: 4096, Ports: reserved, UDPPorts: reserved}
	for i, zone := range []string{"zone-a", "zone-b", "zone-a"} {
		name := fmt.Sprintf("reg-%04d", i)
		t.Run(name, func(t *testing.T) {
			want := instanceView{
				Cluster: "reg", Registered: resources, Remaining: resources,
				Attributes: map[string]string{
					"ecs.os-type": "linux", "ecs.cpu-architecture": arch, "ecs.availability-zone": zone,
					"ecs.instance-type": "m5.large", "stack": "prod",
				},
				Addresses:     []ecsv1alpha1.InstanceAddress{{Type: ecsv1alpha1.AddressInternalIP, Address: fmt.Sprintf("10.250.0.%d", i+1)}},
				Versions:      &ecsv1alpha1.VersionInfo{AgentVersion: "hollow/" + version.Version, ContainerdVersion: "in-memory"},
				RuntimeReady:  "True/" + ecsv1alpha1.ReasonRuntimeUp,
				ManagerFields: `status="" agentConnected=false connected=false`,
				RegisteredAt:  true,
			}
			testenv.EventuallyWithin(t, 20*time.Second, "registration", func() error {
				ci := &ecsv1alpha1.ContainerInstance{}
				if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ci); err != nil {
					return err
				}
				got := registrationOf(ci)
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(ecsv1alpha1.VersionInfo{}, "KernelVersion")); diff != "" {
					return fmt.Errorf("(-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
}

func TestLeasesRenewed(t *testing.T) {
	needEnv(t)
	runAgent(t, Config{Cluster: "lease", Instances: 2, NamePrefix: "lease", LeaseInterval: 200 * time.Millisecond})
	for _, name := range []string{"lease-0000", "lease-0001"} {
		var first *coordinationv1.Lease
		testenv.EventuallyWithin(t, 20*time.Second, "lease "+name, func() error {
			var err error
			first, err = getLease(name)
			return err
		})
		ci := getInstance(t, name)
		if got := *first.Spec.HolderIdentity; got != name {
			t.Errorf("holderIdentity = %q, want %q", got, name)
		}
		if got := *first.Spec.LeaseDurationSeconds; got != LeaseDurationSeconds {
			t.Errorf("leaseDurationSeconds = %d, want %d", got, LeaseDurationSeconds)
		}
		if refs := first.OwnerReferences; len(refs) != 1 || refs[0].UID != ci.UID || refs[0].Kind != "ContainerInstance" {
			t.Errorf("ownerReferences = %+v, want the ContainerInstance %s", refs, ci.UID)
		}
		testenv.EventuallyWithin(t, 10*time.Second, "renewal of "+name, func() error {
			l, err := getLease(name)
			if err != nil {
				return err
			}
			if !l.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
				return fmt.Errorf("renewTime %v did not advance from %v", l.Spec.RenewTime, first.Spec.RenewTime)
			}
			return nil
		})
	}
}

func TestDeregister(t *testing.T) {
	needEnv(t)
	a, _ := runAgent(t, Config{Cluster: "dereg", Instances: 2, NamePrefix: "dereg", LeaseInterval: 100 * time.Millisecond})
	testenv.EventuallyWithin(t, 20*time.Second, "leases", func() error {
		for _, n := range a.Names() {
			if _, err := getLease(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err := a.Deregister("dereg-0001"); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if err := a.Deregister("dereg-0001"); err == nil {
		t.Errorf("second Deregister succeeded, want an unknown-instance error")
	}
	if diff := cmp.Diff([]string{"dereg-0000"}, a.Names()); diff != "" {
		t.Errorf("Names after Deregister (-want +got):\n%s", diff)
	}
	// Renewals and status writes keep going for the other instance, never resurrecting
	// the deregistered one.
	time.Sleep(time.Second)
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "dereg-0001"}, ci); !apierrors.IsNotFound(err) {
		t.Errorf("ContainerInstance after Deregister: %v, want NotFound", err)
	}
	if _, err := getLease("dereg-0001"); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after Deregister: %v, want NotFound", err)
	}
	if _, err := getLease("dereg-0000"); err != nil {
		t.Errorf("Lease of the remaining instance: %v", err)
	}
}

// TestManyInstances registers 500 instances in one process: every one registers and
// renews its Lease.
func TestManyInstances(t *testing.T) {
	needEnv(t)
	const n = 500
	start := time.Now()
	runAgent(t, Config{Cluster: "many", Instances: n, NamePrefix: "many", LeaseInterval: 3 * time.Second})
	countLeases := func(renewed bool) (int, error) {
		var list coordinationv1.LeaseList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ecsv1alpha1.NodeLeaseNamespace)); err != nil {
			return 0, err
		}
		c := 0
		for _, l := range list.Items {
			// A renewal is an update: the resourceVersion moved past the creation's.
			if strings.HasPrefix(l.Name, "many-") && (!renewed || l.Spec.RenewTime.After(l.CreationTimestamp.Add(time.Second))) {
				c++
			}
		}
		return c, nil
	}
	testenv.EventuallyWithin(t, 90*time.Second, "leases of every instance", func() error {
		c, err := countLeases(false)
		if err != nil {
			return err
		}
		if c != n {
			return fmt.Errorf("%d leases", c)
		}
		return nil
	})
	t.Logf("%d leases after %v", n, time.Since(start))
	testenv.EventuallyWithin(t, 90*time.Second, "registered instances", func() error {
		var list ecsv1alpha1.ContainerInstanceList
		if err := env.Client.List(context.Background(), &list); err != nil {
			return err
		}
		c := 0
		for _, ci := range list.Items {
			if ci.Spec.Cluster == "many" && ci.Status.RegisteredResources != nil {
				c++
			}
		}
		if c != n {
			return fmt.Errorf("%d instances registered", c)
		}
		return nil
	})
	testenv.EventuallyWithin(t, 90*time.Second, "renewed leases", func() error {
		c, err := countLeases(true)
		if err != nil {
			return err
		}
		if c != n {
			return fmt.Errorf("%d leases renewed", c)
		}
		return nil
	})
	t.Logf("%d instances registered and renewed after %v", n, time.Since(start))
}
