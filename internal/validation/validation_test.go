package validation

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func containers(deps map[string][]string, order ...string) []ecsv1alpha1.ContainerDefinition {
	var out []ecsv1alpha1.ContainerDefinition
	for _, name := range order {
		c := ecsv1alpha1.ContainerDefinition{Name: name}
		for _, d := range deps[name] {
			c.DependsOn = append(c.DependsOn, ecsv1alpha1.ContainerDependency{ContainerName: d, Condition: ecsv1alpha1.DependencyStart})
		}
		out = append(out, c)
	}
	return out
}

func TestDependencyCycles(t *testing.T) {
	cases := []struct {
		name  string
		deps  map[string][]string
		order []string
		want  []string
	}{
		{name: "no dependencies", order: []string{"a", "b"}},
		{name: "chain", deps: map[string][]string{"a": {"b"}, "b": {"c"}}, order: []string{"a", "b", "c"}},
		{name: "diamond", deps: map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, order: []string{"a", "b", "c", "d"}},
		{
			name:  "two-cycle",
			deps:  map[string][]string{"a": {"b"}, "b": {"a"}},
			order: []string{"a", "b"},
			want:  []string{`spec.containerDefinitions[0].dependsOn: Invalid value: "a -> b -> a": dependsOn forms a cycle, so no container on it could ever start`},
		},
		{
			name:  "three-cycle entered from outside",
			deps:  map[string][]string{"x": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}},
			order: []string{"x", "b", "c", "d"},
			want:  []string{`spec.containerDefinitions[1].dependsOn: Invalid value: "b -> c -> d -> b": dependsOn forms a cycle, so no container on it could ever start`},
		},
		{
			name:  "two separate cycles",
			deps:  map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}},
			order: []string{"a", "b", "c", "d"},
			want: []string{
				`spec.containerDefinitions[0].dependsOn: Invalid value: "a -> b -> a": dependsOn forms a cycle, so no container on it could ever start`,
				`spec.containerDefinitions[2].dependsOn: Invalid value: "c -> d -> c": dependsOn forms a cycle, so no container on it could ever start`,
			},
		},
		{name: "unknown dependency is ignored here", deps: map[string][]string{"a": {"zz"}}, order: []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: containers(tc.deps, tc.order...)}
			var got []string
			for _, e := range TaskDefinitionSpec(field.NewPath("spec"), spec) {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlacementExpressions(t *testing.T) {
	cases := []struct {
		expr string
		want string
	}{
		{expr: "attribute:ecs.availability-zone in [a, b]"},
		{expr: "attribute:stack == prod and not attribute:spot exists"},
		{expr: "attribute:stack in [a, b", want: `spec.placementConstraints[0].expression: Invalid value: "attribute:stack in [a, b": expression: position`},
		{expr: "attribute:x =~ (", want: "spec.placementConstraints[0].expression"},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{
				ContainerDefinitions: containers(nil, "a"),
				PlacementConstraints: []ecsv1alpha1.TaskDefinitionPlacementConstraint{{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: tc.expr}},
			}
			errs := TaskDefinitionSpec(field.NewPath("spec"), spec)
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("unexpected errors: %v", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want)):
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}
