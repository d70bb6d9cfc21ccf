package bench

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// statOrder is the order statistics are listed in; others follow alphabetically.
var statOrder = []string{"Value", "Average", "Perc50", "Perc90", "Perc99", "Max"}

func orderedKeys(m map[string]float64) []string {
	var out []string
	for _, k := range statOrder {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(statOrder, k) {
			out = append(out, k)
		}
	}
	return out
}

// headline is the statistic the summary table shows for a figure: its single Value,
// else Perc50 for latencies and durations, else the Average.
func (f Figure) headline() string {
	for _, k := range []string{"Value", "Perc50", "Average"} {
		if _, ok := f.Values[k]; ok {
			if k == "Perc50" && !strings.Contains(f.Unit, "ms") {
				continue
			}
			return k
		}
	}
	return orderedKeys(f.Values)[0]
}

// Markdown renders the report for people: the machine and versions, a summary
// table, then every figure of every metric with its baseline and ratio.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Berth benchmark results\n\n")
	fmt.Fprintf(&b, "Run of %s, size %g (%s), %s in all. `make bench` writes this file; "+
		"`bench/results/latest.json` has the same figures as scheduler_perf-style `dataItems`.\n\n",
		r.StartedAt.UTC().Format(time.RFC3339), r.Size, sizeName(r.Size), (time.Duration(r.Duration) * time.Second).String())
	b.WriteString("Every figure has a baseline measured in the same run on the same machine, and a " +
		"**ratio = value ÷ baseline**: this machine is shared and noisy, the ratios much less so.\n\n")
	r.writeMachine(&b)
	r.writeSummary(&b)
	for _, m := range Metrics {
		r.writeMetric(&b, m)
	}
	r.writeScenarios(&b)
	return b.String()
}

func sizeName(size float64) string {
	switch {
	case size >= 1:
		return "full"
	case size >= 0.1:
		return "quick"
	default:
		return "smoke"
	}
}

func (r *Report) writeMachine(b *strings.Builder) {
	m := r.Machine
	b.WriteString("## Machine and versions\n\n| | |\n|---|---|\n")
	fmt.Fprintf(b, "| CPU | %s, %d cores |\n", m.CPUModel, m.Cores)
	fmt.Fprintf(b, "| Memory | %.1f GiB |\n", float64(m.MemoryKiB)/(1<<20))
	fmt.Fprintf(b, "| Kernel | %s |\n", m.Kernel)
	fmt.Fprintf(b, "| Load average at start (1m/5m/15m) | %s |\n", m.LoadAverage)
	for _, k := range slices.Sorted(maps.Keys(r.Versions)) {
		fmt.Fprintf(b, "| %s | %s |\n", k, r.Versions[k])
	}
	b.WriteString("\n")
}

func (r *Report) writeSummary(b *strings.Builder) {
	b.WriteString("## Summary\n\n| Metric | Figure | Statistic | Value | Baseline | Ratio |\n|---|---|---|---:|---:|---:|\n")
	for _, m := range Metrics {
		for _, f := range r.figuresOf(m) {
			k := f.headline()
			fmt.Fprintf(b, "| %s | %s | %s | %s %s | %s %s | %s |\n", f.Metric, f.Name, k,
				num(f.Values[k]), f.Unit, baselineValue(f, k), f.Baseline.Unit, ratioText(f, k))
		}
		if s := r.skipReason(m); s != "" {
			fmt.Fprintf(b, "| %s | — | | skipped: %s | | |\n", m, s)
		}
	}
	b.WriteString("\n")
}

func (r *Report) writeMetric(b *strings.Builder, metric string) {
	figs := r.figuresOf(metric)
	if len(figs) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n", metric)
	for _, f := range figs {
		if f.Note != "" {
			fmt.Fprintf(b, "**%s**: %s Baseline: %s.\n\n", f.Name, f.Note, f.Baseline.What)
		} else {
			fmt.Fprintf(b, "**%s** (baseline: %s)\n\n", f.Name, f.Baseline.What)
		}
		fmt.Fprintf(b, "| Statistic | Value (%s) | Baseline (%s) | Ratio |\n|---|---:|---:|---:|\n", f.Unit, f.Baseline.Unit)
		for _, k := range orderedKeys(f.Values) {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", k, num(f.Values[k]), baselineValue(f, k), ratioText(f, k))
		}
		b.WriteString("\n")
	}
	var ctx []string
	for _, c := range r.contexts {
		if c.Metric == metric {
			ctx = append(ctx, fmt.Sprintf("%s %s %s", c.Name, num(c.Values["Value"]), c.Unit))
		}
	}
	if len(ctx) > 0 {
		fmt.Fprintf(b, "During the measurement (CPU in cores of this machine, mean latencies): %s.\n\n", strings.Join(ctx, ", "))
	}
}

func (r *Report) writeScenarios(b *strings.Builder) {
	b.WriteString("## Scenarios\n\n| Scenario | Metrics | Time | Load average (1m) at start | Outcome |\n|---|---|---:|---:|---|\n")
	for _, s := range r.Scenarios {
		outcome := "ok"
		switch {
		case s.Error != "":
			outcome = "FAILED: " + s.Error
		case s.Skipped != "":
			outcome = "skipped: " + s.Skipped
		}
		fmt.Fprintf(b, "| %s | %s | %.0f s | %.2f | %s |\n", s.Name, strings.Join(s.Metrics, ", "), s.Seconds, s.LoadAvg1, escapePipes(outcome))
	}
	b.WriteString("\n")
	for _, s := range r.Scenarios {
		for _, n := range s.Notes {
			fmt.Fprintf(b, "* %s: %s\n", s.Name, n)
		}
	}
}

func (r *Report) figuresOf(metric string) []Figure {
	var out []Figure
	for _, f := range r.figures {
		if f.Metric == metric {
			out = append(out, f)
		}
	}
	return out
}

func (r *Report) skipReason(metric string) string {
	for _, s := range r.Scenarios {
		if slices.Contains(s.Metrics, metric) {
			if s.Skipped != "" {
				return s.Skipped
			}
			if s.Error != "" {
				return "failed: " + s.Error
			}
		}
	}
	return ""
}

func baselineValue(f Figure, k string) string {
	v, ok := f.Baseline.Values[k]
	if !ok {
		return "—"
	}
	return num(v)
}

func ratioText(f Figure, k string) string {
	v, ok := f.Ratios()[k]
	if !ok {
		return "—"
	}
	if math.IsInf(v, 0) {
		return "∞"
	}
	return fmt.Sprintf("%.2f", v)
}

// num prints about three significant digits without exponents.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || a == 0:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func escapePipes(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
