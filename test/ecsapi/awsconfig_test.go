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
// get-caller-identity` and `aws ecs list-clusters` are signed with the credential
// and answered by the API, found through the config file's services section; an
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

	var fromBoto3 struct {
		ClusterArns []string
		Account     string
	}
	runCLIJSON(t, testenv.Boto3Command(t, files.Env(), boto3Script), &fromBoto3)
	if !slices.Contains(fromBoto3.ClusterArns, clusterARN) || fromBoto3.Account != account {
		t.Errorf("boto3 saw clusters %v in account %s, want %s among them in %s", fromBoto3.ClusterArns, fromBoto3.Account, clusterARN, account)
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

// boto3Script lists the clusters and asks STS for the account, with the endpoint,
// region and key of the AWS config files alone.
const boto3Script = `
import json, sys, boto3
session = boto3.Session()
ecs = session.client("ecs")
sts = session.client("sts")
print(json.dumps({"ClusterArns": ecs.list_clusters()["clusterArns"], "Account": sts.get_caller_identity()["Account"]}))
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
