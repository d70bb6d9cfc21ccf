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
