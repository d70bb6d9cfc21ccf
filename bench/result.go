package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// The metric names are part of the contract of `make bench` (GitHub issue 6): the
// JSON results carry them in the "Metric" label of every data item.
const (
	PlacementThroughput = "PlacementThroughput"
	ServiceScaleOut     = "ServiceScaleOut"
	RollingDeploy       = "RollingDeploy"
	WritesPerTask       = "WritesPerTask"
	BindingPatchCost    = "BindingPatchCost"
	TaskWriteCost       = "TaskWriteCost"
	UtilizationWrites   = "UtilizationWrites"
	ECSAPIDescribeTasks = "ECSAPIDescribeTasks"
	ECSAPIRunTask       = "ECSAPIRunTask"
	ECSAPIFootprint     = "ECSAPIFootprint"
	GatewayRead         = "GatewayRead"
	TaskStartupLatency  = "TaskStartupLatency"
	AgentFootprint      = "AgentFootprint"
	HollowScale         = "HollowScale"
)

// Metrics lists every metric, in the order the suite runs and reports them.
var Metrics = []string{
	PlacementThroughput, ServiceScaleOut, RollingDeploy, WritesPerTask, BindingPatchCost, TaskWriteCost, UtilizationWrites,
	ECSAPIDescribeTasks, ECSAPIRunTask, ECSAPIFootprint, GatewayRead,
	TaskStartupLatency, AgentFootprint, HollowScale,
}

// Roles of data items: every figure is written as a value item, a baseline item
// measured in the same run and a ratio item (value ÷ baseline, key by key). Context
// items (CPU use of each process during a measurement) explain a figure and have no
// baseline.
const (
	RoleValue    = "value"
	RoleBaseline = "baseline"
	RoleRatio    = "ratio"
	RoleContext  = "context"
)

// Figure is one measured quantity with its baseline.
type Figure struct {
	// Metric is one of Metrics; Name says which figure of the metric this is.
	Metric, Name string
	// Unit of Values, e.g. "tasks/s", "ms", "MiB".
	Unit string
	// Values holds statistics by scheduler_perf name (Average, Perc50, Perc90,
	// Perc99, Max) or a single "Value".
	Values map[string]float64
	// Baseline is the same quantity for the reference workload of the same run.
	Baseline Baseline
	// Note is a sentence for the Markdown summary (what was measured, how).
	Note string
}

// Baseline is the reference a figure is compared with.
type Baseline struct {
	// What describes the reference workload, e.g. "10000 ConfigMap creates".
	What   string
	Unit   string
	Values map[string]float64
}

// Ratios divides the figure by its baseline for every key both have. A ratio of a
// time above 1 is slower than the baseline; of a rate below 1, slower too.
func (f Figure) Ratios() map[string]float64 {
	out := map[string]float64{}
	for k, v := range f.Values {
		if b, ok := f.Baseline.Values[k]; ok {
			out[k] = ratio(v, b)
		}
	}
	return out
}

func ratio(v, b float64) float64 {
	if b == 0 {
		if v == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return v / b
}

// Context is a figure that explains another (where the CPU went), without baseline.
type Context struct {
	Metric, Name, Unit string
	Values             map[string]float64
}

// DataItem is one entry of the results, in the Kubernetes scheduler_perf format.
type DataItem struct {
	Data   map[string]float64 `json:"data"`
	Unit   string             `json:"unit"`
	Labels map[string]string  `json:"labels,omitempty"`
}

// Report is everything one run measured.
type Report struct {
	// Version is the format's version, as scheduler_perf's "v1".
	Version   string     `json:"version"`
	DataItems []DataItem `json:"dataItems"`

	// The rest describes the run.
	Size      float64           `json:"size"`
	StartedAt time.Time         `json:"startedAt"`
	Duration  float64           `json:"durationSeconds"`
	Machine   Machine           `json:"machine"`
	Versions  map[string]string `json:"versions"`
	// Scenarios says how long each scenario took and what it found out of the
	// ordinary (skipped parts, failures), by scenario name.
	Scenarios []ScenarioResult `json:"scenarios"`

	figures  []Figure
	contexts []Context
}

// ScenarioResult is the outcome of one scenario.
type ScenarioResult struct {
	Name     string   `json:"name"`
	Metrics  []string `json:"metrics"`
	Seconds  float64  `json:"seconds"`
	Skipped  string   `json:"skipped,omitempty"`
	Error    string   `json:"error,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	LoadAvg1 float64  `json:"loadAverage1m"`
}

// Failed reports whether a scenario failed.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Scenarios, func(s ScenarioResult) bool { return s.Error != "" })
}

// add records figures and their data items.
func (r *Report) add(figs []Figure, ctxs []Context) {
	for _, f := range figs {
		r.figures = append(r.figures, f)
		labels := func(role string) map[string]string {
			l := map[string]string{"Metric": f.Metric, "Name": f.Name, "Role": role, "Size": strconv.FormatFloat(r.Size, 'g', -1, 64)}
			if role != RoleValue {
				l["Baseline"] = f.Baseline.What
			}
			return l
		}
		r.DataItems = append(r.DataItems,
			DataItem{Data: f.Values, Unit: f.Unit, Labels: labels(RoleValue)},
			DataItem{Data: f.Baseline.Values, Unit: f.Baseline.Unit, Labels: labels(RoleBaseline)},
			DataItem{Data: jsonSafe(f.Ratios()), Unit: "ratio", Labels: labels(RoleRatio)})
	}
	for _, c := range ctxs {
		r.contexts = append(r.contexts, c)
		r.DataItems = append(r.DataItems, DataItem{Data: c.Values, Unit: c.Unit,
			Labels: map[string]string{"Metric": c.Metric, "Name": c.Name, "Role": RoleContext}})
	}
}

// jsonSafe replaces infinities, which JSON cannot carry, by -1 (a baseline of zero).
func jsonSafe(m map[string]float64) map[string]float64 {
	for k, v := range m {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			m[k] = -1
		}
	}
	return m
}

// WriteFiles writes the report as latest.json and latest.md in dir, and keeps a copy
// of both named by the start time, so older runs stay beside the latest.
func (r *Report) WriteFiles(dir string) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encoding results: %w", err)
	}
	md := []byte(r.Markdown())
	stamp := r.StartedAt.UTC().Format("2006-01-02T150405Z") + "-size" + strconv.FormatFloat(r.Size, 'g', -1, 64)
	for name, data := range map[string][]byte{
		"latest.json": js, "latest.md": md, stamp + ".json": js, stamp + ".md": md,
	} {
		if err := writeAtomic(filepath.Join(dir, name), data); err != nil {
			return "", "", err
		}
	}
	return filepath.Join(dir, "latest.json"), filepath.Join(dir, "latest.md"), nil
}

// writeAtomic writes through a temporary file (ignored by git as *.tmp), so a run
// interrupted while writing never leaves a truncated latest.json.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
