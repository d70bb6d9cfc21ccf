package engine

import "github.com/go-logr/logr"

// Log keys of the task engine, stable so that log queries keep working.
const (
	logTask      = "task"
	logTaskUID   = "taskUID"
	logContainer = "container"
	logImage     = "image"
	logStatus    = "lastStatus"
	logHealth    = "healthStatus"
	logStep      = "step"
	logStopCode  = "stopCode"
	logReason    = "reason"
	logExitCode  = "exitCode"
	logSpec      = "spec"
	logCount     = "count"
	logAttempt   = "attempt"
	logRestarts  = "restartCount"
	logNetNS     = "netns"
	logVolume    = "volume"
	logNamespace = "namespace"
	logPid       = "pid"
)

// taskLogger is a worker's logger: the engine's, with the task's keys (taskUID, task)
// added to each call rather than bound with WithValues. A bound logger keeps its own
// encoder (about a kilobyte with zap), which tens of thousands of tasks on one
// process (berth hollow) would hold for nothing.
type taskLogger struct {
	l logr.Logger
	w *worker
}

// V is the logger at verbosity level.
func (t taskLogger) V(level int) taskLogger { return taskLogger{l: t.l.V(level), w: t.w} }

// Info logs msg with the task's keys and kv, when the level is enabled.
func (t taskLogger) Info(msg string, kv ...any) {
	if t.l.Enabled() {
		t.l.Info(msg, t.keys(kv)...)
	}
}

// Error logs err and msg with the task's keys and kv.
func (t taskLogger) Error(err error, msg string, kv ...any) { t.l.Error(err, msg, t.keys(kv)...) }

func (t taskLogger) keys(kv []any) []any {
	out := make([]any, 0, len(kv)+4)
	out = append(out, logTaskUID, t.w.uid)
	if t.w.task.Name != "" {
		out = append(out, logTask, t.w.task.String())
	}
	return append(out, kv...)
}
