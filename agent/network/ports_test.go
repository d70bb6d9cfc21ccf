package network

import (
	"testing"

	gocni "github.com/containerd/go-cni"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

func portRange(r string) ecsv1alpha1.PortMapping {
	return ecsv1alpha1.PortMapping{ContainerPortRange: r}
}

// TestAllocateRanges: a containerPortRange is published on as many consecutive
// dynamic host ports (the testManager's range is 100-104), reported as a
// hostPortRange, and each of its ports is given to the portmap plugin.
func TestAllocateRanges(t *testing.T) {
	tests := []struct {
		name     string
		busy     []int32
		others   map[types.UID][]port
		mappings []ecsv1alpha1.PortMapping
		want     []ecsv1alpha1.NetworkBinding
		wantErr  string
	}{
		{name: "a range on consecutive ports after a single one", mappings: []ecsv1alpha1.PortMapping{tcp(80), portRange("8000-8002")},
			want: []ecsv1alpha1.NetworkBinding{
				{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 100, Protocol: "tcp"},
				{BindIP: "0.0.0.0", ContainerPortRange: "8000-8002", HostPortRange: "101-103", Protocol: "tcp"},
			}},
		{name: "a block with a port bound on the instance is skipped", busy: []int32{101}, mappings: []ecsv1alpha1.PortMapping{portRange("8000-8002")},
			want: []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPortRange: "8000-8002", HostPortRange: "102-104", Protocol: "tcp"}}},
		{name: "no room between other tasks' ports",
			others:   map[types.UID][]port{"other": {{ContainerPort: 8000, HostPort: 101, Protocol: "tcp", Count: 2}}},
			mappings: []ecsv1alpha1.PortMapping{portRange("9000-9002")},
			wantErr:  "no 3 consecutive free tcp host ports in the dynamic range 100-104"},
		{name: "longer than the dynamic range", mappings: []ecsv1alpha1.PortMapping{portRange("9000-9005")},
			wantErr: "a range of 6 tcp ports is longer than the dynamic range 100-104"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := allocateAmong(t, tc.busy, tc.others, tc.mappings, tc.wantErr)
			if !ok {
				return
			}
			st := taskState{Ports: got}
			if diff := cmp.Diff(tc.want, st.bindings()); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
		})
	}

	maps := portMaps([]port{{ContainerPort: 8000, HostPort: 101, Protocol: "udp", Count: 2}})
	want := []gocni.PortMapping{{HostPort: 101, ContainerPort: 8000, Protocol: "udp"}, {HostPort: 102, ContainerPort: 8001, Protocol: "udp"}}
	if diff := cmp.Diff(want, maps); diff != "" {
		t.Errorf("portmap entries of a range (-want +got):\n%s", diff)
	}
}
