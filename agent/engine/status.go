package engine

import (
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// taskStatus is what the engine knows of a task, in lifecycle order. It only moves
// forward.
//
// ECS's DEACTIVATING (deregistering from load balancers) and DEPROVISIONING (detaching
// a task's network interface) are not reported by this engine: the manager takes
// DEACTIVATING tasks out of EndpointSlices itself, host and none networking have
// nothing to release, and a bridge task's network is torn down as the last step of
// STOPPING. As ECS does when a state has no work, they are skipped.
type taskStatus int

const (
	// taskNone: accepted, nothing done yet. Not reported.
	taskNone taskStatus = iota
	// taskPending: pulling images.
	taskPending
	// taskActivating: creating containers and starting them in dependency order.
	taskActivating
	// taskRunning: every essential container started (so its dependencies were met).
	taskRunning
	// taskStopping: stopping containers in reverse dependency order.
	taskStopping
	// taskStopped: no container of the task runs.
	taskStopped
)

var taskStatusValues = [...]ecsv1alpha1.TaskStatusValue{
	taskNone:       "",
	taskPending:    ecsv1alpha1.TaskPending,
	taskActivating: ecsv1alpha1.TaskActivating,
	taskRunning:    ecsv1alpha1.TaskRunning,
	taskStopping:   ecsv1alpha1.TaskStopping,
	taskStopped:    ecsv1alpha1.TaskStopped,
}

// value is the status as the API spells it ("" for taskNone).
func (s taskStatus) value() ecsv1alpha1.TaskStatusValue { return taskStatusValues[s] }

func (s taskStatus) String() string {
	if s == taskNone {
		return "NONE"
	}
	return string(s.value())
}

// taskStatusOf maps a lastStatus read from the API onto the engine's statuses, for
// a task the engine learns about after a restart: DEACTIVATING and DEPROVISIONING are
// part of stopping.
func taskStatusOf(v ecsv1alpha1.TaskStatusValue) taskStatus {
	switch v {
	case ecsv1alpha1.TaskPending:
		return taskPending
	case ecsv1alpha1.TaskActivating:
		return taskActivating
	case ecsv1alpha1.TaskRunning:
		return taskRunning
	case ecsv1alpha1.TaskDeactivating, ecsv1alpha1.TaskStopping, ecsv1alpha1.TaskDeprovisioning:
		return taskStopping
	case ecsv1alpha1.TaskStopped:
		return taskStopped
	}
	return taskNone
}

// desiredStatus is what the control plane wants of a task, ordered: a task desired
// STOPPED is never desired RUNNING again.
type desiredStatus int

const (
	desiredRunning desiredStatus = iota
	desiredStopped
)

func desiredStatusOf(d ecsv1alpha1.DesiredStatus) desiredStatus {
	if d == ecsv1alpha1.DesiredStopped {
		return desiredStopped
	}
	return desiredRunning
}

func (d desiredStatus) String() string {
	if d == desiredStopped {
		return string(ecsv1alpha1.DesiredStopped)
	}
	return string(ecsv1alpha1.DesiredRunning)
}

// containerStatus is what the engine knows of one container, in order. A restart
// moves a container from stopped back to running: that is a new process of the same
// container, counted in restartCount.
type containerStatus int

const (
	// containerNone: its image is not pulled yet and it does not exist.
	containerNone containerStatus = iota
	// containerPulled: its image is available.
	containerPulled
	// containerCreated: it exists in the runtime and has not been started.
	containerCreated
	// containerRunning: its process runs.
	containerRunning
	// containerStopped: its process exited, or it will never run (a failed pull,
	// create or start, or a dependency that cannot be met).
	containerStopped
)

func (s containerStatus) String() string {
	return [...]string{"NONE", "PULLED", "CREATED", "RUNNING", "STOPPED"}[s]
}

// value is the container's lastStatus as the API spells it.
func (s containerStatus) value() ecsv1alpha1.ContainerStatusValue {
	switch s {
	case containerRunning:
		return ecsv1alpha1.ContainerRunning
	case containerStopped:
		return ecsv1alpha1.ContainerStopped
	}
	return ecsv1alpha1.ContainerPending
}
