package fake

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/berthdev/berth/agent/runtime"
)

// Images lists the images: pulled ones with the time of their last pull, and those
// AddImage made without one.
func (r *Runtime) Images(ctx context.Context) ([]runtime.ImageInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Images"})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]runtime.ImageInfo, 0, len(r.images))
	for ref, digest := range r.images {
		out = append(out, runtime.ImageInfo{Ref: ref, Digest: digest, PulledAt: r.pulledAt[ref], LastUsed: r.usedAt[ref]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// RemoveImage forgets the image; a missing one is success.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "RemoveImage", ID: ref})
	if err := ctx.Err(); err != nil {
		return err
	}
	delete(r.images, ref)
	delete(r.pulledAt, ref)
	delete(r.usedAt, ref)
	return nil
}

// Stats returns what SetStats set for the container (otherwise WithUsage's, or
// zeros), stamped with the runtime's clock, while its process runs.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.ContainerStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Call{Method: "Stats", ID: id})
	if err := ctx.Err(); err != nil {
		return runtime.ContainerStats{}, err
	}
	c, ok := r.containers[id]
	if !ok {
		return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotFound)
	}
	if c.info.Status != runtime.StatusRunning {
		return runtime.ContainerStats{}, fmt.Errorf("container %q: %w", id, runtime.ErrNotRunning)
	}
	now := r.clock.Now()
	st, ok := r.stats[id]
	if !ok {
		st = r.usage
		st.CPU = time.Duration(r.cpuShare * float64(now.Sub(c.proc.started)))
	}
	st.Time = now
	return st, nil
}

// SetStats sets what Stats returns for container id; it may be called before the
// container exists.
func (r *Runtime) SetStats(id string, st runtime.ContainerStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats[id] = st
}
