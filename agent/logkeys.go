package agent

// Log keys of the agent, stable so that log queries keep working; the engine's are
// the same words (agent/engine/logkeys.go).
const (
	logInstance = "instance"
	logCluster  = "cluster"
	logTask     = "task"
	logTaskUID  = "taskUID"
	logReason   = "reason"
)
