package service

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/conditions"
)

// setPlaced is the TasksPlaced condition: False with why while tasks the service
// needs found no room (place.go), with a Warning Event when that starts or its reasons
// change, as ECS's "was unable to place a task" service event; not once per pass, so
// a service short of room for hours records one Event, not thousands.
func setPlaced(s *state) {
	st, gen := &s.svc.Status, s.svc.Generation
	if s.unplaced == 0 {
		conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionTasksPlaced, metav1.ConditionTrue, ecsv1alpha1.ReasonPlaced,
			"Every task the service needs is placed")
		return
	}
	why := unplacedReason(s)
	msg := fmt.Sprintf("%s not placed: %s", conditions.Count(int(s.unplaced), "task", "tasks"), why)
	was := meta.FindStatusCondition(st.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced)
	if was == nil || was.Status != metav1.ConditionFalse || !strings.HasSuffix(was.Message, why) {
		s.event(true, ecsv1alpha1.ReasonUnplaceable, "Place", "was unable to place %s: %s", conditions.Count(int(s.unplaced), "task", "tasks"), why)
	}
	conditions.Set(&st.Conditions, gen, ecsv1alpha1.ServiceConditionTasksPlaced, metav1.ConditionFalse, ecsv1alpha1.ReasonUnplaceable, msg)
}

// unplacedReason says why tasks found no room: the engine's per-reason counts, or
// the invalid request it refused.
func unplacedReason(s *state) string {
	if s.unplacedWhy != nil {
		return s.unplacedWhy.Error()
	}
	if s.unplacedInvalid != "" {
		return s.unplacedInvalid
	}
	return "no container instance has room"
}
