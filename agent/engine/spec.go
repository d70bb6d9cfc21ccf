package engine

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/pause"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/policy"
	"github.com/berthdev/berth/internal/taskrules"
)

// ECS's defaults for container timeouts. startTimeout has none: a dependency without
// one is waited for as long as it takes, as in ECS.
const (
	defaultStopTimeout          = 30 * time.Second
	defaultRestartAttemptPeriod = 300 * time.Second
)

const (
	mib = 1 << 20
	// cpuPeriod is the CFS period the task's cpu quota is expressed in (100 ms).
	cpuPeriod = 100_000
)

// reasonNoTaskNetwork is the stoppedReason of bridge and awsvpc tasks on an engine
// without a Network.
const reasonNoTaskNetwork = "networkMode %s needs a task network, which this agent does not have"

// taskInput is what building a task's containers needs.
type taskInput struct {
	uid       types.UID
	task      types.NamespacedName
	revision  string
	spec      *ecsv1alpha1.TaskDefinitionSpec
	overrides *ecsv1alpha1.TaskOverrides
	env       map[string]map[string]string
	stateDir  string
	// cluster and instance are where the engine runs (the metadata environment).
	cluster, instance string
	// netns is the task's network namespace in bridge and awsvpc modes, once set up,
	// and ip its address there.
	netns, ip string
	// resolvConf is the instance's /etc/resolv.conf (Config.ResolvConf).
	resolvConf string
	// gpus are the GPU IDs assigned to each container; devDir is where their device
	// nodes are (Config.DevDir).
	gpus   map[string][]string
	devDir string
	// digests pin containers' images (by container name): the task's
	// spec.imageDigests (versionConsistency).
	digests map[string]string
	// level is the container policy level the task was admitted at
	// (Desired.ContainerPolicy).
	level ecsv1alpha1.ContainerPolicyLevel
	// pausePID is the pid of the task's pause process once it runs, whose
	// namespaces the containers join (0 without one).
	pausePID uint32
}

// unsupported says why this agent cannot run a task definition ("" when it can);
// bridge needs a Network, pidMode and ipcMode task the pause binary.
func unsupported(spec *ecsv1alpha1.TaskDefinitionSpec, haveNetwork, havePause bool) string {
	switch spec.NetworkMode {
	case "", ecsv1alpha1.NetworkModeBridge, ecsv1alpha1.NetworkModeAWSVPC:
		// "" is the API's default, bridge.
		if !haveNetwork {
			mode := spec.NetworkMode
			if mode == "" {
				mode = ecsv1alpha1.NetworkModeBridge
			}
			return fmt.Sprintf(reasonNoTaskNetwork, mode)
		}
	case ecsv1alpha1.NetworkModeHost, ecsv1alpha1.NetworkModeNone:
	default:
		return fmt.Sprintf("networkMode %s is not supported by this agent", spec.NetworkMode)
	}
	if spec.PidMode == ecsv1alpha1.NamespaceModeNone {
		return "pidMode none is not valid: use host or task"
	}
	if needsPause(spec) && !havePause {
		return reasonNoPauseBinary
	}
	return ""
}

// reasonNoPauseBinary is the stoppedReason of tasks that need a pause container
// (needsPause) on an engine without Config.PauseBinary.
const reasonNoPauseBinary = "pidMode and ipcMode task, and interactive containers without pseudoTerminal, need the agent's pause process, which runs a static berth binary (--berth-binary) that this agent does not have"

// needsPause tells whether the task has a pause container: its containers share a
// namespace of the task, which it holds, or one keeps its stdin open without a
// terminal, which it holds open.
func needsPause(spec *ecsv1alpha1.TaskDefinitionSpec) bool {
	return spec.PidMode == ecsv1alpha1.NamespaceModeTask || spec.IpcMode == ecsv1alpha1.NamespaceModeTask ||
		len(heldStdin(spec)) > 0
}

// heldStdin are the containers whose stdin is a named pipe that the pause process
// holds open: interactive ones without a terminal. Docker keeps such a stdin open
// from its daemon; here the pause process outlives the agent's restarts as the
// daemon does. A terminal needs no holder: reading it waits for input.
func heldStdin(spec *ecsv1alpha1.TaskDefinitionSpec) []string {
	var out []string
	for i := range spec.ContainerDefinitions {
		if d := &spec.ContainerDefinitions[i]; d.Interactive && !d.PseudoTerminal {
			out = append(out, d.Name)
		}
	}
	return out
}

// stdinDir holds the named pipes of the task's held stdins, beside its scratch
// volumes (removed with them; "~" is in no volume name).
func stdinDir(stateDir string, uid types.UID) string {
	return filepath.Join(volumesDir(stateDir, uid), "~stdin")
}

// pauseStdinDir is where the pause container sees stdinDir.
const pauseStdinDir = "/stdin"

// hasPause tells whether the runtime holds a pause container among infos.
func hasPause(infos []runtime.ContainerInfo) bool {
	return slices.ContainsFunc(infos, func(i runtime.ContainerInfo) bool { return runtime.IsPause(i.Labels) })
}

// Where the pause container's process comes from: the agent's own binary, mounted
// read-only in an otherwise empty root filesystem the agent prepares.
const (
	pauseBinaryPath = "/berth"
	// pauseUser is nobody: the process needs no privilege to hold namespaces.
	pauseUser = "65534:65534"
	// pauseUID and pauseGID own the named pipes the pause process holds.
	pauseUID, pauseGID = 65534, 65534
)

// pauseRootFS is the (empty, shared, read-only) root filesystem of pause containers.
func pauseRootFS(stateDir string) string { return filepath.Join(stateDir, "pause", "rootfs") }

// pauseSpec is the runtime spec of the task's pause container: `berth pause` from
// the agent's binary, with no capability, as nobody, without network.
func pauseSpec(in *taskInput, binary string) runtime.ContainerSpec {
	s := runtime.ContainerSpec{
		ID:     runtime.ContainerID(string(in.uid), runtime.PauseContainer),
		RootFS: pauseRootFS(in.stateDir),
		Labels: map[string]string{
			runtime.LabelTaskUID:   string(in.uid),
			runtime.LabelTask:      in.task.String(),
			runtime.LabelContainer: runtime.PauseContainer,
			runtime.LabelRevision:  in.revision,
		},
		EntryPoint:      []string{pauseBinaryPath, pause.Command},
		User:            pauseUser,
		CapDrop:         []string{"ALL"},
		NoNewPrivileges: true,
		Mounts:          []runtime.Mount{{HostPath: binary, ContainerPath: pauseBinaryPath, ReadOnly: true}},
	}
	if names := heldStdin(in.spec); len(names) > 0 {
		s.Mounts = append(s.Mounts, runtime.Mount{HostPath: stdinDir(in.stateDir, in.uid), ContainerPath: pauseStdinDir})
		for _, n := range names {
			s.EntryPoint = append(s.EntryPoint, pauseStdinDir+"/"+n)
		}
	}
	return s
}

// namespaces points the container at the task's shared namespaces: the pause
// process's PID and IPC namespaces with task mode, and the task's /dev/shm
// directory; none's private IPC namespace without /dev/shm.
func namespaces(s *runtime.ContainerSpec, in *taskInput) {
	proc := fmt.Sprintf("/proc/%d", in.pausePID)
	if in.spec.PidMode == ecsv1alpha1.NamespaceModeTask && in.pausePID != 0 {
		s.PIDNamespacePath = proc + "/ns/pid"
	}
	switch in.spec.IpcMode {
	case ecsv1alpha1.NamespaceModeTask:
		if in.pausePID != 0 {
			s.IPCNamespacePath, s.ShmPath = proc+"/ns/ipc", taskShmDir(in.stateDir, in.uid)
		}
	case ecsv1alpha1.NamespaceModeNone:
		s.NoShm = true
	}
}

// stdio gives the container a terminal (pseudoTerminal), or, interactive without
// one, the stdin pipe its task's pause process holds open.
func stdio(s *runtime.ContainerSpec, in *taskInput, def *ecsv1alpha1.ContainerDefinition) {
	s.Terminal = def.PseudoTerminal
	if def.Interactive && !def.PseudoTerminal {
		s.StdinPath = filepath.Join(stdinDir(in.stateDir, in.uid), def.Name)
	}
}

// taskShmDir is the /dev/shm that the containers of an ipcMode task task share, a
// directory of the task's beside its scratch volumes (removed with them; "~" is in
// no volume name). A mount cannot be bound from the pause container's mount
// namespace into another's, so it is a host directory rather than the pause
// container's tmpfs.
func taskShmDir(stateDir string, uid types.UID) string {
	return filepath.Join(volumesDir(stateDir, uid), "~shm")
}

// startOrder returns the indexes of defs with every container after the ones it
// depends on, otherwise in definition order; an error for a cycle (which the schema
// cannot rule out).
func startOrder(defs []ecsv1alpha1.ContainerDefinition) ([]int, error) {
	index := make(map[string]int, len(defs))
	for i := range defs {
		index[defs[i].Name] = i
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(defs))
	order := make([]int, 0, len(defs))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("dependsOn of container %s forms a cycle", defs[i].Name)
		}
		state[i] = visiting
		for _, d := range taskrules.Dependencies(&defs[i]) {
			if j, ok := index[d.ContainerName]; ok {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		state[i] = done
		order = append(order, i)
		return nil
	}
	for i := range defs {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// newContainers returns the task's containers in start order, with their fixed
// facts. A dependency cycle is returned as an error.
func newContainers(in *taskInput) ([]container, error) {
	defs := in.spec.ContainerDefinitions
	order, err := startOrder(defs)
	if err != nil {
		return nil, err
	}
	for name, dg := range in.digests {
		if _, err := taskrules.PinnedImage("pinned", dg); err != nil {
			return nil, fmt.Errorf("spec.imageDigests[%s]: %w", name, err)
		}
	}
	out := make([]container, 0, len(defs))
	for _, i := range order {
		d := &defs[i]
		c := container{
			name:         d.Name,
			id:           runtime.ContainerID(string(in.uid), d.Name),
			image:        in.image(d),
			essential:    d.Essential == nil || *d.Essential,
			dependsOn:    taskrules.Dependencies(d),
			check:        parseHealthCheck(d.HealthCheck),
			startTimeout: seconds(d.StartTimeout, 0),
			stopTimeout:  seconds(d.StopTimeout, defaultStopTimeout),
			defIndex:     i,
			health:       ecsv1alpha1.HealthUnknown,
		}
		c.awsLogs = taskrules.AWSLogs(d.LogConfiguration, d.Name, c.id, in.uid)
		if rp := d.RestartPolicy; rp != nil && rp.Enabled {
			c.restart = &restartPolicy{period: seconds(rp.RestartAttemptPeriod, defaultRestartAttemptPeriod)}
			for _, code := range rp.IgnoredExitCodes {
				c.restart.ignored = append(c.restart.ignored, int(code))
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// volumesDir is where the task's scratch volumes live.
func volumesDir(stateDir string, uid types.UID) string {
	return filepath.Join(stateDir, "volumes", string(uid))
}

// logsDir is where the task's container output goes.
func logsDir(stateDir string, task types.NamespacedName, uid types.UID) string {
	return filepath.Join(stateDir, "logs", fmt.Sprintf("%s_%s_%s", task.Namespace, task.Name, uid))
}

func findDef(spec *ecsv1alpha1.TaskDefinitionSpec, name string) *ecsv1alpha1.ContainerDefinition {
	for i := range spec.ContainerDefinitions {
		if spec.ContainerDefinitions[i].Name == name {
			return &spec.ContainerDefinitions[i]
		}
	}
	return nil
}

func findOverride(o *ecsv1alpha1.TaskOverrides, name string) *ecsv1alpha1.ContainerOverride {
	if o == nil {
		return nil
	}
	for i := range o.ContainerOverrides {
		if o.ContainerOverrides[i].Name == name {
			return &o.ContainerOverrides[i]
		}
	}
	return nil
}

// containerSpec builds the runtime spec of container def of the task.
func containerSpec(in *taskInput, def *ecsv1alpha1.ContainerDefinition) (runtime.ContainerSpec, error) {
	ov := findOverride(in.overrides, def.Name)
	labels := make(map[string]string, len(def.DockerLabels)+4)
	maps.Copy(labels, def.DockerLabels) // Berth's own keys (refused in dockerLabels) win
	labels[runtime.LabelTaskUID] = string(in.uid)
	labels[runtime.LabelTask] = in.task.String()
	labels[runtime.LabelContainer] = def.Name
	labels[runtime.LabelRevision] = in.revision
	s := runtime.ContainerSpec{
		ID:             runtime.ContainerID(string(in.uid), def.Name),
		Image:          in.image(def),
		Labels:         labels,
		Env:            environment(def, ov, in.metadata(def.Name), in.env[def.Name]),
		EntryPoint:     def.EntryPoint,
		Command:        def.Command,
		WorkingDir:     def.WorkingDirectory,
		User:           def.User,
		Privileged:     def.Privileged,
		ReadonlyRootfs: def.ReadonlyRootFilesystem,
		Ulimits:        ulimits(def.Ulimits),
		HostNetwork:    in.spec.NetworkMode == ecsv1alpha1.NetworkModeHost && !def.DisableNetworking,
		NetNSPath:      in.netns,
		Hostname:       def.Hostname,
		HostPID:        in.spec.PidMode == ecsv1alpha1.NamespaceModeHost,
		HostIPC:        in.spec.IpcMode == ecsv1alpha1.NamespaceModeHost,
	}
	stdio(&s, in, def)
	namespaces(&s, in)
	if ov != nil && len(ov.Command) > 0 {
		s.Command = ov.Command
	}
	if def.DisableNetworking {
		s.NetNSPath = "" // a namespace of its own, with only loopback
	}
	if lp := def.LinuxParameters; lp != nil {
		s.Init = lp.InitProcessEnabled
		if caps := lp.Capabilities; caps != nil {
			s.CapAdd, s.CapDrop = capabilities(caps.Add), capabilities(caps.Drop)
		}
		linuxParameters(&s, lp)
	}
	securityOptions(&s, in.level, def)
	gpus(&s, in, def.Name)
	resources(&s, in, def, ov)
	if lp := def.LinuxParameters; lp != nil && lp.MaxSwap != nil && s.MemoryLimitBytes > 0 {
		s.SwapLimitBytes = s.MemoryLimitBytes + int64(*lp.MaxSwap)*mib
	}
	mounts, err := containerMounts(in, def.Name, map[string]bool{})
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	s.Mounts = mounts
	for _, f := range etcFiles(in, def) {
		s.Mounts = append(s.Mounts, runtime.Mount{HostPath: f.hostPath, ContainerPath: f.containerPath})
	}
	if lc := def.LogConfiguration; lc == nil || lc.LogDriver != ecsv1alpha1.LogDriverNone {
		s.LogPath = filepath.Join(logsDir(in.stateDir, in.task, in.uid), def.Name+".log")
	}
	return s, nil
}

// metadata is the metadata environment of container name of the task: where it runs.
// image is the reference the container runs: its definition's image, at the
// digest its deployment pinned if the task carries one (the digest was checked by
// newContainers, so pinning cannot fail here but for a malformed image, which the
// pull reports).
func (in *taskInput) image(def *ecsv1alpha1.ContainerDefinition) string {
	if dg := in.digests[def.Name]; dg != "" {
		if pinned, err := taskrules.PinnedImage(def.Image, dg); err == nil {
			return pinned
		}
	}
	return def.Image
}

func (in *taskInput) metadata(name string) map[string]string {
	return map[string]string{
		EnvCluster:           in.cluster,
		EnvContainerInstance: in.instance,
		EnvTask:              in.task.String(),
		EnvTaskDefinition:    in.revision,
		EnvContainerName:     name,
	}
}

// environment merges, later ones winning: the metadata environment, the agent's
// resolved secrets and environment files, the definition's environment, the
// override's environment. The result is sorted by name.
func environment(def *ecsv1alpha1.ContainerDefinition, ov *ecsv1alpha1.ContainerOverride, metadata, resolved map[string]string) []string {
	env := make(map[string]string, len(metadata)+len(resolved)+len(def.Environment))
	for k, v := range metadata {
		env[k] = v
	}
	for k, v := range resolved {
		env[k] = v
	}
	for _, kv := range def.Environment {
		env[kv.Name] = kv.Value
	}
	if ov != nil {
		for _, kv := range ov.Environment {
			env[kv.Name] = kv.Value
		}
	}
	if len(env) == 0 {
		return nil
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, k+"="+env[k])
	}
	return out
}

// Bounds of cgroup cpu shares (cpu.shares): the kernel refuses fewer than 2 and caps
// at 262144.
const (
	minCPUShares = 2
	maxCPUShares = 262144
)

// cpuShares are a container's cgroup cpu shares from its cpu units, as ECS's agent
// (1.72 and later) passes them: unset, 0 and 1 become 2, more than 262144 becomes
// 262144. (runc refuses 1: "the minimum allowed cpu-shares is 2".)
func cpuShares(units int32) uint64 {
	return uint64(min(max(units, minCPUShares), maxCPUShares))
}

// resources sets cpu shares from the container's cpu units, the task's cpu units as
// a CFS quota, and memory limits in bytes. Without a shared task cgroup in the
// runtime, task-level limits are applied to each container: the task's cpu as each
// container's quota, the task's memory as the hard limit of containers without one.
func resources(s *runtime.ContainerSpec, in *taskInput, def *ecsv1alpha1.ContainerDefinition, ov *ecsv1alpha1.ContainerOverride) {
	cpu, memory, reservation := def.Cpu, def.Memory, def.MemoryReservation
	if ov != nil {
		cpu = valueOr(ov.Cpu, cpu)
		if ov.Memory != nil {
			memory = ov.Memory
		}
		if ov.MemoryReservation != nil {
			reservation = ov.MemoryReservation
		}
	}
	taskCPU, taskMemory := taskrules.TaskLimits(in.spec, in.overrides)
	s.CPUShares = cpuShares(cpu)
	if taskCPU > 0 {
		s.CPUQuota = taskCPU * cpuPeriod / 1024
		s.CPUPeriod = cpuPeriod
	}
	switch {
	case memory != nil:
		s.MemoryLimitBytes = int64(*memory) * mib
	case taskMemory > 0:
		s.MemoryLimitBytes = taskMemory * mib
	}
	if reservation != nil {
		s.MemoryReservationBytes = int64(*reservation) * mib
		if s.MemoryLimitBytes > 0 && s.MemoryReservationBytes > s.MemoryLimitBytes {
			s.MemoryReservationBytes = s.MemoryLimitBytes
		}
	}
}

// linuxParameters maps devices, /dev/shm, tmpfs and swappiness to the runtime's
// terms; maxSwap needs the memory limit and is set with it.
func linuxParameters(s *runtime.ContainerSpec, lp *ecsv1alpha1.LinuxParameters) {
	for _, d := range lp.Devices {
		dst := d.ContainerPath
		if dst == "" {
			dst = d.HostPath
		}
		perms := "rwm"
		if len(d.Permissions) > 0 {
			perms = ""
			for _, p := range []ecsv1alpha1.DevicePermission{"read", "write", "mknod"} {
				if slices.Contains(d.Permissions, p) {
					perms += string(p[0])
				}
			}
		}
		s.Devices = append(s.Devices, runtime.Device{HostPath: d.HostPath, ContainerPath: dst, Permissions: perms})
	}
	if lp.SharedMemorySize != nil {
		s.ShmSizeBytes = int64(*lp.SharedMemorySize) * mib
	}
	for _, t := range lp.Tmpfs {
		s.Tmpfs = append(s.Tmpfs, runtime.Tmpfs{ContainerPath: t.ContainerPath, SizeBytes: int64(t.Size) * mib, Options: t.MountOptions})
	}
	if lp.Swappiness != nil {
		v := uint64(*lp.Swappiness)
		s.Swappiness = &v
	}
}

// securityOptions maps systemControls and dockerSecurityOptions (the CRD admits
// only the forms handled here). No-new-privileges and seccomp are the container
// policy's to decide at the task's level (policy.ContainerHardening), from those
// options and the level together.
func securityOptions(s *runtime.ContainerSpec, level ecsv1alpha1.ContainerPolicyLevel, def *ecsv1alpha1.ContainerDefinition) {
	for _, sc := range def.SystemControls {
		if s.Sysctls == nil {
			s.Sysctls = map[string]string{}
		}
		s.Sysctls[sc.Namespace] = sc.Value
	}
	for _, o := range def.DockerSecurityOptions {
		if p := policy.AppArmorProfile(o); p != "" {
			s.AppArmorProfile = p
		}
	}
	h := policy.ContainerHardening(level, def)
	s.NoNewPrivileges, s.SeccompUnconfined = h.NoNewPrivileges, !h.Seccomp
}

func ulimits(in []ecsv1alpha1.Ulimit) []runtime.Ulimit {
	var out []runtime.Ulimit
	for _, u := range in {
		out = append(out, runtime.Ulimit{Name: string(u.Name), Soft: rlimit(u.SoftLimit), Hard: rlimit(u.HardLimit)})
	}
	return out
}

// rlimit maps a negative limit (Docker's -1) to unlimited.
func rlimit(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}

func capabilities(in []ecsv1alpha1.Capability) []string {
	var out []string
	for _, c := range in {
		out = append(out, string(c))
	}
	return out
}

// containerMounts returns the container's mountPoints, then the mounts of the
// containers it takes volumes from (read-only when asked), each container path once,
// its own mount points first.
func containerMounts(in *taskInput, name string, seen map[string]bool) ([]runtime.Mount, error) {
	if seen[name] {
		return nil, fmt.Errorf("volumesFrom of container %s forms a cycle", name)
	}
	seen[name] = true
	defer delete(seen, name)
	def := findDef(in.spec, name)
	if def == nil {
		return nil, fmt.Errorf("volumesFrom names %s, which is not a container of the task", name)
	}
	var out []runtime.Mount
	have := map[string]bool{}
	add := func(m runtime.Mount) {
		if !have[m.ContainerPath] {
			have[m.ContainerPath] = true
			out = append(out, m)
		}
	}
	for _, mp := range def.MountPoints {
		host, ro, err := volumePath(in, mp.SourceVolume)
		if err != nil {
			return nil, fmt.Errorf("mountPoint %s: %w", mp.ContainerPath, err)
		}
		add(runtime.Mount{HostPath: host, ContainerPath: mp.ContainerPath, ReadOnly: mp.ReadOnly || ro})
	}
	for _, vf := range def.VolumesFrom {
		from, err := containerMounts(in, vf.SourceContainer, seen)
		if err != nil {
			return nil, err
		}
		for _, m := range from {
			m.ReadOnly = m.ReadOnly || vf.ReadOnly
			add(m)
		}
	}
	return out, nil
}

// volumePath is the host path of a task volume (see hostPath) and whether its
// configuration makes it read-only.
func volumePath(in *taskInput, name string) (string, bool, error) {
	for i := range in.spec.Volumes {
		if v := &in.spec.Volumes[i]; v.Name == name {
			path, ro := hostPath(in, v)
			return path, ro, nil
		}
	}
	return "", false, errors.New("volume " + name + " is not declared in volumes")
}

// isBridge tells whether the task is in bridge mode ("" is the API's default):
// its own namespace on the bridge, with port mappings published on the instance.
func isBridge(spec *ecsv1alpha1.TaskDefinitionSpec) bool {
	return spec.NetworkMode == "" || spec.NetworkMode == ecsv1alpha1.NetworkModeBridge
}

// ownNetwork tells whether the task's containers share a namespace of their own on
// the bridge: bridge and awsvpc modes.
func ownNetwork(spec *ecsv1alpha1.TaskDefinitionSpec) bool {
	return isBridge(spec) || spec.NetworkMode == ecsv1alpha1.NetworkModeAWSVPC
}

// portMappings are the port mappings of every container of the task, in
// containerDefinitions order: what the task's network publishes.
func portMappings(spec *ecsv1alpha1.TaskDefinitionSpec) []ecsv1alpha1.PortMapping {
	var out []ecsv1alpha1.PortMapping
	for i := range spec.ContainerDefinitions {
		out = append(out, spec.ContainerDefinitions[i].PortMappings...)
	}
	return out
}

// bindingsByContainer splits the bindings of portMappings(spec), one per mapping,
// by container name.
func bindingsByContainer(spec *ecsv1alpha1.TaskDefinitionSpec, bindings []ecsv1alpha1.NetworkBinding) (map[string][]ecsv1alpha1.NetworkBinding, error) {
	if n := len(portMappings(spec)); n != len(bindings) {
		return nil, fmt.Errorf("the network returned %d port bindings for %d port mappings", len(bindings), n)
	}
	out := map[string][]ecsv1alpha1.NetworkBinding{}
	for i := range spec.ContainerDefinitions {
		def := &spec.ContainerDefinitions[i]
		n := len(def.PortMappings)
		if n > 0 {
			out[def.Name] = append([]ecsv1alpha1.NetworkBinding(nil), bindings[:n]...)
		}
		bindings = bindings[n:]
	}
	return out, nil
}

// networkBindings are the ports a running container publishes: in host mode each
// containerPort on the instance (bridge mode's come from the task's network).
func networkBindings(spec *ecsv1alpha1.TaskDefinitionSpec, def *ecsv1alpha1.ContainerDefinition) []ecsv1alpha1.NetworkBinding {
	if spec.NetworkMode != ecsv1alpha1.NetworkModeHost {
		return nil
	}
	var out []ecsv1alpha1.NetworkBinding
	for _, pm := range def.PortMappings {
		proto := pm.Protocol
		if proto == "" {
			proto = ecsv1alpha1.ProtocolTCP
		}
		out = append(out, ecsv1alpha1.NetworkBinding{BindIP: "0.0.0.0", ContainerPort: pm.ContainerPort, HostPort: pm.ContainerPort, Protocol: proto})
	}
	return out
}
