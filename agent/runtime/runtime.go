// Package runtime is the agent's narrow view of a container runtime: pull an image,
// create, start, stop, exec in and delete containers, list them by label and follow
// their exits. The task engine depends only on this package; the containerd
// implementation lives in agent/runtime/containerd.
//
// Containers are identified by deterministic IDs (ContainerID) and carry their durable
// facts as labels (the Label* constants), so an agent that restarts finds its
// containers again with List instead of starting second copies.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Runtime runs containers on this machine. Every method is safe for concurrent use
// and idempotent where noted, so the engine can retry after a crash or a timeout.
type Runtime interface {
	// Pull makes ref available locally according to policy. auth, if not nil, is sent
	// only to the registry that ref names. Image.Ref is ref's normalized form
	// (app:1 is docker.io/library/app:1). Failures are *ImageError (the registry said
	// no, or could not be reached) or *ReferenceError (ref is malformed).
	Pull(ctx context.Context, ref string, policy PullPolicy, auth *Auth) (Image, error)

	// Create creates the container spec.ID from a pulled image without starting it;
	// ContainerInfo.Image is the image's normalized reference. An existing container
	// with the same ID, image and labels is returned as it is; one with different
	// ones is an error wrapping ErrAlreadyExists. An image that is not pulled is an
	// error wrapping ErrNotFound. A failed Create leaves nothing behind.
	Create(ctx context.Context, spec ContainerSpec) (ContainerInfo, error)

	// Start starts the container's process and returns its pid. A running container is
	// left alone (its pid is returned); a stopped one is started again.
	Start(ctx context.Context, id string) (pid uint32, err error)

	// Stop sends the image's stop signal (SIGTERM by default), waits up to timeout,
	// then SIGKILLs, and returns the exit status. A container that is already stopped
	// returns its exit status; one that never started returns ErrNotStarted.
	Stop(ctx context.Context, id string, timeout time.Duration) (ExitStatus, error)

	// Wait returns a channel that receives the exit status of the container's current
	// process once it exits (at once if it has already exited); the channel is closed
	// without a value if ctx ends first. A container that never started returns
	// ErrNotStarted.
	Wait(ctx context.Context, id string) (<-chan ExitStatus, error)

	// Exec runs cmd in the running container (as its process's user, environment and
	// working directory) and returns its exit code and combined output, at most
	// MaxExecOutput bytes. When timeout passes the command is killed and the error
	// wraps ErrExecTimeout. A container whose process is not running (never started,
	// or exited) is an error wrapping ErrNotRunning.
	Exec(ctx context.Context, id string, cmd []string, timeout time.Duration) (exitCode int, output []byte, err error)

	// Delete removes the container's process (killing it if it still runs), the
	// container and its filesystem. A container that does not exist is success.
	Delete(ctx context.Context, id string) error

	// List returns the containers that carry all the given labels (all of the
	// runtime's containers when labels is empty), with their status.
	List(ctx context.Context, labels map[string]string) ([]ContainerInfo, error)

	// Events delivers container exits and OOM kills as they happen until ctx ends;
	// the error channel receives at most one error and is closed with the events
	// channel.
	Events(ctx context.Context) (<-chan Event, <-chan error)

	// Version is the runtime's version, for the ContainerInstance's versionInfo.
	Version(ctx context.Context) (string, error)

	// Stats returns the resource usage of the container's running process, read from
	// its cgroup. A container without a running process returns ErrNotRunning (or
	// ErrNotFound when it does not exist).
	Stats(ctx context.Context, id string) (ContainerStats, error)

	// Images lists the images of the runtime's namespace.
	Images(ctx context.Context) ([]ImageInfo, error)

	// RemoveImage deletes the image record ref (an ImageInfo.Ref); its content and
	// unpacked layers go once nothing else references them. An image that does not
	// exist is success. It does not check whether containers use the image.
	RemoveImage(ctx context.Context, ref string) error

	// ImageUser returns the user that the pulled image ref's config runs its process
	// as: what a container without a user of its own runs as ("" means root). An
	// image that is not pulled is an error wrapping ErrNotFound; a malformed ref is a
	// *ReferenceError.
	ImageUser(ctx context.Context, ref string) (string, error)
}

// Labels that the agent puts on every container it creates.
const (
	// LabelPrefix starts every label key the agent owns.
	LabelPrefix = "berth.dev/"
	// LabelTaskUID is the UID of the Task the container belongs to.
	LabelTaskUID = LabelPrefix + "task-uid"
	// LabelTask is the Task as namespace/name, for people reading `ctr c ls`.
	LabelTask = LabelPrefix + "task"
	// LabelContainer is the container's name in the task definition.
	LabelContainer = LabelPrefix + "container"
	// LabelRevision is the task definition revision, family:N.
	LabelRevision = LabelPrefix + "revision"
	// LabelLogPath is the host file the container's output goes to; the runtime sets
	// it from ContainerSpec.LogPath.
	LabelLogPath = LabelPrefix + "log-path"
)

// PauseContainer is the berth.dev/container label of a task's pause container, the
// holder of its shared PID and IPC namespaces. It is not a valid container name in
// a task definition (ECS's agent names its own ~internal~ecs~pause), so it never
// collides with one; it is never reported as one of the task's containers.
const PauseContainer = "~internal~berth~pause"

// IsPause tells whether a container with these labels is a task's pause container.
func IsPause(labels map[string]string) bool { return labels[LabelContainer] == PauseContainer }

// MaxExecOutput bounds the output Exec keeps (the start of it).
const MaxExecOutput = 64 << 10

var (
	// ErrNotFound means the container does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a container with that ID exists with another image or
	// other labels.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotStarted means the container has never been started (or its process was
	// deleted), so it has no exit status.
	ErrNotStarted = errors.New("container has not started")
	// ErrNotRunning means the container's process is not running (Exec).
	ErrNotRunning = errors.New("container is not running")
	// ErrExecTimeout means an Exec command outlived its timeout and was killed.
	ErrExecTimeout = errors.New("exec timed out")
)

// Auth is a registry login, from a kubernetes.io/dockerconfigjson Secret.
type Auth struct {
	Username string
	Password string
}

// String never shows the password.
func (a *Auth) String() string {
	if a == nil {
		return "<anonymous>"
	}
	return a.Username + ":<redacted>"
}

// GoString is String, for %#v.
func (a *Auth) GoString() string { return a.String() }

// MarshalLog is what logr sinks print: never the password.
func (a *Auth) MarshalLog() any { return a.String() }

// MarshalJSON encodes the user name only.
func (a *Auth) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// Image is an image available locally.
type Image struct {
	// Ref is the normalized reference, e.g. docker.io/library/nginx:latest.
	Ref string
	// Digest is the digest of the manifest (or index) that Ref resolved to.
	Digest string
	// Cached is true when the local copy was used without a successful pull.
	Cached bool
	// PullError is the pull failure that the default policy recovered from by using
	// the cached copy; nil otherwise.
	PullError error
}

// ContainerStatus is what a container is doing.
type ContainerStatus string

const (
	// StatusCreated: the container exists and has not been started.
	StatusCreated ContainerStatus = "created"
	// StatusRunning: its process is running (or paused).
	StatusRunning ContainerStatus = "running"
	// StatusStopped: its process has exited.
	StatusStopped ContainerStatus = "stopped"
	// StatusUnknown: the runtime could not tell (its shim is gone, for example).
	StatusUnknown ContainerStatus = "unknown"
)

// ExitStatus is how a container's process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+N when signal N killed it (137 for SIGKILL).
	Code int
	// ExitedAt is when it exited.
	ExitedAt time.Time
	// OOMKilled is true when the kernel's OOM killer killed a process of the
	// container because it hit its memory limit.
	OOMKilled bool
}

// ContainerInfo describes a container.
type ContainerInfo struct {
	ID        string
	Image     string
	Labels    map[string]string
	Status    ContainerStatus
	Pid       uint32
	Exit      *ExitStatus // set when Status is StatusStopped
	CreatedAt time.Time
	LogPath   string
}

// EventType is the kind of an Event.
type EventType string

const (
	// EventExit: a container's main process exited.
	EventExit EventType = "exit"
	// EventOOM: the OOM killer killed a process of a container. An EventExit follows
	// when it was the main process, with OOMKilled set.
	EventOOM EventType = "oom"
)

// Event is something that happened to a container.
type Event struct {
	Type        EventType
	ContainerID string
	// Pid and Exit are set for EventExit.
	Pid  uint32
	Exit *ExitStatus
	// Time is when the runtime observed it.
	Time time.Time
}
