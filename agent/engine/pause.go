package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// reasonPauseFailed begins the stoppedReason of a task whose pause container could
// not start.
const reasonPauseFailed = "ResourceInitializationError: failed to start the task's pause container: "

// reasonPauseExited is the stoppedReason of a task whose pause container exited
// while it ran.
const reasonPauseExited = "the task's pause container, which holds its shared namespaces, exited"

// pauseStopTimeout bounds the pause process's exit on SIGTERM, which it handles at
// once.
const pauseStopTimeout = 10 * time.Second

// pauseUp creates and starts the task's pause container, or finds it again after an
// agent restart (Create and Start are idempotent), and points the containers still
// to be created at its namespaces. A failure stops the task with TaskFailedToStart.
func (w *worker) pauseUp(ctx context.Context) {
	spec := pauseSpec(w.in, w.e.cfg.PauseBinary)
	err := w.e.cfg.Dirs.MkdirAll(spec.RootFS, 0o755)
	if err == nil && w.in.spec.IpcMode == ecsv1alpha1.NamespaceModeTask {
		err = w.makeShared(taskShmDir(w.e.stateDir, w.uid))
	}
	if err == nil {
		err = w.makeStdinPipes()
	}
	if err == nil {
		_, err = w.e.rt.Create(ctx, spec)
	}
	var pid uint32
	if err == nil {
		pid, err = w.e.rt.Start(ctx, spec.ID)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.log.Info("pause container failed", logReason, err.Error())
		w.invalid = reasonPauseFailed + err.Error()
		return
	}
	w.in.pausePID, w.pause = pid, pauseUp
	w.log.V(1).Info("pause container started", logPid, pid)
}

// makeStdinPipes makes the named pipes of the containers whose stdin the pause
// process holds open, owned by its user, before it starts and opens them.
func (w *worker) makeStdinPipes() error {
	names := heldStdin(w.in.spec)
	if len(names) == 0 {
		return nil
	}
	dir := stdinDir(w.e.stateDir, w.uid)
	if err := w.e.cfg.Dirs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, n := range names {
		if err := w.e.cfg.Dirs.Mkfifo(filepath.Join(dir, n), 0o600, pauseUID, pauseGID); err != nil {
			return fmt.Errorf("making the stdin of container %s: %w", n, err)
		}
	}
	return nil
}

// pauseID is the runtime ID of the task's pause container.
func pauseID(uid types.UID) string { return runtime.ContainerID(string(uid), runtime.PauseContainer) }

// pauseGone records that the pause container exited. While the task runs that
// stops it: the shared PID namespace died with it (and every process in it), and a
// container restarted later would join a namespace path that no longer is the
// task's. Its exit while the task stops is the expected one.
func (w *worker) pauseGone() {
	if w.pause != pauseUp && w.pause != pauseWanted {
		return
	}
	if w.known < taskStopping && w.desired != desiredStopped {
		w.log.Info("pause container exited", logReason, reasonPauseExited)
	}
	w.pauseExited = true
}

// pauseDown stops and removes the pause container once the task's containers have
// stopped. A failure is logged and does not hold the task in STOPPING: Cleanup and
// Forget remove every container of the task, the pause container included.
func (w *worker) pauseDown(ctx context.Context) {
	id := pauseID(w.uid)
	_, err := w.e.rt.Stop(ctx, id, pauseStopTimeout)
	if err == nil || errors.Is(err, runtime.ErrNotStarted) || errors.Is(err, runtime.ErrNotFound) {
		err = w.e.rt.Delete(ctx, id)
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.log.Error(err, "removing the task's pause container; retried when the task is cleaned up")
	}
	w.in.pausePID, w.pause = 0, pauseReleased
}
