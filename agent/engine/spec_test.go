package engine

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const testUID = "0b7a3c1e-5d2f-4a8b-9c6d-1e2f3a4b5c6d"

func input(spec *ecsv1alpha1.TaskDefinitionSpec) *taskInput {
	return &taskInput{
		uid: testUID, task: types.NamespacedName{Namespace: "shop", Name: "web-1"}, revision: "web:3",
		spec: spec, stateDir: "/var/lib/berth", cluster: "prod", instance: "i-1",
	}
}

func labels(container string) map[string]string {
	return map[string]string{
		runtime.LabelTaskUID: testUID, runtime.LabelTask: "shop/web-1",
		runtime.LabelContainer: container, runtime.LabelRevision: "web:3",
	}
}

func TestContainerSpec(t *testing.T) {
	spec := &ecsv1alpha1.TaskDefinitionSpec{
		NetworkMode: ecsv1alpha1.NetworkModeHost,
		PidMode:     ecsv1alpha1.NamespaceModeHost,
		IpcMode:     ecsv1alpha1.NamespaceModeHost,
		Cpu:         ptr.To(intstr.FromInt32(512)),
		Memory:      ptr.To(intstr.FromInt32(1024)),
		Volumes: []ecsv1alpha1.Volume{
			{Name: "data", Host: &ecsv1alpha1.HostVolume{SourcePath: "/srv/data"}},
			{Name: "scratch"},
		},
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{
			Name:       "app",
			Image:      "registry.example:5000/shop/app:1.2",
			EntryPoint: []string{"/bin/app"},
			Command:    []string{"serve"},
			Environment: []ecsv1alpha1.KeyValuePair{
				{Name: "MODE", Value: "prod"}, {Name: "FROM_SECRET", Value: "overridden by environment"},
			},
			WorkingDirectory:       "/srv",
			User:                   "1000:1000",
			Cpu:                    256,
			Memory:                 ptr.To[int32](512),
			MemoryReservation:      ptr.To[int32](256),
			Privileged:             true,
			ReadonlyRootFilesystem: true,
			LinuxParameters: &ecsv1alpha1.LinuxParameters{
				InitProcessEnabled: true,
				Capabilities:       &ecsv1alpha1.KernelCapabilities{Add: []ecsv1alpha1.Capability{"NET_ADMIN"}, Drop: []ecsv1alpha1.Capability{"ALL"}},
			},
			Ulimits: []ecsv1alpha1.Ulimit{{Name: "nofile", SoftLimit: 1024, HardLimit: 4096}, {Name: "core", SoftLimit: -1, HardLimit: -1}},
			MountPoints: []ecsv1alpha1.MountPoint{
				{SourceVolume: "data", ContainerPath: "/data", ReadOnly: true},
				{SourceVolume: "scratch", ContainerPath: "/tmp/work"},
			},
		}},
	}
	in := input(spec)
	in.env = map[string]map[string]string{"app": {"DB_PASSWORD": "s3cret", "FROM_SECRET": "secret value"}}
	in.overrides = &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{{
		Name: "app", Command: []string{"serve", "--debug"}, Environment: []ecsv1alpha1.KeyValuePair{{Name: "MODE", Value: "debug"}},
	}}}
	got, err := containerSpec(in, &spec.ContainerDefinitions[0])
	if err != nil {
		t.Fatal(err)
	}
	want := runtime.ContainerSpec{
		ID:     runtime.ContainerID(testUID, "app"),
		Image:  "registry.example:5000/shop/app:1.2",
		Labels: labels("app"),
		Env: []string{"BERTH_CLUSTER=prod", "BERTH_CONTAINER_INSTANCE=i-1", "BERTH_CONTAINER_NAME=app", "BERTH_TASK=shop/web-1",
			"BERTH_TASK_DEFINITION=web:3", "DB_PASSWORD=s3cret", "FROM_SECRET=overridden by environment", "MODE=debug"},
		EntryPoint:             []string{"/bin/app"},
		Command:                []string{"serve", "--debug"},
		WorkingDir:             "/srv",
		User:                   "1000:1000",
		CPUShares:              256,
		CPUQuota:               50000,
		CPUPeriod:              100000,
		MemoryLimitBytes:       512 << 20,
		MemoryReservationBytes: 256 << 20,
		Privileged:             true,
		ReadonlyRootfs:         true,
		CapAdd:                 []string{"NET_ADMIN"},
		CapDrop:                []string{"ALL"},
		Ulimits:                []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "core", Soft: math.MaxUint64, Hard: math.MaxUint64}},
		Mounts: []runtime.Mount{
			{HostPath: "/srv/data", ContainerPath: "/data", ReadOnly: true},
			{HostPath: "/var/lib/berth/volumes/" + testUID + "/scratch", ContainerPath: "/tmp/work"},
		},
		HostNetwork: true,
		HostPID:     true,
		HostIPC:     true,
		Init:        true,
		LogPath:     "/var/lib/berth/logs/shop_web-1_" + testUID + "/app.log",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("containerSpec() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the spec does not validate: %v", err)
	}
	for k, v := range got.Labels {
		if v == "s3cret" || k == "DB_PASSWORD" {
			t.Errorf("a secret is in label %s=%s", k, v)
		}
	}
}

// TestContainerSpecHardening: the runtime spec confines each container as the
// container policy decides at the task's level (policy.ContainerHardening, whose
// own table covers every case): no-new-privileges and the default seccomp profile
// at restricted, the profile at baseline, and the opt-outs at privileged.
func TestContainerSpecHardening(t *testing.T) {
	tests := []struct {
		name                  string
		level                 ecsv1alpha1.ContainerPolicyLevel
		edit                  func(*ecsv1alpha1.ContainerDefinition)
		wantNoNewPrivileges   bool
		wantSeccompUnconfined bool
	}{
		{"restricted", ecsv1alpha1.ContainerPolicyRestricted, nil, true, false},
		{"baseline", ecsv1alpha1.ContainerPolicyBaseline, nil, false, false},
		{"unset level is baseline", "", nil, false, false},
		{"privileged level, plain container", ecsv1alpha1.ContainerPolicyPrivileged, nil, false, false},
		{"privileged level, seccomp=unconfined", ecsv1alpha1.ContainerPolicyPrivileged,
			func(c *ecsv1alpha1.ContainerDefinition) { c.DockerSecurityOptions = []string{"seccomp=unconfined"} }, false, true},
		{"privileged level, privileged container", ecsv1alpha1.ContainerPolicyPrivileged,
			func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true }, false, true},
		{"baseline does not honour seccomp=unconfined", ecsv1alpha1.ContainerPolicyBaseline,
			func(c *ecsv1alpha1.ContainerDefinition) { c.DockerSecurityOptions = []string{"seccomp:unconfined"} }, false, false},
		{"no-new-privileges asked for at privileged", ecsv1alpha1.ContainerPolicyPrivileged,
			func(c *ecsv1alpha1.ContainerDefinition) { c.DockerSecurityOptions = []string{"no-new-privileges"} }, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := ecsv1alpha1.ContainerDefinition{Name: "app", Image: "app:1"}
			if tc.edit != nil {
				tc.edit(&def)
			}
			in := input(&ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeHost, ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{def}})
			in.level = tc.level
			s, err := containerSpec(in, &in.spec.ContainerDefinitions[0])
			if err != nil {
				t.Fatal(err)
			}
			if s.NoNewPrivileges != tc.wantNoNewPrivileges || s.SeccompUnconfined != tc.wantSeccompUnconfined {
				t.Errorf("noNewPrivileges %v seccompUnconfined %v, want %v %v", s.NoNewPrivileges, s.SeccompUnconfined, tc.wantNoNewPrivileges, tc.wantSeccompUnconfined)
			}
		})
	}
}

func TestContainerSpecVariants(t *testing.T) {
	base := func(edit func(*ecsv1alpha1.TaskDefinitionSpec)) *ecsv1alpha1.TaskDefinitionSpec {
		s := &ecsv1alpha1.TaskDefinitionSpec{
			NetworkMode: ecsv1alpha1.NetworkModeNone,
			Volumes:     []ecsv1alpha1.Volume{{Name: "shared"}, {Name: "logs", Host: &ecsv1alpha1.HostVolume{SourcePath: "/var/log/app"}}},
			ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				{Name: "app", Image: "app:1", MemoryReservation: ptr.To[int32](64),
					MountPoints: []ecsv1alpha1.MountPoint{{SourceVolume: "shared", ContainerPath: "/shared"}, {SourceVolume: "logs", ContainerPath: "/logs", ReadOnly: true}}},
				{Name: "side", Image: "side:1", MemoryReservation: ptr.To[int32](64),
					VolumesFrom: []ecsv1alpha1.VolumeFrom{{SourceContainer: "app"}}},
				{Name: "reader", Image: "reader:1", MemoryReservation: ptr.To[int32](64),
					VolumesFrom: []ecsv1alpha1.VolumeFrom{{SourceContainer: "side", ReadOnly: true}}},
			},
		}
		if edit != nil {
			edit(s)
		}
		return s
	}
	scratch := "/var/lib/berth/volumes/" + testUID + "/shared"
	tests := []struct {
		name      string
		spec      *ecsv1alpha1.TaskDefinitionSpec
		overrides *ecsv1alpha1.TaskOverrides
		container string
		check     func(t *testing.T, s runtime.ContainerSpec)
	}{
		{"dockerLabels and hostname", base(func(s *ecsv1alpha1.TaskDefinitionSpec) {
			s.ContainerDefinitions[0].DockerLabels = map[string]string{"team": "web", runtime.LabelContainer: "forged"}
			s.ContainerDefinitions[0].Hostname = "app-1"
		}), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			if s.Labels["team"] != "web" || s.Labels[runtime.LabelContainer] != "app" || s.Hostname != "app-1" {
				t.Errorf("labels %v, hostname %q: want team=web, Berth's own container label and app-1", s.Labels, s.Hostname)
			}
		}},
		{"linuxParameters and security options", base(func(s *ecsv1alpha1.TaskDefinitionSpec) {
			c := &s.ContainerDefinitions[0]
			c.Memory = ptr.To[int32](64)
			c.SystemControls = []ecsv1alpha1.SystemControl{{Namespace: "net.core.somaxconn", Value: "1024"}}
			c.DockerSecurityOptions = []string{"no-new-privileges", "apparmor:berth-test", "seccomp=unconfined"}
			c.DisableNetworking = true
			c.LinuxParameters = &ecsv1alpha1.LinuxParameters{
				SharedMemorySize: ptr.To[int32](128), MaxSwap: ptr.To[int32](32), Swappiness: ptr.To[int32](10),
				Tmpfs:   []ecsv1alpha1.Tmpfs{{ContainerPath: "/scratch", Size: 16, MountOptions: []string{"noexec"}}},
				Devices: []ecsv1alpha1.Device{{HostPath: "/dev/fuse"}, {HostPath: "/dev/null", ContainerPath: "/dev/n", Permissions: []ecsv1alpha1.DevicePermission{"write", "read"}}},
			}
		}), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			want := runtime.ContainerSpec{
				Sysctls: map[string]string{"net.core.somaxconn": "1024"}, NoNewPrivileges: true, AppArmorProfile: "berth-test",
				ShmSizeBytes: 128 << 20, SwapLimitBytes: 96 << 20, Swappiness: ptr.To[uint64](10),
				Tmpfs:   []runtime.Tmpfs{{ContainerPath: "/scratch", SizeBytes: 16 << 20, Options: []string{"noexec"}}},
				Devices: []runtime.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}, {HostPath: "/dev/null", ContainerPath: "/dev/n", Permissions: "rw"}},
			}
			// seccomp=unconfined is honoured at level privileged only; the task's is
			// the default, baseline.
			got := runtime.ContainerSpec{Sysctls: s.Sysctls, NoNewPrivileges: s.NoNewPrivileges, AppArmorProfile: s.AppArmorProfile, SeccompUnconfined: s.SeccompUnconfined,
				ShmSizeBytes: s.ShmSizeBytes, SwapLimitBytes: s.SwapLimitBytes, Swappiness: s.Swappiness, Tmpfs: s.Tmpfs, Devices: s.Devices}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if s.NetNSPath != "" || s.HostNetwork {
				t.Errorf("disableNetworking: netns %q host %v, want a namespace of its own", s.NetNSPath, s.HostNetwork)
			}
		}},
		{"network none: own empty namespace", base(nil), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			if s.HostNetwork || s.NetNSPath != "" || s.HostPID || s.HostIPC {
				t.Errorf("want a new network namespace and private pid/ipc, got %+v", s)
			}
		}},
		{"volumesFrom copies the source's mounts", base(nil), nil, "side", func(t *testing.T, s runtime.ContainerSpec) {
			want := []runtime.Mount{{HostPath: scratch, ContainerPath: "/shared"}, {HostPath: "/var/log/app", ContainerPath: "/logs", ReadOnly: true},
				{HostPath: "/var/lib/berth/volumes/" + testUID + "/.etc/side/hosts", ContainerPath: "/etc/hosts"}}
			if diff := cmp.Diff(want, s.Mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		}},
		{"volumesFrom readOnly, transitively", base(nil), nil, "reader", func(t *testing.T, s runtime.ContainerSpec) {
			want := []runtime.Mount{{HostPath: scratch, ContainerPath: "/shared", ReadOnly: true}, {HostPath: "/var/log/app", ContainerPath: "/logs", ReadOnly: true},
				{HostPath: "/var/lib/berth/volumes/" + testUID + "/.etc/reader/hosts", ContainerPath: "/etc/hosts"}}
			if diff := cmp.Diff(want, s.Mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		}},
		{"task memory is the hard limit of a container without one", base(func(s *ecsv1alpha1.TaskDefinitionSpec) { s.Memory = ptr.To(intstr.FromInt32(32)) }), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			if s.MemoryLimitBytes != 32<<20 || s.MemoryReservationBytes != 32<<20 {
				t.Errorf("limit %d reservation %d, want both 32 MiB (reservation capped)", s.MemoryLimitBytes, s.MemoryReservationBytes)
			}
		}},
		{"overrides replace cpu and memory", base(nil), &ecsv1alpha1.TaskOverrides{
			Cpu:                ptr.To[int32](2048),
			ContainerOverrides: []ecsv1alpha1.ContainerOverride{{Name: "app", Cpu: ptr.To[int32](1024), Memory: ptr.To[int32](128), MemoryReservation: ptr.To[int32](100)}},
		}, "app", func(t *testing.T, s runtime.ContainerSpec) {
			if s.CPUShares != 1024 || s.CPUQuota != 200000 || s.MemoryLimitBytes != 128<<20 || s.MemoryReservationBytes != 100<<20 {
				t.Errorf("resources: %+v", s)
			}
		}},
		{"log driver none discards output", base(func(s *ecsv1alpha1.TaskDefinitionSpec) {
			s.ContainerDefinitions[0].LogConfiguration = &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverNone}
		}), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			if s.LogPath != "" {
				t.Errorf("LogPath = %q, want none", s.LogPath)
			}
		}},
		{"no environment: only the metadata", base(nil), nil, "app", func(t *testing.T, s runtime.ContainerSpec) {
			want := []string{"BERTH_CLUSTER=prod", "BERTH_CONTAINER_INSTANCE=i-1", "BERTH_CONTAINER_NAME=app", "BERTH_TASK=shop/web-1", "BERTH_TASK_DEFINITION=web:3"}
			if diff := cmp.Diff(want, []string(s.Env)); diff != "" {
				t.Errorf("Env (-want +got):\n%s", diff)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.spec)
			in.overrides = tc.overrides
			s, err := containerSpec(in, findDef(tc.spec, tc.container))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("the spec does not validate: %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestContainerSpecErrors(t *testing.T) {
	spec := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
		{Name: "a", Image: "a:1", VolumesFrom: []ecsv1alpha1.VolumeFrom{{SourceContainer: "b"}}},
		{Name: "b", Image: "b:1", VolumesFrom: []ecsv1alpha1.VolumeFrom{{SourceContainer: "a"}}},
		{Name: "c", Image: "c:1", MountPoints: []ecsv1alpha1.MountPoint{{SourceVolume: "nope", ContainerPath: "/x"}}},
	}}
	for _, name := range []string{"a", "c"} {
		if _, err := containerSpec(input(spec), findDef(spec, name)); err == nil {
			t.Errorf("container %s: want an error", name)
		}
	}
}

func TestUnsupported(t *testing.T) {
	bridge := ecsv1alpha1.NetworkModeBridge
	tests := []struct {
		spec        ecsv1alpha1.TaskDefinitionSpec
		haveNetwork bool
		havePause   bool
		want        string
	}{
		{ecsv1alpha1.TaskDefinitionSpec{}, false, true, "networkMode bridge needs a task network, which this agent does not have"},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: bridge}, false, true, "networkMode bridge needs a task network, which this agent does not have"},
		{ecsv1alpha1.TaskDefinitionSpec{}, true, false, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeAWSVPC}, false, true, "networkMode awsvpc needs a task network, which this agent does not have"},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeAWSVPC}, true, false, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: bridge}, true, false, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: bridge, PidMode: ecsv1alpha1.NamespaceModeTask}, true, true, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: bridge, PidMode: ecsv1alpha1.NamespaceModeTask}, true, false, reasonNoPauseBinary},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeHost}, false, false, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, PidMode: ecsv1alpha1.NamespaceModeHost}, false, false, ""},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, PidMode: ecsv1alpha1.NamespaceModeNone}, false, true, "pidMode none is not valid: use host or task"},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeHost, IpcMode: ecsv1alpha1.NamespaceModeTask}, false, false, reasonNoPauseBinary},
		{ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeHost, IpcMode: ecsv1alpha1.NamespaceModeNone}, false, false, ""},
	}
	for _, tc := range tests {
		if got := unsupported(&tc.spec, tc.haveNetwork, tc.havePause); got != tc.want {
			t.Errorf("unsupported(%+v, %v, %v) = %q, want %q", tc.spec, tc.haveNetwork, tc.havePause, got, tc.want)
		}
	}
}

// TestNamespacesAndTerminal: pidMode and ipcMode task join the pause process's
// namespaces (and its /dev/shm), ipcMode none drops /dev/shm, host stays host, and
// pseudoTerminal asks for a terminal.
func TestNamespacesAndTerminal(t *testing.T) {
	tests := []struct {
		name     string
		pid, ipc ecsv1alpha1.NamespaceMode
		pausePID uint32
		tty      bool
		want     runtime.ContainerSpec
	}{
		{name: "unset"},
		{name: "host", pid: "host", ipc: "host", want: runtime.ContainerSpec{HostPID: true, HostIPC: true}},
		{name: "pid task", pid: "task", pausePID: 42, want: runtime.ContainerSpec{PIDNamespacePath: "/proc/42/ns/pid"}},
		{name: "ipc task", ipc: "task", pausePID: 42,
			want: runtime.ContainerSpec{IPCNamespacePath: "/proc/42/ns/ipc", ShmPath: "/state/volumes/u1/~shm"}},
		{name: "both task", pid: "task", ipc: "task", pausePID: 7,
			want: runtime.ContainerSpec{PIDNamespacePath: "/proc/7/ns/pid", IPCNamespacePath: "/proc/7/ns/ipc", ShmPath: "/state/volumes/u1/~shm"}},
		{name: "ipc none", pid: "task", ipc: "none", pausePID: 7, want: runtime.ContainerSpec{PIDNamespacePath: "/proc/7/ns/pid", NoShm: true}},
		{name: "terminal", tty: true, want: runtime.ContainerSpec{Terminal: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, PidMode: tc.pid, IpcMode: tc.ipc,
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "app:1", PseudoTerminal: tc.tty}}}
			in := &taskInput{uid: "u1", task: types.NamespacedName{Namespace: "ns", Name: "t"}, spec: spec, stateDir: "/state", pausePID: tc.pausePID}
			s, err := containerSpec(in, &spec.ContainerDefinitions[0])
			if err != nil {
				t.Fatal(err)
			}
			got := runtime.ContainerSpec{HostPID: s.HostPID, HostIPC: s.HostIPC, PIDNamespacePath: s.PIDNamespacePath,
				IPCNamespacePath: s.IPCNamespacePath, ShmPath: s.ShmPath, NoShm: s.NoShm, Terminal: s.Terminal}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("the spec is not valid: %v", err)
			}
		})
	}
}

// TestPauseSpec: the pause container runs the agent's binary from the prepared
// root filesystem, as nobody without capabilities, labelled as the task's pause
// container (so it is never reported as one of its containers); it holds the stdin
// pipes of the interactive containers without a terminal, and only theirs.
func TestPauseSpec(t *testing.T) {
	spec := &ecsv1alpha1.TaskDefinitionSpec{PidMode: ecsv1alpha1.NamespaceModeTask, ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
		{Name: "plain"}, {Name: "shell", Interactive: true}, {Name: "tty", Interactive: true, PseudoTerminal: true}}}
	in := &taskInput{uid: "u1", task: types.NamespacedName{Namespace: "ns", Name: "t"}, revision: "web:3", stateDir: "/state", spec: spec}
	s := pauseSpec(in, "/usr/local/bin/berth")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	want := runtime.ContainerSpec{
		ID:         runtime.ContainerID("u1", runtime.PauseContainer),
		RootFS:     "/state/pause/rootfs",
		Labels:     map[string]string{runtime.LabelTaskUID: "u1", runtime.LabelTask: "ns/t", runtime.LabelContainer: runtime.PauseContainer, runtime.LabelRevision: "web:3"},
		EntryPoint: []string{"/berth", "pause", "/stdin/shell"}, User: "65534:65534", CapDrop: []string{"ALL"}, NoNewPrivileges: true,
		Mounts: []runtime.Mount{{HostPath: "/usr/local/bin/berth", ContainerPath: "/berth", ReadOnly: true},
			{HostPath: "/state/volumes/u1/~stdin", ContainerPath: "/stdin"}},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("pause spec (-want +got):\n%s", diff)
	}
	if !runtime.IsPause(s.Labels) {
		t.Error("IsPause is false for the pause container's labels")
	}
	shell, err := containerSpec(in, &spec.ContainerDefinitions[1])
	if err != nil {
		t.Fatal(err)
	}
	if shell.StdinPath != "/state/volumes/u1/~stdin/shell" || shell.Terminal {
		t.Errorf("interactive container: stdinPath %q terminal %v, want the pipe the pause process holds", shell.StdinPath, shell.Terminal)
	}
	tty, err := containerSpec(in, &spec.ContainerDefinitions[2])
	if err != nil {
		t.Fatal(err)
	}
	if tty.StdinPath != "" || !tty.Terminal {
		t.Errorf("interactive container with a terminal: stdinPath %q terminal %v, want its terminal only", tty.StdinPath, tty.Terminal)
	}
	if !needsPause(&ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: spec.ContainerDefinitions[1:2]}) ||
		needsPause(&ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: spec.ContainerDefinitions[2:]}) {
		t.Error("needsPause: want a pause container for an interactive container without a terminal only")
	}
}

func TestStartOrder(t *testing.T) {
	defs := func(deps map[string][]string, names ...string) []ecsv1alpha1.ContainerDefinition {
		var out []ecsv1alpha1.ContainerDefinition
		for _, n := range names {
			d := ecsv1alpha1.ContainerDefinition{Name: n}
			for _, dep := range deps[n] {
				d.DependsOn = append(d.DependsOn, ecsv1alpha1.ContainerDependency{ContainerName: dep, Condition: ecsv1alpha1.DependencyStart})
			}
			out = append(out, d)
		}
		return out
	}
	tests := []struct {
		name    string
		defs    []ecsv1alpha1.ContainerDefinition
		want    []int
		wantErr bool
	}{
		{"definition order without dependencies", defs(nil, "a", "b", "c"), []int{0, 1, 2}, false},
		{"dependencies first", defs(map[string][]string{"a": {"c"}, "b": {"a"}}, "a", "b", "c"), []int{2, 0, 1}, false},
		{"cycle", defs(map[string][]string{"a": {"b"}, "b": {"a"}}, "a", "b"), nil, true},
		{"a linked container starts first", []ecsv1alpha1.ContainerDefinition{{Name: "web", Links: []string{"db:database"}}, {Name: "db"}}, []int{1, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := startOrder(tc.defs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %t", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("startOrder() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCPUShares: ECS's mapping of cpu units to cgroup shares, within the kernel's
// bounds (runc refuses 1).
func TestCPUShares(t *testing.T) {
	for units, want := range map[int32]uint64{0: 2, 1: 2, 2: 2, 10: 10, 1024: 1024, 262144: 262144, 300000: 262144} {
		if got := cpuShares(units); got != want {
			t.Errorf("cpuShares(%d) = %d, want %d", units, got, want)
		}
	}
}
