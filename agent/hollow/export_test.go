package hollow

import "github.com/berthdev/berth/test/testenv"

// SharedEnv gives the package's external tests (the CLI test) the test apiserver; nil
// with -short.
func SharedEnv() *testenv.Env { return env }
