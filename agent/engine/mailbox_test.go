package engine

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestMailbox(t *testing.T) {
	run := Desired{DesiredStatus: ecsv1alpha1.DesiredRunning, Revision: "web:1"}
	stop := Desired{DesiredStatus: ecsv1alpha1.DesiredStopped, StopCode: ecsv1alpha1.StopServiceSchedulerInitiated, StopReason: "scale in", Revision: "web:1"}
	newer := Desired{DesiredStatus: ecsv1alpha1.DesiredRunning, Revision: "web:1", Env: map[string]map[string]string{"app": {"A": "2"}}}
	tests := []struct {
		name string
		puts []Desired
		want *Desired
	}{
		{"nothing", nil, nil},
		{"the newest replaces an older one", []Desired{run, newer}, &newer},
		{"a stop replaces a run", []Desired{run, stop}, &stop},
		{"a run never replaces a stop", []Desired{stop, newer}, &Desired{
			DesiredStatus: ecsv1alpha1.DesiredStopped, StopCode: ecsv1alpha1.StopServiceSchedulerInitiated, StopReason: "scale in",
			Revision: "web:1", Env: newer.Env,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMailbox(nil)
			for _, d := range tc.puts {
				m.putDesired(d)
			}
			got, _, _ := m.take()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("take() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMailboxInterrupts(t *testing.T) {
	m := newMailbox(nil)
	ctx, done := m.interruptible(context.Background())
	m.putEvent(event{kind: eventExit})
	m.putDesired(Desired{DesiredStatus: ecsv1alpha1.DesiredRunning})
	if ctx.Err() != nil {
		t.Fatalf("interrupted by an event or a run")
	}
	m.putDesired(Desired{DesiredStatus: ecsv1alpha1.DesiredStopped})
	if ctx.Err() == nil {
		t.Errorf("a stop did not interrupt")
	}
	done()

	// A stop that is already waiting interrupts at once.
	ctx, done = m.interruptible(context.Background())
	defer done()
	if ctx.Err() == nil {
		t.Errorf("a pending stop did not interrupt")
	}
	if _, evs, _ := m.take(); len(evs) != 1 {
		t.Errorf("events = %v", evs)
	}
}
