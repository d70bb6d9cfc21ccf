package integration

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// taskBuilder builds Task objects for tests.
type taskBuilder struct{ task ecsv1alpha1.Task }

func makeTask(ns, name string) *taskBuilder {
	return &taskBuilder{task: ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       ecsv1alpha1.TaskSpec{TaskDefinition: "web:1"},
	}}
}

func (b *taskBuilder) instance(name string) *taskBuilder {
	b.task.Spec.ContainerInstance = name
	return b
}

func (b *taskBuilder) cluster(name string) *taskBuilder {
	b.task.Spec.Cluster = name
	return b
}

func (b *taskBuilder) obj() *ecsv1alpha1.Task { return b.task.DeepCopy() }

// TestTaskFieldSelector checks that the apiserver filters Tasks by the selectable
// fields spec.containerInstance and spec.cluster, as the agent does to watch only the
// tasks bound to its instance.
func TestTaskFieldSelector(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	for _, task := range []*ecsv1alpha1.Task{
		makeTask(ns, "a-1").instance("worker-a").obj(),
		makeTask(ns, "a-2").instance("worker-a").cluster("prod").obj(),
		makeTask(ns, "b-1").instance("worker-b").cluster("prod").obj(),
		makeTask(ns, "unplaced").obj(),
	} {
		if err := env.Client.Create(ctx, task); err != nil {
			t.Fatalf("creating task %s: %v", task.Name, err)
		}
	}

	tests := []struct {
		name   string
		fields client.MatchingFields
		want   []string
	}{
		{"instance a", client.MatchingFields{"spec.containerInstance": "worker-a"}, []string{"a-1", "a-2"}},
		{"instance b", client.MatchingFields{"spec.containerInstance": "worker-b"}, []string{"b-1"}},
		{"unknown instance", client.MatchingFields{"spec.containerInstance": "worker-c"}, nil},
		{"unbound", client.MatchingFields{"spec.containerInstance": ""}, []string{"unplaced"}},
		{"cluster prod", client.MatchingFields{"spec.cluster": "prod"}, []string{"a-2", "b-1"}},
		{"default cluster", client.MatchingFields{"spec.cluster": ecsv1alpha1.DefaultClusterName}, []string{"a-1", "unplaced"}},
		{"instance and cluster", client.MatchingFields{"spec.containerInstance": "worker-a", "spec.cluster": "prod"}, []string{"a-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var list ecsv1alpha1.TaskList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns), tc.fields); err != nil {
				t.Fatalf("listing tasks with %v: %v", tc.fields, err)
			}
			var got []string
			for _, task := range list.Items {
				got = append(got, task.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("tasks with %v = %q, want %q", tc.fields, got, tc.want)
			}
		})
	}
}
