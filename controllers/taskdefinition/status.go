package taskdefinition

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

func setCondition(td *ecsv1alpha1.TaskDefinition, typ string, status metav1.ConditionStatus, reason, msg string) {
	conditions.Set(&td.Status.Conditions, td.Generation, typ, status, reason, msg)
}

// setAccepted records whether the spec passed the checks the schema cannot do.
func setAccepted(td *ecsv1alpha1.TaskDefinition, errs field.ErrorList) {
	if len(errs) == 0 {
		setCondition(td, ecsv1alpha1.ConditionAccepted, metav1.ConditionTrue, ecsv1alpha1.ReasonValid, "The spec is valid")
		return
	}
	setCondition(td, ecsv1alpha1.ConditionAccepted, metav1.ConditionFalse, ecsv1alpha1.ReasonInvalidSpec, errs.ToAggregate().Error())
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionFalse, ecsv1alpha1.ReasonInvalidSpec,
		"No revision is registered for an invalid spec; the latest revision stays in use")
}

// setReconcileError surfaces an unexpected failure on the Revisioned condition.
func setReconcileError(td *ecsv1alpha1.TaskDefinition, err error) {
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionFalse, ecsv1alpha1.ReasonReconcileError, err.Error())
}

// RegistrationPending reports whether this controller has yet to register td's
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
