package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/taskrules"
)

// Convergence: internal/deployment's planner decides, from the classified live tasks,
// what to stop and how many to start within the deployment's bounds; this file
// carries out the stops and hands the starts to launch.

// maxParallelWrites bounds the writes of a pass in flight at once: creates (the
// largest slow-start batch), stops and deletes alike.
const maxParallelWrites = 64

// DefaultMaxWritesPerPass bounds the creates, and the stops, of one pass, as the
// ReplicaSet controller's burstReplicas does: a pass that scales by thousands ends
// after this many, writes the service's status, and the next pass (woken as the
// cache shows them) goes on, so status stays current through a long scale-out or
// rollout. Reconciler.MaxWritesPerPass overrides it (the manager's
// --service-max-writes-per-pass, for measurements).
const DefaultMaxWritesPerPass = 500

// writesPerPass is MaxWritesPerPass, or its default.
func (r *Reconciler) writesPerPass() int {
	if r.MaxWritesPerPass > 0 {
		return r.MaxWritesPerPass
	}
	return DefaultMaxWritesPerPass
}

// converge starts and stops tasks as the deployment arithmetic plans.
func (r *Reconciler) converge(ctx context.Context, s *state) error {
	if s.primary == nil {
		return nil
	}
	if s.newDeployment {
		// A deployment is recorded in status before any task is created in its name:
		// if that write fails (a stale cache, another manager), nothing was done for
		// it, and the retry starts it again, Event included. The status write requeues
		// the service.
		return nil
	}
	key := client.ObjectKeyFromObject(s.svc).String()
	if !r.cacheCaughtUp(key, s) {
		// Our last writes are not in the cache yet; acting now would repeat them.
		// Their watch events requeue the service; the deadline is a safety net.
		s.requeueAt(s.now.Add(r.Expectations.TTL))
		return nil
	}
	if newer := s.newerTask(); newer != "" {
		// Another manager (a second replica, or this one's predecessor) planned from
		// a newer Service than the cache holds: scaling in to the old desired count
		// would stop the tasks it just started for the new one. The Service's watch
		// event requeues it; the deadline is a safety net.
		ctrl.LoggerFrom(ctx).V(1).Info("cached service is older than a task's; waiting for the cache", "task", newer)
		s.requeueAt(s.now.Add(staleServiceRetry))
		return nil
	}
	s.plan = deployment.Next(s.planInput())
	defer s.reportTaskWrites(ctx)
	if err := r.stopPlanned(ctx, s, key); err != nil {
		return err
	}
	return r.launch(ctx, s, key)
}

// staleServiceRetry is when a pass that found its cached Service behind a task tries
// again if no watch event came first.
const staleServiceRetry = 2 * time.Second

// newerTask is a task created from a newer generation of the Service than the
// cached one (AnnotationServiceGeneration), or "".
func (s *state) newerTask() string {
	for _, t := range s.tasks {
		g, err := strconv.ParseInt(t.Annotations[ecsv1alpha1.AnnotationServiceGeneration], 10, 64)
		if err == nil && g > s.svc.Generation {
			return t.Name
		}
	}
	return ""
}

// cacheCaughtUp reports whether the cache shows the tasks this manager created and
// stopped for the service.
func (r *Reconciler) cacheCaughtUp(key string, s *state) bool {
	seen := make(map[string]bool, len(s.tasks)) // name -> asked to stop
	for _, t := range s.tasks {
		seen[t.Name] = t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped
	}
	return r.Expectations.Satisfied(key, s.now, func(name string) (bool, bool) { stopping, ok := seen[name]; return ok, stopping })
}

// planInput is the planner's view of the service: its bounds and live tasks.
func (s *state) planInput() deployment.Input {
	dc := s.svc.Spec.DeploymentConfiguration
	in := deployment.Input{
		Desired:               s.desired,
		MinimumHealthyPercent: valueOr(dc.MinimumHealthyPercent, 100),
		MaximumPercent:        valueOr(dc.MaximumPercent, 200),
		Frozen:                s.primary.RolloutState == ecsv1alpha1.RolloutFailed,
	}
	for _, lt := range s.live {
		in.Tasks = append(in.Tasks, lt.plan)
	}
	return in
}

// stopPlanned stops the tasks the plan names, in parallel, and expects the stops it
// made, also when one failed.
func (r *Reconciler) stopPlanned(ctx context.Context, s *state, key string) error {
	byName := make(map[string]*liveTask, len(s.live))
	for i := range s.live {
		byName[s.live[i].task.Name] = &s.live[i]
	}
	if n := r.writesPerPass(); len(s.plan.Stop) > n {
		s.plan.Stop = s.plan.Stop[:n] // the planner lists the most urgent first
	}
	deleted := deletedWhenStopped(s.plan.Stop, byName, s.history(), recentKeptStops(s.tasks, s.now))
	done, err := parallel(ctx, len(s.plan.Stop), func(i int) error {
		lt := byName[s.plan.Stop[i]]
		code, reason := stopFor(lt, s.primary.ID)
		return r.stopTask(ctx, lt.task, code, reason, deleted[lt.task.Name])
	})
	for i, ok := range done {
		if ok {
			s.stopped = append(s.stopped, s.plan.Stop[i])
		}
	}
	r.Expectations.ExpectStops(key, s.stopped, s.now)
	return err
}

// stopFor is the stop code and reason of a planned stop: the judgment's when it made
// one, else a scale-in (a primary task) or a replacement (an older deployment's).
func stopFor(lt *liveTask, primaryID string) (ecsv1alpha1.StopCode, string) {
	code, reason := lt.stopCode, lt.stopReason
	if code == "" {
		code = ecsv1alpha1.StopServiceSchedulerInitiated
	}
	if reason == "" {
		if lt.plan.Primary {
			reason = "Scaling in: the service needs fewer tasks"
		} else {
			reason = "Replaced by deployment " + primaryID
		}
	}
	return code, reason
}

// stopTask asks a task to stop, leaving the cached copy alone; with deleteWhenStopped
// its agent deletes it once it has stopped.
func (r *Reconciler) stopTask(ctx context.Context, t *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string, deleteWhenStopped bool) error {
	target := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}}
	patch := taskrules.StopPatch(code, reason)
	if deleteWhenStopped {
		patch = taskrules.StopAndDeletePatch(code, reason)
	}
	if err := r.Client.Patch(ctx, target, patch, client.FieldOwner(ecsv1alpha1.FieldManagerManager)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("stopping task %s: %w", t.Name, err)
	}
	return nil
}

// reportTaskWrites logs and announces the tasks this pass created and stopped, also
// when a later write of the pass failed.
func (s *state) reportTaskWrites(ctx context.Context) {
	if len(s.started) > 0 {
		ctrl.LoggerFrom(ctx).Info("started tasks", "count", len(s.started), "deployment", s.primary.ID)
		on := ""
		if n := len(s.startedOn); n > 0 {
			on = " on " + conditions.Count(n, "container instance", "container instances")
		}
		s.writtenEvent("TasksStarted", "Scale", "has started %d tasks%s: %s", len(s.started), on, listNames(s.started))
	}
	if len(s.stopped) > 0 {
		ctrl.LoggerFrom(ctx).Info("stopped tasks", "count", len(s.stopped))
		s.writtenEvent("TasksStopped", "Scale", "has stopped %d tasks: %s", len(s.stopped), listNames(s.stopped))
	}
}

// listNames shortens a list of task names for an Event's note.
func listNames(names []string) string {
	const shown = 10
	if len(names) <= shown {
		return strings.Join(names, " ")
	}
	return strings.Join(names[:shown], " ") + fmt.Sprintf(" and %d more", len(names)-shown)
}

// parallel runs n independent writes, at most maxParallelWrites at once, and returns
// which succeeded and the first error (by index). Writes after a failure still run:
// each is independent, and the caller records every one that was made. Writes not
// attempted because ctx ended count as failed.
func parallel(ctx context.Context, n int, write func(i int) error) ([]bool, error) {
	errs, ran := make([]error, n), make([]bool, n)
	workqueue.ParallelizeUntil(ctx, maxParallelWrites, n, func(i int) { errs[i], ran[i] = write(i), true })
	done := make([]bool, n)
	var first error
	for i, err := range errs {
		if !ran[i] { // the context ended first
			err = fmt.Errorf("not attempted: %w", context.Cause(ctx))
		}
		done[i] = err == nil
		if err != nil && first == nil {
			first = err
		}
	}
	return done, first
}
