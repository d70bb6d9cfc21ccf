package ecsapi

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// TestRegisteredAs: which revision RegisterTaskDefinition answers once the controller
// has acted on its write, for each thing the controller can have done.
func TestRegisteredAs(t *testing.T) {
	family := func(gen, observed int64, latest int32, revs map[int32]string, accepted metav1.ConditionStatus) *ecsv1alpha1.TaskDefinition {
		td := &ecsv1alpha1.TaskDefinition{}
		td.Generation = gen
		td.Status.ObservedGeneration = observed
		td.Status.LatestRevision = latest
		for n := latest; n > 0; n-- { // newest first, as the controller lists them
			if h, ok := revs[n]; ok {
				td.Status.Revisions = append(td.Status.Revisions, ecsv1alpha1.TaskDefinitionRevision{Revision: n, Hash: h})
			}
		}
		if accepted != "" {
			td.Status.Conditions = []metav1.Condition{{Type: ecsv1alpha1.ConditionAccepted, Status: accepted, ObservedGeneration: gen, Message: "spec.x: bad"}}
		}
		return td
	}
	tests := []struct {
		name     string
		td       *ecsv1alpha1.TaskDefinition
		gen      int64
		prev     int32
		want     int32
		wantDone bool
		wantErr  string
	}{
		{name: "not seen yet", td: family(3, 2, 1, map[int32]string{1: "a"}, ""), gen: 3, prev: 1},
		{name: "registered", td: family(3, 3, 2, map[int32]string{1: "a", 2: "b"}, ""), gen: 3, prev: 1, want: 2, wantDone: true},
		{name: "the latest content again", td: family(3, 3, 2, map[int32]string{1: "a", 2: "b"}, ""), gen: 3, prev: 2, want: 2, wantDone: true},
		{name: "an older content again is a new revision", td: family(4, 4, 3, map[int32]string{1: "b", 2: "a", 3: "b"}, ""), gen: 4, prev: 2, want: 3, wantDone: true},
		{name: "followed by another registration", td: family(5, 5, 3, map[int32]string{1: "a", 2: "b", 3: "c"}, ""), gen: 4, prev: 1, want: 2, wantDone: true},
		{name: "replaced before registration", td: family(5, 5, 2, map[int32]string{1: "a", 2: "c"}, ""), gen: 4, prev: 1, wantErr: wire.ClientException},
		{name: "refused by the controller", td: family(3, 2, 1, map[int32]string{1: "a"}, metav1.ConditionFalse), gen: 3, prev: 1, wantErr: wire.InvalidParameterException},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, done, err := registeredAs(tc.td, tc.gen, "b", tc.prev)
			if tc.wantErr != "" {
				if wire.ECS.AsError(err).Type != tc.wantErr {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want || done != tc.wantDone {
				t.Errorf("registeredAs = %d, %t, %v; want %d, %t", got, done, err, tc.want, tc.wantDone)
			}
		})
	}
}

// TestRevisionKey: page()'s string order of the keys is ECS's order of revisions,
// by family (a prefix first) then number, ascending or descending.
func TestRevisionKey(t *testing.T) {
	type rev struct {
		family string
		n      int32
	}
	revs := []rev{{"web", 10}, {"web-api", 1}, {"web", 2}, {"Web", 1}, {"web", 1}}
	for _, desc := range []bool{false, true} {
		keys := map[string]rev{}
		var sorted []string
		for _, r := range revs {
			k := revisionKey(r.family, r.n, desc)
			keys[k] = r
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var got []rev
		for _, k := range sorted {
			got = append(got, keys[k])
		}
		want := []rev{{"Web", 1}, {"web", 1}, {"web", 2}, {"web", 10}, {"web-api", 1}}
		if desc {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(rev{})); diff != "" {
			t.Errorf("desc=%t order (-want +got):\n%s", desc, diff)
		}
	}
}
