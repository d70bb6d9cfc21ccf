package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/berthdev/berth/internal/ecsimport"
	"github.com/berthdev/berth/test/ecscorpus"
)

// TestECSCorpusConvertsAndApplies takes every public ECS task definition in
// test/testdata/ecs-corpus (SOURCES.md says where each comes from) through `berth
// convert`'s rules and applies the result to the real apiserver. A definition must
// apply, or be refused by the conversion for named fields only (Forbidden, each with
// its path and why): never a refusal by the apiserver, never an error without a
// field. The tally of refusals is logged: the fields Berth cannot support here and
// the ones it does not support yet.
func TestECSCorpusConvertsAndApplies(t *testing.T) {
	files := ecscorpus.Files(t)
	ns := env.Namespace(t)
	applied, refusedBy := 0, map[string]int{}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = ecscorpus.FillTemplate(t, data)
			res, err := ecsimport.Convert(data, ns)
			var ce *ecsimport.Error
			switch {
			case errors.As(err, &ce):
				for _, fe := range ce.Errs {
					if fe.Field == "" || fe.Detail == "" {
						t.Errorf("refusal without a field and a reason: %v", fe)
					}
					refusedBy[refusalKey(fe)]++
				}
				t.Logf("refused: %v", err)
				return
			case err != nil:
				t.Fatalf("conversion failed without naming a field: %v", err)
			}
			// Families repeat across repositories: each file gets its own object.
			res.TaskDefinition.Name = strings.TrimSuffix(filepath.Base(file), ".json")
			err = env.Client.Create(context.Background(), res.TaskDefinition)
			if why, ok := ecscorpus.InvalidInECS[filepath.Base(file)]; ok {
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), why) {
					t.Fatalf("want the apiserver to refuse it naming %q, as ECS does: %v", why, err)
				}
				refusedBy["(refused by ECS too) "+why]++
				return
			}
			if err != nil {
				t.Fatalf("the apiserver refused the converted definition: %v", err)
			}
			applied++
		})
	}
	keys := make([]string, 0, len(refusedBy))
	for k := range refusedBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("refused %d× %s", refusedBy[k], k)
	}
	t.Logf("%d of %d task definitions converted and applied", applied, len(files))
}

// refusalKey is a refusal without list indices, so equal causes count together.
func refusalKey(fe *field.Error) string {
	var b strings.Builder
	skip := false
	for _, r := range fe.Field {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String() + ": " + fe.Detail
}
