// Package taskrules holds the rules about a task that the control plane, the node
// agent and `berth hollow` must agree on, in one place, as Kubernetes keeps such
// rules in its API helpers: whether a container has a health check and how the
// task's health follows from its containers' (ECS's rule), when a task counts as
// healthy for its service and its load balancer, what a task reserves on its
// instance (cpu, memory, static host ports), the dynamic host port range, the bound
// on reasons and the reason strings ECS users match on.
//
// A second copy of any of these, however small, drifts: the service controller once
// counted a RUNNING task whose only check was on a non-essential sidecar as
// unhealthy, while the agent (rightly) reported its health UNKNOWN, so such a
// service never finished a deployment.
//
// It imports only the API types.
package taskrules
