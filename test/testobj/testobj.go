// Package testobj builds Berth objects for tests with a fluent API, so a test states
// only what matters to it: testobj.TaskDefinition(ns, "web").Container("app", "img:1").Obj().
package testobj

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TaskDefinitionBuilder builds a TaskDefinition.
type TaskDefinitionBuilder struct{ obj ecsv1alpha1.TaskDefinition }

// TaskDefinition starts a TaskDefinition with no containers.
func TaskDefinition(ns, name string) *TaskDefinitionBuilder {
	return &TaskDefinitionBuilder{obj: ecsv1alpha1.TaskDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "TaskDefinition"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}}
}

// Container adds an essential container with 128 MiB of memory and 256 cpu units.
func (b *TaskDefinitionBuilder) Container(name, image string) *TaskDefinitionBuilder {
	b.obj.Spec.ContainerDefinitions = append(b.obj.Spec.ContainerDefinitions, ecsv1alpha1.ContainerDefinition{
		Name: name, Image: image, Memory: ptr.To[int32](128), Cpu: 256, Essential: ptr.To(true),
	})
	return b
}

// Last edits the most recently added container.
func (b *TaskDefinitionBuilder) Last(edit func(*ecsv1alpha1.ContainerDefinition)) *TaskDefinitionBuilder {
	edit(&b.obj.Spec.ContainerDefinitions[len(b.obj.Spec.ContainerDefinitions)-1])
	return b
}

// DependsOn makes the most recent container wait for another.
func (b *TaskDefinitionBuilder) DependsOn(container string, cond ecsv1alpha1.DependencyCondition) *TaskDefinitionBuilder {
	return b.Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.DependsOn = append(c.DependsOn, ecsv1alpha1.ContainerDependency{ContainerName: container, Condition: cond})
	})
}

// Port publishes a container port of the most recent container on hostPort (0: dynamic).
func (b *TaskDefinitionBuilder) Port(containerPort, hostPort int32) *TaskDefinitionBuilder {
	return b.Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.PortMappings = append(c.PortMappings, ecsv1alpha1.PortMapping{
			ContainerPort: containerPort, HostPort: ptr.To(hostPort), Protocol: ecsv1alpha1.ProtocolTCP,
		})
	})
}

// HealthCheck gives the most recent container a CMD-SHELL health check.
func (b *TaskDefinitionBuilder) HealthCheck(cmd string) *TaskDefinitionBuilder {
	return b.Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.HealthCheck = &ecsv1alpha1.HealthCheck{Command: []string{"CMD-SHELL", cmd}}
	})
}

// HistoryLimit sets revisionHistoryLimit.
func (b *TaskDefinitionBuilder) HistoryLimit(n int32) *TaskDefinitionBuilder {
	b.obj.Spec.RevisionHistoryLimit = ptr.To(n)
	return b
}

// Network sets the network mode.
func (b *TaskDefinitionBuilder) Network(m ecsv1alpha1.NetworkMode) *TaskDefinitionBuilder {
	b.obj.Spec.NetworkMode = m
	return b
}

// Obj returns the built object.
func (b *TaskDefinitionBuilder) Obj() *ecsv1alpha1.TaskDefinition { return b.obj.DeepCopy() }

// TaskBuilder builds a Task.
type TaskBuilder struct{ obj ecsv1alpha1.Task }

// Task starts a Task running taskDefinition in the default cluster.
func Task(ns, name, taskDefinition string) *TaskBuilder {
	return &TaskBuilder{obj: ecsv1alpha1.Task{
		TypeMeta:   metav1.TypeMeta{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Task"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ecsv1alpha1.TaskSpec{
			Cluster: ecsv1alpha1.DefaultClusterName, TaskDefinition: taskDefinition,
			DesiredStatus: ecsv1alpha1.DesiredRunning,
		},
	}}
}

// Cluster sets spec.cluster.
func (b *TaskBuilder) Cluster(c string) *TaskBuilder { b.obj.Spec.Cluster = c; return b }

// On binds the task to an instance at creation (StartTask).
func (b *TaskBuilder) On(instance string) *TaskBuilder {
	b.obj.Spec.ContainerInstance = instance
	return b
}

// Group sets spec.group.
func (b *TaskBuilder) Group(g string) *TaskBuilder { b.obj.Spec.Group = g; return b }

// Constraint adds a placement constraint.
func (b *TaskBuilder) Constraint(t ecsv1alpha1.PlacementConstraintType, expr string) *TaskBuilder {
	b.obj.Spec.PlacementConstraints = append(b.obj.Spec.PlacementConstraints, ecsv1alpha1.PlacementConstraint{Type: t, Expression: expr})
	return b
}

// Strategy adds a placement strategy.
func (b *TaskBuilder) Strategy(t ecsv1alpha1.PlacementStrategyType, field string) *TaskBuilder {
	b.obj.Spec.PlacementStrategy = append(b.obj.Spec.PlacementStrategy, ecsv1alpha1.PlacementStrategy{Type: t, Field: field})
	return b
}

// Obj returns the built object.
func (b *TaskBuilder) Obj() *ecsv1alpha1.Task { return b.obj.DeepCopy() }

// ServiceBuilder builds a Service.
type ServiceBuilder struct{ obj ecsv1alpha1.Service }

// Service starts a REPLICA Service of desired tasks in the default cluster, with ECS's
// default deployment bounds (100% / 200%).
func Service(ns, name, taskDefinition string, desired int32) *ServiceBuilder {
	return &ServiceBuilder{obj: ecsv1alpha1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ecsv1alpha1.ServiceSpec{
			Cluster: ecsv1alpha1.DefaultClusterName, TaskDefinition: taskDefinition, DesiredCount: ptr.To(desired),
			SchedulingStrategy: ecsv1alpha1.SchedulingReplica,
			DeploymentConfiguration: ecsv1alpha1.DeploymentConfiguration{
				MinimumHealthyPercent: ptr.To[int32](100), MaximumPercent: ptr.To[int32](200),
			},
		},
	}}
}

// Daemon makes the service a DAEMON service.
func (b *ServiceBuilder) Daemon() *ServiceBuilder {
	b.obj.Spec.SchedulingStrategy = ecsv1alpha1.SchedulingDaemon
	b.obj.Spec.DesiredCount = nil
	return b
}

// Cluster sets spec.cluster.
func (b *ServiceBuilder) Cluster(c string) *ServiceBuilder { b.obj.Spec.Cluster = c; return b }

// Bounds sets minimumHealthyPercent and maximumPercent.
func (b *ServiceBuilder) Bounds(minPct, maxPct int32) *ServiceBuilder {
	b.obj.Spec.DeploymentConfiguration.MinimumHealthyPercent = ptr.To(minPct)
	b.obj.Spec.DeploymentConfiguration.MaximumPercent = ptr.To(maxPct)
	return b
}

// CircuitBreaker enables the deployment circuit breaker.
func (b *ServiceBuilder) CircuitBreaker(rollback bool) *ServiceBuilder {
	b.obj.Spec.DeploymentConfiguration.DeploymentCircuitBreaker = &ecsv1alpha1.DeploymentCircuitBreaker{Enable: true, Rollback: rollback}
	return b
}

// UnreachableGrace sets instanceUnreachableGracePeriodSeconds.
func (b *ServiceBuilder) UnreachableGrace(seconds int32) *ServiceBuilder {
	b.obj.Spec.InstanceUnreachableGracePeriodSeconds = ptr.To(seconds)
	return b
}

// Strategy adds a placement strategy.
func (b *ServiceBuilder) Strategy(t ecsv1alpha1.PlacementStrategyType, field string) *ServiceBuilder {
	b.obj.Spec.PlacementStrategy = append(b.obj.Spec.PlacementStrategy, ecsv1alpha1.PlacementStrategy{Type: t, Field: field})
	return b
}

// Obj returns the built object.
func (b *ServiceBuilder) Obj() *ecsv1alpha1.Service { return b.obj.DeepCopy() }
