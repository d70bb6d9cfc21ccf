package ecsapi

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

// taskFacts are what describing a task needs besides the Task: the ECS names of its
// cluster and family, and the revision it runs (Spec is nil when the revision is
// gone; its containers are then described from the task's status alone).
type taskFacts struct {
	Cluster  string
	Family   string
	Revision int32
	Spec     *ecsv1alpha1.TaskDefinitionSpec
}

// taskOut describes a Task as ECS's DescribeTasks does. A task the scheduler has not
// placed yet is PROVISIONING; one that stopped by itself has desiredStatus STOPPED,
// as ECS sets it; a task asked to stop shows its stop code and reason at once, as
// ECS does, before the agent confirms them.
func taskOut(arns ARNs, t *ecsv1alpha1.Task, f taskFacts, withTags bool) types.Task {
	id := t.Name
	last, desired := taskStatuses(t)
	out := types.Task{
		TaskArn:              aws.String(arns.Task(f.Cluster, id)),
		ClusterArn:           aws.String(arns.Cluster(f.Cluster)),
		TaskDefinitionArn:    aws.String(arns.TaskDefinition(f.Family, f.Revision)),
		LastStatus:           aws.String(last),
		DesiredStatus:        aws.String(desired),
		HealthStatus:         types.HealthStatus(orUnknown(t.Status.HealthStatus)),
		Group:                strOmitEmpty(t.Spec.Group),
		StartedBy:            strOmitEmpty(t.Spec.StartedBy),
		EnableExecuteCommand: t.Spec.EnableExecuteCommand,
		LaunchType:           taskLaunchType(t),
		Version:              t.Generation + int64(ecsv1alpha1.TaskStatusValue(last).Index()) + 1,
		CreatedAt:            metaTime(t.Status.CreatedAt, &t.CreationTimestamp),
		PullStartedAt:        metaTime(t.Status.PullStartedAt, nil),
		PullStoppedAt:        metaTime(t.Status.PullStoppedAt, nil),
		StartedAt:            metaTime(t.Status.StartedAt, nil),
		StoppingAt:           metaTime(t.Status.StoppingAt, nil),
		StoppedAt:            metaTime(t.Status.StoppedAt, nil),
		Overrides:            overridesOut(t.Spec.Overrides, f.Spec),
		Containers:           taskContainersOut(arns, f, t),
		Attachments:          []types.Attachment{},
	}
	if t.Spec.ContainerInstance != "" {
		out.ContainerInstanceArn = aws.String(arns.ContainerInstance(f.Cluster, t.Spec.ContainerInstance))
	}
	if desired == string(ecsv1alpha1.DesiredStopped) {
		out.StopCode, out.StoppedReason = taskStop(t)
	}
	if f.Spec != nil {
		cpu, memory := taskrules.TaskLimits(f.Spec, t.Spec.Overrides)
		out.Cpu, out.Memory = numOmitZero(cpu), numOmitZero(memory)
	}
	if withTags {
		out.Tags = tagsOf(t.Annotations)
	}
	return out
}

// taskStatuses are the task's lastStatus and desiredStatus as ECS reports them.
func taskStatuses(t *ecsv1alpha1.Task) (last, desired string) {
	last = string(t.Status.LastStatus)
	if last == "" {
		last = string(ecsv1alpha1.TaskProvisioning)
	}
	desired = string(ecsv1alpha1.DesiredRunning)
	if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped || t.Status.LastStatus == ecsv1alpha1.TaskStopped {
		desired = string(ecsv1alpha1.DesiredStopped)
	}
	return last, desired
}

// taskStop is a stopping or stopped task's stop code and reason: the agent's once it
// reports them, else what the stop request said.
func taskStop(t *ecsv1alpha1.Task) (types.TaskStopCode, *string) {
	code := t.Status.StopCode
	if code == "" {
		code = t.Spec.StopCode
	}
	if code == "" && t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
		code = ecsv1alpha1.StopUserInitiated
	}
	reason := t.Status.StoppedReason
	if reason == "" {
		reason = t.Spec.StopReason
	}
	if reason == "" {
		reason = taskrules.DefaultStoppedReason(code)
	}
	return types.TaskStopCode(code), strOmitEmpty(reason)
}

func taskLaunchType(t *ecsv1alpha1.Task) types.LaunchType {
	if t.Annotations[annotationLaunchType] == string(types.LaunchTypeExternal) {
		return types.LaunchTypeExternal
	}
	return types.LaunchTypeEc2
}

// taskContainersOut lists the task's containers in the task definition's order,
// with what the agent reported of each.
func taskContainersOut(arns ARNs, f taskFacts, t *ecsv1alpha1.Task) []types.Container {
	reported := map[string]*ecsv1alpha1.ContainerStatus{}
	for i := range t.Status.Containers {
		reported[t.Status.Containers[i].Name] = &t.Status.Containers[i]
	}
	out := []types.Container{}
	if f.Spec == nil {
		for i := range t.Status.Containers {
			s := &t.Status.Containers[i]
			out = append(out, containerOut(arns, f.Cluster, t, &ecsv1alpha1.ContainerDefinition{Name: s.Name}, s))
		}
		return out
	}
	for i := range f.Spec.ContainerDefinitions {
		def := effectiveContainer(&f.Spec.ContainerDefinitions[i], t.Spec.Overrides)
		out = append(out, containerOut(arns, f.Cluster, t, def, reported[def.Name]))
	}
	return out
}

// effectiveContainer is a container definition with the task's override of its cpu
// and memory applied: what the container runs with.
func effectiveContainer(def *ecsv1alpha1.ContainerDefinition, o *ecsv1alpha1.TaskOverrides) *ecsv1alpha1.ContainerDefinition {
	if o == nil {
		return def
	}
	for _, co := range o.ContainerOverrides {
		if co.Name != def.Name {
			continue
		}
		d := def.DeepCopy()
		if co.Cpu != nil {
			d.Cpu = *co.Cpu
		}
		if co.Memory != nil {
			d.Memory = co.Memory
		}
		if co.MemoryReservation != nil {
			d.MemoryReservation = co.MemoryReservation
		}
		return d
	}
	return def
}

func containerOut(arns ARNs, cluster string, t *ecsv1alpha1.Task, def *ecsv1alpha1.ContainerDefinition, s *ecsv1alpha1.ContainerStatus) types.Container {
	if s == nil {
		s = &ecsv1alpha1.ContainerStatus{Name: def.Name}
	}
	out := types.Container{
		ContainerArn:      aws.String(arns.Container(cluster, t.Name, def.Name)),
		TaskArn:           aws.String(arns.Task(cluster, t.Name)),
		Name:              aws.String(def.Name),
		Image:             strOmitEmpty(def.Image),
		ImageDigest:       strOmitEmpty(s.ImageDigest),
		RuntimeId:         strOmitEmpty(s.RuntimeID),
		LastStatus:        aws.String(string(orPending(s.LastStatus))),
		ExitCode:          s.ExitCode,
		Reason:            strOmitEmpty(s.Reason),
		HealthStatus:      types.HealthStatus(orUnknown(s.HealthStatus)),
		Cpu:               aws.String(strconv.Itoa(int(def.Cpu))),
		Memory:            int32Str(def.Memory),
		MemoryReservation: int32Str(def.MemoryReservation),
		NetworkBindings:   bindingsOut(s.NetworkBindings),
		NetworkInterfaces: interfacesOut(s.NetworkInterfaces),
	}
	if out.ImageDigest == nil {
		for _, d := range t.Spec.ImageDigests {
			if d.ContainerName == def.Name {
				out.ImageDigest = aws.String(d.Digest)
			}
		}
	}
	for _, g := range t.Spec.GPUAssignments {
		if g.ContainerName == def.Name {
			out.GpuIds = g.GPUIDs
		}
	}
	return out
}

func bindingsOut(bs []ecsv1alpha1.NetworkBinding) []types.NetworkBinding {
	out := []types.NetworkBinding{}
	for _, b := range bs {
		nb := types.NetworkBinding{BindIP: strOmitEmpty(b.BindIP), Protocol: types.TransportProtocol(b.Protocol),
			ContainerPortRange: strOmitEmpty(b.ContainerPortRange), HostPortRange: strOmitEmpty(b.HostPortRange)}
		if b.ContainerPortRange == "" {
			nb.ContainerPort, nb.HostPort = aws.Int32(b.ContainerPort), aws.Int32(b.HostPort)
		}
		out = append(out, nb)
	}
	return out
}

func interfacesOut(ns []ecsv1alpha1.NetworkInterface) []types.NetworkInterface {
	out := []types.NetworkInterface{}
	for _, n := range ns {
		out = append(out, types.NetworkInterface{PrivateIpv4Address: strOmitEmpty(n.PrivateIPv4Address)})
	}
	return out
}

func orUnknown(h ecsv1alpha1.HealthStatus) ecsv1alpha1.HealthStatus {
	if h == "" {
		return ecsv1alpha1.HealthUnknown
	}
	return h
}

func orPending(s ecsv1alpha1.ContainerStatusValue) ecsv1alpha1.ContainerStatusValue {
	if s == "" {
		return ecsv1alpha1.ContainerPending
	}
	return s
}

// strOmitEmpty is nil for an empty string, which the API then leaves out.
func strOmitEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// numOmitZero is a number as ECS's string members carry it, nil for 0 (unset).
func numOmitZero(n int64) *string {
	if n <= 0 {
		return nil
	}
	return aws.String(strconv.FormatInt(n, 10))
}

func int32Str(n *int32) *string {
	if n == nil {
		return nil
	}
	return aws.String(strconv.Itoa(int(*n)))
}

// metaTime is t, or fallback when t is unset, as a time the API encodes (nil when
// both are unset).
func metaTime(t, fallback *metav1.Time) *time.Time {
	if t == nil || t.IsZero() {
		t = fallback
	}
	if t == nil || t.IsZero() {
		return nil
	}
	v := t.Time
	return &v
}
