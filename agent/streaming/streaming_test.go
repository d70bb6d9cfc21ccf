package streaming_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/streaming"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
	clientstreaming "github.com/berthdev/berth/internal/streaming"
	"github.com/berthdev/berth/test/testenv"
	"github.com/berthdev/berth/test/testobj"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, &env)) }

// fakeRuntime runs "commands" in memory: echo prints its arguments, exit N exits N,
// cat copies stdin, block runs until its context ends (and says so on ended). It
// stands in for containerd, which test/e2e exercises.
type fakeRuntime struct {
	taskUID types.UID
	ended   chan struct{}
}

func (f *fakeRuntime) ExecStream(ctx context.Context, id string, o runtime.StreamOptions) (int, error) {
	switch o.Cmd[0] {
	case "block":
		_, _ = fmt.Fprintln(o.Stdout, "blocking")
		<-ctx.Done()
		close(f.ended)
		return -1, ctx.Err()
	case "echo":
		_, _ = fmt.Fprintf(o.Stdout, "%s in %s\n", strings.Join(o.Cmd[1:], " "), id)
	case "cat":
		_, _ = io.Copy(o.Stdout, o.Stdin)
	case "exit":
		var code int
		_, _ = fmt.Sscan(o.Cmd[1], &code)
		return code, nil
	}
	return 0, nil
}

func (f *fakeRuntime) List(_ context.Context, labels map[string]string) ([]runtime.ContainerInfo, error) {
	if labels[runtime.LabelTaskUID] != string(f.taskUID) {
		return nil, nil
	}
	return []runtime.ContainerInfo{{ID: "ctr-" + labels[runtime.LabelContainer], Status: runtime.StatusRunning}}, nil
}

type fakeLogs struct{}

func (fakeLogs) ServeContainerLog(w http.ResponseWriter, _ *http.Request, task types.NamespacedName, container string) {
	_, _ = fmt.Fprintf(w, "log of %s in %s\n", container, task)
}

// setup runs a streaming server for instance against the test apiserver and
// publishes it in the instance's status, as the agent does.
func setup(t *testing.T, ctx context.Context, instance string, rt *fakeRuntime) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	auth, err := access.NewDelegated(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	go auth.Run(ctx)
	if !auth.WaitForClientCA(ctx) {
		t.Fatal("the client CA was not loaded")
	}
	audit := streaming.NewAuditor(cs, instance)
	t.Cleanup(audit.Shutdown)
	h, err := streaming.NewHandler(streaming.Config{Instance: instance, Tasks: env.Client, Runtime: rt, Logs: fakeLogs{}, Auth: auth, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	l, err := streaming.Listen("127.0.0.1:0", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = l.Serve(ctx, h) }()
	ci := &ecsv1alpha1.ContainerInstance{ObjectMeta: metav1.ObjectMeta{Name: instance}, Spec: ecsv1alpha1.ContainerInstanceSpec{Cluster: ecsv1alpha1.DefaultClusterName}}
	if err := env.Client.Create(ctx, ci); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ci) })
	ep := l.Endpoint()
	ci.Status.StreamingEndpoint = &ep
	if err := env.Client.Status().Update(ctx, ci); err != nil {
		t.Fatal(err)
	}
}

// grant binds user to a Role with rules in ns.
func grant(t *testing.T, ctx context.Context, ns, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user}, Rules: rules}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	for _, o := range []client.Object{role, rb} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

var readTasks = rbacv1.PolicyRule{APIGroups: []string{"ecs.berth.dev"}, Resources: []string{"tasks"}, Verbs: []string{"get"}}

// TestExecAuthorization: a client-certificate user and a ServiceAccount token with
// exec run commands (exit codes come back); users without it are refused 403 and
// audited; no credentials is 401; a task without enableExecuteCommand is refused.
func TestExecAuthorization(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	instance := "i-" + ns
	task := testobj.Task(ns, "web-1", "web:1").On(instance).Obj()
	task.Spec.EnableExecuteCommand = true
	if err := env.Client.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	task.Status.Containers = []ecsv1alpha1.ContainerStatus{{Name: "app"}}
	if err := env.Client.Status().Update(ctx, task); err != nil {
		t.Fatal(err)
	}
	plain := testobj.Task(ns, "plain-1", "web:1").On(instance).Obj()
	if err := env.Client.Create(ctx, plain); err != nil {
		t.Fatal(err)
	}
	plain.Status.Containers = []ecsv1alpha1.ContainerStatus{{Name: "app"}}
	if err := env.Client.Status().Update(ctx, plain); err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{taskUID: task.UID, ended: make(chan struct{})}
	setup(t, ctx, instance, rt)

	// A client-certificate user with exec and logs.
	alice, err := env.AddUser("alice-" + ns)
	if err != nil {
		t.Fatal(err)
	}
	grant(t, ctx, ns, "alice-"+ns, readTasks,
		rbacv1.PolicyRule{APIGroups: []string{"ecs.berth.dev"}, Resources: []string{"tasks"}, Verbs: []string{"exec"}},
		rbacv1.PolicyRule{APIGroups: []string{"ecs.berth.dev"}, Resources: []string{"tasks/log"}, Verbs: []string{"get"}})
	// A user who may read tasks but not exec.
	bob, err := env.AddUser("bob-" + ns)
	if err != nil {
		t.Fatal(err)
	}
	grant(t, ctx, ns, "bob-"+ns, readTasks)

	execAs := func(cfg *rest.Config, taskName string, cmd ...string) (string, error) {
		var out bytes.Buffer
		err := clientstreaming.NewClient(cfg, env.Client).Exec(ctx, clientstreaming.ExecOptions{
			Namespace: ns, Task: taskName, Command: cmd, Stdout: &out, Stderr: io.Discard})
		return out.String(), err
	}

	if out, err := execAs(alice, "web-1", "echo", "hi"); err != nil || out != "hi in ctr-app\n" {
		t.Errorf("alice's exec: %q, %v", out, err)
	}
	_, err = execAs(alice, "web-1", "exit", "3")
	var ee exec.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("exit 3 returned %v, want an ExitError with status 3", err)
	}
	var in bytes.Buffer
	in.WriteString("typed\n")
	var out bytes.Buffer
	if err := clientstreaming.NewClient(alice, env.Client).Exec(ctx, clientstreaming.ExecOptions{
		Namespace: ns, Task: "web-1", Command: []string{"cat"}, Stdin: &in, Stdout: &out}); err != nil || out.String() != "typed\n" {
		t.Errorf("stdin through cat: %q, %v", out.String(), err)
	}
	if logs, err := clientstreaming.NewClient(alice, env.Client).Logs(ctx, ns, "web-1", "", 10); err != nil || !strings.Contains(string(logs), "log of app") {
		t.Errorf("alice's logs: %q, %v", logs, err)
	}

	// The SPDY protocol, which older clients and the fallback speak.
	ci := &ecsv1alpha1.ContainerInstance{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: instance}, ci); err != nil {
		t.Fatal(err)
	}
	ep := ci.Status.StreamingEndpoint
	spdyCfg := &rest.Config{Host: ep.URL, TLSClientConfig: rest.TLSClientConfig{CAData: []byte(ep.CABundle), CertData: alice.CertData, KeyData: alice.KeyData}}
	u, _ := url.Parse(ep.URL + clientstreaming.ExecPath(ns, "web-1") + "?container=app&command=exit&command=5&stdout=true")
	spdyExec, err := remotecommand.NewSPDYExecutor(spdyCfg, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := spdyExec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard}); !errors.As(err, &ee) || ee.ExitStatus() != 5 {
		t.Errorf("exit 5 over SPDY returned %v", err)
	}
	u, _ = url.Parse(ep.URL + clientstreaming.ExecPath(ns, "web-1") + "?container=app&command=cat&stdin=true&stdout=true")
	if spdyExec, err = remotecommand.NewSPDYExecutor(spdyCfg, http.MethodPost, u); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := spdyExec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("over spdy"), Stdout: &out}); err != nil || out.String() != "over spdy" {
		t.Errorf("cat over SPDY: %q, %v", out.String(), err)
	}

	_, err = execAs(bob, "web-1", "echo", "hi")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), fmt.Sprintf(`user "bob-%s" cannot exec tasks.ecs.berth.dev web-1`, ns)) {
		t.Errorf("bob's exec: %v, want forbidden naming bob", err)
	}
	if _, err := clientstreaming.NewClient(bob, env.Client).Logs(ctx, ns, "web-1", "app", -1); !apierrors.IsForbidden(err) {
		t.Errorf("bob's logs: %v, want forbidden", err)
	}

	// A ServiceAccount's token, checked by TokenReview.
	cs := kubernetes.NewForConfigOrDie(env.Config)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "robot"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	robot := &rest.Config{Host: env.Config.Host, BearerToken: tr.Status.Token}
	if _, err := execAs(robot, "web-1", "echo", "hi"); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "system:serviceaccount:"+ns+":robot") {
		t.Errorf("the ServiceAccount without exec: %v, want forbidden naming it", err)
	}
	grant(t, ctx, ns, "system:serviceaccount:"+ns+":robot",
		rbacv1.PolicyRule{APIGroups: []string{"ecs.berth.dev"}, Resources: []string{"tasks"}, Verbs: []string{"exec"}})
	// The deny decision is cached for a few seconds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := execAs(robot, "web-1", "echo", "token")
		if err == nil && out == "token in ctr-app\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ServiceAccount with exec: %q, %v", out, err)
		}
		time.Sleep(time.Second)
	}

	// A client that goes away takes its command with it.
	blockCtx, blockCancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		_ = clientstreaming.NewClient(alice, env.Client).Exec(blockCtx, clientstreaming.ExecOptions{
			Namespace: ns, Task: "web-1", Command: []string{"block"}, Stdout: pw})
		_ = pw.Close()
	}()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "blocking\n" {
		t.Fatalf("block: %q, %v", line, err)
	}
	blockCancel()
	select {
	case <-rt.ended:
	case <-time.After(20 * time.Second):
		t.Error("the command of a client that went away still runs")
	}

	// A task run without enableExecuteCommand.
	if _, err := execAs(alice, "plain-1", "echo", "hi"); err == nil || !strings.Contains(err.Error(), "execute command was not enabled") {
		t.Errorf("exec in a task without enableExecuteCommand: %v", err)
	}

	// No credentials at all.
	anon, err := rest.HTTPClientFor(&rest.Config{Host: ci.Status.StreamingEndpoint.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte(ci.Status.StreamingEndpoint.CABundle)}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := anon.Get(ci.Status.StreamingEndpoint.URL + clientstreaming.LogsPath(ns, "web-1", "app"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", resp.StatusCode)
	}

	// The audit trail: alice's and the robot's commands, bob's denial.
	waitEvent(t, ctx, ns, "web-1", streaming.ReasonExecCommand, "alice-"+ns+` ran ["echo" "hi"] in container app`)
	waitEvent(t, ctx, ns, "web-1", streaming.ReasonExecCommand, "system:serviceaccount:"+ns+`:robot ran ["echo" "token"]`)
	waitEvent(t, ctx, ns, "web-1", streaming.ReasonExecDenied, "bob-"+ns+" may not exec in task web-1")
}

// waitEvent waits for an Event on the task with reason whose message contains text.
func waitEvent(t *testing.T, ctx context.Context, ns, task, reason, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var events corev1.EventList
		if err := env.Client.List(ctx, &events, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == task && e.InvolvedObject.Kind == "Task" && e.Reason == reason && strings.Contains(e.Message, text) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s Event on task %s containing %q; events: %+v", reason, task, text, events.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
