package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/expectations"
	"github.com/berthdev/berth/internal/index"
	"github.com/berthdev/berth/internal/revision"
	"github.com/berthdev/berth/test/testobj"
)

// builderIndexer registers the manager's cache indexes on a fake client.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	i.b.WithIndex(obj, field, extract)
	return nil
}

// TestNewDeploymentRecordedBeforeItsTasks: a reconcile that starts a deployment
// records it in status before creating any task for it. When that status write fails
// (a cache that has not seen the service's last write yet, or a second manager),
// nothing was done in the deployment's name, and the retry starts it again with its
// Event; a pass that creates tasks but then loses its status write would leave a
// deployment "recovered from its tasks" and no DeploymentStarted or TasksStarted
// Event for `kubectl describe`.
func TestNewDeploymentRecordedBeforeItsTasks(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ecsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	td := testobj.TaskDefinition("ns", "web").Container("app", "demo:1").Obj()
	td.Status.LatestRevision = 1
	cr, err := revision.Snapshot(td, 1)
	if err != nil {
		t.Fatal(err)
	}
	svc := testobj.Service("ns", "web", "web", 2).Obj()
	svc.Finalizers = []string{Finalizer}

	conflicts := 1 // the first status write fails
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(td, cr, svc).
		WithStatusSubresource(&ecsv1alpha1.Service{}, &ecsv1alpha1.TaskDefinition{})
	if err := index.Setup(ctx, builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.WithInterceptorFuncs(interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if sub == "status" && conflicts > 0 {
				conflicts--
				return apierrors.NewConflict(schema.GroupResource{Group: ecsv1alpha1.GroupVersion.Group, Resource: "services"}, obj.GetName(), nil)
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	rec := events.NewFakeRecorder(100)
	r := &Reconciler{Client: c, Recorder: rec, Resolver: revision.NewResolver(c), Now: time.Now, Expectations: expectations.New()}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}}

	tests := []struct {
		name       string
		wantErr    bool
		wantTasks  int
		wantEvents []string
	}{
		{name: "status write fails", wantErr: true},
		{name: "deployment recorded", wantEvents: []string{"DeploymentStarted"}},
		{name: "tasks created", wantTasks: 2, wantEvents: []string{"TasksStarted"}},
	}
	for _, tc := range tests { // one pass each, in order
		_, err := r.Reconcile(ctx, req)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: Reconcile error %v, want error %v", tc.name, err, tc.wantErr)
		}
		var tasks ecsv1alpha1.TaskList
		if err := c.List(ctx, &tasks); err != nil {
			t.Fatal(err)
		}
		if len(tasks.Items) != tc.wantTasks {
			t.Errorf("%s: %d tasks, want %d", tc.name, len(tasks.Items), tc.wantTasks)
		}
		var got []string
		for len(rec.Events) > 0 {
			got = append(got, strings.Fields(<-rec.Events)[1]) // "<type> <reason> <note>"
		}
		if diff := cmp.Diff(tc.wantEvents, got); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestFinalizerPatchesAreLocked: the finalizer is added and removed with merge
// patches, which replace the whole list; computed from a stale copy they must fail
// rather than drop a finalizer someone else added meanwhile.
func TestFinalizerPatchesAreLocked(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		patch func(*Reconciler, *ecsv1alpha1.Service) error
		// deleting marks the service deleted (it keeps a finalizer: the other one).
		deleting bool
	}{
		{name: "add", patch: func(r *Reconciler, svc *ecsv1alpha1.Service) error { return r.ensureFinalizer(ctx, svc) }},
		{name: "remove", deleting: true, patch: func(r *Reconciler, svc *ecsv1alpha1.Service) error {
			_, err := r.finalize(ctx, svc)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := testobj.Service("ns", "web", "web", 1).Obj()
			if tc.deleting {
				svc.Finalizers = []string{Finalizer}
			}
			c := fakeClient(t, svc)
			r := &Reconciler{Client: c, Now: time.Now, Expectations: expectations.New()}
			key := client.ObjectKeyFromObject(svc)
			var stale ecsv1alpha1.Service
			if err := c.Get(ctx, key, &stale); err != nil {
				t.Fatal(err)
			}
			// Someone else adds a finalizer after our read.
			var fresh ecsv1alpha1.Service
			if err := c.Get(ctx, key, &fresh); err != nil {
				t.Fatal(err)
			}
			fresh.Finalizers = append(fresh.Finalizers, "example.com/other")
			if err := c.Update(ctx, &fresh); err != nil {
				t.Fatal(err)
			}
			if tc.deleting {
				if err := c.Delete(ctx, &fresh); err != nil {
					t.Fatal(err)
				}
				stale.DeletionTimestamp = ptr.To(metav1.Now())
			}

			if err := tc.patch(r, &stale); !apierrors.IsConflict(err) {
				t.Errorf("patch from a stale copy: error %v, want a conflict", err)
			}
			var got ecsv1alpha1.Service
			if err := c.Get(ctx, key, &got); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(got.Finalizers, "example.com/other") {
				t.Errorf("finalizers %v: the other finalizer was dropped", got.Finalizers)
			}
		})
	}
}
