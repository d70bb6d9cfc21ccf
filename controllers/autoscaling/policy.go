package autoscaling

import (
	"math"
	"time"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// The decision, as Application Auto Scaling makes it for an ECS service's target
// tracking policies, as a pure function of the scalable target (desiredCount, the
// capacity bounds, suspension, the last actions) and each policy's reading.
//
//   - A policy asks for ceil(current × value / target) tasks, current being
//     spec.desiredCount: a per-task metric falls in proportion as tasks are added.
//   - It asks for a scale-out when that is more than current, and allows a scale-in
//     only when the value is below (1 - scaleInTolerance) × target and the policy
//     does not disable scale-in. The tolerance stands in for the asymmetry of
//     Application Auto Scaling's alarms (a scale-in alarm waits 15 data points, a
//     scale-out alarm 3): without it, a value just under the target would remove a
//     task that the next reading adds back.
//   - The service scales out when any policy asks for more tasks (to the most any
//     asks for), and in only when every policy allows fewer (to the most they ask
//     for, so no policy is left below its target).
//   - Cooldowns: no scale-out within a policy's scaleOutCooldown of the last
//     scale-out; no scale-in within its scaleInCooldown of the last action in either
//     direction. A scale-out is allowed during a scale-in cooldown.
//   - A reading taken before the last action does not count: it describes the
//     tasks as they were, and acting on it twice would scale twice for one load.
//   - Suspension blocks its direction. A policy without a reading cannot ask for a
//     scale-out and blocks every scale-in.
//   - The result is always within [minCapacity, maxCapacity], and a desiredCount
//     outside that range (or unset) moves into it at once, with no metric at all,
//     whatever the cooldowns and suspension; that move (ScaledToRange) starts no
//     cooldown.
//
// A service with no running task cannot be measured (its utilization has no tasks),
// and with a desiredCount of 0 every policy asks for 0: it never scales out from 0,
// only to minCapacity.

// scaleInTolerance: a policy allows a scale-in only when its value is below
// (1 - scaleInTolerance) × target.
const scaleInTolerance = 0.1

// maxDesired bounds a policy's ask before clamping, so a huge value cannot overflow.
const maxDesired = 100000

// scalableTarget is the service as the decision sees it.
type scalableTarget struct {
	// current is spec.desiredCount; set is false when the manifest left it out.
	current int32
	set     bool
	min     int32
	max     int32
	// outSuspended and inSuspended block the policies' scale-outs and scale-ins.
	outSuspended bool
	inSuspended  bool
	// lastOut and lastIn are the last actions (zero: none), from status.
	lastOut time.Time
	lastIn  time.Time
}

// policyInput is one target tracking policy with its reading.
type policyInput struct {
	name   string
	metric string // what it tracks, for messages
	target float64
	// reading is the metric's value now, or why there is none.
	reading          reading
	scaleOutCooldown time.Duration
	scaleInCooldown  time.Duration
	disableScaleIn   bool
}

// decision is what the auto scaler does now.
type decision struct {
	// next is the desiredCount to write, when reason is not "".
	next int32
	// reason is ScaledOut, ScaledIn or ScaledToRange, or "" for no action.
	reason string
	// capacity is what the policies ask for now, within the bounds, whether or not
	// cooldowns, suspension or stale readings let the auto scaler act on it.
	capacity int32
	// desires are each policy's ask (nil without a reading), in policy order.
	desires []*int32
}

// decide is the auto scaler's decision for t at now.
func decide(t scalableTarget, policies []policyInput, now time.Time) decision {
	current := t.effective()
	d := decision{desires: make([]*int32, len(policies))}
	var (
		wantOut, canOut bool
		// allIn: every policy allows fewer tasks; allInNow: and may act on it now.
		allIn, allInNow = len(policies) > 0, len(policies) > 0
		outTo, most     int32
	)
	for i, p := range policies {
		v := t.vote(p, current, now)
		if v.measured {
			d.desires[i] = &v.want
		}
		wantOut = wantOut || v.out
		if v.outNow {
			canOut, outTo = true, max(outTo, v.want)
		}
		allIn, allInNow = allIn && v.in, allInNow && v.inNow
		most = max(most, v.want)
	}

	next, asked := current, current
	switch {
	case wantOut:
		asked = most
		if canOut {
			next = outTo
		}
	case allIn:
		asked = most
		if allInNow {
			next = most
		}
	}
	d.capacity = clamp(asked, t.min, t.max)
	d.next = clamp(next, t.min, t.max)
	d.reason = t.reasonFor(d.next, canOut, !wantOut && allIn && allInNow)
	return d
}

// vote is one policy's say in a decision.
type vote struct {
	want     int32 // the tasks it asks for
	measured bool  // it has a reading, so want means something
	out      bool  // it asks for more tasks
	outNow   bool  // and may have them now
	in       bool  // it allows fewer tasks
	inNow    bool  // and may remove them now
}

// vote is policy p's say when the service has current tasks.
func (t scalableTarget) vote(p policyInput, current int32, now time.Time) vote {
	if !p.reading.ok {
		return vote{}
	}
	v := vote{want: desire(current, p.reading.value, p.target), measured: true}
	// Status keeps the actions' times to the second: a reading of the same second
	// as the last action may have been taken before it.
	fresh := p.reading.at.Truncate(time.Second).After(t.lastAction())
	switch {
	case v.want > current:
		v.out = true
		v.outNow = fresh && !t.outSuspended && !cooling(t.lastOut, p.scaleOutCooldown, now)
	case v.want < current && p.reading.value < (1-scaleInTolerance)*p.target && !p.disableScaleIn:
		v.in = true
		v.inNow = fresh && !t.inSuspended && !cooling(t.lastAction(), p.scaleInCooldown, now)
	}
	return v
}

// reasonFor names the move to next: a policy's scale-out or scale-in when it goes
// beyond the range, otherwise a move into the range ("" when nothing moves).
func (t scalableTarget) reasonFor(next int32, scaledOut, scaledIn bool) string {
	inRange := clamp(t.effective(), t.min, t.max)
	switch {
	case t.set && next == t.current:
		return ""
	case scaledOut && next > inRange:
		return ecsv1alpha1.ReasonScaledOut
	case scaledIn && next < inRange:
		return ecsv1alpha1.ReasonScaledIn
	}
	return ecsv1alpha1.ReasonScaledToRange
}

// effective is the desiredCount the service runs: minCapacity while unset, as the
// service controller does.
func (t scalableTarget) effective() int32 {
	if !t.set {
		return t.min
	}
	return t.current
}

// lastAction is the later of the last scale-out and scale-in (zero: none).
func (t scalableTarget) lastAction() time.Time {
	if t.lastIn.After(t.lastOut) {
		return t.lastIn
	}
	return t.lastOut
}

// desire is ceil(current × value / target), the tasks that bring value to target.
// The small subtraction keeps float error (3 × 0.2 / 0.1 = 6.000000000000001)
// from asking for one task more than the exact quotient.
func desire(current int32, value, target float64) int32 {
	x := math.Ceil(float64(current)*value/target - 1e-9)
	switch {
	case x <= 0 || math.IsNaN(x):
		return 0
	case x >= maxDesired:
		return maxDesired
	}
	return int32(x)
}

// cooling reports whether a cooldown of d that started at last still runs at now.
func cooling(last time.Time, d time.Duration, now time.Time) bool {
	return !last.IsZero() && now.Before(last.Add(d))
}

func clamp(n, lo, hi int32) int32 {
	return min(max(n, lo), hi)
}
