package agent

import (
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// revisionWaiters are the tasks waiting for a revision of their TaskDefinition: a
// task applied together with its TaskDefinition (StartTask right after
// RegisterTaskDefinition, a GitOps sync) can reach the agent before the revision
// does. The revisions' informer queues them again as soon as a revision of their
// family arrives, rather than at the queue's next backoff; the backoff and the
// definitionGrace deadline still hold for a revision that never comes.
type revisionWaiters struct {
	mu sync.Mutex
	// byFamily: TaskDefinition (namespace/name) -> tasks waiting for it.
	byFamily map[types.NamespacedName]map[types.NamespacedName]struct{}
}

// wait notes that task waits for a revision of family.
func (w *revisionWaiters) wait(family, task types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byFamily == nil {
		w.byFamily = map[types.NamespacedName]map[types.NamespacedName]struct{}{}
	}
	if w.byFamily[family] == nil {
		w.byFamily[family] = map[types.NamespacedName]struct{}{}
	}
	w.byFamily[family][task] = struct{}{}
}

// take returns the tasks waiting for family and forgets them.
func (w *revisionWaiters) take(family types.NamespacedName) []types.NamespacedName {
	w.mu.Lock()
	defer w.mu.Unlock()
	tasks := w.byFamily[family]
	delete(w.byFamily, family)
	out := make([]types.NamespacedName, 0, len(tasks))
	for t := range tasks {
		out = append(out, t)
	}
	return out
}

// requeueOnRevision queues the waiters of a family when one of its revisions is
// added to the cache.
func (a *Agent) requeueOnRevision(inf cache.Informer) error {
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			cr, ok := obj.(*appsv1.ControllerRevision)
			if !ok {
				return
			}
			family := types.NamespacedName{Namespace: cr.Namespace, Name: cr.Labels[ecsv1alpha1.LabelFamily]}
			for _, task := range a.waiters.take(family) {
				a.queue.Add(task)
			}
		},
	})
	return err
}
