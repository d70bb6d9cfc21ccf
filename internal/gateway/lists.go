package gateway

import (
	"errors"
	"fmt"
	"net/url"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// The lists and watches an agent may pass through the gateway: those of its cache
// (agent.NewCache), each no wider than the agent needs.

// selectors checks a list's query with check, after making sure each selector is
// given once: what is checked is what the apiserver applies.
func selectors(q url.Values, instance string, check func(string, url.Values) error) error {
	for _, k := range []string{"fieldSelector", "labelSelector"} {
		if len(q[k]) > 1 {
			return fmt.Errorf("%s is given %d times; give it once", k, len(q[k]))
		}
	}
	return check(instance, q)
}

// taskList allows only the instance's own tasks.
func taskList(instance string, q url.Values) error {
	want := ecsv1alpha1.TaskFieldContainerInstance + "=" + instance
	if v, ok := oneField(q, ecsv1alpha1.TaskFieldContainerInstance); !ok || v != instance {
		return fmt.Errorf("a list of tasks must select fieldSelector=%s exactly", want)
	}
	return nil
}

// clusterList allows a list of one Cluster, by name: the one the agent registers in.
func clusterList(_ string, q url.Values) error {
	if _, ok := oneField(q, "metadata.name"); !ok {
		return errors.New("a list of clusters must select one by fieldSelector=metadata.name=<cluster>")
	}
	return nil
}

// revisionList allows task definition revisions only, not every ControllerRevision
// of the cluster (DaemonSets and StatefulSets keep theirs there too).
func revisionList(_ string, q url.Values) error {
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err == nil {
		reqs, _ := sel.Requirements()
		for _, r := range reqs {
			if r.Key() == ecsv1alpha1.LabelFamily && (r.Operator() == selection.Exists || r.Operator() == selection.Equals ||
				r.Operator() == selection.DoubleEquals || r.Operator() == selection.In) {
				return nil
			}
		}
	}
	return fmt.Errorf("a list of controllerrevisions must select labelSelector=%s", ecsv1alpha1.LabelFamily)
}

// anyList allows the list: TaskDefinitions hold no secret values (those are in
// Secrets), and an agent resolves unpinned references by their latest revision.
func anyList(string, url.Values) error { return nil }

// oneField is the value of the fieldSelector when it is exactly field=value.
func oneField(q url.Values, field string) (string, bool) {
	sel, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return "", false
	}
	reqs := sel.Requirements()
	if len(reqs) != 1 || reqs[0].Field != field || (reqs[0].Operator != selection.Equals && reqs[0].Operator != selection.DoubleEquals) {
		return "", false
	}
	return reqs[0].Value, true
}
