package autoscaling

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// now is the clock of the unit tests.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// policy is a target tracking policy named name with target, whose value was read
// 30 seconds ago, with ECS's default cooldowns.
func policy(name string, value, target float64, edits ...func(*policyInput)) policyInput {
	p := policyInput{name: name, metric: "m", target: target, reading: reading{value: value, ok: true, at: now.Add(-30 * time.Second)},
		scaleOutCooldown: defaultCooldown, scaleInCooldown: defaultCooldown}
	for _, e := range edits {
		e(&p)
	}
	return p
}

// noReading is a policy whose metric has no value.
func noReading(name string) policyInput {
	return policyInput{name: name, metric: "m", target: 50, reading: missing("none"), scaleOutCooldown: defaultCooldown, scaleInCooldown: defaultCooldown}
}

func readAt(at time.Time) func(*policyInput) { return func(p *policyInput) { p.reading.at = at } }
func scaleInDisabled(p *policyInput)         { p.disableScaleIn = true }

// target is a service with desiredCount current in [lo, hi].
func target(current, lo, hi int32, edits ...func(*scalableTarget)) scalableTarget {
	t := scalableTarget{current: current, set: true, min: lo, max: hi}
	for _, e := range edits {
		e(&t)
	}
	return t
}

func unset(t *scalableTarget)        { t.current, t.set = 0, false }
func outSuspended(t *scalableTarget) { t.outSuspended = true }
func inSuspended(t *scalableTarget)  { t.inSuspended = true }
func lastOut(ago time.Duration) func(*scalableTarget) {
	return func(t *scalableTarget) { t.lastOut = now.Add(-ago) }
}
func lastIn(ago time.Duration) func(*scalableTarget) {
	return func(t *scalableTarget) { t.lastIn = now.Add(-ago) }
}

func TestDecide(t *testing.T) {
	const (
		out   = ecsv1alpha1.ReasonScaledOut
		in    = ecsv1alpha1.ReasonScaledIn
		toRng = ecsv1alpha1.ReasonScaledToRange
	)
	p := ptr.To[int32]
	tests := []struct {
		name     string
		target   scalableTarget
		policies []policyInput
		// wantNext and wantReason: the desiredCount written and why ("": none).
		wantNext     int32
		wantReason   string
		wantCapacity int32
		wantDesires  []*int32
	}{
		{name: "above target scales out to ceil(current × value / target)", target: target(2, 1, 10),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "at target stays", target: target(4, 1, 10),
			policies: []policyInput{policy("cpu", 50, 50)}, wantNext: 4, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "below target within the 10% tolerance stays, though the quotient asks for fewer", target: target(20, 1, 30),
			policies: []policyInput{policy("cpu", 46, 50)}, wantNext: 20, wantCapacity: 20, wantDesires: []*int32{p(19)}},
		{name: "below the tolerance scales in", target: target(4, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 2, wantReason: in, wantCapacity: 2, wantDesires: []*int32{p(2)}},
		{name: "scale-in stops at minCapacity", target: target(4, 2, 10),
			policies: []policyInput{policy("cpu", 5, 50)}, wantNext: 2, wantReason: in, wantCapacity: 2, wantDesires: []*int32{p(1)}},
		{name: "scale-out stops at maxCapacity", target: target(4, 1, 10),
			policies: []policyInput{policy("cpu", 200, 50)}, wantNext: 10, wantReason: out, wantCapacity: 10, wantDesires: []*int32{p(16)}},
		{name: "at maxCapacity a higher ask does nothing", target: target(10, 1, 10),
			policies: []policyInput{policy("cpu", 200, 50)}, wantNext: 10, wantCapacity: 10, wantDesires: []*int32{p(40)}},
		{name: "disableScaleIn keeps the tasks", target: target(4, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50, scaleInDisabled)}, wantNext: 4, wantCapacity: 4, wantDesires: []*int32{p(2)}},
		{name: "disableScaleIn still scales out", target: target(2, 1, 10),
			policies: []policyInput{policy("cpu", 92, 50, scaleInDisabled)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "any policy asking for more scales out, to the most asked", target: target(2, 1, 10),
			policies: []policyInput{policy("cpu", 92, 50), policy("mem", 10, 50), policy("rps", 130, 50)},
			wantNext: 6, wantReason: out, wantCapacity: 6, wantDesires: []*int32{p(4), p(1), p(6)}},
		{name: "every policy allowing fewer scales in, to the most asked", target: target(10, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50), policy("mem", 30, 50)},
			wantNext: 6, wantReason: in, wantCapacity: 6, wantDesires: []*int32{p(4), p(6)}},
		{name: "one policy at its target blocks the scale-in", target: target(10, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50), policy("mem", 50, 50)}, wantNext: 10, wantCapacity: 10, wantDesires: []*int32{p(4), p(10)}},
		{name: "one policy disabling scale-in blocks the others' scale-in", target: target(10, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50), policy("mem", 20, 50, scaleInDisabled)}, wantNext: 10, wantCapacity: 10, wantDesires: []*int32{p(4), p(4)}},
		{name: "a policy without a reading does not stop another's scale-out", target: target(2, 1, 10),
			policies: []policyInput{noReading("mem"), policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{nil, p(4)}},
		{name: "a policy without a reading blocks the scale-in", target: target(4, 1, 10),
			policies: []policyInput{noReading("mem"), policy("cpu", 20, 50)}, wantNext: 4, wantCapacity: 4, wantDesires: []*int32{nil, p(2)}},
		{name: "no scale-out within scaleOutCooldown of the last scale-out", target: target(2, 1, 10, lastOut(100*time.Second)),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 2, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "scale-out once scaleOutCooldown has passed", target: target(2, 1, 10, lastOut(301*time.Second)),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "a policy's own shorter cooldown", target: target(2, 1, 10, lastOut(100*time.Second)),
			policies: []policyInput{policy("cpu", 92, 50, func(p *policyInput) { p.scaleOutCooldown = 60 * time.Second })},
			wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "no scale-in within scaleInCooldown of the last scale-out", target: target(4, 1, 10, lastOut(100*time.Second)),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 4, wantCapacity: 2, wantDesires: []*int32{p(2)}},
		{name: "no scale-in within scaleInCooldown of the last scale-in", target: target(4, 1, 10, lastIn(100*time.Second)),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 4, wantCapacity: 2, wantDesires: []*int32{p(2)}},
		{name: "scale-in once scaleInCooldown has passed since either action", target: target(4, 1, 10, lastIn(400*time.Second), lastOut(301*time.Second)),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 2, wantReason: in, wantCapacity: 2, wantDesires: []*int32{p(2)}},
		{name: "a scale-out is allowed during a scale-in cooldown", target: target(2, 1, 10, lastIn(60*time.Second)),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "a reading taken before the last action does not count", target: target(4, 1, 10, lastIn(10*time.Second)),
			policies: []policyInput{policy("cpu", 92, 50, scaleInDisabled)}, wantNext: 4, wantCapacity: 8, wantDesires: []*int32{p(8)}},
		{name: "a reading of the same second as the last action does not count", target: target(4, 1, 10, lastOut(0)),
			policies: []policyInput{policy("cpu", 92, 50, readAt(now.Add(500*time.Millisecond)), func(p *policyInput) { p.scaleOutCooldown = 0 })},
			wantNext: 4, wantCapacity: 8, wantDesires: []*int32{p(8)}},
		{name: "scale-out suspended", target: target(2, 1, 10, outSuspended),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 2, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "scale-in suspended", target: target(4, 1, 10, inSuspended),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 4, wantCapacity: 2, wantDesires: []*int32{p(2)}},
		{name: "scale-in suspended still scales out", target: target(2, 1, 10, inSuspended),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "above maxCapacity moves into range with no metric", target: target(12, 1, 10),
			policies: []policyInput{noReading("cpu")}, wantNext: 10, wantReason: toRng, wantCapacity: 10, wantDesires: []*int32{nil}},
		{name: "below minCapacity moves into range, suspended and cooling down", target: target(0, 2, 10, outSuspended, inSuspended, lastOut(time.Second)),
			wantNext: 2, wantReason: toRng, wantCapacity: 2},
		{name: "an unset desiredCount is set to minCapacity", target: target(0, 3, 10, unset),
			policies: []policyInput{noReading("cpu")}, wantNext: 3, wantReason: toRng, wantCapacity: 3, wantDesires: []*int32{nil}},
		{name: "an unset desiredCount scales out from minCapacity", target: target(0, 2, 10, unset),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 4, wantReason: out, wantCapacity: 4, wantDesires: []*int32{p(4)}},
		{name: "below minCapacity, an ask still below it is a move into range", target: target(1, 3, 10),
			policies: []policyInput{policy("cpu", 92, 50)}, wantNext: 3, wantReason: toRng, wantCapacity: 3, wantDesires: []*int32{p(2)}},
		{name: "below minCapacity, an ask above it is a scale-out", target: target(1, 3, 10),
			policies: []policyInput{policy("cpu", 400, 50)}, wantNext: 8, wantReason: out, wantCapacity: 8, wantDesires: []*int32{p(8)}},
		{name: "above maxCapacity in a scale-in cooldown moves to maxCapacity", target: target(12, 1, 10, lastIn(10*time.Second)),
			policies: []policyInput{policy("cpu", 20, 50, readAt(now))}, wantNext: 10, wantReason: toRng, wantCapacity: 5, wantDesires: []*int32{p(5)}},
		{name: "above maxCapacity a scale-in below it is a scale-in", target: target(12, 1, 10),
			policies: []policyInput{policy("cpu", 20, 50)}, wantNext: 5, wantReason: in, wantCapacity: 5, wantDesires: []*int32{p(5)}},
		{name: "from 0 tasks no metric scales out", target: target(0, 0, 10),
			policies: []policyInput{policy("rps", 100, 10)}, wantNext: 0, wantCapacity: 0, wantDesires: []*int32{p(0)}},
		{name: "no float error in the quotient (3 × 0.2 / 0.1 is 6.000000000000001)", target: target(3, 1, 100),
			policies: []policyInput{policy("x", 0.2, 0.1)}, wantNext: 6, wantReason: out, wantCapacity: 6, wantDesires: []*int32{p(6)}},
		{name: "no policy in range does nothing", target: target(5, 1, 10), wantNext: 5, wantCapacity: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.target, tc.policies, now)
			want := decision{next: tc.wantNext, reason: tc.wantReason, capacity: tc.wantCapacity, desires: tc.wantDesires}
			if want.desires == nil {
				want.desires = []*int32{}
			}
			if diff := cmp.Diff(want, d, cmp.AllowUnexported(decision{})); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}
