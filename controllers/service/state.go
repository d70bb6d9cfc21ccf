package service

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// Defaults for settings a Service leaves unset.
const (
	defaultStoppedTaskHistoryLimit = 20
	defaultUnreachableGrace        = 300 * time.Second
)

// unhealthyStopReason marks tasks the service stopped for failing health checks; the
// circuit breaker counts them as failed.
const unhealthyStopReason = taskrules.StopReasonUnhealthy

// state is what one reconcile of a service knows, passed from phase to phase.
type state struct {
	svc *ecsv1alpha1.Service
	now time.Time

	cluster   *ecsv1alpha1.Cluster // nil when the Cluster object does not exist
	instances map[string]*ecsv1alpha1.ContainerInstance
	// tasks are the service's tasks straight from the cache: read-only.
	tasks []*ecsv1alpha1.Task

	// target is the revision spec.taskDefinition resolves to; nil if it does not.
	target *revision.Resolved
	// constraints are the service's and the target revision's placement constraints.
	constraints []placement.Constraint
	// accepted is false when the spec cannot be acted on; message says why.
	accepted        bool
	acceptedReason  string
	acceptedMessage string
	// rejectQuietly records a rejection without a Warning Event: one about to resolve.
	rejectQuietly bool

	// newDeployment is set when this pass started a deployment: its tasks wait for
	// the next pass, once status records it (see converge).
	newDeployment bool
	// primary is the PRIMARY deployment (a pointer into svc.Status.Deployments).
	primary *ecsv1alpha1.Deployment
	// desired is the number of primary tasks wanted (desiredCount, or the number of
	// eligible instances for DAEMON services).
	desired int32
	// eligible are, for DAEMON services, the instances that should run a task.
	eligible []string

	// live are the tasks that count, as classified (classify.go); plan is what the
	// planner made of them; started and stopped name the tasks this pass created and
	// asked to stop.
	live    []liveTask
	plan    deployment.Plan
	started []string
	stopped []string

	// unplaced is how many of the tasks the plan starts found no room (place.go);
	// unplacedWhy explains the first that found none, unplacedInvalid a request the
	// placement engine refused as invalid.
	// startedOn counts the tasks started per instance, for the TasksStarted Event.
	startedOn map[string]int

	unplaced        int32
	unplacedWhy     *placement.UnplaceableError
	unplacedInvalid string

	requeueAfter time.Duration
	events       []pendingEvent
}

// liveTask is a task that counts for the service: not stopped and not asked to stop.
// stopCode and stopReason are the judgment's, when one marked it to stop or replace.
type liveTask struct {
	task       *ecsv1alpha1.Task
	deployment string
	plan       deployment.Task
	stopCode   ecsv1alpha1.StopCode
	stopReason string
}

type pendingEvent struct {
	warning bool
	reason  string
	action  string
	note    string
	// written is true when the write the Event reports is not the status write but
	// one already made (a task created or stopped).
	written bool
}

func newState(svc *ecsv1alpha1.Service, now time.Time) *state {
	return &state{svc: svc, now: now, accepted: true}
}

func (s *state) event(warning bool, reason, action, format string, args ...any) {
	s.events = append(s.events, pendingEvent{warning: warning, reason: reason, action: action, note: fmt.Sprintf(format, args...)})
}

// writtenEvent is an Event about writes already made, such as tasks created.
func (s *state) writtenEvent(reason, action, format string, args ...any) {
	s.events = append(s.events, pendingEvent{reason: reason, action: action, note: fmt.Sprintf(format, args...), written: true})
}

// emit records the events of this reconcile once the writes that justify them
// succeeded: all of them after the status write, only those about tasks created or
// stopped when the pass failed before it (a stale cache's status write conflicts),
// as those tasks exist whatever happens to the status.
func (s *state) emit(rec events.EventRecorder, statusWritten bool) {
	for _, e := range s.events {
		if !statusWritten && !e.written {
			continue
		}
		typ := "Normal"
		if e.warning {
			typ = "Warning"
		}
		rec.Eventf(s.svc, nil, typ, e.reason, e.action, "%s", e.note)
	}
}

// requeueAt asks for another reconcile at a clock deadline (a grace period ending).
func (s *state) requeueAt(t time.Time) {
	d := t.Sub(s.now)
	if d < time.Second {
		d = time.Second
	}
	if s.requeueAfter == 0 || d < s.requeueAfter {
		s.requeueAfter = d
	}
}

func (s *state) reject(reason, format string, args ...any) {
	s.accepted = false
	s.acceptedReason = reason
	s.acceptedMessage = fmt.Sprintf(format, args...)
}

// loadWorld reads the cluster, its instances and the service's tasks from the cache.
func (r *Reconciler) loadWorld(ctx context.Context, s *state) error {
	var cluster ecsv1alpha1.Cluster
	if err := r.Client.Get(ctx, client.ObjectKey{Name: s.svc.Spec.Cluster}, &cluster); err == nil {
		s.cluster = &cluster
	} else if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("reading cluster %s: %w", s.svc.Spec.Cluster, err)
	}
	var instances ecsv1alpha1.ContainerInstanceList
	if err := r.Client.List(ctx, &instances, client.MatchingFields{index.InstanceCluster: s.svc.Spec.Cluster},
		client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing instances: %w", err)
	}
	s.instances = make(map[string]*ecsv1alpha1.ContainerInstance, len(instances.Items))
	for i := range instances.Items {
		s.instances[instances.Items[i].Name] = &instances.Items[i]
	}
	var tasks ecsv1alpha1.TaskList
	if err := r.Client.List(ctx, &tasks, client.InNamespace(s.svc.Namespace),
		client.MatchingFields{index.TaskService: s.svc.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing tasks: %w", err)
	}
	for i := range tasks.Items {
		t := &tasks.Items[i]
		if metav1.IsControlledBy(t, s.svc) {
			s.tasks = append(s.tasks, t)
		}
	}
	return nil
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

func valueOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
