package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	cases := []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}, {10, 1}, {11, 2}}
	for _, tc := range cases {
		if got := Percentile(values, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile of nothing = %v, want 0", got)
	}
}

func TestThroughput(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	// 10 events in the first second, 20 in the second, 2 in a partial third.
	var events []time.Time
	for i := range 10 {
		events = append(events, at(i*100))
	}
	for i := range 20 {
		events = append(events, at(1000+i*50))
	}
	events = append(events, at(2100), at(2500))
	if diff := cmp.Diff([]int{10, 20}, WindowCounts(start, events, time.Second)); diff != "" {
		t.Errorf("WindowCounts (-want +got):\n%s", diff)
	}
	got := Throughput(start, events, time.Second)
	want := map[string]float64{"Average": 32 / 2.5, "Perc50": 10, "Perc90": 20, "Perc99": 20, "Max": 20}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Throughput (-want +got):\n%s", diff)
	}
	// All within one window: every statistic is the average rate, not the count.
	short := Throughput(start, []time.Time{at(100), at(200), at(250)}, time.Second)
	if short["Perc50"] != 12 || short["Average"] != 12 {
		t.Errorf("Throughput within one window = %v, want 12/s everywhere", short)
	}
}

func TestParseMutatingRequests(t *testing.T) {
	text := `# HELP apiserver_request_total [STABLE] Counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="",verb="POST",version="v1alpha1"} 10
apiserver_request_total{code="200",component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 99
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 4
apiserver_request_total{code="409",component="apiserver",dry_run="",group="ecs.berth.dev",resource="services",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
`
	want := map[string]float64{"tasks": 13, "tasks/status": 7, "leases": 4, "services/status": 2}
	if diff := cmp.Diff(want, mutatingRequestsOf(parseRequestsByVerb(text))); diff != "" {
		t.Errorf("mutatingRequestsOf (-want +got):\n%s", diff)
	}
	byVerb := map[string]float64{"POST tasks": 10, "APPLY tasks/status": 7, "PATCH tasks": 3, "LIST tasks": 99, "PUT leases": 4, "PATCH services/status": 2}
	if diff := cmp.Diff(byVerb, parseRequestsByVerb(text)); diff != "" {
		t.Errorf("parseRequestsByVerb (-want +got):\n%s", diff)
	}
	reading := parseRequestReading(text)
	if diff := cmp.Diff(requestReading{byVerb: byVerb, conflicts: map[string]float64{"services/status": 2}}, reading, cmp.AllowUnexported(requestReading{})); diff != "" {
		t.Errorf("parseRequestReading (-want +got):\n%s", diff)
	}
	later := requestReading{byVerb: map[string]float64{"POST tasks": 15}, conflicts: map[string]float64{"services/status": 3}}
	if diff := cmp.Diff(requestReading{byVerb: map[string]float64{"POST tasks": 5}, conflicts: map[string]float64{"services/status": 1}}, later.since(reading), cmp.AllowUnexported(requestReading{})); diff != "" {
		t.Errorf("since (-want +got):\n%s", diff)
	}
	reads := map[string]float64{"POST tasks": 10, "LIST tasks": 99}
	if diff := cmp.Diff(reads, readsAndCreates(byVerb)); diff != "" {
		t.Errorf("readsAndCreates (-want +got):\n%s", diff)
	}
	byVerb["WATCH tasks"], byVerb["GET leases"] = 2, 5
	if diff := cmp.Diff(map[string]float64{"LIST tasks": 99, "WATCH tasks": 2, "GET leases": 5}, readRequests(byVerb)); diff != "" {
		t.Errorf("readRequests (-want +got):\n%s", diff)
	}
	if got, want := describeRates(map[string]float64{"GET tasks": 0.0123456, "LIST tasks": 0.5, "WATCH tasks": 0.5}), "LIST tasks 0.5, WATCH tasks 0.5, GET tasks 0.0123"; got != want {
		t.Errorf("describeRates = %q, want %q", got, want)
	}
}

func TestParseAgentLog(t *testing.T) {
	log := `{"level":"debug","ts":"2026-11-25T12:39:20.220608371Z","logger":"engine","msg":"task status","taskUID":"u1","task":"bench/lat-000","lastStatus":"PENDING"}
{"level":"debug","ts":"2026-11-25T12:39:20.245700251Z","logger":"engine","msg":"task status","taskUID":"u1","task":"bench/lat-000","lastStatus":"ACTIVATING"}
{"level":"debug","ts":"2026-11-25T12:39:20.24861097Z","msg":"creating container","instance":"lat","container":"u1-app"}
not json
{"level":"debug","ts":"2026-11-25T12:39:20.336283634Z","logger":"engine","msg":"started container","taskUID":"u1","task":"bench/lat-000","container":"app"}
`
	path := t.TempDir() + "/agent.log"
	if err := writeAtomic(path, []byte(log)); err != nil {
		t.Fatal(err)
	}
	marks, err := parseAgentLog(path)
	if err != nil {
		t.Fatal(err)
	}
	m := marks["lat-000"]
	if got := m.pending.Format(time.RFC3339Nano); got != "2026-11-25T12:39:20.220608371Z" {
		t.Errorf("pending = %s", got)
	}
	if got := m.started.Sub(m.pending); got != 115675263*time.Nanosecond {
		t.Errorf("started - pending = %s", got)
	}
	if marks["u1"] != m {
		t.Errorf("marks by UID %+v differ from marks by name %+v", marks["u1"], m)
	}
}

func TestReportRatiosAndMarkdown(t *testing.T) {
	r := &Report{Version: "v1", Size: 0.1, Versions: map[string]string{"Go": "go1.26"}}
	r.add([]Figure{{
		Metric: ServiceScaleOut, Name: "DesiredToRunning", Unit: "s",
		Values:   map[string]float64{"Value": 30},
		Baseline: Baseline{What: "raw creates", Unit: "s", Values: map[string]float64{"Value": 10}},
	}, {
		Metric: AgentFootprint, Name: "CPUSecondsPerMinute", Unit: "CPU-s/min",
		Values:   map[string]float64{"Value": 1},
		Baseline: Baseline{What: "containerd", Unit: "CPU-s/min", Values: map[string]float64{"Value": 0}},
	}}, []Context{{Metric: ServiceScaleOut, Name: "kube-apiserver", Unit: "cores", Values: map[string]float64{"Value": 1.5}}})
	if len(r.DataItems) != 7 {
		t.Fatalf("got %d data items, want 3 per figure and 1 context", len(r.DataItems))
	}
	if got := r.DataItems[2]; got.Labels["Role"] != RoleRatio || got.Data["Value"] != 3 {
		t.Errorf("ratio item = %+v, want Value 3", got)
	}
	// JSON has no infinity: a zero baseline gives -1.
	if got := r.DataItems[5].Data["Value"]; got != -1 {
		t.Errorf("ratio with a zero baseline = %v, want -1", got)
	}
	md := r.Markdown()
	for _, want := range []string{"| ServiceScaleOut | DesiredToRunning | Value | 30.0 s | 10.0 s | 3.00 |", "kube-apiserver 1.50 cores", "∞"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if math.IsInf(r.figures[1].Ratios()["Value"], 1) != true {
		t.Errorf("in memory, the ratio to a zero baseline is +Inf")
	}
}

func TestParseWriteDurations(t *testing.T) {
	text := `apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 2
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 10
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 1
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="resource",subresource="",verb="PATCH",version="v1alpha1"} 10
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 50
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="ecs.berth.dev",resource="tasks",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 1
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 0.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 50
`
	got := parseWriteDurations(text)
	want := map[string]sumCount{"tasks": {sum: 3, count: 20}, "leases": {sum: 0.5, count: 50}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(sumCount{})); diff != "" {
		t.Errorf("parseWriteDurations (-want +got):\n%s", diff)
	}
	ctx := latencyContext("M", latencySnapshot{}, latencySnapshot{server: got}, false)
	if len(ctx) != 2 || ctx[0].Values["Value"] != 150 || ctx[1].Values["Value"] != 10 {
		t.Errorf("latencyContext = %+v, want 150 ms for tasks and 10 ms for leases", ctx)
	}
}
