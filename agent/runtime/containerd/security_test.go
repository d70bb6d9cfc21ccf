package containerd

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthdev/berth/agent/runtime"
)

// TestConfinementOpts: the OCI spec carries the confinement the container policy
// decided (runtime.ContainerSpec.NoNewPrivileges, SeccompUnconfined): Docker's
// new-privileges default gives way to no_new_privs, the default seccomp profile is
// set unless lifted, and it is made for the capabilities the container ends up
// with, so a privileged one is not refused what its capabilities allow.
func TestConfinementOpts(t *testing.T) {
	tests := []struct {
		name             string
		spec             runtime.ContainerSpec
		wantNoNewPrivs   bool
		wantSeccomp      bool
		wantMountAllowed bool // mount(2), which the profile allows with CAP_SYS_ADMIN only
	}{
		{name: "default: profile, new privileges as Docker", spec: runtime.ContainerSpec{ID: "c"}, wantSeccomp: true},
		{name: "no-new-privileges", spec: runtime.ContainerSpec{ID: "c", NoNewPrivileges: true}, wantNoNewPrivs: true, wantSeccomp: true},
		{name: "unconfined", spec: runtime.ContainerSpec{ID: "c", SeccompUnconfined: true}},
		{name: "privileged under the profile keeps its capabilities' calls", spec: runtime.ContainerSpec{ID: "c", Privileged: true},
			wantSeccomp: true, wantMountAllowed: true},
		{name: "SYS_ADMIN added", spec: runtime.ContainerSpec{ID: "c", CapAdd: []string{"SYS_ADMIN"}}, wantSeccomp: true, wantMountAllowed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ociSpec(t, tc.spec)
			if got.Process.NoNewPrivileges != tc.wantNoNewPrivs {
				t.Errorf("no_new_privs %v, want %v", got.Process.NoNewPrivileges, tc.wantNoNewPrivs)
			}
			sc := got.Linux.Seccomp
			if (sc != nil) != tc.wantSeccomp {
				t.Fatalf("seccomp %+v, want a profile: %v", sc, tc.wantSeccomp)
			}
			if sc == nil {
				return
			}
			if sc.DefaultAction != specs.ActErrno {
				t.Errorf("default action %s, want %s", sc.DefaultAction, specs.ActErrno)
			}
			if allowed := allowsSyscall(sc, "mount"); allowed != tc.wantMountAllowed {
				t.Errorf("mount allowed %v, want %v", allowed, tc.wantMountAllowed)
			}
		})
	}
}

func allowsSyscall(sc *specs.LinuxSeccomp, name string) bool {
	return slices.ContainsFunc(sc.Syscalls, func(s specs.LinuxSyscall) bool {
		return s.Action == specs.ActAllow && slices.Contains(s.Names, name)
	})
}
