package e2e

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// TestVersionConsistency: a service deployment runs the image digest its first task
// resolved the tag to, also after the tag moves (a scale-out runs the old image), as
// ECS's versionConsistency does; a new deployment resolves the tag again; with
// versionConsistency disabled each task runs what the tag names when it starts.
func TestVersionConsistency(t *testing.T) {
	s := newStack(t)
	s.startAgent(t, "node-"+s.ns)
	ctx := context.Background()
	ref, first := s.reg.Push(t, regtest.TestImage(t, map[string][]byte{"version": []byte("1")}), "e2e/moving", "v1")
	for name, vc := range map[string]ecsv1alpha1.VersionConsistency{"pinned": "", "floating": ecsv1alpha1.VersionConsistencyDisabled} {
		td := testobj.TaskDefinition(s.ns, name).Network(ecsv1alpha1.NetworkModeNone).Container("app", ref).Obj()
		td.Spec.ContainerDefinitions[0].VersionConsistency = vc
		if err := env.Client.Create(ctx, td); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, testobj.Service(s.ns, name, name, 1).Cluster(s.cluster).Obj()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pinned", "floating"} {
		steady(t, s.ns, name, 1)
	}
	testenv.Eventually(t, "the pinned deployment's digest", func() error {
		return deploymentPins(s.ns, "pinned", first)
	})

	_, moved := s.reg.Push(t, regtest.TestImage(t, map[string][]byte{"version": []byte("2")}), "e2e/moving", "v1")
	if moved == first {
		t.Fatal("the two images have one digest")
	}
	for _, name := range []string{"pinned", "floating"} {
		scaleTo(t, s.ns, name, 2)
		steady(t, s.ns, name, 2)
	}
	if got := appDigests(t, s.ns, "pinned"); !equalDigests(got, first, first) {
		t.Errorf("pinned service's tasks run %v, want both on %s (the first task's)", got, first)
	}
	if got := appDigests(t, s.ns, "floating"); !equalDigests(got, first, moved) {
		t.Errorf("floating service's tasks run %v, want %s and %s (the tag as each started)", got, first, moved)
	}

	// A new deployment resolves the tag again.
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"forceNewDeployment":"after-the-move"}}`))
	svc := &ecsv1alpha1.Service{}
	svc.Namespace, svc.Name = s.ns, "pinned"
	if err := env.Client.Patch(ctx, svc, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the new deployment on the moved tag", func() error {
		if got := appDigests(t, s.ns, "pinned"); !equalDigests(got, moved, moved) {
			return fmt.Errorf("running %v, want both on %s", got, moved)
		}
		return deploymentPins(s.ns, "pinned", moved)
	})
}

// deploymentPins checks that the service's primary deployment pins app to digest.
func deploymentPins(ns, service, digest string) error {
	var svc ecsv1alpha1.Service
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: service}, &svc); err != nil {
		return err
	}
	for _, d := range svc.Status.Deployments {
		if d.Status != ecsv1alpha1.DeploymentPrimary {
			continue
		}
		if len(d.ImageDigests) != 1 || d.ImageDigests[0].ContainerName != "app" || d.ImageDigests[0].Digest != digest {
			return fmt.Errorf("primary deployment %s pins %+v, want app at %s", d.ID, d.ImageDigests, digest)
		}
		return nil
	}
	return fmt.Errorf("no primary deployment")
}

// appDigests are the image digests the service's running tasks report for app.
func appDigests(t *testing.T, ns, service string) []string {
	t.Helper()
	var out []string
	for _, task := range runningTasks(t, ns, service) {
		for _, c := range task.Status.Containers {
			if c.Name == "app" {
				out = append(out, c.ImageDigest)
			}
		}
	}
	return out
}

// equalDigests compares digests as a multiset.
func equalDigests(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	count := map[string]int{}
	for _, d := range got {
		count[d]++
	}
	for _, d := range want {
		count[d]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}
