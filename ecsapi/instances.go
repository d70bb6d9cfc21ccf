package ecsapi

import (
	"context"
	"iter"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/placement"
)

// Container instances are cluster-scoped ContainerInstance objects that agents
// register; the API reads, drains and deregisters them, and sets their custom
// attributes (attributes.go). They are shared by every namespace, so RBAC on
// containerinstances (a ClusterRoleBinding) decides who may see and change them.

func instanceOps() map[string]handler {
	return merge(map[string]handler{
		"ListContainerInstances":        op(listContainerInstances),
		"DescribeContainerInstances":    op(describeContainerInstances),
		"UpdateContainerInstancesState": op(updateContainerInstancesState),
		"DeregisterContainerInstance":   op(deregisterContainerInstance),
	}, attributeOps())
}

// ECS's bounds on the container instance calls.
const (
	maxDescribeInstances = 100
	maxUpdateInstances   = 10
)

// instanceInCluster reads the instance ref names (an ID or ARN) in the cluster; nil
// when the cluster has no such instance.
func (c *Call) instanceInCluster(ctx context.Context, member string, cl *ecsv1alpha1.Cluster, clusterName, ref string) (*ecsv1alpha1.ContainerInstance, error) {
	arnCluster, name, err := c.ARN.Child(member, "container-instance", ref)
	if err != nil {
		return nil, err
	}
	if (arnCluster != "" && arnCluster != clusterName) || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return nil, nil
	}
	var ci ecsv1alpha1.ContainerInstance
	if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &ci); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if ci.Spec.Cluster != cl.Name {
		return nil, nil
	}
	return &ci, nil
}

// clusterInstances lists the cluster's container instances.
func (c *Call) clusterInstances(ctx context.Context, cl *ecsv1alpha1.Cluster) ([]ecsv1alpha1.ContainerInstance, error) {
	var list ecsv1alpha1.ContainerInstanceList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	out := list.Items[:0]
	for _, ci := range list.Items {
		if ci.Spec.Cluster == cl.Name {
			out = append(out, ci)
		}
	}
	return out, nil
}

func listContainerInstances(ctx context.Context, c *Call, in *ecs.ListContainerInstancesInput) (*ecs.ListContainerInstancesOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	statusOK, err := instanceStatusFilter(in.Status)
	if err != nil {
		return nil, err
	}
	var filter placement.Expression
	if f := aws.ToString(in.Filter); f != "" {
		if filter, err = placement.ParseExpression(f); err != nil {
			return nil, wire.InvalidParameter("filter", "%v", err)
		}
	}
	instances, err := c.clusterInstances(ctx, cl)
	if err != nil {
		return nil, err
	}
	arns := []string{}
	for i := range instances {
		ci := &instances[i]
		if !statusOK(instanceStatus(ci)) {
			continue
		}
		if filter != nil {
			target := &instanceTarget{ctx: ctx, c: c, name: ci.Name, attrs: inventory.Attributes(ci)}
			ok := filter.Eval(target)
			if target.err != nil {
				return nil, target.err
			}
			if !ok {
				continue
			}
		}
		arns = append(arns, c.ARN.ContainerInstance(clusterName, ci.Name))
	}
	arns, next, err := page(arns, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListContainerInstancesOutput{ContainerInstanceArns: arns, NextToken: next}, nil
}

// instanceTarget is an instance as a ListContainerInstances filter sees it. The task
// groups on it (task:group) are those of the caller's own tasks, read only when the
// filter asks.
type instanceTarget struct {
	ctx    context.Context
	c      *Call
	name   string
	attrs  map[string]string
	groups map[string]bool
	err    error
}

func (t *instanceTarget) InstanceID() string { return t.name }

func (t *instanceTarget) Attribute(name string) (string, bool) {
	v, ok := t.attrs[name]
	return v, ok
}

func (t *instanceTarget) HasTaskGroup(group string) bool { return t.taskGroups()[group] }

func (t *instanceTarget) TaskGroups() iter.Seq[string] { return maps.Keys(t.taskGroups()) }

func (t *instanceTarget) taskGroups() map[string]bool {
	if t.groups != nil {
		return t.groups
	}
	t.groups = map[string]bool{}
	var list ecsv1alpha1.TaskList
	if err := t.c.Client.List(t.ctx, &list, client.InNamespace(t.c.Namespace),
		client.MatchingFields{ecsv1alpha1.TaskFieldContainerInstance: t.name}); err != nil {
		t.err = err
		return t.groups
	}
	for i := range list.Items {
		task := &list.Items[i]
		if _, desired := taskStatuses(task); desired != string(ecsv1alpha1.DesiredStopped) && task.Spec.Group != "" {
			t.groups[task.Spec.Group] = true
		}
	}
	return t.groups
}

func describeContainerInstances(ctx context.Context, c *Call, in *ecs.DescribeContainerInstancesInput) (*ecs.DescribeContainerInstancesOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := describeCount("containerInstances", len(in.ContainerInstances), maxDescribeInstances, "Container Instances cannot be empty."); err != nil {
		return nil, err
	}
	withTags := includes(in.Include, types.ContainerInstanceFieldTags)
	withHealth := includes(in.Include, types.ContainerInstanceFieldContainerInstanceHealth)
	out := &ecs.DescribeContainerInstancesOutput{ContainerInstances: []types.ContainerInstance{}, Failures: []types.Failure{}}
	for i, ref := range in.ContainerInstances {
		member := taskRefMember("containerInstances", i)
		ci, err := c.instanceInCluster(ctx, member, cl, clusterName, ref)
		if err != nil {
			return nil, err
		}
		if ci == nil {
			out.Failures = append(out.Failures, c.missingInstance(member, clusterName, ref))
			continue
		}
		out.ContainerInstances = append(out.ContainerInstances, instanceOut(c.ARN, clusterName, ci, withTags, withHealth))
	}
	return out, nil
}

// missingInstance is the MISSING failure of a reference to no instance of the
// cluster.
func (c *Call) missingInstance(member, clusterName, ref string) types.Failure {
	_, name, _ := c.ARN.Child(member, "container-instance", ref)
	return missing(c.ARN.ContainerInstance(clusterName, name))
}

func updateContainerInstancesState(ctx context.Context, c *Call, in *ecs.UpdateContainerInstancesStateInput) (*ecs.UpdateContainerInstancesStateOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := describeCount("containerInstances", len(in.ContainerInstances), maxUpdateInstances, "Container Instances cannot be empty."); err != nil {
		return nil, err
	}
	var draining bool
	switch in.Status {
	case types.ContainerInstanceStatusActive:
	case types.ContainerInstanceStatusDraining:
		draining = true
	default:
		return nil, wire.InvalidParameter("status", "must be ACTIVE or DRAINING, not %q", in.Status)
	}
	out := &ecs.UpdateContainerInstancesStateOutput{ContainerInstances: []types.ContainerInstance{}, Failures: []types.Failure{}}
	for i, ref := range in.ContainerInstances {
		member := taskRefMember("containerInstances", i)
		ci, err := c.instanceInCluster(ctx, member, cl, clusterName, ref)
		if err != nil {
			return nil, err
		}
		if ci == nil {
			out.Failures = append(out.Failures, c.missingInstance(member, clusterName, ref))
			continue
		}
		if ci.Spec.Draining != draining {
			patch := client.MergeFrom(ci.DeepCopy())
			ci.Spec.Draining = draining
			if err := c.Client.Patch(ctx, ci, patch); err != nil {
				return nil, err
			}
		}
		out.ContainerInstances = append(out.ContainerInstances, instanceOut(c.ARN, clusterName, ci, false, false))
	}
	return out, nil
}

func deregisterContainerInstance(ctx context.Context, c *Call, in *ecs.DeregisterContainerInstanceInput) (*ecs.DeregisterContainerInstanceOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	ref := aws.ToString(in.ContainerInstance)
	if ref == "" {
		return nil, wire.InvalidParameter("containerInstance", "is required")
	}
	ci, err := c.instanceInCluster(ctx, "containerInstance", cl, clusterName, ref)
	if err != nil {
		return nil, err
	}
	if ci == nil {
		return nil, wire.Errorf(wire.InvalidParameterException, "The referenced container instance was not found.")
	}
	if !aws.ToBool(in.Force) {
		n, err := c.tasksOnInstance(ctx, ci.Name)
		if err != nil {
			return nil, err
		}
		if n > 0 || ci.Status.RunningTasksCount+ci.Status.PendingTasksCount > 0 {
			return nil, wire.Errorf(wire.InvalidParameterException, "Found running tasks on the instance.")
		}
	}
	if err := c.Client.Delete(ctx, ci, client.Preconditions{UID: &ci.UID}); err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	out := instanceOut(c.ARN, clusterName, ci, false, false)
	out.Status = aws.String(string(ecsv1alpha1.InstanceInactive))
	return &ecs.DeregisterContainerInstanceOutput{ContainerInstance: &out}, nil
}

// tasksOnInstance counts the tasks bound to an instance that have not stopped, in
// every namespace: the server's own identity reads them, since the instance is
// shared and the caller sees its own namespace only. The agent's counts lag a task
// bound a moment ago; this does not.
func (c *Call) tasksOnInstance(ctx context.Context, name string) (int, error) {
	var list ecsv1alpha1.TaskList
	if err := c.Self.List(ctx, &list, client.MatchingFields{ecsv1alpha1.TaskFieldContainerInstance: name}); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		if list.Items[i].Status.LastStatus != ecsv1alpha1.TaskStopped {
			n++
		}
	}
	return n, nil
}
