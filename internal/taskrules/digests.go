package taskrules

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// Version consistency (ECS's versionConsistency): a service deployment resolves each
// container's image tag to a digest once and runs every task on it. The service
// controller pins what the deployment's first task reported; the agent runs the
// pinned digest.

// PinsDigest tells whether a container's image is pinned for its deployment: unless
// versionConsistency is disabled (ECS's default is enabled).
func PinsDigest(def *ecsv1alpha1.ContainerDefinition) bool {
	return def.VersionConsistency != ecsv1alpha1.VersionConsistencyDisabled
}

// PinnedImage is image at digest: the repository of image (its tag dropped, since a
// digest names one image whatever the tag says now) with the digest.
func PinnedImage(image, dgst string) (string, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", image, err)
	}
	dg, err := digest.Parse(dgst)
	if err != nil {
		return "", fmt.Errorf("digest %q: %w", dgst, err)
	}
	d, err := reference.WithDigest(reference.TrimNamed(named), dg)
	if err != nil {
		return "", fmt.Errorf("pinning image %q to %q: %w", image, dgst, err)
	}
	return d.String(), nil
}
