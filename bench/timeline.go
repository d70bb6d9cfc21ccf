package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// A phase's time (a scale-out, a rollout) is one number; where it went is read off
// the tasks afterwards, so that the measurement itself pays for no extra watch:
// their creationTimestamp and status.startedAt, one List after the phase. Both
// have whole seconds, so the timeline is as coarse, which is enough to tell a phase
// that created slowly from one that waited on its reports or on the Service's
// status.

// timelineQuantiles are the shares of the tasks at which the timeline is read.
var timelineQuantiles = []float64{0.25, 0.5, 0.9, 1}

// taskTimeline lists the tasks of a phase (those of the service web on one
// revision) and describes it for the results' notes.
func (l *lab) taskTimeline(ctx context.Context, start, end time.Time, revision string) (string, error) {
	var tasks ecsv1alpha1.TaskList
	if err := l.c.List(ctx, &tasks, client.InNamespace(benchNamespace), client.MatchingLabels{ecsv1alpha1.LabelService: "web"}); err != nil {
		return "", err
	}
	phase := slices.DeleteFunc(tasks.Items, func(t ecsv1alpha1.Task) bool { return t.Spec.TaskDefinition != revision })
	return describeTimeline(phase, start, end), nil
}

// describeTimeline says, for each quantile of the tasks, how long after start that
// share of them had been created, had started (status.startedAt: the agent's clock
// when the containers ran) and had been reported (the time of the agent's last
// status write, from its managedFields entry), and how long after the last report
// the phase was seen to end (the Service's status catching up).
func describeTimeline(tasks []ecsv1alpha1.Task, start, end time.Time) string {
	// The timestamps are truncated to the second: so is start, so that no task
	// seems to come before the phase.
	start = start.Truncate(time.Second)
	var created, started, reported []time.Duration
	for i := range tasks {
		t := &tasks[i]
		created = append(created, t.CreationTimestamp.Sub(start))
		if t.Status.StartedAt != nil {
			started = append(started, t.Status.StartedAt.Sub(start))
		}
		for _, mf := range t.ManagedFields {
			if mf.Manager == ecsv1alpha1.FieldManagerAgent && mf.Subresource == "status" && mf.Time != nil {
				reported = append(reported, mf.Time.Sub(start))
			}
		}
	}
	if len(created) == 0 {
		return "timeline: no tasks"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "timeline of %d tasks (whole seconds after the phase began, so ±1 s): created", len(created))
	writeQuantiles(&b, created)
	last := created[len(created)-1]
	for _, p := range []struct {
		name string
		d    []time.Duration
	}{{"started", started}, {"reported by their agents", reported}} {
		if len(p.d) == 0 {
			continue
		}
		fmt.Fprintf(&b, "; %s (%d)", p.name, len(p.d))
		writeQuantiles(&b, p.d)
		last = max(last, slices.Max(p.d))
	}
	fmt.Fprintf(&b, "; the phase was seen to end %.1f s after the last of these", (end.Sub(start) - last).Seconds())
	return b.String()
}

func writeQuantiles(b *strings.Builder, d []time.Duration) {
	sorted := slices.Sorted(slices.Values(d))
	for i, q := range timelineQuantiles {
		sep := ","
		if i == 0 {
			sep = ""
		}
		idx := min(len(sorted)-1, max(0, int(q*float64(len(sorted)))-1))
		fmt.Fprintf(b, "%s %.0f%% by %.0f s", sep, q*100, sorted[idx].Seconds())
	}
}

// reconciles counts the manager's reconciles per controller so far
// (controller_runtime_reconcile_total: the manager runs in this process). The
// difference over a phase is how many passes each controller made: a controller
// whose passes grow with the phase's events, not its work, shows here.
func reconciles() map[string]float64 {
	out := map[string]float64{}
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		return out
	}
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
