package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// Graph geometry, in SVG user units.
const (
	graphWidth  = 640
	graphHeight = 200
	graphLeft   = 44 // room for the percent labels
	graphRight  = 8
	graphTop    = 8
	graphBottom = 22 // room for the time labels
)

// series is one line of the graph: a name (its CSS class and element id) and how to
// read its value from a sample.
type series struct {
	name  string
	value func(sample) *int32
}

var utilizationSeries = []series{
	{"cpu", func(s sample) *int32 { return s.CPU }},
	{"mem", func(s sample) *int32 { return s.Mem }},
}

// utilizationGraph draws a service's CPU and memory utilization over time as an
// inline SVG: server-rendered, so it needs no script. The x axis runs from the oldest
// sample to now; the y axis from 0 to 100% or, when CPU exceeded its reservation
// (CPU units are a share, not a limit), to the next 50% above the highest value. A
// sample without a figure breaks the line rather than drawing a false zero.
func utilizationGraph(samples []sample, now time.Time) template.HTML {
	if len(samples) == 0 {
		return template.HTML(`<p class="graph-empty" id="graph-empty">No samples yet. History starts when the console starts; the manager measures utilization about once a minute.</p>`)
	}
	start := samples[0].At
	span := now.Sub(start)
	if span < time.Minute {
		span = time.Minute
	}
	top := int32(100)
	for _, s := range samples {
		for _, sr := range utilizationSeries {
			if v := sr.value(s); v != nil && *v > top {
				top = (*v + 49) / 50 * 50
			}
		}
	}
	plotW := float64(graphWidth - graphLeft - graphRight)
	plotH := float64(graphHeight - graphTop - graphBottom)
	x := func(t time.Time) float64 { return graphLeft + plotW*float64(t.Sub(start))/float64(span) }
	y := func(v int32) float64 { return graphTop + plotH*(1-float64(v)/float64(top)) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="graph" id="utilization-graph" viewBox="0 0 %d %d" role="img" aria-label="CPU and memory utilization">`, graphWidth, graphHeight)
	for _, v := range []int32{0, top / 2, top} {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, graphLeft, y(v), graphWidth-graphRight, y(v))
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%.1f">%d%%</text>`, graphLeft-4, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text class="label time" x="%d" y="%d">%s</text>`, graphLeft, graphHeight-6, start.UTC().Format("15:04"))
	fmt.Fprintf(&b, `<text class="label time end" x="%d" y="%d">%s</text>`, graphWidth-graphRight, graphHeight-6, now.UTC().Format("15:04 UTC"))
	for _, sr := range utilizationSeries {
		for i, seg := range segments(samples, sr.value) {
			pts := make([]string, len(seg))
			for j, s := range seg {
				pts[j] = fmt.Sprintf("%.1f,%.1f", x(s.At), y(*sr.value(s)))
			}
			if len(seg) == 1 {
				fmt.Fprintf(&b, `<circle class="%s" id="graph-%s-%d" cx="%.1f" cy="%.1f" r="2"/>`, sr.name, sr.name, i, x(seg[0].At), y(*sr.value(seg[0])))
				continue
			}
			fmt.Fprintf(&b, `<polyline class="%s" id="graph-%s-%d" points="%s"/>`, sr.name, sr.name, i, strings.Join(pts, " "))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and constants only
}

// segments splits samples into runs that all have a value.
func segments(samples []sample, value func(sample) *int32) [][]sample {
	var out [][]sample
	var cur []sample
	for _, s := range samples {
		if value(s) == nil {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, s)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
