package containerd

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/berthdev/berth/agent/runtime"
)

// ImageUser returns the user that a pulled image's config runs its process as: what a
// container without a user of its own runs as ("" means root). The agent's container
// policy reads it before creating a container at level restricted.
func (r *Runtime) ImageUser(ctx context.Context, ref string) (string, error) {
	named, err := NormalizeRef(ref)
	if err != nil {
		return "", err
	}
	ctx = r.withNamespace(ctx)
	image, err := r.client.GetImage(ctx, named.String())
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %q is not pulled: %w", named, runtime.ErrNotFound)
		}
		return "", fmt.Errorf("looking up image %q: %w", named, err)
	}
	spec, err := image.Spec(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the config of image %q: %w", named, err)
	}
	return spec.Config.User, nil
}
