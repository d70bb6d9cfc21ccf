package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/scenario"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// run creates a standalone task of a one-container task definition (network none)
// and returns the task's name.
func (s *stack) run(t *testing.T, name string, edit func(*ecsv1alpha1.TaskDefinitionSpec)) string {
	t.Helper()
	td := testobj.TaskDefinition(s.ns, name).Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 64 }).Obj()
	if edit != nil {
		edit(&td.Spec)
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, name, name).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	return name
}

func getTask(t *testing.T, ns, name string) *ecsv1alpha1.Task {
	t.Helper()
	var task ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &task); err != nil {
		t.Fatal(err)
	}
	return &task
}

// waitTask waits until cond accepts the task.
func waitTask(t *testing.T, ns, name string, what string, cond func(*ecsv1alpha1.Task) error) *ecsv1alpha1.Task {
	t.Helper()
	var task *ecsv1alpha1.Task
	testenv.EventuallyWithin(t, 90*time.Second, name+": "+what, func() error {
		task = getTask(t, ns, name)
		if err := cond(task); err != nil {
			return fmt.Errorf("%w (last %s, stop %s %q, containers %+v)", err, task.Status.LastStatus, task.Status.StopCode,
				task.Status.StoppedReason, task.Status.Containers)
		}
		return nil
	})
	return task
}

func stoppedWith(code ecsv1alpha1.StopCode) func(*ecsv1alpha1.Task) error {
	return func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskStopped || task.Status.StopCode != code {
			return fmt.Errorf("not STOPPED with %s", code)
		}
		return nil
	}
}

func exitCode(task *ecsv1alpha1.Task, container string) (int32, string, bool) {
	for _, c := range task.Status.Containers {
		if c.Name == container && c.ExitCode != nil {
			return *c.ExitCode, c.Reason, true
		}
	}
	return 0, "", false
}

// TestStandaloneTasks runs single tasks through the real agent and containerd and
// checks what ECS users rely on: dependency order and health, essential exits, OOM,
// private images, stop timeouts and clear failures.
func TestStandaloneTasks(t *testing.T) {
	s := newStack(t)
	s.startAgent(t, "node-"+s.ns)
	ns := s.ns
	cmd := func(args ...string) []string { return args }

	t.Run("dependsOn HEALTHY and a health check reach RUNNING and HEALTHY", func(t *testing.T) {
		td := testobj.TaskDefinition(ns, "web").
			Container("db", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Cpu = 64
			c.HealthCheck = &ecsv1alpha1.HealthCheck{Command: []string{"CMD", regtest.TestBinaryPath, "exit=0"},
				Interval: ptr.To[int32](5), Timeout: ptr.To[int32](2), Retries: ptr.To[int32](1), StartPeriod: ptr.To[int32](0)}
		}).
			Container("app", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Cpu = 64 }).
			DependsOn("db", ecsv1alpha1.DependencyHealthy).Network(ecsv1alpha1.NetworkModeNone).Obj()
		if err := env.Client.Create(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(context.Background(), testobj.Task(ns, "web", "web").Cluster(s.cluster).Obj()); err != nil {
			t.Fatal(err)
		}
		task := waitTask(t, ns, "web", "RUNNING and HEALTHY", func(task *ecsv1alpha1.Task) error {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning || task.Status.HealthStatus != ecsv1alpha1.HealthHealthy {
				return fmt.Errorf("not RUNNING/HEALTHY")
			}
			return nil
		})
		for _, c := range task.Status.Containers {
			if c.LastStatus != ecsv1alpha1.ContainerRunning {
				t.Errorf("container %s is %s", c.Name, c.LastStatus)
			}
		}
		if task.Status.StartedAt == nil || task.Status.PullStartedAt == nil || task.Status.CreatedAt == nil {
			t.Errorf("timestamps missing: %+v", task.Status)
		}
	})

	t.Run("essential container exit stops the task with its exit code", func(t *testing.T) {
		name := s.run(t, "exits", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Command = cmd("echo=bye", "exit=3")
		})
		task := waitTask(t, ns, name, "EssentialContainerExited", stoppedWith(ecsv1alpha1.StopEssentialContainerExited))
		if code, _, ok := exitCode(task, "app"); !ok || code != 3 {
			t.Errorf("exit code %d (reported %v), want 3", code, ok)
		}
	})

	t.Run("an OOM kill is reported", func(t *testing.T) {
		name := s.run(t, "oom", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Memory = ptr.To[int32](16)
			spec.ContainerDefinitions[0].Command = cmd("alloc=256", "sleep=inf")
		})
		task := waitTask(t, ns, name, "stopped", stoppedWith(ecsv1alpha1.StopEssentialContainerExited))
		if code, reason, _ := exitCode(task, "app"); code != 137 || !strings.HasPrefix(reason, "OutOfMemoryError:") {
			t.Errorf("exit %d reason %q, want 137 and OutOfMemoryError", code, reason)
		}
	})

	t.Run("SIGTERM then SIGKILL after stopTimeout", func(t *testing.T) {
		// RUNNING means the process has started, not that the test program has set up
		// its SIGTERM handling: a SIGTERM before that meets a PID 1 without a handler,
		// which Go's runtime ends with exit code 2 (or the kernel drops the signal).
		// So each stop waits for the program's "ready", printed once it has.
		agentAddr := httpAddress(t, "node-"+ns)
		name := s.run(t, "stubborn", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Command = cmd("ignore-term", "echo=ready", "sleep=inf")
			spec.ContainerDefinitions[0].StopTimeout = ptr.To[int32](2)
		})
		waitTask(t, ns, name, "RUNNING", func(task *ecsv1alpha1.Task) error {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
				return fmt.Errorf("not RUNNING")
			}
			return nil
		})
		waitOutput(t, agentAddr, ns, name, "app", "ready")
		stopTask(t, ns, name)
		task := waitTask(t, ns, name, "stopped", stoppedWith(ecsv1alpha1.StopUserInitiated))
		if code, _, _ := exitCode(task, "app"); code != 137 {
			t.Errorf("a container ignoring SIGTERM exited %d, want 137 (SIGKILL)", code)
		}
		if task.Status.StoppingAt == nil || task.Status.StoppedAt == nil || task.Status.StoppedAt.Sub(task.Status.StoppingAt.Time) < time.Second {
			t.Errorf("stop took %v, want about the 2 s stopTimeout", task.Status.StoppedAt.Sub(task.Status.StoppingAt.Time))
		}

		polite := s.run(t, "polite", nil)
		waitTask(t, ns, polite, "RUNNING", func(task *ecsv1alpha1.Task) error {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
				return fmt.Errorf("not RUNNING")
			}
			return nil
		})
		waitOutput(t, agentAddr, ns, polite, "app", "ready")
		stopTask(t, ns, polite)
		task = waitTask(t, ns, polite, "stopped", stoppedWith(ecsv1alpha1.StopUserInitiated))
		if code, _, _ := exitCode(task, "app"); code != 0 {
			t.Errorf("a container handling SIGTERM exited %d, want 0", code)
		}
	})

	t.Run("a private image needs its credentials", func(t *testing.T) {
		private := regtest.Start(t, regtest.WithBasicAuth("bob", "hunter2"))
		image, _ := private.Push(t, regtest.TestImage(t, nil), "team/private", "1")
		name := s.run(t, "nocreds", func(spec *ecsv1alpha1.TaskDefinitionSpec) { spec.ContainerDefinitions[0].Image = image })
		task := waitTask(t, ns, name, "failed to pull", stoppedWith(ecsv1alpha1.StopTaskFailedToStart))
		if _, reason, _ := exitCode(task, "app"); !strings.Contains(reason+task.Status.StoppedReason, "401") &&
			!strings.Contains(strings.ToLower(reason+task.Status.StoppedReason), "unauthorized") {
			t.Errorf("reason %q / %q does not carry the registry's 401", reason, task.Status.StoppedReason)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
			StringData: map[string]string{corev1.DockerConfigJsonKey: fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, private.Addr,
				base64.StdEncoding.EncodeToString([]byte("bob:hunter2")))}}
		if err := env.Client.Create(context.Background(), secret); err != nil {
			t.Fatal(err)
		}
		name = s.run(t, "withcreds", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Image = image
			spec.ContainerDefinitions[0].RepositoryCredentials = &ecsv1alpha1.RepositoryCredentials{CredentialsParameter: "pull"}
		})
		waitTask(t, ns, name, "RUNNING", func(task *ecsv1alpha1.Task) error {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
				return fmt.Errorf("not RUNNING")
			}
			return nil
		})
	})

	t.Run("a missing image or Secret gives a clear reason and the agent carries on", func(t *testing.T) {
		missing := s.run(t, "noimage", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Image = strings.Replace(s.image, "e2e/test:1", "e2e/absent:1", 1)
		})
		task := waitTask(t, ns, missing, "failed", stoppedWith(ecsv1alpha1.StopTaskFailedToStart))
		if _, reason, _ := exitCode(task, "app"); !strings.Contains(strings.ToLower(reason+task.Status.StoppedReason), "not found") &&
			!strings.Contains(reason+task.Status.StoppedReason, "404") {
			t.Errorf("reason %q / %q does not say the image is missing", reason, task.Status.StoppedReason)
		}
		nosecret := s.run(t, "nosecret", func(spec *ecsv1alpha1.TaskDefinitionSpec) {
			spec.ContainerDefinitions[0].Secrets = []ecsv1alpha1.SecretVariable{{Name: "PASSWORD",
				ValueFrom: ecsv1alpha1.SecretValueSource{SecretKeyRef: &ecsv1alpha1.KeySelector{Name: "absent", Key: "password"}}}}
		})
		task = waitTask(t, ns, nosecret, "failed", stoppedWith(ecsv1alpha1.StopTaskFailedToStart))
		if !strings.Contains(task.Status.StoppedReason, "Secret "+ns+"/absent not found") {
			t.Errorf("stoppedReason %q does not name the missing Secret", task.Status.StoppedReason)
		}
		// The agent is still serving.
		fine := s.run(t, "fine", nil)
		waitTask(t, ns, fine, "RUNNING", func(task *ecsv1alpha1.Task) error {
			if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
				return fmt.Errorf("not RUNNING")
			}
			return nil
		})
	})
}

// waitOutput waits until the task's container has printed want, as the agent at
// agentAddr serves its log.
func waitOutput(t *testing.T, agentAddr, ns, task, container, want string) {
	t.Helper()
	testenv.EventuallyWithin(t, 90*time.Second, task+"/"+container+" printed "+want, func() error {
		code, body, err := agentGet(t, agentAddr, "/v1/logs/"+ns+"/"+task+"/"+container)
		if err != nil {
			return err
		}
		if code != http.StatusOK || !strings.Contains(body, want) {
			return fmt.Errorf("log: %d %q", code, body)
		}
		return nil
	})
}

func stopTask(t *testing.T, ns, name string) {
	t.Helper()
	task := &ecsv1alpha1.Task{}
	task.Namespace, task.Name = ns, name
	if err := env.Client.Patch(context.Background(), task, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"desiredStatus":"STOPPED"}}`))); err != nil {
		t.Fatal(err)
	}
}

// TestHealthRules runs the task-health scenarios that test/controlplane runs under
// `berth hollow`, on the real agent and containerd.
func TestHealthRules(t *testing.T) {
	s := newStack(t)
	s.startBridgeAgent(t, "node-"+s.ns)
	e := scenario.Env{Client: env.Client, Namespace: s.ns, Cluster: s.cluster, Image: s.image,
		Serve: []string{"serve=8080", "sleep=inf"}, Sleep: []string{"sleep=inf"},
		Check: []string{regtest.TestBinaryPath, "exit=0"}, Timeout: 90 * time.Second}
	t.Run("only a sidecar has a health check", func(t *testing.T) { scenario.SidecarOnlyHealthCheck(t, e) })
	t.Run("healthCheck NONE is a ready endpoint", func(t *testing.T) { scenario.NoneHealthCheckIsReady(t, e) })
}
