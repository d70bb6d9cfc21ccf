package task

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsac "github.com/berthdev/berth/apis/applyconfiguration/apis/v1alpha1"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/taskrules"
)

// Tasks no agent reports on: a task asked to stop before it was placed, and a task
// bound to an instance that is not registered, would otherwise never reach STOPPED.
// The manager writes their final status (and only theirs: see the field ownership
// table in docs/architecture.md).

// bindGrace is how long a task bound at creation (StartTask) may name an instance the
// cache does not know yet before it is stopped as unreachable.
const bindGrace = 30 * time.Second

// verdict is what the manager does for a task that is not STOPPED.
type verdict struct {
	// stop, with code and reason, finishes the task on the agent's behalf.
	stop   bool
	code   ecsv1alpha1.StopCode
	reason string
	// wait asks to look again later (the bind grace period).
	wait time.Duration
}

// judgeUnreported decides for a task that is not STOPPED, given whether its instance
// is registered (ignored for unplaced tasks).
func judgeUnreported(t *ecsv1alpha1.Task, instanceRegistered bool, now time.Time) verdict {
	if t.Spec.ContainerInstance == "" {
		if t.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
			return verdict{} // the scheduler's
		}
		reason := t.Spec.StopReason
		if reason == "" {
			reason = "Stopped before it was placed"
		}
		return verdict{stop: true, code: stopCodeOf(t), reason: reason}
	}
	if instanceRegistered {
		return verdict{} // its agent's
	}
	if wait := t.CreationTimestamp.Add(bindGrace).Sub(now); wait > 0 {
		return verdict{wait: wait}
	}
	return verdict{stop: true, code: ecsv1alpha1.StopInstanceUnreachable,
		reason: fmt.Sprintf("Container instance %s is not registered", t.Spec.ContainerInstance)}
}

// stopCodeOf is the stop code the stop request gave, UserInitiated when none.
func stopCodeOf(t *ecsv1alpha1.Task) ecsv1alpha1.StopCode {
	if t.Spec.StopCode != "" {
		return t.Spec.StopCode
	}
	return ecsv1alpha1.StopUserInitiated
}

// finishUnreported finishes a task no agent will report on, if it is one.
func (r *Reconciler) finishUnreported(ctx context.Context, t *ecsv1alpha1.Task) (ctrl.Result, error) {
	registered := false
	if t.Spec.ContainerInstance != "" {
		var ci ecsv1alpha1.ContainerInstance
		err := r.Client.Get(ctx, client.ObjectKey{Name: t.Spec.ContainerInstance}, &ci)
		if err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading container instance %s: %w", t.Spec.ContainerInstance, err)
		}
		registered = err == nil
	}
	v := judgeUnreported(t, registered, r.Now())
	if !v.stop {
		return ctrl.Result{RequeueAfter: v.wait}, nil
	}
	return ctrl.Result{}, r.finish(ctx, t, v.code, v.reason)
}

// finish reports a task STOPPED on behalf of an agent that will never do it.
func (r *Reconciler) finish(ctx context.Context, t *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string) error {
	now := metav1.NewTime(r.Now())
	st := ecsac.TaskStatus().
		WithLastStatus(ecsv1alpha1.TaskStopped).
		WithStopCode(code).
		WithStoppedReason(taskrules.TruncateReason(reason)).
		WithStoppedAt(now).
		WithConditions(
			conditions.Apply(t.Status.Conditions, t.Generation, ecsv1alpha1.TaskConditionStopped, metav1.ConditionTrue, string(code), reason, now.Time),
		)
	if t.Status.CreatedAt == nil {
		st.WithCreatedAt(t.CreationTimestamp)
	}
	if t.Status.StoppingAt == nil {
		st.WithStoppingAt(now)
	}
	if err := r.Client.Status().Apply(ctx, ecsac.Task(t.Name, t.Namespace).WithStatus(st),
		client.FieldOwner(ecsv1alpha1.FieldManagerManager), client.ForceOwnership); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("marking task stopped: %w", err))
	}
	ctrl.LoggerFrom(ctx).Info("task stopped by the control plane", "stopCode", code, "reason", reason)
	r.Recorder.Eventf(t, nil, "Normal", string(code), "Stop", "%s", reason)
	return nil
}
