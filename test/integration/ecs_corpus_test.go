package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/berthdev/berth/internal/ecsimport"
)

// invalidInECS are corpus files that ECS itself refuses, with what the apiserver's
// error must name.
var invalidInECS = map[string]string{
	// A container without memory or memoryReservation in a task without memory.
	"046-cloud-sharks-aline-bank-microservice-my-minimal.json": "every container needs memory or memoryReservation",
	// Templates whose pipelines fill in the images: "" as committed.
	"053-poss111-mrbot-mrbot.json":                                            "spec.containerDefinitions[0].image",
	"048-cs3219-ay2223s1-t33-cs3219-project-ay2223s1-g33-ten-containers.json": "spec.containerDefinitions[1].image",
	// links names app-container; the PHP container is php-app-container (its Docker
	// volume converts: the link is what is refused).
	"010-5sfayas-php-nginx-ecs-docker-php-nginx.json": "links name another container of the task definition",
	// A validator's fixture of a broken definition: ephemeral storage below ECS's
	// 21 GiB (and links and an SELinux label besides). Berth refused it at conversion
	// for its GPU requirement before it supported them.
	"042-joozero-fargate-task-definition-validator-fail-task.json": "spec.ephemeralStorage.sizeInGiB",
}

// minECSCorpus guards against the corpus of real-world task definitions shrinking
// unnoticed.
const minECSCorpus = 50

// TestECSCorpusConvertsAndApplies takes every public ECS task definition in
// test/testdata/ecs-corpus (SOURCES.md says where each comes from) through `berth
// convert`'s rules and applies the result to the real apiserver. A definition must
// apply, or be refused by the conversion for named fields only (Forbidden, each with
// its path and why): never a refusal by the apiserver, never an error without a
// field. The tally of refusals is logged: the fields Berth cannot support here and
// the ones it does not support yet.
func TestECSCorpusConvertsAndApplies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "ecs-corpus", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < minECSCorpus {
		t.Fatalf("%d task definitions in the corpus, want at least %d", len(files), minECSCorpus)
	}
	ns := env.Namespace(t)
	applied, refusedBy := 0, map[string]int{}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = fillTemplate(t, data)
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
			if why, ok := invalidInECS[filepath.Base(file)]; ok {
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

// Template placeholders some corpus files carry where a pipeline fills in a name
// or an image before registering (CodePipeline's <IMAGE1_NAME>, ecspresso's
// {{ must_env `IMAGE` }}, YOUR_ACCOUNT_ID, ...). ECS would refuse most of them too.
var placeholders = regexp.MustCompile(`<[A-Za-z0-9_]+>|%[A-Z_]+%|\{\{[^}]*\}\}|\bYOUR_[A-Z_]+\b|\bREPLACED_BY_CI\b`)

// fillTemplate puts a valid stand-in where a template has a placeholder, as the
// pipeline that owns the template would, and logs that it did.
func fillTemplate(t *testing.T, data []byte) []byte {
	filled := placeholders.ReplaceAll(data, []byte("placeholder"))
	if !bytes.Equal(filled, data) {
		t.Logf("template placeholders filled in: %s", bytes.Join(placeholders.FindAll(data, 5), []byte(", ")))
	}
	return filled
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
