package ecsapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/ecsapi"
	"github.com/berthdev/berth/test/testenv"
)

// TestAuthentication: every refusal has ECS's error type and status, through the
// real SDK; RBAC decides through impersonation.
func TestAuthentication(t *testing.T) {
	s := start(t)
	u := s.newUser("dev", false) // bound in its namespace only
	ctx := context.Background()
	withKey := func(id, secret string) *ecs.Client {
		return ecs.New(ecs.Options{Region: region, BaseEndpoint: aws.String(s.endpoint), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
	}
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown access key", func() error {
			_, err := withKey("BKIAUNKNOWNUNKNOWNUN", "x").ListClusters(ctx, &ecs.ListClustersInput{})
			return err
		}, "UnrecognizedClientException"},
		{"wrong secret", func() error {
			_, err := withKey(u.Cred.AccessKeyID, "not-the-secret").ListClusters(ctx, &ecs.ListClustersInput{})
			return err
		}, "InvalidSignatureException"},
		{"signed for another region", func() error {
			c := ecs.New(ecs.Options{Region: "us-west-2", BaseEndpoint: aws.String(s.endpoint), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(u.Cred.AccessKeyID, u.Cred.SecretAccessKey, "")})
			_, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
			return err
		}, "InvalidSignatureException"},
		{"RBAC denies a cluster-scoped read to a namespace-bound user", func() error {
			_, err := s.ecs(u).ListClusters(ctx, &ecs.ListClustersInput{})
			return err
		}, "AccessDeniedException"},
		{"an ECS action Berth does not serve", func() error {
			_, err := s.ecs(u).CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("cp"),
				AutoScalingGroupProvider: &ecstypes.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String("arn:aws:autoscaling:x")}})
			return err
		}, "UnsupportedFeatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiErrorCode(tc.call()); got != tc.want {
				t.Errorf("got %q, want %s", got, tc.want)
			}
		})
	}

	t.Run("refusals counted in the metrics", func(t *testing.T) {
		resp, err := http.Get(s.endpoint + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, want := range []string{
			`berth_ecs_api_requests_total{action="ListClusters",code="UnrecognizedClientException"} 1`,
			`berth_ecs_api_requests_total{action="ListClusters",code="InvalidSignatureException"} 2`,
			`berth_ecs_api_requests_total{action="ListClusters",code="AccessDeniedException"} 1`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("STS GetCallerIdentity on the same endpoint", func(t *testing.T) {
		c := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(s.endpoint), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(u.Cred.AccessKeyID, u.Cred.SecretAccessKey, "")})
		out, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Account) != account || aws.ToString(out.Arn) != "arn:aws:iam::"+account+":user/dev" {
			t.Errorf("identity %s %s", aws.ToString(out.Account), aws.ToString(out.Arn))
		}
	})

	t.Run("wire errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, target, want string
			status               int
		}{
			{http.MethodGet, "", "UnknownOperationException", 400},
			{http.MethodPost, "", "UnknownOperationException", 400},
			{http.MethodPost, ecsapi.TargetPrefix + "ListClusters", "MissingAuthenticationTokenException", 403},
		} {
			req, _ := http.NewRequest(tc.method, s.endpoint+"/", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			if tc.target != "" {
				req.Header.Set("X-Amz-Target", tc.target)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(body), `"__type":"`+tc.want+`"`) || resp.Header.Get("x-amzn-RequestId") == "" {
				t.Errorf("%s %q: %d %s (request ID %q), want %d %s", tc.method, tc.target, resp.StatusCode, body, resp.Header.Get("x-amzn-RequestId"), tc.status, tc.want)
			}
		}
	})
}

// TestAuthNone: --auth=none serves unsigned calls as the server's identity, in one
// namespace.
func TestAuthNone(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ecsapi.Run(ctx, ecsapi.RunOptions{Config: ecsapi.Config{Region: region, AccountID: account},
			Kubeconfig: env.Kubeconfig, QPS: 50, Burst: 100, Listen: "127.0.0.1:0", Auth: ecsapi.AuthNone, Namespace: ns,
			Ready: func(a string) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("berth api: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	c := ecs.New(ecs.Options{Region: region, BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: aws.AnonymousCredentials{}})
	if _, err := c.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("unsigned call with --auth=none: %v", err)
	}
}
