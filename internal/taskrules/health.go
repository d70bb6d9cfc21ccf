package taskrules

import (
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// HasHealthCheck reports whether a container health check is defined: a command
// that runs something. No command, ["NONE"] (Docker's and ECS's way of switching an
// image's check off) and a bare CMD or CMD-SHELL without arguments are no check.
func HasHealthCheck(hc *ecsv1alpha1.HealthCheck) bool {
	if hc == nil || len(hc.Command) == 0 {
		return false
	}
	switch hc.Command[0] {
	case "CMD", "CMD-SHELL":
		return len(hc.Command) > 1
	}
	return false
}

// Essential reports whether a container definition is essential (the default).
func Essential(c *ecsv1alpha1.ContainerDefinition) bool {
	return c.Essential == nil || *c.Essential
}

// EssentialHealthChecks reports whether any essential container of a revision has a
// health check: only then does the task's health decide whether it serves.
func EssentialHealthChecks(spec *ecsv1alpha1.TaskDefinitionSpec) bool {
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		if Essential(c) && HasHealthCheck(c.HealthCheck) {
			return true
		}
	}
	return false
}

// ContainerHealth is what the task's health is made of, per container.
type ContainerHealth struct {
	Essential bool
	// Checked is true when the container has a health check.
	Checked bool
	// Status is the container's health (UNKNOWN until its first check).
	Status ecsv1alpha1.HealthStatus
}

// TaskHealth is ECS's rule for a task's healthStatus: UNHEALTHY when an essential
// container with a check is unhealthy; HEALTHY when every essential container with a
// check is healthy (and there is at least one); UNKNOWN otherwise, which includes a
// task whose essential containers have no check. Non-essential containers never
// count, whatever their health.
func TaskHealth(cs []ContainerHealth) ecsv1alpha1.HealthStatus {
	checked, healthy := 0, 0
	for _, c := range cs {
		if !c.Essential || !c.Checked {
			continue
		}
		checked++
		switch c.Status {
		case ecsv1alpha1.HealthUnhealthy:
			return ecsv1alpha1.HealthUnhealthy
		case ecsv1alpha1.HealthHealthy:
			healthy++
		}
	}
	if checked > 0 && healthy == checked {
		return ecsv1alpha1.HealthHealthy
	}
	return ecsv1alpha1.HealthUnknown
}

// Serving reports whether a task serves: it is RUNNING and either HEALTHY, or its
// health is UNKNOWN because no essential container of its revision has a check
// (essentialChecks false). This is what counts as healthy for a service's
// deployment (minimumHealthyPercent, completion) and what makes an EndpointSlice
// endpoint ready; a task whose essential check has not passed yet does not serve.
func Serving(last ecsv1alpha1.TaskStatusValue, health ecsv1alpha1.HealthStatus, essentialChecks bool) bool {
	if last != ecsv1alpha1.TaskRunning {
		return false
	}
	switch health {
	case ecsv1alpha1.HealthHealthy:
		return true
	case ecsv1alpha1.HealthUnhealthy:
		return false
	}
	return !essentialChecks
}
