package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest-rank method: the smallest value at least p% of the values are at or below.
// It returns 0 for no values.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Summary is the usual set of statistics of a sample: Average, Perc50, Perc90,
// Perc99 (the scheduler_perf names) and Max.
func Summary(values []float64) map[string]float64 {
	if len(values) == 0 {
		return map[string]float64{"Average": 0, "Perc50": 0, "Perc90": 0, "Perc99": 0, "Max": 0}
	}
	var sum float64
	for _, v := range values {
		sum += v
	}
	return map[string]float64{
		"Average": sum / float64(len(values)),
		"Perc50":  Percentile(values, 50),
		"Perc90":  Percentile(values, 90),
		"Perc99":  Percentile(values, 99),
		"Max":     slices.Max(values),
	}
}

// Millis converts durations to float milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Throughput describes events (task bindings, object creations) over time as
// scheduler_perf does: Average is the number of events divided by the time from
// start to the last event; Perc50/90/99 are percentiles of the per-window counts (1 s
// windows from start, the last partial window left out when there are full ones,
// since it would read as a slowdown that did not happen).
func Throughput(start time.Time, events []time.Time, window time.Duration) map[string]float64 {
	if len(events) == 0 {
		return Summary(nil)
	}
	last := slices.MaxFunc(events, func(a, b time.Time) int { return a.Compare(b) })
	elapsed := last.Sub(start)
	if elapsed <= 0 {
		elapsed = time.Millisecond
	}
	out := map[string]float64{}
	if elapsed < window {
		// Everything happened within one window, which would read as a rate of
		// events per window: every statistic is the average rate.
		avg := float64(len(events)) / elapsed.Seconds()
		for _, k := range []string{"Average", "Perc50", "Perc90", "Perc99", "Max"} {
			out[k] = avg
		}
		return out
	}
	counts := WindowCounts(start, events, window)
	perSecond := make([]float64, len(counts))
	for i, c := range counts {
		perSecond[i] = float64(c) / window.Seconds()
	}
	out = Summary(perSecond)
	out["Average"] = float64(len(events)) / elapsed.Seconds()
	return out
}

// WindowCounts counts events per window from start up to the last event. A partial
// last window is dropped when there is at least one full window.
func WindowCounts(start time.Time, events []time.Time, window time.Duration) []int {
	if len(events) == 0 {
		return nil
	}
	last := slices.MaxFunc(events, func(a, b time.Time) int { return a.Compare(b) })
	n := int(last.Sub(start)/window) + 1
	counts := make([]int, n)
	for _, e := range events {
		i := int(e.Sub(start) / window)
		counts[min(max(i, 0), n-1)]++
	}
	if n > 1 {
		// The window of the last event is partial by construction.
		counts = counts[:n-1]
	}
	return counts
}
