package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	grafanaprom "github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	promtemplate "github.com/prometheus/prometheus/template"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/controllers/utilization"
)

// Tests of the chart's monitoring objects: the PrometheusRule's alerts and the
// Grafana dashboard. Both are only as good as the series they query, so every metric
// and label they name is checked against the descriptors that the manager's and the
// agent's collectors declare, and the alerts are evaluated by Prometheus' own engine.

// monitoringValues enable the alerts and the dashboard; one threshold differs from
// its default to show that the values reach the rules.
const monitoringValues = `
metrics:
  prometheusRule:
    enabled: true
    labels: {release: prometheus}
    alertLabels: {team: platform}
    scaleDown: {percent: 40}
  grafanaDashboard:
    enabled: true
    namespace: monitoring
    annotations: {grafana_folder: Berth}
`

// promParser parses PromQL as a Prometheus with default flags does (no experimental
// functions).
var promParser = parser.NewParser(parser.Options{})

// TestHelmChartAlerts parses the rendered PrometheusRule's groups with Prometheus'
// rule file parser, checks the series and labels of each expression and annotation,
// and evaluates every alert over synthetic series with Prometheus' query engine: it
// fires when it should and stays quiet when it should not.
func TestHelmChartAlerts(t *testing.T) {
	objs := decodeDocuments(t, renderChart(t, "berth-release", monitoringValues))
	c := chartObjects{t: t, ns: "berth-release", objs: objs}
	pr := c.get("PrometheusRule", releaseName)
	if pr.GetNamespace() != c.ns || pr.GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule is in %q with labels %v, want %q and metrics.prometheusRule.labels", pr.GetNamespace(), pr.GetLabels(), c.ns)
	}
	spec, err := yaml.Marshal(pr.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(spec, false, model.UTF8Validation, promParser, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		t.Fatalf("Prometheus rejects the rule groups: %v\n%s", errs, spec)
	}

	series := exportedSeries(t)
	rules := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s has a recording rule %q: only alerts are expected", g.Name, r.Record)
				continue
			}
			rules[r.Alert] = r
			checkAlertRule(t, r, series)
		}
	}

	for _, tc := range alertScenarios {
		t.Run(tc.alert+"/"+tc.name, func(t *testing.T) {
			r, ok := rules[tc.alert]
			if !ok {
				t.Fatalf("the PrometheusRule has no alert %s", tc.alert)
			}
			got := firing(t, r, tc.load)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s fires for (-want +got):\n%s", tc.alert, diff)
			}
			for series, value := range got {
				checkAnnotationsExpand(t, r, series, value)
			}
		})
	}
	tested := sets.New[string]()
	for _, tc := range alertScenarios {
		if len(tc.want) > 0 {
			tested.Insert(tc.alert)
		}
	}
	if untested := sets.KeySet(rules).Difference(tested); untested.Len() > 0 {
		t.Errorf("alerts no scenario sees firing: %v", sets.List(untested))
	}
}

// alertScenarios load series (promqltest's load syntax, one point a minute from 0)
// and name the series each alert fires for, with its value, after its `for`.
var alertScenarios = []struct {
	alert, name string
	load        string
	want        map[string]float64
}{
	{
		alert: "BerthClusterNeedsInstances", name: "reservation above 100 on two manager replicas",
		load: `
berth_cluster_capacity_provider_reservation_percent{cluster="a", pod="manager-0"} 150x40
berth_cluster_capacity_provider_reservation_percent{cluster="a", pod="manager-1"} 150x40
berth_cluster_capacity_provider_reservation_percent{cluster="b", pod="manager-0"} 80x40
berth_cluster_capacity_provider_reservation_percent{cluster="full", pod="manager-0"} 100x40
berth_cluster_capacity_provider_reservation_percent{cluster="empty", pod="manager-0"} 200x40`,
		want: map[string]float64{`{cluster="a"}`: 150, `{cluster="empty"}`: 200},
	},
	{
		alert: "BerthClusterNeedsInstances", name: "a short burst",
		load: `berth_cluster_capacity_provider_reservation_percent{cluster="a"} 150x2 80x40`,
	},
	{
		alert: "BerthClusterCanScaleDown", name: "below metrics.prometheusRule.scaleDown.percent",
		load: `
berth_cluster_capacity_provider_reservation_percent{cluster="idle"} 30x40
berth_cluster_instances{cluster="idle"} 3x40
berth_cluster_capacity_provider_reservation_percent{cluster="between"} 45x40
berth_cluster_instances{cluster="between"} 3x40
berth_cluster_capacity_provider_reservation_percent{cluster="one"} 10x40
berth_cluster_instances{cluster="one"} 1x40`,
		// "between" is under the default 50 but not the 40 of monitoringValues; "one"
		// has only metrics.prometheusRule.scaleDown.minInstances.
		want: map[string]float64{`{cluster="idle"}`: 30},
	},
	{
		alert: "BerthTasksUnplaceable", name: "tasks wait",
		load: `
berth_cluster_unplaceable_tasks{cluster="a"} 2x40
berth_cluster_unplaceable_tasks{cluster="b"} 0x40
berth_cluster_unplaceable_tasks{cluster="c"} 1x3 0x40`,
		want: map[string]float64{`{cluster="a"}`: 2},
	},
	{
		alert: "BerthServiceBelowDesiredCount", name: "one service short",
		load: `
berth_service_tasks{cluster="a", namespace="shop", service="web", state="desired"} 3x40
berth_service_tasks{cluster="a", namespace="shop", service="web", state="running"} 2x40
berth_service_tasks{cluster="a", namespace="shop", service="web", state="pending"} 1x40
berth_service_tasks{cluster="a", namespace="shop", service="api", state="desired"} 2x40
berth_service_tasks{cluster="a", namespace="shop", service="api", state="running"} 2x40
berth_service_tasks{cluster="a", namespace="shop", service="api", state="pending"} 0x40`,
		want: map[string]float64{`{cluster="a", namespace="shop", service="web"}`: 2},
	},
	{
		alert: "BerthServiceRolloutFailed", name: "failed without rollback",
		load: `
berth_service_deployments{cluster="a", namespace="shop", service="web", status="PRIMARY", rollout_state="FAILED"} 1x40
berth_service_deployments{cluster="a", namespace="shop", service="api", status="PRIMARY", rollout_state="COMPLETED"} 1x40
berth_service_deployments{cluster="a", namespace="shop", service="api", status="ACTIVE", rollout_state="FAILED"} 1x40
berth_service_deployments{cluster="a", namespace="shop", service="db", status="PRIMARY", rollout_state="FAILED"} 0x40`,
		want: map[string]float64{`{cluster="a", namespace="shop", service="web"}`: 1},
	},
}

// checkAlertRule: the series and labels of the expression exist, the annotations
// name only labels the alert has, and it has a severity, the chart's alertLabels, a
// summary and a description.
func checkAlertRule(t *testing.T, r rulefmt.Rule, series map[string]sets.Set[string]) {
	t.Helper()
	out, errs := queryLabels(r.Expr, series)
	for _, err := range errs {
		t.Errorf("alert %s: %s", r.Alert, err)
	}
	if r.Labels["severity"] == "" || r.Labels["team"] != "platform" {
		t.Errorf("alert %s has labels %v, want a severity and metrics.prometheusRule.alertLabels", r.Alert, r.Labels)
	}
	for _, k := range []string{"summary", "description"} {
		text := r.Annotations[k]
		if text == "" {
			t.Errorf("alert %s has no %s annotation", r.Alert, k)
		}
		for _, m := range regexp.MustCompile(`\$labels\.(\w+)`).FindAllStringSubmatch(text, -1) {
			if out != nil && !out.Has(m[1]) {
				t.Errorf("alert %s: the %s uses $labels.%s, which its expression's result lacks (it has %v)", r.Alert, k, m[1], sets.List(out))
			}
		}
	}
	if r.For == 0 {
		t.Errorf("alert %s has no for: a single scrape would fire it", r.Alert)
	}
}

// firing evaluates the rule's expression at one-minute steps from 0 to its `for`, as
// the rule manager does, over the loaded series: the alert fires for the series the
// expression returned at every step. It returns them with their last value.
func firing(t *testing.T, r rulefmt.Rule, load string) map[string]float64 {
	t.Helper()
	storage := promqltest.LoadedStorage(t, "load 1m\n"+indent(load))
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{MaxSamples: 100000, Timeout: 10 * time.Second, Parser: promParser})
	end := time.Unix(0, 0).Add(time.Duration(r.For))
	q, err := engine.NewRangeQuery(context.Background(), storage, nil, r.Expr, time.Unix(0, 0), end, time.Minute)
	if err != nil {
		t.Fatalf("alert %s: %v", r.Alert, err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("alert %s: %v", r.Alert, res.Err)
	}
	m, err := res.Matrix()
	if err != nil {
		t.Fatalf("alert %s: %v", r.Alert, err)
	}
	steps := int(time.Duration(r.For)/time.Minute) + 1
	var got map[string]float64
	for _, s := range m {
		if len(s.Floats) == steps {
			if got == nil {
				got = map[string]float64{}
			}
			got[s.Metric.String()] = s.Floats[len(s.Floats)-1].F
		}
	}
	return got
}

// checkAnnotationsExpand expands the alert's annotations as Prometheus would for one
// firing series: every label value appears, nothing is missing.
func checkAnnotationsExpand(t *testing.T, r rulefmt.Rule, series string, value float64) {
	t.Helper()
	lbls, err := promParser.ParseMetric(series)
	if err != nil {
		t.Fatal(err)
	}
	data := promtemplate.AlertTemplateData(lbls.Map(), nil, "", promql.Sample{F: value})
	// The rule manager's preamble (rules/alerting.go).
	defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
	for k, text := range r.Annotations {
		exp := promtemplate.NewTemplateExpander(context.Background(), defs+text, "__alert_"+r.Alert, data, 0, nil, nil, nil)
		got, err := exp.Expand()
		if err != nil {
			t.Errorf("alert %s: expanding its %s: %v", r.Alert, k, err)
			continue
		}
		if strings.Contains(got, "<no value>") || strings.Contains(got, "{{") {
			t.Errorf("alert %s: its %s expands to %q", r.Alert, k, got)
		}
		if strings.Contains(text, "$value") && !strings.Contains(got, fmt.Sprint(value)) {
			t.Errorf("alert %s: its %s %q does not give the value %v", r.Alert, k, got, value)
		}
		for name, value := range lbls.Map() {
			if !strings.Contains(got, value) {
				t.Errorf("alert %s: its %s %q does not name %s %q", r.Alert, k, got, name, value)
			}
		}
	}
}

// TestHelmChartDashboard checks the rendered dashboard ConfigMap and its JSON: strict
// decoding with the Grafana Foundation SDK's dashboard types (unknown fields, wrong
// types and missing required fields are errors, the panels' options and field
// configs by their plugin's schema), the layout, the datasource of every query, and
// every query's series and labels, including those its legend and the template
// variables use.
func TestHelmChartDashboard(t *testing.T) {
	objs := decodeDocuments(t, renderChart(t, "berth-release", monitoringValues))
	c := chartObjects{t: t, ns: "berth-release", objs: objs}
	cm := c.get("ConfigMap", releaseName+"-dashboard")
	if cm.GetNamespace() != "monitoring" || cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Berth" {
		t.Errorf("dashboard ConfigMap in %q with labels %v and annotations %v, want metrics.grafanaDashboard's namespace, labels and annotations",
			cm.GetNamespace(), cm.GetLabels(), cm.GetAnnotations())
	}
	data, _ := cm.Object["data"].(map[string]any)
	raw, _ := data["berth.json"].(string)
	file, err := os.ReadFile(repoPath(chartPath, "files", "dashboards", "berth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if raw != strings.TrimSuffix(string(file), "\n") {
		t.Errorf("the ConfigMap's berth.json differs from files/dashboards/berth.json")
	}

	plugins.RegisterDefaultPlugins()
	if err := sdkError(new(classicDashboard).UnmarshalJSONStrict([]byte(raw))); err != nil {
		t.Fatalf("the dashboard does not decode strictly as a Grafana dashboard: %v", err)
	}
	// The strict decoders drop what they decode through interfaces (panels, queries,
	// options), though they do report its errors; so the strict decoding above
	// validates, is shown below to catch an error at each level, and the checks read
	// the plain decoding.
	for _, m := range []struct{ old, new string }{
		{`"legendFormat"`, `"bogus": 1, "legendFormat"`}, // in a query
		{`"displayMode"`, `"bogus": 1, "displayMode"`},   // in a panel's options
		{`"drawStyle"`, `"bogus": 1, "drawStyle"`},       // in its field config
		{`"allValue"`, `"bogus": 1, "allValue"`},         // in a variable
		{`"h": 8`, `"h": "8"`},                           // a wrong type
	} {
		mutated := strings.Replace(raw, m.old, m.new, 1)
		if mutated == raw {
			t.Fatalf("the dashboard has no %s to spoil", m.old)
		}
		if sdkError(new(classicDashboard).UnmarshalJSONStrict([]byte(mutated))) == nil {
			t.Errorf("strict decoding accepts the dashboard with %s: it checks nothing there", m.new)
		}
	}
	var d classicDashboard
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 39 || d.Uid == nil || *d.Uid == "" {
		t.Errorf("dashboard schemaVersion %d, uid %v: want 39 or later and a uid", d.SchemaVersion, d.Uid)
	}
	vars := checkDashboardVariables(t, d, exportedSeries(t))
	used := checkDashboardPanels(t, d, vars, exportedSeries(t))

	// Every series of the manager is on the dashboard.
	var manager []string
	for _, desc := range utilization.Descriptors() {
		name, _ := descSeries(t, desc)
		manager = append(manager, name)
	}
	if missing := sets.New(manager...).Difference(used); missing.Len() > 0 {
		t.Errorf("the dashboard shows none of the manager's series %v", sets.List(missing))
	}
}

// classicDashboard is the dashboard JSON model (schemaVersion) that Grafana's file
// provisioning and its sidecar load. The SDK deprecates it for dashboardv2, the
// resource of Grafana 12's new dashboard API, which neither loads.
type classicDashboard = dashboard.Dashboard //nolint:staticcheck // see above

// sdkError is err, or nil for an empty cog.BuildErrors: the SDK's strict decoders
// return their list of errors, empty or not, as an error.
func sdkError(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}

// dashboardDatasource is the reference of every panel and query: the datasource
// template variable.
const dashboardDatasource = "${datasource}"

// checkDashboardVariables: a Prometheus datasource variable named "datasource", and
// query variables over exported series and labels. It returns the variables' names.
func checkDashboardVariables(t *testing.T, d classicDashboard, series map[string]sets.Set[string]) sets.Set[string] {
	t.Helper()
	vars := sets.New[string]()
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		vars.Insert(v.Name)
		query := ""
		if v.Query != nil && v.Query.String != nil {
			query = *v.Query.String
		}
		switch v.Type {
		case dashboard.VariableTypeDatasource:
			if v.Name != "datasource" || query != "prometheus" {
				t.Errorf("datasource variable %q of type %q, want \"datasource\" of type prometheus", v.Name, query)
			}
		case dashboard.VariableTypeQuery:
			if v.Datasource == nil || v.Datasource.Uid == nil || *v.Datasource.Uid != dashboardDatasource {
				t.Errorf("variable %s does not query the datasource variable", v.Name)
			}
			m := labelValues.FindStringSubmatch(query)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(<selector>, <label>)", v.Name, query)
				continue
			}
			out, errs := queryLabels(substituteVariables(t, m[1], vars), series)
			for _, err := range errs {
				t.Errorf("variable %s: %s", v.Name, err)
			}
			if out != nil && !out.Has(m[2]) {
				t.Errorf("variable %s: label_values of %s, which %s lacks", v.Name, m[2], m[1])
			}
		default:
			t.Errorf("variable %s is of type %q: only datasource and query variables are checked", v.Name, v.Type)
		}
	}
	if !vars.Has("datasource") {
		t.Errorf("the dashboard has no datasource variable")
	}
	return vars
}

// checkDashboardPanels checks the panels and their queries and returns the series
// the queries select.
func checkDashboardPanels(t *testing.T, d classicDashboard, vars sets.Set[string], series map[string]sets.Set[string]) sets.Set[string] {
	t.Helper()
	used := sets.New[string]()
	ids := map[uint32]string{}
	var boxes []panelBox
	var rows []string
	addBox := func(title string, id uint32, g *dashboard.GridPos) {
		if prev, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %d", prev, title, id)
		}
		ids[id] = title
		if g == nil {
			t.Errorf("panel %q has no gridPos", title)
			return
		}
		if g.W == 0 || g.H == 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit the 24 columns", title, *g)
		}
		for _, b := range boxes {
			if g.X < b.X+b.W && b.X < g.X+g.W && g.Y < b.Y+b.H && b.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", b.title, title)
			}
		}
		boxes = append(boxes, panelBox{title: title, GridPos: *g})
	}
	for _, pr := range d.Panels {
		if row := pr.RowPanel; row != nil {
			title := ptr.Deref(row.Title, "")
			rows = append(rows, title)
			addBox(title, row.Id, row.GridPos)
			if row.Collapsed || len(row.Panels) > 0 {
				t.Errorf("row %q is collapsed: its panels are not checked", title)
			}
			continue
		}
		p := pr.Panel
		title := ptr.Deref(p.Title, "")
		addBox(title, ptr.Deref(p.Id, 0), p.GridPos)
		if title == "" || ptr.Deref(p.Description, "") == "" {
			t.Errorf("panel %d has title %q and description %q: each needs both", ptr.Deref(p.Id, 0), title, ptr.Deref(p.Description, ""))
		}
		if _, ok := cog.ConfigForPanelcfgVariant(p.Type); !ok {
			t.Errorf("panel %q is of type %q, whose options the SDK cannot check", title, p.Type)
		}
		if p.Datasource == nil || ptr.Deref(p.Datasource.Type, "") != "prometheus" || ptr.Deref(p.Datasource.Uid, "") != dashboardDatasource {
			t.Errorf("panel %q does not use the datasource variable", title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		refIDs := sets.New[string]()
		for i, target := range p.Targets {
			q, ok := target.(*grafanaprom.Dataquery)
			if !ok {
				t.Errorf("panel %q: query %d is a %T, not a Prometheus query", title, i, target)
				continue
			}
			where := fmt.Sprintf("panel %q query %s", title, ptr.Deref(q.RefId, ""))
			if refIDs.Has(ptr.Deref(q.RefId, "")) || ptr.Deref(q.RefId, "") == "" {
				t.Errorf("%s: refId empty or repeated", where)
			}
			refIDs.Insert(ptr.Deref(q.RefId, ""))
			if q.Datasource == nil || ptr.Deref(q.Datasource.Uid, "") != dashboardDatasource {
				t.Errorf("%s does not use the datasource variable", where)
			}
			expr := substituteVariables(t, q.Expr, vars)
			out, errs := queryLabels(expr, series)
			for _, err := range errs {
				t.Errorf("%s: %s", where, err)
			}
			for _, m := range regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`).FindAllStringSubmatch(ptr.Deref(q.LegendFormat, ""), -1) {
				if out != nil && !out.Has(m[1]) {
					t.Errorf("%s: the legend uses %s, which the result lacks (it has %v)", where, m[1], sets.List(out))
				}
			}
			used = used.Union(selectedSeries(expr))
		}
	}
	if diff := cmp.Diff([]string{"Clusters", "Services", "Task definitions", "Tasks"}, rows); diff != "" {
		t.Errorf("dashboard rows (-want +got):\n%s", diff)
	}
	return used
}

type panelBox struct {
	title string
	dashboard.GridPos
}

// substituteVariables replaces the dashboard's variables with a value, and Grafana's
// interval variables with a duration, so the query parses as Prometheus will receive
// it. A variable the dashboard does not define is an error.
func substituteVariables(t *testing.T, q string, vars sets.Set[string]) string {
	t.Helper()
	builtin := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}
	return regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`).ReplaceAllStringFunc(q, func(ref string) string {
		name := strings.Trim(ref, "${}")
		if d, ok := builtin[name]; ok {
			return d
		}
		if !vars.Has(name) {
			t.Errorf("query %q uses $%s, which the dashboard does not define", q, name)
		}
		return "value"
	})
}

// exportedSeries are the series Berth's code declares, by name, with their label
// names: the manager's utilization collector and the agent's.
func exportedSeries(t *testing.T) map[string]sets.Set[string] {
	t.Helper()
	descs := utilization.Descriptors()
	ch := make(chan *prometheus.Desc, 100)
	metrics.NewCollector(metrics.Config{}).Describe(ch)
	close(ch)
	for d := range ch {
		descs = append(descs, d)
	}
	out := map[string]sets.Set[string]{}
	for _, d := range descs {
		name, labels := descSeries(t, d)
		out[name] = labels
	}
	if len(out) != len(descs) || len(out) < 15 {
		t.Fatalf("%d series from %d descriptors: %v", len(out), len(descs), slices.Sorted(maps.Keys(out)))
	}
	return out
}

var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), .*, constLabels: \{(.*)\}, variableLabels: \{(.*)\}\}$`)

// descSeries reads a descriptor's name and label names from its String(): Desc has
// no getters.
func descSeries(t *testing.T, d *prometheus.Desc) (string, sets.Set[string]) {
	t.Helper()
	m := descRE.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("cannot read the descriptor %s", d)
	}
	name, err := strconv.Unquote(m[1])
	if err != nil || !model.LegacyValidation.IsValidMetricName(name) {
		t.Fatalf("descriptor %s: name %q: %v", d, name, err)
	}
	labels := sets.New[string]()
	for _, lp := range regexp.MustCompile(`(\w+)="`).FindAllStringSubmatch(m[2], -1) {
		labels.Insert(lp[1])
	}
	for _, l := range strings.Split(m[3], ",") {
		if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
			labels.Insert(l)
		}
	}
	return name, labels
}

// queryLabels parses a PromQL expression and returns the labels of its result,
// with an error for each series it selects that Berth does not export, and for each
// label it matches, groups by, joins on or keeps that the series beneath lack.
func queryLabels(q string, series map[string]sets.Set[string]) (sets.Set[string], []string) {
	expr, err := promParser.ParseExpr(q)
	if err != nil {
		return nil, []string{fmt.Sprintf("%q does not parse: %v", q, err)}
	}
	c := &labelChecker{series: series}
	return c.labels(expr), c.errs
}

type labelChecker struct {
	series map[string]sets.Set[string]
	errs   []string
}

func (c *labelChecker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// need reports the labels of want that have lacks (nil: unknown, none reported).
func (c *labelChecker) need(have sets.Set[string], want []string, what string) {
	if have == nil {
		return
	}
	for _, l := range want {
		if !have.Has(l) {
			c.errorf("%s %s, which is not among %v", what, l, sets.List(have))
		}
	}
}

// labels returns the label names of e's result: empty for a scalar, nil when they
// are unknown because a series beneath is.
func (c *labelChecker) labels(e parser.Expr) sets.Set[string] {
	switch e := e.(type) {
	case *parser.VectorSelector:
		have, ok := c.series[e.Name]
		if !ok {
			c.errorf("%s is not a series Berth exports", e.Name)
			return nil // unknown: no further errors about its labels
		}
		for _, m := range e.LabelMatchers {
			if m.Name != model.MetricNameLabel && !have.Has(m.Name) {
				c.errorf("%s has no label %s", e.Name, m.Name)
			}
		}
		return have.Clone()
	case *parser.MatrixSelector:
		return c.labels(e.VectorSelector)
	case *parser.SubqueryExpr:
		return c.labels(e.Expr)
	case *parser.ParenExpr:
		return c.labels(e.Expr)
	case *parser.UnaryExpr:
		return c.labels(e.Expr)
	case *parser.StepInvariantExpr:
		return c.labels(e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return sets.New[string]()
	case *parser.Call:
		out := sets.New[string]()
		for _, a := range e.Args {
			if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
				out = c.labels(a)
			}
		}
		if out != nil && (e.Func.Name == "label_replace" || e.Func.Name == "label_join") {
			out.Insert(e.Args[1].(*parser.StringLiteral).Val)
		}
		return out
	case *parser.AggregateExpr:
		in := c.labels(e.Expr)
		if e.Param != nil {
			c.labels(e.Param)
		}
		c.need(in, e.Grouping, "aggregates by")
		switch {
		case e.Op == parser.TOPK || e.Op == parser.BOTTOMK || e.Op == parser.LIMITK || e.Op == parser.LIMIT_RATIO:
			return in // they keep the series, grouping only partitions them
		case in == nil:
			return nil
		case e.Without:
			return in.Difference(sets.New(e.Grouping...))
		default:
			return sets.New(e.Grouping...)
		}
	case *parser.BinaryExpr:
		return c.binaryLabels(e)
	default:
		c.errorf("%s: %T is not checked", e, e)
		return sets.New[string]()
	}
}

// binaryLabels are the labels of a binary operation's result, as the engine's
// resultMetric makes them; vector matching must find the labels it matches on.
func (c *labelChecker) binaryLabels(e *parser.BinaryExpr) sets.Set[string] {
	l, r := c.labels(e.LHS), c.labels(e.RHS)
	if e.LHS.Type() != parser.ValueTypeVector {
		return r
	}
	if e.RHS.Type() != parser.ValueTypeVector {
		return l
	}
	vm := e.VectorMatching
	one := r // the side group_left and group_right include labels from
	if vm.Card == parser.CardOneToMany {
		one = l
	}
	c.need(one, vm.Include, "includes")
	if vm.On {
		c.need(l, vm.MatchingLabels, "matches on")
		c.need(r, vm.MatchingLabels, "matches on")
	}
	if l == nil || r == nil {
		return nil
	}
	matched := sets.New(vm.MatchingLabels...)
	if !vm.On && vm.Card == parser.CardOneToOne && !l.Difference(matched).Equal(r.Difference(matched)) {
		c.errorf("%s: its sides have labels %v and %v, so no series match: add on() or ignoring()", e, sets.List(l), sets.List(r))
	}
	switch {
	case e.Op == parser.LAND || e.Op == parser.LUNLESS:
		return l
	case e.Op == parser.LOR:
		return l.Intersection(r)
	case vm.Card == parser.CardOneToOne && vm.On:
		return matched
	case vm.Card == parser.CardOneToOne:
		return l.Difference(matched)
	case vm.Card == parser.CardManyToOne:
		return l.Union(sets.New(vm.Include...))
	default:
		return r.Union(sets.New(vm.Include...))
	}
}

// selectedSeries are the names of the series an expression selects.
func selectedSeries(q string) sets.Set[string] {
	out := sets.New[string]()
	expr, err := promParser.ParseExpr(q)
	if err != nil {
		return out
	}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out.Insert(vs.Name)
		}
		return nil
	})
	return out
}

// indent indents every non-empty line of s for a promqltest command.
func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("  " + strings.TrimSpace(line) + "\n")
	}
	return b.String()
}
