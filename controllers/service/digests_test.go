package service

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// TestPinImageDigests: the primary deployment pins, per container, the digest its
// oldest task reported; a pin is never replaced; containers with versionConsistency
// disabled and other deployments' tasks are ignored; new tasks carry the pins.
func TestPinImageDigests(t *testing.T) {
	const (
		appV1  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		appV2  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
		sideV1 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
		oldApp = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	)
	reported := func(created time.Duration, digests map[string]string) func(*ecsv1alpha1.Task) {
		return func(t *ecsv1alpha1.Task) {
			t.CreationTimestamp = metav1.NewTime(now.Add(created))
			for name, dg := range digests {
				t.Status.Containers = append(t.Status.Containers, ecsv1alpha1.ContainerStatus{Name: name, ImageDigest: dg})
			}
		}
	}
	pin := func(name, dg string) ecsv1alpha1.ContainerImageDigest {
		return ecsv1alpha1.ContainerImageDigest{ContainerName: name, Digest: dg}
	}
	tests := []struct {
		name     string
		disabled bool
		pinned   []ecsv1alpha1.ContainerImageDigest
		tasks    []*ecsv1alpha1.Task
		want     []ecsv1alpha1.ContainerImageDigest
	}{
		{name: "nothing reported yet", tasks: []*ecsv1alpha1.Task{task("t1", primaryID)}},
		{name: "the oldest task's digests", tasks: []*ecsv1alpha1.Task{
			task("t2", primaryID, reported(-time.Minute, map[string]string{"app": appV2, "side": sideV1})),
			task("t1", primaryID, reported(-time.Hour, map[string]string{"app": appV1})),
			task("old", oldID, reported(-2*time.Hour, map[string]string{"app": oldApp})),
		}, want: []ecsv1alpha1.ContainerImageDigest{pin("app", appV1), pin("side", sideV1)}},
		{name: "a pin is kept", pinned: []ecsv1alpha1.ContainerImageDigest{pin("app", appV1)}, tasks: []*ecsv1alpha1.Task{
			task("t1", primaryID, reported(-time.Hour, map[string]string{"app": appV2, "side": sideV1})),
		}, want: []ecsv1alpha1.ContainerImageDigest{pin("app", appV1), pin("side", sideV1)}},
		{name: "versionConsistency disabled", disabled: true, tasks: []*ecsv1alpha1.Task{
			task("t1", primaryID, reported(-time.Hour, map[string]string{"app": appV1, "side": sideV1})),
		}, want: []ecsv1alpha1.ContainerImageDigest{pin("app", appV1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td := testobj.TaskDefinition("ns", "web").Container("app", "app:1").Container("side", "side:1").Obj()
			if tc.disabled {
				td.Spec.ContainerDefinitions[1].VersionConsistency = ecsv1alpha1.VersionConsistencyDisabled
			}
			rev, err := revision.Snapshot(td, 2)
			if err != nil {
				t.Fatal(err)
			}
			rev.UID = types.UID("rev-" + tc.name) // the resolver caches by UID; the fake client sets none
			r := &Reconciler{Expectations: expectations.New(), Resolver: revision.NewResolver(fakeClient(t, rev))}
			s := newTestState(nil, nil, tc.tasks...)
			s.primary.ImageDigests = tc.pinned
			if err := r.pinImageDigests(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, s.primary.ImageDigests); diff != "" {
				t.Errorf("pinned (-want +got):\n%s", diff)
			}
			newTasks := s.newTasks(1)
			if diff := cmp.Diff(tc.want, newTasks[0].Spec.ImageDigests); diff != "" {
				t.Errorf("a new task's imageDigests (-want +got):\n%s", diff)
			}
		})
	}
}
