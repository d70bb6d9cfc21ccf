package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// FuzzCheck decodes a task definition spec from JSON (the committed corpus in
// testdata/fuzz/FuzzCheck holds specs of every kind of violation) and checks the
// policy's invariants on it:
//   - Check never panics, and gives the same answer twice;
//   - privileged allows everything;
//   - whatever shares the host (a privileged container, host network, PID or IPC
//     namespace, a host path volume or bind), adds a capability outside Docker's
//     default set, or lifts the seccomp or AppArmor profile is always refused at
//     baseline and restricted, at that field's path;
//   - every container of a spec restricted allows runs with no-new-privileges and
//     the default seccomp profile (ContainerHardening), and every container of a
//     spec baseline allows with the profile;
//   - the levels are ordered: every path refused at baseline is refused at
//     restricted, so a spec restricted allows is allowed at baseline and privileged;
//   - every violation names a field of the spec and says why.
//
// Run it with `go test -run=XXX -fuzz=FuzzCheck -fuzztime=20s ./internal/policy/`.
func FuzzCheck(f *testing.F) {
	for _, s := range []*ecsv1alpha1.TaskDefinitionSpec{
		spec(), spec(hardened),
		spec(app(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true })),
		spec(func(s *ecsv1alpha1.TaskDefinitionSpec) {
			s.NetworkMode, s.PidMode, s.IpcMode = ecsv1alpha1.NetworkModeHost, ecsv1alpha1.NamespaceModeHost, ecsv1alpha1.NamespaceModeHost
		}),
		spec(caps([]ecsv1alpha1.Capability{"cap_sys_admin", "NET_BIND_SERVICE"}, []ecsv1alpha1.Capability{"ALL"}), user("0")),
		spec(hardened, secopts("seccomp=unconfined", "apparmor:unconfined", "no-new-privileges")),
	} {
		data, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ecsv1alpha1.TaskDefinitionSpec
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		if errs := Check(privileged, &s); len(errs) != 0 {
			t.Fatalf("privileged refused %v", errs)
		}
		byLevel := map[ecsv1alpha1.ContainerPolicyLevel][]string{}
		for _, level := range []ecsv1alpha1.ContainerPolicyLevel{baseline, restricted} {
			errs := Check(level, &s)
			if again := Check(level, &s); !cmp.Equal(errs, again) {
				t.Fatalf("%s: two checks differ:\n%s", level, cmp.Diff(errs, again))
			}
			checkWellFormed(t, level, errs)
			got := fieldsOf(errs)
			for _, want := range alwaysRefused(&s) {
				if !slices.Contains(got, want) {
					t.Fatalf("%s allowed %s (violations: %v) in %s", level, want, got, data)
				}
			}
			byLevel[level] = got
			if len(errs) == 0 {
				checkHardened(t, level, &s)
			}
		}
		for _, p := range byLevel[baseline] {
			if !slices.Contains(byLevel[restricted], p) {
				t.Fatalf("baseline refuses %s but restricted allows it (restricted: %v) in %s", p, byLevel[restricted], data)
			}
		}
	})
}

// alwaysRefused are the fields of s that baseline and restricted must refuse, found
// without Check's code.
func alwaysRefused(s *ecsv1alpha1.TaskDefinitionSpec) []string {
	var out []string
	if s.NetworkMode == ecsv1alpha1.NetworkModeHost {
		out = append(out, "spec.networkMode")
	}
	if s.PidMode == ecsv1alpha1.NamespaceModeHost {
		out = append(out, "spec.pidMode")
	}
	if s.IpcMode == ecsv1alpha1.NamespaceModeHost {
		out = append(out, "spec.ipcMode")
	}
	for i, v := range s.Volumes {
		// host: {} without a sourcePath is a task volume (ECS's Docker-managed one).
		if v.Host != nil && v.Host.SourcePath != "" {
			out = append(out, fmt.Sprintf("spec.volumes[%d].host", i))
		}
		// A Docker volume of type none binds an instance path, as host.sourcePath does.
		if dvc := v.DockerVolumeConfiguration; dvc != nil && dvc.DriverOpts != nil && dvc.DriverOpts.Type == "none" {
			out = append(out, fmt.Sprintf("spec.volumes[%d].dockerVolumeConfiguration.driverOpts", i))
		}
	}
	dangerous := map[string]bool{"ALL": true, "SYS_ADMIN": true, "NET_ADMIN": true, "NET_RAW": true, "SYS_PTRACE": true, "SYS_MODULE": true, "DAC_READ_SEARCH": true, "BPF": true}
	unconfined := []string{"seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "apparmor:unconfined"}
	for i, c := range s.ContainerDefinitions {
		if c.Privileged {
			out = append(out, fmt.Sprintf("spec.containerDefinitions[%d].privileged", i))
		}
		for j, o := range c.DockerSecurityOptions {
			if slices.Contains(unconfined, o) {
				out = append(out, fmt.Sprintf("spec.containerDefinitions[%d].dockerSecurityOptions[%d]", i, j))
			}
		}
		if c.LinuxParameters == nil || c.LinuxParameters.Capabilities == nil {
			continue
		}
		for j, name := range c.LinuxParameters.Capabilities.Add {
			// Spelled any way the runtime accepts: lower case, CAP_ prefix, spaces.
			if dangerous[strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(string(name))), "CAP_")] {
				out = append(out, fmt.Sprintf("spec.containerDefinitions[%d].linuxParameters.capabilities.add[%d]", i, j))
			}
		}
	}
	return out
}

// checkHardened: what level allows runs confined: under the default seccomp profile,
// and with no-new-privileges at restricted.
func checkHardened(t *testing.T, level ecsv1alpha1.ContainerPolicyLevel, s *ecsv1alpha1.TaskDefinitionSpec) {
	t.Helper()
	for i := range s.ContainerDefinitions {
		h := ContainerHardening(level, &s.ContainerDefinitions[i])
		if !h.Seccomp || (level == restricted && !h.NoNewPrivileges) {
			t.Fatalf("%s allows container %d but runs it with %+v", level, i, h)
		}
	}
}

func checkWellFormed(t *testing.T, level ecsv1alpha1.ContainerPolicyLevel, errs field.ErrorList) {
	t.Helper()
	for _, e := range errs {
		if !strings.HasPrefix(e.Field, "spec.") || e.Detail == "" {
			t.Fatalf("%s: violation without a field or a reason: %v", level, e)
		}
		if e.Type != field.ErrorTypeForbidden && e.Type != field.ErrorTypeRequired {
			t.Fatalf("%s: violation of type %s: %v", level, e.Type, e)
		}
		if !strings.Contains(e.Detail, "level "+string(level)) {
			t.Fatalf("%s: violation does not name the level: %v", level, e)
		}
	}
}

func fieldsOf(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}
