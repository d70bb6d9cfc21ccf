package taskrules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func gpuContainer(name, value string) ecsv1alpha1.ContainerDefinition {
	c := ecsv1alpha1.ContainerDefinition{Name: name}
	if value != "" {
		c.ResourceRequirements = []ecsv1alpha1.ResourceRequirement{{Type: ecsv1alpha1.ResourceGPU, Value: value}}
	}
	return c
}

func TestGPURequestsAndAssign(t *testing.T) {
	tests := []struct {
		name       string
		containers []ecsv1alpha1.ContainerDefinition
		ids        []string
		wantReqs   []GPURequest
		want       []ecsv1alpha1.GPUAssignment
		wantErr    string
	}{
		{name: "no GPUs", containers: []ecsv1alpha1.ContainerDefinition{gpuContainer("web", "")}},
		{name: "in definition order", containers: []ecsv1alpha1.ContainerDefinition{gpuContainer("a", "2"), gpuContainer("side", ""), gpuContainer("b", "1")},
			ids:      []string{"0", "2", "3"},
			wantReqs: []GPURequest{{"a", 2}, {"b", 1}},
			want:     []ecsv1alpha1.GPUAssignment{{ContainerName: "a", GPUIDs: []string{"0", "2"}}, {ContainerName: "b", GPUIDs: []string{"3"}}}},
		{name: "not a count", containers: []ecsv1alpha1.ContainerDefinition{gpuContainer("a", "two")},
			wantErr: `containerDefinitions[0].resourceRequirements[0].value: "two" is not a number of GPUs from 1 to 64`},
		{name: "inference accelerator", containers: []ecsv1alpha1.ContainerDefinition{{Name: "a",
			ResourceRequirements: []ecsv1alpha1.ResourceRequirement{{Type: ecsv1alpha1.ResourceInferenceAccelerator, Value: "dev1"}}}},
			wantErr: `containerDefinitions[0].resourceRequirements[0].type: "InferenceAccelerator" is not supported: only GPU`},
		{name: "wrong number chosen", containers: []ecsv1alpha1.ContainerDefinition{gpuContainer("a", "2")}, ids: []string{"0"},
			wantReqs: []GPURequest{{"a", 2}}, wantErr: "1 GPUs chosen for a task that needs 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: tc.containers}
			reqs, err := GPURequests(spec)
			if err == nil {
				if diff := cmp.Diff(tc.wantReqs, reqs); diff != "" {
					t.Errorf("GPURequests (-want +got):\n%s", diff)
				}
				var got []ecsv1alpha1.GPUAssignment
				if got, err = AssignGPUs(reqs, tc.ids); err == nil {
					if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("AssignGPUs (-want +got):\n%s", diff)
					}
				}
			}
			if gotErr := errString(err); gotErr != tc.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tc.wantErr)
			}
		})
	}
}

func TestCheckGPUAssignments(t *testing.T) {
	spec := &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
		gpuContainer("train", "2"), gpuContainer("side", ""),
	}}
	instance := []string{"0", "1", "2", "3"}
	tests := []struct {
		name    string
		as      []ecsv1alpha1.GPUAssignment
		want    map[string][]string
		wantErr string
	}{
		{name: "as asked", as: []ecsv1alpha1.GPUAssignment{{ContainerName: "train", GPUIDs: []string{"1", "3"}}},
			want: map[string][]string{"train": {"1", "3"}}},
		{name: "none assigned (bound at creation)",
			wantErr: `spec.gpuAssignments: container "train" asks for 2 GPUs and has none assigned (a task bound at creation must assign them; the scheduler does for the tasks it places)`},
		{name: "too few", as: []ecsv1alpha1.GPUAssignment{{ContainerName: "train", GPUIDs: []string{"1"}}},
			wantErr: `spec.gpuAssignments[0].gpuIds: container "train" asks for 2 GPUs, 1 assigned`},
		{name: "a GPU the instance does not have", as: []ecsv1alpha1.GPUAssignment{{ContainerName: "train", GPUIDs: []string{"1", "7"}}},
			wantErr: `spec.gpuAssignments[0].gpuIds: GPU "7" is not one of this instance's GPUs [0 1 2 3]`},
		{name: "twice", as: []ecsv1alpha1.GPUAssignment{{ContainerName: "train", GPUIDs: []string{"1", "1"}}},
			wantErr: `spec.gpuAssignments[0].gpuIds: GPU "1" is assigned twice`},
		{name: "a container without a GPU requirement", as: []ecsv1alpha1.GPUAssignment{{ContainerName: "side", GPUIDs: []string{"0"}}},
			wantErr: `spec.gpuAssignments[0].containerName: container "side" asks for no GPUs`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckGPUAssignments(spec, tc.as, instance)
			if gotErr := errString(err); gotErr != tc.wantErr {
				t.Fatalf("error = %q, want %q", gotErr, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("CheckGPUAssignments (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPortRange(t *testing.T) {
	for in, want := range map[string][2]int32{"8000-8010": {8000, 8010}, "1-65535": {1, 65535}} {
		first, last, err := PortRange(in)
		if err != nil || first != want[0] || last != want[1] || FormatPortRange(first, last) != in {
			t.Errorf("PortRange(%q) = %d, %d, %v; want %v", in, first, last, err, want)
		}
	}
	for _, in := range []string{"", "8000", "8010-8000", "8000-8000", "0-10", "1-65536", "a-b", "1-2-3"} {
		if _, _, err := PortRange(in); err == nil {
			t.Errorf("PortRange(%q) succeeded, want an error", in)
		}
	}
}
