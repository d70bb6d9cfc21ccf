package containerd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/api/types/runc/options"
	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/go-logr/logr"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthdev/berth/agent/runtime"
)

// initDest is where the init binary is mounted for ContainerSpec.Init.
const initDest = "/sbin/berth-init"

// Create creates spec.ID; see runtime.Runtime.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) (runtime.ContainerInfo, error) {
	if err := spec.Validate(); err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", spec.ID, err)
	}
	if spec.RootFS == "" {
		named, err := NormalizeRef(spec.Image)
		if err != nil {
			return runtime.ContainerInfo{}, err
		}
		spec.Image = named.String()
	}
	labels := containerLabels(spec)

	ctx = r.withNamespace(ctx)
	defer r.locks.lock(spec.ID)()
	log := logr.FromContextOrDiscard(ctx).WithValues(logContainer, spec.ID)

	if existing, err := r.client.LoadContainer(ctx, spec.ID); err == nil {
		return r.sameContainer(ctx, existing, spec.Image, labels)
	} else if !errdefs.IsNotFound(err) {
		return runtime.ContainerInfo{}, fmt.Errorf("looking up container %q: %w", spec.ID, err)
	}

	if spec.RootFS != "" {
		return r.createFromRootFS(ctx, spec, labels)
	}
	// The lease keeps an unpacked layer and the new snapshot from being garbage
	// collected before the container record references them.
	ctx, done, err := r.withLease(ctx)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	defer func() { _ = done(context.WithoutCancel(ctx)) }()

	image, err := r.unpackedImage(ctx, spec.Image)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	specOpts, err := r.specOpts(spec, image)
	if err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", spec.ID, err)
	}
	if err := createHostPaths(spec.Mounts); err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", spec.ID, err)
	}
	// A snapshot without a container is what a Create interrupted by a crash leaves
	// behind: no other Create of this ID can be running (the ID lock), so remove it.
	if err := r.removeSnapshot(ctx, spec.ID); err != nil {
		return runtime.ContainerInfo{}, err
	}

	log.V(1).Info("creating container", logSpec, runtime.Redacted(spec))
	ctr, err := r.newContainer(ctx, spec.ID, image, labels, specOpts)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	return r.info(ctx, ctr)
}

// containerLabels are the labels of the container record: the spec's, plus the log
// path the shim writes to.
func containerLabels(spec runtime.ContainerSpec) map[string]string {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if spec.LogPath != "" {
		labels[runtime.LabelLogPath] = spec.LogPath
	}
	if spec.StdinPath != "" {
		labels[labelStdin] = spec.StdinPath
	}
	return labels
}

// createFromRootFS creates a container without an image: its root is a host
// directory, read-only, and it has no snapshot (containerd's `ctr run --rootfs`).
func (r *Runtime) createFromRootFS(ctx context.Context, spec runtime.ContainerSpec, labels map[string]string) (runtime.ContainerInfo, error) {
	specOpts, err := r.specOpts(spec, nil)
	if err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", spec.ID, err)
	}
	specOpts = append([]oci.SpecOpts{oci.WithRootFSPath(spec.RootFS), oci.WithRootFSReadonly()}, specOpts...)
	logr.FromContextOrDiscard(ctx).V(1).Info("creating container", logContainer, spec.ID, logSpec, runtime.Redacted(spec))
	ctr, err := r.client.NewContainer(ctx, spec.ID,
		ctrd.WithRuntime(plugins.RuntimeRuncV2, r.runcOptions()),
		ctrd.WithContainerLabels(labels),
		ctrd.WithNewSpec(specOpts...),
	)
	if err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("creating container %q: %w", spec.ID, err)
	}
	return r.info(ctx, ctr)
}

// unpackedImage returns the pulled image ref, unpacking it for the snapshotter if
// needed. An image that is not pulled is ErrNotFound.
func (r *Runtime) unpackedImage(ctx context.Context, ref string) (ctrd.Image, error) {
	image, err := r.client.GetImage(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %q is not pulled: %w", ref, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("looking up image %q: %w", ref, err)
	}
	if ok, err := image.IsUnpacked(ctx, r.snapshotter); err != nil || !ok {
		if err := image.Unpack(ctx, r.snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking image %q: %w", ref, err)
		}
	}
	return image, nil
}

// newContainer creates the container record and its snapshot. If the snapshot was
// created but the record was not, it removes the snapshot again.
func (r *Runtime) newContainer(ctx context.Context, id string, image ctrd.Image, labels map[string]string, specOpts []oci.SpecOpts) (ctrd.Container, error) {
	snapshotCreated := false
	newSnapshot := func(ctx context.Context, c *ctrd.Client, cc *containers.Container) error {
		if err := ctrd.WithNewSnapshot(id, image)(ctx, c, cc); err != nil {
			return err
		}
		snapshotCreated = true
		return nil
	}
	ctr, err := r.client.NewContainer(ctx, id,
		ctrd.WithImage(image),
		ctrd.WithSnapshotter(r.snapshotter),
		newSnapshot,
		ctrd.WithRuntime(plugins.RuntimeRuncV2, r.runcOptions()),
		ctrd.WithContainerLabels(labels),
		ctrd.WithImageStopSignal(image, "SIGTERM"),
		ctrd.WithNewSpec(specOpts...),
	)
	if err != nil {
		if snapshotCreated {
			if rerr := r.removeSnapshot(context.WithoutCancel(ctx), id); rerr != nil {
				logr.FromContextOrDiscard(ctx).Error(rerr, "removing the snapshot of a failed create", logContainer, id)
			}
		}
		return nil, fmt.Errorf("creating container %q: %w", id, err)
	}
	return ctr, nil
}

// runcOptions are the options of the runc shim; nil keeps its defaults.
func (r *Runtime) runcOptions() *options.Options {
	if r.runcRoot == "" {
		return nil
	}
	return &options.Options{Root: r.runcRoot}
}

// sameContainer returns the existing container if it has the wanted image and labels.
func (r *Runtime) sameContainer(ctx context.Context, ctr ctrd.Container, image string, labels map[string]string) (runtime.ContainerInfo, error) {
	info, err := r.info(ctx, ctr)
	if err != nil {
		return runtime.ContainerInfo{}, err
	}
	if info.Image != image {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q exists with image %q, not %q: %w", ctr.ID(), info.Image, image, runtime.ErrAlreadyExists)
	}
	for k, v := range labels {
		if got, ok := info.Labels[k]; !ok || got != v {
			return runtime.ContainerInfo{}, fmt.Errorf("container %q exists with label %s=%q, not %q: %w", ctr.ID(), k, got, v, runtime.ErrAlreadyExists)
		}
	}
	return info, nil
}

func (r *Runtime) removeSnapshot(ctx context.Context, key string) error {
	if err := r.client.SnapshotService(r.snapshotter).Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing snapshot %q: %w", key, err)
	}
	return nil
}

// createHostPaths creates missing host directories of bind mounts, as Docker and ECS
// do for host volumes.
func createHostPaths(mounts []runtime.Mount) error {
	for _, m := range mounts {
		if _, err := os.Stat(m.HostPath); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
				return fmt.Errorf("creating host path of mount %s: %w", m.ContainerPath, err)
			}
		}
	}
	return nil
}

// specOpts turns the spec into OCI spec options, applied in order on containerd's
// default Linux spec.
func (r *Runtime) specOpts(spec runtime.ContainerSpec, image ctrd.Image) ([]oci.SpecOpts, error) {
	opts := processOpts(spec, image)
	opts = append(opts, resourceOpts(spec)...)
	opts = append(opts, securityOpts(spec)...)
	if len(spec.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(bindMounts(spec.Mounts)))
	}
	opts = append(opts, filesystemOpts(spec)...)
	opts = append(opts, namespaceOpts(spec)...)
	if spec.Init {
		path, err := r.findInit()
		if err != nil {
			return nil, err
		}
		opts = append(opts, withInit(path))
	}
	return opts, nil
}

// processOpts set the process from the image config and the spec: environment,
// arguments, working directory and user.
func processOpts(spec runtime.ContainerSpec, image ctrd.Image) []oci.SpecOpts {
	var opts []oci.SpecOpts
	// Image config first (a container from a root filesystem has none).
	switch {
	case image == nil:
	case len(spec.Command) > 0 && len(spec.EntryPoint) == 0:
		opts = append(opts, oci.WithImageConfigArgs(image, spec.Command))
	default:
		opts = append(opts, oci.WithImageConfig(image))
	}
	if len(spec.EntryPoint) > 0 {
		// A new entrypoint drops the image's CMD too, as in Docker.
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, spec.EntryPoint...), spec.Command...)...))
	}
	if spec.Terminal {
		// As Docker sets it for a container with a terminal; the spec's own wins.
		opts = append(opts, oci.WithTTY, oci.WithEnv([]string{"TERM=xterm"}))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.User != "" {
		opts = append(opts, oci.WithUser(spec.User), oci.WithAdditionalGIDs(spec.User))
	}
	// Docker (and so ECS) lets setuid binaries gain privileges; containerd's default
	// spec does not.
	return append(opts, oci.WithNewPrivileges)
}

// resourceOpts set the CPU and memory limits.
func resourceOpts(spec runtime.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if spec.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(spec.CPUShares))
	}
	if spec.CPUQuota > 0 {
		period := spec.CPUPeriod
		if period == 0 {
			period = 100000
		}
		opts = append(opts, oci.WithCPUCFS(spec.CPUQuota, period))
	}
	if spec.MemoryLimitBytes > 0 {
		// Memory plus swap capped at the same value unless the spec allows swap: the
		// limit is hard, the container is OOM-killed rather than swapped.
		swap := max(spec.SwapLimitBytes, spec.MemoryLimitBytes)
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryLimitBytes)), oci.WithMemorySwap(swap))
	}
	if spec.Swappiness != nil {
		opts = append(opts, withSwappiness(*spec.Swappiness))
	}
	if spec.MemoryReservationBytes > 0 {
		opts = append(opts, withMemoryReservation(spec.MemoryReservationBytes))
	}
	return opts
}

// securityOpts set privileges, capabilities, a read-only root and ulimits.
func securityOpts(spec runtime.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if spec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil), oci.WithWriteableSysfs, oci.WithWriteableCgroupfs)
	}
	if len(spec.CapAdd) > 0 || len(spec.CapDrop) > 0 {
		opts = append(opts, withCapabilities(spec.CapAdd, spec.CapDrop))
	}
	if spec.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if len(spec.Ulimits) > 0 {
		opts = append(opts, withUlimits(spec.Ulimits))
	}
	if spec.NoNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if spec.AppArmorProfile != "" {
		opts = append(opts, withAppArmorProfile(spec.AppArmorProfile))
	}
	if len(spec.Sysctls) > 0 {
		opts = append(opts, withSysctls(spec.Sysctls))
	}
	for _, d := range spec.Devices {
		opts = append(opts, oci.WithDevices(d.HostPath, d.ContainerPath, d.Permissions))
	}
	if !spec.SeccompUnconfined {
		// Last: the profile allows the system calls of the capabilities the options
		// above settled (privileged, capAdd, capDrop).
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	return opts
}

// filesystemOpts size /dev/shm and add tmpfs mounts.
func filesystemOpts(spec runtime.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if spec.ShmSizeBytes > 0 {
		opts = append(opts, oci.WithDevShmSize(spec.ShmSizeBytes/1024))
	}
	if len(spec.Tmpfs) > 0 {
		var mounts []specs.Mount
		for _, t := range spec.Tmpfs {
			options := append([]string{"nosuid", "nodev", fmt.Sprintf("size=%d", t.SizeBytes)}, t.Options...)
			mounts = append(mounts, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: t.ContainerPath, Options: options})
		}
		opts = append(opts, oci.WithMounts(mounts))
	}
	return opts
}

func withSwappiness(v uint64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		linuxMemory(s).Swappiness = &v
		return nil
	}
}

func withAppArmorProfile(name string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.ApparmorProfile = name
		return nil
	}
}

func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		maps.Copy(s.Linux.Sysctl, sysctls)
		return nil
	}
}

// bindMounts turns the spec's mounts into recursive, private bind mounts.
func bindMounts(mounts []runtime.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(mounts))
	for _, m := range mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Type: "bind", Source: m.HostPath, Destination: m.ContainerPath,
			Options: []string{"rbind", "rprivate", mode},
		})
	}
	return out
}

// namespaceOpts join the host's or a given network namespace and the host's PID and
// IPC namespaces.
func namespaceOpts(spec runtime.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case spec.HostNetwork:
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
		if h, err := os.Hostname(); err == nil {
			opts = append(opts, oci.WithHostname(h))
		}
	case spec.NetNSPath != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	if spec.Hostname != "" && !spec.HostNetwork {
		opts = append(opts, oci.WithHostname(spec.Hostname))
	}
	if spec.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if spec.PIDNamespacePath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: spec.PIDNamespacePath}))
	}
	switch {
	case spec.HostIPC:
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	case spec.IPCNamespacePath != "":
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.IPCNamespace, Path: spec.IPCNamespacePath}))
	}
	switch {
	case spec.NoShm:
		opts = append(opts, withoutMount(shmDest))
	case spec.ShmPath != "":
		// The task's shared directory in place of a tmpfs of the container's own,
		// with /dev/shm's usual restrictions.
		opts = append(opts, withoutMount(shmDest), oci.WithMounts([]specs.Mount{{
			Type: "bind", Source: spec.ShmPath, Destination: shmDest,
			Options: []string{"rbind", "rprivate", "rw", "nosuid", "nodev", "noexec"},
		}}))
	}
	return opts
}

// shmDest is where containers get their POSIX shared memory.
const shmDest = "/dev/shm"

// withoutMount removes the mount at dest from the spec (containerd's default spec
// mounts a tmpfs at /dev/shm).
func withoutMount(dest string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
		return nil
	}
}

func (r *Runtime) findInit() (string, error) {
	if r.initPath != "" {
		return r.initPath, nil
	}
	for _, name := range []string{"tini-static", "catatonit", "docker-init"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errNoInit
}

// withInit mounts the init binary and makes it PID 1, running the process as its
// child.
func withInit(hostPath string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = append(s.Mounts, specs.Mount{
			Type: "bind", Source: hostPath, Destination: initDest,
			Options: []string{"bind", "ro"},
		})
		s.Process.Args = append([]string{initDest, "--"}, s.Process.Args...)
		return nil
	}
}

// linuxMemory is the spec's memory resources, created if absent.
func linuxMemory(s *oci.Spec) *specs.LinuxMemory {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if s.Linux.Resources.Memory == nil {
		s.Linux.Resources.Memory = &specs.LinuxMemory{}
	}
	return s.Linux.Resources.Memory
}

func withMemoryReservation(bytes int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		linuxMemory(s).Reservation = &bytes
		return nil
	}
}

// withCapabilities applies Docker's rules: drops first (ALL empties the set), then
// adds (ALL adds every known capability).
func withCapabilities(add, drop []string) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, ctr *containers.Container, s *oci.Spec) error {
		norm := func(in []string) (names []string, all bool) {
			for _, n := range in {
				n = strings.ToUpper(strings.TrimSpace(n))
				if n == "ALL" {
					all = true
					continue
				}
				if !strings.HasPrefix(n, "CAP_") {
					n = "CAP_" + n
				}
				names = append(names, n)
			}
			return names, all
		}
		addNames, addAll := norm(add)
		dropNames, dropAll := norm(drop)
		if dropAll {
			if err := oci.WithCapabilities(nil)(ctx, c, ctr, s); err != nil {
				return err
			}
		} else if len(dropNames) > 0 {
			if err := oci.WithDroppedCapabilities(dropNames)(ctx, c, ctr, s); err != nil {
				return err
			}
		}
		if addAll {
			return oci.WithAllKnownCapabilities(ctx, c, ctr, s)
		}
		if len(addNames) > 0 {
			return oci.WithAddedCapabilities(addNames)(ctx, c, ctr, s)
		}
		return nil
	}
}

// withUlimits sets rlimits, replacing the defaults of the same type.
func withUlimits(ulimits []runtime.Ulimit) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		set := map[string]specs.POSIXRlimit{}
		for _, rl := range s.Process.Rlimits {
			set[rl.Type] = rl
		}
		for _, u := range ulimits {
			typ := "RLIMIT_" + strings.ToUpper(u.Name)
			set[typ] = specs.POSIXRlimit{Type: typ, Soft: u.Soft, Hard: u.Hard}
		}
		s.Process.Rlimits = s.Process.Rlimits[:0]
		types := make([]string, 0, len(set))
		for t := range set {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			s.Process.Rlimits = append(s.Process.Rlimits, set[t])
		}
		return nil
	}
}

// Delete removes the container's task (killing it), the container and its snapshot.
// It runs to its end whatever the caller's context (deleteTask says why), bounded by
// taskDeleteTimeout.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.withNamespace(ctx)), taskDeleteTimeout)
	defer cancel()
	defer r.locks.lock(id)()
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("looking up container %q: %w", id, err)
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if err := deleteTask(ctx, task); err != nil {
			return fmt.Errorf("deleting task of container %q: %w", id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("loading task of container %q: %w", id, err)
	}
	if err := ctr.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting container %q: %w", id, err)
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("deleted container", logContainer, id)
	return nil
}

// List returns the containers with all the given labels.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error) {
	ctx = r.withNamespace(ctx)
	var filter string
	if len(labels) > 0 {
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, "labels."+strconv.Quote(k)+"=="+strconv.Quote(labels[k]))
		}
		filter = strings.Join(parts, ",")
	}
	var filters []string
	if filter != "" {
		filters = append(filters, filter)
	}
	ctrs, err := r.client.Containers(ctx, filters...)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := make([]runtime.ContainerInfo, 0, len(ctrs))
	for _, ctr := range ctrs {
		info, err := r.info(ctx, ctr)
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// info describes ctr with the state of its task.
func (r *Runtime) info(ctx context.Context, ctr ctrd.Container) (runtime.ContainerInfo, error) {
	c, err := ctr.Info(ctx)
	if err != nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %q: %w", ctr.ID(), err)
	}
	info := runtime.ContainerInfo{
		ID:        c.ID,
		Image:     c.Image,
		Labels:    c.Labels,
		Status:    runtime.StatusCreated,
		CreatedAt: c.CreatedAt,
		LogPath:   c.Labels[runtime.LabelLogPath],
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return info, nil
	}
	if err != nil {
		info.Status = runtime.StatusUnknown
		return info, nil
	}
	st, err := task.Status(ctx)
	if err != nil {
		info.Status = runtime.StatusUnknown
		return info, nil
	}
	switch st.Status {
	case ctrd.Running, ctrd.Paused, ctrd.Pausing:
		info.Status, info.Pid = runtime.StatusRunning, task.Pid()
	case ctrd.Created:
		info.Status = runtime.StatusCreated
	case ctrd.Stopped:
		info.Status = runtime.StatusStopped
		info.Exit = &runtime.ExitStatus{Code: int(st.ExitStatus), ExitedAt: st.ExitTime, OOMKilled: r.oomKilled(ctx, task)}
	default:
		info.Status = runtime.StatusUnknown
	}
	return info, nil
}
