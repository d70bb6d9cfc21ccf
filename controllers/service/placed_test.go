package service

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/wakeup"
)

func TestSetPlaced(t *testing.T) {
	memory := &placement.UnplaceableError{Cluster: "default", Instances: 1,
		Reasons: []placement.ReasonCount{{Reason: "insufficient memory", Count: 1}}}
	ports := &placement.UnplaceableError{Cluster: "default", Instances: 1,
		Reasons: []placement.ReasonCount{{Reason: "port 80/tcp in use", Count: 1}}}
	for _, tc := range []struct {
		name        string
		was         *metav1.Condition // TasksPlaced before the pass
		unplaced    int32
		why         *placement.UnplaceableError
		wantStatus  metav1.ConditionStatus
		wantMessage string
		wantEvents  int
	}{
		{name: "every task placed", wantStatus: metav1.ConditionTrue, wantMessage: "Every task the service needs is placed"},
		{name: "short of room for the first time", unplaced: 4994, why: memory, wantStatus: metav1.ConditionFalse,
			wantMessage: "4994 tasks not placed: " + memory.Error(), wantEvents: 1},
		{name: "still short for the same reasons: no new Event",
			was:      &metav1.Condition{Status: metav1.ConditionFalse, Message: "4994 tasks not placed: " + memory.Error()},
			unplaced: 4990, why: memory, wantStatus: metav1.ConditionFalse, wantMessage: "4990 tasks not placed: " + memory.Error()},
		{name: "short for another reason: a new Event",
			was:      &metav1.Condition{Status: metav1.ConditionFalse, Message: "1 task not placed: " + memory.Error()},
			unplaced: 1, why: ports, wantStatus: metav1.ConditionFalse, wantMessage: "1 task not placed: " + ports.Error(), wantEvents: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 2}}
			if tc.was != nil {
				tc.was.Type, tc.was.Reason, tc.was.LastTransitionTime = ecsv1alpha1.ServiceConditionTasksPlaced, ecsv1alpha1.ReasonUnplaceable, metav1.Now()
				svc.Status.Conditions = []metav1.Condition{*tc.was}
			}
			s := newState(svc, time.Now())
			s.unplaced, s.unplacedWhy = tc.unplaced, tc.why
			setPlaced(s)
			c := meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced)
			if c == nil || c.Status != tc.wantStatus || c.Message != tc.wantMessage || c.ObservedGeneration != 2 {
				t.Errorf("TasksPlaced %+v, want %s %q", c, tc.wantStatus, tc.wantMessage)
			}
			if len(s.events) != tc.wantEvents {
				t.Errorf("%d events %+v, want %d", len(s.events), s.events, tc.wantEvents)
			}
			for _, e := range s.events {
				if !e.warning || e.reason != ecsv1alpha1.ReasonUnplaceable {
					t.Errorf("event %+v, want an Unplaceable Warning", e)
				}
			}
		})
	}
}

func TestShortOfRoomWakesTheClustersServices(t *testing.T) {
	src := &wakeup.Source{}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if err := src.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	w := &shortOfRoom{wakeups: src}
	web, api := types.NamespacedName{Namespace: "ns", Name: "web"}, types.NamespacedName{Namespace: "ns", Name: "api"}
	w.set(web, "default", true)
	w.set(api, "edge", true)
	w.room("default")
	if q.Len() != 1 {
		t.Fatalf("%d services woken, want web only", q.Len())
	}
	if req, _ := q.Get(); req.NamespacedName != web {
		t.Errorf("woke %v, want %v", req, web)
	}
	w.set(web, "default", false) // placed everything since
	w.room("default")
	if q.Len() != 0 {
		t.Errorf("%d services woken after web placed everything, want none", q.Len())
	}
}
