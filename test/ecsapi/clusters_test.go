package ecsapi

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

// apiErrorCode is the ECS error type of err ("" when err is not an API error).
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestClusters(t *testing.T) {
	s := start(t)
	u := s.newUser("ops", true)
	c := s.ecs(u)
	ctx := context.Background()
	// An ECS name that is no Kubernetes name, unique to the run.
	name := "Prod_EU_" + u.Namespace[len(u.Namespace)-5:]

	created, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}})
	if err != nil {
		t.Fatal(err)
	}
	wantARN := "arn:aws:ecs:" + region + ":" + account + ":cluster/" + name
	if got := aws.ToString(created.Cluster.ClusterArn); got != wantARN {
		t.Errorf("clusterArn = %s, want %s", got, wantARN)
	}
	// Idempotent, as in ECS.
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Errorf("second CreateCluster: %v", err)
	}
	d, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{name, wantARN, "nope"},
		Include: []types.ClusterField{types.ClusterFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Clusters) != 2 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe: %d clusters, failures %+v", len(d.Clusters), d.Failures)
	}
	if tags := d.Clusters[0].Tags; len(tags) != 1 || aws.ToString(tags[0].Value) != "payments" {
		t.Errorf("tags = %+v", tags)
	}
	if aws.ToString(d.Clusters[0].Status) != "ACTIVE" || aws.ToString(d.Clusters[0].ClusterName) != name {
		t.Errorf("cluster = %+v", d.Clusters[0])
	}
	l, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range l.ClusterArns {
		found = found || a == wantARN
	}
	if !found {
		t.Errorf("ListClusters %v lacks %s", l.ClusterArns, wantARN)
	}
	if _, err := c.UpdateCluster(ctx, &ecs.UpdateClusterInput{Cluster: aws.String(name),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}}}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("containerInsights enabled: %v, want InvalidParameterException", err)
	}
	del, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Errorf("deleted cluster status %s", aws.ToString(del.Cluster.Status))
	}
	if _, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(name)}); apiErrorCode(err) != "ClusterNotFoundException" {
		t.Errorf("second delete: %v, want ClusterNotFoundException", err)
	}
}
