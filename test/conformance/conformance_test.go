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
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	"devices":         "its command runs fdisk -l on the ubuntu image to list /dev/xvda, a device of EC2 instances",
	"awsvpc-hostname": "it expects EC2's private DNS name (ip-a-b-c-d.*.internal) as the awsvpc task's hostname",
	"shmsize":         "it greps df -h for 100M, which the ubuntu image prints and busybox's df prints as 100.0M (the size itself is right)",
	"init-process":    "it runs pidof init, the name of Docker's init; Berth's init is tini, mounted as /sbin/berth-init",
}

// knownGaps are simple tests of things Berth does not do yet (issue 12 lists them).
var knownGaps = map[string]string{}

// TestECSAgentFunctionalTests runs the ECS suite's generated simple tests and its
// hand-written tests (handwritten_test.go) on one instance, both groups at once.
func TestECSAgentFunctionalTests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dataDir, "simpletests", "*.json"))
	if err != nil || len(files) < 30 {
		t.Fatalf("%d simple tests (%v), want the ECS suite's 31", len(files), err)
	}
	s := newStack(t)
	var r results
	t.Run("suite", func(t *testing.T) {
		// In parallel, as the tasks of one instance: most of the time is spent waiting
		// for containers that ignore SIGTERM to reach their stopTimeout.
		t.Run("simple", func(t *testing.T) {
			t.Parallel()
			for _, f := range files {
				name := strings.TrimSuffix(filepath.Base(f), ".json")
				var st simpleTest
				if err := json.Unmarshal(mustRead(t, f), &st); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				r.run(t, name, func(t *testing.T) { s.runSimpleTest(t, name, st) })
			}
		})
		t.Run("handwritten", func(t *testing.T) {
			t.Parallel()
			for _, h := range handwritten {
				r.run(t, h.name, func(t *testing.T) { h.run(t, s) })
			}
		})
	})
	passed, skipped := r.summary()
	t.Logf("ECS agent functional tests: %d passed, %d not run (listed), %d failed", len(passed), len(skipped), r.total-len(passed)-len(skipped))
	for _, s := range skipped {
		t.Logf("not run: %s", s)
	}
}

// results counts the suite's tests: passed, and not run with the reason listed.
type results struct {
	mu              sync.Mutex
	passed, skipped []string
	total           int
}

// run runs one test of the ECS suite in parallel, unless it is listed as not
// applicable or a known gap.
func (r *results) run(t *testing.T, name string, test func(*testing.T)) {
	r.mu.Lock()
	r.total++
	r.mu.Unlock()
	t.Run(name, func(t *testing.T) {
		why, na := notApplicable[name]
		if gap, ok := knownGaps[name]; ok {
			why, na = "Berth gap: "+gap, true
		}
		if na {
			r.mu.Lock()
			r.skipped = append(r.skipped, name+": "+why)
			r.mu.Unlock()
			return
		}
		t.Parallel()
		test(t)
		if !t.Failed() {
			r.mu.Lock()
			r.passed = append(r.passed, name)
			r.mu.Unlock()
		}
	})
}

func (r *results) summary() (passed, skipped []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sort.Strings(r.skipped)
	return r.passed, r.skipped
}

// stack is the machine the suite runs on: the manager, containerd, a registry with
// the stand-in images, one agent with bridge networking, in a privileged cluster
// (the ECS suite runs privileged tasks and host devices).
type stack struct {
	ns, cluster string
	ctr         *ctrtest.Containerd
	images      map[string]string // ECS repository name -> stand-in reference
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{ns: env.Namespace(t)}
	s.cluster = "conformance-" + s.ns
	s.ctr = ctrtest.Start(t)
	reg := regtest.Start(t)
	s.images = standInImages(t, reg)
	harness.StartManager(t, env, harness.ManagerOptions{HeartbeatGrace: 10 * time.Second, SchedulerWorkers: 4, ServiceWorkers: 2})
	cluster := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: s.cluster},
		Spec: ecsv1alpha1.ClusterSpec{ContainerPolicy: &ecsv1alpha1.ContainerPolicy{Level: ecsv1alpha1.ContainerPolicyPrivileged}}}
	if err := env.Client.Create(context.Background(), cluster); err != nil {
		t.Fatal(err)
	}
	o := s.agentOptions(t, "node-"+s.ns, bridgeName, bridgeSubnet)
	// TestCustomAttributesWithMaxOptions: ten custom attributes, as the ECS suite's
	// ECS_INSTANCE_ATTRIBUTES set them.
	for i := range customAttributes {
		o.Attributes[fmt.Sprintf("key%d", i)] = fmt.Sprintf("val%d", i)
	}
	stop := s.startAgent(t, o)
	t.Cleanup(func() {
		stop()
		harness.TearDownNetworks(t, o)
		_ = exec.Command("ip", "link", "del", o.Bridge).Run()
	})
	return s
}

// agentOptions are the options of an agent of the suite's cluster named name, with
// its own containerd namespace, state directory, and bridge and subnet: test/e2e's
// agents run at the same time on the default ones, and two address stores on one
// bridge hand out the same addresses.
func (s *stack) agentOptions(t *testing.T, name, bridge, subnet string) agent.Options {
	o := harness.AgentOptions(env, s.ctr, s.cluster, name, "berth-"+name)
	o.HTTPBindAddress = "127.0.0.1:0"
	// The pause process (pidMode and ipcMode task) and the log driver of containers
	// with a terminal run this static berth.
	o.BerthBinary = testenv.BerthBinary(t)
	o.Bridge, o.BridgeSubnet = bridge, subnet
	return o
}

// startAgent runs an agent until the returned stop is called (or the test ends), and
// waits until its instance is registered and connected.
func (s *stack) startAgent(t *testing.T, o agent.Options) (stop func()) {
	t.Helper()
	stop = harness.StartAgent(t, o)
	testenv.EventuallyWithin(t, 60*time.Second, "instance "+o.Name+" registered", func() error {
		var ci ecsv1alpha1.ContainerInstance
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: o.Name}, &ci); err != nil {
			return err
		}
		if ci.Status.RegisteredResources == nil || !ci.Status.AgentConnected {
			return fmt.Errorf("not registered yet")
		}
		return nil
	})
	return stop
}

// runSimpleTest runs one ECS simple test as its generated test did.
func (s *stack) runSimpleTest(t *testing.T, name string, st simpleTest) {
	// The ECS harness unmarshalled its definitions into the SDK's input, which drops
	// keys ECS does not have: portBindings, in two of them, is one.
	td := s.register(t, "ft-"+name, st.TaskDefinition, nil, withoutKeys("portBindings"))
	timeout := 2 * time.Minute
	if d, err := time.ParseDuration(st.Timeout); err == nil && d > 0 {
		timeout = d
	}
	count := max(st.Count, 1)
	var tasks []string
	for i := range count {
		task := fmt.Sprintf("%s-%d", name, i)
		s.startTask(t, task, td, nil)
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

// register converts the ECS suite's task definition file (by its name) and registers
// it as the TaskDefinition name (families repeat across the suite's definitions, as
// the ECS harness's md5 suffix kept them apart), after filling its $$$PLACEHOLDERS$$$
// as the harness did (unnamed ones empty). It returns the name once a revision
// exists, as RegisterTaskDefinition returns one.
func (s *stack) register(t *testing.T, name, file string, placeholders map[string]string, edits ...func(map[string]any)) string {
	t.Helper()
	ctx := context.Background()
	data := s.standIns(t, mustRead(t, filepath.Join(dataDir, "taskdefinitions", file+".json")), placeholders, edits...)
	res, err := ecsimport.Convert(data, s.ns)
	if err != nil {
		t.Fatalf("converting %s: %v", file, err)
	}
	td := res.TaskDefinition
	td.Name = name
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatalf("registering %s: %v", file, err)
	}
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
	return td.Name
}

// startTask starts a task of td on the suite's instance, as the ECS suite's StartTask
// did, with overrides if given.
func (s *stack) startTask(t *testing.T, name, td string, overrides *ecsv1alpha1.TaskOverrides) {
	t.Helper()
	obj := testobj.Task(s.ns, name, td).Cluster(s.cluster).On("node-" + s.ns).Obj()
	obj.Spec.Overrides = overrides
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// withoutKeys drops keys of a container definition.
func withoutKeys(keys ...string) func(map[string]any) {
	return func(cd map[string]any) {
		for _, k := range keys {
			delete(cd, k)
		}
	}
}

// placeholder is how the ECS suite's task definitions mark what its harness filled in.
var placeholder = regexp.MustCompile(`\$\$\$\$[A-Z_]+\$\$\$\$`)

// standIns fills in the placeholders and points the ECS suite's image names at the
// stand-ins in the local registry.
func (s *stack) standIns(t *testing.T, data []byte, placeholders map[string]string, edits ...func(map[string]any)) []byte {
	t.Helper()
	data = placeholder.ReplaceAllFunc(data, func(p []byte) []byte { return []byte(placeholders[string(p)]) })
	var td map[string]any
	if err := json.Unmarshal(data, &td); err != nil {
		t.Fatalf("the task definition is not JSON once filled in: %v\n%s", err, data)
	}
	for _, c := range td["containerDefinitions"].([]any) {
		cd := c.(map[string]any)
		image, _ := cd["image"].(string)
		tagged := image[strings.LastIndex(image, "/")+1:]
		repo, _, _ := strings.Cut(tagged, ":")
		if ref, ok := s.images[tagged]; ok { // a tag of its own (parallel-pull-fts)
			cd["image"] = ref
		} else if ref, ok := s.images[repo]; ok {
			cd["image"] = ref
		}
		for _, edit := range edits {
			edit(cd)
		}
	}
	out, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	return out
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
