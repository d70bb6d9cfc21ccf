package testenv

// The real AWS clients the ECS API's tests drive Berth with: the aws CLI v2 and
// boto3, Debian's packages pinned by hack/tools.sh (awscli and python3-boto3), which
// `make tools` installs. Tests use them at Debian's paths, not through $PATH: a
// developer's $PATH often holds another aws (pip's aws CLI v1, a newer v2), and the
// tests must run the pinned versions. BERTH_AWS_CLI and BERTH_PYTHON choose others
// on purpose (e.g. to try a newer CLI).

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Debian's paths and the versions hack/tools.sh pins.
const (
	DebianAWSCLI  = "/usr/bin/aws"
	DebianPython  = "/usr/bin/python3"
	AWSCLIVersion = "2.9.19"
	Boto3Version  = "1.26.27"
)

const awsHint = "run `make tools` as root, which apt-installs Debian's awscli and python3-boto3"

var (
	awsOnce, botoOnce       sync.Once
	awsMissing, botoMissing string
)

// AWSCLIPath is the aws CLI the tests run: $BERTH_AWS_CLI, else Debian's.
func AWSCLIPath() string { return envOr("BERTH_AWS_CLI", DebianAWSCLI) }

// PythonPath is the python3 with boto3 the tests run: $BERTH_PYTHON, else Debian's.
func PythonPath() string { return envOr("BERTH_PYTHON", DebianPython) }

// MissingAWSCLI says why the aws CLI v2 cannot run, or "". Version 1 does not
// qualify: it cannot load the plugin `berth up`'s configuration names.
func MissingAWSCLI() string {
	awsOnce.Do(func() { awsMissing = missingAWSCLI(AWSCLIPath()) })
	return awsMissing
}

func missingAWSCLI(path string) string {
	out, err := exec.Command(path, "--version").CombinedOutput()
	switch {
	case err != nil:
		return fmt.Sprintf("the aws CLI %s does not run: %v (%s)", path, err, awsHint)
	case !strings.HasPrefix(string(out), "aws-cli/2."):
		return fmt.Sprintf("%s is %q, not the aws CLI v2 (%s)", path, strings.TrimSpace(string(out)), awsHint)
	}
	return ""
}

// MissingBoto3 says why python3 with boto3 cannot run, or "".
func MissingBoto3() string {
	botoOnce.Do(func() { botoMissing = missingBoto3(PythonPath()) })
	return botoMissing
}

func missingBoto3(python string) string {
	if out, err := exec.Command(python, "-c", "import boto3").CombinedOutput(); err != nil {
		return fmt.Sprintf("%s cannot import boto3: %v: %s (%s)", python, err, strings.TrimSpace(string(out)), awsHint)
	}
	return ""
}

// AWSCLI returns the aws CLI's path; without one, the test fails in CI and is
// skipped elsewhere (Require).
func AWSCLI(t testing.TB) string {
	t.Helper()
	Require(t, MissingAWSCLI())
	return AWSCLIPath()
}

// Boto3Python returns the path of a python3 that imports boto3; without one, the
// test fails in CI and is skipped elsewhere (Require).
func Boto3Python(t testing.TB) string {
	t.Helper()
	Require(t, MissingBoto3())
	return PythonPath()
}

// AWSCommand is the aws CLI (AWSCLI) with args, in an environment of its own: PATH,
// a fresh HOME (so no ~/.aws is read), no pager, none of the caller's AWS_*
// variables, and env ("NAME=value") on top.
func AWSCommand(t testing.TB, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(AWSCLI(t), args...)
	cmd.Env = awsEnv(t, env)
	return cmd
}

// Boto3Command runs a Python script with boto3 (Boto3Python) and args, in the same
// kind of environment as AWSCommand.
func Boto3Command(t testing.TB, env []string, script string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Boto3Python(t), append([]string{"-c", script}, args...)...)
	cmd.Env = awsEnv(t, env)
	return cmd
}

func awsEnv(t testing.TB, env []string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_PAGER=", "LC_ALL=C.UTF-8"}, env...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
