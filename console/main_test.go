package console

import (
	"flag"
	"os"
	"testing"

	"github.com/berthdev/berth/test/testenv"
)

// env is the apiserver of the integration tests (console_test.go); nil with -short,
// where only the unit tests run.
var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(testenv.Run(m, &env))
}

// needEnv skips an integration test under -short (make test-unit); every other
// run starts the apiserver, and fails when it cannot.
func needEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip("integration test: runs without -short")
	}
}
