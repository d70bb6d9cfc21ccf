package ecsimport

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestDocCoversEveryECSField keeps docs/taskdefinitions.md complete as ECS's model
// grows: every member of a task definition, container definition, Linux parameters,
// volume and port mapping in the AWS SDK's types is named in a code span of the page.
func TestDocCoversEveryECSField(t *testing.T) {
	doc, err := os.ReadFile("../../docs/taskdefinitions.md")
	if err != nil {
		t.Fatal(err)
	}
	// Fenced blocks would pair their backticks with the spans' ones.
	text := regexp.MustCompile("(?m)^```.*$").ReplaceAllString(string(doc), "")
	named := map[string]bool{}
	for _, span := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(text, -1) {
		for _, word := range regexp.MustCompile(`[A-Za-z0-9]+`).FindAllString(span[1], -1) {
			named[word] = true
		}
	}
	for _, v := range []any{ecstypes.TaskDefinition{}, ecstypes.ContainerDefinition{}, ecstypes.LinuxParameters{},
		ecstypes.Volume{}, ecstypes.PortMapping{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.ToLower(f.Name[:1]) + f.Name[1:]
			if !named[name] {
				t.Errorf("docs/taskdefinitions.md does not name %s.%s (`%s`)", typ.Name(), f.Name, name)
			}
		}
	}
}
