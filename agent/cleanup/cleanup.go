// Package cleanup is the agent's periodic cleanup, as the ECS agent's: the
// containers, volumes and logs of tasks that have been STOPPED for longer than the
// task cleanup wait (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, 3h by default), then the
// images that nothing uses any more.
//
// An image is removed when all of these hold:
//   - the agent pulled it (it carries the pull time): images an operator imported,
//     for prefer-cached, are never removed (ECS_EXCLUDE_UNTRACKED_IMAGES);
//   - no container of the agent's containerd namespace, running or stopped, uses it;
//   - it was pulled, and last handed out by a Pull, longer than the image cleanup age
//     ago (ECS_IMAGE_MINIMUM_CLEANUP_AGE).
//
// The last rule keeps the image of a task that is between its pull and the creation
// of its container. A task whose later containers wait (dependsOn) for longer than
// the image cleanup age after the pull could find the image gone and fail with
// CannotCreateContainerError; keep the age above the longest such wait.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/berthdev/berth/agent/runtime"
)

// Defaults, as the ECS agent's.
const (
	DefaultInterval        = time.Minute
	DefaultTaskCleanupWait = 3 * time.Hour
	DefaultImageCleanupAge = time.Hour
)

// Tasks removes what stopped tasks leave behind (the engine's Cleanup).
type Tasks interface {
	Cleanup(ctx context.Context, olderThan time.Duration) error
}

// Runtime lists containers and images and removes images.
type Runtime interface {
	List(ctx context.Context, labels map[string]string) ([]runtime.ContainerInfo, error)
	Images(ctx context.Context) ([]runtime.ImageInfo, error)
	RemoveImage(ctx context.Context, ref string) error
}

// Config configures a Cleaner.
type Config struct {
	Tasks   Tasks
	Runtime Runtime
	// TaskCleanupWait is how long a STOPPED task's containers are kept.
	TaskCleanupWait time.Duration
	// ImageCleanupAge is how long after its pull (and its last use) an unused image
	// is kept; 0 disables image cleanup.
	ImageCleanupAge time.Duration
	// Interval between passes (DefaultInterval).
	Interval time.Duration
	// Clock (default the real clock).
	Clock clock.Clock
	Log   logr.Logger
}

// Cleaner runs the passes.
type Cleaner struct {
	cfg Config
}

// New returns a Cleaner; call Run.
func New(cfg Config) *Cleaner {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Cleaner{cfg: cfg}
}

// Run runs a pass every Interval until ctx ends.
func (c *Cleaner) Run(ctx context.Context) {
	for {
		t := c.cfg.Clock.NewTimer(c.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := c.Once(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Log.Error(err, "cleanup pass failed; retrying at the next one")
		}
	}
}

// Once runs one pass: stopped tasks first, so that their images are free in the same
// pass.
func (c *Cleaner) Once(ctx context.Context) error {
	var errs []error
	if err := c.cfg.Tasks.Cleanup(ctx, c.cfg.TaskCleanupWait); err != nil {
		errs = append(errs, fmt.Errorf("cleaning up stopped tasks: %w", err))
	}
	if c.cfg.ImageCleanupAge > 0 {
		removed, err := RemoveUnusedImages(ctx, c.cfg.Runtime, c.cfg.Clock.Now().Add(-c.cfg.ImageCleanupAge))
		for _, ref := range removed {
			c.cfg.Log.Info("removed unused image", logImage, ref)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveUnusedImages removes the images the agent pulled before cutoff, has not
// handed out since, and no container uses; it returns those it removed.
func RemoveUnusedImages(ctx context.Context, rt Runtime, cutoff time.Time) ([]string, error) {
	images, err := rt.Images(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	// Containers after images: a container created in between shows up here.
	infos, err := rt.List(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	used := make(map[string]bool, len(infos))
	for _, info := range infos {
		used[info.Image] = true
	}
	var removed []string
	var errs []error
	for _, img := range images {
		if img.PulledAt.IsZero() || used[img.Ref] || !img.PulledAt.Before(cutoff) || img.LastUsed.After(cutoff) {
			continue
		}
		if err := rt.RemoveImage(ctx, img.Ref); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, img.Ref)
	}
	return removed, errors.Join(errs...)
}
