package engine

// Docker volumes (volumes[].dockerVolumeConfiguration) on containerd. containerd has
// no volumes of its own, so the engine implements Docker's local driver on the
// instance, as a directory of its state directory that containers bind-mount:
//
//   - scope task (and volumes without host or dockerVolumeConfiguration, and
//     ECS's `host: {}`): StateDir/volumes/<taskUID>/<volume>, made before the
//     task's first container is created and removed when the task is cleaned up;
//   - scope shared: StateDir/shared-volumes/<namespace>/<volume>/_data, with the
//     volume's configuration beside it in volume.json. It outlives its tasks and is
//     found again by namespace and name, so a restarted agent (or a later task)
//     reuses it and never makes a second one. Namespaces are Kubernetes' tenancy
//     boundary: ECS shares a volume with every task of the instance, Berth with the
//     tasks of the same namespace;
//   - driverOpts type tmpfs: a tmpfs mounted on that directory (with o's size and
//     mode), kept mounted until the volume is removed (Docker unmounts it when the
//     last container stops, which loses a shared tmpfs' content between tasks);
//   - driverOpts type none, o bind: the device path itself, bind-mounted into the
//     containers (read-only with o ro). Nothing is made for it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// volState is where a task's volumes are, in order.
type volState int

const (
	// volNone: the task has no volume the engine makes (none, or host paths only).
	volNone volState = iota
	// volWanted: the task's volumes are to be made (or found again after a restart)
	// before its containers are created.
	volWanted
	// volReady: made; the containers mount them.
	volReady
)

// reasonVolumeFailed begins the stoppedReason of a task whose volumes could not be
// made, as ECS's agent words a volume resource's failure.
const reasonVolumeFailed = "ResourceInitializationError: initialize volume: "

// sharedVolumeMeta is the file beside a shared volume's data that records how it was
// created, to check later tasks against and to list it.
const sharedVolumeMeta = "volume.json"

// sharedVolume is a shared Docker volume as kept on the instance.
type sharedVolume struct {
	Namespace  string                      `json:"namespace"`
	Name       string                      `json:"name"`
	Driver     string                      `json:"driver"`
	DriverOpts ecsv1alpha1.LocalDriverOpts `json:"driverOpts"`
	Labels     map[string]string           `json:"labels,omitempty"`
	CreatedAt  time.Time                   `json:"createdAt"`
}

// SharedVolume is a shared Docker volume on the instance, for its status.
type SharedVolume struct {
	Namespace, Name, Driver, Type string
	CreatedAt                     time.Time
}

// sharedVolumesDir holds the instance's shared volumes.
func sharedVolumesDir(stateDir string) string { return filepath.Join(stateDir, "shared-volumes") }

// sharedVolumeDir is where shared volume name of namespace ns lives: its data in
// _data, its configuration in volume.json.
func sharedVolumeDir(stateDir, ns, name string) string {
	return filepath.Join(sharedVolumesDir(stateDir), ns, name)
}

// volumeKind is how the engine provides a volume.
type volumeKind int

const (
	// volumeHostPath is host.sourcePath: the instance's path, made by nobody.
	volumeHostPath volumeKind = iota
	// volumeTask is a directory of the task (scratch, host: {}, Docker scope task).
	volumeTask
	// volumeShared is a shared Docker volume.
	volumeShared
	// volumeBind is a Docker volume of type none, o bind: its device path.
	volumeBind
)

// driverOpts are a Docker volume's driverOpts (none set for other volumes).
func driverOpts(v *ecsv1alpha1.Volume) ecsv1alpha1.LocalDriverOpts {
	if dvc := v.DockerVolumeConfiguration; dvc != nil && dvc.DriverOpts != nil {
		return *dvc.DriverOpts
	}
	return ecsv1alpha1.LocalDriverOpts{}
}

func kindOf(v *ecsv1alpha1.Volume) volumeKind {
	dvc := v.DockerVolumeConfiguration
	switch {
	case v.Host != nil && v.Host.SourcePath != "":
		return volumeHostPath
	case dvc == nil:
		return volumeTask
	case driverOpts(v).Type == "none":
		return volumeBind
	case dvc.Scope == ecsv1alpha1.DockerVolumeScopeShared:
		return volumeShared
	}
	return volumeTask
}

// hostPath is where volume v of the task is on the instance, and whether its
// configuration makes it read-only (a bind with o ro).
func hostPath(in *taskInput, v *ecsv1alpha1.Volume) (string, bool) {
	switch kindOf(v) {
	case volumeHostPath:
		return v.Host.SourcePath, false
	case volumeBind:
		opts := driverOpts(v)
		return opts.Device, slices.Contains(strings.Split(opts.O, ","), "ro")
	case volumeShared:
		return filepath.Join(sharedVolumeDir(in.stateDir, in.task.Namespace, v.Name), "_data"), false
	}
	return filepath.Join(volumesDir(in.stateDir, in.uid), v.Name), false
}

// wantsVolumes tells whether the engine makes any volume of spec.
func wantsVolumes(spec *ecsv1alpha1.TaskDefinitionSpec) bool {
	for i := range spec.Volumes {
		if k := kindOf(&spec.Volumes[i]); k == volumeTask || k == volumeShared {
			return true
		}
	}
	return false
}

// tmpfsOptions are a tmpfs volume's mount options (driverOpts o), or nil when the
// volume is not a tmpfs.
func tmpfsOptions(v *ecsv1alpha1.Volume) []string {
	do := driverOpts(v)
	if do.Type != "tmpfs" {
		return nil
	}
	opts := []string{}
	for _, o := range strings.Split(do.O, ",") {
		if o != "" {
			opts = append(opts, o)
		}
	}
	return opts
}

// volumesUp makes the task's volumes before its first container is created (and
// finds them again after an agent restart: every step is idempotent). A failure
// fails the task with ECS's reason.
func (w *worker) volumesUp() {
	for i := range w.in.spec.Volumes {
		v := &w.in.spec.Volumes[i]
		var err error
		switch kindOf(v) {
		case volumeTask:
			path, _ := hostPath(w.in, v)
			err = w.e.makeVolumeDir(path, tmpfsOptions(v))
		case volumeShared:
			err = w.e.sharedVolumeUp(w.in.task.Namespace, v)
		}
		if err != nil && w.adopted() {
			// Found again after an agent restart: the containers hold their mounts
			// already, so a volume removed meanwhile does not stop them.
			w.log.Error(err, "volume of a running task not found again", logVolume, v.Name)
			continue
		}
		if err != nil {
			w.log.Info("volume setup failed", logVolume, v.Name, logReason, err.Error())
			w.invalid = reasonVolumeFailed + err.Error()
			return
		}
	}
	w.vols = volReady
	w.log.V(1).Info("task volumes ready")
}

// adopted tells whether a container of the task exists already: the task was
// found again after an agent restart, past the making of its volumes.
func (w *worker) adopted() bool {
	for i := range w.containers {
		if w.containers[i].exists {
			return true
		}
	}
	return false
}

// makeVolumeDir makes a volume's directory, shared by the task's containers, which
// may run as different users (a root sidecar, a non-root app): writable by all, with
// the sticky bit as on /tmp, and seen by nothing outside the task. A tmpfs volume
// is mounted on it (its root is 1777 unless o sets mode).
func (e *Engine) makeVolumeDir(path string, tmpfs []string) error {
	if err := e.cfg.Dirs.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if tmpfs != nil {
		if err := e.cfg.Dirs.MountTmpfs(path, tmpfs); err != nil {
			return fmt.Errorf("mounting a tmpfs on %s: %w", path, err)
		}
		return nil
	}
	// Chmod, not MkdirAll's mode: the umask does not apply to it.
	if err := e.cfg.Dirs.Chmod(path, os.ModeSticky|0o777); err != nil {
		return fmt.Errorf("making %s writable by the task's users: %w", path, err)
	}
	return nil
}

// sharedVolumeUp finds shared volume v of namespace ns, or creates it when
// autoprovision is set, as ECS's agent does: without autoprovision the volume must
// exist; with it, an existing volume must have the labels and driverOpts asked for.
// One lock for the instance's shared volumes, so two tasks that start together
// create a volume once. The configuration file is written last, atomically: a
// volume without one was never completed and is completed now.
func (e *Engine) sharedVolumeUp(ns string, v *ecsv1alpha1.Volume) error {
	e.volMu.Lock()
	defer e.volMu.Unlock()
	dvc := v.DockerVolumeConfiguration
	dir := sharedVolumeDir(e.stateDir, ns, v.Name)
	meta, err := e.readSharedVolume(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !dvc.Autoprovision:
		return fmt.Errorf("volume detection failed, volume '%s' does not exist and autoprovision is set to false", v.Name)
	case errors.Is(err, fs.ErrNotExist):
		meta = &sharedVolume{Namespace: ns, Name: v.Name, Driver: ecsv1alpha1.DockerVolumeDriverLocal,
			DriverOpts: driverOpts(v), Labels: dvc.Labels, CreatedAt: e.clock.Now().UTC().Truncate(time.Second)}
		if err := e.makeVolumeDir(filepath.Join(dir, "_data"), tmpfsOptions(v)); err != nil {
			return err
		}
		if err := e.writeSharedVolume(dir, meta); err != nil {
			return err
		}
		e.log.Info("created shared volume", logNamespace, ns, logVolume, v.Name)
		return nil
	case err != nil:
		return err
	}
	if dvc.Autoprovision {
		if err := sameVolume(meta, v); err != nil {
			return err
		}
	}
	// After a reboot a tmpfs is gone: mount it again (empty, as Docker would). A
	// directory is left as it is: its tasks may have changed its mode.
	tmpfs := tmpfsOptions(&ecsv1alpha1.Volume{DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{DriverOpts: &meta.DriverOpts}})
	if tmpfs == nil {
		return nil
	}
	return e.makeVolumeDir(filepath.Join(dir, "_data"), tmpfs)
}

// sameVolume checks an existing shared volume against the configuration a task asks
// for, as ECS's agent does (ECS_SHARED_VOLUME_MATCH_FULL_CONFIG): labels and
// driverOpts must be equal, an empty map equal to none. The driver is local for both.
func sameVolume(meta *sharedVolume, v *ecsv1alpha1.Volume) error {
	labels := v.DockerVolumeConfiguration.Labels
	if (len(meta.Labels) > 0 || len(labels) > 0) && !maps.Equal(meta.Labels, labels) {
		return fmt.Errorf("volume '%s' does not match existing volume labels: existing: %v, expected: %v", meta.Name, meta.Labels, labels)
	}
	if opts := driverOpts(v); meta.DriverOpts != opts {
		return fmt.Errorf("volume '%s' does not match existing volume options: existing: %+v, expected: %+v", meta.Name, meta.DriverOpts, opts)
	}
	return nil
}

func (e *Engine) readSharedVolume(dir string) (*sharedVolume, error) {
	data, err := e.cfg.Dirs.ReadFile(filepath.Join(dir, sharedVolumeMeta))
	if err != nil {
		return nil, err
	}
	var meta sharedVolume
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, sharedVolumeMeta), err)
	}
	return &meta, nil
}

// writeSharedVolume writes the configuration through a temporary file and a rename,
// so a crash leaves the old file or the new one, never half of one.
func (e *Engine) writeSharedVolume(dir string, meta *sharedVolume) error {
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, sharedVolumeMeta+".tmp")
	if err := e.cfg.Dirs.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := e.cfg.Dirs.Rename(tmp, filepath.Join(dir, sharedVolumeMeta)); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, sharedVolumeMeta), err)
	}
	return nil
}

// SharedVolumes lists the instance's shared volumes, sorted by namespace and name,
// read from the state directory each time: a volume an operator removed by hand is
// gone from the next list.
func (e *Engine) SharedVolumes() ([]SharedVolume, error) {
	e.volMu.Lock()
	defer e.volMu.Unlock()
	nss, err := e.cfg.Dirs.ReadDir(sharedVolumesDir(e.stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SharedVolume
	for _, ns := range nss {
		names, err := e.cfg.Dirs.ReadDir(filepath.Join(sharedVolumesDir(e.stateDir), ns))
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			meta, err := e.readSharedVolume(sharedVolumeDir(e.stateDir, ns, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue // never completed: not a volume yet
			}
			if err != nil {
				return nil, err
			}
			out = append(out, SharedVolume{Namespace: ns, Name: name, Driver: meta.Driver, Type: meta.DriverOpts.Type, CreatedAt: meta.CreatedAt})
		}
	}
	return out, nil
}
