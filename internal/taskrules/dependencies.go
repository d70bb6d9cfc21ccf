package taskrules

import (
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Dependencies are what a container waits for before it starts: its dependsOn, and
// START of every container it links to that dependsOn does not name already (ECS
// starts a linked container first, as Docker needs it). The agent orders starts by
// them and validation finds cycles in them.
func Dependencies(def *ecsv1alpha1.ContainerDefinition) []ecsv1alpha1.ContainerDependency {
	if len(def.Links) == 0 {
		return def.DependsOn
	}
	out := append([]ecsv1alpha1.ContainerDependency(nil), def.DependsOn...)
	for _, l := range def.Links {
		name := LinkTarget(l)
		named := false
		for _, d := range out {
			named = named || d.ContainerName == name
		}
		if !named {
			out = append(out, ecsv1alpha1.ContainerDependency{ContainerName: name, Condition: ecsv1alpha1.DependencyStart})
		}
	}
	return out
}

// LinkTarget is the container a link (`name` or `name:alias`) names.
func LinkTarget(link string) string {
	name, _, _ := strings.Cut(link, ":")
	return name
}

// LinkNames are the host names a link makes resolve: the container's name and the
// alias, if any.
func LinkNames(link string) []string {
	name, alias, ok := strings.Cut(link, ":")
	if !ok || alias == name {
		return []string{name}
	}
	return []string{name, alias}
}
