package revision

import (
	"encoding/json"
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// ECS's lifecycle of a revision is ACTIVE from registration until it is deregistered
// (DeregisterTaskDefinition), INACTIVE after, and DELETE_IN_PROGRESS once its deletion
// is asked for (DeleteTaskDefinitions) until nothing uses it any more. Berth's own
// notion of INACTIVE (superseded and unused, so prunable) is the TaskDefinition
// controller's; the explicit deregistrations are durable records on the
// TaskDefinition (ecsv1alpha1.AnnotationDeregistered) that the controller honours and
// the API answers with, read by the functions of this file and nowhere else.

// Lifecycle is where a revision stands in ECS's lifecycle.
type Lifecycle string

const (
	LifecycleActive           Lifecycle = "ACTIVE"
	LifecycleInactive         Lifecycle = "INACTIVE"
	LifecycleDeleteInProgress Lifecycle = "DELETE_IN_PROGRESS"
)

// Deregistration records that a revision was deregistered, and when its deletion was
// asked for.
type Deregistration struct {
	Revision          int32        `json:"revision"`
	DeregisteredAt    metav1.Time  `json:"deregisteredAt"`
	DeleteRequestedAt *metav1.Time `json:"deleteRequestedAt,omitempty"`
}

// Deregistrations are a TaskDefinition's records, by revision number.
type Deregistrations map[int32]Deregistration

// ReadDeregistrations reads td's records. A malformed annotation is an error naming it:
// guessing which revisions it meant to deregister could revive or delete the wrong
// ones.
func ReadDeregistrations(td *ecsv1alpha1.TaskDefinition) (Deregistrations, error) {
	out := Deregistrations{}
	raw := td.Annotations[ecsv1alpha1.AnnotationDeregistered]
	if raw == "" {
		return out, nil
	}
	var list []Deregistration
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fmt.Errorf("annotation %s of TaskDefinition %s/%s: %w", ecsv1alpha1.AnnotationDeregistered, td.Namespace, td.Name, err)
	}
	for _, d := range list {
		out[d.Revision] = d
	}
	return out, nil
}

// Write stores the records on td, sorted by revision; no records, no annotation.
func (d Deregistrations) Write(td *ecsv1alpha1.TaskDefinition) error {
	if len(d) == 0 {
		delete(td.Annotations, ecsv1alpha1.AnnotationDeregistered)
		return nil
	}
	list := make([]Deregistration, 0, len(d))
	for _, r := range d {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Revision < list[j].Revision })
	raw, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if td.Annotations == nil {
		td.Annotations = map[string]string{}
	}
	td.Annotations[ecsv1alpha1.AnnotationDeregistered] = string(raw)
	return nil
}

// Forget drops the records of revisions td's status no longer lists: the controller
// deleted them, and their numbers are never reused.
func (d Deregistrations) Forget(td *ecsv1alpha1.TaskDefinition) {
	listed := map[int32]bool{}
	for _, r := range td.Status.Revisions {
		listed[r.Revision] = true
	}
	for n := range d {
		if !listed[n] {
			delete(d, n)
		}
	}
}

// Lifecycle is revision n's place in ECS's lifecycle.
func (d Deregistrations) Lifecycle(n int32) Lifecycle {
	r, ok := d[n]
	switch {
	case !ok:
		return LifecycleActive
	case r.DeleteRequestedAt != nil:
		return LifecycleDeleteInProgress
	default:
		return LifecycleInactive
	}
}

// Status is the status the TaskDefinition controller reports for a revision: ACTIVE
// while ECS's lifecycle says so and Berth still needs it (the latest revision, or one
// a Service or Task uses); a deregistered revision is INACTIVE even while tasks still
// run it, as in ECS.
func Status(l Lifecycle, latest, inUse bool) ecsv1alpha1.RevisionStatus {
	if l == LifecycleActive && (latest || inUse) {
		return ecsv1alpha1.RevisionActive
	}
	return ecsv1alpha1.RevisionInactive
}

// Retention is what pruning may do with a revision.
type Retention int

const (
	// Keep: the latest revision (the controller compares the spec with it, so
	// deleting it would register the spec again) or one in use.
	Keep Retention = iota
	// KeepWithinHistory: superseded and unused; kept up to revisionHistoryLimit,
	// oldest deleted first.
	KeepWithinHistory
	// DeleteNow: its deletion was asked for and nothing uses it any more.
	DeleteNow
)

// Retain decides a revision's retention.
func Retain(l Lifecycle, latest, inUse bool) Retention {
	switch {
	case latest || inUse:
		return Keep
	case l == LifecycleDeleteInProgress:
		return DeleteNow
	default:
		return KeepWithinHistory
	}
}
