package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/berthdev/berth/agent/engine"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestReportRetryBounded: a status write that keeps failing (the apiserver away) is
// retried at most reportRetryMax apart, so that reports go out soon after it returns.
func TestReportRetryBounded(t *testing.T) {
	l := newReportLimiter()
	key := types.NamespacedName{Namespace: "ns", Name: "task"}
	if d := l.When(key); d != reportRetryMin {
		t.Fatalf("first retry after %s, want %s", d, reportRetryMin)
	}
	// A minute of refused connections is a dozen fast failures; an hour, a few
	// hundred more.
	for i := 0; i < 500; i++ {
		if d := l.When(key); d > reportRetryMax {
			t.Fatalf("retry %d after %s, more than %s", i+2, d, reportRetryMax)
		}
	}
	if d := l.When(key); d != reportRetryMax {
		t.Errorf("retries settle at %s, want %s", d, reportRetryMax)
	}
	l.Forget(key)
	if d := l.When(key); d != reportRetryMin {
		t.Errorf("after a success the first retry waits %s, want %s", d, reportRetryMin)
	}
}

// TestStoppedReportOfATaskNotKept: the STOPPED report of a task its service does not
// keep is a delete; when the delete is refused (a role or admission policy older than
// the agent, mid-upgrade), the agent reports STOPPED as before, so the task still
// ends and collection deletes it. Other tasks report STOPPED.
func TestStoppedReportOfATaskNotKept(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := ecsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		marked, refuse        bool
		wantDelete, wantApply bool
	}{
		{name: "kept: reported STOPPED", wantApply: true},
		{name: "not kept: deleted, no report", marked: true, wantDelete: true},
		{name: "not kept, delete refused: reported STOPPED", marked: true, refuse: true, wantDelete: true, wantApply: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", UID: "u-1"}}
			task.Spec.DesiredStatus, task.Spec.DeleteWhenStopped = ecsv1alpha1.DesiredStopped, tc.marked
			var deleted, applied bool
			c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(task).WithInterceptorFuncs(interceptor.Funcs{
				Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
					deleted = true
					if tc.refuse {
						return apierrors.NewForbidden(schema.GroupResource{Group: "ecs.berth.dev", Resource: "tasks"}, obj.GetName(),
							errors.New("berth agent i-1 may delete only the stopped tasks bound to it that their service does not keep"))
					}
					return nil
				},
				SubResourceApply: func(ctx context.Context, c client.Client, sub string, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
					applied = sub == "status"
					return nil
				},
			}).Build()
			r := newReporter(c, DefaultReportWorkers)
			now := time.Now()
			err := r.write(t.Context(), &Instance{name: "i-1", c: c}, engine.Report{
				Task: client.ObjectKeyFromObject(task), UID: task.UID, LastStatus: ecsv1alpha1.TaskStopped, StoppedAt: &now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if deleted != tc.wantDelete || applied != tc.wantApply {
				t.Errorf("deleted %v, reported %v; want %v and %v", deleted, applied, tc.wantDelete, tc.wantApply)
			}
		})
	}
}
