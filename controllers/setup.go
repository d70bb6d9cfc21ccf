// Package controllers wires Berth's controllers into a manager. Each kind has its own
// package below this one; shared machinery (placement, revisions, indexes) lives in
// internal/.
package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/controllers/autoscaling"
	"github.com/berthdev/berth/controllers/cluster"
	"github.com/berthdev/berth/controllers/containerinstance"
	"github.com/berthdev/berth/controllers/endpoints"
	"github.com/berthdev/berth/controllers/scheduler"
	"github.com/berthdev/berth/controllers/service"
	"github.com/berthdev/berth/controllers/task"
	"github.com/berthdev/berth/controllers/taskdefinition"
	"github.com/berthdev/berth/controllers/utilization"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/usage"
)

// Defaults of Options' zero values.
const (
	// DefaultSchedulerWorkers is how many tasks the scheduler places in parallel
	// (scheduler.DefaultWorkers, 64). Placing a task is two writes in a row (the
	// resolved revision, then the binding), so the scheduler is bound by the
	// apiserver's latency, not its CPU: `make bench` (PlacementThroughput, 500
	// instances and 5,000 tasks on 2 cores) bound 45 tasks/s with 16 workers, 57
	// with 32, 61 with 64, 73 with 128, at about the same apiserver CPU. 64 keeps the
	// in-flight writes well under the apiserver's default limits.
	DefaultSchedulerWorkers = scheduler.DefaultWorkers
	// DefaultServiceWorkers is how many services reconcile in parallel.
	DefaultServiceWorkers = 4
	// DefaultAutoScalingStaleAfter: a service's utilization measured longer ago is
	// no reading for its auto scaling (autoscaling.DefaultStaleAfter, 3m).
	DefaultAutoScalingStaleAfter = autoscaling.DefaultStaleAfter
	// DefaultAutoScalingInterval is how often customized auto scaling metrics are
	// read (autoscaling.DefaultEvaluationInterval, 1m).
	DefaultAutoScalingInterval = autoscaling.DefaultEvaluationInterval
)

// Options tune the controllers; zero values mean the defaults.
type Options struct {
	// HeartbeatGrace is how long an agent may go without renewing its lease before
	// its instance is disconnected (default 40s).
	HeartbeatGrace time.Duration
	// SchedulerWorkers is how many tasks are placed in parallel
	// (DefaultSchedulerWorkers).
	SchedulerWorkers int
	// ServiceWorkers is how many services reconcile in parallel
	// (DefaultServiceWorkers).
	ServiceWorkers int
	// ServiceMaxWritesPerPass bounds a service pass's creates and stops
	// (service.DefaultMaxWritesPerPass when 0).
	ServiceMaxWritesPerPass int
	// UtilizationInterval bounds how often each Service's, TaskDefinition's and
	// Cluster's status.utilization is written (utilization.DefaultInterval).
	UtilizationInterval time.Duration
	// AutoScalingStaleAfter: a utilization older than this is no reading for
	// service auto scaling (DefaultAutoScalingStaleAfter).
	AutoScalingStaleAfter time.Duration
	// AutoScalingInterval is how often customized auto scaling metrics are read
	// (DefaultAutoScalingInterval).
	AutoScalingInterval time.Duration
}

// withDefaults fills the zero values.
func (o Options) withDefaults() Options {
	if o.SchedulerWorkers == 0 {
		o.SchedulerWorkers = DefaultSchedulerWorkers
	}
	if o.ServiceWorkers == 0 {
		o.ServiceWorkers = DefaultServiceWorkers
	}
	if o.AutoScalingStaleAfter == 0 {
		o.AutoScalingStaleAfter = DefaultAutoScalingStaleAfter
	}
	if o.AutoScalingInterval == 0 {
		o.AutoScalingInterval = DefaultAutoScalingInterval
	}
	return o
}

// Setup registers the cache indexes and every controller with mgr.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	o = o.withDefaults()
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("registering cache indexes: %w", err)
	}
	// One resolver for the scheduler, the service and the endpoints controllers, so a
	// revision is decoded once for all. It forgets a revision when its
	// ControllerRevision is deleted.
	resolver := revision.NewResolver(mgr.GetClient())
	revisions, err := mgr.GetCache().GetInformer(ctx, &appsv1.ControllerRevision{})
	if err != nil {
		return fmt.Errorf("watching ControllerRevisions: %w", err)
	}
	if err := revision.ForgetOnDelete(revisions, resolver); err != nil {
		return fmt.Errorf("watching ControllerRevision deletions: %w", err)
	}
	sched := &scheduler.Scheduler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-scheduler"),
		Resolver: resolver, Engine: placement.NewEngine(), MaxConcurrentReconciles: o.SchedulerWorkers,
	}
	if err := sched.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up the scheduler: %w", err)
	}
	// One count of tasks for the TaskDefinition and Cluster controllers, fed by one
	// handler on the Task informer.
	tasks := usage.NewTracker()
	util := &utilization.Writer{Client: mgr.GetClient(), Resolver: resolver, Interval: o.UtilizationInterval}
	if err := util.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the utilization writer: %w", err)
	}
	for name, c := range map[string]interface{ SetupWithManager(ctrl.Manager) error }{
		"taskdefinition": &taskdefinition.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-taskdefinition"), Usage: tasks},
		// The scheduler places service tasks before the service controller creates them.
		"service": &service.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-service"),
			Resolver: resolver, MaxConcurrentReconciles: o.ServiceWorkers, MaxWritesPerPass: o.ServiceMaxWritesPerPass, Placer: sched},
		"task": &task.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-task")},
		"containerinstance": &containerinstance.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-containerinstance"),
			Grace: o.HeartbeatGrace},
		"cluster":   &cluster.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-cluster"), Usage: tasks},
		"endpoints": &endpoints.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("berth-endpoints"), Resolver: resolver},
		"autoscaling": &autoscaling.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
			Recorder: mgr.GetEventRecorder("berth-autoscaler"), StaleAfter: o.AutoScalingStaleAfter, EvaluationInterval: o.AutoScalingInterval},
	} {
		if err := c.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", name, err)
		}
	}
	return nil
}
