package containerd

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/go-logr/logr"

	"github.com/berthdev/berth/agent/runtime"
)

// imageUse remembers when Pull last handed out each image, so an image that a task
// is about to create a container from (a cached copy, whose pulled-at label may be
// old) does not look unused to image cleanup.
type imageUse struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (u *imageUse) mark(ref string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		u.last = map[string]time.Time{}
	}
	u.last[ref] = time.Now()
}

func (u *imageUse) get(ref string) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last[ref]
}

func (u *imageUse) forget(ref string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.last, ref)
}

// Images lists the namespace's image records; see runtime.Runtime.
func (r *Runtime) Images(ctx context.Context) ([]runtime.ImageInfo, error) {
	ctx = r.withNamespace(ctx)
	list, err := r.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	out := make([]runtime.ImageInfo, 0, len(list))
	for _, img := range list {
		info := runtime.ImageInfo{Ref: img.Name, Digest: img.Target.Digest.String(), LastUsed: r.used.get(img.Name)}
		if v := img.Labels[imageLabelPulled]; v != "" {
			if at, err := time.Parse(time.RFC3339, v); err == nil {
				info.PulledAt = at
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// RemoveImage deletes the image record; containerd's garbage collector then removes
// the content and snapshots nothing else references. See runtime.Runtime.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	ctx = r.withNamespace(ctx)
	if err := r.client.ImageService().Delete(ctx, ref, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing image %q: %w", ref, err)
	}
	r.used.forget(ref)
	logr.FromContextOrDiscard(ctx).V(1).Info("removed image", logImage, ref)
	return nil
}
