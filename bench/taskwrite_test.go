package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

// TestTaskWriteWays holds TaskWriteCost to what its figures claim against a real
// apiserver: the ways that are compared write the same thing, and the copy of the
// Task CRD differs from the real one in its CEL rules only.
func TestTaskWriteWays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an apiserver")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := newLab(ctx, &runner{size: 0.01, started: time.Now()}, "taskwrite-test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.close(); err != nil {
			t.Error(err)
		}
	}()
	if err := installTaskCRDWithoutCEL(ctx, l); err != nil {
		t.Fatal(err)
	}
	tw := taskWriter{c: l.c, started: metav1.NewTime(time.Now().Truncate(time.Second))}
	for w := range taskWriteWays {
		if w != wayCreate && w != wayCreateWithoutCEL {
			if err := tw.create(ctx, w, 0); err != nil {
				t.Fatalf("%s: creating its task: %v", taskWriteWays[w], err)
			}
		}
		if err := tw.write(ctx, w, 0); err != nil {
			t.Fatalf("%s: %v", taskWriteWays[w], err)
		}
	}

	t.Run("the reports write the same status, on either CRD and by either patch", func(t *testing.T) {
		want := statusOf(ctx, t, l.c, wayReport)
		if want.LastStatus != ecsv1alpha1.TaskRunning || len(want.Containers) != 1 || len(want.Conditions) != 2 || want.StartedAt == nil {
			t.Fatalf("the agent's report wrote %+v, want RUNNING with one container, Placed and Running, startedAt", want)
		}
		for _, w := range []int{wayReportWithoutCEL, wayReportMergePatch} {
			if diff := cmp.Diff(want, statusOf(ctx, t, l.c, w)); diff != "" {
				t.Errorf("%s wrote another status than Report (-Report +%s):\n%s", taskWriteWays[w], taskWriteWays[w], diff)
			}
		}
		if got := statusOf(ctx, t, l.c, wayReportLastStatusOnly); !cmp.Equal(got, ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskRunning}) {
			t.Errorf("ReportLastStatusOnly wrote %+v, want lastStatus alone", got)
		}
	})

	t.Run("Bind binds as the scheduler does", func(t *testing.T) {
		var task ecsv1alpha1.Task
		if err := l.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: taskWriteName(wayBind, 0)}, &task); err != nil {
			t.Fatal(err)
		}
		if task.Spec.ContainerInstance != instanceFor(0) {
			t.Errorf("bound to %q, want %q", task.Spec.ContainerInstance, instanceFor(0))
		}
	})

	t.Run("only the copy lacks the CEL rules", func(t *testing.T) {
		// spec.cluster is immutable by a CEL rule; the schema alone allows the change.
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cluster":"elsewhere"}}`))
		err := l.c.Patch(ctx, taskRef(taskWriteName(wayCreate, 0)), patch)
		if err == nil || !strings.Contains(err.Error(), "cluster is immutable") {
			t.Errorf("changing the cluster on the Task CRD: %v, want refused as immutable", err)
		}
		u := newWithoutCELTask()
		u.SetNamespace(benchNamespace)
		u.SetName(taskWriteName(wayCreateWithoutCEL, 0))
		if err := l.c.Patch(ctx, u, patch); err != nil {
			t.Errorf("changing the cluster on the copy without CEL rules: %v", err)
		}
		// The rest of the schema is the real one's: a field it does not declare is
		// still refused.
		err = l.c.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"desiredStatus":"PAUSED"}}`)))
		if err == nil {
			t.Error("the copy accepted desiredStatus PAUSED, which the schema's enum refuses")
		}
	})
}

// statusOf reads the status way w wrote on its task 0, from either CRD, with the
// conditions' transition times cleared (each report stamps its own).
func statusOf(ctx context.Context, t *testing.T, c client.Client, w int) ecsv1alpha1.TaskStatus {
	t.Helper()
	key := client.ObjectKey{Namespace: benchNamespace, Name: taskWriteName(w, 0)}
	var task ecsv1alpha1.Task
	if withoutCEL(w) {
		u := newWithoutCELTask()
		if err := c.Get(ctx, key, u); err != nil {
			t.Fatal(err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &task); err != nil {
			t.Fatal(err)
		}
	} else if err := c.Get(ctx, key, &task); err != nil {
		t.Fatal(err)
	}
	for i := range task.Status.Conditions {
		task.Status.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	return task.Status
}
