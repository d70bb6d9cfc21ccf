package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/up/awsconfig"
	"github.com/berthdev/berth/test/testenv"
)

// TestAWSCLIConfigurationOfBerthUp: the files `berth up` writes (awsconfig) are all
// the real aws CLI needs to reach `berth api`: with them alone, `aws sts
// get-caller-identity`, `aws ecs list-clusters` and `aws application-autoscaling
// describe-scalable-targets` are signed with the credential and answered by the
// API, found through the config file's services section; an
// endpoint the user chooses (--endpoint-url, AWS_ENDPOINT_URL_ECS) still wins over
// it. boto3 reads the same section: with no endpoint in code it reaches the API,
// signing with the files' key and region.
func TestAWSCLIConfigurationOfBerthUp(t *testing.T) {
	testenv.AWSCLI(t)
	testenv.Boto3Python(t)
	s := start(t)
	u := s.newUser("cli-user", true)
	ctx := context.Background()
	if _, err := s.ecs(u).CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("cli-config")}); err != nil {
		t.Fatal(err)
	}
	files, err := awsconfig.Write(t.TempDir(), awsconfig.Endpoint{
		URL: s.endpoint, Region: region, AccessKeyID: u.Cred.AccessKeyID, SecretAccessKey: u.Cred.SecretAccessKey,
	})
	if err != nil {
		t.Fatal(err)
	}

	var identity struct{ UserId, Account, Arn string }
	runCLIJSON(t, testenv.AWSCommand(t, files.Env(), "sts", "get-caller-identity"), &identity)
	if identity.Account != account || identity.Arn != "arn:aws:iam::"+account+":user/cli-user" || identity.UserId != u.Cred.AccessKeyID {
		t.Errorf("aws sts get-caller-identity = %+v, want account %s, user cli-user, key %s", identity, account, u.Cred.AccessKeyID)
	}
	var clusters struct{ ClusterArns []string }
	runCLIJSON(t, testenv.AWSCommand(t, files.Env(), "ecs", "list-clusters"), &clusters)
	clusterARN := "arn:aws:ecs:" + region + ":" + account + ":cluster/cli-config"
	if !slices.Contains(clusters.ClusterArns, clusterARN) {
		t.Errorf("aws ecs list-clusters = %v, want %s among them", clusters.ClusterArns, clusterARN)
	}

	// Application Auto Scaling's key in the services section is its service ID in
	// snake case (application_auto_scaling): with another, the CLI would call AWS,
	// which is out of reach here.
	var targets struct{ ScalableTargets *[]any }
	runCLIJSON(t, testenv.AWSCommand(t, files.Env(), "application-autoscaling", "describe-scalable-targets", "--service-namespace", "ecs",
		"--cli-connect-timeout", "5"), &targets)
	if targets.ScalableTargets == nil || len(*targets.ScalableTargets) != 0 {
		t.Errorf("aws application-autoscaling describe-scalable-targets = %+v, want Berth's empty list", targets)
	}

	var fromBoto3 struct {
		ClusterArns []string
		Account     string
		Targets     *int
	}
	runCLIJSON(t, testenv.Boto3Command(t, files.Env(), boto3Script), &fromBoto3)
	if !slices.Contains(fromBoto3.ClusterArns, clusterARN) || fromBoto3.Account != account || fromBoto3.Targets == nil || *fromBoto3.Targets != 0 {
		t.Errorf("boto3 saw clusters %v in account %s and %v scalable targets, want %s among them in %s, and none",
			fromBoto3.ClusterArns, fromBoto3.Account, fromBoto3.Targets, clusterARN, account)
	}

	// The user's own choice of endpoint is left alone: nothing listens on port 1.
	refused := []struct {
		name string
		env  []string
		args []string
	}{
		{"--endpoint-url", nil, []string{"--endpoint-url", "http://127.0.0.1:1"}},
		{"AWS_ENDPOINT_URL_ECS", []string{"AWS_ENDPOINT_URL_ECS=http://127.0.0.1:1"}, nil},
	}
	for _, tc := range refused {
		args := append([]string{"ecs", "list-clusters", "--cli-connect-timeout", "2"}, tc.args...)
		out, err := testenv.AWSCommand(t, append(files.Env(), tc.env...), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "http://127.0.0.1:1/") {
			t.Errorf("with %s the CLI did not call the endpoint chosen (%v):\n%s", tc.name, err, out)
		}
	}
}

// boto3Script lists the clusters and the scalable targets and asks STS for the
// account, with the endpoint, region and key of the AWS config files alone.
const boto3Script = `
import json, sys, boto3
session = boto3.Session()
ecs = session.client("ecs")
sts = session.client("sts")
aas = session.client("application-autoscaling")
print(json.dumps({"ClusterArns": ecs.list_clusters()["clusterArns"], "Account": sts.get_caller_identity()["Account"],
                  "Targets": len(aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"])}))
`

// runCLIJSON runs cmd and decodes its standard output into v.
func runCLIJSON(t *testing.T, cmd *exec.Cmd, v any) {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s printed no JSON: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}
