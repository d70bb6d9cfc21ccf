package containerd

// Log keys of the containerd runtime, stable so that log queries keep working.
const (
	logContainer  = "container"
	logImage      = "image"
	logDigest     = "digest"
	logPullPolicy = "pullPolicy"
	logDuration   = "duration"
	logReason     = "reason"
	logSpec       = "spec"
	logPid        = "pid"
	logSignal     = "signal"
)
