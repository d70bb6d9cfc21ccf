package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestContainerPolicyRefusesAndRelaxes: a Cluster at the default level (baseline)
// refuses a Service whose revision runs a privileged container and a standalone Task
// in the host's network: the Service is not Accepted and creates no task, the Task
// is not placed, both say which fields and record a Warning. Switching the Cluster to
// privileged lets both run. Tightening it again stops nothing that runs, but a task
// that goes away is not replaced.
func TestContainerPolicyRefusesAndRelaxes(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	cluster := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: uniqueCluster(ns)}}
	create(t, cluster)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cluster) })
	if level := getCluster(t, cluster.Name).Spec.ContainerPolicy; level == nil || level.Level != ecsv1alpha1.ContainerPolicyBaseline {
		t.Fatalf("a Cluster that sets no container policy has %+v, want the default level baseline", level)
	}
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster.Name, Instances: 1, NamePrefix: ns})
	waitConnected(t, agents.Names()...)

	create(t,
		testobj.TaskDefinition(ns, "agent").Container("agent", "agent:1").
			Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true }).Obj(),
		testobj.Service(ns, "agent", "agent", 2).Cluster(cluster.Name).Obj(),
		testobj.TaskDefinition(ns, "probe").Network(ecsv1alpha1.NetworkModeHost).Container("probe", "probe:1").Obj(),
		testobj.Task(ns, "probe", "probe").Cluster(cluster.Name).Obj(),
	)
	const (
		privilegedField = "spec.containerDefinitions[0].privileged: Forbidden"
		hostNetField    = "spec.networkMode: Forbidden"
	)
	waitFor(t, 30*time.Second, "service refused", func() error {
		return hasCondition(getService(t, ns, "agent").Status.Conditions, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, privilegedField)
	})
	waitFor(t, 30*time.Second, "task refused", func() error {
		return hasCondition(getTask(t, ns, "probe").Status.Conditions, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionFalse, hostNetField)
	})
	waitFor(t, 30*time.Second, "Warning Events", func() error {
		if err := hasWarning(ctx, ns, "Service", "agent", privilegedField); err != nil {
			return err
		}
		return hasWarning(ctx, ns, "Task", "probe", hostNetField)
	})
	// Refused, not merely slow: nothing was created or bound meanwhile.
	time.Sleep(time.Second)
	if tasks := listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "agent"}); len(tasks) != 0 {
		t.Fatalf("the refused service created tasks:\n%s", describeTasks(tasks))
	}
	if task := getTask(t, ns, "probe"); task.Spec.ContainerInstance != "" || task.Status.LastStatus != ecsv1alpha1.TaskProvisioning {
		t.Fatalf("the refused task was placed on %q and is %s", task.Spec.ContainerInstance, task.Status.LastStatus)
	}

	setPolicy(t, cluster.Name, ecsv1alpha1.ContainerPolicyPrivileged)
	steady(t, ns, "agent", 2, "agent:1")
	waitFor(t, 30*time.Second, "task runs", func() error {
		task := getTask(t, ns, "probe")
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("probe is %s: %s", task.Status.LastStatus, describe(task.Status.Conditions))
		}
		return hasCondition(task.Status.Conditions, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionTrue, "")
	})

	// Tightened again: what runs keeps running (as Pod Security admission never
	// evicts), but a stopped task is not replaced.
	setPolicy(t, cluster.Name, ecsv1alpha1.ContainerPolicyBaseline)
	waitFor(t, 30*time.Second, "service refused again", func() error {
		return hasCondition(getService(t, ns, "agent").Status.Conditions, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, privilegedField)
	})
	victim := liveTasks(listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "agent"}))[0]
	if err := env.Client.Patch(ctx, &victim, client.RawPatch(types.MergePatchType,
		[]byte(`{"spec":{"desiredStatus":"STOPPED","stopReason":"policy test"}}`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "stopped task reported", func() error {
		if got := getTask(t, ns, victim.Name); got.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("%s is %s", victim.Name, got.Status.LastStatus)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // time enough for a replacement, were one started
	all := listTasks(t, ns, client.MatchingLabels{ecsv1alpha1.LabelService: "agent"})
	if live := liveTasks(all); len(live) != 1 || live[0].Status.LastStatus != ecsv1alpha1.TaskRunning {
		t.Errorf("after tightening and one stop, want the other task still RUNNING and no replacement:\n%s", describeTasks(all))
	}
	if task := getTask(t, ns, "probe"); task.Status.LastStatus != ecsv1alpha1.TaskRunning || task.Spec.DesiredStatus != ecsv1alpha1.DesiredRunning {
		t.Errorf("the running standalone task was touched: desired %s, last %s", task.Spec.DesiredStatus, task.Status.LastStatus)
	}
}

// TestContainerPolicyChangeRetriesRefusedTask: a task refused by the policy waits
// for a change of its Cluster's policy, not for something else to happen in the
// cluster: with nothing else going on, relaxing the policy places it.
func TestContainerPolicyChangeRetriesRefusedTask(t *testing.T) {
	ns := env.Namespace(t)
	cluster := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: uniqueCluster(ns)},
		Spec: ecsv1alpha1.ClusterSpec{ContainerPolicy: &ecsv1alpha1.ContainerPolicy{Level: ecsv1alpha1.ContainerPolicyRestricted}}}
	create(t, cluster)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), cluster) })
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster.Name, Instances: 1, NamePrefix: ns})
	waitConnected(t, agents.Names()...)
	create(t,
		testobj.TaskDefinition(ns, "nfs").Container("mount", "nfs:1").Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Add: []ecsv1alpha1.Capability{"SYS_ADMIN"}}}
		}).Obj(),
		testobj.Task(ns, "nfs", "nfs").Cluster(cluster.Name).Obj(),
	)
	const capField = "spec.containerDefinitions[0].linuxParameters.capabilities.add[0]: Forbidden"
	waitFor(t, 30*time.Second, "task refused at restricted", func() error {
		return hasCondition(getTask(t, ns, "nfs").Status.Conditions, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionFalse, capField)
	})
	// Baseline refuses SYS_ADMIN too: the message changes with the level.
	setPolicy(t, cluster.Name, ecsv1alpha1.ContainerPolicyBaseline)
	waitFor(t, 15*time.Second, "task refused at baseline", func() error {
		return hasCondition(getTask(t, ns, "nfs").Status.Conditions, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionFalse, "level baseline")
	})
	setPolicy(t, cluster.Name, ecsv1alpha1.ContainerPolicyPrivileged)
	waitFor(t, 15*time.Second, "task placed once the policy allows it", func() error {
		return hasCondition(getTask(t, ns, "nfs").Status.Conditions, ecsv1alpha1.TaskConditionPlaced, metav1.ConditionTrue, "")
	})
}

func getCluster(t *testing.T, name string) *ecsv1alpha1.Cluster {
	t.Helper()
	var c ecsv1alpha1.Cluster
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func setPolicy(t *testing.T, cluster string, level ecsv1alpha1.ContainerPolicyLevel) {
	t.Helper()
	c := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: cluster}}
	patch := fmt.Sprintf(`{"spec":{"containerPolicy":{"level":%q}}}`, level)
	if err := env.Client.Patch(context.Background(), c, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// hasCondition checks a condition's status, and that its message contains msg.
func hasCondition(conds []metav1.Condition, typ string, status metav1.ConditionStatus, msg string) error {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil || c.Status != status || !strings.Contains(c.Message, msg) {
		return fmt.Errorf("condition %s is %+v, want %s with %q", typ, c, status, msg)
	}
	if status == metav1.ConditionFalse && c.Reason != ecsv1alpha1.ReasonContainerPolicyViolation {
		return fmt.Errorf("condition %s has reason %s, want %s", typ, c.Reason, ecsv1alpha1.ReasonContainerPolicyViolation)
	}
	return nil
}

// hasWarning finds a ContainerPolicyViolation Warning about an object whose note
// contains note.
func hasWarning(ctx context.Context, ns, kind, name, note string) error {
	notes, err := warningNotes(ctx, ns, kind, name, ecsv1alpha1.ReasonContainerPolicyViolation)
	if err != nil {
		return err
	}
	for _, n := range notes {
		if strings.Contains(n, note) {
			return nil
		}
	}
	return fmt.Errorf("no %s Warning for %s %s naming %q among %q", ecsv1alpha1.ReasonContainerPolicyViolation, kind, name, note, notes)
}

// warningNotes are the notes of the Warning Events with reason about an object.
func warningNotes(ctx context.Context, ns, kind, name, reason string) ([]string, error) {
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Type == "Warning" && e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes, nil
}
