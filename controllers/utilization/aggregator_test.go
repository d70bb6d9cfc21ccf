package utilization

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/utilization"
)

var windowEnd = metav1.NewTime(time.Unix(1_700_000_000, 0))

func instance(name, cluster string, connected bool, groups ...ecsv1alpha1.UtilizationGroup) *ecsv1alpha1.ContainerInstance {
	ci := &ecsv1alpha1.ContainerInstance{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       ecsv1alpha1.ContainerInstanceSpec{Cluster: cluster},
		Status: ecsv1alpha1.ContainerInstanceStatus{
			Status: ecsv1alpha1.InstanceActive, AgentConnected: connected,
			RegisteredResources: &ecsv1alpha1.Resources{Cpu: 2048, Memory: 4096},
			RemainingResources:  &ecsv1alpha1.Resources{Cpu: 1024, Memory: 3072},
		},
	}
	if groups != nil {
		ci.Status.Utilization = &ecsv1alpha1.InstanceUtilization{WindowEnd: windowEnd, Groups: groups}
	}
	return ci
}

func group(ns, service, family string, tasks int32, cpuUsed, cpuReserved int64) ecsv1alpha1.UtilizationGroup {
	return ecsv1alpha1.UtilizationGroup{Namespace: ns, Service: service, Family: family, Tasks: tasks,
		CPUUsed: cpuUsed, CPUReserved: cpuReserved, MemoryUsed: 64, MemoryReserved: 256}
}

func unplaceable(uid, cluster string) *ecsv1alpha1.Task {
	return &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: uid, Namespace: "ns", UID: types.UID(uid)},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: cluster, TaskDefinition: "web", DesiredStatus: ecsv1alpha1.DesiredRunning},
		Status: ecsv1alpha1.TaskStatus{TaskDefinitionRevision: 3, Conditions: []metav1.Condition{{
			Type: ecsv1alpha1.TaskConditionPlaced, Status: metav1.ConditionFalse, Reason: ecsv1alpha1.ReasonUnplaceable}}},
	}
}

func TestSetInstanceWakesWhatItTouches(t *testing.T) {
	a := NewAggregator(nil)
	web := GroupKey{Namespace: "ns", Name: "web"}
	got := a.SetInstance("i-1", instance("i-1", "prod", true, group("ns", "web", "web", 2, 512, 1024), group("ns", "", "batch", 1, 10, 256)))
	want := Keys{Services: []GroupKey{web}, Families: []GroupKey{{Namespace: "ns", Name: "batch"}, web}, Clusters: []string{"prod"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first report wakes (-want +got):\n%s", diff)
	}
	// The agent's other status writes (counts, conditions) change nothing summed.
	if got := a.SetInstance("i-1", instance("i-1", "prod", true, group("ns", "web", "web", 2, 512, 1024), group("ns", "", "batch", 1, 10, 256))); !got.empty() {
		t.Errorf("unchanged report woke %+v", got)
	}
	// A disconnected instance's report stops counting: its keys wake.
	got = a.SetInstance("i-1", instance("i-1", "prod", false, group("ns", "web", "web", 2, 512, 1024)))
	if len(got.Services) != 1 || len(got.Clusters) != 1 {
		t.Errorf("disconnection woke %+v", got)
	}
	if tot := a.Service(web); tot.Tasks != 0 {
		t.Errorf("a disconnected instance still counts: %+v", tot)
	}
	if got := a.SetInstance("i-1", nil); len(got.Clusters) != 1 {
		t.Errorf("deletion woke %+v", got)
	}
}

func TestSumsAcrossInstances(t *testing.T) {
	a := NewAggregator(nil)
	a.SetInstance("i-1", instance("i-1", "prod", true, group("ns", "web", "web", 2, 900, 1024)))
	a.SetInstance("i-2", instance("i-2", "prod", true, group("ns", "web", "web", 1, 100, 1024), group("other", "web", "web", 1, 1000, 1000)))
	a.SetInstance("i-3", instance("i-3", "dev", true, group("ns", "web", "web", 1, 0, 1024)))
	web := GroupKey{Namespace: "ns", Name: "web"}

	s := a.Service(web).Status()
	if s.Tasks != 4 || *s.CPUUtilization != 33 || s.MeasuredAt == nil { // 1000 of 3072 units
		t.Errorf("service web = %+v", s)
	}
	tot, capacity := a.Cluster("prod")
	cs := capacity.ClusterStatus(tot)
	// prod: 2000 units used of 4096 registered; 2048 of 4096 reserved.
	if cs.Tasks != 4 || *cs.CPUUtilization != 49 || *cs.CPUReservation != 50 || cs.Instances != 2 || cs.UnplaceableTasks != 0 {
		t.Errorf("cluster prod = %+v", cs)
	}
	snap := a.Snapshot()
	if got := snap.Services["dev"][web].Tasks; got != 1 {
		t.Errorf("snapshot dev/web tasks = %d", got)
	}
	if got := snap.Families[web].Tasks; got != 4 {
		t.Errorf("snapshot family ns/web tasks = %d", got)
	}
}

func TestWaitingTasks(t *testing.T) {
	resolvable := false
	a := NewAggregator(func(w Waiting) (int64, int64, bool) {
		if w.TaskDefinition != "web:3" {
			t.Errorf("resolving %q, want web:3 (the revision the scheduler recorded)", w.TaskDefinition)
		}
		return 256, 512, resolvable
	})
	if k := a.SetTask("t-1", unplaceable("t-1", "prod")); len(k.Clusters) != 1 {
		t.Fatalf("a task starting to wait woke %+v", k)
	}
	if k := a.SetTask("t-1", unplaceable("t-1", "prod")); !k.empty() {
		t.Errorf("an unchanged waiting task woke %+v", k)
	}
	if _, c := a.Cluster("prod"); c.Unplaceable != 1 || c.WaitingCPU != 0 {
		t.Errorf("an unresolvable waiting task: %+v", c)
	}
	resolvable = true
	a.ResolveWaiting("prod")
	_, c := a.Cluster("prod")
	if diff := cmp.Diff(utilization.Capacity{Unplaceable: 1, WaitingCPU: 256, WaitingMemory: 512}, c); diff != "" {
		t.Errorf("capacity (-want +got):\n%s", diff)
	}
	if snap := a.Snapshot(); snap.Clusters["prod"].Capacity != c {
		t.Errorf("the scrape sees %+v, the status %+v", snap.Clusters["prod"].Capacity, c)
	}
	policy := unplaceable("t-2", "prod")
	policy.Status.Conditions[0].Reason = ecsv1alpha1.ReasonContainerPolicyViolation
	if k := a.SetTask("t-2", policy); !k.empty() {
		t.Errorf("a task refused by policy counts as waiting for room: %+v", k)
	}
	placed := unplaceable("t-1", "prod")
	placed.Spec.ContainerInstance = "i-1"
	if k := a.SetTask("t-1", placed); len(k.Clusters) != 1 {
		t.Errorf("placing a waiting task woke %+v", k)
	}
	if snap := a.Snapshot(); snap.Clusters["prod"].Capacity.Unplaceable != 0 {
		t.Errorf("placed task still counted: %+v", snap.Clusters["prod"])
	}
}
