package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// PullPolicy says when Pull contacts the registry. The names and meanings are ECS's
// ECS_IMAGE_PULL_BEHAVIOR.
type PullPolicy string

const (
	// PullDefault pulls from the registry; if that fails and a cached copy exists,
	// the cached copy is used (Image.PullError says why).
	PullDefault PullPolicy = "default"
	// PullAlways pulls from the registry and fails when the pull fails.
	PullAlways PullPolicy = "always"
	// PullOnce pulls only if this agent has not pulled the image before (or the copy
	// it pulled was removed); images put there by other means do not count.
	PullOnce PullPolicy = "once"
	// PullPreferCached uses any cached copy and pulls only when there is none.
	PullPreferCached PullPolicy = "prefer-cached"
)

// Valid reports whether p is one of the policies ("" counts as PullDefault).
func (p PullPolicy) Valid() bool {
	switch p {
	case "", PullDefault, PullAlways, PullOnce, PullPreferCached:
		return true
	}
	return false
}

// ContainerSpec is everything the runtime needs to create one container. The zero
// value of each field means "as the image says" or "the runtime's default".
type ContainerSpec struct {
	// ID is the container's ID in the runtime (see ContainerID).
	ID string
	// Image is the reference given to (and normalized by) Pull.
	Image string
	// Labels are durable facts about the container (the Label* keys). They are
	// visible to anyone who can list containers: never put secrets in them.
	Labels map[string]string

	// Env holds NAME=value entries, added to (and overriding) the image's. Values
	// can be secrets: they are never logged or labelled, and Env prints names only.
	Env Env
	// EntryPoint, when set, replaces the image's ENTRYPOINT, and the image's CMD is
	// then ignored (as in Docker).
	EntryPoint []string
	// Command, when set, replaces the image's CMD.
	Command []string
	// WorkingDir replaces the image's working directory.
	WorkingDir string
	// User is user, uid, user:group or uid:gid; names are looked up in the image.
	User string

	// CPUShares is the cgroup CPU weight (ECS cpu units; 0 keeps the default).
	CPUShares uint64
	// CPUQuota and CPUPeriod (microseconds) cap CPU time; 0 means no cap.
	CPUQuota  int64
	CPUPeriod uint64
	// MemoryLimitBytes is the hard limit, swap included (0 = none). Exceeding it gets
	// the container OOM-killed.
	MemoryLimitBytes int64
	// MemoryReservationBytes is the soft limit (0 = none).
	MemoryReservationBytes int64

	// Privileged gives every capability and the host's devices.
	Privileged bool
	// ReadonlyRootfs mounts the image's filesystem read-only.
	ReadonlyRootfs bool
	// CapAdd and CapDrop change the default capability set; names with or without
	// the CAP_ prefix, "ALL" for every one.
	CapAdd  []string
	CapDrop []string
	// Ulimits set rlimits by name (nofile, nproc, ...).
	Ulimits []Ulimit
	// Mounts bind host paths into the container.
	Mounts []Mount
	// Tmpfs are tmpfs mounts; ShmSizeBytes sizes /dev/shm (0: the runtime's 64 MiB).
	Tmpfs        []Tmpfs
	ShmSizeBytes int64
	// Devices of the host exposed in the container.
	Devices []Device
	// Sysctls are namespaced kernel parameters set in the container.
	Sysctls map[string]string
	// NoNewPrivileges stops the process gaining privileges (setuid binaries).
	NoNewPrivileges bool
	// AppArmorProfile confines the process ("" = the runtime's default).
	AppArmorProfile string
	// SeccompUnconfined runs the process without a seccomp filter; otherwise the
	// runtime's default profile (containerd's, Docker's) filters its system calls.
	// The container policy decides it (policy.ContainerHardening).
	SeccompUnconfined bool
	// SwapLimitBytes is memory plus swap (0: equal to MemoryLimitBytes, no swap);
	// Swappiness, when set, is the kernel's swappiness for the container (0-100).
	SwapLimitBytes int64
	Swappiness     *uint64

	// HostNetwork shares the host's network namespace (and its /etc/hosts and
	// /etc/resolv.conf). Otherwise the container joins NetNSPath, or gets a new
	// empty network namespace when NetNSPath is "".
	HostNetwork bool
	NetNSPath   string
	// Hostname is the container's host name (its own UTS namespace); "" keeps the
	// runtime's default. Ignored with HostNetwork, which has the host's.
	Hostname string
	// HostPID shares the host's PID namespace; otherwise the container joins
	// PIDNamespacePath (/proc/<pid>/ns/pid of a task's pause process), or gets a
	// namespace of its own when it is "".
	HostPID          bool
	PIDNamespacePath string
	// HostIPC shares the host's IPC namespace; otherwise the container joins
	// IPCNamespacePath, or gets a namespace of its own when it is "". ShmPath, with
	// IPCNamespacePath, is a host directory bound in as the container's /dev/shm,
	// which the containers sharing the namespace share, so POSIX shared memory is
	// shared too (as with Docker's container:<id> IPC mode). NoShm leaves the container without /dev/shm
	// (Docker's "none" IPC mode).
	HostIPC          bool
	IPCNamespacePath string
	ShmPath          string
	NoShm            bool
	// Init runs the runtime's init binary as PID 1 (reaps zombies, forwards signals).
	Init bool
	// Terminal gives the process a pseudo-terminal as its standard streams (Docker's
	// Tty); its output still goes to LogPath.
	Terminal bool
	// StdinPath, without Terminal, is a named pipe on the host that the process's
	// standard input reads (Docker's OpenStdin): it ends only when every writer of
	// the pipe has closed it, so whoever holds it open keeps the stdin open.
	StdinPath string
	// RootFS, instead of Image, is a host directory mounted read-only as the
	// container's root filesystem: containers the agent runs without an image
	// (a task's pause process). EntryPoint is then the whole command.
	RootFS string

	// LogPath is the host file the container's stdout and stderr are appended to; the
	// runtime's shim writes it, so output is kept while the agent is down. "" discards
	// output.
	LogPath string
}

// Tmpfs is a tmpfs mount.
type Tmpfs struct {
	ContainerPath string
	SizeBytes     int64
	Options       []string
}

// Device is a host device exposed in the container; Permissions is a cgroup access
// string of r, w and m.
type Device struct {
	HostPath, ContainerPath, Permissions string
}

// Mount binds a host path into the container.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// Ulimit is one rlimit: Name as in ECS (nofile, nproc, core, ...).
type Ulimit struct {
	Name string
	Soft uint64
	Hard uint64
}

// Env is a container's environment, NAME=value entries. Values can be secrets, so
// every way of printing it (fmt's %v, %+v and %#v, logr, JSON) shows the names
// only; the runtime reads the entries themselves.
type Env []string

// Names returns the variables' names, in order.
func (e Env) Names() []string {
	names := make([]string, 0, len(e))
	for _, kv := range e {
		n, _, _ := strings.Cut(kv, "=")
		names = append(names, n)
	}
	return names
}

// String shows the names only.
func (e Env) String() string {
	return "Env" + fmt.Sprint(e.Names()) + " (values redacted)"
}

// GoString is String, for %#v.
func (e Env) GoString() string { return e.String() }

// MarshalLog is what logr sinks print: the names only.
func (e Env) MarshalLog() any { return e.String() }

// MarshalJSON encodes the names only.
func (e Env) MarshalJSON() ([]byte, error) { return json.Marshal(e.String()) }

// Redacted is the spec with environment values hidden, safe to log.
type Redacted ContainerSpec

// String prints the spec with the names of the environment variables only.
func (r Redacted) String() string {
	names := r.Env.Names()
	c := ContainerSpec(r)
	c.Env = nil
	return fmt.Sprintf("%+v envNames=%v", struct {
		ID, Image    string
		Labels       map[string]string
		EntryPoint   []string
		Command      []string
		User         string
		MemoryLimit  int64
		CPUShares    uint64
		Mounts       []Mount
		HostNetwork  bool
		NetNSPath    string
		ReadonlyRoot bool
		Privileged   bool
		LogPath      string
	}{c.ID, c.Image, c.Labels, c.EntryPoint, c.Command, c.User, c.MemoryLimitBytes, c.CPUShares,
		c.Mounts, c.HostNetwork, c.NetNSPath, c.ReadonlyRootfs, c.Privileged, c.LogPath}, names)
}

// String is Redacted's: a ContainerSpec printed with %v or %s never shows env values.
func (s ContainerSpec) String() string { return Redacted(s).String() }

// GoString keeps %#v from printing env values too.
func (s ContainerSpec) GoString() string { return Redacted(s).String() }

// idPattern is containerd's identifier rule (pkg/identifiers): letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 76 characters.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

const maxIDLength = 76

// ContainerID is the deterministic runtime ID of container name of the task with
// taskUID: "<taskUID>-<name>", with the name shortened and suffixed by a hash when the
// result would be too long or not a valid ID.
func ContainerID(taskUID, name string) string {
	id := taskUID + "-" + name
	if len(id) <= maxIDLength && idPattern.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(taskUID + "/" + name))
	h := hex.EncodeToString(sum[:])[:12]
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)
	keep := maxIDLength - len(taskUID) - len(h) - 2
	if keep < 0 {
		keep = 0
	}
	if len(safe) > keep {
		safe = safe[:keep]
	}
	id = strings.Trim(taskUID+"-"+safe, "-_.") + "-" + h
	for strings.Contains(id, "--") {
		id = strings.ReplaceAll(id, "--", "-")
	}
	if len(id) > maxIDLength || !idPattern.MatchString(id) {
		// taskUID itself is odd: fall back to the hash alone.
		return "c" + hex.EncodeToString(sum[:])[:40]
	}
	return id
}

// ValidateID checks that id can be a runtime container ID.
func ValidateID(id string) error {
	if len(id) > maxIDLength || !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container ID %q: want letters, digits, '.', '_' or '-', starting with a letter or digit, at most %d characters", id, maxIDLength)
	}
	return nil
}

var ulimitNames = map[string]bool{
	"core": true, "cpu": true, "data": true, "fsize": true, "locks": true, "memlock": true,
	"msgqueue": true, "nice": true, "nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true, "as": true,
}

// Validate checks the spec for mistakes that the runtime would otherwise report late
// or obscurely. Errors never include environment values.
func (s ContainerSpec) Validate() error {
	var errs []error
	if err := ValidateID(s.ID); err != nil {
		errs = append(errs, err)
	}
	switch {
	case s.Image == "" && s.RootFS == "":
		errs = append(errs, errors.New("image is empty"))
	case s.Image != "" && s.RootFS != "":
		errs = append(errs, errors.New("image and rootFS are exclusive"))
	case s.RootFS != "" && (!filepath.IsAbs(s.RootFS) || len(s.EntryPoint) == 0):
		errs = append(errs, fmt.Errorf("rootFS %q needs an absolute path and an entryPoint", s.RootFS))
	}
	errs = append(errs, s.envErrors()...)
	errs = append(errs, s.networkErrors()...)
	errs = append(errs, s.namespaceErrors()...)
	if s.LogPath != "" && !filepath.IsAbs(s.LogPath) {
		errs = append(errs, fmt.Errorf("logPath %q is not absolute", s.LogPath))
	}
	errs = append(errs, s.resourceErrors()...)
	errs = append(errs, s.mountErrors()...)
	errs = append(errs, s.ulimitErrors()...)
	errs = append(errs, s.labelErrors()...)
	return errors.Join(errs...)
}

// envErrors checks that every env entry is NAME=value; it names entries by index,
// never by content, so values do not leak.
func (s ContainerSpec) envErrors() []error {
	var errs []error
	for i, e := range s.Env {
		if n, _, ok := strings.Cut(e, "="); !ok || n == "" {
			errs = append(errs, fmt.Errorf("env[%d] is not NAME=value", i))
		}
	}
	return errs
}

// networkErrors checks the choice of network namespace.
func (s ContainerSpec) networkErrors() []error {
	var errs []error
	if s.HostNetwork && s.NetNSPath != "" {
		errs = append(errs, errors.New("hostNetwork and netNSPath are exclusive"))
	}
	if s.NetNSPath != "" && !filepath.IsAbs(s.NetNSPath) {
		errs = append(errs, fmt.Errorf("netNSPath %q is not absolute", s.NetNSPath))
	}
	return errs
}

// namespaceErrors checks the PID and IPC namespaces, /dev/shm and stdin.
func (s ContainerSpec) namespaceErrors() []error {
	var errs []error
	for _, p := range []struct{ name, path string }{{"pidNamespacePath", s.PIDNamespacePath}, {"ipcNamespacePath", s.IPCNamespacePath}, {"shmPath", s.ShmPath}, {"stdinPath", s.StdinPath}} {
		if p.path != "" && !filepath.IsAbs(p.path) {
			errs = append(errs, fmt.Errorf("%s %q is not absolute", p.name, p.path))
		}
	}
	if s.HostPID && s.PIDNamespacePath != "" {
		errs = append(errs, errors.New("hostPID and pidNamespacePath are exclusive"))
	}
	if s.HostIPC && (s.IPCNamespacePath != "" || s.NoShm) {
		errs = append(errs, errors.New("hostIPC excludes ipcNamespacePath and noShm"))
	}
	if s.Terminal && s.StdinPath != "" {
		errs = append(errs, errors.New("a terminal is its own stdin: terminal and stdinPath are exclusive"))
	}
	if s.ShmPath != "" && (s.IPCNamespacePath == "" || s.NoShm) {
		errs = append(errs, errors.New("shmPath needs ipcNamespacePath and excludes noShm"))
	}
	return errs
}

// resourceErrors checks the memory and CPU limits.
func (s ContainerSpec) resourceErrors() []error {
	var errs []error
	if s.MemoryLimitBytes < 0 || s.MemoryReservationBytes < 0 || s.CPUQuota < 0 {
		errs = append(errs, errors.New("memory and CPU limits must not be negative"))
	}
	if s.MemoryLimitBytes > 0 && s.MemoryReservationBytes > s.MemoryLimitBytes {
		errs = append(errs, errors.New("memory reservation exceeds the memory limit"))
	}
	return errs
}

// mountErrors checks that bind mounts have absolute paths on both sides.
func (s ContainerSpec) mountErrors() []error {
	var errs []error
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.HostPath) || !filepath.IsAbs(m.ContainerPath) {
			errs = append(errs, fmt.Errorf("mount %s:%s: paths must be absolute", m.HostPath, m.ContainerPath))
		}
	}
	return errs
}

// ulimitErrors checks ulimit names and that soft limits do not exceed hard ones.
func (s ContainerSpec) ulimitErrors() []error {
	var errs []error
	for _, u := range s.Ulimits {
		if !ulimitNames[u.Name] {
			errs = append(errs, fmt.Errorf("unknown ulimit %q", u.Name))
		}
		if u.Soft > u.Hard {
			errs = append(errs, fmt.Errorf("ulimit %s: soft limit exceeds hard limit", u.Name))
		}
	}
	return errs
}

// labelErrors checks label keys and sizes, in key order so the result is stable, and
// that the runtime's own log path label is not set by hand.
func (s ContainerSpec) labelErrors() []error {
	var errs []error
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			errs = append(errs, errors.New("empty label key"))
		}
		if len(k)+len(s.Labels[k]) > 4096 {
			errs = append(errs, fmt.Errorf("label %s is longer than 4096 bytes", k))
		}
	}
	if v, ok := s.Labels[LabelLogPath]; ok && v != s.LogPath {
		errs = append(errs, fmt.Errorf("label %s is set by the runtime from logPath", LabelLogPath))
	}
	return errs
}
