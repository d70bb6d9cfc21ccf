package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// mountingTask is a one-container task definition mounting volume v at /data.
func mountingTask(name string, v ecsv1alpha1.Volume) Desired {
	spec := taskDef().Container("app", image("app")).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.MountPoints = []ecsv1alpha1.MountPoint{{SourceVolume: v.Name, ContainerPath: "/data"}}
	}).Obj().Spec
	spec.Volumes = []ecsv1alpha1.Volume{v}
	return desired(name, &spec)
}

func sharedVol(name string, autoprovision bool, labels map[string]string) ecsv1alpha1.Volume {
	return ecsv1alpha1.Volume{Name: name, DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{
		Scope: ecsv1alpha1.DockerVolumeScopeShared, Autoprovision: autoprovision, Driver: "local", Labels: labels}}
}

// mountOf is the host path the container app of d mounts at /data.
func (h *harness) mountOf(d Desired) string {
	h.t.Helper()
	spec, ok := h.rt.Spec(id(d, "app"))
	if !ok {
		h.t.Fatalf("no container app of %s", d.Task)
	}
	for _, m := range spec.Mounts {
		if m.ContainerPath == "/data" {
			return m.HostPath
		}
	}
	h.t.Fatalf("app of %s mounts no /data: %+v", d.Task, spec.Mounts)
	return ""
}

// TestSharedVolumeSurvivesAgentRestart: a shared volume is made once, found again by
// a restarted engine (same directory, same creation time, one volume listed), and
// outlives the tasks that used it; a missing one without autoprovision, or one asked
// for with other labels, fails the task with ECS's reason naming the volume.
func TestSharedVolumeSurvivesAgentRestart(t *testing.T) {
	h := newHarness(t)
	labels := map[string]string{"team": "web"}
	first := mountingTask("first", sharedVol("cache", true, labels))
	h.eng.Update(first)
	h.waitFor(first.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	path := h.mountOf(first)
	if want := filepath.Join(h.dir, "shared-volumes", "shop", "cache", "_data"); path != want {
		t.Fatalf("the shared volume is mounted from %s, want %s", path, want)
	}
	if err := os.WriteFile(filepath.Join(path, "kept"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := h.eng.SharedVolumes()
	if err != nil {
		t.Fatal(err)
	}
	want := []SharedVolume{{Namespace: "shop", Name: "cache", Driver: "local", CreatedAt: t0.UTC()}}
	if diff := cmp.Diff(want, before); diff != "" {
		t.Fatalf("shared volumes (-want +got):\n%s", diff)
	}
	h.eng.Update(stopped(first, "", ""))
	h.waitFor(first.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	h.clk.Step(2 * time.Hour)
	if err := h.eng.Cleanup(context.Background(), time.Hour); err != nil {
		t.Fatal(err)
	}

	// kill -9 and a new engine on the same state directory.
	h.restart()
	second := mountingTask("second", sharedVol("cache", true, labels))
	h.eng.Update(second)
	h.waitFor(second.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	if got := h.mountOf(second); got != path {
		t.Errorf("the second task mounts %s, want the first's %s", got, path)
	}
	if _, err := os.Stat(filepath.Join(path, "kept")); err != nil {
		t.Errorf("the first task's file is gone: %v", err)
	}
	after, err := h.eng.SharedVolumes()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("shared volumes after the restart (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name   string
		vol    ecsv1alpha1.Volume
		reason string
	}{
		{"missing", sharedVol("missing", false, nil),
			"ResourceInitializationError: initialize volume: volume detection failed, volume 'missing' does not exist and autoprovision is set to false"},
		{"other-labels", sharedVol("cache", true, map[string]string{"team": "db"}),
			"ResourceInitializationError: initialize volume: volume 'cache' does not match existing volume labels"},
	} {
		d := mountingTask(tc.name, tc.vol)
		h.eng.Update(d)
		r := h.waitFor(d.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
		if r.StopCode != ecsv1alpha1.StopTaskFailedToStart || !strings.HasPrefix(r.StoppedReason, tc.reason) {
			t.Errorf("%s: stopped with %s %q, want TaskFailedToStart %q", tc.name, r.StopCode, r.StoppedReason, tc.reason)
		}
		if n := h.rt.Count("Create", id(d, "app")); n != 0 {
			t.Errorf("%s: %d creates of a container whose volume failed", tc.name, n)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, "shared-volumes", "shop", "missing")); !os.IsNotExist(err) {
		t.Errorf("a volume without autoprovision was made: %v", err)
	}
}

// TestVolumeHostPaths: where each kind of volume is on the instance.
func TestVolumeHostPaths(t *testing.T) {
	in := &taskInput{uid: "u1", stateDir: "/var/lib/berth", task: types.NamespacedName{Namespace: "shop", Name: "web"}}
	dvc := func(scope ecsv1alpha1.DockerVolumeScope, opts *ecsv1alpha1.LocalDriverOpts) *ecsv1alpha1.DockerVolumeConfiguration {
		return &ecsv1alpha1.DockerVolumeConfiguration{Scope: scope, Driver: "local", DriverOpts: opts}
	}
	cases := []struct {
		vol      ecsv1alpha1.Volume
		want     string
		wantRO   bool
		wantMade bool
	}{
		{ecsv1alpha1.Volume{Name: "scratch"}, "/var/lib/berth/volumes/u1/scratch", false, true},
		{ecsv1alpha1.Volume{Name: "managed", Host: &ecsv1alpha1.HostVolume{}}, "/var/lib/berth/volumes/u1/managed", false, true},
		{ecsv1alpha1.Volume{Name: "srv", Host: &ecsv1alpha1.HostVolume{SourcePath: "/srv"}}, "/srv", false, false},
		{ecsv1alpha1.Volume{Name: "t", DockerVolumeConfiguration: dvc("", nil)}, "/var/lib/berth/volumes/u1/t", false, true},
		{ecsv1alpha1.Volume{Name: "tmp", DockerVolumeConfiguration: dvc("task", &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs"})}, "/var/lib/berth/volumes/u1/tmp", false, true},
		{ecsv1alpha1.Volume{Name: "s", DockerVolumeConfiguration: dvc("shared", nil)}, "/var/lib/berth/shared-volumes/shop/s/_data", false, true},
		{ecsv1alpha1.Volume{Name: "b", DockerVolumeConfiguration: dvc("shared", &ecsv1alpha1.LocalDriverOpts{Type: "none", O: "bind,ro", Device: "/opt/b"})}, "/opt/b", true, false},
		{ecsv1alpha1.Volume{Name: "rw", DockerVolumeConfiguration: dvc("task", &ecsv1alpha1.LocalDriverOpts{Type: "none", O: "bind", Device: "/opt/rw"})}, "/opt/rw", false, false},
	}
	for _, tc := range cases {
		got, ro := hostPath(in, &tc.vol)
		if got != tc.want || ro != tc.wantRO {
			t.Errorf("%s: %s read-only %t, want %s %t", tc.vol.Name, got, ro, tc.want, tc.wantRO)
		}
		spec := &ecsv1alpha1.TaskDefinitionSpec{Volumes: []ecsv1alpha1.Volume{tc.vol}}
		if made := wantsVolumes(spec); made != tc.wantMade {
			t.Errorf("%s: made by the engine %t, want %t", tc.vol.Name, made, tc.wantMade)
		}
	}
	if got := tmpfsOptions(&ecsv1alpha1.Volume{DockerVolumeConfiguration: dvc("task", &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs", O: "size=64m,,noexec"})}); !cmp.Equal(got, []string{"size=64m", "noexec"}) {
		t.Errorf("tmpfs options %q", got)
	}
}

// TestAdoptedTaskKeepsRunningWithoutItsVolume: a running task found again after a
// restart is not stopped because its shared volume was removed meanwhile (its
// containers hold their mounts); a new task is.
func TestAdoptedTaskKeepsRunningWithoutItsVolume(t *testing.T) {
	h := newHarness(t)
	maker := mountingTask("maker", sharedVol("cache", true, nil))
	h.eng.Update(maker)
	h.waitFor(maker.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))
	user := mountingTask("user", sharedVol("cache", false, nil))
	h.eng.Update(user)
	last := h.waitFor(user.UID, "RUNNING", hasStatus(ecsv1alpha1.TaskRunning))

	h.kill()
	if err := os.RemoveAll(filepath.Join(h.dir, "shared-volumes")); err != nil {
		t.Fatal(err)
	}
	h.start()
	user.Status = apiStatus(last)
	h.eng.Update(user)
	h.waitUntil("the task known again", func() bool { return len(h.eng.Tasks()) == 1 })
	later := mountingTask("later", sharedVol("cache", false, nil))
	h.eng.Update(later)
	h.waitFor(later.UID, "STOPPED", hasStatus(ecsv1alpha1.TaskStopped))
	if got := h.rec.all(user.UID); len(got) != 0 {
		t.Errorf("the adopted task reported %v, want nothing new", h.rec.statuses(user.UID))
	}
}
