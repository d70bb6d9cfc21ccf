package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/kube"
)

// recordingAgent answers exec and logs as a scripted agent would, and records the
// requests it got.
type recordingAgent struct {
	mu    sync.Mutex
	execs []ExecRequest
	sizes []remotecommand.TerminalSize
	// exec runs a request; nil echoes stdin to stdout until stdin closes.
	exec func(r ExecRequest) error
}

func (a *recordingAgent) Exec(_ context.Context, r ExecRequest) error {
	a.mu.Lock()
	a.execs = append(a.execs, r)
	a.mu.Unlock()
	if r.Resize != nil {
		go func() {
			for sz := r.Resize.Next(); sz != nil; sz = r.Resize.Next() {
				a.mu.Lock()
				a.sizes = append(a.sizes, *sz)
				a.mu.Unlock()
			}
		}()
	}
	if a.exec != nil {
		return a.exec(r)
	}
	_, err := io.Copy(r.Stdout, r.Stdin)
	return err
}

func (a *recordingAgent) Logs(_ context.Context, _, task, container string, tail int) ([]byte, error) {
	if container == "broken" {
		return nil, errors.New("agent unreachable")
	}
	return []byte(fmt.Sprintf("line from %s/%s (tail %d)\n", task, container, tail)), nil
}

func execTask() *ecsv1alpha1.Task {
	return &ecsv1alpha1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abc"},
		Spec:       ecsv1alpha1.TaskSpec{Cluster: "default", TaskDefinition: "web", ContainerInstance: "worker-1", EnableExecuteCommand: true},
		Status: ecsv1alpha1.TaskStatus{LastStatus: ecsv1alpha1.TaskRunning, Containers: []ecsv1alpha1.ContainerStatus{
			{Name: "web", LastStatus: ecsv1alpha1.ContainerRunning}, {Name: "broken", LastStatus: ecsv1alpha1.ContainerRunning},
		}},
	}
}

// execServer is a console whose access reviews answer allowed.
func execServer(t *testing.T, allowed bool, agent Agent) (*browser, string) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(kube.Scheme).WithObjects(execTask()).
		WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if sar, ok := obj.(*authorizationv1.SelfSubjectAccessReview); ok {
				ra := sar.Spec.ResourceAttributes
				sar.Status.Allowed = allowed && ra.Verb == "exec" && ra.Group == "ecs.berth.dev" && ra.Resource == "tasks" && ra.Name == "web-abc"
				return nil
			}
			return c.Create(ctx, obj, opts...)
		}}).Build()
	s, srv, _ := fakeServerWith(t, c)
	s.agent = agent
	b := newBrowser(t, srv)
	b.login(testToken)
	return b, srv.URL
}

func TestTaskPageLogs(t *testing.T) {
	b, _ := execServer(t, true, &recordingAgent{})
	_, body := b.get("/tasks/default/web-abc")
	for _, want := range []string{
		`<section class="logs" data-container="web">`,
		"line from web-abc/web (tail 50)",
		"Log lines are unavailable: agent unreachable",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("task page lacks %q", want)
		}
	}
}

func TestTaskPageWithoutAgent(t *testing.T) {
	b, _ := execServer(t, true, nil)
	if _, body := b.get("/tasks/default/web-abc"); !strings.Contains(body, "this console runs without an agent client") {
		t.Errorf("task page without an agent client does not say so: %s", body)
	}
}

func TestExecRunForm(t *testing.T) {
	agent := &recordingAgent{exec: func(r ExecRequest) error {
		_, _ = fmt.Fprint(r.Stdout, "hello <b>\n")
		_, _ = fmt.Fprint(r.Stderr, "oops\n")
		return utilexec.CodeExitError{Err: errors.New("exit 3"), Code: 3}
	}}
	b, _ := execServer(t, true, agent)
	res, page := b.get("/tasks/default/web-abc/exec?container=web")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="terminal"`) || !strings.Contains(page, `id="run-form"`) {
		t.Fatalf("exec page: status %d: %s", res.StatusCode, page)
	}
	res, body := b.post("/tasks/default/web-abc/exec", url.Values{"csrf": {csrfOf(t, page)}, "container": {"web"}, "command": {`sh -c 'echo hello; exit 3'`}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("run: status %d: %s", res.StatusCode, body)
	}
	if !strings.Contains(body, `id="exec-exit-code" data-value="3"`) || !strings.Contains(body, "hello &lt;b&gt;\noops") {
		t.Errorf("run result lacks the exit code or the escaped output: %s", body)
	}
	if got := agent.execs[0]; got.TTY || strings.Join(got.Command, "|") != "sh|-c|echo hello; exit 3" || got.Container != "web" || got.Task != "web-abc" {
		t.Errorf("agent got %+v", got)
	}
	res, body = b.post("/tasks/default/web-abc/exec", url.Values{"csrf": {csrfOf(t, page)}, "container": {"web"}, "command": {"  "}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "command: is required") {
		t.Errorf("empty command: status %d: %s", res.StatusCode, body)
	}
}

func TestExecForbidden(t *testing.T) {
	agent := &recordingAgent{}
	b, base := execServer(t, false, agent)
	if res, body := b.get("/tasks/default/web-abc/exec?container=web"); res.StatusCode != http.StatusForbidden || !strings.Contains(body, "forbidden") {
		t.Errorf("terminal page: status %d, want 403: %s", res.StatusCode, body)
	}
	ws := wsURL(base, "/tasks/default/web-abc/exec/ws?container=web")
	_, res, err := dialer(b).Dial(ws, http.Header{"Origin": {base}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("websocket: %v, response %v; want 403 before the upgrade", err, res)
	}
	if len(agent.execs) != 0 {
		t.Errorf("the agent was asked to exec %d times for a user without the exec verb", len(agent.execs))
	}
}

// TestExecRunForbiddenByTheAgent: a command posted without the terminal page goes
// to the agent, which decides (and audits); its refusal is the console's 403.
func TestExecRunForbiddenByTheAgent(t *testing.T) {
	agent := &recordingAgent{exec: func(r ExecRequest) error {
		return apierrors.NewForbidden(ecsv1alpha1.GroupVersion.WithResource("tasks").GroupResource(), r.Task, errors.New("user bob cannot exec"))
	}}
	b, _ := execServer(t, true, agent)
	_, page := b.get("/tasks/default/web-abc/exec?container=web")
	res, body := b.post("/tasks/default/web-abc/exec", url.Values{"csrf": {csrfOf(t, page)}, "container": {"web"}, "command": {"true"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "user bob cannot exec") {
		t.Errorf("status %d, want the agent's 403: %s", res.StatusCode, body)
	}
	if len(agent.execs) != 1 {
		t.Errorf("the agent was asked %d times, want once", len(agent.execs))
	}
}

func wsURL(base, path string) string { return "ws" + strings.TrimPrefix(base, "http") + path }

// dialer carries the browser's session cookie.
func dialer(b *browser) *websocket.Dialer {
	return &websocket.Dialer{Jar: b.c.Jar, HandshakeTimeout: 5 * time.Second}
}

func TestExecTerminal(t *testing.T) {
	agent := &recordingAgent{}
	b, base := execServer(t, true, agent)
	ws := wsURL(base, "/tasks/default/web-abc/exec/ws?container=web&command="+url.QueryEscape("/bin/bash -l"))

	if _, res, err := dialer(b).Dial(ws, http.Header{"Origin": {"http://evil.example"}}); err == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: %v %v; want 403", err, res)
	}
	conn, _, err := dialer(b).Dial(ws, http.Header{"Origin": {base}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"resize","cols":120,"rows":40}`)); err != nil {
		t.Fatal(err)
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte("echo me\r")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	for !strings.Contains(out.String(), "echo me") {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("reading the echo: %v (so far %q)", err, out.String())
		}
		if kind == websocket.BinaryMessage {
			out.Write(data)
		}
	}
	// Closing the browser side ends stdin, the echo agent returns, and the server
	// reports exit code 0.
	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if len(agent.execs) != 1 || !agent.execs[0].TTY || strings.Join(agent.execs[0].Command, " ") != "/bin/bash -l" {
		t.Fatalf("agent execs %+v; want one TTY exec of /bin/bash -l", agent.execs)
	}
}

func TestExecTerminalExitCode(t *testing.T) {
	agent := &recordingAgent{exec: func(r ExecRequest) error {
		_, _ = fmt.Fprint(r.Stdout, "bye\r\n")
		return utilexec.CodeExitError{Err: errors.New("exit 7"), Code: 7}
	}}
	b, base := execServer(t, true, agent)
	conn, _, err := dialer(b).Dial(wsURL(base, "/tasks/default/web-abc/exec/ws?container=web"), http.Header{"Origin": {base}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("connection ended without an exit message: %v", err)
		}
		if kind == websocket.TextMessage {
			if string(data) != `{"type":"exit","code":7}` {
				t.Errorf("control message %s, want exit code 7", data)
			}
			break
		}
	}
	if got := agent.execs[0].Command; strings.Join(got, " ") != defaultShell {
		t.Errorf("command %v, want the default shell", got)
	}
}
