package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berthdev/berth/agent/runtime"
)

// EnvNvidiaVisibleDevices lists a container's assigned GPUs, as the ECS agent sets
// it: NVIDIA's container tools and CUDA read it to pick the GPUs a process sees.
const EnvNvidiaVisibleDevices = "NVIDIA_VISIBLE_DEVICES"

// nvidiaControlDevices are the driver's device nodes every GPU process opens besides
// its GPUs' own /dev/nvidiaN.
var nvidiaControlDevices = []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}

// gpus exposes the container's assigned GPUs: NVIDIA_VISIBLE_DEVICES names them
// (winning over any value of the definition, which could name GPUs of other tasks),
// and the device nodes the instance has for them are added: /dev/nvidiaN for a GPU
// whose ID is its minor number N, and the driver's control nodes. A container
// without GPUs gets neither.
func gpus(s *runtime.ContainerSpec, in *taskInput, name string) {
	ids := in.gpus[name]
	if len(ids) == 0 {
		return
	}
	s.Env = setEnv(s.Env, EnvNvidiaVisibleDevices, strings.Join(ids, ","))
	if in.devDir == "" {
		return
	}
	nodes := make([]string, 0, len(ids)+len(nvidiaControlDevices))
	for _, id := range ids {
		nodes = append(nodes, "nvidia"+id)
	}
	nodes = append(nodes, nvidiaControlDevices...)
	for _, node := range nodes {
		host := filepath.Join(in.devDir, node)
		if _, err := os.Stat(host); err != nil {
			continue // not on this machine (a declared GPU named by UUID, no UVM module)
		}
		s.Devices = append(s.Devices, runtime.Device{HostPath: host, ContainerPath: "/dev/" + node, Permissions: "rwm"})
	}
}

// setEnv sets name in a sorted NAME=value list, keeping it sorted.
func setEnv(env []string, name, value string) []string {
	prefix := name + "="
	for i, kv := range env {
		switch {
		case strings.HasPrefix(kv, prefix):
			env[i] = prefix + value
			return env
		case kv > prefix:
			return slices.Insert(env, i, prefix+value)
		}
	}
	return append(env, prefix+value)
}
