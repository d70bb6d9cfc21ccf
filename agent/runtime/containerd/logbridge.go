package containerd

import (
	"context"
	"io"

	"github.com/containerd/log"
	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
)

// withClientLogger routes what containerd's client libraries log (logrus, through
// github.com/containerd/log) to the caller's logr logger at V(2), instead of
// containerd's process-wide logrus logger on stderr.
func withClientLogger(ctx context.Context) context.Context {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(logrHook{log: logr.FromContextOrDiscard(ctx).WithName("containerd").V(2)})
	return log.WithLogger(ctx, logrus.NewEntry(l))
}

type logrHook struct{ log logr.Logger }

func (h logrHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrHook) Fire(e *logrus.Entry) error {
	if !h.log.Enabled() {
		return nil
	}
	kv := make([]any, 0, 2*len(e.Data)+2)
	kv = append(kv, "level", e.Level.String())
	for k, v := range e.Data {
		kv = append(kv, k, v)
	}
	h.log.Info(e.Message, kv...)
	return nil
}
