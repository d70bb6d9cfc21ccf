package ecsapi

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryAction: docs/ecs-api.md names every ECS action of the SDK's model,
// the served ones above the "Not served" table and the others in it, so the
// document cannot fall behind the code.
func TestDocsListEveryAction(t *testing.T) {
	raw, err := os.ReadFile("../docs/ecs-api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	served, notServed, ok := strings.Cut(doc, "Not served (")
	if !ok {
		t.Fatal(`docs/ecs-api.md has no "Not served (" table`)
	}
	for action := range known {
		name := "`" + action + "`"
		_, isServed := operations[action]
		switch {
		case isServed && !strings.Contains(served, name):
			t.Errorf("%s is served but not listed among the served actions", action)
		case !isServed && !strings.Contains(notServed, name):
			t.Errorf("%s is not served and not listed in the Not served table with why", action)
		}
	}
	for action := range operations {
		if !known[action] {
			t.Errorf("%s is served but is no action of ECS's model", action)
		}
	}
}
