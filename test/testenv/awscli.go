package testenv

// The real AWS clients the ECS API's tests drive Berth with: the aws CLI and boto3
// from the Python package index, pinned in hack/tools/pyclients/requirements.txt and
// installed by `make tools` into a virtualenv linked as bin/pyclients. Tests run
// them there, not through $PATH, so they run the pinned versions; BERTH_AWS_CLI and
// BERTH_PYTHON choose others on purpose (e.g. to try another CLI).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const awsHint = "run `make tools`, which installs the pinned aws CLI and boto3 into bin/pyclients"

var (
	awsOnce, botoOnce       sync.Once
	awsMissing, botoMissing string
)

// AWSCLIPath is the aws CLI the tests run: $BERTH_AWS_CLI, else bin/pyclients'.
func AWSCLIPath() string {
	return envOr("BERTH_AWS_CLI", filepath.Join(BinDir(), "pyclients", "bin", "aws"))
}

// PythonPath is the Python with boto3 the tests run: $BERTH_PYTHON, else
// bin/pyclients'.
func PythonPath() string {
	return envOr("BERTH_PYTHON", filepath.Join(BinDir(), "pyclients", "bin", "python"))
}

// MissingAWSCLI says why the aws CLI cannot run, or "".
func MissingAWSCLI() string {
	awsOnce.Do(func() { awsMissing = missingAWSCLI(AWSCLIPath()) })
	return awsMissing
}

var cliVersion = regexp.MustCompile(`^aws-cli/(\d+)\.(\d+)\.`)

// missingAWSCLI accepts a CLI that reads the config file's services section (where
// `berth up` puts the endpoint): v1 from 1.29, v2 from 2.13.
func missingAWSCLI(path string) string {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("the aws CLI %s does not run: %v (%s)", path, err, awsHint)
	}
	m := cliVersion.FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Sprintf("%s printed %q, not an aws CLI version (%s)", path, strings.TrimSpace(string(out)), awsHint)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if (major == 1 && minor < 29) || (major == 2 && minor < 13) {
		return fmt.Sprintf("%s is aws-cli/%s.%s, which predates the config file's services section (%s)", path, m[1], m[2], awsHint)
	}
	return ""
}

// MissingBoto3 says why Python with boto3 cannot run, or "".
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

// Boto3Python returns the path of a Python that imports boto3; without one, the
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
	cmd.Env = AWSEnv(t, env)
	return cmd
}

// Boto3Command runs a Python script with boto3 (Boto3Python) and args, in the same
// kind of environment as AWSCommand.
func Boto3Command(t testing.TB, env []string, script string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Boto3Python(t), append([]string{"-c", script}, args...)...)
	cmd.Env = AWSEnv(t, env)
	return cmd
}

// AWSEnv is the environment AWSCommand runs in, for clients started otherwise.
func AWSEnv(t testing.TB, env []string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_PAGER=", "LC_ALL=C.UTF-8",
		"AWS_EC2_METADATA_DISABLED=true"}, env...)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
