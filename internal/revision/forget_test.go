package revision

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// handlerInformer records the handler ForgetOnDelete registers, to deliver events by
// hand.
type handlerInformer struct {
	h toolscache.ResourceEventHandler
}

func (i *handlerInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	i.h = h
	return nil, nil
}

// TestForgetOnDelete: a deleted ControllerRevision's decoded spec leaves the cache,
// delivered plainly or as a tombstone (a deletion the informer missed while
// relisting), while other revisions stay cached.
func TestForgetOnDelete(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ecsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	td := &ecsv1alpha1.TaskDefinition{}
	td.Namespace, td.Name = "ns", "web"
	td.Spec.ContainerDefinitions = []ecsv1alpha1.ContainerDefinition{{Name: "app", Image: "demo:1"}}
	var revs []*appsv1.ControllerRevision
	for n := int32(1); n <= 3; n++ {
		cr, err := Snapshot(td, n)
		if err != nil {
			t.Fatal(err)
		}
		cr.UID = types.UID(cr.Name) // the fake client assigns none
		revs = append(revs, cr)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(revs[0], revs[1], revs[2]).Build()
	r := NewResolver(c)
	inf := &handlerInformer{}
	if err := ForgetOnDelete(inf, r); err != nil {
		t.Fatal(err)
	}

	resolve := func(n int32) *Resolved {
		t.Helper()
		res, err := r.Resolve(ctx, "ns", Ref{Family: "web", Revision: n})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := map[int32]*Resolved{1: resolve(1), 2: resolve(2), 3: resolve(3)}

	inf.h.OnDelete(revs[0])
	inf.h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/web-rev2", Obj: revs[1]})
	inf.h.OnDelete("not a revision") // ignored, no panic

	tests := []struct {
		rev        int32
		wantCached bool
	}{
		{rev: 1, wantCached: false},
		{rev: 2, wantCached: false},
		{rev: 3, wantCached: true},
	}
	for _, tc := range tests {
		// A cached revision resolves to the same decoded value; a forgotten one is
		// decoded again.
		if got := resolve(tc.rev) == first[tc.rev]; got != tc.wantCached {
			t.Errorf("revision %d cached = %t, want %t", tc.rev, got, tc.wantCached)
		}
	}
}
