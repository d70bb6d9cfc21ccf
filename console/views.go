package console

import (
	"cmp"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/revision"
)

// funcs are the template helpers.
var funcs = template.FuncMap{
	"pct":          pct,
	"num":          num,
	"age":          age,
	"ts":           ts,
	"servicePath":  servicePath,
	"taskPath":     taskPath,
	"instancePath": instancePath,
	"clusterPath":  clusterPath,
	"familyPath":   familyPath,
	"lower":        strings.ToLower,
	"join":         strings.Join,
	"query":        url.QueryEscape,
}

// pct shows a percentage that may be absent (a group reserving no CPU has none).
func pct(v *int32) string {
	if v == nil {
		return "—"
	}
	return strconv.Itoa(int(*v)) + "%"
}

func num(v *int32) string {
	if v == nil {
		return "—"
	}
	return strconv.Itoa(int(*v))
}

// age is a short duration since t, as kubectl prints it.
func age(t metav1.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := time.Since(t.Time)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// ts formats a metav1.Time or *metav1.Time; absent is a dash.
func ts(v any) string {
	var t time.Time
	switch x := v.(type) {
	case metav1.Time:
		t = x.Time
	case *metav1.Time:
		if x != nil {
			t = x.Time
		}
	}
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func familyPath(ns, name string) string {
	return "/taskdefinitions/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
}

// notice says why a kind is missing from a page.
func notice(kind string, err error) string {
	if apierrors.IsForbidden(err) {
		return fmt.Sprintf("forbidden: you may not list %s, so they are not shown (%v)", kind, err)
	}
	return fmt.Sprintf("listing %s: %v", kind, err)
}

// clusterRow is a row of the clusters table.
type clusterRow struct {
	Name string
	// Status is ACTIVE, DELETING, or NO OBJECT for a cluster that instances or
	// services name without a Cluster object (they use the defaults).
	Status                        string
	Active, Draining, Registering int
	Services, Running, Pending    int32
	Utilization                   *ecsv1alpha1.ClusterUtilization
	CapacityAvailable             *metav1.Condition
	ContainerPolicy               ecsv1alpha1.ContainerPolicyLevel
}

// clusterRows joins Cluster objects with the clusters their instances and services
// name: ECS lets tasks run in a cluster without its object (the default).
func clusterRows(clusters []ecsv1alpha1.Cluster, instances []ecsv1alpha1.ContainerInstance, services []ecsv1alpha1.Service, tasks []ecsv1alpha1.Task) []clusterRow {
	rows := map[string]*clusterRow{}
	for i := range clusters {
		c := &clusters[i]
		r := &clusterRow{Name: c.Name, Status: "ACTIVE", Services: c.Status.ActiveServicesCount,
			Running: c.Status.RunningTasksCount, Pending: c.Status.PendingTasksCount,
			Utilization:       c.Status.Utilization,
			CapacityAvailable: apimeta.FindStatusCondition(c.Status.Conditions, ecsv1alpha1.ClusterConditionCapacityAvailable),
			ContainerPolicy:   ecsv1alpha1.EffectiveContainerPolicyLevel(c)}
		if !c.DeletionTimestamp.IsZero() {
			r.Status = "DELETING"
		}
		rows[c.Name] = r
	}
	orphan := func(name string) *clusterRow {
		r, ok := rows[name]
		if !ok {
			r = &clusterRow{Name: name, Status: "NO OBJECT", ContainerPolicy: ecsv1alpha1.DefaultContainerPolicyLevel}
			rows[name] = r
		}
		return r
	}
	for i := range instances {
		r := orphan(instances[i].Spec.Cluster)
		switch inventory.Status(&instances[i]) {
		case ecsv1alpha1.InstanceActive:
			r.Active++
		case ecsv1alpha1.InstanceDraining:
			r.Draining++
		case ecsv1alpha1.InstanceRegistering:
			r.Registering++
		}
	}
	for i := range services {
		if r := orphan(services[i].Spec.Cluster); r.Status == "NO OBJECT" {
			r.Services++
		}
	}
	for i := range tasks {
		if r := orphan(tasks[i].Spec.Cluster); r.Status == "NO OBJECT" {
			countTask(&tasks[i], &r.Running, &r.Pending)
		}
	}
	out := make([]clusterRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b clusterRow) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// countTask counts a task as the manager does: RUNNING, or pending until then.
func countTask(t *ecsv1alpha1.Task, running, pending *int32) {
	switch {
	case t.Status.LastStatus == ecsv1alpha1.TaskRunning:
		*running++
	case t.Status.LastStatus.Index() < ecsv1alpha1.TaskRunning.Index() && t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped:
		*pending++
	}
}

// instanceRow is a row of an instances table.
type instanceRow struct {
	Name, Cluster                   string
	Status                          ecsv1alpha1.InstanceStatusValue
	AgentConnected, Draining        bool
	RegisteredCPU, RegisteredMemory int64
	FreeCPU, FreeMemory             int64
	Running, Pending                int32
}

func instanceRowOf(ci *ecsv1alpha1.ContainerInstance) instanceRow {
	r := instanceRow{Name: ci.Name, Cluster: ci.Spec.Cluster, Status: inventory.Status(ci),
		AgentConnected: ci.Status.AgentConnected, Draining: ci.Spec.Draining,
		Running: ci.Status.RunningTasksCount, Pending: ci.Status.PendingTasksCount}
	if reg := ci.Status.RegisteredResources; reg != nil {
		r.RegisteredCPU, r.RegisteredMemory = reg.Cpu, reg.Memory
	}
	if rem := ci.Status.RemainingResources; rem != nil {
		r.FreeCPU, r.FreeMemory = rem.Cpu, rem.Memory
	}
	return r
}

func instanceRows(list []ecsv1alpha1.ContainerInstance) []instanceRow {
	out := make([]instanceRow, len(list))
	for i := range list {
		out[i] = instanceRowOf(&list[i])
	}
	slices.SortFunc(out, func(a, b instanceRow) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// serviceRow is a row of a services table.
type serviceRow struct {
	Namespace, Name, Cluster, TaskDefinition string
	Desired, Running, Pending                int32
	Rollout                                  ecsv1alpha1.RolloutState
	CPU, Memory                              *int32
}

func serviceRows(list []ecsv1alpha1.Service) []serviceRow {
	out := make([]serviceRow, len(list))
	for i := range list {
		s := &list[i]
		r := serviceRow{Namespace: s.Namespace, Name: s.Name, Cluster: s.Spec.Cluster, TaskDefinition: s.Status.TaskDefinition,
			Desired: s.Status.DesiredCount, Running: s.Status.RunningCount, Pending: s.Status.PendingCount, Rollout: s.Status.RolloutState}
		if r.TaskDefinition == "" {
			r.TaskDefinition = s.Spec.TaskDefinition
		}
		if u := s.Status.Utilization; u != nil {
			r.CPU, r.Memory = u.CPUUtilization, u.MemoryUtilization
		}
		out[i] = r
	}
	slices.SortFunc(out, func(a, b serviceRow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// taskRow is a row of a tasks table.
type taskRow struct {
	Namespace, Name, Service, TaskDefinition, Instance string
	LastStatus                                         ecsv1alpha1.TaskStatusValue
	DesiredStatus                                      ecsv1alpha1.DesiredStatus
	Health                                             ecsv1alpha1.HealthStatus
	StopCode                                           ecsv1alpha1.StopCode
	Created                                            metav1.Time
}

func taskRows(list []ecsv1alpha1.Task) []taskRow {
	out := make([]taskRow, len(list))
	for i := range list {
		t := &list[i]
		out[i] = taskRow{Namespace: t.Namespace, Name: t.Name, Service: t.Labels[ecsv1alpha1.LabelService],
			TaskDefinition: taskDefinitionOf(t), Instance: t.Spec.ContainerInstance,
			LastStatus: t.Status.LastStatus, DesiredStatus: t.Spec.DesiredStatus, Health: t.Status.HealthStatus,
			StopCode: t.Status.StopCode, Created: t.CreationTimestamp}
	}
	slices.SortFunc(out, func(a, b taskRow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// taskDefinitionOf is family:N once the task's revision is resolved.
func taskDefinitionOf(t *ecsv1alpha1.Task) string {
	if ref, err := revision.TaskRef(t); err == nil && ref.Pinned() {
		return ref.String()
	}
	return t.Spec.TaskDefinition
}
