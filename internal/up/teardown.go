package up

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthdev/berth/internal/taskrules"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/network"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/up/localrun"
)

// drainTimeout bounds how long `down` waits for the agent to stop the local
// instance's tasks. Containers that outlast it are killed by the cleanup after.
const drainTimeout = 2 * time.Minute

// stopReason is written on every task `down` stops.
const stopReason = "berth down: the local instance was shut down"

// drainInstance stops every task bound to instance through the API, as `aws ecs
// stop-task` would, and waits until the agent reports them STOPPED, so that each
// container gets its stop signal and timeout and each network is torn down by the
// agent itself (CNI DEL releases addresses and host ports). The manager is already
// stopped, so no replacement is started meanwhile; the next `up` starts them.
func drainInstance(ctx context.Context, c client.Client, instance string, report func(string)) error {
	list := func() ([]ecsv1alpha1.Task, error) {
		var tasks ecsv1alpha1.TaskList
		err := c.List(ctx, &tasks, client.MatchingFields{"spec.containerInstance": instance})
		return tasks.Items, err
	}
	tasks, err := list()
	if err != nil {
		return err
	}
	for i := range tasks {
		t := &tasks[i]
		if t.Spec.DesiredStatus == ecsv1alpha1.DesiredStopped {
			continue
		}
		if err := c.Patch(ctx, t, taskrules.StopPatch(ecsv1alpha1.StopUserInitiated, stopReason), client.FieldOwner(FieldManager)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("stopping task %s: %w", client.ObjectKeyFromObject(t), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	last := -1
	return poll(ctx, func(context.Context) (bool, error) {
		tasks, err := list()
		if err != nil {
			return false, nil // the apiserver may be busy; the deadline decides
		}
		running := 0
		for i := range tasks {
			if tasks[i].Status.LastStatus != ecsv1alpha1.TaskStopped && tasks[i].Status.LastStatus != "" {
				running++
			}
		}
		if running != last && running > 0 {
			report(fmt.Sprintf("waiting for %d task(s) on %s to stop", running, instance))
		}
		last = running
		return running == 0, nil
	})
}

// cleanupLocal removes what may be left on the machine after the agent stopped:
// task networks (through the agent's own network code, from its state files) and
// containers (through containerd, when it still runs). It returns what it found
// still in use.
func cleanupLocal(ctx context.Context, l layout, o Options, containerdUp bool) (leftovers []string, err error) {
	var errs []error
	if nw, nerr := network.New(network.Config{StateDir: l.agentStateDir(), Subnet: o.BridgeSubnet, Bridge: o.BridgeName}); nerr != nil {
		errs = append(errs, fmt.Errorf("loading task networks: %w", nerr))
	} else if uids, rerr := nw.Recover(ctx); rerr != nil {
		errs = append(errs, fmt.Errorf("reading task networks: %w", rerr))
	} else {
		for _, uid := range uids {
			leftovers = append(leftovers, "network of task "+string(uid))
			if terr := nw.Teardown(ctx, uid); terr != nil {
				errs = append(errs, terr)
			}
		}
	}
	if containerdUp {
		_, ids, perr := localrun.PurgeContainers(ctx, l.containerdSocket())
		for _, id := range ids {
			leftovers = append(leftovers, "container "+id)
		}
		if perr != nil {
			errs = append(errs, perr)
		}
	}
	return leftovers, errors.Join(errs...)
}
