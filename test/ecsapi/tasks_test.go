package ecsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// waitTasks runs the aws CLI's waiter (tasks-running or tasks-stopped) with short
// delays.
func waitTasks(t *testing.T, c *ecs.Client, cluster string, arns []string, stopped bool) error {
	t.Helper()
	in := &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns}
	if stopped {
		return ecs.NewTasksStoppedWaiter(c, func(o *ecs.TasksStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
		}).Wait(context.Background(), in, 30*time.Second)
	}
	return ecs.NewTasksRunningWaiter(c, func(o *ecs.TasksRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(context.Background(), in, 30*time.Second)
}

func taskARNs(tasks []types.Task) []string {
	out := make([]string, len(tasks))
	for i, task := range tasks {
		out[i] = aws.ToString(task.TaskArn)
	}
	return out
}

// listAll pages through ListTasks, two at a time.
func listAll(t *testing.T, c *ecs.Client, in ecs.ListTasksInput) []string {
	t.Helper()
	var out []string
	in.MaxResults = aws.Int32(2)
	for {
		page, err := c.ListTasks(context.Background(), &in)
		if err != nil {
			t.Fatalf("ListTasks: %v", err)
		}
		out = append(out, page.TaskArns...)
		if page.NextToken == nil {
			slices.Sort(out)
			return out
		}
		in.NextToken = page.NextToken
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func tagValue(tags []types.Tag, key string) string {
	for _, tag := range tags {
		if aws.ToString(tag.Key) == key {
			return aws.ToString(tag.Value)
		}
	}
	return ""
}

func batchFamily(ns, image string) *ecsv1alpha1.TaskDefinition {
	td := testobj.TaskDefinition(ns, "batch").Container("main", image).Container("sidecar", "sidecar:1").Obj()
	td.Spec.Tags = []ecsv1alpha1.Tag{{Key: "team", Value: "data"}, {Key: "tier", Value: "batch"}}
	return td
}

func TestRunTaskLifecycle(t *testing.T) {
	s := start(t)
	u := s.newUser("runner", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, instances := tasksCluster(t, c, u.Namespace, 2, nil)
	putFamily(t, batchFamily(u.Namespace, "job:1"), 1)

	run, err := c.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String("batch"), Count: aws.Int32(3),
		StartedBy: aws.String("nightly"), PropagateTags: types.PropagateTagsTaskDefinition,
		Tags: []types.Tag{{Key: aws.String("tier"), Value: aws.String("nightly")}},
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name: aws.String("main"), Command: []string{"run", "--all"}, Memory: aws.Int32(200),
			Environment: []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("full")}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 3 || len(run.Failures) != 0 {
		t.Fatalf("RunTask: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	prefix := "arn:aws:ecs:" + region + ":" + account + ":"
	for _, task := range run.Tasks {
		arn := aws.ToString(task.TaskArn)
		id := arn[strings.LastIndex(arn, "/")+1:]
		if !strings.HasPrefix(arn, prefix+"task/"+cluster+"/") || len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Errorf("taskArn %s is not ECS's long format with a 32-hex ID", arn)
		}
		if got := aws.ToString(task.LastStatus); got != "PROVISIONING" && got != "PENDING" {
			t.Errorf("lastStatus right after RunTask: %s", got)
		}
		if aws.ToString(task.DesiredStatus) != "RUNNING" || aws.ToString(task.Group) != "family:batch" ||
			aws.ToString(task.TaskDefinitionArn) != prefix+"task-definition/batch:1" || task.LaunchType != types.LaunchTypeEc2 {
			t.Errorf("task %+v", task)
		}
		if tagValue(task.Tags, "team") != "data" || tagValue(task.Tags, "tier") != "nightly" {
			t.Errorf("tags %+v: want team=data from the task definition and tier=nightly from the request", task.Tags)
		}
		if o := task.Overrides; o == nil || len(o.ContainerOverrides) != 2 || !slices.Equal(o.ContainerOverrides[0].Command, []string{"run", "--all"}) {
			t.Errorf("overrides %+v", task.Overrides)
		}
	}
	arns := taskARNs(run.Tasks)
	if err := waitTasks(t, c, cluster, arns, false); err != nil {
		t.Fatalf("tasks-running waiter: %v", err)
	}

	// The Task objects carry the pinned revision and the overrides.
	var obj ecsv1alpha1.Task
	id := arns[0][strings.LastIndex(arns[0], "/")+1:]
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: u.Namespace, Name: id}, &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Spec.TaskDefinition != "batch:1" || obj.Spec.StartedBy != "nightly" || obj.Spec.Overrides == nil ||
		obj.Spec.Overrides.ContainerOverrides[0].Environment[0].Value != "full" || *obj.Spec.Overrides.ContainerOverrides[0].Memory != 200 {
		t.Errorf("task spec %+v", obj.Spec)
	}

	// A new revision changes what `batch` runs from now on, not what runs already.
	putFamily(t, batchFamily(u.Namespace, "job:2"), 2)
	// enableExecuteCommand is served (berth exec) and described back.
	second, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("batch"), EnableExecuteCommand: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(second.Tasks[0].TaskDefinitionArn); got != prefix+"task-definition/batch:2" {
		t.Errorf("RunTask of the family after a new revision runs %s", got)
	}
	if !second.Tasks[0].EnableExecuteCommand || second.Tasks[0].EnableExecuteCommand == run.Tasks[0].EnableExecuteCommand {
		t.Errorf("enableExecuteCommand of a task run with it: %v, of one run without: %v", second.Tasks[0].EnableExecuteCommand, run.Tasks[0].EnableExecuteCommand)
	}
	all := append(slices.Clone(arns), taskARNs(second.Tasks)...)
	if err := waitTasks(t, c, cluster, all, false); err != nil {
		t.Fatalf("tasks-running waiter: %v", err)
	}

	d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster),
		Tasks: []string{arns[0], id, "0123456789abcdef0123456789abcdef"}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tasks) != 2 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" ||
		aws.ToString(d.Failures[0].Arn) != prefix+"task/"+cluster+"/0123456789abcdef0123456789abcdef" {
		t.Fatalf("describe: %d tasks, failures %+v", len(d.Tasks), d.Failures)
	}
	described := d.Tasks[0]
	if aws.ToString(described.TaskDefinitionArn) != prefix+"task-definition/batch:1" || aws.ToString(described.LastStatus) != "RUNNING" ||
		described.StartedAt == nil || described.CreatedAt == nil || aws.ToString(described.ContainerInstanceArn) == "" || len(described.Containers) != 2 {
		t.Errorf("described task %+v", described)
	}
	main := described.Containers[0]
	if aws.ToString(main.Name) != "main" || aws.ToString(main.Image) != "job:1" || aws.ToString(main.LastStatus) != "RUNNING" ||
		aws.ToString(main.Memory) != "200" || aws.ToString(main.RuntimeId) == "" {
		t.Errorf("main container %+v", main)
	}
	if tagValue(described.Tags, "tier") != "nightly" {
		t.Errorf("include TAGS: %+v", described.Tags)
	}

	// ListTasks' filters, paged two at a time.
	in := ecs.ListTasksInput{Cluster: aws.String(cluster)}
	if got := listAll(t, c, in); !slices.Equal(got, sorted(all)) {
		t.Errorf("ListTasks = %v, want %v", got, sorted(all))
	}
	byFamily := in
	byFamily.Family = aws.String("batch")
	if got := listAll(t, c, byFamily); len(got) != 4 {
		t.Errorf("family batch: %v", got)
	}
	byStarter := in
	byStarter.StartedBy = aws.String("nightly")
	if got := listAll(t, c, byStarter); !slices.Equal(got, sorted(arns)) {
		t.Errorf("startedBy nightly: %v, want %v", got, sorted(arns))
	}
	onInstances := 0
	for _, inst := range instances {
		byInstance := in
		byInstance.ContainerInstance = aws.String(prefix + "container-instance/" + cluster + "/" + inst)
		onInstances += len(listAll(t, c, byInstance))
	}
	if onInstances != 4 {
		t.Errorf("the instances list %d tasks, want 4", onInstances)
	}
	for name, f := range map[string]ecs.ListTasksInput{
		"another family":  {Cluster: aws.String(cluster), Family: aws.String("other")},
		"a service":       {Cluster: aws.String(cluster), ServiceName: aws.String("web")},
		"FARGATE":         {Cluster: aws.String(cluster), LaunchType: types.LaunchTypeFargate},
		"STOPPED, so far": {Cluster: aws.String(cluster), DesiredStatus: types.DesiredStatusStopped},
	} {
		if got := listAll(t, c, f); len(got) != 0 {
			t.Errorf("%s: %v", name, got)
		}
	}

	// StopTask answers the task at once with ECS's stop code and the reason.
	stop, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(id), Reason: aws.String("enough for tonight")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(stop.Task.DesiredStatus) != "STOPPED" || stop.Task.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(stop.Task.StoppedReason) != "enough for tonight" {
		t.Errorf("StopTask answered %+v", stop.Task)
	}
	if err := waitTasks(t, c, cluster, []string{arns[0]}, true); err != nil {
		t.Fatalf("tasks-stopped waiter: %v", err)
	}
	stopped := in
	stopped.DesiredStatus = types.DesiredStatusStopped
	if got := listAll(t, c, stopped); !slices.Equal(got, []string{arns[0]}) {
		t.Errorf("STOPPED: %v, want %s", got, arns[0])
	}
	if got := listAll(t, c, in); len(got) != 3 || slices.Contains(got, arns[0]) {
		t.Errorf("RUNNING after the stop: %v", got)
	}
	// The tasks-running waiter fails on a STOPPED task and on a MISSING one rather
	// than waiting out its timeout.
	if err := waitTasks(t, c, cluster, []string{arns[0]}, false); err == nil || !strings.Contains(err.Error(), "transitioned to Failure") {
		t.Errorf("tasks-running on a stopped task: %v", err)
	}
	if err := waitTasks(t, c, cluster, []string{"0123456789abcdef0123456789abcdef"}, false); err == nil || !strings.Contains(err.Error(), "transitioned to Failure") {
		t.Errorf("tasks-running on a missing task: %v", err)
	}
	// Stopping a stopped task answers it again.
	if again, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arns[0])}); err != nil ||
		aws.ToString(again.Task.LastStatus) != "STOPPED" || aws.ToString(again.Task.StoppedReason) != "enough for tonight" {
		t.Errorf("second StopTask: %v %+v", err, again)
	}

	// Another namespace's user shares the cluster but sees none of these tasks.
	other := s.newUser("neighbour", false)
	oc := s.ecs(other)
	if l, err := oc.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster)}); err != nil || len(l.TaskArns) != 0 {
		t.Errorf("neighbour ListTasks: %v %v", l, err)
	}
	if d, err := oc.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns[1:2]}); err != nil ||
		len(d.Tasks) != 0 || len(d.Failures) != 1 {
		t.Errorf("neighbour DescribeTasks: %v %+v", err, d)
	}
	if _, err := oc.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arns[1])}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("neighbour StopTask: %v, want InvalidParameterException", err)
	}
}

func TestRunTaskClientToken(t *testing.T) {
	s := start(t)
	u := s.newUser("retrier", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, _ := tasksCluster(t, c, u.Namespace, 1, nil)
	putFamily(t, batchFamily(u.Namespace, "job:1"), 1)

	in := &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("batch:1"), Count: aws.Int32(2),
		ClientToken: aws.String("deploy-2024-06-01T10:00:00Z")}
	first, err := c.RunTask(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// The answer was lost; the client sends the same request again.
	retry, err := c.RunTask(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(taskARNs(first.Tasks), taskARNs(retry.Tasks)) {
		t.Errorf("retry answered %v, the first call %v", taskARNs(retry.Tasks), taskARNs(first.Tasks))
	}
	if got := listAll(t, c, ecs.ListTasksInput{Cluster: aws.String(cluster)}); len(got) != 2 {
		t.Errorf("after a retry the cluster has %d tasks, want 2", len(got))
	}
	// The same token with other parameters is a conflict, as in ECS, and creates
	// nothing.
	changed := *in
	changed.Count = aws.Int32(3)
	if _, err := c.RunTask(ctx, &changed); apiErrorCode(err) != "ConflictException" {
		t.Errorf("same token, other count: %v, want ConflictException", err)
	}
	if got := listAll(t, c, ecs.ListTasksInput{Cluster: aws.String(cluster)}); len(got) != 2 {
		t.Errorf("after a conflict the cluster has %d tasks, want 2", len(got))
	}
	// Without a token of its own, the SDK sends a fresh one: a new call, new tasks.
	fresh, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("batch:1")})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(taskARNs(first.Tasks), taskARNs(fresh.Tasks)[0]) {
		t.Errorf("a new call reused %s", taskARNs(fresh.Tasks)[0])
	}
}

func TestRunTaskRefusals(t *testing.T) {
	s := start(t)
	u := s.newUser("careless", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, _ := tasksCluster(t, c, u.Namespace, 1, nil)
	putFamily(t, batchFamily(u.Namespace, "job:1"), 1)
	empty := "e-" + u.Namespace
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(empty)}); err != nil {
		t.Fatal(err)
	}

	run := func(edit func(*ecs.RunTaskInput)) error {
		in := &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("batch")}
		edit(in)
		_, err := c.RunTask(ctx, in)
		return err
	}
	cases := []struct {
		name     string
		edit     func(*ecs.RunTaskInput)
		wantType string
		wantText string
	}{
		{"unknown family", func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String("nope") }, "ClientException", "TaskDefinition not found."},
		{"unknown revision", func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String("batch:7") }, "ClientException", "TaskDefinition not found."},
		{"unknown cluster", func(in *ecs.RunTaskInput) { in.Cluster = aws.String("nowhere-" + u.Namespace) }, "ClusterNotFoundException", ""},
		{"cluster without instances", func(in *ecs.RunTaskInput) { in.Cluster = aws.String(empty) }, "InvalidParameterException", "No Container Instances were found in your cluster."},
		{"Fargate", func(in *ecs.RunTaskInput) { in.LaunchType = types.LaunchTypeFargate }, "InvalidParameterException", "launchType"},
		{"count 11", func(in *ecs.RunTaskInput) { in.Count = aws.Int32(11) }, "InvalidParameterException", "count"},
		{"an unknown container", func(in *ecs.RunTaskInput) {
			in.Overrides = &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("db")}}}
		}, "InvalidParameterException", "Override for container named db is not a container in the TaskDefinition."},
		{"a task role", func(in *ecs.RunTaskInput) {
			in.Overrides = &types.TaskOverride{TaskRoleArn: aws.String("arn:aws:iam::1:role/r")}
		},
			"InvalidParameterException", "overrides.taskRoleArn"},
		{"awsvpc configuration for bridge", func(in *ecs.RunTaskInput) {
			in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s-1"}}}
		}, "InvalidParameterException", "Network Configuration is not valid"},
		{"malformed expression", func(in *ecs.RunTaskInput) {
			in.PlacementConstraints = []types.PlacementConstraint{{Type: "memberOf", Expression: aws.String("attribute:stack in [a,")}}
		}, "InvalidParameterException", "placementConstraints[0].expression"},
		{"an unknown member", func(in *ecs.RunTaskInput) { in.ReferenceId = aws.String("x") }, "InvalidParameterException", "referenceId"},
	}
	for _, tc := range cases {
		err := run(tc.edit)
		if apiErrorCode(err) != tc.wantType || !strings.Contains(fmt.Sprint(err), tc.wantText) {
			t.Errorf("%s: %v, want %s mentioning %q", tc.name, err, tc.wantType, tc.wantText)
		}
	}
	if _, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{}}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("DescribeTasks of nothing: %v", err)
	}
	if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String("0123456789abcdef0123456789abcdef")}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("StopTask of no task: %v", err)
	}
	if _, err := c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: "ASLEEP"}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("ListTasks desiredStatus ASLEEP: %v", err)
	}
	// A deregistered revision starts nothing new, by number or as the family's
	// latest, for tasks and services alike.
	if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("batch:1")}); err != nil {
		t.Fatal(err)
	}
	if err := run(func(in *ecs.RunTaskInput) { in.TaskDefinition = aws.String("batch:1") }); apiErrorCode(err) != "ClientException" || !strings.Contains(err.Error(), "TaskDefinition is inactive") {
		t.Errorf("RunTask of a deregistered revision: %v, want ClientException TaskDefinition is inactive", err)
	}
	if err := run(func(*ecs.RunTaskInput) {}); apiErrorCode(err) != "ClientException" {
		t.Errorf("RunTask of a family without an ACTIVE revision: %v, want ClientException", err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("svc"),
		TaskDefinition: aws.String("batch:1"), DesiredCount: aws.Int32(1)}); apiErrorCode(err) != "ClientException" {
		t.Errorf("CreateService with a deregistered revision: %v, want ClientException", err)
	}
	// Nothing was created by any refused call.
	if got := listAll(t, c, ecs.ListTasksInput{Cluster: aws.String(cluster)}); len(got) != 0 {
		t.Errorf("refused calls left tasks %v", got)
	}
}

func TestAwsvpcTask(t *testing.T) {
	s := start(t)
	u := s.newUser("vpc", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, _ := tasksCluster(t, c, u.Namespace, 1, nil)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "api").Container("api", "api:1").Network(ecsv1alpha1.NetworkModeAWSVPC).Obj(), 1)
	vpc := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}, SecurityGroups: []string{"sg-1"}}}
	run, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("api"), NetworkConfiguration: vpc})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitTasks(t, c, cluster, taskARNs(run.Tasks), false); err != nil {
		t.Fatal(err)
	}
	vpc.AwsvpcConfiguration.AssignPublicIp = types.AssignPublicIpEnabled
	if _, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("api"), NetworkConfiguration: vpc}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("assignPublicIp ENABLED: %v", err)
	}
}

func TestPlacementThroughTheAPI(t *testing.T) {
	s := start(t)
	u := s.newUser("placer", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, instances := tasksCluster(t, c, u.Namespace, 3, nil)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "web").Container("web", "web:1").Obj(), 1)
	instanceARN := func(name string) string {
		return "arn:aws:ecs:" + region + ":" + account + ":container-instance/" + cluster + "/" + name
	}

	// memberOf an attribute set through the API.
	if _, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
		{Name: aws.String("stack"), Value: aws.String("blue"), TargetId: aws.String(instances[1])}}}); err != nil {
		t.Fatal(err)
	}
	blue, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), Count: aws.Int32(2),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:stack == blue")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitTasks(t, c, cluster, taskARNs(blue.Tasks), false); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: taskARNs(blue.Tasks)})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range d.Tasks {
		if got := aws.ToString(task.ContainerInstanceArn); got != instanceARN(instances[1]) {
			t.Errorf("memberOf stack == blue placed a task on %s", got)
		}
	}

	// ListContainerInstances' filter sees the caller's task groups.
	byGroup, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster),
		Filter: aws.String("task:group == family:web")})
	if err != nil || !slices.Equal(byGroup.ContainerInstanceArns, []string{instanceARN(instances[1])}) {
		t.Errorf("instances running family:web: %v %v", byGroup, err)
	}

	// A drained instance receives no new task.
	upd, err := c.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(cluster),
		ContainerInstances: []string{instances[0]}, Status: types.ContainerInstanceStatusDraining})
	if err != nil {
		t.Fatal(err)
	}
	if len(upd.ContainerInstances) != 1 || aws.ToString(upd.ContainerInstances[0].Status) != "DRAINING" {
		t.Fatalf("drain answered %+v", upd)
	}
	spread, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), Count: aws.Int32(6),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitTasks(t, c, cluster, taskARNs(spread.Tasks), false); err != nil {
		t.Fatal(err)
	}
	d, err = c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: taskARNs(spread.Tasks)})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range d.Tasks {
		if got := aws.ToString(task.ContainerInstanceArn); got == instanceARN(instances[0]) {
			t.Errorf("a task was placed on the draining instance %s", got)
		}
	}

	// StartTask puts one task on each instance named, draining or not, and says
	// which it could not find.
	start, err := c.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("web:1"),
		ContainerInstances: []string{instanceARN(instances[2]), "no-such-instance"}, StartedBy: aws.String("operator")})
	if err != nil {
		t.Fatal(err)
	}
	if len(start.Tasks) != 1 || len(start.Failures) != 1 || aws.ToString(start.Failures[0].Reason) != "MISSING" ||
		aws.ToString(start.Failures[0].Arn) != instanceARN("no-such-instance") {
		t.Fatalf("StartTask: %d tasks, failures %+v", len(start.Tasks), start.Failures)
	}
	if got := aws.ToString(start.Tasks[0].ContainerInstanceArn); got != instanceARN(instances[2]) {
		t.Errorf("StartTask's task is on %s", got)
	}
	if err := waitTasks(t, c, cluster, taskARNs(start.Tasks), false); err != nil {
		t.Fatal(err)
	}
	onTwo := listAll(t, c, ecs.ListTasksInput{Cluster: aws.String(cluster), ContainerInstance: aws.String(instances[2])})
	if !slices.Contains(onTwo, aws.ToString(start.Tasks[0].TaskArn)) {
		t.Errorf("ListTasks on %s: %v lacks the started task", instances[2], onTwo)
	}
}

// TestDescribeManyTasks: a DescribeTasks of more tasks than it reads one by one
// (one List instead) answers the same: every task in the order asked, MISSING for
// an unknown ID and for a task of another cluster.
func TestDescribeManyTasks(t *testing.T) {
	s := start(t)
	u := s.newUser("many", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, _ := tasksCluster(t, c, u.Namespace, 2, nil)
	other, _ := tasksCluster(t, c, u.Namespace+"-b", 1, nil)
	putFamily(t, batchFamily(u.Namespace, "job:1"), 1)
	var arns []string
	for _, n := range []int32{10, 2} {
		run, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("batch"), Count: aws.Int32(n)})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, taskARNs(run.Tasks)...)
	}
	elsewhere, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(other), TaskDefinition: aws.String("batch")})
	if err != nil {
		t.Fatal(err)
	}
	missingID := "0123456789abcdef0123456789abcdef"
	asked := append(append([]string{missingID}, arns...), aws.ToString(elsewhere.Tasks[0].TaskArn))
	out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: asked})
	if err != nil {
		t.Fatal(err)
	}
	if got := taskARNs(out.Tasks); !slices.Equal(got, arns) {
		t.Errorf("described %v, want %v in that order", got, arns)
	}
	if len(out.Failures) != 2 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		!strings.HasSuffix(aws.ToString(out.Failures[0].Arn), "/"+missingID) || aws.ToString(out.Failures[1].Reason) != "MISSING" {
		t.Errorf("failures %+v, want MISSING for the unknown ID and the other cluster's task", out.Failures)
	}
}
