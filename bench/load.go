package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// createWorkers is how many requests the harness keeps in flight when it loads the
// apiserver: the service controller's largest create batch, and enough to keep a
// 2-core apiserver saturated.
const createWorkers = 64

// runParallel calls do(i) for every i in [0, n) from workers goroutines, as fast as
// they return, and returns the time each call returned. It stops at the first error.
func runParallel(ctx context.Context, n, workers int, do func(ctx context.Context, i int) error) ([]time.Time, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make([]time.Time, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("component", "harness"), func(ctx context.Context) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				done[i] = time.Now()
			}
		})
	}
	wg.Wait()
	return done, first
}

// rawCreates creates n small ConfigMaps, createWorkers at a time, and returns when
// it started and when each create returned: the baseline of what the apiserver and
// etcd of this run can write when nothing of Berth is involved.
func rawCreates(ctx context.Context, c client.Client, ns, prefix string, n int) (time.Time, []time.Time, error) {
	start := time.Now()
	done, err := runParallel(ctx, n, createWorkers, func(ctx context.Context, i int) error {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%05d", prefix, i)},
			Data:       map[string]string{"key": "value"},
		}
		return c.Create(ctx, cm)
	})
	if err != nil {
		return start, nil, fmt.Errorf("creating ConfigMaps: %w", err)
	}
	return start, done, nil
}

// lastOf returns the latest time.
func lastOf(ts []time.Time) time.Time {
	var last time.Time
	for _, t := range ts {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// watchFunc adapts a controller-runtime watch to client-go's RetryWatcher.
type watchFunc func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)

func (f watchFunc) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return f(ctx, opts)
}

// watchObjects delivers every change of the objects of list's kind that match opts
// to fn, with the time it was received, through one watch that resumes where it left
// off if the apiserver closes it. With seed, the objects that exist now are listed
// and delivered first; without, the watch starts from now. A deleted object is
// delivered in its last state with metadata.deletionTimestamp set (to the time its
// deletion was received, when it had none): a task its agent deleted once stopped
// (spec.deleteWhenStopped) never reports STOPPED. It returns once the watch is
// established; the watch ends with ctx.
func watchObjects(ctx context.Context, c client.WithWatch, list client.ObjectList, opts *client.ListOptions, seed bool,
	fn func(obj client.Object, at time.Time)) error {
	lopts := *opts
	if !seed {
		lopts.Limit = 1 // only for the resource version "now"
	}
	if err := c.List(ctx, list, &lopts); err != nil {
		return err
	}
	rv := list.(metav1.ListInterface).GetResourceVersion()
	if seed {
		now := time.Now()
		if err := meta.EachListItem(list, func(o runtime.Object) error {
			if obj, ok := o.(client.Object); ok {
				fn(obj, now)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, watchFunc(func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
		o := *opts
		o.Raw = &raw
		return c.Watch(ctx, list, &o)
	}))
	if err != nil {
		return err
	}
	go pprof.Do(ctx, pprof.Labels("component", "harness"), func(ctx context.Context) {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				deliver(ev, fn)
			}
		}
	})
	return nil
}

// waitSignal waits for ch to close, ctx to end or timeout to pass.
func waitSignal(ctx context.Context, ch <-chan struct{}, timeout time.Duration, what func() string) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("timed out after %s waiting for %s", timeout, what())
	}
}

// deliver hands an object's change to fn; a deleted object with its
// deletionTimestamp set (watchObjects says why).
func deliver(ev watch.Event, fn func(obj client.Object, at time.Time)) {
	obj, isObj := ev.Object.(client.Object)
	if !isObj || ev.Type == watch.Error || ev.Type == watch.Bookmark {
		return
	}
	now := time.Now()
	if ev.Type == watch.Deleted && obj.GetDeletionTimestamp() == nil {
		obj.SetDeletionTimestamp(&metav1.Time{Time: now})
	}
	fn(obj, now)
}
