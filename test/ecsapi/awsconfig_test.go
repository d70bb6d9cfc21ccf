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
// and answered by the API. Debian's aws CLI (2.9) ignores the config file's
// services section, so this also proves the plugin; an endpoint the user chooses
// (--endpoint-url, AWS_ENDPOINT_URL_ECS) still wins over it.
func TestAWSCLIConfigurationOfBerthUp(t *testing.T) {
	testenv.AWSCLI(t)
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
	if want := "arn:aws:ecs:" + region + ":" + account + ":cluster/cli-config"; !slices.Contains(clusters.ClusterArns, want) {
		t.Errorf("aws ecs list-clusters = %v, want %s among them", clusters.ClusterArns, want)
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
