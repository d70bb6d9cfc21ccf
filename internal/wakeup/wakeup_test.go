package wakeup

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestSourceKeepsWakeupsUntilStartAndDeduplicates(t *testing.T) {
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}
	s := &Source{Name: "test wake-ups"}
	s.Add(a, a, b) // before the controller starts
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if err := s.Start(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 2 {
		t.Fatalf("queue holds %d requests after start, want 2 (a and b once each)", q.Len())
	}
	s.Add(b) // after start: straight to the queue, which already holds b
	if q.Len() != 2 {
		t.Errorf("queue holds %d requests, want 2", q.Len())
	}
	if s.String() != "test wake-ups" {
		t.Errorf("String = %q", s.String())
	}
}
