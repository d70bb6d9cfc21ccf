package placement

import (
	"errors"
	"fmt"
	"strings"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

type strategyKind int

const (
	binpackCPU strategyKind = iota
	binpackMemory
	spreadInstance
	spreadAttribute
	randomOrder
)

// strategy is a compiled placement strategy. Each one scores an instance; lower is
// better, and scores compare lexicographically in strategy order.
type strategy struct {
	kind strategyKind
	// attribute and counts (which of the placement's attribute spreads this is)
	// serve spreadAttribute.
	attribute string
	counts    int
}

// defaultStrategies is ECS's placement when a task names none: balanced over
// availability zones, then over the instances of a zone.
var defaultStrategies = []strategy{
	{kind: spreadAttribute, attribute: ecsv1alpha1.AttributeAvailabilityZone},
	{kind: spreadInstance},
}

// ValidateStrategies checks placement strategies as the engine reads them, naming the
// offending field (placementStrategy[2].field) in a *FieldError.
func ValidateStrategies(ss []ecsv1alpha1.PlacementStrategy) error {
	_, err := compileStrategies(ss)
	return err
}

func compileStrategies(ss []ecsv1alpha1.PlacementStrategy) ([]strategy, error) {
	if len(ss) == 0 {
		return defaultStrategies, nil
	}
	out := make([]strategy, 0, len(ss))
	attributes := 0
	for i, s := range ss {
		st, field, err := compileStrategy(s)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("placementStrategy[%d].%s", i, field), Err: err}
		}
		if st.kind == spreadAttribute {
			st.counts = attributes
			attributes++
		}
		out = append(out, st)
	}
	return out, nil
}

// compileStrategy also returns, on error, which field of the strategy is wrong.
func compileStrategy(s ecsv1alpha1.PlacementStrategy) (strategy, string, error) {
	switch s.Type {
	case ecsv1alpha1.PlacementStrategyBinpack:
		switch s.Field {
		case "cpu":
			return strategy{kind: binpackCPU}, "", nil
		case "memory":
			return strategy{kind: binpackMemory}, "", nil
		}
		return strategy{}, "field", fmt.Errorf("binpack needs field cpu or memory, not %q", s.Field)
	case ecsv1alpha1.PlacementStrategySpread:
		switch {
		case s.Field == "instanceId" || s.Field == "host":
			return strategy{kind: spreadInstance}, "", nil
		case strings.HasPrefix(s.Field, attributePrefix) && validAttributeName(s.Field[len(attributePrefix):]):
			return strategy{kind: spreadAttribute, attribute: s.Field[len(attributePrefix):]}, "", nil
		}
		return strategy{}, "field", fmt.Errorf("spread needs field instanceId, host or attribute:<name>, not %q", s.Field)
	case ecsv1alpha1.PlacementStrategyRandom:
		if s.Field != "" {
			return strategy{}, "field", errors.New("random takes no field")
		}
		return strategy{kind: randomOrder}, "", nil
	}
	return strategy{}, "type", fmt.Errorf("unsupported placement strategy type %q", s.Type)
}

func validAttributeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isAttributeNameByte(name[i]) {
			return false
		}
	}
	return true
}

// tasksOf is how many tasks of the request's group run on n, or all of n's tasks for
// a request in no group: spreading ungrouped tasks balances the instances' load.
func tasksOf(n *node, group string, gs *groupState) int64 {
	if group == "" {
		return int64(n.tasks)
	}
	return int64(gs.count(n.slot))
}

// attributeIndex numbers the values of one attribute, so that spreading over it reads
// arrays instead of hashing every instance's value on every placement. It is built the
// first time a strategy spreads over the attribute and kept current by
// UpsertInstance. Value numbers are never reused; attribute values change rarely.
type attributeIndex struct {
	name    string
	numbers map[string]int32
	valueOf []int32 // value number by node slot, for registered nodes
	counts  []int64 // tasks per value number, recomputed by each placement
}

func (ix *attributeIndex) set(n *node) {
	// An instance without the attribute counts as the value "".
	v := n.attributes[ix.name]
	num, ok := ix.numbers[v]
	if !ok {
		num = int32(len(ix.numbers))
		ix.numbers[v] = num
	}
	if n.slot >= len(ix.valueOf) {
		ix.valueOf = append(ix.valueOf, make([]int32, n.slot+1-len(ix.valueOf))...)
	}
	ix.valueOf[n.slot] = num
}

func (e *Engine) attributeIndexLocked(name string) *attributeIndex {
	if ix, ok := e.attributeIndexes[name]; ok {
		return ix
	}
	ix := &attributeIndex{name: name, numbers: map[string]int32{}}
	for _, n := range e.nodes {
		if n.registered {
			ix.set(n)
		}
	}
	e.attributeIndexes[name] = ix
	return ix
}

// countAttributeValues counts, for each spread-by-attribute strategy, the group's tasks
// per attribute value over all the cluster's instances, eligible or not: spreading is
// about where the group already runs.
func (e *Engine) countAttributeValues(strategies []strategy, nodes []*node, group string, gs *groupState) {
	for _, s := range strategies {
		if s.kind != spreadAttribute {
			continue
		}
		ix := e.attributeIndexLocked(s.attribute)
		for len(e.spreadIndexes) <= s.counts {
			e.spreadIndexes = append(e.spreadIndexes, nil)
		}
		e.spreadIndexes[s.counts] = ix
		if cap(ix.counts) < len(ix.numbers) {
			ix.counts = make([]int64, len(ix.numbers))
		}
		ix.counts = ix.counts[:len(ix.numbers)]
		clear(ix.counts)
		for _, n := range nodes {
			ix.counts[ix.valueOf[n.slot]] += tasksOf(n, group, gs)
		}
	}
}

// score is n's score under s: lower is preferred.
func (e *Engine) score(s *strategy, n *node, group string, gs *groupState) int64 {
	switch s.kind {
	case binpackCPU:
		return n.cpu - n.usedCPU
	case binpackMemory:
		return n.memory - n.usedMemory
	case spreadInstance:
		return tasksOf(n, group, gs)
	case spreadAttribute:
		ix := e.spreadIndexes[s.counts]
		return ix.counts[ix.valueOf[n.slot]]
	default: // randomOrder
		return e.rnd.Int64()
	}
}

// less compares score vectors lexicographically: each strategy only breaks the ties
// of the ones before it.
func less(a, b []int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
