package console

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func smp(min int, cpu, mem *int32) sample {
	return sample{At: t0.Add(time.Duration(min) * time.Minute), CPU: cpu, Mem: mem}
}

// elements lists the SVG's lines and points as "tag id points-or-center".
func elements(svg string) []string {
	re := regexp.MustCompile(`<(polyline|circle) class="(\w+)" id="([\w-]+)" (?:points="([^"]*)"|cx="([\d.]+)" cy="([\d.]+)")`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		if m[1] == "polyline" {
			out = append(out, m[1]+" "+m[3]+" "+m[4])
		} else {
			out = append(out, m[1]+" "+m[3]+" "+m[5]+","+m[6])
		}
	}
	return out
}

func TestUtilizationGraph(t *testing.T) {
	// Plot area: x 44..632 (588 wide), y 8..178 (170 high).
	for _, tc := range []struct {
		name    string
		samples []sample
		now     time.Time
		want    []string
		wantTop string
	}{
		{
			name:    "two samples span the width; 0-100%",
			samples: []sample{smp(0, ptr.To[int32](0), ptr.To[int32](50)), smp(10, ptr.To[int32](100), ptr.To[int32](25))},
			now:     t0.Add(10 * time.Minute),
			want: []string{
				"polyline graph-cpu-0 44.0,178.0 632.0,8.0",
				"polyline graph-mem-0 44.0,93.0 632.0,135.5",
			},
			wantTop: ">100%<",
		},
		{
			name: "a sample without CPU breaks the CPU line; a lone point is a dot",
			samples: []sample{smp(0, ptr.To[int32](50), ptr.To[int32](50)), smp(5, nil, ptr.To[int32](50)),
				smp(10, ptr.To[int32](50), ptr.To[int32](50))},
			now: t0.Add(10 * time.Minute),
			want: []string{
				"polyline graph-mem-0 44.0,93.0 338.0,93.0 632.0,93.0",
				"circle graph-cpu-0 44.0,93.0",
				"circle graph-cpu-1 632.0,93.0",
			},
			wantTop: ">100%<",
		},
		{
			name:    "CPU above its reservation raises the top to the next 50%",
			samples: []sample{smp(0, ptr.To[int32](120), nil), smp(10, ptr.To[int32](150), nil)},
			now:     t0.Add(20 * time.Minute),
			want:    []string{"polyline graph-cpu-0 44.0,42.0 338.0,8.0"},
			wantTop: ">150%<",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := string(utilizationGraph(tc.samples, tc.now))
			got := elements(svg)
			// Order: the SVG draws all CPU segments, then memory.
			if diff := cmp.Diff(sortedCopy(tc.want), sortedCopy(got)); diff != "" {
				t.Errorf("elements (-want +got):\n%s\n%s", diff, svg)
			}
			if !strings.Contains(svg, tc.wantTop) || !strings.Contains(svg, `id="utilization-graph"`) {
				t.Errorf("want top label %s in %s", tc.wantTop, svg)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestUtilizationGraphEmpty(t *testing.T) {
	svg := string(utilizationGraph(nil, t0))
	if !strings.Contains(svg, `id="graph-empty"`) || !strings.Contains(svg, "History starts when the console starts") {
		t.Errorf("empty graph: %s", svg)
	}
}

func TestHistory(t *testing.T) {
	key := types.NamespacedName{Namespace: "default", Name: "web"}
	h := newHistory(time.Hour)
	h.add(key, smp(0, ptr.To[int32](1), nil))
	h.add(key, smp(0, ptr.To[int32](2), nil))  // same measuredAt: another status write, not a sample
	h.add(key, smp(30, ptr.To[int32](3), nil)) // kept
	h.add(key, smp(61, ptr.To[int32](4), nil)) // drops the first, now older than the hour
	var got []int32
	for _, s := range h.samples(key) {
		got = append(got, *s.CPU)
	}
	if diff := cmp.Diff([]int32{3, 4}, got); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
	h.forget(key)
	if n := len(h.samples(key)); n != 0 {
		t.Errorf("%d samples after forget", n)
	}
}
