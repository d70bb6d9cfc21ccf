package taskrules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func TestTaskResources(t *testing.T) {
	web := ecsv1alpha1.ContainerDefinition{Name: "web", Cpu: 256, Memory: ptr.To[int32](512), PortMappings: []ecsv1alpha1.PortMapping{
		{ContainerPort: 80, HostPort: ptr.To[int32](8080)}, {ContainerPort: 81}, {ContainerPort: 53, HostPort: ptr.To[int32](53), Protocol: ecsv1alpha1.ProtocolUDP},
	}}
	side := ecsv1alpha1.ContainerDefinition{Name: "side", Cpu: 128, MemoryReservation: ptr.To[int32](64)}
	tests := []struct {
		name      string
		spec      ecsv1alpha1.TaskDefinitionSpec
		overrides *ecsv1alpha1.TaskOverrides
		want      Resources
		wantErr   string
	}{
		{name: "sums of the containers; memoryReservation where memory is unset; static bridge ports only",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{web, side}},
			want: Resources{CPU: 384, Memory: 576, TCPPorts: []int32{8080}, UDPPorts: []int32{53}}},
		{name: "task-level values win",
			spec: ecsv1alpha1.TaskDefinitionSpec{Cpu: ptr.To(intstr.FromInt32(1024)), Memory: ptr.To(intstr.FromString("2 GB")), ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{side}},
			want: Resources{CPU: 1024, Memory: 2048}},
		{name: "overrides replace before the sums",
			spec:      ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeNone, ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{web, side}},
			overrides: &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{{Name: "side", Cpu: ptr.To[int32](512), Memory: ptr.To[int32](100)}}},
			want:      Resources{CPU: 768, Memory: 612}},
		{name: "host mode binds every containerPort",
			spec: ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeHost, ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{web}},
			want: Resources{CPU: 256, Memory: 512, TCPPorts: []int32{80, 81}, UDPPorts: []int32{53}}},
		{name: "awsvpc binds nothing on the instance",
			spec: ecsv1alpha1.TaskDefinitionSpec{NetworkMode: ecsv1alpha1.NetworkModeAWSVPC, ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{web}},
			want: Resources{CPU: 256, Memory: 512}},
		{name: "an override of no container",
			spec:      ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{side}},
			overrides: &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{{Name: "web"}}},
			wantErr:   `overrides.containerOverrides[0].name: the task definition has no container "web"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TaskResources(&tc.spec, tc.overrides)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("TaskResources (-want +got):\n%s", diff)
			}
		})
	}
}
