package up_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

// checkScaleBeyondRoom is what a new user tries: `kubectl scale` of the sample far
// past the machine's room. The service creates only the tasks that fit and says why
// the rest wait; scaling back to 3 settles at once, with nothing left to stop.
func checkScaleBeyondRoom(t *testing.T, dir string) {
	c := adminClient(t, dir)
	ctx := context.Background()
	kubectlScale := func(n int) {
		t.Helper()
		if out, err := exec.Command("kubectl", "--kubeconfig", filepath.Join(dir, "kubeconfig"), "-n", "default",
			"scale", "esvc/web", fmt.Sprintf("--replicas=%d", n)).CombinedOutput(); err != nil {
			t.Fatalf("kubectl scale --replicas=%d: %v\n%s", n, err, out)
		}
	}
	// webTasks counts the sample's tasks: all, those live, and those live of the
	// deployment (the PRIMARY one's are what desiredCount asks for; the console's
	// "force new deployment" before this may have left an older one's).
	webTasks := func(deployment string) (all, live, ofDeployment int) {
		var tasks ecsv1alpha1.TaskList
		if err := c.List(ctx, &tasks, client.InNamespace("default"), client.MatchingLabels{ecsv1alpha1.LabelService: "web"}); err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks.Items {
			if task.Status.LastStatus != ecsv1alpha1.TaskStopped && task.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
				live++
				if task.Labels[ecsv1alpha1.LabelDeployment] == deployment {
					ofDeployment++
				}
			}
		}
		return len(tasks.Items), live, ofDeployment
	}
	primary := func(svc *ecsv1alpha1.Service) string {
		for _, d := range svc.Status.Deployments {
			if d.Status == ecsv1alpha1.DeploymentPrimary {
				return d.ID
			}
		}
		return ""
	}

	// Start from a steady service, as a user would: the console test before this one
	// drained and undrained the instance, and the tasks that restarted wait out the
	// sample's 10 s health check interval before the service is steady again. Scaling
	// back then measured that wait (about 10 s), not the control plane's.
	var svc ecsv1alpha1.Service
	testenv.EventuallyWithin(t, 2*time.Minute, "web steady before scaling", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
			return err
		}
		if st := svc.Status; st.ObservedGeneration != svc.Generation || !meta.IsStatusConditionTrue(st.Conditions, ecsv1alpha1.ServiceConditionSteady) {
			return fmt.Errorf("observed generation %d of %d, conditions %+v", st.ObservedGeneration, svc.Generation, st.Conditions)
		}
		return nil
	})

	kubectlScale(5000)
	testenv.EventuallyWithin(t, time.Minute, "web says which tasks it could not place", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
			return err
		}
		st := svc.Status
		cond := meta.FindStatusCondition(st.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced)
		if st.ObservedGeneration != svc.Generation || cond == nil || cond.Status != metav1.ConditionFalse || st.UnplacedCount == 0 {
			return fmt.Errorf("unplacedCount %d, TasksPlaced %+v", st.UnplacedCount, cond)
		}
		if _, live, ofPrimary := webTasks(primary(&svc)); int32(ofPrimary)+st.UnplacedCount != 5000 || st.RunningCount != int32(live) {
			return fmt.Errorf("%d live tasks (%d of the PRIMARY deployment), %d running, %d not placed; want the PRIMARY's and those not placed to add up to 5000, all placed ones running",
				live, ofPrimary, st.RunningCount, st.UnplacedCount)
		}
		return nil
	})
	all, live, _ := webTasks(primary(&svc))
	t.Logf("at desiredCount 5000: %d web tasks exist (%d live), %d not placed: %s", all, live, svc.Status.UnplacedCount,
		meta.FindStatusCondition(svc.Status.Conditions, ecsv1alpha1.ServiceConditionTasksPlaced).Message)
	if live > 50 {
		t.Errorf("%d live web tasks on one machine's room, want only the few that fit", live)
	}

	start := time.Now()
	kubectlScale(3)
	testenv.EventuallyWithin(t, time.Minute, "web back at 3 running, nothing pending", func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
			return err
		}
		st := svc.Status
		if st.ObservedGeneration != svc.Generation || st.RunningCount != 3 || st.PendingCount != 0 || st.UnplacedCount != 0 ||
			!meta.IsStatusConditionTrue(st.Conditions, ecsv1alpha1.ServiceConditionSteady) {
			return fmt.Errorf("running %d pending %d unplaced %d", st.RunningCount, st.PendingCount, st.UnplacedCount)
		}
		if _, live, _ := webTasks(primary(&svc)); live != 3 {
			return fmt.Errorf("%d live web tasks", live)
		}
		return nil
	})
	t.Logf("scaling back to 3 settled in %s", time.Since(start).Round(10*time.Millisecond))
}

// checkDeletedServiceLeavesNothing deletes a Service whose tasks run on `berth up`'s
// real agent: the service marks them deleteWhenStopped and the agent, under its own
// certificate identity, the generated role and the admission policy, deletes each
// once its containers have stopped, with no STOPPED report. `berth up` runs no
// garbage collector, so before this a deleted Service's stopped tasks stayed for
// good.
func checkDeletedServiceLeavesNothing(t *testing.T, dir string) {
	c := adminClient(t, dir)
	ctx := t.Context()
	svc := testobj.Service("default", "gone", "web", 2).Obj()
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	ofGone := client.MatchingLabels{ecsv1alpha1.LabelService: "gone"}
	var tasks ecsv1alpha1.TaskList
	testenv.EventuallyWithin(t, 2*time.Minute, "the gone service's 2 tasks RUNNING", func() error {
		if err := c.List(ctx, &tasks, client.InNamespace("default"), ofGone); err != nil {
			return err
		}
		running := 0
		for _, task := range tasks.Items {
			if task.Status.LastStatus == ecsv1alpha1.TaskRunning {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of %d tasks RUNNING", running, len(tasks.Items))
		}
		return nil
	})
	w, err := c.Watch(ctx, &ecsv1alpha1.TaskList{}, client.InNamespace("default"), ofGone,
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: tasks.ResourceVersion}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := c.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	deleted := map[string]ecsv1alpha1.TaskStatusValue{}
	timeout := time.After(2 * time.Minute)
	for len(deleted) < len(tasks.Items) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("the watch of the tasks ended")
			}
			if task, isTask := ev.Object.(*ecsv1alpha1.Task); isTask && ev.Type == watch.Deleted {
				deleted[task.Name] = task.Status.LastStatus
			}
		case <-timeout:
			t.Fatalf("after 2m only %d of %d tasks deleted: %v", len(deleted), len(tasks.Items), deleted)
		}
	}
	for name, last := range deleted {
		if last == ecsv1alpha1.TaskStopped {
			t.Errorf("task %s was reported STOPPED before its delete; want its agent's delete in its place", name)
		}
	}
	testenv.EventuallyWithin(t, time.Minute, "the Service released", func() error {
		switch err := c.Get(ctx, client.ObjectKeyFromObject(svc), &ecsv1alpha1.Service{}); {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return errors.New("still there")
	})
}
