package ecsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/cli"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

// TestCredentialsCreate: `berth api credentials create` stores a key pair as the
// server's credential Secret, prints it once, and the key signs calls that act as
// the named user; deleting the Secret revokes it.
func TestCredentialsCreate(t *testing.T) {
	s := start(t)
	ns := env.Namespace(t)
	cmd := cli.NewRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"api", "credentials", "create", "--namespace", ns, "--user", "carol", "--group", "ops",
		"--credentials-namespace", harness.APICredentialsNamespace, "--kubeconfig", env.Kubeconfig, "--output", "json"})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var printed struct{ AccessKeyId, SecretAccessKey, Namespace, User string }
	if err := json.Unmarshal(out.Bytes(), &printed); err != nil {
		t.Fatalf("printed %q: %v", out.String(), err)
	}
	var secret corev1.Secret
	key := client.ObjectKey{Namespace: harness.APICredentialsNamespace, Name: auth.SecretName(printed.AccessKeyId)}
	if err := env.Client.Get(context.Background(), key, &secret); err != nil {
		t.Fatal(err)
	}
	cred, err := auth.FromSecret(&secret)
	if err != nil || cred == nil || cred.Namespace != ns || cred.User != "carol" || len(cred.Groups) != 1 || cred.Groups[0] != "ops" {
		t.Fatalf("stored credential %+v (%v)", cred, err)
	}
	identity := func() (*sts.GetCallerIdentityOutput, error) {
		c := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(s.endpoint), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(printed.AccessKeyId, printed.SecretAccessKey, "")})
		return c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	}
	got, err := identity()
	if err != nil || aws.ToString(got.Arn) != "arn:aws:iam::"+account+":user/carol" {
		t.Fatalf("the new key: %v, %v", got, err)
	}
	if err := env.Client.Delete(context.Background(), &secret); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the deleted credential refused", func() error {
		if _, err := identity(); apiErrorCode(err) != "UnrecognizedClientException" {
			return fmt.Errorf("answered %w", err)
		}
		return nil
	})
}
