package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

type eventUpdate = event.UpdateEvent

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

	live    []liveTask
	plan    deployment.Plan
	started []string
	stopped []string

	requeueAfter time.Duration
	events       []pendingEvent
}

// liveTask is a task that counts for the service: not stopped and not asked to stop.
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

// resolveTarget resolves spec.taskDefinition and checks the placement expressions,
// the load balancers and the cluster's container policy. A service whose target
// cannot be resolved or is refused keeps its current deployments running.
func (r *Reconciler) resolveTarget(ctx context.Context, s *state) error {
	ref, err := revision.ParseRef(s.svc.Spec.TaskDefinition)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.taskDefinition: %v", err)
		return nil
	}
	target, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
	if revision.IsNotFound(err) {
		if r.registrationPending(ctx, s.svc.Namespace, ref.Family) {
			// Applied together with its TaskDefinition: said on the condition, but no
			// Warning for what the next TaskDefinition status write resolves.
			s.reject(ecsv1alpha1.ReasonRevisionNotFound, "spec.taskDefinition: %v; the task definition is being registered", err)
			s.rejectQuietly = true
			return nil
		}
		s.reject(ecsv1alpha1.ReasonRevisionNotFound, "spec.taskDefinition: %v", err)
		return nil
	}
	if err != nil {
		return err
	}
	svcConstraints, err := placement.ParseConstraints(s.svc.Spec.PlacementConstraints)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.%v", err)
		return nil
	}
	tdConstraints, err := placement.ParseTaskDefinitionConstraints(target.Spec.PlacementConstraints)
	if err != nil {
		s.reject(ecsv1alpha1.ReasonInvalidSpec, "task definition %s: spec.%v", target.Ref, err)
		return nil
	}
	for i, lb := range s.svc.Spec.LoadBalancers {
		if !publishesPort(target.Spec, lb.ContainerName, lb.ContainerPort) {
			s.reject(ecsv1alpha1.ReasonInvalidSpec, "spec.loadBalancers[%d]: task definition %s has no container %q with a port mapping for containerPort %d",
				i, target.Ref, lb.ContainerName, lb.ContainerPort)
			return nil
		}
	}
	if msg := s.policyViolation(target.Ref, target.Spec); msg != "" {
		s.reject(ecsv1alpha1.ReasonContainerPolicyViolation, "%s", msg)
		return nil
	}
	s.target = target
	s.constraints = append(svcConstraints, tdConstraints...)
	return nil
}

// registrationPending reports whether the family's TaskDefinition exists and its
// current spec is about to be registered.
func (r *Reconciler) registrationPending(ctx context.Context, namespace, family string) bool {
	var td ecsv1alpha1.TaskDefinition
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family}, &td); err != nil {
		return false
	}
	return revision.RegistrationPending(&td)
}

func publishesPort(spec *ecsv1alpha1.TaskDefinitionSpec, container string, port int32) bool {
	for _, c := range spec.ContainerDefinitions {
		if c.Name != container {
			continue
		}
		for _, p := range c.PortMappings {
			if p.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

// deploymentID derives a deployment's ID from what defines it, so every manager
// computes the same ID (and so the same task names) for the same deployment.
func deploymentID(ref revision.Ref, forceToken string) string {
	sum := sha256.Sum256([]byte(ref.String() + "\x00" + forceToken))
	return "d" + hex.EncodeToString(sum[:])[:8]
}

// ensureDeployment makes the deployment that spec asks for PRIMARY, starting a new
// one when the resolved revision or the forceNewDeployment token changed.
func (r *Reconciler) ensureDeployment(ctx context.Context, s *state) error {
	s.adoptUnknownDeployments()
	if s.target != nil {
		id := deploymentID(s.target.Ref, s.svc.Spec.ForceNewDeployment)
		switch existing := s.findDeployment(id); {
		case existing == nil:
			s.startDeployment(id, s.target.Ref.String())
			ctrl.LoggerFrom(ctx).Info("started deployment", "deployment", id, "taskDefinition", s.target.Ref.String())
		case existing.Status == ecsv1alpha1.DeploymentPrimary:
		case existing.RolloutState == ecsv1alpha1.RolloutFailed:
			// Rolled back from: retrying the same failed deployment needs a spec change
			// (a new revision or forceNewDeployment token).
		default:
			// The spec went back to a deployment still in flight: promote it again.
			s.demotePrimary()
			existing.Status = ecsv1alpha1.DeploymentPrimary
			existing.RolloutState = ecsv1alpha1.RolloutInProgress
			existing.RolloutStateReason = "Deployment resumed: the service's task definition points at it again"
			existing.UpdatedAt = ptrTime(s.now)
		}
	}
	s.sortDeployments()
	for i := range s.svc.Status.Deployments {
		if s.svc.Status.Deployments[i].Status == ecsv1alpha1.DeploymentPrimary {
			s.primary = &s.svc.Status.Deployments[i]
		}
	}
	return nil
}

// targetDeployment is the deployment of the spec's resolved revision and
// forceNewDeployment token; nil when the spec does not resolve.
func (s *state) targetDeployment() *ecsv1alpha1.Deployment {
	if s.target == nil {
		return nil
	}
	return s.findDeployment(deploymentID(s.target.Ref, s.svc.Spec.ForceNewDeployment))
}

func (s *state) findDeployment(id string) *ecsv1alpha1.Deployment {
	for i := range s.svc.Status.Deployments {
		if s.svc.Status.Deployments[i].ID == id {
			return &s.svc.Status.Deployments[i]
		}
	}
	return nil
}

func (s *state) demotePrimary() {
	for i := range s.svc.Status.Deployments {
		d := &s.svc.Status.Deployments[i]
		if d.Status == ecsv1alpha1.DeploymentPrimary {
			d.Status = ecsv1alpha1.DeploymentActive
			d.UpdatedAt = ptrTime(s.now)
		}
	}
}

func (s *state) startDeployment(id, taskDefinition string) {
	s.demotePrimary()
	s.svc.Status.Deployments = append(s.svc.Status.Deployments, ecsv1alpha1.Deployment{
		ID:                 id,
		Status:             ecsv1alpha1.DeploymentPrimary,
		TaskDefinition:     taskDefinition,
		RolloutState:       ecsv1alpha1.RolloutInProgress,
		RolloutStateReason: "ECS deployment " + id + " in progress.",
		CreatedAt:          metav1.NewTime(s.now),
		UpdatedAt:          ptrTime(s.now),
	})
	s.newDeployment = true
	s.event(false, "DeploymentStarted", "Deploy", "started deployment %s of %s", id, taskDefinition)
}

// adoptUnknownDeployments records deployments that have tasks but no status entry
// (a status lost to a restore, or written by a manager that crashed first), so their
// tasks are retired rather than ignored.
func (s *state) adoptUnknownDeployments() {
	for _, t := range s.tasks {
		id := t.Labels[ecsv1alpha1.LabelDeployment]
		if id == "" || s.findDeployment(id) != nil {
			continue
		}
		s.svc.Status.Deployments = append(s.svc.Status.Deployments, ecsv1alpha1.Deployment{
			ID: id, Status: ecsv1alpha1.DeploymentActive, TaskDefinition: t.Spec.TaskDefinition,
			RolloutState: ecsv1alpha1.RolloutInProgress, CreatedAt: t.CreationTimestamp,
			RolloutStateReason: "Recovered from the deployment's tasks",
		})
	}
}

// sortDeployments keeps PRIMARY first, then newest first, and forgets old INACTIVE
// deployments (keeping failed ones, which stop a failed deployment from restarting).
func (s *state) sortDeployments() {
	deps := s.svc.Status.Deployments
	sort.SliceStable(deps, func(i, j int) bool {
		pi, pj := deps[i].Status == ecsv1alpha1.DeploymentPrimary, deps[j].Status == ecsv1alpha1.DeploymentPrimary
		if pi != pj {
			return pi
		}
		return deps[i].CreatedAt.After(deps[j].CreatedAt.Time)
	})
	const keepInactive = 5
	kept, inactive := deps[:0], 0
	for _, d := range deps {
		if d.Status == ecsv1alpha1.DeploymentInactive {
			inactive++
			if inactive > keepInactive && d.RolloutState != ecsv1alpha1.RolloutFailed {
				continue
			}
		}
		kept = append(kept, d)
	}
	if len(kept) > 32 { // the schema's bound
		kept = kept[:32]
	}
	s.svc.Status.Deployments = kept
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}
