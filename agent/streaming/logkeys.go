package streaming

// Log keys of the streaming server, stable so that log queries keep working.
const (
	logUser      = "user"
	logTask      = "task"
	logContainer = "container"
	logCommand   = "command"
	logExitCode  = "exitCode"
	logReason    = "reason"
)
