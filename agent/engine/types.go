package engine

import (
	"context"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Config configures an Engine.
type Config struct {
	// Runtime runs the containers.
	Runtime runtime.Runtime
	// PullPolicy is the image pull behaviour ("" is runtime.PullDefault).
	PullPolicy runtime.PullPolicy
	// StateDir holds what the engine keeps on the host: task-scoped volumes under
	// StateDir/volumes/<taskUID>/<volume> and container output under
	// StateDir/logs/<namespace>_<task>_<taskUID>/<container>.log. Default
	// /var/lib/berth.
	StateDir string
	// Clock times health checks, dependency timeouts and timestamps (default: the
	// real clock).
	Clock clock.Clock
	// Report receives a task's complete agent-owned status whenever it changes. It is
	// called from the task's worker, one call at a time per task and in order, and
	// should not block for long: the agent batches and writes the reports. The report
	// is shared with the engine: read it, keep it, never modify it.
	Report func(Report)
	// Log receives the engine's logs. Environment values never reach it.
	Log logr.Logger
	// Network gives bridge-mode tasks their network namespace. Without it, bridge
	// tasks fail to start.
	Network Network
	// Dirs makes and removes the directories the engine keeps on the host (scratch
	// volumes, log directories). Default: the host's filesystem.
	Dirs HostDirs
	// Cluster and Instance are where the engine runs, for the metadata environment
	// every container gets (EnvCluster, EnvContainerInstance).
	Cluster, Instance string
	// PauseBinary is a static berth binary on the host, run as the pause process
	// of tasks with pidMode or ipcMode task (`berth pause`). Without it such tasks
	// fail to start.
	PauseBinary string
	// ResolvConf is the instance's /etc/resolv.conf, the base of the one bridge and
	// awsvpc containers get (dnsServers and dnsSearchDomains replace its parts).
	ResolvConf string
	// DevDir is the instance's /dev, where the device nodes of assigned GPUs are
	// looked up (gpus.go); empty adds none (berth hollow has no devices).
	DevDir string
}

// Environment variables the engine gives every container, as the ECS agent gives
// ECS_CONTAINER_METADATA_URI: where the container runs. They are the lowest layer of
// the environment, so secrets, the task definition and overrides can replace them.
// Computed at each create rather than kept per task.
const (
	EnvCluster           = "BERTH_CLUSTER"
	EnvContainerInstance = "BERTH_CONTAINER_INSTANCE"
	EnvTask              = "BERTH_TASK"
	EnvTaskDefinition    = "BERTH_TASK_DEFINITION"
	EnvContainerName     = "BERTH_CONTAINER_NAME"
)

// HostDirs is the engine's view of the host's filesystem. `berth hollow` passes one
// that keeps nothing, as kubemark's hollow kubelet runs on a fake OS: its simulated
// tasks need no directories, and tens of thousands of them should not make any.
type HostDirs interface {
	MkdirAll(path string, perm os.FileMode) error
	Chmod(path string, mode os.FileMode) error
	RemoveAll(path string) error
	WriteFile(path string, data []byte, perm os.FileMode) error
	ReadFile(path string) ([]byte, error)
	Rename(from, to string) error
	// ReadDir returns the names in directory path, sorted.
	ReadDir(path string) ([]string, error)
	// MountTmpfs mounts a tmpfs with options (mount(8)'s: size=64m, mode=1777,
	// noexec, ...) on path, unless one is mounted there already.
	MountTmpfs(path string, options []string) error
	// UnmountAll unmounts every mount on path or below it (tmpfs volumes), deepest
	// first, so that RemoveAll removes only the engine's own files.
	UnmountAll(path string) error
	// Mkfifo makes a named pipe (an existing one is kept) owned by uid:gid.
	Mkfifo(path string, perm os.FileMode, uid, gid int) error
}

// Network sets up and tears down the networks of bridge-mode tasks (agent/network).
// The engine calls it from a task's worker, and from Forget and Cleanup.
type Network interface {
	// Setup gives the task a network namespace with its port mappings published,
	// and returns the namespace's path, the task's IPv4 address in it and one binding
	// per mapping, in order. It is idempotent: a task set up before (also before an
	// agent restart) gets the same namespace, address and bindings.
	Setup(ctx context.Context, taskUID types.UID, mappings []ecsv1alpha1.PortMapping) (netnsPath, ip string, bindings []ecsv1alpha1.NetworkBinding, err error)
	// Teardown releases the task's network; a task without one is fine.
	Teardown(ctx context.Context, taskUID types.UID) error
	// Recover re-reads the networks set up before an agent restart and returns the
	// tasks that have one, so the tasks whose objects are gone are torn down too.
	Recover(ctx context.Context) ([]types.UID, error)
}

// Desired is what the control plane wants of one task bound to this instance.
type Desired struct {
	// Task and UID identify the Task object.
	Task types.NamespacedName
	UID  types.UID
	// Revision is the task definition revision the task runs, family:N.
	Revision string
	// Spec is that revision's task definition. It is read once: a task's revision
	// never changes. It may be nil only with DesiredStatus STOPPED (the revision could
	// not be read): the engine then stops whatever containers of the task it finds.
	Spec *ecsv1alpha1.TaskDefinitionSpec
	// Overrides are the task's spec.overrides.
	Overrides *ecsv1alpha1.TaskOverrides

	// DesiredStatus, StopCode and StopReason are the task's spec fields. An empty
	// StopCode with STOPPED means UserInitiated.
	DesiredStatus ecsv1alpha1.DesiredStatus
	StopCode      ecsv1alpha1.StopCode
	StopReason    string

	// Env holds, per container name, variables the agent resolved from secrets and
	// environment files (NAME -> value). The task definition's environment and the
	// overrides' environment take precedence over them; they take precedence over the
	// metadata environment (EnvCluster, ...). Values are never logged, labelled or
	// reported.
	Env map[string]map[string]string
	// Auth holds registry credentials by registry host as an image reference names
	// it ("ghcr.io", "registry.example:5000"); Docker Hub's may be keyed "docker.io"
	// or "" (an image without a registry). An image's pull gets its registry's entry
	// only.
	Auth map[string]*runtime.Auth
	// GPUs are the instance's GPUs by ID that each container (by name) is assigned,
	// from the task's spec.gpuAssignments, checked against the instance's
	// (taskrules.CheckGPUAssignments). Fixed for the task's life.
	GPUs map[string][]string
	// ImageDigests pin containers' images (by container name) to the digests of
	// the task's spec.imageDigests (versionConsistency). Fixed for the task's life.
	ImageDigests map[string]string
	// ContainerPolicy is the container policy level of the instance's cluster the
	// task was admitted at; it decides the confinement of the task's containers
	// (policy.ContainerHardening). Fixed for the task's life, as admission is: a
	// policy tightened later does not change a running task. "" is the default level.
	ContainerPolicy ecsv1alpha1.ContainerPolicyLevel

	// Status is the task's status as the API shows it: what this agent reported
	// before it restarted. The engine reads it only when it learns of the task, to
	// carry on from there: lastStatus never moves below it, and timestamps, stop code
	// and restart counts are kept. nil for a task never reported.
	Status *ecsv1alpha1.TaskStatus
}

// Report is the agent-owned part of a Task's status, complete each time: the agent
// applies it with server-side apply, which drops fields a report leaves out.
type Report struct {
	Task types.NamespacedName
	UID  types.UID

	LastStatus   ecsv1alpha1.TaskStatusValue
	HealthStatus ecsv1alpha1.HealthStatus
	// Containers in containerDefinitions order.
	Containers []ecsv1alpha1.ContainerStatus

	PullStartedAt *time.Time
	PullStoppedAt *time.Time
	StartedAt     *time.Time
	StoppingAt    *time.Time
	StoppedAt     *time.Time

	StopCode      ecsv1alpha1.StopCode
	StoppedReason string
}

// DeepCopy returns a copy that shares nothing with r.
func (r Report) DeepCopy() Report {
	out := r
	out.Containers = make([]ecsv1alpha1.ContainerStatus, len(r.Containers))
	for i := range r.Containers {
		r.Containers[i].DeepCopyInto(&out.Containers[i])
	}
	if r.Containers == nil {
		out.Containers = nil
	}
	for _, p := range []**time.Time{&out.PullStartedAt, &out.PullStoppedAt, &out.StartedAt, &out.StoppingAt, &out.StoppedAt} {
		if *p != nil {
			t := **p
			*p = &t
		}
	}
	return out
}
