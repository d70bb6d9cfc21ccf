package taskrules

import (
	"fmt"
	"slices"
	"strconv"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// GPURequest is how many GPUs one container asks for (resourceRequirements type GPU).
type GPURequest struct {
	Container string
	Count     int
}

// GPURequests lists the containers of spec that ask for GPUs, in definition order,
// which is the order AssignGPUs hands GPUs out in. The schema already bounds the
// value; it is checked again because a revision is stored data.
func GPURequests(spec *ecsv1alpha1.TaskDefinitionSpec) ([]GPURequest, error) {
	var out []GPURequest
	for i := range spec.ContainerDefinitions {
		c := &spec.ContainerDefinitions[i]
		for j, r := range c.ResourceRequirements {
			path := fmt.Sprintf("containerDefinitions[%d].resourceRequirements[%d]", i, j)
			switch r.Type {
			case ecsv1alpha1.ResourceGPU:
				n, err := strconv.Atoi(r.Value)
				if err != nil || n < 1 || n > ecsv1alpha1.MaxGPUsPerContainer {
					return nil, fmt.Errorf("%s.value: %q is not a number of GPUs from 1 to %d", path, r.Value, ecsv1alpha1.MaxGPUsPerContainer)
				}
				out = append(out, GPURequest{Container: c.Name, Count: n})
			default:
				return nil, fmt.Errorf("%s.type: %q is not supported: only GPU", path, r.Type)
			}
		}
	}
	return out, nil
}

// GPUCount is the GPUs a task of spec holds on its instance.
func GPUCount(reqs []GPURequest) int {
	n := 0
	for _, r := range reqs {
		n += r.Count
	}
	return n
}

// AssignGPUs hands ids, the GPUs placement chose for the task, to its containers in
// the order of reqs. The scheduler records the result in spec.gpuAssignments.
func AssignGPUs(reqs []GPURequest, ids []string) ([]ecsv1alpha1.GPUAssignment, error) {
	if want := GPUCount(reqs); len(ids) != want {
		return nil, fmt.Errorf("%d GPUs chosen for a task that needs %d", len(ids), want)
	}
	out := make([]ecsv1alpha1.GPUAssignment, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, ecsv1alpha1.GPUAssignment{ContainerName: r.Container, GPUIDs: slices.Clone(ids[:r.Count])})
		ids = ids[r.Count:]
	}
	return out, nil
}

// AssignedGPUs is every GPU ID of a task's assignments.
func AssignedGPUs(as []ecsv1alpha1.GPUAssignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.GPUIDs...)
	}
	return out
}

// CheckGPUAssignments is the agent's check of a task's spec.gpuAssignments before it
// runs the task: every container asking for GPUs has exactly that many, no other
// container has any, no GPU is given twice, and each is one of the instance's GPUs.
// It returns the IDs by container name.
func CheckGPUAssignments(spec *ecsv1alpha1.TaskDefinitionSpec, as []ecsv1alpha1.GPUAssignment, instanceGPUs []string) (map[string][]string, error) {
	reqs, err := GPURequests(spec)
	if err != nil {
		return nil, err
	}
	want := make(map[string]int, len(reqs))
	for _, r := range reqs {
		want[r.Container] = r.Count
	}
	out := make(map[string][]string, len(as))
	seen := map[string]bool{}
	for i, a := range as {
		path := fmt.Sprintf("spec.gpuAssignments[%d]", i)
		n, ok := want[a.ContainerName]
		if !ok {
			return nil, fmt.Errorf("%s.containerName: container %q asks for no GPUs", path, a.ContainerName)
		}
		if len(a.GPUIDs) != n {
			return nil, fmt.Errorf("%s.gpuIds: container %q asks for %d GPUs, %d assigned", path, a.ContainerName, n, len(a.GPUIDs))
		}
		for _, id := range a.GPUIDs {
			if !slices.Contains(instanceGPUs, id) {
				return nil, fmt.Errorf("%s.gpuIds: GPU %q is not one of this instance's GPUs %v", path, id, instanceGPUs)
			}
			if seen[id] {
				return nil, fmt.Errorf("%s.gpuIds: GPU %q is assigned twice", path, id)
			}
			seen[id] = true
		}
		out[a.ContainerName] = a.GPUIDs
	}
	for _, r := range reqs {
		if _, ok := out[r.Container]; !ok {
			return nil, fmt.Errorf("spec.gpuAssignments: container %q asks for %d GPUs and has none assigned (a task bound at creation must assign them; the scheduler does for the tasks it places)", r.Container, r.Count)
		}
	}
	return out, nil
}
