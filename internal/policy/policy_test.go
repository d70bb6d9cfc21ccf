package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const (
	privileged = ecsv1alpha1.ContainerPolicyPrivileged
	baseline   = ecsv1alpha1.ContainerPolicyBaseline
	restricted = ecsv1alpha1.ContainerPolicyRestricted
)

// spec is a task definition spec with one container "app", edited by edits.
func spec(edits ...func(*ecsv1alpha1.TaskDefinitionSpec)) *ecsv1alpha1.TaskDefinitionSpec {
	s := &ecsv1alpha1.TaskDefinitionSpec{
		NetworkMode:          ecsv1alpha1.NetworkModeBridge,
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "app:1"}},
	}
	for _, e := range edits {
		e(s)
	}
	return s
}

// app edits the first container.
func app(edit func(*ecsv1alpha1.ContainerDefinition)) func(*ecsv1alpha1.TaskDefinitionSpec) {
	return func(s *ecsv1alpha1.TaskDefinitionSpec) { edit(&s.ContainerDefinitions[0]) }
}

func caps(add, drop []ecsv1alpha1.Capability) func(*ecsv1alpha1.TaskDefinitionSpec) {
	return app(func(c *ecsv1alpha1.ContainerDefinition) {
		c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Add: add, Drop: drop}}
	})
}

func secopts(opts ...string) func(*ecsv1alpha1.TaskDefinitionSpec) {
	return app(func(c *ecsv1alpha1.ContainerDefinition) { c.DockerSecurityOptions = opts })
}

func user(u string) func(*ecsv1alpha1.TaskDefinitionSpec) {
	return app(func(c *ecsv1alpha1.ContainerDefinition) { c.User = u })
}

// hardened is what restricted asks of every container: drop ALL, a non-root UID.
func hardened(s *ecsv1alpha1.TaskDefinitionSpec) {
	for i := range s.ContainerDefinitions {
		c := &s.ContainerDefinitions[i]
		c.User = "1000"
		c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Drop: []ecsv1alpha1.Capability{"ALL"}}}
	}
}

// paths is the "type field" of each violation, which is what a user acts on.
func paths(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, string(e.Type)+" "+e.Field)
	}
	return out
}

func TestCheck(t *testing.T) {
	const (
		c0       = "spec.containerDefinitions[0]"
		capsPath = c0 + ".linuxParameters.capabilities"
	)
	tests := []struct {
		name string
		spec *ecsv1alpha1.TaskDefinitionSpec
		// want holds the violations at baseline and restricted (privileged never has any).
		wantBaseline, wantRestricted []string
	}{
		{
			name:           "plain web container",
			spec:           spec(),
			wantRestricted: []string{"FieldValueRequired " + capsPath + ".drop"},
		},
		{
			name: "hardened container",
			spec: spec(hardened),
		},
		{
			name:           "privileged",
			spec:           spec(hardened, app(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true })),
			wantBaseline:   []string{"FieldValueForbidden " + c0 + ".privileged"},
			wantRestricted: []string{"FieldValueForbidden " + c0 + ".privileged"},
		},
		{
			name:           "host network",
			spec:           spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) { s.NetworkMode = ecsv1alpha1.NetworkModeHost }),
			wantBaseline:   []string{"FieldValueForbidden spec.networkMode"},
			wantRestricted: []string{"FieldValueForbidden spec.networkMode"},
		},
		{
			name: "host pid and ipc",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.PidMode, s.IpcMode = ecsv1alpha1.NamespaceModeHost, ecsv1alpha1.NamespaceModeHost
			}),
			wantBaseline:   []string{"FieldValueForbidden spec.pidMode", "FieldValueForbidden spec.ipcMode"},
			wantRestricted: []string{"FieldValueForbidden spec.pidMode", "FieldValueForbidden spec.ipcMode"},
		},
		{
			name: "task-scoped pid and ipc namespaces share nothing with the host",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.PidMode, s.IpcMode = ecsv1alpha1.NamespaceModeTask, ecsv1alpha1.NamespaceModeTask
			}),
		},
		{
			name: "host devices",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.ContainerDefinitions[0].LinuxParameters.Devices = []ecsv1alpha1.Device{{HostPath: "/dev/fuse"}}
			}),
			wantBaseline:   []string{"FieldValueForbidden spec.containerDefinitions[0].linuxParameters.devices"},
			wantRestricted: []string{"FieldValueForbidden spec.containerDefinitions[0].linuxParameters.devices"},
		},
		{
			name: "host volume, second of two",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.Volumes = []ecsv1alpha1.Volume{{Name: "scratch"}, {Name: "proc", Host: &ecsv1alpha1.HostVolume{SourcePath: "/proc"}}}
			}),
			wantBaseline:   []string{"FieldValueForbidden spec.volumes[1].host"},
			wantRestricted: []string{"FieldValueForbidden spec.volumes[1].host"},
		},
		{
			name: "task and shared Docker volumes and host: {} share no instance path",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.Volumes = []ecsv1alpha1.Volume{{Name: "scratch", Host: &ecsv1alpha1.HostVolume{}},
					{Name: "tmp", DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{DriverOpts: &ecsv1alpha1.LocalDriverOpts{Type: "tmpfs"}}},
					{Name: "cache", DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{Scope: ecsv1alpha1.DockerVolumeScopeShared, Autoprovision: true}}}
			}),
		},
		{
			name: "Docker volume binding an instance path",
			spec: spec(hardened, func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.Volumes = []ecsv1alpha1.Volume{{Name: "etc", DockerVolumeConfiguration: &ecsv1alpha1.DockerVolumeConfiguration{
					DriverOpts: &ecsv1alpha1.LocalDriverOpts{Type: "none", O: "bind", Device: "/etc"}}}}
			}),
			wantBaseline:   []string{"FieldValueForbidden spec.volumes[0].dockerVolumeConfiguration.driverOpts"},
			wantRestricted: []string{"FieldValueForbidden spec.volumes[0].dockerVolumeConfiguration.driverOpts"},
		},
		{
			name:           "default capabilities added back",
			spec:           spec(hardened, caps([]ecsv1alpha1.Capability{"CHOWN", "CAP_KILL", "NET_BIND_SERVICE"}, []ecsv1alpha1.Capability{"ALL"})),
			wantRestricted: []string{"FieldValueForbidden " + capsPath + ".add[0]", "FieldValueForbidden " + capsPath + ".add[1]"},
		},
		{
			name:           "dangerous capabilities, with or without CAP_ or in lower case",
			spec:           spec(hardened, caps([]ecsv1alpha1.Capability{"SYS_ADMIN", "CAP_NET_ADMIN", "sys_ptrace", "ALL"}, []ecsv1alpha1.Capability{"ALL"})),
			wantBaseline:   []string{"FieldValueForbidden " + capsPath + ".add[0]", "FieldValueForbidden " + capsPath + ".add[1]", "FieldValueForbidden " + capsPath + ".add[2]", "FieldValueForbidden " + capsPath + ".add[3]"},
			wantRestricted: []string{"FieldValueForbidden " + capsPath + ".add[0]", "FieldValueForbidden " + capsPath + ".add[1]", "FieldValueForbidden " + capsPath + ".add[2]", "FieldValueForbidden " + capsPath + ".add[3]"},
		},
		{
			name:           "drop ALL spelled cap_all counts",
			spec:           spec(user("1000"), caps(nil, []ecsv1alpha1.Capability{"NET_RAW", "cap_all"})),
			wantRestricted: nil,
		},
		{
			name:           "dropping some capabilities is not enough for restricted",
			spec:           spec(user("1000"), caps(nil, []ecsv1alpha1.Capability{"NET_RAW"})),
			wantRestricted: []string{"FieldValueRequired " + capsPath + ".drop"},
		},
		{
			name:           "root by UID",
			spec:           spec(hardened, user("0")),
			wantRestricted: []string{"FieldValueForbidden " + c0 + ".user"},
		},
		{
			name:           "root by UID with leading zeros and a group",
			spec:           spec(hardened, user("000:1000")),
			wantRestricted: []string{"FieldValueForbidden " + c0 + ".user"},
		},
		{
			name:           "root by name",
			spec:           spec(hardened, user("root:root")),
			wantRestricted: []string{"FieldValueForbidden " + c0 + ".user"},
		},
		{
			name:           "a user name cannot be verified before the container starts",
			spec:           spec(hardened, user("nginx")),
			wantRestricted: []string{"FieldValueForbidden " + c0 + ".user"},
		},
		{
			name: "non-root UID with group 0",
			spec: spec(hardened, user("1000:0")),
		},
		{
			name: "no user: the agent judges the image's user",
			spec: spec(hardened, user("")),
		},
		{
			name: "unconfined seccomp and AppArmor, in either spelling",
			spec: spec(hardened, secopts("no-new-privileges", "seccomp=unconfined", "apparmor:unconfined", "seccomp:unconfined", "apparmor=unconfined")),
			wantBaseline: []string{
				"FieldValueForbidden " + c0 + ".dockerSecurityOptions[1]", "FieldValueForbidden " + c0 + ".dockerSecurityOptions[2]",
				"FieldValueForbidden " + c0 + ".dockerSecurityOptions[3]", "FieldValueForbidden " + c0 + ".dockerSecurityOptions[4]",
			},
			wantRestricted: []string{
				"FieldValueForbidden " + c0 + ".dockerSecurityOptions[1]", "FieldValueForbidden " + c0 + ".dockerSecurityOptions[2]",
				"FieldValueForbidden " + c0 + ".dockerSecurityOptions[3]", "FieldValueForbidden " + c0 + ".dockerSecurityOptions[4]",
			},
		},
		{
			name: "an AppArmor profile of its own and no-new-privileges confine more",
			spec: spec(hardened, secopts("apparmor:berth-web", "no-new-privileges:true")),
		},
		{
			name: "every violation of every container, in order",
			spec: spec(func(s *ecsv1alpha1.TaskDefinitionSpec) {
				s.NetworkMode, s.PidMode = ecsv1alpha1.NetworkModeHost, ecsv1alpha1.NamespaceModeHost
				s.Volumes = []ecsv1alpha1.Volume{{Name: "root", Host: &ecsv1alpha1.HostVolume{SourcePath: "/"}}}
				s.ContainerDefinitions = append(s.ContainerDefinitions, ecsv1alpha1.ContainerDefinition{
					Name: "agent", Image: "agent:1", Privileged: true, User: "0",
					LinuxParameters: &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Add: []ecsv1alpha1.Capability{"SYS_ADMIN"}}},
				})
			}),
			wantBaseline: []string{
				"FieldValueForbidden spec.networkMode", "FieldValueForbidden spec.pidMode", "FieldValueForbidden spec.volumes[0].host",
				"FieldValueForbidden spec.containerDefinitions[1].privileged",
				"FieldValueForbidden spec.containerDefinitions[1].linuxParameters.capabilities.add[0]",
			},
			wantRestricted: []string{
				"FieldValueForbidden spec.networkMode", "FieldValueForbidden spec.pidMode", "FieldValueForbidden spec.volumes[0].host",
				"FieldValueRequired " + capsPath + ".drop",
				"FieldValueForbidden spec.containerDefinitions[1].privileged",
				"FieldValueForbidden spec.containerDefinitions[1].linuxParameters.capabilities.add[0]",
				"FieldValueRequired spec.containerDefinitions[1].linuxParameters.capabilities.drop",
				"FieldValueForbidden spec.containerDefinitions[1].user",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Check(privileged, tc.spec); len(got) != 0 {
				t.Errorf("privileged: %v, want nothing", got)
			}
			if diff := cmp.Diff(tc.wantBaseline, paths(Check(baseline, tc.spec))); diff != "" {
				t.Errorf("baseline (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRestricted, paths(Check(restricted, tc.spec))); diff != "" {
				t.Errorf("restricted (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckLevels: an unset level is the default (baseline), and a level the code
// does not know fails closed (restricted).
func TestCheckLevels(t *testing.T) {
	s := spec(func(s *ecsv1alpha1.TaskDefinitionSpec) { s.NetworkMode = ecsv1alpha1.NetworkModeHost })
	if diff := cmp.Diff(paths(Check(baseline, s)), paths(Check("", s))); diff != "" {
		t.Errorf("unset level differs from baseline (-baseline +unset):\n%s", diff)
	}
	if diff := cmp.Diff(paths(Check(restricted, s)), paths(Check("paranoid", s))); diff != "" {
		t.Errorf("unknown level differs from restricted (-restricted +unknown):\n%s", diff)
	}
	if got := Check(baseline, nil); got != nil {
		t.Errorf("nil spec: %v", got)
	}
}

func TestMessagesNameFieldAndLevel(t *testing.T) {
	s := spec(app(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true }),
		func(s *ecsv1alpha1.TaskDefinitionSpec) {
			s.Volumes = []ecsv1alpha1.Volume{{Name: "proc", Host: &ecsv1alpha1.HostVolume{SourcePath: "/proc"}}}
		}, caps([]ecsv1alpha1.Capability{"NET_ADMIN"}, nil), secopts("seccomp=unconfined"))
	got := Message("web:3", "prod", baseline, Check(baseline, s))
	for _, want := range []string{
		"task definition web:3 exceeds the container policy of cluster prod (level baseline): ",
		"spec.volumes[0].host: Forbidden: host path volumes (/proc) are not allowed at level baseline",
		"spec.containerDefinitions[0].privileged: Forbidden: privileged containers are not allowed at level baseline",
		"spec.containerDefinitions[0].linuxParameters.capabilities.add[0]: Forbidden: capability NET_ADMIN is not allowed at level baseline (allowed: AUDIT_WRITE, CHOWN,",
		"spec.containerDefinitions[0].dockerSecurityOptions[0]: Forbidden: seccomp=unconfined: an unconfined seccomp profile is not allowed at level baseline",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message %q lacks %q", got, want)
		}
	}
}

func TestCheckImageUser(t *testing.T) {
	tests := []struct {
		level                    ecsv1alpha1.ContainerPolicyLevel
		containerUser, imageUser string
		want                     string // the error's detail prefix; "" for none
	}{
		{restricted, "", "", "user is unset and the image runs as root (no user)"},
		{restricted, "", "root", `user is unset and the image runs as root (user "root")`},
		{restricted, "", "0:0", `user is unset and the image runs as root (user "0:0")`},
		{restricted, "", "nobody", `user is unset and the image runs as user "nobody", a name that cannot be verified`},
		{restricted, "", "65534", ""},
		{restricted, "", "1000:0", ""},
		{restricted, "1000", "", ""}, // the container's user wins; Check judged it
		{baseline, "", "", ""},
		{privileged, "", "root", ""},
		{"", "", "", ""}, // the default level is baseline
		{"paranoid", "", "", "user is unset and the image runs as root"},
	}
	for _, tc := range tests {
		err := CheckImageUser(tc.level, 2, tc.containerUser, tc.imageUser)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s, user %q, image user %q: %v, want nil", tc.level, tc.containerUser, tc.imageUser, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s, user %q, image user %q: nil, want %q", tc.level, tc.containerUser, tc.imageUser, tc.want)
		case err != nil && (err.Field != "spec.containerDefinitions[2].user" || !strings.HasPrefix(err.Detail, tc.want)):
			t.Errorf("%s, image user %q: %v, want spec.containerDefinitions[2].user: %s...", tc.level, tc.imageUser, err, tc.want)
		}
	}
}

// TestOverridesCarryNoPolicyField keeps Check's premise true: a task's overrides can
// change nothing the policy governs, so checking the revision's spec is enough. A
// field added to the overrides must be judged here (and in Check, if it is one the
// policy governs, such as a user or a capability) before this test passes again.
func TestOverridesCarryNoPolicyField(t *testing.T) {
	for typ, known := range map[reflect.Type][]string{
		reflect.TypeFor[ecsv1alpha1.TaskOverrides]():     {"ContainerOverrides", "Cpu", "Memory"},
		reflect.TypeFor[ecsv1alpha1.ContainerOverride](): {"Name", "Command", "Environment", "Cpu", "Memory", "MemoryReservation"},
	} {
		for i := 0; i < typ.NumField(); i++ {
			if name := typ.Field(i).Name; !slices.Contains(known, name) {
				t.Errorf("%s.%s is new: decide whether the container policy must check it (internal/policy.Check)", typ.Name(), name)
			}
		}
	}
}

// TestContainerHardening is the confinement each level gives a container: the
// runtime's default seccomp profile unless the level is privileged and the container
// is privileged or opts out; no-new-privileges at restricted or when asked for.
func TestContainerHardening(t *testing.T) {
	none, nnp, seccomp, both := Hardening{}, Hardening{NoNewPrivileges: true}, Hardening{Seccomp: true}, Hardening{NoNewPrivileges: true, Seccomp: true}
	plain := ecsv1alpha1.ContainerDefinition{Name: "app"}
	priv := ecsv1alpha1.ContainerDefinition{Name: "app", Privileged: true}
	opts := func(o ...string) ecsv1alpha1.ContainerDefinition {
		return ecsv1alpha1.ContainerDefinition{Name: "app", DockerSecurityOptions: o}
	}
	tests := []struct {
		name                                         string
		def                                          ecsv1alpha1.ContainerDefinition
		wantPrivileged, wantBaseline, wantRestricted Hardening
	}{
		{"plain container", plain, seccomp, seccomp, both},
		{"privileged: no profile, as Docker, where the level allows it", priv, none, seccomp, both},
		{"seccomp=unconfined is honoured at privileged only", opts("seccomp=unconfined"), none, seccomp, both},
		{"seccomp:unconfined too", opts("seccomp:unconfined"), none, seccomp, both},
		{"no-new-privileges asked for", opts("no-new-privileges"), both, both, both},
		{"no-new-privileges:true", opts("no-new-privileges:true"), both, both, both},
		{"no-new-privileges=true with seccomp=unconfined", opts("no-new-privileges=true", "seccomp=unconfined"), nnp, both, both},
		{"no-new-privileges:false is not asking", opts("no-new-privileges:false"), seccomp, seccomp, both},
		{"an AppArmor profile changes neither", opts("apparmor:unconfined"), seccomp, seccomp, both},
		{"a seccomp profile that is not unconfined keeps the default", opts("seccomp=default.json"), seccomp, seccomp, both},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				level ecsv1alpha1.ContainerPolicyLevel
				want  Hardening
			}{
				{privileged, tc.wantPrivileged}, {baseline, tc.wantBaseline}, {restricted, tc.wantRestricted},
				{"", tc.wantBaseline}, {"paranoid", tc.wantRestricted}, // unset is the default; unknown fails closed
			} {
				if diff := cmp.Diff(c.want, ContainerHardening(c.level, &tc.def)); diff != "" {
					t.Errorf("level %q (-want +got):\n%s", c.level, diff)
				}
			}
		})
	}
}
