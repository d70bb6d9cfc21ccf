package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// handlerInformer keeps the event handler it is given; the test calls it as the
// revisions' informer would.
type handlerInformer struct {
	cache.Informer
	handler toolscache.ResourceEventHandler
}

func (h *handlerInformer) AddEventHandler(handler toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	h.handler = handler
	return nil, nil
}

// TestTasksWaitingForARevisionAreQueuedWhenItArrives: a task whose TaskDefinition
// had no revision yet is queued again as soon as a revision of its family is added
// (not at the queue's next backoff), once; a revision of another family, or of the
// same name in another namespace, queues nothing.
func TestTasksWaitingForARevisionAreQueuedWhenItArrives(t *testing.T) {
	a := &Agent{queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]())}
	defer a.queue.ShutDown()
	inf := &handlerInformer{}
	if err := a.requeueOnRevision(inf); err != nil {
		t.Fatal(err)
	}
	revisionOf := func(ns, family string) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: family + "-1", Labels: map[string]string{ecsv1alpha1.LabelFamily: family}}}
	}
	web := types.NamespacedName{Namespace: "shop", Name: "web"}
	first, second := types.NamespacedName{Namespace: "shop", Name: "task-1"}, types.NamespacedName{Namespace: "shop", Name: "task-2"}
	a.waiters.wait(web, first)
	a.waiters.wait(web, second)
	a.waiters.wait(web, first) // retried: noted once

	inf.handler.OnAdd(revisionOf("shop", "db"), false)
	inf.handler.OnAdd(revisionOf("other", "web"), false)
	if n := a.queue.Len(); n != 0 {
		t.Fatalf("%d tasks queued by revisions of other families", n)
	}
	inf.handler.OnAdd(revisionOf("shop", "web"), false)
	var got []types.NamespacedName
	for a.queue.Len() > 0 {
		k, _ := a.queue.Get()
		got = append(got, k)
		a.queue.Done(k)
	}
	less := func(x, y types.NamespacedName) bool { return x.String() < y.String() }
	if diff := cmp.Diff([]types.NamespacedName{first, second}, got, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
	inf.handler.OnAdd(revisionOf("shop", "web"), false)
	if n := a.queue.Len(); n != 0 {
		t.Errorf("a second revision queued %d tasks that no longer wait", n)
	}
}
