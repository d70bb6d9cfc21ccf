package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// TestPolicyGuardChecksOnceBeforeStart: a task is judged against the level when the
// agent first sees it, and once admitted (or found running at startup) is not judged
// again when the level is tightened: running tasks keep running.
func TestPolicyGuardChecksOnceBeforeStart(t *testing.T) {
	privileged := testobj.TaskDefinition("ns", "agent").Container("agent", "agent:1").
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Privileged = true }).Obj()
	plain := testobj.TaskDefinition("ns", "web").Container("app", "web:1").Obj()
	g := newPolicyGuard()

	err := g.check("forged", "agent:1", "prod", ecsv1alpha1.ContainerPolicyBaseline, &privileged.Spec)
	var failure *startFailure
	if !errors.As(err, &failure) || !strings.HasPrefix(failure.reason, "ContainerPolicyViolation: task definition agent:1 exceeds the container policy of cluster prod (level baseline): ") ||
		!strings.Contains(failure.reason, "spec.containerDefinitions[0].privileged: Forbidden") {
		t.Fatalf("privileged task at baseline: %v, want a start failure naming spec.containerDefinitions[0].privileged", err)
	}
	if err := g.check("plain", "web:1", "prod", ecsv1alpha1.ContainerPolicyBaseline, &plain.Spec); err != nil {
		t.Fatalf("plain task at baseline: %v", err)
	}

	// Admitted at privileged, then the level is tightened: not judged again.
	if err := g.check("early", "agent:1", "prod", ecsv1alpha1.ContainerPolicyPrivileged, &privileged.Spec); err != nil {
		t.Fatal(err)
	}
	if err := g.check("early", "agent:1", "prod", ecsv1alpha1.ContainerPolicyBaseline, &privileged.Spec); err != nil {
		t.Errorf("an admitted task was judged again: %v", err)
	}
	// Found running by a restarted agent: admitted by its previous run.
	g.admitRecovered([]types.UID{"running"})
	if err := g.check("running", "agent:1", "prod", ecsv1alpha1.ContainerPolicyBaseline, &privileged.Spec); err != nil {
		t.Errorf("a recovered task was judged: %v", err)
	}
	// A task whose object is gone is forgotten; its UID is never reused, but nothing
	// of it is kept.
	g.forget("early")
	if err := g.check("early", "agent:1", "prod", ecsv1alpha1.ContainerPolicyBaseline, &privileged.Spec); err == nil {
		t.Error("a forgotten task is still admitted")
	}
}

// TestRestrictedImageUserCheckedBeforeAnyCreate runs the engine on a fake runtime
// behind the agent's policy runtime: at level restricted, a task with a container
// that sets no user and whose image runs as root stops with TaskFailedToStart naming
// that container's user field, and no container of the task is created (the check
// is made at the task's first create, for all its images). Images that run as a
// non-root UID, or a container that sets its own, run.
func TestRestrictedImageUserCheckedBeforeAnyCreate(t *testing.T) {
	users := map[string]string{"root:1": "", "named:1": "nginx", "app:1": "10001:10001"}
	hardened := func(c *ecsv1alpha1.ContainerDefinition) {
		c.LinuxParameters = &ecsv1alpha1.LinuxParameters{Capabilities: &ecsv1alpha1.KernelCapabilities{Drop: []ecsv1alpha1.Capability{"ALL"}}}
	}
	withUser := func(u string) func(*ecsv1alpha1.ContainerDefinition) {
		return func(c *ecsv1alpha1.ContainerDefinition) { hardened(c); c.User = u }
	}
	tests := []struct {
		name string
		td   *ecsv1alpha1.TaskDefinition
		// wantRefused are fields the stopped reason must name; none: the task runs.
		wantRefused []string
	}{
		{
			name: "second container's image runs as root",
			td: testobj.TaskDefinition("ns", "web").Network(ecsv1alpha1.NetworkModeNone).
				Container("app", "app:1").Last(hardened).Container("side", "root:1").Last(hardened).Obj(),
			wantRefused: []string{"spec.containerDefinitions[1].user: Forbidden: user is unset and the image runs as root (no user)"},
		},
		{
			name: "image user is a name",
			td: testobj.TaskDefinition("ns", "web").Network(ecsv1alpha1.NetworkModeNone).
				Container("app", "named:1").Last(hardened).Obj(),
			wantRefused: []string{`spec.containerDefinitions[0].user: Forbidden: user is unset and the image runs as user "nginx", a name that cannot be verified`},
		},
		{
			name: "non-root image, and a root image whose container sets a user",
			td: testobj.TaskDefinition("ns", "web").Network(ecsv1alpha1.NetworkModeNone).
				Container("app", "app:1").Last(hardened).Container("side", "root:1").Last(withUser("1000")).Obj(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := fake.New()
			for image, user := range users {
				rt.SetBehavior(image, fake.Behavior{User: user})
			}
			g := newPolicyGuard()
			var mu sync.Mutex
			var last engine.Report
			eng := engine.New(engine.Config{
				Runtime: &policyRuntime{Runtime: rt, guard: g}, StateDir: t.TempDir(),
				Log:    testr.New(t),
				Report: func(r engine.Report) { mu.Lock(); last = r; mu.Unlock() },
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- eng.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("engine: %v", err)
				}
			}()

			uid := types.UID("task-" + strings.ReplaceAll(tc.name, " ", "-"))
			if err := g.check(uid, "web:1", "prod", ecsv1alpha1.ContainerPolicyRestricted, &tc.td.Spec); err != nil {
				t.Fatalf("admission: %v", err)
			}
			eng.Update(engine.Desired{Task: types.NamespacedName{Namespace: "ns", Name: "t"}, UID: uid, Revision: "web:1",
				Spec: &tc.td.Spec, DesiredStatus: ecsv1alpha1.DesiredRunning})
			want := ecsv1alpha1.TaskRunning
			if len(tc.wantRefused) > 0 {
				want = ecsv1alpha1.TaskStopped
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				got := last
				mu.Unlock()
				if got.LastStatus == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("task is %s (%s), want %s", got.LastStatus, got.StoppedReason, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(tc.wantRefused) == 0 {
				return
			}
			if last.StopCode != ecsv1alpha1.StopTaskFailedToStart {
				t.Errorf("stop code %s, want %s", last.StopCode, ecsv1alpha1.StopTaskFailedToStart)
			}
			for _, want := range tc.wantRefused {
				if !strings.Contains(last.StoppedReason, want) {
					t.Errorf("stopped reason %q lacks %q", last.StoppedReason, want)
				}
			}
			if ids := rt.IDs(); len(ids) != 0 {
				t.Errorf("containers were created: %v", ids)
			}
		})
	}
}
