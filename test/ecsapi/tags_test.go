package ecsapi

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// tagsOfResource lists a resource's tags as a map.
func tagsOfResource(t *testing.T, c *ecs.Client, arn string) map[string]string {
	t.Helper()
	out, err := c.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("ListTagsForResource %s: %v", arn, err)
	}
	if out.Tags == nil {
		t.Errorf("ListTagsForResource %s: tags absent, ECS answers a list", arn)
	}
	got := map[string]string{}
	for _, tg := range out.Tags {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return got
}

// TestTags: tags round trip on every resource type ECS tags (cluster, service,
// task, task definition revision, container instance), a revision's registered
// tags are its tags until edited and other revisions keep theirs, and the errors.
func TestTags(t *testing.T) {
	s := start(t)
	u := s.newUser("tagger", true)
	c := s.ecs(u)
	ctx := context.Background()
	cluster := u.Namespace
	newCluster(t, c, cluster, 1, nil)
	arnPrefix := "arn:aws:ecs:" + region + ":" + account + ":"

	td := testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:1").Obj()
	td.Spec.Tags = []ecsv1alpha1.Tag{{Key: "team", Value: "payments"}, {Key: "tier", Value: "web"}}
	putFamily(t, td, 1)
	created, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("web:1"), DesiredCount: aws.Int32(1), Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	waitStable(t, c, cluster, "web")

	var tasks ecsv1alpha1.TaskList
	if err := env.Client.List(ctx, &tasks, client.InNamespace(u.Namespace), client.MatchingLabels{ecsv1alpha1.LabelService: "web"}); err != nil || len(tasks.Items) == 0 {
		t.Fatalf("the service's tasks: %d, %v", len(tasks.Items), err)
	}
	var instances ecsv1alpha1.ContainerInstanceList
	if err := env.Client.List(ctx, &instances); err != nil {
		t.Fatal(err)
	}
	instanceARN := ""
	for i := range instances.Items {
		if instances.Items[i].Spec.Cluster == cluster {
			instanceARN = arnPrefix + "container-instance/" + cluster + "/" + instances.Items[i].Name
		}
	}
	if instanceARN == "" {
		t.Fatal("no container instance in the cluster")
	}

	tests := []struct {
		name    string
		arn     string
		initial map[string]string
	}{
		{name: "cluster", arn: arnPrefix + "cluster/" + cluster, initial: map[string]string{}},
		{name: "service", arn: aws.ToString(created.Service.ServiceArn), initial: map[string]string{"owner": "alice"}},
		{name: "task", arn: arnPrefix + "task/" + cluster + "/" + tasks.Items[0].Name, initial: map[string]string{}},
		{name: "container instance", arn: instanceARN, initial: map[string]string{}},
		{name: "task definition revision", arn: arnPrefix + "task-definition/web:1", initial: map[string]string{"team": "payments", "tier": "web"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.initial, tagsOfResource(t, c, tc.arn)); diff != "" {
				t.Errorf("initial tags (-want +got):\n%s", diff)
			}
			if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: []types.Tag{
				{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("team"), Value: aws.String("search")}}}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"env": "prod", "team": "search"}
			for k, v := range tc.initial {
				if _, set := want[k]; !set {
					want[k] = v
				}
			}
			if diff := cmp.Diff(want, tagsOfResource(t, c, tc.arn)); diff != "" {
				t.Errorf("after TagResource (-want +got):\n%s", diff)
			}
			if tc.name == "task definition revision" {
				// DescribeTaskDefinition answers the same tags.
				d, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(tc.arn),
					Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, tag := range d.Tags {
					got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("DescribeTaskDefinition's tags (-want +got):\n%s", diff)
				}
			}
			if _, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(tc.arn), TagKeys: []string{"team", "env"}}); err != nil {
				t.Fatal(err)
			}
			delete(want, "team")
			delete(want, "env")
			if diff := cmp.Diff(want, tagsOfResource(t, c, tc.arn)); diff != "" {
				t.Errorf("after UntagResource (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("other revisions keep their own tags", func(t *testing.T) {
		td2 := testobj.TaskDefinition(u.Namespace, "web").Container("app", "demo:2").Obj()
		td2.Spec.Tags = []ecsv1alpha1.Tag{{Key: "team", Value: "payments"}}
		putFamily(t, td2, 2)
		if diff := cmp.Diff(map[string]string{"team": "payments"}, tagsOfResource(t, c, arnPrefix+"task-definition/web:2")); diff != "" {
			t.Errorf("revision 2 (-want +got):\n%s", diff)
		}
		// Revision 1 lost its registered team tag above and does not get it back.
		if diff := cmp.Diff(map[string]string{"tier": "web"}, tagsOfResource(t, c, arnPrefix+"task-definition/web:1")); diff != "" {
			t.Errorf("revision 1 (-want +got):\n%s", diff)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			arn      string
			wantCode string
		}{
			{arnPrefix + "service/" + cluster + "/nothing", "ResourceNotFoundException"},
			{arnPrefix + "service/other-cluster/web", "ResourceNotFoundException"},
			{arnPrefix + "cluster/nothing-here", "ResourceNotFoundException"},
			{arnPrefix + "task/" + cluster + "/0123456789abcdef0123456789abcdef", "ResourceNotFoundException"},
			{arnPrefix + "container-instance/" + cluster + "/0123456789abcdef0123456789abcdef", "ResourceNotFoundException"},
			{arnPrefix + "task-definition/web:9", "ResourceNotFoundException"},
			{arnPrefix + "task-definition/web", "InvalidParameterException"},
			{arnPrefix + "capacity-provider/spot", "InvalidParameterException"},
			{"arn:aws:ecs:us-east-1:" + account + ":cluster/" + cluster, "InvalidParameterException"},
			{"web", "InvalidParameterException"},
		} {
			if _, err := c.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(tc.arn)}); apiErrorCode(err) != tc.wantCode {
				t.Errorf("ListTagsForResource %s: %v, want %s", tc.arn, err, tc.wantCode)
			}
		}
		svcARN := aws.ToString(created.Service.ServiceArn)
		if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(svcARN),
			Tags: []types.Tag{{Key: aws.String("aws:owner"), Value: aws.String("x")}}}); apiErrorCode(err) != "InvalidParameterException" {
			t.Errorf("an aws: key: %v", err)
		}
		if _, err := c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(svcARN), Tags: []types.Tag{}}); apiErrorCode(err) != "InvalidParameterException" {
			t.Errorf("no tags: %v", err)
		}
		if _, err := c.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: aws.String(svcARN), TagKeys: []string{}}); apiErrorCode(err) != "InvalidParameterException" {
			t.Errorf("no tag keys: %v", err)
		}
		// Another namespace's service is not found by its ARN.
		oc := s.ecs(s.newUser("stranger", true))
		testenv.Eventually(t, "another namespace's service not found", func() error {
			// AccessDeniedException until the authorizer sees the new user's binding.
			if _, err := oc.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(svcARN)}); apiErrorCode(err) != "ResourceNotFoundException" {
				return fmt.Errorf("got %w, want ResourceNotFoundException", err)
			}
			return nil
		})
	})
}
