package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// mutatingRequests sums the apiserver's own apiserver_request_total counter over the
// mutating verbs, per resource (resource/subresource for subresources, e.g.
// tasks/status). Differences of two readings count the writes in between, whoever
// made them.
func mutatingRequests(ctx context.Context, cfg *rest.Config) (map[string]float64, error) {
	r, err := readRequestCounts(ctx, cfg)
	return mutatingRequestsOf(r.byVerb), err
}

// requestsByVerb is apiserver_request_total per verb and resource ("GET tasks"), for
// every verb: what one client call cost the apiserver, when nothing else runs.
func requestsByVerb(ctx context.Context, cfg *rest.Config) (map[string]float64, error) {
	r, err := readRequestCounts(ctx, cfg)
	return r.byVerb, err
}

// requestReading is one reading of apiserver_request_total: every request by verb
// and resource (as requestsByVerb), and the writes the apiserver refused with 409 by
// resource: an optimistic lock on an older copy, or a create of a name that exists.
type requestReading struct {
	byVerb, conflicts map[string]float64
}

func readRequestCounts(ctx context.Context, cfg *rest.Config) (requestReading, error) {
	raw, err := apiserverMetrics(ctx, cfg)
	if err != nil {
		return requestReading{}, fmt.Errorf("reading the apiserver's /metrics: %w", err)
	}
	return parseRequestReading(raw), nil
}

func parseRequestReading(text string) requestReading {
	return requestReading{byVerb: parseRequestsByVerb(text), conflicts: parseRequests(text, func(verb, resource, code string) (string, bool) {
		return resource, code == "409"
	})}
}

// since is what was counted between an earlier reading and r.
func (r requestReading) since(before requestReading) requestReading {
	return requestReading{byVerb: diff(before.byVerb, r.byVerb), conflicts: diff(before.conflicts, r.conflicts)}
}

// readRequests keeps the reads of requestsByVerb (GET, LIST and WATCH, per verb and
// resource): the apiserver work a phase costs besides its writes. A WATCH is
// counted when it ends.
func readRequests(byVerb map[string]float64) map[string]float64 {
	return withVerbs(byVerb, "GET", "LIST", "WATCH")
}

// withVerbs keeps the counts of requestsByVerb whose verb is one of verbs.
func withVerbs(byVerb map[string]float64, verbs ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range byVerb {
		if verb, _, _ := strings.Cut(k, " "); slices.Contains(verbs, verb) {
			out[k] = v
		}
	}
	return out
}

func parseRequestsByVerb(text string) map[string]float64 {
	return parseRequests(text, func(verb, resource, _ string) (string, bool) { return verb + " " + resource, true })
}

// mutatingRequestsOf sums the mutating verbs of requestsByVerb per resource.
func mutatingRequestsOf(byVerb map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range byVerb {
		verb, resource, _ := strings.Cut(k, " ")
		switch verb {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
			out[resource] += v
		}
	}
	return out
}

// parseRequests sums apiserver_request_total by the key that key makes of a line's
// verb, resource (resource/subresource for subresources) and response code; lines it
// refuses are left out.
func parseRequests(text string, key func(verb, resource, code string) (string, bool)) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		open, closing := strings.Index(line, "{"), strings.LastIndex(line, "}")
		if closing < open {
			continue
		}
		labels := parseLabels(line[open+1 : closing])
		resource := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			resource += "/" + sub
		}
		k, ok := key(labels["verb"], resource, labels["code"])
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[closing+1:]), 64)
		if err == nil {
			out[k] += v
		}
	}
	return out
}

// parseLabels parses the label set of a Prometheus text line (name="value",...).
// The apiserver's label values hold no quotes, so escapes are not handled.
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.Index(s, `="`)
		if eq < 0 {
			break
		}
		name, rest := s[:eq], s[eq+2:]
		end := strings.Index(rest, `"`)
		if end < 0 {
			break
		}
		out[name] = rest[:end]
		s = strings.TrimPrefix(rest[end+1:], ",")
	}
	return out
}

// diff returns after - before for every key of after.
func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// describeCounts lists counts by name (writes by resource, reconciles by
// controller), largest first.
func describeCounts(w map[string]float64) string { return describeLargestFirst(w, "%s %.0f") }

// describeRates lists rates by name (reads per task), largest first, to three
// significant digits.
func describeRates(w map[string]float64) string { return describeLargestFirst(w, "%s %.3g") }

func describeLargestFirst(w map[string]float64, format string) string {
	if len(w) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(w))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(w[b], w[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf(format, k, w[k])
	}
	return strings.Join(parts, ", ")
}

// apiserverProfile records a CPU profile of the apiserver for seconds through its
// /debug/pprof/profile endpoint (kube-apiserver serves it with --profiling, the
// default, to cluster administrators) and writes it to path.
func apiserverProfile(ctx context.Context, cfg *rest.Config, seconds int, path string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(seconds)).DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("profiling the apiserver: %w", err)
	}
	return os.WriteFile(path, raw, 0o644)
}
