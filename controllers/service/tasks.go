package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// LabelSlot is the slot of a service task: an ordinal for REPLICA services, a hash of
// the instance name for DAEMON services. With the deployment ID it makes task names
// deterministic.
const LabelSlot = "ecs.berth.dev/slot"

// classifyTasks decides the desired count and what each live task contributes.
func (r *Reconciler) classifyTasks(ctx context.Context, s *state) error {
	if s.primary == nil {
		return nil
	}
	daemon := s.svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon
	if daemon {
		s.eligible = s.eligibleInstances()
		s.desired = int32(len(s.eligible))
	} else if s.svc.Spec.DesiredCount != nil {
		s.desired = *s.svc.Spec.DesiredCount
	}
	checks := r.healthChecksByDeployment(ctx, s)
	healthGrace := time.Duration(0)
	if g := s.svc.Spec.HealthCheckGracePeriodSeconds; g != nil {
		healthGrace = time.Duration(*g) * time.Second
	}
	unreachableGrace := s.unreachableGrace()
	eligible := map[string]bool{}
	for _, name := range s.eligible {
		eligible[slotOfInstance(name)] = true
	}
	daemonSlotTaken := map[string]bool{}

	for _, t := range s.tasks {
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped || t.Status.LastStatus == ecsv1alpha1.TaskStopped {
			continue
		}
		dep := t.Labels[ecsv1alpha1.LabelDeployment]
		lt := liveTask{task: t, deployment: dep, plan: deployment.Task{
			Name:    t.Name,
			Primary: dep == s.primary.ID,
			Age:     int64(s.now.Sub(t.CreationTimestamp.Time) / time.Second),
			Health:  health(t, checks[dep]),
		}}
		s.judgeInstance(&lt, unreachableGrace)
		s.judgeHealth(&lt, healthGrace)
		if daemon && !lt.plan.StopNow {
			s.judgeDaemonTask(&lt, eligible, daemonSlotTaken)
		}
		s.live = append(s.live, lt)
	}
	return nil
}

// judgeDaemonTask stops a DAEMON task whose instance no longer qualifies, and a
// second primary task on one instance.
func (s *state) judgeDaemonTask(lt *liveTask, eligible, taken map[string]bool) {
	slot := lt.task.Labels[LabelSlot]
	switch {
	case !eligible[slot] && s.instanceReachable(lt.task.Spec.ContainerInstance):
		lt.plan.StopNow = true
		lt.stopCode, lt.stopReason = ecsv1alpha1.StopServiceSchedulerInitiated, "The instance no longer matches the daemon service"
	case lt.plan.Primary && taken[slot]:
		lt.plan.StopNow = true
		lt.stopCode, lt.stopReason = ecsv1alpha1.StopServiceSchedulerInitiated, "A second daemon task on one instance"
	case lt.plan.Primary && !lt.plan.Replace:
		taken[slot] = true
	}
}

// health maps a task's reported state to its contribution to a deployment: RUNNING
// and serving (taskrules.Serving: HEALTHY, or UNKNOWN because no essential container
// of its revision has a check) is healthy; RUNNING otherwise is not (yet) healthy.
func health(t *ecsv1alpha1.Task, essentialChecks bool) deployment.Health {
	switch {
	case t.Status.LastStatus != ecsv1alpha1.TaskRunning:
		return deployment.Pending
	case taskrules.Serving(t.Status.LastStatus, t.Status.HealthStatus, essentialChecks):
		return deployment.Healthy
	default:
		return deployment.Unhealthy
	}
}

// judgeInstance handles tasks on instances that are draining, gone or unreachable.
func (s *state) judgeInstance(lt *liveTask, unreachableGrace time.Duration) {
	name := lt.task.Spec.ContainerInstance
	if name == "" {
		return
	}
	inst, ok := s.instances[name]
	switch {
	case !ok:
		lt.plan.StopNow = true
		lt.stopCode, lt.stopReason = ecsv1alpha1.StopInstanceUnreachable, fmt.Sprintf("Container instance %s was deregistered", name)
	case !inst.Status.AgentConnected:
		since := disconnectedSince(inst)
		if deadline := since.Add(unreachableGrace); !s.now.Before(deadline) {
			lt.plan.StopNow = true
			lt.stopCode, lt.stopReason = ecsv1alpha1.StopInstanceUnreachable,
				fmt.Sprintf("Container instance %s stopped heartbeating %s ago", name, s.now.Sub(since).Round(time.Second))
		} else {
			s.requeueAt(deadline)
		}
	case inventory.Status(inst) == ecsv1alpha1.InstanceDraining:
		if lt.plan.Health == deployment.Pending {
			lt.plan.StopNow = true
			lt.stopCode, lt.stopReason = ecsv1alpha1.StopServiceSchedulerInitiated, fmt.Sprintf("Container instance %s is DRAINING", name)
		} else {
			lt.plan.Replace = true
			lt.stopReason = fmt.Sprintf("Container instance %s is DRAINING", name)
		}
	}
}

// judgeHealth replaces tasks whose health checks fail past the grace period.
func (s *state) judgeHealth(lt *liveTask, grace time.Duration) {
	t := lt.task
	if lt.plan.StopNow || t.Status.HealthStatus != ecsv1alpha1.HealthUnhealthy || t.Status.LastStatus != ecsv1alpha1.TaskRunning {
		return
	}
	started := t.CreationTimestamp.Time
	if t.Status.StartedAt != nil {
		started = t.Status.StartedAt.Time
	}
	if deadline := started.Add(grace); s.now.Before(deadline) {
		s.requeueAt(deadline)
		return
	}
	lt.plan.StopNow = true
	lt.stopCode, lt.stopReason = ecsv1alpha1.StopServiceSchedulerInitiated, unhealthyStopReason
}

// disconnectedSince is when the manager saw the instance's agent go quiet: the
// Connected condition's transition, timed on the manager's clock.
func disconnectedSince(inst *ecsv1alpha1.ContainerInstance) time.Time {
	for _, c := range inst.Status.Conditions {
		if c.Type == ecsv1alpha1.InstanceConditionConnected && c.Status == metav1.ConditionFalse {
			return c.LastTransitionTime.Time
		}
	}
	return inst.CreationTimestamp.Time
}

func (s *state) instanceReachable(name string) bool {
	inst, ok := s.instances[name]
	return name == "" || (ok && inst.Status.AgentConnected)
}

func (s *state) unreachableGrace() time.Duration {
	if g := s.svc.Spec.InstanceUnreachableGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if s.cluster != nil && s.cluster.Spec.InstanceUnreachableGracePeriodSeconds != nil {
		return time.Duration(*s.cluster.Spec.InstanceUnreachableGracePeriodSeconds) * time.Second
	}
	return defaultUnreachableGrace
}

// eligibleInstances are the instances a DAEMON service runs on: ACTIVE, connected,
// and satisfying its memberOf constraints. Sorted for deterministic choices.
func (s *state) eligibleInstances() []string {
	var out []string
	for name, inst := range s.instances {
		if inventory.Status(inst) != ecsv1alpha1.InstanceActive || !inst.Status.AgentConnected {
			continue
		}
		target := inventory.Target(inst)
		ok := true
		for _, c := range s.constraints {
			if c.Expression != nil && !c.Expression.Eval(target) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// healthChecksByDeployment reports, per deployment, whether an essential container of
// its revision has a health check, which decides whether RUNNING alone makes a task
// healthy.
func (r *Reconciler) healthChecksByDeployment(ctx context.Context, s *state) map[string]bool {
	out := map[string]bool{}
	for _, d := range s.svc.Status.Deployments {
		ref, err := revision.ParseRef(d.TaskDefinition)
		if err != nil {
			continue
		}
		res, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
		if err != nil {
			ctrl.LoggerFrom(ctx).V(1).Info("cannot resolve a deployment's revision; treating RUNNING as healthy", "deployment", d.ID, "err", err.Error())
			continue
		}
		out[d.ID] = taskrules.EssentialHealthChecks(res.Spec)
	}
	return out
}

// failed reports whether a stopped task counts against its deployment's circuit
// breaker: it failed to start, its essential container exited, or the service stopped
// it for failing health checks.
func failed(t *ecsv1alpha1.Task) bool {
	if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped && t.Spec.StopReason == unhealthyStopReason {
		return true
	}
	if t.Status.LastStatus != ecsv1alpha1.TaskStopped {
		return false
	}
	switch t.Status.StopCode {
	case ecsv1alpha1.StopTaskFailedToStart, ecsv1alpha1.StopEssentialContainerExited:
		return true
	}
	return false
}

// judgeDeployments moves deployments through their rollout states: the circuit
// breaker (and rollback), completion, and retirement of drained deployments.
func (r *Reconciler) judgeDeployments(ctx context.Context, s *state) error {
	if s.primary == nil {
		return nil
	}
	failures := map[string]int32{}
	for _, t := range s.tasks {
		if failed(t) {
			failures[t.Labels[ecsv1alpha1.LabelDeployment]]++
		}
	}
	for i := range s.svc.Status.Deployments {
		s.svc.Status.Deployments[i].FailedTasks = failures[s.svc.Status.Deployments[i].ID]
	}
	p := s.primary
	if p.RolloutState == ecsv1alpha1.RolloutInProgress {
		cb := s.svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker
		threshold := deployment.CircuitBreakerThreshold(s.desired)
		switch {
		case cb != nil && cb.Enable && p.FailedTasks >= threshold:
			s.tripCircuitBreaker(ctx, threshold, cb.Rollback)
		case s.rolloutDone():
			p.RolloutState = ecsv1alpha1.RolloutCompleted
			p.RolloutStateReason = "ECS deployment " + p.ID + " completed."
			p.UpdatedAt = ptrTime(s.now)
			s.event(false, ecsv1alpha1.ReasonDeploymentCompleted, "Deploy", "deployment %s of %s completed", p.ID, p.TaskDefinition)
		}
	}
	liveBy := map[string]int{}
	for _, lt := range s.live {
		liveBy[lt.deployment]++
	}
	for i := range s.svc.Status.Deployments {
		d := &s.svc.Status.Deployments[i]
		if d.Status == ecsv1alpha1.DeploymentActive && liveBy[d.ID] == 0 {
			d.Status = ecsv1alpha1.DeploymentInactive
			d.UpdatedAt = ptrTime(s.now)
		}
	}
	return nil
}

// rolloutDone: every desired primary task is healthy and nothing else is live.
func (s *state) rolloutDone() bool {
	healthy := int32(0)
	for _, lt := range s.live {
		if !lt.plan.Primary || lt.plan.Replace || lt.plan.StopNow || lt.plan.Health != deployment.Healthy {
			return false
		}
		healthy++
	}
	return healthy == s.desired
}

func (s *state) tripCircuitBreaker(ctx context.Context, threshold int32, rollback bool) {
	p := s.primary
	p.RolloutState = ecsv1alpha1.RolloutFailed
	p.RolloutStateReason = fmt.Sprintf("ECS deployment circuit breaker: %d tasks failed to start or stay healthy (threshold %d).", p.FailedTasks, threshold)
	p.UpdatedAt = ptrTime(s.now)
	ctrl.LoggerFrom(ctx).Info("deployment failed", "deployment", p.ID, "failedTasks", p.FailedTasks, "threshold", threshold)
	s.event(true, ecsv1alpha1.ReasonDeploymentFailed, "Deploy", "deployment %s of %s failed: %d tasks failed (circuit breaker threshold %d)",
		p.ID, p.TaskDefinition, p.FailedTasks, threshold)
	if !rollback {
		return
	}
	var back *ecsv1alpha1.Deployment
	for i := range s.svc.Status.Deployments {
		d := &s.svc.Status.Deployments[i]
		if d.ID != p.ID && d.RolloutState == ecsv1alpha1.RolloutCompleted && (back == nil || d.CreatedAt.After(back.CreatedAt.Time)) {
			back = d
		}
	}
	if back == nil {
		s.event(true, ecsv1alpha1.ReasonCircuitBreakerRollback, "Rollback", "no completed deployment to roll back to; deployment %s stays failed", p.ID)
		return
	}
	p.Status = ecsv1alpha1.DeploymentActive
	back.Status = ecsv1alpha1.DeploymentPrimary
	back.RolloutState = ecsv1alpha1.RolloutInProgress
	back.RolloutStateReason = "Rolling back to " + back.TaskDefinition + " after deployment " + p.ID + " failed."
	back.UpdatedAt = ptrTime(s.now)
	s.primary = back
	s.event(true, ecsv1alpha1.ReasonCircuitBreakerRollback, "Rollback", "rolling back from %s to deployment %s of %s", p.ID, back.ID, back.TaskDefinition)
	// Tasks of the failed deployment are now old tasks to retire.
	for i := range s.live {
		s.live[i].plan.Primary = s.live[i].deployment == back.ID
	}
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
	seen := make(map[string]bool, len(s.tasks)) // name -> asked to stop
	for _, t := range s.tasks {
		seen[t.Name] = t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped
	}
	if !r.Expectations.Satisfied(key, s.now, func(name string) (bool, bool) { stopping, ok := seen[name]; return ok, stopping }) {
		// Our last writes are not in the cache yet; acting now would repeat them.
		// Their watch events requeue the service; the deadline is a safety net.
		s.requeueAt(s.now.Add(r.Expectations.TTL))
		return nil
	}
	dc := s.svc.Spec.DeploymentConfiguration
	in := deployment.Input{
		Desired:               s.desired,
		MinimumHealthyPercent: valueOr(dc.MinimumHealthyPercent, 100),
		MaximumPercent:        valueOr(dc.MaximumPercent, 200),
		Frozen:                s.primary.RolloutState == ecsv1alpha1.RolloutFailed,
	}
	byName := map[string]*liveTask{}
	for i := range s.live {
		in.Tasks = append(in.Tasks, s.live[i].plan)
		byName[s.live[i].task.Name] = &s.live[i]
	}
	s.plan = deployment.Next(in)
	defer s.reportTaskWrites(ctx)
	for _, name := range s.plan.Stop {
		lt := byName[name]
		code, reason := lt.stopCode, lt.stopReason
		if code == "" {
			code = ecsv1alpha1.StopServiceSchedulerInitiated
		}
		if reason == "" {
			if lt.plan.Primary {
				reason = "Scaling in: the service needs fewer tasks"
			} else {
				reason = "Replaced by deployment " + s.primary.ID
			}
		}
		if err := r.stopTask(ctx, lt.task, code, reason); err != nil {
			r.Expectations.ExpectStops(key, s.stopped, s.now)
			return err
		}
		s.stopped = append(s.stopped, name)
	}
	r.Expectations.ExpectStops(key, s.stopped, s.now)
	return r.launch(ctx, s, key)
}

// reportTaskWrites logs and announces the tasks this pass created and stopped, also
// when a later write of the pass failed.
func (s *state) reportTaskWrites(ctx context.Context) {
	if len(s.started) > 0 {
		ctrl.LoggerFrom(ctx).Info("started tasks", "count", len(s.started), "deployment", s.primary.ID)
		s.writtenEvent("TasksStarted", "Scale", "has started %d tasks: %s", len(s.started), listNames(s.started))
	}
	if len(s.stopped) > 0 {
		ctrl.LoggerFrom(ctx).Info("stopped tasks", "count", len(s.stopped))
		s.writtenEvent("TasksStopped", "Scale", "has stopped %d tasks: %s", len(s.stopped), listNames(s.stopped))
	}
}

// launch creates the tasks the plan starts, unless the deployment's failures call
// for a pause or the cluster's container policy refuses its revision.
func (r *Reconciler) launch(ctx context.Context, s *state, key string) error {
	start := int(s.plan.Start)
	if start > 0 {
		if refused := r.primaryRefused(ctx, s); refused != "" {
			// Tightened since the deployment started: what runs keeps running (a Cluster
			// watch requeues the service when the policy changes again).
			s.plan.Blocked = refused
			start = 0
		} else if until := s.launchBackoff(); s.now.Before(until) {
			// The deployment's tasks keep failing: relaunching at once would only fail
			// faster (ECS throttles such services the same way).
			s.plan.Blocked = fmt.Sprintf("tasks keep failing; next launch after %s", until.Format(time.RFC3339))
			s.requeueAt(until)
			start = 0
		}
	}
	created, err := slowStartBatch(s.newTasks(start), func(t *ecsv1alpha1.Task) error {
		err := r.Client.Create(ctx, t, client.FieldOwner(ecsv1alpha1.FieldManagerManager))
		if apierrors.IsAlreadyExists(err) {
			// Created by us before a restart, or by another manager: the name is the
			// fence. The cache will show it shortly.
			return nil
		}
		return err
	})
	s.started = append(s.started, created...)
	r.Expectations.ExpectCreates(key, created, s.now)
	if err != nil {
		return fmt.Errorf("creating tasks: %w", err)
	}
	return nil
}

// Launch backoff after repeated failures: free for the first failures, then doubling
// from launchBackoffBase up to launchBackoffMax.
const (
	launchBackoffFree   = 3
	launchBackoffBase   = 5 * time.Second
	launchBackoffMax    = 5 * time.Minute
	launchBackoffWindow = 15 * time.Minute
)

// launchBackoff is when the primary deployment may launch tasks again, given the
// failures of its tasks in the last launchBackoffWindow.
func (s *state) launchBackoff() time.Time {
	var recent int
	var last time.Time
	for _, t := range s.tasks {
		if t.Labels[ecsv1alpha1.LabelDeployment] != s.primary.ID || !failed(t) {
			continue
		}
		at := stoppedAt(t)
		if s.now.Sub(at) > launchBackoffWindow {
			continue
		}
		recent++
		if at.After(last) {
			last = at
		}
	}
	if recent < launchBackoffFree {
		return time.Time{}
	}
	delay := launchBackoffBase << min(recent-launchBackoffFree, 10)
	if delay > launchBackoffMax {
		delay = launchBackoffMax
	}
	return last.Add(delay)
}

// slowStartBatch creates tasks in parallel batches of 1, 2, 4, ... (as the ReplicaSet
// controller does): a large scale-up runs at the apiserver's pace, while a create that
// fails (quota, an admission webhook, a bad spec) fails after one call, not a thousand.
// It returns the names it created and the first error.
func slowStartBatch(tasks []*ecsv1alpha1.Task, create func(*ecsv1alpha1.Task) error) ([]string, error) {
	const maxBatch = 64
	var created []string
	for next, batch := 0, 1; next < len(tasks); batch = min(2*batch, maxBatch) {
		end := min(next+batch, len(tasks))
		errs := make([]error, end-next)
		var wg sync.WaitGroup
		for i := next; i < end; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs[i-next] = create(tasks[i])
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return created, err
			}
			created = append(created, tasks[next+i].Name)
		}
		next = end
	}
	return created, nil
}

func valueOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func listNames(names []string) string {
	const max = 10
	if len(names) <= max {
		return strings.Join(names, " ")
	}
	return strings.Join(names[:max], " ") + fmt.Sprintf(" and %d more", len(names)-max)
}

// newTasks builds n tasks of the primary deployment with deterministic names.
func (s *state) newTasks(n int) []*ecsv1alpha1.Task {
	if n <= 0 {
		return nil
	}
	attempts := s.nextAttempts()
	instanceOf := map[string]string{}
	for _, inst := range s.eligible {
		instanceOf[slotOfInstance(inst)] = inst
	}
	slots := s.freeSlots(n)
	out := make([]*ecsv1alpha1.Task, 0, len(slots))
	for _, slot := range slots {
		out = append(out, s.buildTask(slot, attempts[slot], instanceOf[slot]))
	}
	return out
}

// nextAttempts is, per slot of the primary deployment, the attempt number its next
// task takes: one more than any task of that slot still stored.
func (s *state) nextAttempts() map[string]int {
	attempts := map[string]int{}
	for _, t := range s.tasks {
		if t.Labels[ecsv1alpha1.LabelDeployment] != s.primary.ID {
			continue
		}
		slot := t.Labels[LabelSlot]
		if a, err := strconv.Atoi(t.Name[strings.LastIndexByte(t.Name, '-')+1:]); err == nil && a+1 > attempts[slot] {
			attempts[slot] = a + 1
		}
	}
	return attempts
}

// freeSlots picks up to n slots no live primary task holds: the lowest ordinals for
// REPLICA services, the eligible instances without a task for DAEMON services.
func (s *state) freeSlots(n int) []string {
	taken := map[string]bool{}
	for _, lt := range s.live {
		if lt.plan.Primary && !lt.plan.StopNow && !stoppedIn(s.stopped, lt.task.Name) {
			taken[lt.task.Labels[LabelSlot]] = true
		}
	}
	var slots []string
	if s.svc.Spec.SchedulingStrategy == ecsv1alpha1.SchedulingDaemon {
		for _, inst := range s.eligible {
			if slot := slotOfInstance(inst); !taken[slot] && len(slots) < n {
				slots = append(slots, slot)
			}
		}
		return slots
	}
	for i := 0; len(slots) < n; i++ {
		if slot := strconv.Itoa(i); !taken[slot] {
			slots = append(slots, slot)
		}
	}
	return slots
}

func stoppedIn(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func (s *state) buildTask(slot string, attempt int, daemonInstance string) *ecsv1alpha1.Task {
	svc := s.svc
	t := &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-%s-%s-%d", svc.Name, s.primary.ID, slot, attempt),
			Namespace: svc.Namespace,
			Labels: map[string]string{
				ecsv1alpha1.LabelService:    svc.Name,
				ecsv1alpha1.LabelDeployment: s.primary.ID,
				LabelSlot:                   slot,
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))},
		},
		Spec: ecsv1alpha1.TaskSpec{
			Cluster:              svc.Spec.Cluster,
			TaskDefinition:       s.primary.TaskDefinition,
			DesiredStatus:        ecsv1alpha1.DesiredRunning,
			Group:                "service:" + svc.Name,
			StartedBy:            "ecs-svc/" + s.primary.ID,
			PlacementConstraints: svc.Spec.PlacementConstraints,
			PlacementStrategy:    svc.Spec.PlacementStrategy,
		},
	}
	if daemonInstance != "" {
		// The scheduler still checks that the task fits; the constraint pins where.
		t.Spec.PlacementConstraints = append(append([]ecsv1alpha1.PlacementConstraint(nil), t.Spec.PlacementConstraints...),
			ecsv1alpha1.PlacementConstraint{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "instanceId == " + daemonInstance})
	}
	return t
}

// slotOfInstance is a DAEMON task's slot: a short hash of its instance's name, which
// may be too long for a label value or a task name.
func slotOfInstance(instance string) string {
	sum := sha256.Sum256([]byte(instance))
	return "i" + hex.EncodeToString(sum[:])[:8]
}

// stopTask asks a task to stop with a merge patch of only the stop fields, leaving the
// rest of the object (and the cached copy) alone.
func (r *Reconciler) stopTask(ctx context.Context, t *ecsv1alpha1.Task, code ecsv1alpha1.StopCode, reason string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{
		"desiredStatus": ecsv1alpha1.DesiredStopped, "stopCode": code, "stopReason": taskrules.TruncateReason(reason),
	}})
	if err != nil {
		return err
	}
	target := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}}
	if err := r.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ecsv1alpha1.FieldManagerManager)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("stopping task %s: %w", t.Name, err)
	}
	return nil
}

// collectStoppedTasks deletes the oldest stopped tasks beyond the service's history
// limit, keeping the most recent, and any of a deployment still in progress (the
// circuit breaker counts them).
func (r *Reconciler) collectStoppedTasks(ctx context.Context, s *state) error {
	limit := int(valueOr(s.svc.Spec.StoppedTaskHistoryLimit, defaultStoppedTaskHistoryLimit))
	if limit < 1 {
		limit = 1
	}
	var stopped []*ecsv1alpha1.Task
	for _, t := range s.tasks {
		if t.Status.LastStatus == ecsv1alpha1.TaskStopped && t.DeletionTimestamp.IsZero() {
			stopped = append(stopped, t)
		}
	}
	sort.Slice(stopped, func(i, j int) bool { return stoppedAt(stopped[i]).After(stoppedAt(stopped[j])) })
	exempt := exemptFromCollection(s, stopped)
	var collect []*ecsv1alpha1.Task
	kept := 0
	for _, t := range stopped {
		if exempt[t.Name] {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		collect = append(collect, t)
	}
	for _, t := range collect {
		uid := t.UID
		if err := r.Client.Delete(ctx, &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: t.Namespace}},
			client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting stopped task %s: %w", t.Name, err)
		}
	}
	return nil
}

// exemptFromCollection: the circuit breaker counts the failed tasks of a deployment in
// progress, so up to its threshold of them (newest first) are kept whatever the limit.
func exemptFromCollection(s *state, stoppedNewestFirst []*ecsv1alpha1.Task) map[string]bool {
	exempt := map[string]bool{}
	cb := s.svc.Spec.DeploymentConfiguration.DeploymentCircuitBreaker
	if cb == nil || !cb.Enable || s.primary == nil || s.primary.RolloutState != ecsv1alpha1.RolloutInProgress {
		return exempt
	}
	budget := deployment.CircuitBreakerThreshold(s.desired)
	for _, t := range stoppedNewestFirst {
		if budget > 0 && t.Labels[ecsv1alpha1.LabelDeployment] == s.primary.ID && failed(t) {
			exempt[t.Name] = true
			budget--
		}
	}
	return exempt
}

func stoppedAt(t *ecsv1alpha1.Task) time.Time {
	if t.Status.StoppedAt != nil {
		return t.Status.StoppedAt.Time
	}
	return t.CreationTimestamp.Time
}
