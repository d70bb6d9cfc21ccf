package ecsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/test/testobj"
)

func resource(rs []types.Resource, name string) *types.Resource {
	for i := range rs {
		if aws.ToString(rs[i].Name) == name {
			return &rs[i]
		}
	}
	return nil
}

func attribute(as []types.Attribute, name string) (string, bool) {
	for _, a := range as {
		if aws.ToString(a.Name) == name {
			return aws.ToString(a.Value), true
		}
	}
	return "", false
}

func TestContainerInstances(t *testing.T) {
	s := start(t)
	u := s.newUser("operator", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, instances := tasksCluster(t, c, u.Namespace, 2, func(cfg *hollow.Config) {
		cfg.Zones = []string{"zone-a", "zone-b"}
		cfg.CPU, cfg.Memory = 2048, 4096
	})
	prefix := "arn:aws:ecs:" + region + ":" + account + ":container-instance/" + cluster + "/"

	l, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{prefix + instances[0], prefix + instances[1]}; !slices.Equal(l.ContainerInstanceArns, want) {
		t.Errorf("ListContainerInstances = %v, want %v", l.ContainerInstanceArns, want)
	}
	// ECS's cluster query language, as placement reads it.
	for filter, want := range map[string][]string{
		"attribute:ecs.availability-zone == zone-b":  {prefix + instances[1]},
		"attribute:ecs.os-type == linux":             {prefix + instances[0], prefix + instances[1]},
		"ec2InstanceId in [" + instances[0] + ", x]": {prefix + instances[0]},
		"not attribute:ecs.availability-zone exists": nil,
	} {
		got, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), Filter: aws.String(filter)})
		if err != nil {
			t.Errorf("filter %q: %v", filter, err)
			continue
		}
		if !slices.Equal(got.ContainerInstanceArns, want) {
			t.Errorf("filter %q: %v, want %v", filter, got.ContainerInstanceArns, want)
		}
	}
	if _, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster),
		Filter: aws.String("attribute:stack ==")}); apiErrorCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "filter: ") {
		t.Errorf("malformed filter: %v", err)
	}
	page, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(1)})
	if err != nil || len(page.ContainerInstanceArns) != 1 || page.NextToken == nil {
		t.Fatalf("first page: %v %+v", err, page)
	}
	rest, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), NextToken: page.NextToken})
	if err != nil || !slices.Equal(rest.ContainerInstanceArns, []string{prefix + instances[1]}) || rest.NextToken != nil {
		t.Errorf("second page: %v %+v", err, rest)
	}

	d, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster),
		ContainerInstances: []string{instances[0], prefix + "gone"},
		Include:            []types.ContainerInstanceField{types.ContainerInstanceFieldTags, types.ContainerInstanceFieldContainerInstanceHealth}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ContainerInstances) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" || aws.ToString(d.Failures[0].Arn) != prefix+"gone" {
		t.Fatalf("describe: %d instances, failures %+v", len(d.ContainerInstances), d.Failures)
	}
	ci := d.ContainerInstances[0]
	if aws.ToString(ci.ContainerInstanceArn) != prefix+instances[0] || aws.ToString(ci.Ec2InstanceId) != instances[0] ||
		aws.ToString(ci.Status) != "ACTIVE" || !ci.AgentConnected || ci.RegisteredAt == nil || ci.Tags == nil {
		t.Errorf("instance %+v", ci)
	}
	if cpu := resource(ci.RegisteredResources, "CPU"); cpu == nil || aws.ToString(cpu.Type) != "INTEGER" || cpu.IntegerValue != 2048 {
		t.Errorf("registered CPU %+v", cpu)
	}
	if mem := resource(ci.RemainingResources, "MEMORY"); mem == nil || mem.IntegerValue != 4096 {
		t.Errorf("remaining MEMORY %+v", mem)
	}
	if ports := resource(ci.RegisteredResources, "PORTS"); ports == nil || aws.ToString(ports.Type) != "STRINGSET" || !slices.Contains(ports.StringSetValue, "22") {
		t.Errorf("registered PORTS %+v", ports)
	}
	if zone, _ := attribute(ci.Attributes, "ecs.availability-zone"); zone != "zone-a" {
		t.Errorf("ecs.availability-zone = %q", zone)
	}
	if ci.HealthStatus == nil || ci.HealthStatus.OverallStatus != types.InstanceHealthCheckStateOk {
		t.Errorf("health %+v", ci.HealthStatus)
	}

	// Drain and reactivate.
	for _, status := range []types.ContainerInstanceStatus{types.ContainerInstanceStatusDraining, types.ContainerInstanceStatusActive} {
		upd, err := c.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(cluster),
			ContainerInstances: []string{prefix + instances[1], "gone"}, Status: status})
		if err != nil {
			t.Fatal(err)
		}
		if len(upd.ContainerInstances) != 1 || aws.ToString(upd.ContainerInstances[0].Status) != string(status) ||
			len(upd.Failures) != 1 || aws.ToString(upd.Failures[0].Reason) != "MISSING" {
			t.Errorf("set %s: %+v", status, upd)
		}
		got, err := c.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster), Status: types.ContainerInstanceStatusDraining})
		if err != nil {
			t.Fatal(err)
		}
		if draining := len(got.ContainerInstanceArns) == 1; draining != (status == types.ContainerInstanceStatusDraining) {
			t.Errorf("after %s, DRAINING lists %v", status, got.ContainerInstanceArns)
		}
	}
	if _, err := c.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(cluster),
		ContainerInstances: instances[:1], Status: types.ContainerInstanceStatusRegistering}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("status REGISTERING: %v", err)
	}

	// A user bound in its namespace only cannot read the shared instances.
	other := s.ecs(s.newUser("tenant", false))
	if _, err := other.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)}); apiErrorCode(err) != "AccessDeniedException" {
		t.Errorf("namespace-only user: %v, want AccessDeniedException", err)
	}
}

func TestDeregisterContainerInstance(t *testing.T) {
	s := start(t)
	u := s.newUser("decom", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, instances := tasksCluster(t, c, u.Namespace, 2, nil)
	putFamily(t, testobj.TaskDefinition(u.Namespace, "web").Container("web", "web:1").Obj(), 1)

	started, err := c.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String("web"), ContainerInstances: instances[:1]})
	if err != nil || len(started.Tasks) != 1 {
		t.Fatalf("StartTask: %v %+v", err, started)
	}
	// A task bound a moment ago counts, before the agent reports it.
	if _, err := c.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(cluster),
		ContainerInstance: aws.String(instances[0])}); apiErrorCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "Found running tasks on the instance.") {
		t.Errorf("deregistering a busy instance: %v", err)
	}
	for _, inst := range instances {
		out, err := c.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(cluster),
			ContainerInstance: aws.String(inst), Force: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.ContainerInstance.Status) != "INACTIVE" {
			t.Errorf("deregistered %s: status %s", inst, aws.ToString(out.ContainerInstance.Status))
		}
	}
	d, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: instances})
	if err != nil || len(d.ContainerInstances) != 0 || len(d.Failures) != 2 {
		t.Errorf("describe after deregistration: %v %+v", err, d)
	}
	if _, err := c.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String(cluster),
		ContainerInstance: aws.String(instances[0])}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("deregistering twice: %v", err)
	}
}

func TestAttributes(t *testing.T) {
	s := start(t)
	u := s.newUser("labeller", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster, instances := tasksCluster(t, c, u.Namespace, 2, nil)
	prefix := "arn:aws:ecs:" + region + ":" + account + ":container-instance/" + cluster + "/"

	put, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
		{Name: aws.String("stack"), Value: aws.String("blue"), TargetId: aws.String(instances[0])},
		{Name: aws.String("gpu-ready"), TargetId: aws.String(prefix + instances[0]), TargetType: types.TargetTypeContainerInstance},
		{Name: aws.String("stack"), Value: aws.String("green"), TargetId: aws.String(instances[1])},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(put.Attributes) != 3 || put.Attributes[0].TargetType != types.TargetTypeContainerInstance {
		t.Errorf("PutAttributes answered %+v", put.Attributes)
	}
	list := func(in ecs.ListAttributesInput) []string {
		t.Helper()
		in.Cluster, in.TargetType = aws.String(cluster), types.TargetTypeContainerInstance
		var out []string
		for {
			got, err := c.ListAttributes(ctx, &in)
			if err != nil {
				t.Fatalf("ListAttributes: %v", err)
			}
			for _, a := range got.Attributes {
				out = append(out, fmt.Sprintf("%s %s=%s", strings.TrimPrefix(aws.ToString(a.TargetId), prefix), aws.ToString(a.Name), aws.ToString(a.Value)))
			}
			if got.NextToken == nil {
				return out
			}
			in.NextToken = got.NextToken
		}
	}
	if got, want := list(ecs.ListAttributesInput{AttributeName: aws.String("stack")}),
		[]string{instances[0] + " stack=blue", instances[1] + " stack=green"}; !slices.Equal(got, want) {
		t.Errorf("stack attributes %v, want %v", got, want)
	}
	if got, want := list(ecs.ListAttributesInput{AttributeName: aws.String("stack"), AttributeValue: aws.String("green")}),
		[]string{instances[1] + " stack=green"}; !slices.Equal(got, want) {
		t.Errorf("stack=green %v, want %v", got, want)
	}
	// Every attribute, the agent's built-ins among them, one page at a time.
	all := list(ecs.ListAttributesInput{MaxResults: aws.Int32(1)})
	if !slices.Contains(all, instances[0]+" gpu-ready=") || !slices.Contains(all, instances[1]+" ecs.os-type=linux") {
		t.Errorf("all attributes %v", all)
	}
	d, err := c.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: instances[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := attribute(d.ContainerInstances[0].Attributes, "stack"); !ok || v != "blue" {
		t.Errorf("described stack = %q, %v", v, ok)
	}

	if _, err := c.DeleteAttributes(ctx, &ecs.DeleteAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
		{Name: aws.String("stack"), TargetId: aws.String(instances[0])}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := list(ecs.ListAttributesInput{AttributeName: aws.String("stack")}), []string{instances[1] + " stack=green"}; !slices.Equal(got, want) {
		t.Errorf("after delete %v, want %v", got, want)
	}

	refusals := []struct {
		name     string
		call     func() error
		wantType string
	}{
		{"a built-in name", func() error {
			_, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
				{Name: aws.String("ecs.availability-zone"), Value: aws.String("zone-z"), TargetId: aws.String(instances[0])}}})
			return err
		}, "InvalidParameterException"},
		{"deleting a built-in", func() error {
			_, err := c.DeleteAttributes(ctx, &ecs.DeleteAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
				{Name: aws.String("ecs.os-type"), TargetId: aws.String(instances[0])}}})
			return err
		}, "InvalidParameterException"},
		{"an unknown target", func() error {
			_, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
				{Name: aws.String("stack"), Value: aws.String("red"), TargetId: aws.String("nobody")}}})
			return err
		}, "TargetNotFoundException"},
		{"a target type other than container-instance", func() error {
			_, err := c.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: aws.String(cluster), TargetType: "task"})
			return err
		}, "InvalidParameterException"},
		{"eleven in one call", func() error {
			var attrs []types.Attribute
			for i := range 11 {
				attrs = append(attrs, types.Attribute{Name: aws.String(fmt.Sprintf("a%d", i)), TargetId: aws.String(instances[0])})
			}
			_, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: attrs})
			return err
		}, "InvalidParameterException"},
	}
	for _, r := range refusals {
		if err := r.call(); apiErrorCode(err) != r.wantType {
			t.Errorf("%s: %v, want %s", r.name, err, r.wantType)
		}
	}

	// ECS's limit of 10 custom attributes a resource: instance 0 holds one
	// (gpu-ready); nine more fit, the eleventh does not.
	var nine []types.Attribute
	for i := range 9 {
		nine = append(nine, types.Attribute{Name: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v"), TargetId: aws.String(instances[0])})
	}
	if _, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: nine}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String(cluster), Attributes: []types.Attribute{
		{Name: aws.String("one-more"), TargetId: aws.String(instances[0])}}}); apiErrorCode(err) != "AttributeLimitExceededException" {
		t.Errorf("an 11th attribute: %v, want AttributeLimitExceededException", err)
	}
	// A refused call changes nothing, on any of its targets.
	if got := list(ecs.ListAttributesInput{AttributeName: aws.String("one-more")}); len(got) != 0 {
		t.Errorf("the refused attribute was written: %v", got)
	}
}
