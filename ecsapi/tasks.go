package ecsapi

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// Tasks are namespaced Task objects: the caller's namespace is its account. RunTask
// creates Tasks that the manager's scheduler places; StartTask creates them bound to
// the instances named; StopTask sets desiredStatus STOPPED. The cluster a task names
// is looked up with the server's own identity: a namespace's user runs tasks in a
// shared cluster as an ECS account does in its cluster, and RBAC decides on the Task
// itself.

func taskOps() map[string]handler {
	return map[string]handler{
		"RunTask":       op(runTask),
		"StartTask":     op(startTask),
		"StopTask":      op(stopTask),
		"DescribeTasks": op(describeTasks),
		"ListTasks":     op(listTasks),
	}
}

// conflictException is RunTask's answer to a clientToken reused with other
// parameters.
const conflictException = "ConflictException"

// taskWorkers bounds the apiserver calls one request makes at once.
const taskWorkers = 8

// readCluster reads the cluster a task or instance operation names (see above for
// why as the server) and returns it with its ECS name.
func (c *Call) readCluster(ctx context.Context, ref *string) (*ecsv1alpha1.Cluster, string, error) {
	self := *c
	self.Client = c.Self
	cl, err := self.getCluster(ctx, "cluster", aws.ToString(ref))
	if err != nil {
		return nil, "", err
	}
	return cl, ecsName(cl.Annotations, cl.Name), nil
}

// launchRequest is what RunTask and StartTask share.
type launchRequest struct {
	Cluster, TaskDefinition *string
	Overrides               *types.TaskOverride
	Group, StartedBy        *string
	Network                 *types.NetworkConfiguration
	PropagateTags           types.PropagateTags
	Tags                    []types.Tag
	LaunchType              types.LaunchType
	Constraints             []types.PlacementConstraint
	Strategy                []types.PlacementStrategy
	EnableExecuteCommand    bool
}

// taskLaunch is a checked launch: the cluster, the revision, and the Task every new
// task copies (without a name).
type taskLaunch struct {
	Cluster     *ecsv1alpha1.Cluster
	ClusterName string
	Revision    *runnableRevision
	Template    ecsv1alpha1.Task
}

func (c *Call) prepareLaunch(ctx context.Context, r launchRequest) (*taskLaunch, error) {
	cl, clusterName, err := c.readCluster(ctx, r.Cluster)
	if err != nil {
		return nil, err
	}
	rev, err := c.runnable(ctx, "taskDefinition", aws.ToString(r.TaskDefinition))
	if err != nil {
		return nil, err
	}
	if err := taskNetwork(r.Network, rev.Spec.NetworkMode); err != nil {
		return nil, err
	}
	overrides, err := taskOverrides(r.Overrides, rev.Spec)
	if err != nil {
		return nil, err
	}
	group, startedBy, err := taskGroupAndStarter(r.Group, r.StartedBy, rev.Family)
	if err != nil {
		return nil, err
	}
	constraints, strategies, err := taskPlacement(r.Constraints, r.Strategy, len(rev.Spec.PlacementConstraints))
	if err != nil {
		return nil, err
	}
	annotations, err := taskAnnotations(rev.Spec.Tags, r.PropagateTags, r.Tags, r.LaunchType)
	if err != nil {
		return nil, err
	}
	l := &taskLaunch{Cluster: cl, ClusterName: clusterName, Revision: rev}
	l.Template.Namespace, l.Template.Annotations = c.Namespace, annotations
	l.Template.Spec = ecsv1alpha1.TaskSpec{
		Cluster:              cl.Name,
		TaskDefinition:       revision.Ref{Family: rev.Name, Revision: rev.Revision}.String(),
		Group:                group,
		StartedBy:            startedBy,
		Overrides:            overrides,
		PlacementConstraints: constraints,
		PlacementStrategy:    strategies,
		EnableExecuteCommand: r.EnableExecuteCommand,
	}
	return l, nil
}

func (l *taskLaunch) facts() taskFacts {
	return taskFacts{Cluster: l.ClusterName, Family: l.Revision.Family, Revision: l.Revision.Revision, Spec: l.Revision.Spec}
}

func runTask(ctx context.Context, c *Call, in *ecs.RunTaskInput) (*ecs.RunTaskOutput, error) {
	if err := runLaunch(in.LaunchType, in.CapacityProviderStrategy, in.PlatformVersion); err != nil {
		return nil, err
	}
	if err := taskStartUnsupported(in.EnableECSManagedTags, in.ReferenceId, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	count, err := runCount(in.Count)
	if err != nil {
		return nil, err
	}
	token := aws.ToString(in.ClientToken)
	if err := validClientToken(token); err != nil {
		return nil, err
	}
	l, err := c.prepareLaunch(ctx, launchRequest{Cluster: in.Cluster, TaskDefinition: in.TaskDefinition,
		Overrides: in.Overrides, Group: in.Group, StartedBy: in.StartedBy, Network: in.NetworkConfiguration,
		PropagateTags: in.PropagateTags, Tags: in.Tags, LaunchType: in.LaunchType,
		Constraints: in.PlacementConstraints, Strategy: in.PlacementStrategy, EnableExecuteCommand: in.EnableExecuteCommand})
	if err != nil {
		return nil, err
	}
	if l.Cluster.Status.RegisteredContainerInstancesCount == 0 {
		return nil, wire.Errorf(wire.InvalidParameterException, "No Container Instances were found in your cluster.")
	}
	tasks, err := c.createRunTasks(ctx, l, in, token, count)
	if err != nil {
		return nil, err
	}
	out := &ecs.RunTaskOutput{Tasks: make([]types.Task, len(tasks)), Failures: []types.Failure{}}
	for i, t := range tasks {
		out.Tasks[i] = taskOut(c.ARN, t, l.facts(), true)
	}
	return out, nil
}

// createRunTasks creates RunTask's tasks, or with a clientToken finds those an
// earlier call with the same token created (tasknames.go).
func (c *Call) createRunTasks(ctx context.Context, l *taskLaunch, in *ecs.RunTaskInput, token string, count int) ([]*ecsv1alpha1.Task, error) {
	names := make([]string, count)
	for i := range names {
		names[i] = randomTaskName()
	}
	if token != "" {
		fingerprint, err := requestFingerprint(in)
		if err != nil {
			return nil, err
		}
		l.Template.Annotations[annotationRunRequest] = fingerprint
		for i := range names {
			names[i] = tokenTaskName(c.Namespace, l.Cluster.Name, token, i)
		}
		// The first task tells whether the token was used before, by this request or
		// another, before anything is created.
		if err := c.checkTokenUse(ctx, l.ClusterName, names[0], fingerprint); err != nil {
			return nil, err
		}
	}
	tasks := make([]*ecsv1alpha1.Task, count)
	errs := make([]error, count)
	workqueue.ParallelizeUntil(ctx, taskWorkers, count, func(i int) {
		t := l.Template.DeepCopy()
		t.Name = names[i]
		tasks[i], errs[i] = c.createOrFindTask(ctx, l.ClusterName, t, token != "")
	})
	return tasks, firstError(errs)
}

// checkTokenUse answers ConflictException when the task a token names exists for
// another request.
func (c *Call) checkTokenUse(ctx context.Context, cluster, name, fingerprint string) error {
	var t ecsv1alpha1.Task
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &t)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.Annotations[annotationRunRequest] != fingerprint {
		return wire.Errorf(conflictException, "The provided clientToken is already in use with a different RunTask request. The existing tasks associated with the clientToken include %s.", c.ARN.Task(cluster, name))
	}
	return nil
}

// createOrFindTask creates t; with a clientToken, a task of that name that exists
// already is the one an earlier call created, and is returned.
func (c *Call) createOrFindTask(ctx context.Context, cluster string, t *ecsv1alpha1.Task, byToken bool) (*ecsv1alpha1.Task, error) {
	err := c.Client.Create(ctx, t)
	if err == nil || !byToken || !apierrors.IsAlreadyExists(err) {
		return t, err
	}
	fingerprint := t.Annotations[annotationRunRequest]
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
		return nil, err
	}
	if t.Annotations[annotationRunRequest] != fingerprint {
		return nil, wire.Errorf(conflictException, "The provided clientToken is already in use with a different RunTask request. The existing tasks associated with the clientToken include %s.", c.ARN.Task(cluster, t.Name))
	}
	return t, nil
}

func startTask(ctx context.Context, c *Call, in *ecs.StartTaskInput) (*ecs.StartTaskOutput, error) {
	if err := taskStartUnsupported(in.EnableECSManagedTags, in.ReferenceId, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	if err := describeCount("containerInstances", len(in.ContainerInstances), maxStartTaskInstances, "containerInstances can not be empty."); err != nil {
		return nil, err
	}
	l, err := c.prepareLaunch(ctx, launchRequest{Cluster: in.Cluster, TaskDefinition: in.TaskDefinition,
		Overrides: in.Overrides, Group: in.Group, StartedBy: in.StartedBy, Network: in.NetworkConfiguration,
		PropagateTags: in.PropagateTags, Tags: in.Tags, EnableExecuteCommand: in.EnableExecuteCommand})
	if err != nil {
		return nil, err
	}
	out := &ecs.StartTaskOutput{Tasks: []types.Task{}, Failures: []types.Failure{}}
	for i, ref := range in.ContainerInstances {
		t, failure, err := c.startOn(ctx, l, taskRefMember("containerInstances", i), ref)
		if err != nil {
			return nil, err
		}
		if failure != nil {
			out.Failures = append(out.Failures, *failure)
			continue
		}
		out.Tasks = append(out.Tasks, taskOut(c.ARN, t, l.facts(), true))
	}
	return out, nil
}

// startOn creates one task bound to the instance ref names, or says why not: MISSING
// for an instance that is not in the cluster, RESOURCE:GPU when the task's GPUs are
// more than the instance has free.
func (c *Call) startOn(ctx context.Context, l *taskLaunch, member, ref string) (*ecsv1alpha1.Task, *types.Failure, error) {
	ci, err := c.instanceInCluster(ctx, member, l.Cluster, l.ClusterName, ref)
	if err != nil {
		return nil, nil, err
	}
	if ci == nil {
		_, name, _ := c.ARN.Child(member, "container-instance", ref)
		f := missing(c.ARN.ContainerInstance(l.ClusterName, name))
		return nil, &f, nil
	}
	t := l.Template.DeepCopy()
	t.Name = randomTaskName()
	t.Spec.ContainerInstance = ci.Name
	gpus, err := taskrules.GPURequests(l.Revision.Spec)
	if err != nil {
		return nil, nil, wire.InvalidParameter("taskDefinition", "%v", err)
	}
	if n := taskrules.GPUCount(gpus); n > 0 {
		var free []string
		if r := ci.Status.RemainingResources; r != nil {
			free = r.GPUs
		}
		if len(free) < n {
			return nil, &types.Failure{Arn: aws.String(c.ARN.ContainerInstance(l.ClusterName, ci.Name)), Reason: aws.String("RESOURCE:GPU")}, nil
		}
		if t.Spec.GPUAssignments, err = taskrules.AssignGPUs(gpus, free[:n]); err != nil {
			return nil, nil, err
		}
	}
	if err := c.Client.Create(ctx, t); err != nil {
		return nil, nil, err
	}
	return t, nil, nil
}

func stopTask(ctx context.Context, c *Call, in *ecs.StopTaskInput) (*ecs.StopTaskOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	reason, err := stopReason(in.Reason)
	if err != nil {
		return nil, err
	}
	t, _, err := c.taskInCluster(ctx, "task", cl, clusterName, aws.ToString(in.Task))
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, wire.Errorf(wire.InvalidParameterException, "The referenced task was not found.")
	}
	if _, desired := taskStatuses(t); desired != string(ecsv1alpha1.DesiredStopped) {
		if err := c.Client.Patch(ctx, t, taskrules.StopPatch(ecsv1alpha1.StopUserInitiated, reason)); err != nil {
			return nil, err
		}
	}
	facts, err := newTaskRevisions(c).facts(ctx, clusterName, t)
	if err != nil {
		return nil, err
	}
	out := taskOut(c.ARN, t, facts, true)
	return &ecs.StopTaskOutput{Task: &out}, nil
}

// taskInCluster reads the task ref names in the cluster. A reference to no task of
// the cluster (another cluster's ARN, a name that cannot be an object's, a task of
// another cluster) returns a nil task and the name, for MISSING failures.
func (c *Call) taskInCluster(ctx context.Context, member string, cl *ecsv1alpha1.Cluster, clusterName, ref string) (*ecsv1alpha1.Task, string, error) {
	name, ok, err := c.taskRef(member, clusterName, ref)
	if err != nil || !ok {
		return nil, name, err
	}
	t, err := c.readTask(ctx, name)
	if err != nil || t == nil || t.Spec.Cluster != cl.Name {
		return nil, name, err
	}
	return t, name, nil
}

// taskRef reads a task reference (an ID or an ARN) of the cluster: the task's name,
// and false when it can name no task of the cluster.
func (c *Call) taskRef(member, clusterName, ref string) (string, bool, error) {
	if ref == "" {
		return "", false, wire.InvalidParameter(member, "is required")
	}
	arnCluster, name, err := c.ARN.Child(member, "task", ref)
	if err != nil {
		return "", false, err
	}
	ok := (arnCluster == "" || arnCluster == clusterName) && len(validation.IsDNS1123Subdomain(name)) == 0
	return name, ok, nil
}

// readTask reads one of the caller's tasks by name, or nil.
func (c *Call) readTask(ctx context.Context, name string) (*ecsv1alpha1.Task, error) {
	var t ecsv1alpha1.Task
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &t); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return &t, nil
}

// listedTasks are the caller's tasks of a cluster, read with one List: a call that
// names many tasks (DescribeTasks takes 100) reads them in one request rather than
// one each, which the server's client-side rate limit would space out.
type listedTasks map[string]*ecsv1alpha1.Task

// find looks a task reference up among the listed tasks, with the checks of
// taskInCluster.
func (l listedTasks) find(c *Call) func(context.Context, string, *ecsv1alpha1.Cluster, string, string) (*ecsv1alpha1.Task, string, error) {
	return func(_ context.Context, member string, _ *ecsv1alpha1.Cluster, clusterName, ref string) (*ecsv1alpha1.Task, string, error) {
		name, ok, err := c.taskRef(member, clusterName, ref)
		if err != nil || !ok {
			return nil, name, err
		}
		return l[name], name, nil
	}
}

// manyTasks is from how many named tasks a call lists instead of getting each.
const manyTasks = 10

func (c *Call) listTasksOf(ctx context.Context, cl *ecsv1alpha1.Cluster) (listedTasks, error) {
	var list ecsv1alpha1.TaskList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace),
		client.MatchingFields{ecsv1alpha1.TaskFieldCluster: cl.Name}); err != nil {
		return nil, err
	}
	out := make(listedTasks, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

func describeTasks(ctx context.Context, c *Call, in *ecs.DescribeTasksInput) (*ecs.DescribeTasksOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := describeCount("tasks", len(in.Tasks), maxDescribeTasks, "Tasks cannot be empty."); err != nil {
		return nil, err
	}
	withTags := includes(in.Include, types.TaskFieldTags)
	revisions := newTaskRevisions(c)
	find := c.taskInCluster
	if len(in.Tasks) > manyTasks {
		listed, err := c.listTasksOf(ctx, cl)
		if err != nil {
			return nil, err
		}
		find = listed.find(c)
	}
	described := make([]*types.Task, len(in.Tasks))
	failures := make([]*types.Failure, len(in.Tasks))
	errs := make([]error, len(in.Tasks))
	workqueue.ParallelizeUntil(ctx, taskWorkers, len(in.Tasks), func(i int) {
		t, name, err := find(ctx, taskRefMember("tasks", i), cl, clusterName, in.Tasks[i])
		switch {
		case err != nil:
			errs[i] = err
		case t == nil:
			f := missing(c.ARN.Task(clusterName, name))
			failures[i] = &f
		default:
			facts, err := revisions.facts(ctx, clusterName, t)
			if err != nil {
				errs[i] = err
				return
			}
			d := taskOut(c.ARN, t, facts, withTags)
			described[i] = &d
		}
	})
	if err := firstError(errs); err != nil {
		return nil, err
	}
	out := &ecs.DescribeTasksOutput{Tasks: []types.Task{}, Failures: []types.Failure{}}
	for i := range in.Tasks {
		if described[i] != nil {
			out.Tasks = append(out.Tasks, *described[i])
		} else {
			out.Failures = append(out.Failures, *failures[i])
		}
	}
	return out, nil
}

func listTasks(ctx context.Context, c *Call, in *ecs.ListTasksInput) (*ecs.ListTasksOutput, error) {
	cl, clusterName, err := c.readCluster(ctx, in.Cluster)
	if err != nil {
		return nil, err
	}
	f, err := c.listTasksFilter(in)
	if err != nil {
		return nil, err
	}
	var list ecsv1alpha1.TaskList
	if err := c.Client.List(ctx, &list, client.InNamespace(c.Namespace),
		client.MatchingFields{ecsv1alpha1.TaskFieldCluster: cl.Name}); err != nil {
		return nil, err
	}
	arns := []string{}
	for i := range list.Items {
		if f.matches(&list.Items[i]) {
			arns = append(arns, c.ARN.Task(clusterName, list.Items[i].Name))
		}
	}
	arns, next, err := page(arns, in.NextToken, in.MaxResults, defaultPage, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTasksOutput{TaskArns: arns, NextToken: next}, nil
}

// listTasksFilter maps ListTasks' filters to object names.
func (c *Call) listTasksFilter(in *ecs.ListTasksInput) (taskFilter, error) {
	f := taskFilter{StartedBy: aws.ToString(in.StartedBy), Desired: in.DesiredStatus, LaunchType: in.LaunchType}
	var err error
	switch {
	case aws.ToString(in.DaemonName) != "":
		return f, wire.InvalidParameter("daemonName", "ECS daemons are not supported by Berth; a DAEMON service's tasks are listed with serviceName")
	case f.Desired == "":
		f.Desired = types.DesiredStatusRunning
	case f.Desired != types.DesiredStatusRunning && f.Desired != types.DesiredStatusStopped && f.Desired != types.DesiredStatusPending:
		return f, wire.InvalidParameter("desiredStatus", "%q is not RUNNING, PENDING or STOPPED", f.Desired)
	}
	switch f.LaunchType {
	case "", types.LaunchTypeEc2, types.LaunchTypeExternal, types.LaunchTypeFargate, types.LaunchTypeManagedInstances:
	default:
		return f, wire.InvalidParameter("launchType", "%q is not EC2, EXTERNAL, FARGATE or MANAGED_INSTANCES", f.LaunchType)
	}
	if family := aws.ToString(in.Family); family != "" {
		if f.Family, err = kubeName("family", family); err != nil {
			return f, err
		}
	}
	if ref := aws.ToString(in.ServiceName); ref != "" {
		_, name, err := c.ARN.Child("serviceName", "service", ref)
		if err != nil {
			return f, err
		}
		if f.Service, err = kubeName("serviceName", name); err != nil {
			return f, err
		}
	}
	if ref := aws.ToString(in.ContainerInstance); ref != "" {
		if _, f.Instance, err = c.ARN.Child("containerInstance", "container-instance", ref); err != nil {
			return f, err
		}
	}
	return f, nil
}

// taskRevisions resolves the revisions and ECS family names of the tasks one call
// describes, each once however many tasks share it and however many workers ask at
// the same moment: DescribeTasks of 100 tasks of one revision reads it once.
type taskRevisions struct {
	c         *Call
	resolver  *revision.Resolver
	revisions memo[revision.Ref, *revision.Resolved]
	families  memo[string, string]
}

func newTaskRevisions(c *Call) *taskRevisions {
	return &taskRevisions{c: c, resolver: revision.NewResolver(c.Client)}
}

// facts are what describing t needs. A revision that no longer exists leaves the
// task described from its status alone.
func (r *taskRevisions) facts(ctx context.Context, cluster string, t *ecsv1alpha1.Task) (taskFacts, error) {
	ref, err := revision.TaskRef(t)
	if err != nil {
		family, _, _ := strings.Cut(t.Spec.TaskDefinition, ":")
		return taskFacts{Cluster: cluster, Family: family}, nil
	}
	f := taskFacts{Cluster: cluster, Revision: ref.Revision}
	resolved, err := r.revisions.get(ref, func() (*revision.Resolved, error) {
		return r.resolver.Resolve(ctx, r.c.Namespace, ref)
	})
	switch {
	case err == nil:
		f.Spec, f.Revision = resolved.Spec, resolved.Ref.Revision
	case !revision.IsNotFound(err):
		return f, err
	}
	if f.Family, err = r.families.get(ref.Family, func() (string, error) { return r.family(ctx, ref.Family) }); err != nil {
		return f, err
	}
	return f, nil
}

// family is the ECS name of a TaskDefinition; its object name when it is gone.
func (r *taskRevisions) family(ctx context.Context, name string) (string, error) {
	var td ecsv1alpha1.TaskDefinition
	err := r.c.Client.Get(ctx, client.ObjectKey{Namespace: r.c.Namespace, Name: name}, &td)
	switch {
	case apierrors.IsNotFound(err):
		return name, nil
	case err != nil:
		return "", fmt.Errorf("reading task definition %s: %w", name, err)
	}
	return ecsName(td.Annotations, td.Name), nil
}

// memo computes a value once per key, for concurrent callers: the first computes,
// the others wait for its answer (error included).
type memo[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]*memoEntry[V]
}

type memoEntry[V any] struct {
	once sync.Once
	v    V
	err  error
}

func (m *memo[K, V]) get(k K, compute func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.entries == nil {
		m.entries = map[K]*memoEntry[V]{}
	}
	e, ok := m.entries[k]
	if !ok {
		e = &memoEntry[V]{}
		m.entries[k] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v, e.err = compute() })
	return e.v, e.err
}

// firstError is the first of the errors of parallel calls, in call order.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
