package console

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// sample is one status.utilization of a service, as the manager wrote it.
type sample struct {
	At  time.Time
	CPU *int32
	Mem *int32
}

// history keeps each service's utilization samples, fed by the informer's events:
// the manager rewrites status.utilization about once a minute, and every write with
// a new measuredAt is a sample. History starts when the console starts (nothing
// stores older figures) and keeps the last window (24h by default).
type history struct {
	window time.Duration
	mu     sync.Mutex
	byKey  map[types.NamespacedName][]sample
}

func newHistory(window time.Duration) *history {
	return &history{window: window, byKey: map[types.NamespacedName][]sample{}}
}

// add records a sample unless it is not newer than the last one (a status write
// that changed something else), and drops samples older than the window.
func (h *history) add(key types.NamespacedName, smp sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ss := h.byKey[key]
	if n := len(ss); n > 0 && !smp.At.After(ss[n-1].At) {
		return
	}
	ss = append(ss, smp)
	cut := smp.At.Add(-h.window)
	i := 0
	for i < len(ss) && ss[i].At.Before(cut) {
		i++
	}
	// Copy down rather than reslice, so the backing array does not grow forever.
	h.byKey[key] = append(ss[:0:0], ss[i:]...)
}

// samples returns a copy of a service's samples, oldest first.
func (h *history) samples(key types.NamespacedName) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sample(nil), h.byKey[key]...)
}

func (h *history) forget(key types.NamespacedName) {
	h.mu.Lock()
	delete(h.byKey, key)
	h.mu.Unlock()
}

// observe records the service's current utilization, if it has a measurement.
func (h *history) observe(obj any) {
	svc, ok := obj.(*ecsv1alpha1.Service)
	if !ok || svc.Status.Utilization == nil || svc.Status.Utilization.MeasuredAt == nil {
		return
	}
	u := svc.Status.Utilization
	h.add(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name},
		sample{At: u.MeasuredAt.Time, CPU: u.CPUUtilization, Mem: u.MemoryUtilization})
}

// handler feeds the history from the Service informer.
func (h *history) handler() toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { h.observe(obj) },
		UpdateFunc: func(_, obj any) { h.observe(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if svc, ok := obj.(*ecsv1alpha1.Service); ok {
				h.forget(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
			}
		},
	}
}
