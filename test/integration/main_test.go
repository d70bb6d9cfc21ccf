// Package integration holds tests that run against a real kube-apiserver and etcd
// started by test/testenv: schema validation, samples, kubectl explain and the
// `ecs` category. Controller behaviour is tested beside each controller.
package integration

import (
	"os"
	"testing"

	"github.com/berthdev/berth/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }
