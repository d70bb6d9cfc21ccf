package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// FuzzContainerSpec turns arbitrary task definitions (as JSON, the way they reach
// the agent) into runtime specs. Invariants: no panic; a container is privileged,
// in the host's network, PID or IPC namespace, or given a capability only when its
// definition asks; every spec the engine builds passes the runtime's own checks;
// the environment holds the definition's values, never a label.
func FuzzContainerSpec(f *testing.F) {
	for _, seed := range []string{
		`{"containerDefinitions":[{"name":"app","image":"app:1"}]}`,
		`{"networkMode":"host","pidMode":"host","containerDefinitions":[{"name":"app","image":"app:1","privileged":true,"linuxParameters":{"capabilities":{"add":["NET_ADMIN"],"drop":["ALL"]}}}]}`,
		`{"volumes":[{"name":"v"},{"name":"h","host":{"sourcePath":"/proc"}}],"containerDefinitions":[{"name":"a","image":"a","mountPoints":[{"sourceVolume":"v","containerPath":"/v"}],"volumesFrom":[{"sourceContainer":"b"}]},{"name":"b","image":"b","mountPoints":[{"sourceVolume":"h","containerPath":"/h","readOnly":true}]}]}`,
		`{"cpu":256,"memory":512,"containerDefinitions":[{"name":"app","image":"app:1","cpu":128,"memory":256,"memoryReservation":128,"environment":[{"name":"A","value":"1"}],"ulimits":[{"name":"nofile","softLimit":10,"hardLimit":20}],"dependsOn":[{"containerName":"app","condition":"START"}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec ecsv1alpha1.TaskDefinitionSpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		in := &taskInput{uid: "0b7a3c1e-5d2f-4a8b-9c6d-1e2f3a4b5c6d", revision: "fuzz:1", spec: &spec, stateDir: "/var/lib/berth"}
		in.task.Namespace, in.task.Name = "ns", "task"
		if _, err := newContainers(in); err != nil {
			return // a cycle or an unknown dependency: the task is refused before any spec
		}
		for i := range spec.ContainerDefinitions {
			def := &spec.ContainerDefinitions[i]
			s, err := containerSpec(in, def)
			if err != nil {
				continue
			}
			checkContainerSpec(t, &spec, def, s)
		}
	})
}

func checkContainerSpec(t *testing.T, spec *ecsv1alpha1.TaskDefinitionSpec, def *ecsv1alpha1.ContainerDefinition, s runtime.ContainerSpec) {
	t.Helper()
	if s.Privileged && !def.Privileged {
		t.Fatalf("container %q privileged without asking", def.Name)
	}
	if s.HostNetwork != (spec.NetworkMode == ecsv1alpha1.NetworkModeHost) {
		t.Fatalf("host network %v for networkMode %q", s.HostNetwork, spec.NetworkMode)
	}
	if s.HostPID != (spec.PidMode == ecsv1alpha1.NamespaceModeHost) || s.HostIPC != (spec.IpcMode == ecsv1alpha1.NamespaceModeHost) {
		t.Fatalf("host PID %v / IPC %v for pidMode %q ipcMode %q", s.HostPID, s.HostIPC, spec.PidMode, spec.IpcMode)
	}
	var asked []string
	if lp := def.LinuxParameters; lp != nil && lp.Capabilities != nil {
		asked = capabilities(lp.Capabilities.Add)
	}
	for _, c := range s.CapAdd {
		if !slices.Contains(asked, c) {
			t.Fatalf("capability %q added without asking", c)
		}
	}
	for _, kv := range def.Environment {
		if kv.Name != "" && !strings.ContainsRune(kv.Name, '=') && !slices.Contains(s.Env, kv.Name+"="+kv.Value) {
			t.Fatalf("variable %q missing from the environment %v", kv.Name, s.Env.Names())
		}
	}
	for k := range s.Labels {
		for _, kv := range def.Environment {
			if kv.Value != "" && len(kv.Value) > 3 && strings.Contains(s.Labels[k], kv.Value) {
				t.Fatalf("environment value of %q in label %s", kv.Name, k)
			}
		}
	}
}
