package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/berthdev/berth/internal/up/awsconfig"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

// TestECSAPIWithRealClients drives Berth through `berth api` with the aws CLI and
// boto3 (pinned, from bin/pyclients), with a real agent running the tasks on
// containerd: the workflows a pipeline runs (testdata/ecsapi/workflow.sh), then
// ECS's error types, tenancy and the signature checks (testdata/ecsapi/errors.py).
func TestECSAPIWithRealClients(t *testing.T) {
	aws, python := testenv.AWSCLI(t), testenv.Boto3Python(t)
	s := newStack(t)
	instance := "node-" + s.ns
	s.startBridgeAgent(t, instance)
	ctx := context.Background()
	// The core Service the ECS service registers its tasks behind (loadBalancerName).
	core := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: s.ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if err := env.Client.Create(ctx, core); err != nil {
		t.Fatal(err)
	}
	endpoint := harness.StartAPI(t, env)
	a := harness.APIUser(t, env, s.ns, "pipeline", true)
	otherNS := env.Namespace(t)
	b := harness.APIUser(t, env, otherNS, "other-team", false)

	// The files `berth up` writes, so the CLI finds the endpoint as a user's does.
	work := t.TempDir()
	files, err := awsconfig.Write(filepath.Join(work, "aws"), awsconfig.Endpoint{URL: endpoint, Region: harness.APIRegion,
		AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	base := testenv.AWSEnv(t, files.Env())

	t.Run("workflow with the aws CLI", func(t *testing.T) {
		runScript(t, append(base, "AWS="+aws, "CLUSTER="+s.cluster, "IMAGE="+s.image, "INSTANCE="+instance, "WORK="+work),
			"bash", filepath.Join("testdata", "ecsapi", "workflow.sh"))
	})
	t.Run("errors, tenancy and signatures with boto3", func(t *testing.T) {
		runScript(t, append(base, "ENDPOINT="+endpoint, "REGION="+harness.APIRegion, "ACCOUNT="+harness.APIAccount, "CLUSTER="+s.cluster,
			"KEY_A="+a.AccessKeyID, "SECRET_A="+a.SecretAccessKey, "USER_A="+a.User,
			"KEY_B="+b.AccessKeyID, "SECRET_B="+b.SecretAccessKey),
			python, filepath.Join("testdata", "ecsapi", "errors.py"))
	})
}

// runScript runs a client script, logging its output line by line as it comes, and
// fails the test when it exits non-zero.
func runScript(t *testing.T, environ []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = environ
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var (
		wg   sync.WaitGroup
		tail []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			t.Log(sc.Text())
			tail = append(tail, sc.Text())
		}
	}()
	err := cmd.Run()
	_ = pw.Close()
	wg.Wait()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.Join(tail[max(0, len(tail)-15):], "\n"))
	}
}
