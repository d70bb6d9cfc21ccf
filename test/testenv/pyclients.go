package testenv

import (
	"path/filepath"
	"testing"
)

// PyClients returns the aws CLI and the Python interpreter with boto3 that `make
// tools` installs into bin/pyclients (hack/tools/pyclients/requirements.txt pins
// them). Without them the test fails in CI and skips elsewhere.
func PyClients(t testing.TB) (aws, python string) {
	t.Helper()
	dir := filepath.Join(BinDir(), "pyclients", "bin")
	Require(t, MissingFiles(dir, []string{"aws", "python"}, "make tools installs the aws CLI and boto3 into bin/pyclients"))
	return filepath.Join(dir, "aws"), filepath.Join(dir, "python")
}
