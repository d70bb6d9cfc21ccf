package network

// Log keys of the network manager, stable so that log queries keep working; taskUID
// and count are the engine's too.
const (
	logTaskUID = "taskUID"
	logIP      = "ip"
	logPorts   = "ports"
	logCount   = "count"
)
