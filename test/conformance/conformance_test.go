// Package conformance runs the Amazon ECS agent's own Linux functional tests against
// Berth: the task definitions and the generated "simple tests" of
// aws/amazon-ecs-agent's agent/functional_tests (testdata/ecs-agent, unchanged, with
// SOURCE.md), converted by `berth convert`'s rules and run by the real agent on
// containerd, with a busybox image standing in for the images the ECS suite pulled.
// A test either passes, or is listed with the reason it does not run: in
// notApplicable when it cannot run here (an EC2 fact, an image Berth's stand-in is
// not), in knownGaps when Berth does not do yet what the test checks.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/network"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/ecsimport"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

const dataDir = "testdata/ecs-agent"

var env *testenv.Env

func TestMain(m *testing.M) {
	missing := []string{ctrtest.SkipReason(),
		testenv.MissingFiles("/bin", []string{"busybox"}, "apt-get install busybox-static"),
		testenv.MissingFiles(network.DefaultPluginDir, []string{"bridge", "host-local", "portmap", "loopback"}, "apt-get install containernetworking-plugins")}
	if code, stop := testenv.RequireMain(missing...); stop {
		os.Exit(code)
	}
	os.Exit(testenv.Run(m, &env))
}

// simpleTest is one file of the ECS suite's testdata/simpletests_unix, which its
// generator turned into a Go test: start Count tasks of TaskDefinition (one by
// default), for a Daemon wait until RUNNING and stop it, wait until STOPPED within
// Timeout, and compare each named container's exit code.
type simpleTest struct {
	Name           string
	TaskDefinition string
	Timeout        string
	ExitCodes      map[string]int32
	Count          int
	Daemon         bool
}

// notApplicable are the simple tests that cannot run here, and why. Each reason is
// about this machine or a Berth gap, never about the test being wrong.
var notApplicable = map[string]string{
	"security-opt-nonewprivileges": "needs the ECS suite's amazon/testnnp image (a setuid helper built from its sources), not rebuilt here",
	"parallel-pull":                "needs eight distinct images of about 25 MiB each from a public registry; the ECS suite measured pull concurrency, which Berth's bench measures instead",
	"add-drop-capabilities":        "its command runs capsh, which the ECS suite's ubuntu image has and the busybox stand-in has not",
	"devices":                      "its command runs fdisk -l on the ubuntu image to list /dev/xvda, a device of EC2 instances",
	"awsvpc-hostname":              "it expects EC2's private DNS name (ip-a-b-c-d.*.internal) as the awsvpc task's hostname",
	"shmsize":                      "it greps df -h for 100M, which the ubuntu image prints and busybox's df prints as 100.0M (the size itself is right)",
	"init-process":                 "it runs pidof init, the name of Docker's init; Berth's init is tini, mounted as /sbin/berth-init",
}

// knownGaps are simple tests of things Berth does not do yet (issue 12 lists them).
var knownGaps = map[string]string{
	"task-local-vol":        "dockerVolumeConfiguration is not supported by Berth yet",
	"granular-stop-timeout": "dependency1 exits 0 where ECS kills it (137): Berth stops a task's containers one at a time in reverse start order, ECS stops independent ones in parallel, each on its own stopTimeout",
}

func TestECSAgentSimpleTests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dataDir, "simpletests", "*.json"))
	if err != nil || len(files) < 30 {
		t.Fatalf("%d simple tests (%v), want the ECS suite's 31", len(files), err)
	}
	s := newStack(t)
	var mu sync.Mutex
	var passed, skipped []string
	// In parallel, as the tasks of one instance: most of the time is spent waiting
	// for containers that ignore SIGTERM to reach their stopTimeout.
	t.Run("simple", func(t *testing.T) {
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			var st simpleTest
			if err := json.Unmarshal(mustRead(t, f), &st); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			t.Run(name, func(t *testing.T) {
				why, na := notApplicable[name]
				if gap, ok := knownGaps[name]; ok {
					why, na = "Berth gap: "+gap, true
				}
				if na {
					mu.Lock()
					skipped = append(skipped, name+": "+why)
					mu.Unlock()
					return
				}
				t.Parallel()
				s.runSimpleTest(t, name, st)
				if !t.Failed() {
					mu.Lock()
					passed = append(passed, name)
					mu.Unlock()
				}
			})
		}
	})
	sort.Strings(skipped)
	t.Logf("ECS agent simple tests: %d passed, %d not run (listed), %d failed", len(passed), len(skipped), len(files)-len(passed)-len(skipped))
	for _, s := range skipped {
		t.Logf("not run: %s", s)
	}
}

// stack is the machine the suite runs on: the manager, containerd, a registry with
// the stand-in images, one agent with bridge networking, in a privileged cluster
// (the ECS suite runs privileged tasks and host devices).
type stack struct {
	ns, cluster string
	images      map[string]string // ECS repository name -> stand-in reference
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{ns: env.Namespace(t)}
	s.cluster = "conformance-" + s.ns
	ctr := ctrtest.Start(t)
	reg := regtest.Start(t)
	s.images = standInImages(t, reg)
	harness.StartManager(t, env, harness.ManagerOptions{HeartbeatGrace: 10 * time.Second, SchedulerWorkers: 4, ServiceWorkers: 2})
	cluster := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: s.cluster},
		Spec: ecsv1alpha1.ClusterSpec{ContainerPolicy: &ecsv1alpha1.ContainerPolicy{Level: ecsv1alpha1.ContainerPolicyPrivileged}}}
	if err := env.Client.Create(context.Background(), cluster); err != nil {
		t.Fatal(err)
	}
	o := agent.DefaultOptions()
	o.Kubeconfig, o.Cluster, o.Name = env.Kubeconfig, s.cluster, "node-"+s.ns
	o.ContainerdAddress, o.Namespace = ctr.Address, "berth-"+s.ns
	o.Snapshotter, o.RegistryConfigDir, o.RuncRoot = ctr.Snapshotter, ctr.HostsDir, ctr.RuncRoot
	o.StateDir = filepath.Join(ctr.Dir, "agent")
	o.LeaseInterval, o.StatusInterval, o.ReservedMemoryMiB = time.Second, time.Second, 0
	o.HTTPBindAddress = "127.0.0.1:0"
	o.BerthBinary = testenv.BerthBinary(t) // the log driver of interactive-tty's terminal
	// A bridge and subnet of its own: test/e2e's agents run at the same time on the
	// default ones, and two address stores on one bridge hand out the same addresses.
	o.Bridge, o.BridgeSubnet = bridgeName, bridgeSubnet
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridgeName).Run() })
	ctx, cancel := context.WithCancel(ctrl.LoggerInto(context.Background(), testenv.TestLogger(t)))
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		tearDownNetworks(t, o.StateDir)
	})
	testenv.EventuallyWithin(t, 60*time.Second, "the instance registered", func() error {
		var ci ecsv1alpha1.ContainerInstance
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: o.Name}, &ci); err != nil {
			return err
		}
		if ci.Status.RegisteredResources == nil {
			return fmt.Errorf("not registered yet")
		}
		return nil
	})
	return s
}

// runSimpleTest runs one ECS simple test as its generated test did.
func (s *stack) runSimpleTest(t *testing.T, name string, st simpleTest) {
	ctx := context.Background()
	data := s.standIns(mustRead(t, filepath.Join(dataDir, "taskdefinitions", st.TaskDefinition+".json")))
	res, err := ecsimport.Convert(data, s.ns)
	if err != nil {
		t.Fatalf("converting %s: %v", st.TaskDefinition, err)
	}
	td := res.TaskDefinition
	td.Name = "ft-" + name // families repeat across the ECS suite's definitions
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatalf("registering %s: %v", st.TaskDefinition, err)
	}
	// RegisterTaskDefinition returns the revision; here it is registered in a moment.
	testenv.EventuallyWithin(t, 30*time.Second, td.Name+" registered", func() error {
		var got ecsv1alpha1.TaskDefinition
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: td.Name}, &got); err != nil {
			return err
		}
		if got.Status.LatestRevision == 0 {
			return fmt.Errorf("no revision yet")
		}
		return nil
	})
	timeout := 2 * time.Minute
	if d, err := time.ParseDuration(st.Timeout); err == nil && d > 0 {
		timeout = d
	}
	count := max(st.Count, 1)
	var tasks []string
	for i := range count {
		task := fmt.Sprintf("%s-%d", name, i)
		obj := testobj.Task(s.ns, task, td.Name).Cluster(s.cluster).On("node-" + s.ns).Obj() // StartTask, as the ECS suite did
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, task)
	}
	for _, task := range tasks {
		if st.Daemon {
			s.wait(t, task, "RUNNING", timeout, func(tk *ecsv1alpha1.Task) bool { return tk.Status.LastStatus == ecsv1alpha1.TaskRunning })
			stop(t, s.ns, task)
		}
		got := s.wait(t, task, "STOPPED", timeout, func(tk *ecsv1alpha1.Task) bool { return tk.Status.LastStatus == ecsv1alpha1.TaskStopped })
		for container, want := range st.ExitCodes {
			code, ok := exitCode(got, container)
			if !ok || code != want {
				t.Errorf("expected %s to exit with %d; actually exited (%v) with %d\nstopped: %s\n%s", container, want, ok, code, got.Status.StoppedReason, containers(got))
			}
		}
	}
}

// standIns points the ECS suite's image names at the stand-ins in the local
// registry and fills in its $$$PLACEHOLDERS$$$ as its harness did.
func (s *stack) standIns(data []byte) []byte {
	var td map[string]any
	if err := json.Unmarshal(data, &td); err != nil {
		return data
	}
	for _, c := range td["containerDefinitions"].([]any) {
		cd := c.(map[string]any)
		image, _ := cd["image"].(string)
		repo := image[strings.LastIndex(image, "/")+1:]
		repo, _, _ = strings.Cut(repo, ":")
		if ref, ok := s.images[repo]; ok {
			cd["image"] = ref
		}
	}
	out, err := json.Marshal(td)
	if err != nil {
		return data
	}
	return bytes.ReplaceAll(out, []byte("$$$$START_PERIOD$$$$"), nil)
}

func (s *stack) wait(t *testing.T, task, what string, timeout time.Duration, cond func(*ecsv1alpha1.Task) bool) *ecsv1alpha1.Task {
	t.Helper()
	var got ecsv1alpha1.Task
	testenv.EventuallyWithin(t, timeout, task+" "+what, func() error {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: task}, &got); err != nil {
			return err
		}
		if got.Status.LastStatus == ecsv1alpha1.TaskStopped && what != "STOPPED" {
			return fmt.Errorf("task terminal; will never reach %s: %s", what, got.Status.StoppedReason)
		}
		if !cond(&got) {
			return fmt.Errorf("%s (%s)", got.Status.LastStatus, got.Status.StoppedReason)
		}
		return nil
	})
	return &got
}

func stop(t *testing.T, ns, task string) {
	t.Helper()
	var got ecsv1alpha1.Task
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: task}, &got); err != nil {
		t.Fatal(err)
	}
	got.Spec.DesiredStatus = ecsv1alpha1.DesiredStopped
	if err := env.Client.Update(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
}

func exitCode(task *ecsv1alpha1.Task, container string) (int32, bool) {
	for _, c := range task.Status.Containers {
		if c.Name == container && c.ExitCode != nil {
			return *c.ExitCode, true
		}
	}
	return 0, false
}

func containers(task *ecsv1alpha1.Task) string {
	var b strings.Builder
	for _, c := range task.Status.Containers {
		code := "-"
		if c.ExitCode != nil {
			code = fmt.Sprint(*c.ExitCode)
		}
		fmt.Fprintf(&b, "  %s: %s exit %s %s\n", c.Name, c.LastStatus, code, c.Reason)
	}
	return b.String()
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bridgeName and bridgeSubnet are the suite's task network, apart from other
// packages' agents.
const (
	bridgeName   = "berthconf0"
	bridgeSubnet = "10.198.0.0/16"
)

// tearDownNetworks removes what is left of the task networks once the agent stopped.
func tearDownNetworks(t *testing.T, stateDir string) {
	m, err := network.New(network.Config{StateDir: stateDir, Bridge: bridgeName, Subnet: bridgeSubnet})
	if err != nil {
		t.Errorf("tearing down the task networks: %v", err)
		return
	}
	uids, err := m.Recover(context.Background())
	if err != nil {
		t.Errorf("tearing down the task networks: %v", err)
	}
	for _, uid := range uids {
		if err := m.Teardown(context.Background(), uid); err != nil {
			t.Errorf("tearing down the network of task %s: %v", uid, err)
		}
	}
}
