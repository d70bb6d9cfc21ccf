package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// dockerVolume is a volume of the local driver.
func dockerVolume(name string, scope ecsv1alpha1.DockerVolumeScope, autoprovision bool, opts *ecsv1alpha1.LocalDriverOpts) ecsv1alpha1.Volume {
	return ecsv1alpha1.Volume{Name: name, DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{
		Scope: scope, Autoprovision: autoprovision, Driver: ecsv1alpha1.DockerVolumeDriverLocal, DriverOpts: opts,
		Labels: map[string]string{"suite": "e2e"}}}
}

// mounts mounts each volume at /<volume>.
func mounts(names ...string) func(*ecsv1alpha1.ContainerDefinition) {
	return func(c *ecsv1alpha1.ContainerDefinition) {
		c.Memory = ptr.To[int32](32)
		for _, n := range names {
			c.MountPoints = append(c.MountPoints, ecsv1alpha1.MountPoint{SourceVolume: n, ContainerPath: "/" + n})
		}
	}
}

// hostMounted tells whether anything is mounted on the host at or below dir.
func hostMounted(dir string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return true, nil
		}
	}
	return false, nil
}

// gone fails while path exists.
func gone(path string) error {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s is still there", path)
	case errors.Is(err, os.ErrNotExist):
		return nil
	}
	return err
}

// TestDockerVolumes runs ECS's Docker volumes (dockerVolumeConfiguration, driver
// local) on containerd: a task volume shared by the task's containers and gone with
// the task, a tmpfs with its size, a bind of an instance path, and a shared volume
// that a later task finds, that outlives both and that the ContainerInstance lists; a
// shared volume that is missing without autoprovision fails its task with ECS's
// reason.
func TestDockerVolumes(t *testing.T) {
	s := newStack(t)
	s.withPolicy(t, ecsv1alpha1.ContainerPolicyPrivileged) // the bind volume is an instance path
	name := "node-" + s.ns
	o := s.agentOptions(t, name)
	o.TaskCleanupWait, o.CleanupInterval = time.Second, 500*time.Millisecond
	s.startAgentWith(t, o)
	agentAddr := httpAddress(t, name)
	ctx := context.Background()
	create := func(td *ecsv1alpha1.TaskDefinition, task string) *ecsv1alpha1.Task {
		t.Helper()
		if err := env.Client.Create(ctx, td); err != nil {
			t.Fatal(err)
		}
		obj := testobj.Task(s.ns, task, td.Name).Cluster(s.cluster).Obj()
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}

	t.Run("task scope, tmpfs, bind and host {}: shared by the task's containers, gone after the task", func(t *testing.T) {
		bind := t.TempDir()
		if err := os.WriteFile(filepath.Join(bind, "from-host"), []byte("host file"), 0o644); err != nil {
			t.Fatal(err)
		}
		td := testobj.TaskDefinition(s.ns, "scoped").Network(ecsv1alpha1.NetworkModeNone).
			Container("writer", s.image).Last(mounts("dir", "tmp", "bound", "managed")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Essential = ptr.To(false)
			c.Command = []string{"write=/dir/hello:from the writer", "write=/tmp/hello:in memory", "write=/bound/from-task:task file",
				"write=/managed/hello:docker-managed", "exit=0"}
		}).
			Container("reader", s.image).Last(mounts("dir", "tmp", "bound", "managed")).DependsOn("writer", ecsv1alpha1.DependencySuccess).
			Last(func(c *ecsv1alpha1.ContainerDefinition) {
				c.Command = []string{"cat=/dir/hello", "echo=", "cat=/tmp/hello", "echo=", "cat=/bound/from-host", "echo=",
					"cat=/managed/hello", "echo=", "cat=/proc/self/mounts", "echo=done", "sleep=inf"}
			}).Obj()
		td.Spec.Volumes = []ecsv1alpha1.Volume{
			dockerVolume("dir", ecsv1alpha1.DockerVolumeScopeTask, false, nil),
			dockerVolume("tmp", "", false, &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs", Device: "tmpfs", O: "size=16m,noexec"}),
			dockerVolume("bound", ecsv1alpha1.DockerVolumeScopeTask, false, &ecsv1alpha1.LocalDriverOpts{Type: "none", O: "bind", Device: bind}),
			// ECS's Docker-managed host volume, applied as ECS JSON has it.
			{Name: "managed", Host: &ecsv1alpha1.HostVolume{}},
		}
		task := create(td, "scoped")
		waitOutput(t, agentAddr, s.ns, "scoped", "reader", "done")
		_, out, err := agentGet(t, agentAddr, "/v1/logs/"+s.ns+"/scoped/reader")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"from the writer\n", "in memory\n", "host file\n", "docker-managed\n", "/tmp tmpfs", "size=16384k", "noexec"} {
			if !strings.Contains(out, want) {
				t.Errorf("reader output lacks %q:\n%s", want, out)
			}
		}
		if data, err := os.ReadFile(filepath.Join(bind, "from-task")); err != nil || string(data) != "task file" {
			t.Errorf("the bind volume's file on the instance: %q %v", data, err)
		}
		task = getTask(t, s.ns, task.Name)
		dir := filepath.Join(o.StateDir, "volumes", string(task.UID))
		if mounted, err := hostMounted(filepath.Join(dir, "tmp")); err != nil || !mounted {
			t.Errorf("no tmpfs mounted for the task volume tmp on the instance (%v)", err)
		}
		stopTask(t, s.ns, "scoped")
		waitTask(t, s.ns, "scoped", "STOPPED", stoppedWith(ecsv1alpha1.StopUserInitiated))
		testenv.EventuallyWithin(t, 30*time.Second, "the task's volumes removed and unmounted", func() error {
			mounted, err := hostMounted(dir)
			switch {
			case err != nil:
				return err
			case mounted:
				return fmt.Errorf("still mounted under %s", dir)
			}
			return gone(dir)
		})
		if data, err := os.ReadFile(filepath.Join(bind, "from-host")); err != nil || string(data) != "host file" {
			t.Errorf("removing the task touched the bound instance path: %q %v", data, err)
		}
	})

	t.Run("shared with autoprovision: a later task sees the file, the volume stays and is listed", func(t *testing.T) {
		cache := dockerVolume("cache", ecsv1alpha1.DockerVolumeScopeShared, true, nil)
		first := testobj.TaskDefinition(s.ns, "share-first").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", s.image).Last(mounts("cache")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Command = []string{"write=/cache/kept:written by the first task", "exit=0"}
		}).Obj()
		first.Spec.Volumes = []ecsv1alpha1.Volume{cache}
		create(first, "share-first")
		waitTask(t, s.ns, "share-first", "STOPPED", stoppedWith(ecsv1alpha1.StopEssentialContainerExited))
		second := testobj.TaskDefinition(s.ns, "share-second").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", s.image).Last(mounts("cache")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
			c.Command = []string{"cat=/cache/kept", "echo=", "echo=done", "sleep=inf"}
		}).Obj()
		second.Spec.Volumes = []ecsv1alpha1.Volume{cache}
		create(second, "share-second")
		waitOutput(t, agentAddr, s.ns, "share-second", "app", "written by the first task")
		stopTask(t, s.ns, "share-second")
		waitTask(t, s.ns, "share-second", "STOPPED", stoppedWith(ecsv1alpha1.StopUserInitiated))

		data := filepath.Join(o.StateDir, "shared-volumes", s.ns, "cache", "_data", "kept")
		testenv.EventuallyWithin(t, 30*time.Second, "both tasks cleaned up, the volume listed and kept", func() error {
			for _, n := range []string{"share-first", "share-second"} {
				if err := gone(filepath.Join(o.StateDir, "volumes", string(getTask(t, s.ns, n).UID))); err != nil {
					return fmt.Errorf("task %s not cleaned up yet: %w", n, err)
				}
			}
			b, err := os.ReadFile(data)
			if err != nil {
				return fmt.Errorf("the shared volume's file: %w", err)
			}
			if string(b) != "written by the first task" {
				return fmt.Errorf("the shared volume's file holds %q", b)
			}
			var ci ecsv1alpha1.ContainerInstance
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &ci); err != nil {
				return err
			}
			vols := ci.Status.Volumes
			if len(vols) != 1 || vols[0].Namespace != s.ns || vols[0].Name != "cache" || vols[0].Driver != "local" || vols[0].CreatedAt == nil {
				return fmt.Errorf("instance volumes %+v, want the one shared volume cache", vols)
			}
			return nil
		})
	})

	t.Run("shared without autoprovision and missing: the task stops with the reason", func(t *testing.T) {
		td := testobj.TaskDefinition(s.ns, "needs-volume").Network(ecsv1alpha1.NetworkModeNone).
			Container("app", s.image).Last(mounts("absent")).Obj()
		td.Spec.Volumes = []ecsv1alpha1.Volume{dockerVolume("absent", ecsv1alpha1.DockerVolumeScopeShared, false, nil)}
		create(td, "needs-volume")
		task := waitTask(t, s.ns, "needs-volume", "STOPPED", stoppedWith(ecsv1alpha1.StopTaskFailedToStart))
		const want = "volume 'absent' does not exist and autoprovision is set to false"
		if !strings.Contains(task.Status.StoppedReason, want) {
			t.Errorf("stoppedReason %q, want it to say %q", task.Status.StoppedReason, want)
		}
		if ids := s.taskContainers(t, task.UID); len(ids) != 0 {
			t.Errorf("containers %v created for a task whose volume is missing", ids)
		}
	})
}

// mountCount is how many mounts are stacked on dir on the host.
func mountCount(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

// unmountUnder lazily unmounts what is left mounted under dir, so a failed test
// leaves no mount behind.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// instanceVolumes is the ContainerInstance's list of shared volumes.
func instanceVolumes(name string) ([]ecsv1alpha1.InstanceVolume, error) {
	var ci ecsv1alpha1.ContainerInstance
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &ci); err != nil {
		return nil, err
	}
	return ci.Status.Volumes, nil
}

// TestDockerVolumesSurviveAgentKill: after kill -9 of the agent, the new one finds a
// running task's tmpfs volumes as they are (mounted once, not again on top) and the
// shared volume as it was (same creation time, listed once), and a later task that
// does not autoprovision uses that same volume. Removing it as the docs say (umount,
// rm -rf) drops it from the instance's list.
func TestDockerVolumesSurviveAgentKill(t *testing.T) {
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	name := "node-" + s.ns
	o := s.agentOptions(t, name)
	t.Cleanup(func() { unmountUnder(o.StateDir) }) // after the agents stop
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "agent", "--kubeconfig", o.Kubeconfig, "--cluster", o.Cluster, "--name", o.Name,
			"--containerd-address", o.ContainerdAddress, "--containerd-namespace", o.Namespace, "--state-dir", o.StateDir,
			"--snapshotter", o.Snapshotter, "--registry-config-dir", o.RegistryConfigDir, "--runc-root", o.RuncRoot,
			"--lease-interval", "1s", "--status-interval", "1s", "--reserved-memory", "0", "--http-bind-address", "0", "--streaming-address", "127.0.0.1:0",
			"--task-cleanup-wait", "1s", "--cleanup-interval", "500ms")
		if testing.Verbose() {
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	ctx := context.Background()
	memOpts := &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs", Device: "tmpfs", O: "size=8m"}
	td := testobj.TaskDefinition(s.ns, "keeper").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(mounts("mem", "scratch")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command = []string{"write=/mem/before:kept", "write=/scratch/before:kept", "sleep=inf"}
	}).Obj()
	td.Spec.Volumes = []ecsv1alpha1.Volume{
		dockerVolume("mem", ecsv1alpha1.DockerVolumeScopeShared, true, memOpts),
		dockerVolume("scratch", ecsv1alpha1.DockerVolumeScopeTask, false, &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs"}),
	}
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, "keeper", "keeper").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	keeper := waitTask(t, s.ns, "keeper", "RUNNING", func(task *ecsv1alpha1.Task) error {
		if task.Status.LastStatus != ecsv1alpha1.TaskRunning {
			return errors.New("not RUNNING")
		}
		return nil
	})
	shared := filepath.Join(o.StateDir, "shared-volumes", s.ns, "mem")
	scratch := filepath.Join(o.StateDir, "volumes", string(keeper.UID), "scratch")
	var created *metav1.Time
	testenv.EventuallyWithin(t, 30*time.Second, "the task's files on its volumes and the shared volume listed", func() error {
		for _, f := range []string{filepath.Join(shared, "_data", "before"), filepath.Join(scratch, "before")} {
			if _, err := os.Stat(f); err != nil {
				return err
			}
		}
		vols, err := instanceVolumes(name)
		if err != nil {
			return err
		}
		if len(vols) != 1 || vols[0].Name != "mem" || vols[0].Type != "tmpfs" || vols[0].CreatedAt == nil {
			return fmt.Errorf("instance volumes %+v, want mem (tmpfs)", vols)
		}
		created = vols[0].CreatedAt
		return nil
	})
	before := s.containers(t)

	_ = first.Process.Kill() // SIGKILL: no cleanup, no goodbye
	_ = first.Wait()
	second := start()
	t.Cleanup(func() { _ = second.Process.Signal(syscall.SIGTERM); _ = second.Wait() })
	time.Sleep(3 * time.Second) // the new agent has taken the task over
	if task := getTask(t, s.ns, "keeper"); task.Status.LastStatus != ecsv1alpha1.TaskRunning {
		t.Fatalf("keeper is %s after the restart (%s)", task.Status.LastStatus, task.Status.StoppedReason)
	}
	after := s.containers(t)
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("container %s: pid %d before the kill, %d after", id, pid, after[id])
		}
	}
	for _, dir := range []string{filepath.Join(shared, "_data"), scratch} {
		if n := mountCount(t, dir); n != 1 {
			t.Errorf("%d tmpfs mounted on %s after the restart, want 1", n, dir)
		}
	}

	// A later task without autoprovision finds the same volume.
	reader := testobj.TaskDefinition(s.ns, "reader").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).Last(mounts("mem")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command = []string{"cat=/mem/before", "write=/mem/after:seen", "exit=0"}
	}).Obj()
	reader.Spec.Volumes = []ecsv1alpha1.Volume{dockerVolume("mem", ecsv1alpha1.DockerVolumeScopeShared, false, memOpts)}
	if err := env.Client.Create(ctx, reader); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Task(s.ns, "reader", "reader").Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	task := waitTask(t, s.ns, "reader", "STOPPED", stoppedWith(ecsv1alpha1.StopEssentialContainerExited))
	if code, reason, ok := exitCode(task, "app"); !ok || code != 0 {
		t.Fatalf("reader exited %d (%v) %q, want 0", code, ok, reason)
	}
	if data, err := os.ReadFile(filepath.Join(shared, "_data", "after")); err != nil || string(data) != "seen" {
		t.Errorf("the reader's file in the shared volume: %q %v", data, err)
	}
	vols, err := instanceVolumes(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || !vols[0].CreatedAt.Equal(created) {
		t.Errorf("instance volumes after the restart %+v, want mem created at %s, once", vols, created)
	}

	// The task's own tmpfs goes with it; the shared one stays until removed by hand.
	stopTask(t, s.ns, "keeper")
	waitTask(t, s.ns, "keeper", "STOPPED", stoppedWith(ecsv1alpha1.StopUserInitiated))
	testenv.EventuallyWithin(t, 30*time.Second, "the task's tmpfs unmounted and removed", func() error {
		if n := mountCount(t, scratch); n != 0 {
			return fmt.Errorf("%d mounts on %s", n, scratch)
		}
		return gone(scratch)
	})
	if n := mountCount(t, filepath.Join(shared, "_data")); n != 1 {
		t.Errorf("%d tmpfs on the shared volume once its tasks stopped, want 1", n)
	}
	if err := unix.Unmount(filepath.Join(shared, "_data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(shared); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyWithin(t, 30*time.Second, "the removed volume gone from the instance's list", func() error {
		vols, err := instanceVolumes(name)
		if err != nil {
			return err
		}
		if len(vols) != 0 {
			return fmt.Errorf("instance volumes %+v", vols)
		}
		return nil
	})
}
