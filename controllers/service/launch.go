package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/deployment"
)

// Launching: the plan's starts are created in slow-start batches, unless the
// cluster's container policy refuses the primary revision or its tasks keep failing
// (launch backoff, as ECS throttles such services).

// Launch backoff after repeated failures: free for the first failures, then doubling
// from launchBackoffBase up to launchBackoffMax.
const (
	launchBackoffFree   = 3
	launchBackoffBase   = 5 * time.Second
	launchBackoffMax    = 5 * time.Minute
	launchBackoffWindow = 15 * time.Minute
)

// launch creates the tasks the plan starts, unless the deployment's failures call
// for a pause or the cluster's container policy refuses its revision.
func (r *Reconciler) launch(ctx context.Context, s *state, key string) error {
	start := min(int(s.plan.Start), r.writesPerPass())
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
	tasks, err := r.placeNew(ctx, s, s.newTasks(start), int32(max(s.plan.Start, 0)))
	if err != nil {
		return err
	}
	created, err := slowStartBatch(tasks, func(t *ecsv1alpha1.Task) error {
		err := r.Client.Create(ctx, t, client.FieldOwner(ecsv1alpha1.FieldManagerManager))
		if apierrors.IsAlreadyExists(err) {
			// Created by us before a restart, or by another manager: the name is the
			// fence. The cache will show it shortly, and with it where it runs.
			return nil
		}
		return err
	})
	made, notMade := splitCreated(tasks, created)
	if r.Placer != nil {
		// The room of every task not created is released: the one that failed and the
		// batches after it, which never ran.
		for _, t := range notMade {
			r.Placer.Unplace(t)
		}
	}
	s.started = append(s.started, created...)
	s.countInstances(made)
	r.Expectations.ExpectCreates(key, created, s.now)
	if err != nil {
		return fmt.Errorf("creating tasks: %w", err)
	}
	return nil
}

// launchBackoff is when the primary deployment may launch tasks again, given the
// failures of its tasks that stopped in the last launchBackoffWindow.
func (s *state) launchBackoff() time.Time {
	var recent int
	var last time.Time
	for _, t := range s.tasks {
		if t.Labels[ecsv1alpha1.LabelDeployment] != s.primary.ID || !failed(t) {
			continue
		}
		at := deployment.StoppedAt(t)
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
	return last.Add(launchBackoffDelay(recent))
}

// launchBackoffDelay is the pause after the latest of recent failures.
func launchBackoffDelay(recent int) time.Duration {
	if recent < launchBackoffFree {
		return 0
	}
	return min(launchBackoffBase<<min(recent-launchBackoffFree, 10), launchBackoffMax)
}

// launchBackoffKeep is how many recent failures the backoff tells apart: from this
// many on, the delay is launchBackoffMax. Collection keeps that many (collect.go), so
// a small stoppedTaskHistoryLimit or retention period cannot reset the backoff.
func launchBackoffKeep() int32 {
	n := launchBackoffFree
	for launchBackoffDelay(n) < launchBackoffMax {
		n++
	}
	return int32(n)
}

// slowStartBatch creates tasks in parallel batches of 1, 2, 4, ... (as the ReplicaSet
// controller does): a large scale-up runs at the apiserver's pace, while a create that
// fails (quota, an admission webhook, a bad spec) fails after one call, not a thousand.
// It returns the names it created and the first error; no batch starts after a
// failed one.
func slowStartBatch(tasks []*ecsv1alpha1.Task, create func(*ecsv1alpha1.Task) error) ([]string, error) {
	const maxBatch = maxParallelWrites
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
		var first error
		for i, err := range errs {
			if err == nil {
				// Every create of the batch that succeeded is reported, also after one
				// failed: each is a task to expect and announce.
				created = append(created, tasks[next+i].Name)
			} else if first == nil {
				first = err
			}
		}
		if first != nil {
			return created, first
		}
		next = end
	}
	return created, nil
}
