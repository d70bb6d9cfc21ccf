package taskdefinition

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/validation"
)

// maxNamedServices bounds how many Services a RolledOut message names.
const maxNamedServices = 5

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

// setHonoured records which fields the spec keeps without effect (roles, Fargate
// settings), so that a definition imported from ECS is accepted and its author still
// learns what Berth ignores.
func setHonoured(td *ecsv1alpha1.TaskDefinition) {
	ignored := validation.NotHonoured(field.NewPath("spec"), &td.Spec)
	if len(ignored) == 0 {
		setCondition(td, ecsv1alpha1.TaskDefinitionConditionHonoured, metav1.ConditionTrue, ecsv1alpha1.ReasonAllFieldsHonoured,
			"Every field set has an effect")
		return
	}
	parts := make([]string, len(ignored))
	for i, x := range ignored {
		parts[i] = x.String()
	}
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionHonoured, metav1.ConditionFalse, ecsv1alpha1.ReasonFieldsNotHonoured,
		"Kept without effect: "+strings.Join(parts, "; "))
}

// setReconcileError surfaces an unexpected failure on the Revisioned condition, and so
// on RolledOut, which cannot be judged without a registered revision.
func setReconcileError(td *ecsv1alpha1.TaskDefinition, err error) {
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRevisioned, metav1.ConditionFalse, ecsv1alpha1.ReasonReconcileError, err.Error())
	setRolledOut(td, nil)
}

// setRolledOut sets the RolledOut condition from the Services that name the family.
// Only services whose spec.taskDefinition is the bare family follow it; those pinned
// to `family:N` chose their revision and are not waited for.
//
// The condition carries the current generation, as every condition does, so it must
// never judge the revision of an older spec: status.latestRevision is trusted only
// when Revisioned is True for the current generation, which this controller sets in
// the same pass (and status write) that registers the spec. Before that, and for an
// invalid spec, RolledOut is False. So `kubectl wait --for=condition=RolledOut`
// after a spec change returns only on a rollout of the revision of that change.
func setRolledOut(td *ecsv1alpha1.TaskDefinition, services []ecsv1alpha1.Service) {
	status, reason, msg := rolledOut(td, services)
	setCondition(td, ecsv1alpha1.TaskDefinitionConditionRolledOut, status, reason, msg)
}

func rolledOut(td *ecsv1alpha1.TaskDefinition, services []ecsv1alpha1.Service) (metav1.ConditionStatus, string, string) {
	if reason, msg := unregistered(td); reason != "" {
		return metav1.ConditionFalse, reason, msg
	}
	latest := revision.Ref{Family: td.Name, Revision: td.Status.LatestRevision}.String()
	followers, failed, inProgress := followersOf(td, services, latest)
	switch {
	case len(followers) == 0:
		return metav1.ConditionTrue, ecsv1alpha1.ReasonNoServices,
			"No Service follows " + td.Name + " (services pinned to " + td.Name + ":N are not tracked)"
	case len(failed) > 0:
		msg := "The deployment of " + latest + " failed in " + serviceNames(failed)
		if len(inProgress) > 0 {
			msg += "; still in progress in " + serviceNames(inProgress)
		}
		return metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutFailed, msg
	case len(inProgress) > 0:
		return metav1.ConditionFalse, ecsv1alpha1.ReasonRolloutInProgress,
			"Waiting for " + serviceNames(inProgress) + " to complete a deployment of " + latest
	default:
		return metav1.ConditionTrue, ecsv1alpha1.ReasonRolloutCompleted,
			serviceNames(followers) + " completed a deployment of " + latest
	}
}

// unregistered says why status.latestRevision is not the revision of the current
// generation's spec (an invalid spec, or one not registered yet); "" when it is.
func unregistered(td *ecsv1alpha1.TaskDefinition) (reason, msg string) {
	if c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.ConditionAccepted); c != nil &&
		c.Status == metav1.ConditionFalse && c.ObservedGeneration == td.Generation {
		return ecsv1alpha1.ReasonInvalidSpec, "The spec is invalid (see Accepted), so it is not registered and cannot roll out"
	}
	c := meta.FindStatusCondition(td.Status.Conditions, ecsv1alpha1.TaskDefinitionConditionRevisioned)
	if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == td.Generation && td.Status.LatestRevision > 0 {
		return "", ""
	}
	msg = "Generation " + strconv.FormatInt(td.Generation, 10) + " of the spec is not registered as a revision yet"
	if c != nil && c.Status == metav1.ConditionFalse && c.ObservedGeneration == td.Generation {
		msg += ": " + c.Message
	}
	return ecsv1alpha1.ReasonRevisionPending, msg
}

// followersOf names the Services that follow the family (not being deleted), and
// those of them whose rollout of latest failed or has not completed.
func followersOf(td *ecsv1alpha1.TaskDefinition, services []ecsv1alpha1.Service, latest string) (followers, failed, inProgress []string) {
	for i := range services {
		svc := &services[i]
		if svc.Namespace != td.Namespace || svc.Spec.TaskDefinition != td.Name || !svc.DeletionTimestamp.IsZero() {
			continue
		}
		followers = append(followers, svc.Name)
		switch rolloutOf(svc, latest) {
		case ecsv1alpha1.RolloutCompleted:
		case ecsv1alpha1.RolloutFailed:
			failed = append(failed, svc.Name)
		default:
			inProgress = append(inProgress, svc.Name)
		}
	}
	return followers, failed, inProgress
}

// rolloutOf is where a Service stands with revision latest: COMPLETED only when its
// PRIMARY deployment is of latest and completed; FAILED when its deployment of latest
// failed, whether it is still PRIMARY (no rollback) or was rolled back from;
// IN_PROGRESS otherwise, including before the service controller has started it.
func rolloutOf(svc *ecsv1alpha1.Service, latest string) ecsv1alpha1.RolloutState {
	deps := svc.Status.Deployments
	if i := slices.IndexFunc(deps, func(d ecsv1alpha1.Deployment) bool {
		return d.Status == ecsv1alpha1.DeploymentPrimary && d.TaskDefinition == latest
	}); i >= 0 {
		if deps[i].RolloutState == ecsv1alpha1.RolloutCompleted || deps[i].RolloutState == ecsv1alpha1.RolloutFailed {
			return deps[i].RolloutState
		}
		return ecsv1alpha1.RolloutInProgress
	}
	if slices.ContainsFunc(deps, func(d ecsv1alpha1.Deployment) bool {
		return d.TaskDefinition == latest && d.RolloutState == ecsv1alpha1.RolloutFailed
	}) {
		return ecsv1alpha1.RolloutFailed
	}
	return ecsv1alpha1.RolloutInProgress
}

// serviceNames names Services in a stable order, at most maxNamedServices of them, so
// that the message changes only when the set does.
func serviceNames(names []string) string {
	names = slices.Sorted(slices.Values(names))
	word := "Service "
	if len(names) > 1 {
		word = "Services "
	}
	if len(names) <= maxNamedServices {
		return word + strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s%s and %d more", word, strings.Join(names[:maxNamedServices], ", "), len(names)-maxNamedServices)
}
