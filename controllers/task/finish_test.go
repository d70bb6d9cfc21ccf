package task

import (
	"flag"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

// TestMain starts the shared apiserver, except with -short, where only the unit
// tests run (the integration tests skip themselves).
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		ctrl.SetLogger(logr.Discard())
		os.Exit(m.Run())
	}
	os.Exit(testenv.Run(m, &env))
}

// needEnv skips an integration test in -short mode.
func needEnv(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the apiserver")
	}
}

// TestJudgeUnreported: the manager finishes a task asked to stop before it was placed,
// and one bound to an instance that is not registered once the bind grace period has
// passed; every other task is the scheduler's or an agent's.
func TestJudgeUnreported(t *testing.T) {
	created := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	mk := func(edit func(*ecsv1alpha1.Task)) *ecsv1alpha1.Task {
		tk := testobj.Task("ns", "t", "web").Obj()
		tk.CreationTimestamp = metav1.NewTime(created)
		if edit != nil {
			edit(tk)
		}
		return tk
	}
	stop := func(code ecsv1alpha1.StopCode, reason string) func(*ecsv1alpha1.Task) {
		return func(tk *ecsv1alpha1.Task) {
			tk.Spec.DesiredStatus, tk.Spec.StopCode, tk.Spec.StopReason = ecsv1alpha1.DesiredStopped, code, reason
		}
	}
	bound := func(tk *ecsv1alpha1.Task) { tk.Spec.ContainerInstance = "i-1" }
	tests := []struct {
		name       string
		task       *ecsv1alpha1.Task
		registered bool
		at         time.Duration // after creation
		want       verdict
	}{
		{name: "unplaced, to run: the scheduler's", task: mk(nil)},
		{name: "unplaced, stopped by the user", task: mk(stop(ecsv1alpha1.StopUserInitiated, "no longer needed")),
			want: verdict{stop: true, code: ecsv1alpha1.StopUserInitiated, reason: "no longer needed"}},
		{name: "unplaced, stopped without code or reason", task: mk(stop("", "")),
			want: verdict{stop: true, code: ecsv1alpha1.StopUserInitiated, reason: "Stopped before it was placed"}},
		{name: "unplaced, scaled in by its service", task: mk(stop(ecsv1alpha1.StopServiceSchedulerInitiated, "Scaling in")),
			want: verdict{stop: true, code: ecsv1alpha1.StopServiceSchedulerInitiated, reason: "Scaling in"}},
		{name: "bound to a registered instance: its agent's", task: mk(bound), registered: true, at: time.Hour},
		{name: "bound to an unknown instance, within the bind grace period", task: mk(bound), at: 10 * time.Second,
			want: verdict{wait: 20 * time.Second}},
		{name: "bound to an unknown instance, past the bind grace period", task: mk(bound), at: bindGrace,
			want: verdict{stop: true, code: ecsv1alpha1.StopInstanceUnreachable, reason: "Container instance i-1 is not registered"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeUnreported(tc.task, tc.registered, created.Add(tc.at))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(verdict{})); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOwnedByService(t *testing.T) {
	svc := testobj.Service("ns", "web", "web", 1).Obj()
	svc.UID = "svc"
	owned := testobj.Task("ns", "t", "web").Obj()
	owned.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))}
	notController := testobj.Task("ns", "t", "web").Obj()
	notController.OwnerReferences = []metav1.OwnerReference{{APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Service", Name: "web", UID: "svc"}}
	otherGroup := testobj.Task("ns", "t", "web").Obj()
	otherGroup.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(svc, ecsv1alpha1.GroupVersion.WithKind("Service"))}
	otherGroup.OwnerReferences[0].APIVersion = "v1" // a core Service
	labelled := testobj.Task("ns", "t", "web").Obj()
	labelled.Labels = map[string]string{ecsv1alpha1.LabelService: "web"}
	tests := []struct {
		name string
		task *ecsv1alpha1.Task
		want bool
	}{
		{"controlled by a Service", owned, true},
		{"a Service owner that is not its controller", notController, false},
		{"a core Service", otherGroup, false},
		{"only the service label: standalone", labelled, false},
		{"standalone", testobj.Task("ns", "t", "web").Obj(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownedByService(tc.task); got != tc.want {
				t.Errorf("ownedByService = %t, want %t", got, tc.want)
			}
		})
	}
}
