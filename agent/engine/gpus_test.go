package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestContainerSpecGPUs: a container gets NVIDIA_VISIBLE_DEVICES with the GPUs its
// task was assigned and the device nodes the instance has for them; a container of
// the same task without GPUs gets neither.
func TestContainerSpecGPUs(t *testing.T) {
	dev := t.TempDir()
	// The instance has GPUs 0-2 and the driver's control node, but no UVM module.
	for _, node := range []string{"nvidia0", "nvidia1", "nvidia2", "nvidiactl"} {
		if err := os.WriteFile(filepath.Join(dev, node), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spec := &ecsv1alpha1.TaskDefinitionSpec{
		NetworkMode: ecsv1alpha1.NetworkModeHost,
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
			{Name: "train", Image: "cuda:12", Memory: ptr.To[int32](64),
				// The definition's own value must not widen the assignment.
				Environment:          []ecsv1alpha1.KeyValuePair{{Name: EnvNvidiaVisibleDevices, Value: "all"}, {Name: "Z", Value: "last"}},
				ResourceRequirements: []ecsv1alpha1.ResourceRequirement{{Type: ecsv1alpha1.ResourceGPU, Value: "2"}}},
			{Name: "side", Image: "side:1", Memory: ptr.To[int32](64)},
		},
	}
	testCases := []struct {
		name        string
		container   int
		devDir      string
		gpus        map[string][]string
		wantEnv     []string
		wantDevices []runtime.Device
	}{
		{
			name: "assigned GPUs, nodes present", container: 0, devDir: dev,
			gpus:    map[string][]string{"train": {"0", "2"}},
			wantEnv: []string{EnvNvidiaVisibleDevices + "=0,2", "Z=last"},
			wantDevices: []runtime.Device{
				{HostPath: filepath.Join(dev, "nvidia0"), ContainerPath: "/dev/nvidia0", Permissions: "rwm"},
				{HostPath: filepath.Join(dev, "nvidia2"), ContainerPath: "/dev/nvidia2", Permissions: "rwm"},
				{HostPath: filepath.Join(dev, "nvidiactl"), ContainerPath: "/dev/nvidiactl", Permissions: "rwm"},
			},
		},
		{
			name: "GPUs declared by UUID have no node of their own", container: 0, devDir: dev,
			gpus:    map[string][]string{"train": {"GPU-6f2c", "GPU-7a1d"}},
			wantEnv: []string{EnvNvidiaVisibleDevices + "=GPU-6f2c,GPU-7a1d", "Z=last"},
			wantDevices: []runtime.Device{
				{HostPath: filepath.Join(dev, "nvidiactl"), ContainerPath: "/dev/nvidiactl", Permissions: "rwm"},
			},
		},
		{
			name: "no device directory (berth hollow)", container: 0,
			gpus:    map[string][]string{"train": {"1"}},
			wantEnv: []string{EnvNvidiaVisibleDevices + "=1", "Z=last"},
		},
		{
			name: "a container without GPUs", container: 1, devDir: dev,
			gpus: map[string][]string{"train": {"0", "2"}},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(spec)
			in.gpus, in.devDir = tc.gpus, tc.devDir
			got, err := containerSpec(in, &spec.ContainerDefinitions[tc.container])
			if err != nil {
				t.Fatal(err)
			}
			var gotEnv []string
			for _, kv := range got.Env {
				if !strings.HasPrefix(kv, "BERTH_") {
					gotEnv = append(gotEnv, kv)
				}
			}
			if diff := cmp.Diff(tc.wantEnv, gotEnv); diff != "" {
				t.Errorf("environment besides BERTH_* (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDevices, got.Devices); diff != "" {
				t.Errorf("devices (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the spec does not validate: %v", err)
			}
		})
	}
}
