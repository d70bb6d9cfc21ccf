// Package ecscorpus reads the corpus of real-world ECS task definitions
// (test/testdata/ecs-corpus; SOURCES.md says where each comes from) for the tests that
// take every file through Berth: `berth convert`'s rules (test/integration) and the
// ECS API (test/ecsapi).
package ecscorpus

import (
	"bytes"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// MinFiles guards against the corpus shrinking unnoticed.
const MinFiles = 50

// InvalidInECS are corpus files that ECS itself refuses, with what the refusal must
// name.
var InvalidInECS = map[string]string{
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

// Files lists the corpus, at least MinFiles of them.
func Files(t testing.TB) []string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	files, err := filepath.Glob(filepath.Join(filepath.Dir(self), "..", "testdata", "ecs-corpus", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < MinFiles {
		t.Fatalf("%d task definitions in the corpus, want at least %d", len(files), MinFiles)
	}
	return files
}

// Template placeholders some corpus files carry where a pipeline fills in a name
// or an image before registering (CodePipeline's <IMAGE1_NAME>, ecspresso's
// {{ must_env `IMAGE` }}, YOUR_ACCOUNT_ID, ...). ECS would refuse most of them too.
var placeholders = regexp.MustCompile(`<[A-Za-z0-9_]+>|%[A-Z_]+%|\{\{[^}]*\}\}|\bYOUR_[A-Z_]+\b|\bREPLACED_BY_CI\b`)

// FillTemplate puts a valid stand-in where a template has a placeholder, as the
// pipeline that owns the template would, and logs that it did.
func FillTemplate(t testing.TB, data []byte) []byte {
	t.Helper()
	filled := placeholders.ReplaceAll(data, []byte("placeholder"))
	if !bytes.Equal(filled, data) {
		t.Logf("template placeholders filled in: %s", bytes.Join(placeholders.FindAll(data, 5), []byte(", ")))
	}
	return filled
}
