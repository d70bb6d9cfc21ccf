package revision

import (
	appsv1 "k8s.io/api/apps/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// Informer is the part of an informer ForgetOnDelete needs. controller-runtime's
// cache.Informer (mgr.GetCache().GetInformer) and client-go's SharedInformer both
// have it.
type Informer interface {
	AddEventHandler(handler toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}

// ForgetOnDelete makes r forget a decoded revision when its ControllerRevision is
// deleted (a revision pruned beyond revisionHistoryLimit, or a TaskDefinition deleted
// with its history), so the cache holds only revisions that exist. inf must be an
// informer of ControllerRevisions over the objects r reads: a deletion r's informer
// never sees leaves its entry until the process ends.
func ForgetOnDelete(inf Informer, r *Resolver) error {
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if cr, ok := obj.(*appsv1.ControllerRevision); ok {
				r.Forget(cr.UID)
			}
		},
	})
	return err
}
