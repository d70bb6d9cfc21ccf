package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/berthdev/berth/test/testenv"
	ctrtest "github.com/berthdev/berth/test/testenv/containerd"
)

// TestSmallestSuite runs every scenario at the smallest size, as `make bench` would
// (but all at once, each against its own apiserver, to keep the test short), and
// checks that the results name every metric with sane figures, so that the
// harness cannot rot between the (manual) full runs. The real-containerd metrics
// need root; elsewhere they must be reported as skipped, with the reason.
func TestSmallestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("the benchmark smoke test starts apiservers and containerd")
	}
	// In CI the real-containerd metrics must be measured; elsewhere they may be
	// reported as skipped.
	containerdMissing := ctrtest.SkipReason()
	if testenv.Strict() {
		testenv.Require(t, containerdMissing)
	}
	ctrl.SetLogger(logr.Discard())
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, Options{Size: 0.01, Out: out, Progress: testWriter{t}, Concurrent: true})
	if err != nil {
		t.Fatalf("bench run: %v", err)
	}
	t.Logf("the smoke suite took %s", time.Since(start).Round(time.Second))

	raw, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Version   string     `json:"version"`
		DataItems []DataItem `json:"dataItems"`
		Scenarios []ScenarioResult
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("latest.json: %v", err)
	}
	if rep.Version != "v1" {
		t.Errorf("version %q, want v1", rep.Version)
	}
	for _, m := range Metrics {
		if containerdMissing != "" && (m == TaskStartupLatency || m == AgentFootprint) {
			checkSkipped(t, rep.Scenarios, m)
			continue
		}
		checkMetric(t, rep.DataItems, m)
	}
	md, err := os.ReadFile(filepath.Join(out, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"kube-apiserver", "etcd", "Go", "Git commit"}, Metrics...) {
		if !strings.Contains(string(md), want) {
			t.Errorf("latest.md does not mention %s", want)
		}
	}
}

// checkMetric: every figure of the metric has a value, a baseline and a ratio item;
// every number is finite, the headline value and baseline are positive.
func checkMetric(t *testing.T, items []DataItem, metric string) {
	t.Helper()
	roles := map[string]map[string]DataItem{} // figure name -> role -> item
	for _, it := range items {
		if it.Labels["Metric"] != metric || it.Labels["Role"] == RoleContext {
			continue
		}
		if roles[it.Labels["Name"]] == nil {
			roles[it.Labels["Name"]] = map[string]DataItem{}
		}
		roles[it.Labels["Name"]][it.Labels["Role"]] = it
	}
	if len(roles) == 0 {
		t.Errorf("%s: no figures in the results", metric)
	}
	for name, byRole := range roles {
		for _, role := range []string{RoleValue, RoleBaseline, RoleRatio} {
			it, ok := byRole[role]
			if !ok {
				t.Errorf("%s %s: no %s item", metric, name, role)
				continue
			}
			if it.Unit == "" || len(it.Data) == 0 {
				t.Errorf("%s %s %s: empty item %+v", metric, name, role, it)
			}
			for k, v := range it.Data {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Errorf("%s %s %s: %s = %v", metric, name, role, k, v)
				}
			}
			h := headlineKey(it.Data)
			if v := it.Data[h]; v <= 0 {
				t.Errorf("%s %s %s: %s = %v, want > 0", metric, name, role, h, v)
			}
		}
	}
}

// headlineKey is the statistic a figure must have above zero. The average before the
// median: a throughput's per-second windows are bursty at the smoke size (100 tasks
// bound in a few seconds under load), so more than half of them can be empty and
// the median 0, while the average cannot.
func headlineKey(data map[string]float64) string {
	for _, k := range []string{"Value", "Average", "Perc50"} {
		if _, ok := data[k]; ok {
			return k
		}
	}
	return ""
}

func checkSkipped(t *testing.T, scenarios []ScenarioResult, metric string) {
	t.Helper()
	for _, s := range scenarios {
		for _, m := range s.Metrics {
			if m == metric && s.Skipped != "" {
				return
			}
		}
	}
	t.Errorf("%s: neither measured nor reported as skipped", metric)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
