package controlplane

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/berthdev/berth/agent/hollow"
	"github.com/berthdev/berth/internal/testobj"
)

// TestMeasureServiceConvergence reports, without asserting on time, how long a
// 1,000-task Service takes to converge on 100 hollow instances and how many mutating
// apiserver requests each task costs, from the apiserver's own request counter.
// Run it with BERTH_MEASURE=1; benchmarks proper live in `make bench`.
func TestMeasureServiceConvergence(t *testing.T) {
	if os.Getenv("BERTH_MEASURE") == "" {
		t.Skip("set BERTH_MEASURE=1 to measure")
	}
	const instances, tasks = 100, 1000
	ns := env.Namespace(t)
	cluster := uniqueCluster(ns)
	startManager(t)
	agents := startHollow(t, hollow.Config{Cluster: cluster, Instances: instances, NamePrefix: ns, RunningDelay: 100 * time.Millisecond})
	waitConnected(t, agents.Names()...)
	create(t, testobj.TaskDefinition(ns, "web").Container("app", "demo:1").Obj())
	time.Sleep(time.Second)

	before := mutatingRequests(t)
	start := time.Now()
	create(t, testobj.Service(ns, "web", "web", tasks).Cluster(cluster).Obj())
	steady(t, ns, "web", tasks, "web:1")
	elapsed := time.Since(start)
	after := mutatingRequests(t)

	perTask := func(resource string) float64 { return float64(after[resource]-before[resource]) / tasks }
	t.Logf("%d tasks on %d hollow instances converged in %s (%.0f tasks/s)", tasks, instances, elapsed.Round(time.Millisecond), tasks/elapsed.Seconds())
	t.Logf("mutating requests per task: tasks %.2f, tasks/status %.2f, events %.2f, services/status %.3f",
		perTask("tasks"), perTask("tasks/status"), perTask("events"), perTask("services/status"))
}

// mutatingRequests sums apiserver_request_total over mutating verbs, per resource
// (with its subresource as resource/sub).
func mutatingRequests(t *testing.T) map[string]int64 {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels := line[strings.Index(line, "{")+1 : strings.LastIndex(line, "}")]
		verb, resource, sub := label(labels, "verb"), label(labels, "resource"), label(labels, "subresource")
		switch verb {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
		default:
			continue
		}
		if sub != "" {
			resource += "/" + sub
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]), 64)
		if err == nil {
			out[resource] += int64(v)
		}
	}
	return out
}

func label(labels, name string) string {
	i := strings.Index(labels, name+`="`)
	if i < 0 {
		return ""
	}
	rest := labels[i+len(name)+2:]
	return rest[:strings.Index(rest, `"`)]
}
