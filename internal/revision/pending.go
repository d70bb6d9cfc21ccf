package revision

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
