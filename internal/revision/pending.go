package revision

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// RegistrationPending reports whether the task definition controller has yet to register td's
// current spec: a Service or Task applied together with its TaskDefinition (`kubectl
// apply -k`, a GitOps sync) that finds no revision is early, not wrong, and the
// TaskDefinition's next status write wakes it. A spec rejected as invalid is not
// pending: it will not be registered.
func RegistrationPending(td *ecsv1alpha1.TaskDefinition) bool {
	if td.Status.ObservedGeneration >= td.Generation {
		return false
	}
	for _, c := range td.Status.Conditions {
		if c.Type == ecsv1alpha1.ConditionAccepted && c.Status == metav1.ConditionFalse && c.ObservedGeneration == td.Generation {
			return false
		}
	}
	return true
}

// ApplyGrace is how long a Service or Task whose TaskDefinition does not exist at all
// waits quietly for it before it is reported RevisionNotFound. `kubectl apply -f
// dir/` and GitOps tools create a directory's objects one at a time in file order,
// and service-*.yaml and task-*.yaml sort before taskdefinition-*.yaml: the referrer
// is there first, by design of the tool, and a Warning for it would be noise.
const ApplyGrace = 10 * time.Second

// MayBeRegistered tells whether a Service or Task (created at referrerCreated) whose
// revision does not resolve waits quietly rather than being reported: its
// TaskDefinition (nil when it does not exist) is about to register the revision
// (RegistrationPending), or does not exist yet and the referrer was created less than
// ApplyGrace ago. The scheduler and the service controller both ask it, so that a
// Task and a Service applied the same way are treated the same.
func MayBeRegistered(td *ecsv1alpha1.TaskDefinition, referrerCreated, now time.Time) bool {
	if td == nil {
		return now.Sub(referrerCreated) < ApplyGrace
	}
	return RegistrationPending(td)
}

// AwaitingRegistration reads the family's TaskDefinition and tells MayBeRegistered
// for a Service or Task created at referrerCreated whose revision did not resolve.
// A read that fails otherwise than NotFound says no: the referrer is then reported,
// and retried as any failure is.
func AwaitingRegistration(ctx context.Context, r client.Reader, namespace, family string, referrerCreated, now time.Time) bool {
	var td ecsv1alpha1.TaskDefinition
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: family}, &td)
	switch {
	case apierrors.IsNotFound(err):
		return MayBeRegistered(nil, referrerCreated, now)
	case err != nil:
		return false
	}
	return MayBeRegistered(&td, referrerCreated, now)
}
