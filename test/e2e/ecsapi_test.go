package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
)

// TestECSAPIWithRealClients drives Berth through `berth api` with the aws CLI and
// boto3 (pinned, from bin/pyclients), with a real agent running the tasks on
// containerd: the workflows a pipeline runs (testdata/ecsapi/workflow.sh), then
// ECS's error types, tenancy and the signature checks (testdata/ecsapi/errors.py).
func TestECSAPIWithRealClients(t *testing.T) {
	aws, python := testenv.PyClients(t)
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

	work := t.TempDir()
	cfg := filepath.Join(work, "config")
	creds := filepath.Join(work, "credentials")
	writeFile(t, cfg, fmt.Sprintf("[default]\nregion = %s\nservices = berth\n\n[services berth]\necs =\n  endpoint_url = %s\nsts =\n  endpoint_url = %s\n",
		harness.APIRegion, endpoint, endpoint))
	writeFile(t, creds, fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", a.AccessKeyID, a.SecretAccessKey))
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "AWS_PAGER=", "AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_EC2_METADATA_DISABLED=true"}

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

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
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
