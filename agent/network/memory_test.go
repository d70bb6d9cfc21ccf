package network

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/taskrules"
)

func TestMemoryChoosesPortsAsTheManager(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	web := []ecsv1alpha1.PortMapping{{ContainerPort: 80, HostPort: ptr.To[int32](8080)}, {ContainerPort: 81}}
	_, _, got, err := m.Setup(ctx, "a", web)
	if err != nil {
		t.Fatal(err)
	}
	want := []ecsv1alpha1.NetworkBinding{
		{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 8080, Protocol: ecsv1alpha1.ProtocolTCP},
		{BindIP: "0.0.0.0", ContainerPort: 81, HostPort: taskrules.DynamicPortMin, Protocol: ecsv1alpha1.ProtocolTCP},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
	if _, _, again, _ := m.Setup(ctx, "a", web); !cmp.Equal(got, again) {
		t.Errorf("a second Setup of the same task gave %v, want the same bindings %v", again, got)
	}
	_, ipA, _, _ := m.Setup(ctx, "a", web)
	_, ipD, _, _ := m.Setup(ctx, "d", nil)
	if ipA == "" || ipA == ipD || !strings.HasPrefix(ipA, "100.") {
		t.Errorf("task addresses %q and %q: want two distinct addresses in 100.64.0.0/10", ipA, ipD)
	}
	if _, _, _, err := m.Setup(ctx, "b", web); err == nil {
		t.Errorf("a second task got static host port 8080")
	}
	if _, _, b, err := m.Setup(ctx, "c", []ecsv1alpha1.PortMapping{{ContainerPort: 81}}); err != nil || b[0].HostPort != taskrules.DynamicPortMin+1 {
		t.Errorf("dynamic port of the next task = %v, %v; want %d", b, err, taskrules.DynamicPortMin+1)
	}
	if err := m.Teardown(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := m.Setup(ctx, "b", web); err != nil {
		t.Errorf("static port 8080 not released by Teardown: %v", err)
	}
}
