package engine

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
)
