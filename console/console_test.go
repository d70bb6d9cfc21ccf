package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/test/testenv"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/revision"
)

// world is what an integration test puts in the apiserver: a cluster with one
// instance, a task definition family with two revisions, a service with a task.
type world struct {
	ns, cluster, instance string
	svc                   *ecsv1alpha1.Service
	task                  *ecsv1alpha1.Task
}

func mustDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func makeWorld(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	c := env.Client
	w := world{ns: env.Namespace(t)}
	w.cluster, w.instance = "c-"+w.ns, "i-"+w.ns

	cl := &ecsv1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: w.cluster}}
	mustDo(t, "creating the cluster", c.Create(ctx, cl))
	t.Cleanup(func() { _ = c.Delete(context.Background(), cl) })
	cl.Status = ecsv1alpha1.ClusterStatus{RegisteredContainerInstancesCount: 1, ActiveServicesCount: 1, RunningTasksCount: 1,
		Utilization: &ecsv1alpha1.ClusterUtilization{CPUReservation: ptr.To[int32](25), MemoryReservation: ptr.To[int32](12), CapacityProviderReservation: 25},
		Conditions: []metav1.Condition{{Type: ecsv1alpha1.ClusterConditionCapacityAvailable, Status: metav1.ConditionTrue,
			Reason: ecsv1alpha1.ReasonCapacityFits, Message: "every task fits", LastTransitionTime: metav1.Now()}}}
	mustDo(t, "writing the cluster's status", c.Status().Update(ctx, cl))

	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: w.instance}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: w.cluster}}
	mustDo(t, "creating the instance", c.Create(ctx, ci))
	t.Cleanup(func() { _ = c.Delete(context.Background(), ci) })
	ci.Status = ecsv1alpha1.ContainerInstanceStatus{Status: ecsv1alpha1.InstanceActive, AgentConnected: true,
		RegisteredResources: &ecsv1alpha1.Resources{Cpu: 2048, Memory: 3904},
		RemainingResources:  &ecsv1alpha1.Resources{Cpu: 1536, Memory: 3648},
		RunningTasksCount:   1,
		Attributes:          []ecsv1alpha1.Attribute{{Name: ecsv1alpha1.AttributeOSType, Value: "linux"}}}
	mustDo(t, "writing the instance's status", c.Status().Update(ctx, ci))

	td := &ecsv1alpha1.TaskDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "web"},
		Spec: ecsv1alpha1.TaskDefinitionSpec{ContainerDefinitions: []ecsv1alpha1.ContainerDefinition{
			{Name: "app", Image: "demo:1.0", Cpu: 256, Memory: ptr.To[int32](256)}}}}
	mustDo(t, "creating the task definition", c.Create(ctx, td))
	// The TaskDefinition controller stores revisions; without a manager, store two
	// as it would.
	rev1, err := revision.Snapshot(td, 1)
	mustDo(t, "snapshotting revision 1", err)
	mustDo(t, "storing revision 1", c.Create(ctx, rev1))
	td.Spec.ContainerDefinitions[0].Image = "demo:2.0"
	mustDo(t, "updating the task definition", c.Update(ctx, td))
	rev2, err := revision.Snapshot(td, 2)
	mustDo(t, "snapshotting revision 2", err)
	mustDo(t, "storing revision 2", c.Create(ctx, rev2))
	td.Status = ecsv1alpha1.TaskDefinitionStatus{LatestRevision: 2, Revisions: []ecsv1alpha1.TaskDefinitionRevision{
		{Revision: 2, Hash: revision.Hash(&td.Spec), Status: ecsv1alpha1.RevisionActive, CreatedAt: metav1.Now()},
		{Revision: 1, Hash: "0123456789abcdef", Status: ecsv1alpha1.RevisionInactive, CreatedAt: metav1.Now()},
	}}
	mustDo(t, "writing the task definition's status", c.Status().Update(ctx, td))

	w.svc = &ecsv1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "web"},
		Spec: ecsv1alpha1.ServiceSpec{Cluster: w.cluster, TaskDefinition: "web", DesiredCount: ptr.To[int32](3),
			AutoScaling: &ecsv1alpha1.ServiceAutoScaling{MinCapacity: 1, MaxCapacity: 6}}}
	mustDo(t, "creating the service", c.Create(ctx, w.svc))
	w.svc.Status = ecsv1alpha1.ServiceStatus{DesiredCount: 3, RunningCount: 1, PendingCount: 2, TaskDefinition: "web:2",
		RolloutState: ecsv1alpha1.RolloutInProgress,
		Deployments: []ecsv1alpha1.Deployment{{ID: "d-2", Status: ecsv1alpha1.DeploymentPrimary, TaskDefinition: "web:2", DesiredCount: 3,
			RunningCount: 1, PendingCount: 2, RolloutState: ecsv1alpha1.RolloutInProgress, RolloutStateReason: "ECS deployment d-2 in progress.", CreatedAt: metav1.Now()}},
		Utilization: &ecsv1alpha1.Utilization{CPUUtilization: ptr.To[int32](40), MemoryUtilization: ptr.To[int32](60), MeasuredAt: ptr.To(metav1.NewTime(time.Now().Add(-time.Minute)))}}
	mustDo(t, "writing the service's status", c.Status().Update(ctx, w.svc))

	w.task = &ecsv1alpha1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "web-d-2-1", Labels: map[string]string{ecsv1alpha1.LabelService: "web"}},
		Spec: ecsv1alpha1.TaskSpec{Cluster: w.cluster, TaskDefinition: "web:2", ContainerInstance: w.instance}}
	mustDo(t, "creating the task", c.Create(ctx, w.task))
	w.task.Status = ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskRunning, TaskDefinitionRevision: 2, HealthStatus: ecsv1alpha1.HealthHealthy,
		Containers: []ecsv1alpha1.ContainerStatus{{Name: "app", LastStatus: ecsv1alpha1.ContainerStopped, ExitCode: ptr.To[int32](137),
			Reason: "OutOfMemoryError: Container killed due to memory usage", HealthStatus: ecsv1alpha1.HealthUnhealthy}}}
	mustDo(t, "writing the task's status", c.Status().Update(ctx, w.task))

	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "web.scaled"},
		InvolvedObject: corev1.ObjectReference{Kind: "Service", APIVersion: ecsv1alpha1.GroupVersion.String(), Namespace: w.ns, Name: "web", UID: w.svc.UID},
		Reason:         "ScaledUp", Message: "service web started 2 tasks", Type: corev1.EventTypeNormal, Count: 1,
		LastTimestamp: metav1.Now(), FirstTimestamp: metav1.Now(), Source: corev1.EventSource{Component: "berth-service"}}
	mustDo(t, "creating the event", c.Create(ctx, ev))
	return w
}

// startConsole serves a console acting as cfg's identity.
func startConsole(t *testing.T, cfg *rest.Config) *browser {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := New(ctx, Options{Config: cfg, Token: testToken, Log: logr.Discard()})
	mustDo(t, "starting the console", err)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv)
	b.login(testToken)
	return b
}

// page GETs path, wants 200 and every string of want in the body.
func (b *browser) page(t *testing.T, path string, want ...string) string {
	t.Helper()
	res, body := b.get(path)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, res.StatusCode, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("GET %s: the page lacks %q", path, w)
		}
	}
	return body
}

// eventually polls cond until it holds or 30 s pass: the console reads an informer
// cache, which sees a write a moment after the apiserver took it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPagesRenderRealObjects(t *testing.T) {
	needEnv(t)
	w := makeWorld(t)
	b := startConsole(t, env.Config)

	b.page(t, "/", fmt.Sprintf(`<tr data-name="%s">`, w.cluster), `<span class="active">1</span>`,
		`<td class="capacity-reservation">25%</td>`, "CapacityFits")
	b.page(t, "/clusters/"+w.cluster, fmt.Sprintf(`<tr data-name="%s">`, w.instance),
		`<span class="free-cpu">1536</span> / <span class="registered-cpu">2048</span>`,
		fmt.Sprintf(`<tr data-namespace="%s" data-name="web">`, w.ns), `data-name="web-d-2-1"`)
	b.page(t, "/instances/"+w.instance, `id="instance-status" class="status active">ACTIVE`, `id="drain"`,
		`<tr data-name="ecs.os-type">`, `data-name="web-d-2-1"`)
	svcPage := b.page(t, "/services/"+w.ns+"/web", `id="desired-count">3<`, `id="pending-count">2<`,
		`<tr data-id="d-2" data-status="PRIMARY">`, "ECS deployment d-2 in progress.",
		"service web started 2 tasks", `id="current-cpu">40%<`, `id="utilization-graph"`, `id="graph-cpu-0"`,
		`id="scale-autoscaling-note"`, `data-name="web-d-2-1"`)
	if strings.Contains(svcPage, `id="events-notice"`) {
		t.Errorf("service page could not read events: %s", svcPage)
	}
	b.page(t, "/tasks/"+w.ns+"/web-d-2-1", `id="last-status" class="running">RUNNING`, `<td class="exit-code">137</td>`,
		"OutOfMemoryError: Container killed due to memory usage", `<td class="health unhealthy">UNHEALTHY</td>`,
		"this console runs without an agent client", `id="stop"`)
	b.page(t, "/taskdefinitions", fmt.Sprintf(`<tr data-namespace="%s" data-name="web">`, w.ns), `<td class="latest">2</td>`)
	b.page(t, "/taskdefinitions/"+w.ns+"/web", `<tr data-revision="2">`, `<tr data-revision="1">`, `class="diff-link"`)
	diff := b.page(t, "/taskdefinitions/"+w.ns+"/web/diff", `data-a="1" data-b="2"`)
	if !regexp.MustCompile(`<tr class="diff-row changed">\s*<td class="line-no">\d+</td><td class="left"><pre>  image: demo:1.0</pre></td>\s*<td class="line-no">\d+</td><td class="right"><pre>  image: demo:2.0</pre>`).MatchString(diff) {
		t.Errorf("diff does not show the image change side by side:\n%s", diff)
	}
	if res, body := b.get("/taskdefinitions/" + w.ns + "/web/diff?a=9"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "a: revision 9 is not kept") {
		t.Errorf("diff of an unknown revision: status %d: %s", res.StatusCode, body)
	}
	if res, _ := b.get("/services/" + w.ns + "/nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing service: status %d, want 404", res.StatusCode)
	}

	// A new measurement reaches the graph through the informer.
	w.svc.Status.Utilization.MeasuredAt = ptr.To(metav1.Now())
	w.svc.Status.Utilization.CPUUtilization = ptr.To[int32](80)
	mustDo(t, "writing a new measurement", env.Client.Status().Update(context.Background(), w.svc))
	eventually(t, "the second sample on the graph", func() bool {
		_, body := b.get("/services/" + w.ns + "/web")
		return strings.Contains(body, `id="graph-samples">2<`) && strings.Contains(body, `<polyline class="cpu" id="graph-cpu-0"`)
	})
}

func managedBy(obj client.Object) []string {
	var out []string
	for _, f := range obj.GetManagedFields() {
		out = append(out, f.Manager)
	}
	return out
}

func TestActionsWithTheUsersIdentity(t *testing.T) {
	needEnv(t)
	ctx := context.Background()
	w := makeWorld(t)
	b := startConsole(t, env.Config)
	svcKey := client.ObjectKeyFromObject(w.svc)

	// Scale: the confirmation names both counts and the auto scaler's bounds.
	confirm, res, _ := b.confirmAndPost("/services/"+w.ns+"/web/scale", url.Values{"desiredCount": {"5"}})
	for _, want := range []string{"Scale service web from 3 to 5?", "auto scaled between 1 and 6"} {
		if !strings.Contains(confirm, want) {
			t.Errorf("scale confirmation lacks %q", want)
		}
	}
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("scale: status %d", res.StatusCode)
	}
	svc := &ecsv1alpha1.Service{}
	mustDo(t, "reading the service", env.Client.Get(ctx, svcKey, svc))
	if *svc.Spec.DesiredCount != 5 || !slices.Contains(managedBy(svc), FieldManager) {
		t.Errorf("after scale: desiredCount %d, managers %v; want 5 written by %s", *svc.Spec.DesiredCount, managedBy(svc), FieldManager)
	}
	if res, body := b.get("/services/" + w.ns + "/web/scale?desiredCount=lots"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "desiredCount: &#34;lots&#34; is not a whole number") {
		t.Errorf("bad desiredCount: status %d: %s", res.StatusCode, body)
	}

	// Force a new deployment.
	if _, res, body := b.confirmAndPost("/services/"+w.ns+"/web/redeploy", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("redeploy: status %d: %s", res.StatusCode, body)
	}
	mustDo(t, "reading the service", env.Client.Get(ctx, svcKey, svc))
	if _, err := time.Parse(time.RFC3339Nano, svc.Spec.ForceNewDeployment); err != nil {
		t.Errorf("forceNewDeployment %q is not a timestamp token", svc.Spec.ForceNewDeployment)
	}

	// Stop the task.
	if _, res, body := b.confirmAndPost("/tasks/"+w.ns+"/web-d-2-1/stop", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop: status %d: %s", res.StatusCode, body)
	}
	task := &ecsv1alpha1.Task{}
	mustDo(t, "reading the task", env.Client.Get(ctx, client.ObjectKeyFromObject(w.task), task))
	if task.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped || task.Spec.StopCode != ecsv1alpha1.StopUserInitiated || task.Spec.StopReason != StopReason {
		t.Errorf("after stop: %s %s %q", task.Spec.DesiredStatus, task.Spec.StopCode, task.Spec.StopReason)
	}
	eventually(t, "the console to see the stop", func() bool {
		res, body := b.get("/tasks/" + w.ns + "/web-d-2-1/stop")
		return res.StatusCode == http.StatusBadRequest && strings.Contains(body, "desiredStatus: task web-d-2-1 is already stopping")
	})

	// Drain the instance, and see the flash on its page.
	confirm, res, _ = b.confirmAndPost("/instances/"+w.instance+"/drain", url.Values{"draining": {"true"}})
	if !strings.Contains(confirm, "Drain instance "+w.instance+"?") || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("drain: status %d, confirmation %s", res.StatusCode, confirm)
	}
	ci := &ecsv1alpha1.ContainerInstance{}
	mustDo(t, "reading the instance", env.Client.Get(ctx, client.ObjectKey{Name: w.instance}, ci))
	if !ci.Spec.Draining {
		t.Errorf("instance not draining after the drain action")
	}
	b.page(t, res.Header.Get("Location"), `id="flash"`, "is draining")
}

// grant binds a ClusterRole of rules to user, for the test.
func grant(t *testing.T, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}
	mustDo(t, "creating the role", env.Client.Create(ctx, role))
	rb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	mustDo(t, "binding the role", env.Client.Create(ctx, rb))
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), rb)
		_ = env.Client.Delete(context.Background(), role)
	})
}

func TestForbiddenForALimitedUser(t *testing.T) {
	needEnv(t)
	w := makeWorld(t)
	user := "viewer-" + w.ns
	// May read clusters, instances, services and task definitions, not tasks;
	// may change nothing and exec nowhere.
	grant(t, user, rbacv1.PolicyRule{APIGroups: []string{ecsv1alpha1.GroupVersion.Group},
		Resources: []string{"clusters", "containerinstances", "services", "taskdefinitions"}, Verbs: []string{"get", "list", "watch"}})
	cfg, err := env.AddUser(user)
	mustDo(t, "adding the user", err)
	b := startConsole(t, cfg)

	b.page(t, "/", fmt.Sprintf(`<tr data-name="%s">`, w.cluster), "forbidden: you may not list tasks")
	b.page(t, "/services/"+w.ns+"/web", `id="desired-count">3<`, "forbidden: you may not list tasks", `id="events-notice"`)

	_, res, body := b.confirmAndPost("/services/"+w.ns+"/web/scale", url.Values{"desiredCount": {"5"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "forbidden") || !strings.Contains(body, `data-status="403"`) {
		t.Errorf("scale without patch rights: status %d: %s", res.StatusCode, body)
	}
	svc := &ecsv1alpha1.Service{}
	mustDo(t, "reading the service", env.Client.Get(context.Background(), client.ObjectKeyFromObject(w.svc), svc))
	if *svc.Spec.DesiredCount != 3 {
		t.Errorf("a forbidden scale changed desiredCount to %d", *svc.Spec.DesiredCount)
	}
	if res, body := b.get("/tasks/" + w.ns + "/web-d-2-1/exec?container=app"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "exec verb") {
		t.Errorf("terminal without the exec verb: status %d: %s", res.StatusCode, body)
	}
}

// TestRun: `berth console` prints a URL whose token signs in, keeps the token in
// a 0600 file, and refuses a non-loopback address.
func TestRun(t *testing.T) {
	needEnv(t)
	if err := Run(context.Background(), RunOptions{Config: env.Config, Address: "0.0.0.0:0", Out: io.Discard, Log: logr.Discard()}); err == nil || !strings.Contains(err.Error(), "--address") {
		t.Fatalf("Run on 0.0.0.0: %v, want an --address error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tokenFile := filepath.Join(t.TempDir(), "token")
	out := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, RunOptions{Config: env.Config, Address: "127.0.0.1:0", TokenFile: tokenFile, Out: out, Log: logr.Discard()})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	re := regexp.MustCompile(`Berth console: (http://127\.0\.0\.1:\d+)/\?token=(\S+)`)
	var m []string
	eventually(t, "the console's URL", func() bool { m = re.FindStringSubmatch(out.String()); return m != nil })
	st, err := os.Stat(tokenFile)
	mustDo(t, "reading the token file", err)
	raw, _ := os.ReadFile(tokenFile)
	if st.Mode().Perm() != 0o600 || strings.TrimSpace(string(raw)) != m[2] {
		t.Errorf("token file mode %v, content %q; want 0600 with the printed token", st.Mode().Perm(), raw)
	}
	b := newBrowserAt(t, m[1])
	b.login(m[2])
	b.page(t, "/", `id="clusters"`)
}
