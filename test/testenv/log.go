package testenv

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestLogger logs to the test output when BERTH_TEST_LOGS=1 (go test -v shows it), and
// discards otherwise so passing runs stay quiet.
func TestLogger(t testing.TB) logr.Logger {
	if os.Getenv("BERTH_TEST_LOGS") == "" {
		return logr.Discard()
	}
	return zap.New(zap.WriteTo(testWriter{t}), zap.UseDevMode(true))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
