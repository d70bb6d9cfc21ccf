package validation

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

// FuzzTaskDefinitionSpec validates arbitrary task definitions. Invariants: no
// panic; the result is deterministic and survives a JSON round trip of the spec
// (what the apiserver stores is what was checked); every error names a field under
// spec; the revision hash is stable across that round trip too, so re-applying the
// same manifest never registers a new revision.
func FuzzTaskDefinitionSpec(f *testing.F) {
	for _, seed := range []string{
		`{"containerDefinitions":[{"name":"a","image":"a","dependsOn":[{"containerName":"b","condition":"START"}]},{"name":"b","image":"b","dependsOn":[{"containerName":"a","condition":"START"}]}]}`,
		`{"containerDefinitions":[{"name":"a","image":"a"}],"placementConstraints":[{"type":"memberOf","expression":"attribute:ecs.os-type == linux and not(attribute:stack in [prod, test])"}]}`,
		`{"containerDefinitions":[{"name":"a","image":"a","dependsOn":[{"containerName":"a","condition":"HEALTHY"}]}],"placementConstraints":[{"type":"memberOf","expression":"attribute:x =~ "}]}`,
		`{"revisionHistoryLimit":3,"cpu":256,"memory":512,"containerDefinitions":[{"name":"a","image":"a","environment":[{"name":"Z","value":"1"},{"name":"A","value":"2"}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec ecsv1alpha1.TaskDefinitionSpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		path := field.NewPath("spec")
		errs := TaskDefinitionSpec(path, &spec)
		if again := TaskDefinitionSpec(path, &spec); !reflect.DeepEqual(errs, again) {
			t.Fatalf("not deterministic: %v then %v", errs, again)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "spec.") {
				t.Fatalf("error outside spec: %v", e)
			}
		}
		b, err := json.Marshal(&spec)
		if err != nil {
			t.Fatal(err)
		}
		var round ecsv1alpha1.TaskDefinitionSpec
		if err := json.Unmarshal(b, &round); err != nil {
			t.Fatalf("the spec does not read back: %v", err)
		}
		if got := TaskDefinitionSpec(path, &round); !reflect.DeepEqual(errs, got) {
			t.Fatalf("round trip changed the result: %v then %v", errs, got)
		}
		if revision.Hash(&spec) != revision.Hash(&round) {
			t.Fatal("round trip changed the revision hash")
		}
	})
}

// FuzzParseRef: a reference that parses prints back as itself, parsed again.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"web", "web:3", "web:0", "a_b-C:2147483647", "web:2147483648", ":1", "web:", "web:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := revision.ParseRef(s)
		if err != nil {
			return
		}
		again, err := revision.ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("%q parsed as %+v, printed %q, parsed again as %+v, %v", s, r, r.String(), again, err)
		}
		if r.Revision < 0 || (r.Pinned() != (r.Revision > 0)) {
			t.Fatalf("%q: revision %d", s, r.Revision)
		}
	})
}
