package up_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/gateway"
	"github.com/berthdev/berth/internal/kube"
	"github.com/berthdev/berth/internal/up/demo"
	"github.com/berthdev/berth/test/testenv"
)

// checkAgentReads tries the agent's own identity (the certificate `up` issued to
// worker-1) against the apiserver and the manager's gateway: it reads nothing
// directly, only what its tasks reference through the gateway; a task still gets
// its secret, a rotated secret reaches the next task, and a stopped task's secret
// is refused to its old instance.
func checkAgentReads(t *testing.T, dir, out string) {
	ctx := context.Background()
	c := adminClient(t, dir)
	m := regexp.MustCompile(`gateway: +(https://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("berth up printed no gateway URL:\n%s", out)
	}
	agentCfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfigs", "agent.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	agentDirect, err := client.New(agentCfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.NewClient(gateway.RESTConfig(agentCfg, m[1], filepath.Join(dir, "pki", "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}

	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "greeting"}, StringData: map[string]string{"GREETING": "first secret greeting"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unrelated"}, StringData: map[string]string{"token": "not the agent's"}},
		secretiveDefinition(),
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("direct reads are denied", func(t *testing.T) {
		if err := agentDirect.Get(ctx, client.ObjectKey{Namespace: "default", Name: "greeting"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
			t.Errorf("the agent getting a Secret: %v, want Forbidden", err)
		}
		for _, list := range []client.ObjectList{&corev1.SecretList{}, &corev1.ConfigMapList{}, &ecsv1alpha1.TaskList{}} {
			if err := agentDirect.List(ctx, list); !apierrors.IsForbidden(err) {
				t.Errorf("the agent listing %T: %v, want Forbidden", list, err)
			}
		}
	})

	first := runSecretive(t, c, "secretive-1")
	if got := greeting(t, first); got != "first secret greeting" {
		t.Errorf("the task's GREETING from its Secret is %q", got)
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "greeting"}, &s); err != nil {
		t.Fatal(err)
	}
	s.StringData = map[string]string{"GREETING": "rotated secret greeting"}
	if err := c.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	second := runSecretive(t, c, "secretive-2")
	if got := greeting(t, second); got != "rotated secret greeting" {
		t.Errorf("the task started after the rotation has GREETING %q, want the rotated value", got)
	}

	t.Run("the gateway answers only what its tasks reference", func(t *testing.T) {
		if err := gw.ForTask("default", second.Name).Get(ctx, client.ObjectKey{Namespace: "default", Name: "greeting"}, &corev1.Secret{}); err != nil {
			t.Errorf("its running task's Secret: %v", err)
		}
		err := gw.ForTask("default", second.Name).Get(ctx, client.ObjectKey{Namespace: "default", Name: "unrelated"}, &corev1.Secret{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("a Secret its task does not reference: %v, want Forbidden", err)
		}
		stop(t, c, first)
		testenv.Eventually(t, "the stopped task's Secret to be refused", func() error {
			err := gw.ForTask("default", first.Name).Get(ctx, client.ObjectKey{Namespace: "default", Name: "greeting"}, &corev1.Secret{})
			if !apierrors.IsForbidden(err) {
				return fmt.Errorf("read: %w, want Forbidden", err)
			}
			return nil
		})
	})
	stop(t, c, second)
	for _, task := range []*ecsv1alpha1.Task{first, second} {
		if err := c.Delete(ctx, task); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
}

// secretiveDefinition is a task definition of the demo app whose GREETING comes from
// the Secret greeting.
func secretiveDefinition() *ecsv1alpha1.TaskDefinition {
	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "secretive"}}
	td.Spec.ContainerDefinitions = []ecsv1alpha1.ContainerDefinition{{
		Name: "app", Image: "localhost:5000/berth/demo:1.0", Cpu: 64, Memory: ptr.To[int32](64),
		PortMappings: []ecsv1alpha1.PortMapping{{ContainerPort: 8080}},
		Secrets: []ecsv1alpha1.SecretVariable{{Name: "GREETING",
			ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "greeting", Key: "GREETING"}}}},
	}}
	return td
}

// runSecretive starts a standalone task of secretive and returns it once it runs.
func runSecretive(t *testing.T, c client.Client, name string) *ecsv1alpha1.Task {
	t.Helper()
	ctx := context.Background()
	task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	task.Spec.TaskDefinition = "secretive"
	if err := c.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 2*time.Minute, "task "+name+" to run", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(task), task); err != nil {
			return err
		}
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning || hostPortOf(task, "app", 8080) == 0 {
			return fmt.Errorf("last status %s, stopped reason %q", task.Status.LastStatus, task.Status.StoppedReason)
		}
		return nil
	})
	return task
}

// greeting is what the demo app of task answers as its GREETING, once it listens
// (a task without a health check is RUNNING as soon as its process starts).
func greeting(t *testing.T, task *ecsv1alpha1.Task) string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/", hostPortOf(task, "app", 8080))
	var inf demo.Info
	testenv.Eventually(t, "task "+task.Name+" to answer", func() error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer func() { _ = resp.Body.Close() }()
		return json.NewDecoder(resp.Body).Decode(&inf)
	})
	return inf.Greeting
}

func stop(t *testing.T, c client.Client, task *ecsv1alpha1.Task) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"desiredStatus":"STOPPED"}}`))
	if err := c.Patch(context.Background(), task.DeepCopy(), patch); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
