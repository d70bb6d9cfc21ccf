package up_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/browser"
	"github.com/berthdev/berth/test/testenv"
)

// consoleURL is the sign-in URL `berth up` and `berth console` print.
var consoleURL = regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/\?token=[A-Za-z0-9_-]+`)

// checkConsole drives the console `berth up` started through headless Chromium, as
// an ECS console user would: every page with the objects of the running stack, then
// each action (scale, stop, exec, force a new deployment, drain) checked on the
// objects through the apiserver. A screenshot of every page and the browser's own
// load timings are kept in $BERTH_ARTIFACTS/console.
func checkConsole(t *testing.T, bin, dir, upOutput string) {
	ctx := context.Background()
	c := adminClient(t, dir)
	m := consoleURL.FindStringSubmatch(upOutput)
	if m == nil {
		t.Fatalf("berth up printed no console URL:\n%s", upOutput)
	}
	base := m[1]
	b := browser.New(t, "console")
	b.Open(t, "sign-in", m[0])
	b.Do(t, "wait for the clusters page after sign-in", chromedp.WaitVisible(chromedp.CSS(`table#clusters tr[data-name="default"]`)))

	web := &ecsv1alpha1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, web); err != nil {
		t.Fatal(err)
	}
	task := runningTask(t, c, "web")

	// Pages, each with the objects that exist.
	b.Open(t, "clusters", base+"/")
	if got := b.Text(t, `table#clusters tr[data-name="default"] td.running`); strings.TrimSpace(got) == "" || got == "0" {
		t.Errorf("clusters page: default cluster shows %q running tasks", got)
	}
	b.Screenshot(t, "01-clusters")

	b.Open(t, "cluster", base+"/clusters/default")
	for _, sel := range []string{
		`table#instances tr[data-name="worker-1"]`,
		`table#services tr[data-name="web"]`,
		`table#tasks tr[data-name="` + task.Name + `"]`,
	} {
		if b.Count(t, sel) != 1 {
			t.Errorf("cluster page has no %s", sel)
		}
	}
	if free := b.Text(t, `table#instances tr[data-name="worker-1"] span.free-cpu`); strings.TrimSpace(free) == "" {
		t.Error("cluster page shows no free CPU for worker-1")
	}
	b.Screenshot(t, "02-cluster")

	// The agent's streaming server is published, and its port is kept from tasks.
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := c.Get(ctx, client.ObjectKey{Name: "worker-1"}, ci); err != nil {
		t.Fatal(err)
	}
	if ep := ci.Status.StreamingEndpoint; ep == nil || ci.Status.RegisteredResources == nil {
		t.Errorf("worker-1 publishes no streaming endpoint or resources: %+v", ci.Status)
	} else if u, err := neturl.Parse(ep.URL); err != nil || !slices.Contains(ci.Status.RegisteredResources.Ports, int32(atoi(t, u.Port()))) {
		t.Errorf("worker-1's streaming port (%s) is not among its reserved ports %v", ep.URL, ci.Status.RegisteredResources.Ports)
	}

	b.Open(t, "instance", base+"/instances/worker-1")
	if st := b.Text(t, "dd#instance-status"); !strings.Contains(st, "ACTIVE") {
		t.Errorf("instance page: status %q, want ACTIVE", st)
	}
	b.Screenshot(t, "03-instance")

	b.Open(t, "service", base+"/services/default/web")
	if d := strings.TrimSpace(b.Text(t, "dd#desired-count")); d != strconv.Itoa(int(ptr.Deref(web.Spec.DesiredCount, 0))) {
		t.Errorf("service page: desired count %q, want %d", d, ptr.Deref(web.Spec.DesiredCount, 0))
	}
	if b.Count(t, `table#deployments tr[data-status="PRIMARY"]`) != 1 || b.Count(t, "table#events tr.event") == 0 {
		t.Errorf("service page: %d primary deployments and %d events, want 1 and some",
			b.Count(t, `table#deployments tr[data-status="PRIMARY"]`), b.Count(t, "table#events tr.event"))
	}
	// The utilization subtest saw web's figures, so the console recorded a sample.
	if n, _ := strconv.Atoi(b.Text(t, "span#graph-samples")); n < 1 || b.Count(t, "svg#utilization-graph") != 1 {
		t.Errorf("service page: %d utilization samples and %d graphs, want a graph", n, b.Count(t, "svg#utilization-graph"))
	}
	b.Screenshot(t, "04-service")

	b.Open(t, "task", base+"/tasks/default/"+task.Name)
	if st := b.Text(t, `table#containers tr[data-name="app"] td.last-status`); !strings.Contains(st, "RUNNING") {
		t.Errorf("task page: app is %q, want RUNNING", st)
	}
	// The demo logs a line when it starts serving; the agent serves it back.
	if b.Count(t, `section.logs[data-container="app"] pre.log-lines`) != 1 {
		t.Errorf("task page: no log lines for app: %s", b.Text(t, `section.logs[data-container="app"]`))
	}
	b.Screenshot(t, "05-task")

	// Exec first, while the sample's tasks are steady; then the actions, each of
	// which replaces tasks.
	checkConsoleExec(t, b, base, task)
	checkExecDenied(t, bin, dir, task)
	checkConsoleScale(t, b, c, base)
	checkConsoleStop(t, b, c, base, task)
	checkConsoleRedeploy(t, b, c, base)
	checkConsoleTaskDefinitionDiff(t, b, c, base)
	checkConsoleDrain(t, b, c, base)

	for _, l := range b.Loads() {
		t.Logf("page load %-16s %7.1f ms (server %6.1f ms)", l.Name, ms(l.Loaded), ms(l.Response))
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runningTask is a RUNNING task of service in the default namespace.
func runningTask(t *testing.T, c client.Client, service string) *ecsv1alpha1.Task {
	t.Helper()
	var tasks ecsv1alpha1.TaskList
	if err := c.List(context.Background(), &tasks, client.InNamespace("default"), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
		t.Fatal(err)
	}
	for i := range tasks.Items {
		if tasks.Items[i].Status.LastStatus == ecsv1alpha1.TaskRunning && tasks.Items[i].Spec.DesiredStatus != ecsv1alpha1.DesiredStopped {
			return &tasks.Items[i]
		}
	}
	t.Fatalf("service %s has no running task", service)
	return nil
}

// confirm clicks through an action's confirmation page, keeping its screenshot.
func confirm(t *testing.T, b *browser.Browser, action, shot string) {
	t.Helper()
	b.Do(t, "wait for the "+action+" confirmation", chromedp.WaitVisible(chromedp.CSS(`div#confirm-box[data-action="`+action+`"]`)))
	b.Measure(t, action+"-confirm")
	b.Screenshot(t, shot)
	b.Do(t, "confirm "+action, chromedp.Click(chromedp.CSS("button#confirm")), chromedp.WaitVisible(chromedp.CSS("p#flash")))
	b.Measure(t, action+"-done")
}

func checkConsoleExec(t *testing.T, b *browser.Browser, base string, task *ecsv1alpha1.Task) {
	t.Helper()
	// Without a terminal: the form runs the command and shows output and exit code.
	b.Open(t, "exec", base+"/tasks/default/"+task.Name+"/exec?container=app")
	b.Do(t, "run a command", chromedp.SetValue(chromedp.CSS("input#run-command"), "sh -c 'echo console-$((6*7)); exit 3'"),
		chromedp.Click(chromedp.CSS("button#run")), chromedp.WaitVisible(chromedp.CSS("pre#exec-output")))
	if out := b.Text(t, "pre#exec-output"); !strings.Contains(out, "console-42") {
		t.Errorf("exec output %q, want console-42", out)
	}
	if code := browser.Get(t, b, "exit code", chromedp.AttributeValue(chromedp.CSS("strong#exec-exit-code"), "data-value")); code.Value != "3" {
		t.Errorf("exec exit code %+v, want 3", code)
	}
	b.Screenshot(t, "06-exec-result")

	// The terminal: an interactive shell in xterm.js over a websocket.
	b.Open(t, "terminal", base+"/tasks/default/"+task.Name+"/exec?container=app")
	b.Do(t, "start a shell", chromedp.SetValue(chromedp.CSS("input#terminal-command"), "sh"),
		chromedp.Click(chromedp.CSS("button#terminal-start")),
		chromedp.WaitVisible(chromedp.CSS(`span#terminal-status[data-state="open"]`)))
	b.Type(t, "#terminal textarea", "echo term-$((7*6))", true)
	testenv.EventuallyWithin(t, 20*time.Second, "the terminal shows the command's output", func() error {
		if s := b.Text(t, "#terminal .xterm-rows"); !strings.Contains(s, "term-42") {
			return fmt.Errorf("terminal shows %q", s)
		}
		return nil
	})
	b.Screenshot(t, "07-terminal")
	b.Type(t, "#terminal textarea", "exit 5", true)
	b.Do(t, "wait for the shell to exit", chromedp.WaitVisible(chromedp.CSS(`span#terminal-status[data-state="exited"]`)))
	if code := browser.Get(t, b, "terminal exit code", chromedp.AttributeValue(chromedp.CSS("span#terminal-exit-code"), "data-value")); code.Value != "5" {
		t.Errorf("terminal exit code %+v, want 5", code)
	}
}

func checkConsoleScale(t *testing.T, b *browser.Browser, c client.Client, base string) {
	t.Helper()
	b.Open(t, "service", base+"/services/default/web")
	b.Do(t, "ask to scale to 4", chromedp.SetValue(chromedp.CSS("input#desiredCount"), "4"), chromedp.Click(chromedp.CSS("button#scale")))
	confirm(t, b, "scale", "08-scale-confirm")
	testenv.EventuallyWithin(t, 2*time.Minute, "web runs 4 tasks after scaling from the console", func() error {
		svc := &ecsv1alpha1.Service{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
			return err
		}
		if d := ptr.Deref(svc.Spec.DesiredCount, 0); d != 4 || svc.Status.RunningCount != 4 {
			return fmt.Errorf("desiredCount %d, running %d", d, svc.Status.RunningCount)
		}
		return nil
	})
	b.Open(t, "service", base+"/services/default/web")
	if d := strings.TrimSpace(b.Text(t, "dd#desired-count")); d != "4" {
		t.Errorf("service page after scaling: desired count %q", d)
	}
	b.Screenshot(t, "09-service-scaled")
}

func checkConsoleStop(t *testing.T, b *browser.Browser, c client.Client, base string, task *ecsv1alpha1.Task) {
	t.Helper()
	b.Open(t, "task", base+"/tasks/default/"+task.Name)
	b.Do(t, "ask to stop the task", chromedp.Click(chromedp.CSS("button#stop")))
	confirm(t, b, "stop", "10-stop-confirm")
	testenv.EventuallyWithin(t, 2*time.Minute, "the task stopped from the console stops", func() error {
		got := &ecsv1alpha1.Task{}
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(task), got); err != nil {
			return err
		}
		if got.Spec.DesiredStatus != ecsv1alpha1.DesiredStopped || got.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("desired %s, last %s", got.Spec.DesiredStatus, got.Status.LastStatus)
		}
		if !strings.Contains(got.Spec.StopReason, "console") {
			return fmt.Errorf("stop reason %q does not say the console stopped it", got.Spec.StopReason)
		}
		return nil
	})
	b.Open(t, "task-stopped", base+"/tasks/default/"+task.Name)
	if st := b.Text(t, "dd#last-status"); !strings.Contains(st, "STOPPED") {
		t.Errorf("task page after stopping: %q", st)
	}
	b.Screenshot(t, "11-task-stopped")
}

// primaryDeployment is the ID of web's PRIMARY deployment.
func primaryDeployment(t *testing.T, c client.Client) string {
	t.Helper()
	svc := &ecsv1alpha1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	for _, d := range svc.Status.Deployments {
		if d.Status == ecsv1alpha1.DeploymentPrimary {
			return d.ID
		}
	}
	return ""
}

// checkConsoleTaskDefinitionDiff registers a second revision of web and compares
// the two side by side.
func checkConsoleTaskDefinitionDiff(t *testing.T, b *browser.Browser, c client.Client, base string) {
	t.Helper()
	ctx := context.Background()
	testenv.EventuallyWithin(t, 30*time.Second, "a second revision of web", func() error {
		td := &ecsv1alpha1.TaskDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, td); err != nil {
			return err
		}
		for i := range td.Spec.ContainerDefinitions[0].Environment {
			if e := &td.Spec.ContainerDefinitions[0].Environment[i]; e.Name == "GREETING" {
				e.Value = "hello from the console test"
			}
		}
		return c.Update(ctx, td)
	})
	testenv.EventuallyWithin(t, 30*time.Second, "the console lists revision 2 of web", func() error {
		b.Open(t, "family", base+"/taskdefinitions/default/web")
		if n := b.Count(t, `table#revisions tr[data-revision="2"]`); n != 1 {
			return fmt.Errorf("%d rows for revision 2", n)
		}
		return nil
	})
	b.Screenshot(t, "12-family")
	b.Open(t, "diff", base+"/taskdefinitions/default/web/diff?a=1&b=2")
	if b.Count(t, "table#diff tr.diff-row.changed") == 0 {
		t.Error("the diff of web:1 and web:2 shows no changed line")
	}
	if right := b.Text(t, "table#diff"); !strings.Contains(right, "hello from the console test") {
		t.Error("the diff does not show the new greeting")
	}
	b.Screenshot(t, "13-diff")
}

func checkConsoleRedeploy(t *testing.T, b *browser.Browser, c client.Client, base string) {
	t.Helper()
	before := primaryDeployment(t, c)
	b.Open(t, "service", base+"/services/default/web")
	b.Do(t, "ask to force a new deployment", chromedp.Click(chromedp.CSS("button#redeploy")))
	confirm(t, b, "redeploy", "14-redeploy-confirm")
	svc := &ecsv1alpha1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "web"}, svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ForceNewDeployment == "" {
		t.Error("force new deployment from the console left spec.forceNewDeployment empty")
	}
	var after string
	testenv.EventuallyWithin(t, 30*time.Second, "a new primary deployment", func() error {
		if after = primaryDeployment(t, c); after == before {
			return fmt.Errorf("the primary deployment is still %s", before)
		}
		return nil
	})
	b.Open(t, "service", base+"/services/default/web")
	if n := b.Count(t, `table#deployments tr[data-id="`+after+`"][data-status="PRIMARY"]`); n != 1 {
		t.Errorf("the service page does not show the new primary deployment %s", after)
	}
	b.Screenshot(t, "15-service-deploying")
}

func checkConsoleDrain(t *testing.T, b *browser.Browser, c client.Client, base string) {
	t.Helper()
	b.Open(t, "instance", base+"/instances/worker-1")
	b.Do(t, "ask to drain", chromedp.Click(chromedp.CSS("button#drain")))
	confirm(t, b, "drain", "16-drain-confirm")
	testenv.EventuallyWithin(t, 30*time.Second, "worker-1 drains", func() error {
		ci := &ecsv1alpha1.ContainerInstance{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: "worker-1"}, ci); err != nil {
			return err
		}
		if !ci.Spec.Draining || ci.Status.Status != ecsv1alpha1.InstanceDraining {
			return fmt.Errorf("draining %v, status %s", ci.Spec.Draining, ci.Status.Status)
		}
		return nil
	})
	b.Open(t, "instance-draining", base+"/instances/worker-1")
	b.Screenshot(t, "17-instance-draining")
	// And back, so the rest of the run has its instance.
	b.Do(t, "ask to undrain", chromedp.Click(chromedp.CSS("button#undrain")))
	confirm(t, b, "drain", "18-undrain-confirm")
}

// checkExecDenied gives a ServiceAccount every read of the console but not the exec
// verb: its own console answers 403 for the terminal, and `berth exec` with its
// kubeconfig is refused, while the admin's `berth exec` runs and returns the exit
// code. Both decisions are Events on the task.
func checkExecDenied(t *testing.T, bin, dir string, task *ecsv1alpha1.Task) {
	t.Helper()
	ctx := context.Background()
	admin := filepath.Join(dir, "kubeconfig")
	out, err := exec.Command(bin, "exec", "--kubeconfig", admin, "-n", "default", task.Name, "-c", "app", "--", "sh", "-c", "echo cli-$((6*7)); exit 7").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(string(out), "cli-42") {
		t.Errorf("admin berth exec: %v\n%s", err, out)
	}

	// -it under a real pseudo-terminal (util-linux script gives berth one): the
	// command gets a terminal of its own in the container, and its exit code back.
	line := fmt.Sprintf("%s exec --kubeconfig %s -n default %s -c app -it -- sh -c 'tty; exit 4'", bin, admin, task.Name)
	out, err = exec.Command("script", "-qec", line, "/dev/null").CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(string(out), "/dev/pts/") {
		t.Errorf("berth exec -it under a pty: %v\n%s", err, out)
	}

	viewer := viewerKubeconfig(t, dir)
	out, err = exec.Command(bin, "exec", "--kubeconfig", viewer, "-n", "default", task.Name, "-c", "app", "--", "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "forbidden") {
		t.Errorf("berth exec without the exec verb: %v\n%s", err, out)
	}

	// The viewer's own console: pages load, the terminal is refused.
	cmd := exec.Command(bin, "console", "--kubeconfig", viewer, "--address", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := consoleURL.FindStringSubmatch(sc.Text()); m != nil {
				url <- m
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var m []string
	select {
	case m = <-url:
	case <-time.After(time.Minute):
		t.Fatal("the viewer's berth console printed no URL within a minute")
	}
	vb := browser.New(t, "console-viewer")
	vb.Open(t, "viewer-sign-in", m[0])
	// The sign-in page refreshes itself to the clusters page; navigating before that
	// refresh lands aborts one of the two (net::ERR_ABORTED).
	vb.Do(t, "wait for the viewer's clusters page after sign-in", chromedp.WaitVisible(chromedp.CSS(`table#clusters tr[data-name="default"]`)))
	resp := browser.Get(t, vb, "open the terminal as the viewer", chromedp.NavigateResponse(m[1]+"/tasks/default/"+task.Name+"/exec?container=app"))
	if resp.Status != 403 || !strings.HasPrefix(strings.TrimSpace(vb.Text(t, "p#error")), "forbidden") {
		t.Errorf("the viewer's terminal page answered %d: %s", resp.Status, vb.Text(t, "body"))
	}
	vb.Screenshot(t, "19-exec-forbidden")

	testenv.EventuallyWithin(t, 30*time.Second, "exec decisions are Events on the task", func() error {
		var events corev1.EventList
		if err := adminClient(t, dir).List(ctx, &events, client.InNamespace("default")); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == task.Name {
				seen[e.Reason] = true
			}
		}
		if !seen["ExecCommand"] || !seen["ExecDenied"] {
			return fmt.Errorf("reasons %v, want ExecCommand and ExecDenied", seen)
		}
		return nil
	})
}

// viewerKubeconfig makes a ServiceAccount that may read everything the console shows
// (and Events) but not exec, and writes a kubeconfig with its token.
func viewerKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	admin := filepath.Join(dir, "kubeconfig")
	cfg, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		t.Fatal(err)
	}
	c := adminClient(t, dir)
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "console-viewer"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "console-viewer"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{ecsv1alpha1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"get", "list", "watch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "console-viewer"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "console-viewer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "console-viewer"}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, "console-viewer",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	for name, cl := range raw.Clusters {
		kc.Clusters[name] = cl
		kc.AuthInfos["viewer"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
		kc.Contexts["viewer"] = &clientcmdapi.Context{Cluster: name, AuthInfo: "viewer", Namespace: "default"}
		kc.CurrentContext = "viewer"
	}
	path := filepath.Join(t.TempDir(), "viewer.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
