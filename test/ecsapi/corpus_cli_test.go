package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/internal/up/awsconfig"
	"github.com/berthdev/berth/test/ecscorpus"
	"github.com/berthdev/berth/test/testenv"
)

// cliError is how the aws CLI prints an API error.
var cliError = regexp.MustCompile(`An error occurred \((\w+)\) when calling the \w+ operation: (.*)`)

// cliAPIError is an API error the aws CLI printed, as the SDK's error interface.
type cliAPIError struct{ code, msg string }

func (e *cliAPIError) Error() string                 { return e.code + ": " + e.msg }
func (e *cliAPIError) ErrorCode() string             { return e.code }
func (e *cliAPIError) ErrorMessage() string          { return e.msg }
func (e *cliAPIError) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

// TestTaskDefinitionCorpusWithAWSCLI: every definition of the corpus goes through
// `aws ecs register-task-definition --cli-input-json`, as a user's pipeline sends
// it, and is described back equal to what was sent (modulo what ECS adds), or is
// refused with InvalidParameterException naming the field.
func TestTaskDefinitionCorpusWithAWSCLI(t *testing.T) {
	testenv.AWSCLI(t)
	s := start(t)
	u := s.newUser("corpus-cli", false)
	c := s.ecs(u)
	dir := t.TempDir()
	files, err := awsconfig.Write(filepath.Join(dir, "aws"), awsconfig.Endpoint{URL: s.endpoint, Region: region,
		AccessKeyID: u.Cred.AccessKeyID, SecretAccessKey: u.Cred.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu                       sync.Mutex
		echoed, refused, notSent int
	)
	count := func(n *int) {
		mu.Lock()
		*n++
		mu.Unlock()
	}
	corpus := ecscorpus.Files(t)
	// The CLI's start-up is most of each case: two at a time.
	t.Run("corpus", func(t *testing.T) {
		for _, file := range corpus {
			cliCorpusCase(t, c, dir, files, file, func(n string) {
				switch n {
				case "echoed":
					count(&echoed)
				case "refused":
					count(&refused)
				default:
					count(&notSent)
				}
			})
		}
	})
	t.Logf("aws CLI: %d of %d corpus definitions registered and described back equal; %d refused naming fields; %d not sendable (the CLI validates them away)",
		echoed, len(corpus), refused, notSent)
}

// cliCorpusCase registers one corpus file with the aws CLI and checks the answer;
// counted says how it ended (echoed, refused or notSent).
func cliCorpusCase(t *testing.T, c *ecs.Client, dir string, files awsconfig.Files, file string, counted func(string)) {
	base := filepath.Base(file)
	t.Run(strings.TrimSuffix(base, ".json"), func(t *testing.T) {
		t.Parallel()
		in, err := corpusInput(t, file)
		if err != nil {
			// The CLI validates against ECS's model before sending: it would not
			// send this file either (TestTaskDefinitionCorpus names the member).
			counted("notSent")
			return
		}
		raw, err := wire.ECS.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		input := filepath.Join(dir, base)
		if err := os.WriteFile(input, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := testenv.AWSCommand(t, files.Env(), "ecs", "register-task-definition", "--cli-input-json", "file://"+input).Output()
		if err != nil {
			m := cliError.FindStringSubmatch(string(stderrOf(err)))
			if m == nil {
				t.Fatalf("aws ecs register-task-definition: %v\n%s%s", err, out, stderrOf(err))
			}
			counted("refused")
			refusal(t, base, &cliAPIError{code: m[1], msg: strings.TrimSpace(m[2])})
			return
		}
		var registered struct {
			TaskDefinition json.RawMessage `json:"taskDefinition"`
		}
		if err := json.Unmarshal(out, &registered); err != nil {
			t.Fatalf("the CLI printed no JSON: %v\n%s", err, out)
		}
		var td types.TaskDefinition
		if err := wire.ECS.Unmarshal(registered.TaskDefinition, &td); err != nil {
			t.Fatalf("the answer does not decode into ECS's model: %v", err)
		}
		registeredEqual(t, in, &td)
		d, err := c.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: td.TaskDefinitionArn})
		if err != nil {
			t.Fatal(err)
		}
		registeredEqual(t, in, d.TaskDefinition)
		if d.TaskDefinition.Revision != td.Revision {
			t.Errorf("described revision %d, registered %d", d.TaskDefinition.Revision, td.Revision)
		}
		counted("echoed")
	})
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}
