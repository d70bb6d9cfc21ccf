package ecsapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/ecsapi/wire"
)

var taskIDForm = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestTokenTaskName(t *testing.T) {
	base := tokenTaskName("team-a", "prod", "tok-1", 0)
	if !taskIDForm.MatchString(base) {
		t.Fatalf("%q is not an ECS task ID", base)
	}
	if again := tokenTaskName("team-a", "prod", "tok-1", 0); again != base {
		t.Errorf("a retry names its task %s, the first call %s", again, base)
	}
	// Every other input names another task: a token is scoped to its account and
	// cluster, and each task of a call has its own name.
	others := map[string]string{
		"another namespace": tokenTaskName("team-b", "prod", "tok-1", 0),
		"another cluster":   tokenTaskName("team-a", "test", "tok-1", 0),
		"another token":     tokenTaskName("team-a", "prod", "tok-2", 0),
		"another index":     tokenTaskName("team-a", "prod", "tok-1", 1),
		// The separator keeps parts from running into each other.
		"shifted parts": tokenTaskName("team-ap", "rod", "tok-1", 0),
	}
	for what, name := range others {
		if name == base {
			t.Errorf("%s gives the same name %s", what, name)
		}
	}
}

func TestRandomTaskName(t *testing.T) {
	a, b := randomTaskName(), randomTaskName()
	if !taskIDForm.MatchString(a) || a == b {
		t.Errorf("random names %q and %q", a, b)
	}
}

func TestRequestFingerprint(t *testing.T) {
	in := &ecs.RunTaskInput{TaskDefinition: aws.String("web"), Count: aws.Int32(2), ClientToken: aws.String("t")}
	a, err := requestFingerprint(in)
	if err != nil {
		t.Fatal(err)
	}
	// The same request decoded from JSON with its members in another order.
	var decoded ecs.RunTaskInput
	if err := wire.ECS.Unmarshal([]byte(`{"count": 2, "clientToken": "t", "taskDefinition": "web"}`), &decoded); err != nil {
		t.Fatal(err)
	}
	if b, _ := requestFingerprint(&decoded); b != a {
		t.Errorf("same request, fingerprints %s and %s", a, b)
	}
	in.Count = aws.Int32(3)
	if c, _ := requestFingerprint(in); c == a {
		t.Errorf("another count has the same fingerprint %s", c)
	}
}

func TestValidClientToken(t *testing.T) {
	cases := map[string]bool{
		"":                      true, // no token
		"abc-123_!~":            true,
		strings.Repeat("x", 64): true,
		strings.Repeat("x", 65): false,
		"has space":             false,
		"tab\there":             false,
		"é":                     false,
	}
	for token, ok := range cases {
		err := validClientToken(token)
		if (err == nil) != ok {
			t.Errorf("validClientToken(%q) = %v, want ok=%v", token, err, ok)
		}
		if err != nil && !strings.HasPrefix(wire.ECS.AsError(err).Message, "clientToken: ") {
			t.Errorf("error %v does not name clientToken", err)
		}
	}
}
