package deployment

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/berthdev/berth/internal/revision"
)

// ID derives a deployment's ID from what defines it (the resolved revision and the
// forceNewDeployment token), so every manager computes the same ID, and so the same
// task names, for the same deployment, and the ECS API can name the deployment a
// spec change is about to start before the manager has started it.
func ID(ref revision.Ref, forceToken string) string {
	sum := sha256.Sum256([]byte(ref.String() + "\x00" + forceToken))
	return "d" + hex.EncodeToString(sum[:])[:8]
}
