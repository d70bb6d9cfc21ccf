package taskrules

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestDependencies(t *testing.T) {
	start := func(n string) ecsv1alpha1.ContainerDependency {
		return ecsv1alpha1.ContainerDependency{ContainerName: n, Condition: ecsv1alpha1.DependencyStart}
	}
	healthy := ecsv1alpha1.ContainerDependency{ContainerName: "db", Condition: ecsv1alpha1.DependencyHealthy}
	cases := []struct {
		name string
		def  ecsv1alpha1.ContainerDefinition
		want []ecsv1alpha1.ContainerDependency
	}{
		{"none", ecsv1alpha1.ContainerDefinition{}, nil},
		{"links start first", ecsv1alpha1.ContainerDefinition{Links: []string{"db:database", "cache"}}, []ecsv1alpha1.ContainerDependency{start("db"), start("cache")}},
		{"dependsOn keeps its condition", ecsv1alpha1.ContainerDefinition{DependsOn: []ecsv1alpha1.ContainerDependency{healthy}, Links: []string{"db"}},
			[]ecsv1alpha1.ContainerDependency{healthy}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, Dependencies(&tc.def)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if got := LinkNames("db:database"); !cmp.Equal(got, []string{"db", "database"}) {
		t.Errorf("LinkNames = %v", got)
	}
	if got := LinkNames("db"); !cmp.Equal(got, []string{"db"}) {
		t.Errorf("LinkNames = %v", got)
	}
}
