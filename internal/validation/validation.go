// Package validation holds the checks that the CRD schema cannot express in CEL
// (graph cycles, the placement expression grammar). Controllers run them and report
// failures as an Accepted=False condition naming the field; see docs/validation.md.
package validation

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/taskrules"
)

// TaskDefinitionSpec checks a task definition spec at path (usually field.NewPath("spec")).
func TaskDefinitionSpec(path *field.Path, spec *ecsv1alpha1.TaskDefinitionSpec) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, dependencyCycles(path.Child("containerDefinitions"), spec.ContainerDefinitions)...)
	errs = append(errs, taskMemory(path, spec)...)
	for i, c := range spec.PlacementConstraints {
		if _, err := placement.ParseExpression(c.Expression); err != nil {
			errs = append(errs, field.Invalid(path.Child("placementConstraints").Index(i).Child("expression"), c.Expression, err.Error()))
		}
	}
	return errs
}

// taskMemory checks that task memory written as a string ("0.5 GB") holds the
// containers' hard limits. The schema checks the integer form in CEL; converting
// units there would repeat ParseMemory in a second language.
func taskMemory(path *field.Path, spec *ecsv1alpha1.TaskDefinitionSpec) field.ErrorList {
	if spec.Memory == nil || spec.Memory.Type != intstr.String {
		return nil
	}
	mib, err := ecsv1alpha1.ParseMemory(*spec.Memory)
	if err != nil {
		return field.ErrorList{field.Invalid(path.Child("memory"), spec.Memory.StrVal, err.Error())}
	}
	var sum int64
	for _, c := range spec.ContainerDefinitions {
		if c.Memory != nil {
			sum += int64(*c.Memory)
		}
	}
	if sum > mib {
		return field.ErrorList{field.Invalid(path.Child("memory"), spec.Memory.StrVal,
			fmt.Sprintf("task memory (%d MiB) is smaller than the sum of the containers' memory limits (%d MiB)", mib, sum))}
	}
	return nil
}

// dependencyCycles reports every dependsOn cycle once, at the first container (in
// list order) that lies on it, with the cycle spelled out.
func dependencyCycles(path *field.Path, containers []ecsv1alpha1.ContainerDefinition) field.ErrorList {
	index := make(map[string]int, len(containers))
	for i, c := range containers {
		index[c.Name] = i
	}
	const (
		unvisited = iota
		inProgress
		done
	)
	state := make([]int, len(containers))
	var errs field.ErrorList
	reported := map[string]bool{}
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = inProgress
		stack = append(stack, i)
		for _, d := range taskrules.Dependencies(&containers[i]) {
			j, ok := index[d.ContainerName]
			if !ok {
				continue // unknown names are the schema's job
			}
			switch state[j] {
			case unvisited:
				visit(j)
			case inProgress:
				// The cycle is the part of the stack from j to the top.
				start := 0
				for k, s := range stack {
					if s == j {
						start = k
					}
				}
				cycle := stack[start:]
				first := cycle[0]
				for _, k := range cycle {
					if k < first {
						first = k
					}
				}
				names := make([]string, 0, len(cycle)+1)
				for _, k := range cycle {
					names = append(names, containers[k].Name)
				}
				names = append(names, containers[j].Name)
				key := canonicalCycle(cycle)
				if !reported[key] {
					reported[key] = true
					errs = append(errs, field.Invalid(path.Index(first).Child("dependsOn"),
						strings.Join(names, " -> "), "dependsOn forms a cycle, so no container on it could ever start"))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range containers {
		if state[i] == unvisited {
			visit(i)
		}
	}
	return errs
}

// canonicalCycle names a cycle independently of where the walk entered it.
func canonicalCycle(cycle []int) string {
	min := 0
	for k := range cycle {
		if cycle[k] < cycle[min] {
			min = k
		}
	}
	var b strings.Builder
	for k := range cycle {
		b.WriteString(string(rune('a' + cycle[(min+k)%len(cycle)])))
	}
	return b.String()
}
