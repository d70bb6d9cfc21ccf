package logs

// Log keys of the rotator, stable so that log queries keep working.
const (
	logContainer = "container"
	logPath      = "path"
	logSize      = "size"
	logMaxFiles  = "maxFiles"
	logReason    = "reason"
)
