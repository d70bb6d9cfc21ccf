package service

import (
	"context"
	"sort"

	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/internal/taskrules"
)

// Version consistency: ECS resolves a deployment's image tags to digests once and
// runs all its tasks on them, so a tag moved during a rollout or a scale-out does
// not mix images. Here the first task of the primary deployment that reports a
// container's image digest pins it in the deployment's status (imageDigests), and
// every task the deployment starts after carries the pins (spec.imageDigests) for
// the agent to run. Containers with versionConsistency disabled are never pinned.
// Tasks started before the first pin (a deployment's first batch) resolve the tag
// themselves, as ECS's own resolution also happens once per deployment, not per
// batch.

// pinImageDigests records the digests the primary deployment's tasks reported for
// its containers that are pinned and not yet recorded.
func (r *Reconciler) pinImageDigests(ctx context.Context, s *state) error {
	if s.primary == nil || s.newDeployment {
		return nil
	}
	ref, err := revision.ParseRef(s.primary.TaskDefinition)
	if err != nil {
		return nil
	}
	res, err := r.Resolver.Resolve(ctx, s.svc.Namespace, ref)
	if err != nil {
		ctrl.LoggerFrom(ctx).V(1).Info("cannot resolve the primary revision; no image digest pinned", "err", err.Error())
		return nil
	}
	pinned := map[string]bool{}
	for _, p := range s.primary.ImageDigests {
		pinned[p.ContainerName] = true
	}
	wanted := map[string]bool{}
	for i := range res.Spec.ContainerDefinitions {
		if def := &res.Spec.ContainerDefinitions[i]; taskrules.PinsDigest(def) && !pinned[def.Name] {
			wanted[def.Name] = true
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	for _, t := range s.primaryTasksOldestFirst() {
		for _, c := range t.Status.Containers {
			if wanted[c.Name] && c.ImageDigest != "" {
				s.primary.ImageDigests = append(s.primary.ImageDigests, ecsv1alpha1.ContainerImageDigest{ContainerName: c.Name, Digest: c.ImageDigest})
				delete(wanted, c.Name)
			}
		}
	}
	sort.Slice(s.primary.ImageDigests, func(i, j int) bool {
		return s.primary.ImageDigests[i].ContainerName < s.primary.ImageDigests[j].ContainerName
	})
	return nil
}

// primaryTasksOldestFirst are the primary deployment's tasks by creation, then name:
// the first to resolve an image is the one whose digest the deployment keeps.
func (s *state) primaryTasksOldestFirst() []*ecsv1alpha1.Task {
	var out []*ecsv1alpha1.Task
	for _, t := range s.tasks {
		if t.Labels[ecsv1alpha1.LabelDeployment] == s.primary.ID {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].CreationTimestamp, out[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return out[i].Name < out[j].Name
	})
	return out
}
