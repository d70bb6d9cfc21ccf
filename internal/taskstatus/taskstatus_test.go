package taskstatus

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestContainerCarriesEveryField: a container status with every field set comes out
// of Container whole. A field added to ContainerStatus and not here (or not in
// Container) fails the check of the JSON keys below, so a writer never drops it.
func TestContainerCarriesEveryField(t *testing.T) {
	in := ecsv1alpha1.ContainerStatus{
		Name: "app", RuntimeID: "uid-app", ImageDigest: "sha256:0123", LastStatus: ecsv1alpha1.ContainerRunning,
		HealthStatus: ecsv1alpha1.HealthHealthy, ExitCode: ptr.To[int32](3), Reason: "OutOfMemoryError: Container killed due to memory usage",
		RestartCount:      2,
		NetworkBindings:   []ecsv1alpha1.NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 49153, Protocol: ecsv1alpha1.ProtocolTCP}},
		NetworkInterfaces: []ecsv1alpha1.NetworkInterface{{PrivateIPv4Address: "10.200.0.2"}},
		AWSLogs:           &ecsv1alpha1.AWSLogStream{Group: "/ecs/web", Stream: "web/app/0123", Region: "eu-west-1"},
	}
	want := toMap(t, in)
	// Every field of the type is set above: a new one makes this fail until it is.
	if n, all := len(want), reflect.TypeFor[ecsv1alpha1.ContainerStatus]().NumField(); n != all {
		t.Fatalf("the test sets %d of ContainerStatus's %d fields: set the new ones", n, all)
	}
	if diff := cmp.Diff(want, toMap(t, Container(&in))); diff != "" {
		t.Errorf("Container dropped or changed fields (-status +apply configuration):\n%s", diff)
	}
}

func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
