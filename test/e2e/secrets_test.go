package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/berthdev/berth/test/testenv"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/berthdev/berth/agent"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

func randomValue(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestSecretsNeverLeak runs a task with a secret environment variable, a secret
// environment file and a private image, with the agent logging at its most verbose,
// and looks for the values everywhere Berth writes: the agent's logs, Events, the
// task's and the instance's status, the agent's HTTP endpoints, and containerd's
// container and image labels and the container spec's annotations. They must be
// nowhere but in the container's environment, where they belong. A second task
// without the credentials is then refused the private image, which is in the cache.
func TestSecretsNeverLeak(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	password := randomValue(t, "pw-")
	secretValue := randomValue(t, "sv-")
	fileValue := randomValue(t, "ef-")

	private := regtest.Start(t, regtest.WithBasicAuth("bob", password))
	image, _ := private.Push(t, regtest.TestImage(t, nil), "team/private", "1")
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, private.Addr,
				base64.StdEncoding.EncodeToString([]byte("bob:"+password)))}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "db"}, StringData: map[string]string{"password": secretValue}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "env"}, StringData: map[string]string{"API_TOKEN": fileValue}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	logs := &testenv.SyncBuffer{}
	o := s.agentOptions(t, "secrets-"+s.ns)
	logger := zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-127)))
	actx, cancel := context.WithCancel(ctrl.LoggerInto(ctx, logger))
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	name := s.run(t, "withsecrets", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
		c := &spec.ContainerDefinitions[0]
		c.Image = image
		c.RepositoryCredentials = &ecsv1alpha1.RepositoryCredentials{CredentialsParameter: "pull"}
		c.Secrets = []ecsv1alpha1.SecretVariable{{Name: "DB_PASSWORD",
			ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "db", Key: "password"}}}}
		c.EnvironmentFiles = []ecsv1alpha1.EnvironmentFile{{Type: ecsv1alpha1.EnvironmentFileSecret, Value: "env"}}
	})
	waitTask(t, s.ns, name, "RUNNING", func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return fmt.Errorf("not RUNNING")
		}
		return nil
	})

	// The same private image, now in the cache, without credentials: refused.
	nocreds := s.run(t, "nocreds", func(spec *ecsv1alpha1.TaskDefinitionSpec) { spec.ContainerDefinitions[0].Image = image })
	waitTask(t, s.ns, nocreds, "refused the cached private image", stoppedWith(ecsv1alpha1.StopTaskFailedToStart))

	haystacks := map[string]string{"agent logs": logs.String()}
	haystacks["containerd"] = s.containerdRecords(t, secretValue)
	haystacks["events"] = jsonOf(t, &corev1.EventList{}, client.InNamespace(s.ns))
	haystacks["tasks"] = jsonOf(t, &ecsv1alpha1.TaskList{}, client.InNamespace(s.ns))
	haystacks["container instances"] = jsonOf(t, &ecsv1alpha1.ContainerInstanceList{})
	for _, path := range []string{"/v1/tasks", "/metrics"} {
		_, body, err := agentGet(t, o.HTTPBindAddress, path)
		if err != nil {
			t.Fatal(err)
		}
		haystacks["agent "+path] = body
	}
	stopTask(t, s.ns, name)
	waitTask(t, s.ns, name, "stopped", stoppedWith(ecsv1alpha1.StopUserInitiated))
	haystacks["agent logs after the stop"] = logs.String()

	if !strings.Contains(logs.String(), name) {
		t.Fatalf("the agent's logs do not mention the task: is the capture working?\n%s", logs.String())
	}
	for where, text := range haystacks {
		for what, v := range map[string]string{"registry password": password, "secret variable": secretValue, "environment file value": fileValue} {
			if strings.Contains(text, v) {
				t.Errorf("the %s appears in %s", what, where)
			}
		}
	}
}

func jsonOf(t *testing.T, list client.ObjectList, opts ...client.ListOption) string {
	t.Helper()
	if err := env.Client.List(context.Background(), list, opts...); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// containerdRecords returns the labels of the agent's containers and images and
// their specs' annotations. It also checks that the secret value did reach a
// container's environment, so that finding it nowhere else means something.
func (s *stack) containerdRecords(t *testing.T, secretValue string) string {
	t.Helper()
	cl, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	ctx := namespaces.WithNamespace(context.Background(), s.ctrNamespace)
	ctrs, err := cl.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	delivered := false
	for _, c := range ctrs {
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s labels %v\n", c.ID(), info.Labels)
		spec, err := c.Spec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s annotations %v\n", c.ID(), spec.Annotations)
		if spec.Process != nil && strings.Contains(strings.Join(spec.Process.Env, "\n"), "DB_PASSWORD="+secretValue) {
			delivered = true
		}
	}
	if !delivered {
		t.Error("no container got the secret in its environment")
	}
	imgs, err := cl.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		fmt.Fprintf(&out, "image %s labels %v\n", img.Name(), img.Labels())
	}
	return out.String()
}
