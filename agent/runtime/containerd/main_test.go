package containerd_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/containerd"
	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
	regtest "github.com/berthdev/berth/test/testenv/registry"
)

// daemon is one containerd shared by the package's tests; each test works in its own
// containerd namespace.
var daemon *ctrtest.Containerd

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping containerd tests in -short mode")
		os.Exit(0)
	}
	if code, stop := testenv.RequireMain(ctrtest.SkipReason()); stop {
		os.Exit(code)
	}
	var err error
	if daemon, err = ctrtest.Launch(); err != nil {
		fmt.Fprintln(os.Stderr, "starting containerd:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "containerd log (last lines):\n%s\n", daemon.LogTail())
	}
	if err := daemon.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping containerd:", err)
		code = 1
	}
	os.Exit(code)
}

// env is what one test works with.
type env struct {
	t   *testing.T
	rt  *containerd.Runtime
	ns  string
	ctx context.Context
}

var nsUnsafe = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// newEnv returns a Runtime in a namespace of the test's own, and checks at cleanup
// that the test left no container, task, container snapshot, mount or shim behind.
func newEnv(t *testing.T) *env {
	t.Helper()
	ns := strings.ToLower(strings.Trim(nsUnsafe.ReplaceAllString(t.Name(), "-"), "-"))
	if len(ns) > 60 {
		ns = ns[:60]
	}
	ctx, cancel := context.WithTimeout(logr.NewContext(context.Background(), testenv.TestLogger(t)), 2*time.Minute)
	t.Cleanup(cancel)
	rt, err := containerd.New(ctx, containerd.Options{
		Address:     daemon.Address,
		Namespace:   ns,
		Snapshotter: daemon.Snapshotter,
		HostsDir:    daemon.HostsDir,
		FIFODir:     daemon.FIFODir,
		RuncRoot:    daemon.RuncRoot,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, rt: rt, ns: ns, ctx: ctx}
	t.Cleanup(func() {
		// e.rt, not rt: a test may close rt and carry on with another (TestAgentRestart).
		defer func() {
			if err := e.rt.Close(); err != nil {
				t.Errorf("closing the runtime: %v", err)
			}
		}()
		if !t.Failed() {
			e.assertClean()
		}
		e.purge()
	})
	return e
}

// client is a raw containerd client in the test's namespace, for checks the Runtime
// does not offer.
func (e *env) client() (*ctrd.Client, context.Context) {
	e.t.Helper()
	c, err := daemon.Client()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c, namespaces.WithNamespace(e.ctx, e.ns)
}

// leftovers lists what remains of containers in the namespace: containers, tasks,
// active (container) snapshots, mounts of task root filesystems, shims.
func (e *env) leftovers() []string {
	c, ctx := e.client()
	var left []string
	ctrs, err := c.Containers(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ctr := range ctrs {
		left = append(left, "container "+ctr.ID())
	}
	tasks, err := c.TaskService().List(ctx, nil)
	if err == nil {
		for _, tk := range tasks.Tasks {
			left = append(left, "task "+tk.ID)
		}
	}
	_ = c.SnapshotService(daemon.Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			left = append(left, "snapshot "+info.Name)
		}
		return nil
	})
	mounts, _ := ctrtest.MountsUnder(filepath.Join(daemon.Dir, "state", "io.containerd.runtime.v2.task", e.ns))
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	return left
}

func (e *env) assertClean() {
	e.t.Helper()
	var left []string
	// Shims exit shortly after their last task is deleted.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = e.leftovers()
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		e.t.Errorf("the test left behind: %v", left)
	}
}

// purge removes every container of the namespace, whatever the test did.
func (e *env) purge() {
	ctx := context.Background()
	infos, err := e.rt.List(ctx, nil)
	if err != nil {
		e.t.Logf("listing containers to purge: %v", err)
		return
	}
	for _, i := range infos {
		if err := e.rt.Delete(ctx, i.ID); err != nil {
			e.t.Errorf("purging %s: %v", i.ID, err)
		}
	}
}

// registry starts an anonymous registry with the test image pushed as repo:v1.
func (e *env) registry(repo string) (*regtest.Registry, string) {
	e.t.Helper()
	reg := regtest.Start(e.t)
	ref, _ := reg.Push(e.t, regtest.TestImage(e.t, nil), repo, "v1")
	return reg, ref
}

// image pulls an anonymous test image and returns its reference.
func (e *env) image(opts ...regtest.ImageOption) string {
	e.t.Helper()
	reg := regtest.Start(e.t)
	ref, _ := reg.Push(e.t, regtest.TestImage(e.t, nil, opts...), "berth/testimage", "v1")
	if _, err := e.rt.Pull(e.ctx, ref, runtime.PullDefault, nil); err != nil {
		e.t.Fatal(err)
	}
	return ref
}

// spec returns a container spec with the test's labels.
func (e *env) spec(name, image string, args ...string) runtime.ContainerSpec {
	uid := "00000000-0000-4000-8000-" + fmt.Sprintf("%012x", len(e.t.Name()))
	return runtime.ContainerSpec{
		ID:    runtime.ContainerID(uid, name),
		Image: image,
		Labels: map[string]string{
			runtime.LabelTaskUID:   uid,
			runtime.LabelTask:      "default/" + e.ns,
			runtime.LabelContainer: name,
			runtime.LabelRevision:  "app:1",
		},
		Command: args,
		LogPath: filepath.Join(e.t.TempDir(), name+".log"),
	}
}

// run creates and starts spec, waits for it to exit, deletes it and returns its exit
// status and output.
func (e *env) run(spec runtime.ContainerSpec) (runtime.ExitStatus, string) {
	e.t.Helper()
	if _, err := e.rt.Create(e.ctx, spec); err != nil {
		e.t.Fatalf("create: %v", err)
	}
	defer func() {
		if err := e.rt.Delete(e.ctx, spec.ID); err != nil {
			e.t.Errorf("delete: %v", err)
		}
	}()
	if _, err := e.rt.Start(e.ctx, spec.ID); err != nil {
		e.t.Fatalf("start: %v", err)
	}
	ch, err := e.rt.Wait(e.ctx, spec.ID)
	if err != nil {
		e.t.Fatalf("wait: %v", err)
	}
	select {
	case st, ok := <-ch:
		if !ok {
			e.t.Fatal("wait channel closed without a status")
		}
		return st, e.log(spec)
	case <-time.After(60 * time.Second):
		e.t.Fatalf("container %s did not exit; output so far:\n%s", spec.ID, e.log(spec))
	}
	return runtime.ExitStatus{}, ""
}

// delete removes the container and fails the test if that fails; for defer.
func (e *env) delete(id string) {
	e.t.Helper()
	if err := e.rt.Delete(e.ctx, id); err != nil {
		e.t.Errorf("deleting %s: %v", id, err)
	}
}

// log returns the container's log file.
func (e *env) log(spec runtime.ContainerSpec) string {
	b, err := os.ReadFile(spec.LogPath)
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	return string(b)
}

// waitLog waits until the container's log contains want.
func (e *env) waitLog(spec runtime.ContainerSpec, want string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(e.log(spec), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("log of %s never contained %q; it is:\n%s", spec.ID, want, e.log(spec))
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}
