package revision

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestRevisionRules is the table of the lifecycle rules both the TaskDefinition
// controller and the ECS API apply: the status the controller reports and what
// pruning may do, for every lifecycle and use.
func TestRevisionRules(t *testing.T) {
	tests := []struct {
		lifecycle     Lifecycle
		latest, inUse bool
		wantStatus    ecsv1alpha1.RevisionStatus
		wantRetention Retention
	}{
		{LifecycleActive, true, false, ecsv1alpha1.RevisionActive, Keep},
		{LifecycleActive, false, true, ecsv1alpha1.RevisionActive, Keep},
		{LifecycleActive, false, false, ecsv1alpha1.RevisionInactive, KeepWithinHistory},
		// Deregistered: INACTIVE even while used, but never pruned while used.
		{LifecycleInactive, true, false, ecsv1alpha1.RevisionInactive, Keep},
		{LifecycleInactive, false, true, ecsv1alpha1.RevisionInactive, Keep},
		{LifecycleInactive, false, false, ecsv1alpha1.RevisionInactive, KeepWithinHistory},
		// Deletion asked for: deleted once unused, and never the latest.
		{LifecycleDeleteInProgress, false, true, ecsv1alpha1.RevisionInactive, Keep},
		{LifecycleDeleteInProgress, true, false, ecsv1alpha1.RevisionInactive, Keep},
		{LifecycleDeleteInProgress, false, false, ecsv1alpha1.RevisionInactive, DeleteNow},
	}
	for _, tc := range tests {
		if got := Status(tc.lifecycle, tc.latest, tc.inUse); got != tc.wantStatus {
			t.Errorf("Status(%s, latest=%t, inUse=%t) = %s, want %s", tc.lifecycle, tc.latest, tc.inUse, got, tc.wantStatus)
		}
		if got := Retain(tc.lifecycle, tc.latest, tc.inUse); got != tc.wantRetention {
			t.Errorf("Retain(%s, latest=%t, inUse=%t) = %d, want %d", tc.lifecycle, tc.latest, tc.inUse, got, tc.wantRetention)
		}
	}
}

// TestDeregistrationsRoundTrip: the records written are the records read, each
// revision in its lifecycle; no records leave no annotation; a malformed annotation
// is an error naming it.
func TestDeregistrationsRoundTrip(t *testing.T) {
	at := metav1.NewTime(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	td := &ecsv1alpha1.TaskDefinition{}
	td.Namespace, td.Name = "ns", "web"
	want := Deregistrations{
		3: {Revision: 3, DeregisteredAt: at},
		1: {Revision: 1, DeregisteredAt: at, DeleteRequestedAt: &at},
	}
	if err := want.Write(td); err != nil {
		t.Fatal(err)
	}
	if raw := td.Annotations[ecsv1alpha1.AnnotationDeregistered]; !strings.HasPrefix(raw, `[{"revision":1,`) {
		t.Errorf("annotation %s is not sorted by revision", raw)
	}
	got, err := ReadDeregistrations(td)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	for n, wantL := range map[int32]Lifecycle{1: LifecycleDeleteInProgress, 2: LifecycleActive, 3: LifecycleInactive} {
		if l := got.Lifecycle(n); l != wantL {
			t.Errorf("Lifecycle(%d) = %s, want %s", n, l, wantL)
		}
	}
	td.Status.Revisions = []ecsv1alpha1.TaskDefinitionRevision{{Revision: 3}}
	got.Forget(td)
	if diff := cmp.Diff(Deregistrations{3: want[3]}, got); diff != "" {
		t.Errorf("after Forget, records of the revisions listed (-want +got):\n%s", diff)
	}
	if err := (Deregistrations{}).Write(td); err != nil {
		t.Fatal(err)
	}
	if _, ok := td.Annotations[ecsv1alpha1.AnnotationDeregistered]; ok {
		t.Error("no records left the annotation")
	}
	td.Annotations[ecsv1alpha1.AnnotationDeregistered] = "3"
	if _, err := ReadDeregistrations(td); err == nil || !strings.Contains(err.Error(), ecsv1alpha1.AnnotationDeregistered) {
		t.Errorf("malformed annotation: error %v, want one naming the annotation", err)
	}
}
