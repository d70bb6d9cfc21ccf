package placement

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/intstr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// containerDef builds a container definition for RequestFor cases.
type containerDef struct {
	ecsv1alpha1.ContainerDefinition
}

func makeContainer(name string) *containerDef {
	return &containerDef{ecsv1alpha1.ContainerDefinition{Name: name, Image: "app"}}
}

func (c *containerDef) cpu(v int32) *containerDef { c.Cpu = v; return c }
func (c *containerDef) memory(v int32) *containerDef {
	c.Memory = &v
	return c
}
func (c *containerDef) reservation(v int32) *containerDef {
	c.MemoryReservation = &v
	return c
}
func (c *containerDef) port(containerPort, hostPort int32, protocol ecsv1alpha1.TransportProtocol) *containerDef {
	pm := ecsv1alpha1.PortMapping{ContainerPort: containerPort, Protocol: protocol}
	if hostPort >= 0 {
		pm.HostPort = &hostPort
	}
	c.PortMappings = append(c.PortMappings, pm)
	return c
}
func (c *containerDef) obj() ecsv1alpha1.ContainerDefinition { return c.ContainerDefinition }

// noHostPort leaves hostPort unset in containerDef.port.
const noHostPort = -1

func TestRequestFor(t *testing.T) {
	testCases := []struct {
		name      string
		spec      ecsv1alpha1.TaskDefinitionSpec
		overrides *ecsv1alpha1.TaskOverrides
		want      Request
	}{
		{
			name: "sums of containers",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").cpu(256).memory(512).obj(),
				makeContainer("sidecar").cpu(128).memory(64).obj(),
			}},
			want: Request{CPU: 384, Memory: 576},
		},
		{
			name: "task level wins over container sums",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				Cpu:    ptr(intstr.FromInt32(1024)),
				Memory: ptr(intstr.FromInt32(2048)),
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").cpu(256).memory(512).obj(),
				},
			},
			want: Request{CPU: 1024, Memory: 2048},
		},
		{
			name: "task level in ECS's string forms",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				Cpu:    ptr(intstr.FromString("0.5 vCPU")),
				Memory: ptr(intstr.FromString("1 GB")),
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").cpu(256).memory(512).obj(),
				},
			},
			want: Request{CPU: 512, Memory: 1024},
		},
		{
			name: "task cpu alone: memory is the containers' sum",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				Cpu: ptr(intstr.FromString("256")),
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").cpu(128).memory(300).obj(),
				},
			},
			want: Request{CPU: 256, Memory: 300},
		},
		{
			name: "memoryReservation when memory is unset",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").reservation(300).obj(),
				makeContainer("both").memory(200).reservation(100).obj(),
			}},
			want: Request{Memory: 500},
		},
		{
			name: "container overrides apply before the sums",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").cpu(256).memory(512).obj(),
				makeContainer("sidecar").cpu(128).reservation(64).obj(),
			}},
			overrides: &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{
				{Name: "app", Cpu: ptr[int32](512)},
				{Name: "sidecar", Memory: ptr[int32](100)},
			}},
			want: Request{CPU: 640, Memory: 612},
		},
		{
			name: "memoryReservation override used without memory",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").reservation(64).obj(),
			}},
			overrides: &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{
				{Name: "app", MemoryReservation: ptr[int32](128)},
			}},
			want: Request{Memory: 128},
		},
		{
			name: "task level overrides win",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				Cpu:    ptr(intstr.FromInt32(1024)),
				Memory: ptr(intstr.FromInt32(2048)),
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").cpu(256).memory(512).obj(),
				},
			},
			overrides: &ecsv1alpha1.TaskOverrides{
				Cpu:                ptr[int32](2048),
				Memory:             ptr[int32](4096),
				ContainerOverrides: []ecsv1alpha1.ContainerOverride{{Name: "app", Cpu: ptr[int32](1)}},
			},
			want: Request{CPU: 2048, Memory: 4096},
		},
		{
			name: "task level override without task level spec",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").cpu(256).memory(512).obj(),
			}},
			overrides: &ecsv1alpha1.TaskOverrides{Memory: ptr[int32](1000)},
			want:      Request{CPU: 256, Memory: 1000},
		},
		{
			name: "bridge mode reserves fixed host ports only",
			spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
				makeContainer("app").memory(64).
					port(8080, 80, "").
					port(8443, 443, ecsv1alpha1.ProtocolTCP).
					port(9000, 0, ecsv1alpha1.ProtocolTCP).
					port(9001, noHostPort, ecsv1alpha1.ProtocolTCP).
					port(53, 5353, ecsv1alpha1.ProtocolUDP).obj(),
				makeContainer("metrics").memory(64).port(9100, 9100, ecsv1alpha1.ProtocolTCP).obj(),
			}},
			want: Request{Memory: 128, TCPPorts: []int32{80, 443, 9100}, UDPPorts: []int32{5353}},
		},
		{
			name: "host mode reserves container ports",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				NetworkMode: ecsv1alpha1.NetworkModeHost,
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").memory(64).
						port(8080, noHostPort, ecsv1alpha1.ProtocolTCP).
						port(8081, 8081, ecsv1alpha1.ProtocolTCP).
						port(53, noHostPort, ecsv1alpha1.ProtocolUDP).obj(),
				},
			},
			want: Request{Memory: 64, TCPPorts: []int32{8080, 8081}, UDPPorts: []int32{53}},
		},
		{
			name: "none mode has no ports",
			spec: ecsv1alpha1.TaskDefinitionSpec{
				NetworkMode: ecsv1alpha1.NetworkModeNone,
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
					makeContainer("app").memory(64).port(8080, 80, ecsv1alpha1.ProtocolTCP).obj(),
				},
			},
			want: Request{Memory: 64},
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RequestFor("ns/task", "service:web", &tc.spec, tc.overrides)
			if err != nil {
				t.Fatalf("RequestFor: %v", err)
			}
			tc.want.Key, tc.want.Group = "ns/task", "service:web"
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), exprOptions); diff != "" {
				t.Errorf("RequestFor (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestForConstraints(t *testing.T) {
	spec := &ecsv1alpha1.TaskDefinitionSpec{
		ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{makeContainer("app").memory(64).obj()},
		PlacementConstraints: []ecsv1alpha1.TaskDefinitionPlacementConstraint{
			{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:stack == prod"},
		},
	}
	got, err := RequestFor("ns/task", "", spec, nil)
	if err != nil {
		t.Fatalf("RequestFor: %v", err)
	}
	if len(got.Constraints) != 1 || got.Constraints[0].Type != ecsv1alpha1.PlacementConstraintMemberOf || got.Constraints[0].Expression.String() != "attribute:stack == prod" {
		t.Errorf("Constraints = %v, want memberOf attribute:stack == prod", got.Constraints)
	}
}

func TestRequestForRuntimePlatform(t *testing.T) {
	testCases := []struct {
		name     string
		platform *ecsv1alpha1.RuntimePlatform
		want     []string
	}{
		{"none", nil, nil},
		{"os only", &ecsv1alpha1.RuntimePlatform{OperatingSystemFamily: ecsv1alpha1.OSFamilyLinux}, []string{"attribute:ecs.os-type == linux"}},
		{"x86_64", &ecsv1alpha1.RuntimePlatform{CpuArchitecture: ecsv1alpha1.CPUArchitectureX8664, OperatingSystemFamily: ecsv1alpha1.OSFamilyLinux},
			[]string{"attribute:ecs.cpu-architecture == x86_64", "attribute:ecs.os-type == linux"}},
		{"arm64", &ecsv1alpha1.RuntimePlatform{CpuArchitecture: ecsv1alpha1.CPUArchitectureARM64}, []string{"attribute:ecs.cpu-architecture == arm64"}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ecsv1alpha1.TaskDefinitionSpec{
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{makeContainer("app").memory(64).obj()},
				RuntimePlatform:      tc.platform,
			}
			got, err := RequestFor("ns/task", "", spec, nil)
			if err != nil {
				t.Fatalf("RequestFor: %v", err)
			}
			var exprs []string
			for _, c := range got.Constraints {
				exprs = append(exprs, c.Expression.String())
			}
			if diff := cmp.Diff(tc.want, exprs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("constraints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestForErrors(t *testing.T) {
	app := makeContainer("app").memory(64).obj()
	testCases := []struct {
		name      string
		spec      *ecsv1alpha1.TaskDefinitionSpec
		overrides *ecsv1alpha1.TaskOverrides
		wantErr   string
	}{
		{
			name:    "no spec",
			wantErr: "task ns/task: no task definition spec",
		},
		{
			name: "override of an unknown container",
			spec: &ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{app}},
			overrides: &ecsv1alpha1.TaskOverrides{ContainerOverrides: []ecsv1alpha1.ContainerOverride{
				{Name: "app"}, {Name: "web", Cpu: ptr[int32](1)},
			}},
			wantErr: `overrides.containerOverrides[1].name: the task definition has no container "web"`,
		},
		{
			name: "malformed memberOf expression",
			spec: &ecsv1alpha1.TaskDefinitionSpec{
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{app},
				PlacementConstraints: []ecsv1alpha1.TaskDefinitionPlacementConstraint{
					{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:a exists"},
					{Type: ecsv1alpha1.PlacementConstraintMemberOf, Expression: "attribute:a in [b"},
				},
			},
			wantErr: "placementConstraints[1].expression: position 17: expected ']' after list",
		},
		{
			name: "unknown network mode",
			spec: &ecsv1alpha1.TaskDefinitionSpec{
				NetworkMode:          "default",
				ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{app},
			},
			wantErr: `networkMode: unsupported network mode "default"`,
		},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RequestFor("ns/task", "", tc.spec, tc.overrides)
			if err == nil {
				t.Fatalf("RequestFor succeeded, want error %q", tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("RequestFor error (-want +got):\n%s", diff)
			}
		})
	}
}
