package hollow_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/hollow"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/cli"
)

func runCLI(ctx context.Context, args ...string) error {
	root := cli.NewRootCommand()
	root.SetArgs(append([]string{"hollow"}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.ExecuteContext(ctx)
}

// TestCLIRejectsBadFlags: every bad value is reported with the flag that set it,
// before any apiserver is contacted (the kubeconfig path does not exist).
func TestCLIRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantFlag string
	}{
		{[]string{"--instances", "0"}, "--instances"},
		{[]string{"--instances", "many"}, "--instances"},
		{[]string{"--cluster", ""}, "--cluster"},
		{[]string{"--cluster", "Not_A_Name"}, "--cluster"},
		{[]string{"--name-prefix", "UPPER"}, "--name-prefix"},
		{[]string{"--cpu", "0"}, "--cpu"},
		{[]string{"--memory", "-5"}, "--memory"},
		{[]string{"--zones", "a,,b"}, "--zones"},
		{[]string{"--zones", "a b,c=d"}, "--zones"},
		{[]string{"--attribute", "novalue"}, "--attribute"},
		{[]string{"--attribute", "ecs.availability-zone=x"}, "--attribute"},
		{[]string{"--attribute", "stack=a", "--attribute", "stack=b"}, "--attribute"},
		{[]string{"--running-delay", "-1s"}, "--running-delay"},
		{[]string{"--running-delay", "soon"}, "--running-delay"},
		{[]string{"--lease-interval", "1m"}, "--lease-interval"},
		{[]string{"--utilization-interval", "100ms"}, "--utilization-interval"},
		{[]string{"--fail-image", ""}, "--fail-image"},
		{[]string{"--unhealthy-image", ""}, "--unhealthy-image"},
		{[]string{"--kube-api-qps", "0"}, "--kube-api-qps"},
		{[]string{"--kube-api-burst", "0"}, "--kube-api-burst"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--kubeconfig", "/nonexistent/kubeconfig"}, tc.args...)
			err := runCLI(context.Background(), args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantFlag) {
				t.Errorf("berth hollow %v: error %v, want one naming %s", tc.args, err, tc.wantFlag)
			}
		})
	}
}

// TestCLIRuns runs `berth hollow` against the test apiserver for a moment.
func TestCLIRuns(t *testing.T) {
	env := hollow.SharedEnv()
	if env == nil {
		t.Skip("needs the test apiserver (skipped with -short)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runCLI(ctx, "--kubeconfig", env.Kubeconfig, "--cluster", "cli", "--instances", "2",
			"--name-prefix", "cli", "--zones", "east, west", "--attribute", "stack=cli", "--attribute", "tier=web",
			"--cpu", "1024", "--memory", "2048", "--lease-interval", "500ms", "--running-delay", "10ms",
			"--fail-image", "crash", "--unhealthy-image", "sick", "--kube-api-qps", "50", "--kube-api-burst", "100",
			"--zap-log-level", "error")
	}()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = checkCLIInstance(env.Client); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("instances of berth hollow: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("berth hollow returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("berth hollow did not stop after its context was cancelled")
	}
}

func checkCLIInstance(c client.Client) error {
	for i, zone := range []string{"east", "west"} {
		ci := &ecsv1alpha1.ContainerInstance{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: fmt.Sprintf("cli-%04d", i)}, ci); err != nil {
			return err
		}
		attrs := map[string]string{}
		for _, a := range ci.Status.Attributes {
			attrs[a.Name] = a.Value
		}
		r := ci.Status.RegisteredResources
		if r == nil || r.Cpu != 1024 || r.Memory != 2048 || attrs["ecs.availability-zone"] != zone || attrs["stack"] != "cli" || attrs["tier"] != "web" {
			return fmt.Errorf("%s: resources %+v, attributes %v", ci.Name, r, attrs)
		}
	}
	return nil
}
