package service

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
	"github.com/berthdev/berth/internal/inventory"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// Classification: what each live task (desired RUNNING and not STOPPED) contributes
// to its deployment, and which must go whatever the deployment's bounds. Judging a
// task's instance comes first: a task on an instance that is gone needs no health
// verdict.

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
	} else if as := s.svc.Spec.AutoScaling; as != nil {
		// An auto scaled service whose manifest leaves desiredCount to the auto
		// scaler starts at its minimum until the auto scaler first sets it.
		s.desired = as.MinCapacity
	}
	checks := r.healthChecksByDeployment(ctx, s)
	healthGrace := s.healthGrace()
	unreachableGrace := s.unreachableGrace()
	slots := newDaemonSlots(s.eligible)

	for _, t := range s.tasks {
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped || t.Status.LastStatus == ecsv1alpha1.TaskStopped {
			continue
		}
		lt := s.liveTask(t, checks)
		s.judgeInstance(&lt, unreachableGrace)
		s.judgeHealth(&lt, healthGrace)
		if daemon && !lt.plan.StopNow {
			s.judgeDaemonTask(&lt, slots)
		}
		s.live = append(s.live, lt)
	}
	return nil
}

// liveTask is a task's entry in the plan before any judgment: its deployment, age
// and health.
func (s *state) liveTask(t *ecsv1alpha1.Task, essentialChecks map[string]bool) liveTask {
	dep := t.Labels[ecsv1alpha1.LabelDeployment]
	return liveTask{task: t, deployment: dep, plan: deployment.Task{
		Name:    t.Name,
		Primary: dep == s.primary.ID,
		Age:     int64(s.now.Sub(t.CreationTimestamp.Time) / time.Second),
		Health:  health(t, essentialChecks[dep]),
	}}
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

// judgeInstance handles tasks on instances that are draining, gone or unreachable: a
// task on a deregistered instance, or on one unreachable past the grace period, is
// stopped at once (it serves no one; its agent stops it if it returns); a task on a
// DRAINING instance is stopped at once while pending, and replaced within the
// deployment's bounds once running.
func (s *state) judgeInstance(lt *liveTask, unreachableGrace time.Duration) {
	name := lt.task.Spec.ContainerInstance
	if name == "" {
		return
	}
	inst, ok := s.instances[name]
	switch {
	case !ok:
		lt.stopNow(ecsv1alpha1.StopInstanceUnreachable, fmt.Sprintf("Container instance %s was deregistered", name))
	case !inst.Status.AgentConnected:
		since := disconnectedSince(inst)
		if deadline := since.Add(unreachableGrace); s.now.Before(deadline) {
			s.requeueAt(deadline)
			return
		}
		lt.stopNow(ecsv1alpha1.StopInstanceUnreachable,
			fmt.Sprintf("Container instance %s stopped heartbeating %s ago", name, s.now.Sub(since).Round(time.Second)))
	case inventory.Status(inst) == ecsv1alpha1.InstanceDraining:
		reason := fmt.Sprintf("Container instance %s is DRAINING", name)
		if lt.plan.Health == deployment.Pending {
			lt.stopNow(ecsv1alpha1.StopServiceSchedulerInitiated, reason)
			return
		}
		lt.plan.Replace = true
		lt.stopReason = reason
	}
}

// judgeHealth stops tasks whose health checks fail past the grace period, counted
// from when the task started.
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
	lt.stopNow(ecsv1alpha1.StopServiceSchedulerInitiated, unhealthyStopReason)
}

// stopNow marks a task to stop whatever the deployment's bounds.
func (lt *liveTask) stopNow(code ecsv1alpha1.StopCode, reason string) {
	lt.plan.StopNow = true
	lt.stopCode, lt.stopReason = code, reason
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

// instanceReachable: the task is unplaced, or its instance is known and connected.
func (s *state) instanceReachable(name string) bool {
	inst, ok := s.instances[name]
	return name == "" || (ok && inst.Status.AgentConnected)
}

// unreachableGrace is the service's instanceUnreachableGracePeriodSeconds, else its
// cluster's, else the default.
func (s *state) unreachableGrace() time.Duration {
	if g := s.svc.Spec.InstanceUnreachableGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if s.cluster != nil && s.cluster.Spec.InstanceUnreachableGracePeriodSeconds != nil {
		return time.Duration(*s.cluster.Spec.InstanceUnreachableGracePeriodSeconds) * time.Second
	}
	return defaultUnreachableGrace
}

// healthGrace is the service's healthCheckGracePeriodSeconds (none by default).
func (s *state) healthGrace() time.Duration {
	return time.Duration(valueOr(s.svc.Spec.HealthCheckGracePeriodSeconds, 0)) * time.Second
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
