package service

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/inventory"
)

// DAEMON services: one task per eligible instance. Each instance is a slot (a hash of
// its name), so a task's slot says which instance it is for; the scheduler still
// places it, pinned by a memberOf constraint (see buildTask).

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

// daemonSlots tracks, during one classification, which slots are eligible and which
// already hold a primary task.
type daemonSlots struct {
	eligible map[string]bool
	taken    map[string]bool
}

func newDaemonSlots(eligibleInstances []string) *daemonSlots {
	d := &daemonSlots{eligible: map[string]bool{}, taken: map[string]bool{}}
	for _, name := range eligibleInstances {
		d.eligible[slotOfInstance(name)] = true
	}
	return d
}

// judgeDaemonTask stops a DAEMON task whose instance no longer qualifies, and a
// second primary task on one instance. A task on an unreachable instance is left to
// judgeInstance's grace period: the instance is not eligible only because it is
// unreachable.
func (s *state) judgeDaemonTask(lt *liveTask, slots *daemonSlots) {
	slot := lt.task.Labels[LabelSlot]
	switch {
	case !slots.eligible[slot] && s.instanceReachable(lt.task.Spec.ContainerInstance):
		lt.stopNow(ecsv1alpha1.StopServiceSchedulerInitiated, "The instance no longer matches the daemon service")
	case lt.plan.Primary && slots.taken[slot]:
		lt.stopNow(ecsv1alpha1.StopServiceSchedulerInitiated, "A second daemon task on one instance")
	case lt.plan.Primary && !lt.plan.Replace:
		slots.taken[slot] = true
	}
}

// slotOfInstance is a DAEMON task's slot: a short hash of its instance's name, which
// may be too long for a label value or a task name.
func slotOfInstance(instance string) string {
	sum := sha256.Sum256([]byte(instance))
	return "i" + hex.EncodeToString(sum[:])[:8]
}
