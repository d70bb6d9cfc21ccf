package hollow

// Log keys of the hollow agent, stable so that log queries keep working.
const (
	logCluster   = "cluster"
	logInstance  = "instance"
	logInstances = "instances"
	logTask      = "task"
	logRevision  = "revision"
	logStopCode  = "stopCode"
	logReason    = "reason"
)
