package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gorilla/websocket"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
)

const (
	// defaultShell is the terminal's command when the user names none.
	defaultShell = "/bin/sh"
	// runTimeout bounds a command run from the no-script form.
	runTimeout = 60 * time.Second
	// maxRunOutput bounds what the form keeps of a command's output.
	maxRunOutput = 1 << 20
)

// ECS Exec in the browser. Before the terminal page renders, before the websocket
// upgrades and before a command runs, a SelfSubjectAccessReview asks the apiserver
// whether the user may `exec` on the task (the verb `berth exec` needs): denied is
// 403 here, before any connection to an agent. The agent checks again on its side.

// mayExec asks whether the user has the exec verb on the task.
func (s *Server) mayExec(ctx context.Context, ns, name string) error {
	sar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "exec", Group: ecsv1alpha1.GroupVersion.Group, Resource: "tasks", Name: name,
		},
	}}
	if err := s.direct.Create(ctx, sar); err != nil {
		return fmt.Errorf("asking the apiserver whether you may exec: %w", err)
	}
	if sar.Status.Allowed {
		return nil
	}
	msg := "you may not exec in task " + name + ": the exec verb on tasks." + ecsv1alpha1.GroupVersion.Group + " is not granted to you"
	if sar.Status.Reason != "" {
		msg += " (" + sar.Status.Reason + ")"
	}
	return apierrors.NewForbidden(ecsv1alpha1.GroupVersion.WithResource("tasks").GroupResource(), name, errors.New(msg))
}

// execTarget reads the task and the container a request names; a task with one
// container needs none named.
func (s *Server) execTarget(ctx context.Context, r *http.Request) (*ecsv1alpha1.Task, string, error) {
	t := &ecsv1alpha1.Task{}
	if err := s.get(ctx, kindTasks, client.ObjectKey{Namespace: r.PathValue("ns"), Name: r.PathValue("name")}, t); err != nil {
		return nil, "", err
	}
	names := make([]string, len(t.Status.Containers))
	for i, c := range t.Status.Containers {
		names[i] = c.Name
	}
	c, err := pickContainer(r.FormValue("container"), names)
	return t, c, err
}

// pickContainer checks a container name against the task's containers (when the
// agent has reported them), defaulting to the first.
func pickContainer(name string, containers []string) (string, error) {
	if name == "" {
		if len(containers) == 0 {
			return "", &fieldError{"container", "is required (the task has reported no containers yet)"}
		}
		return containers[0], nil
	}
	if len(containers) > 0 && !slices.Contains(containers, name) {
		return "", &fieldError{"container", fmt.Sprintf("the task has no container %q (it has %s)", name, strings.Join(containers, ", "))}
	}
	return name, nil
}

type execBody struct {
	Task       *ecsv1alpha1.Task
	Container  string
	Containers []string
	Command    string
	SocketURL  string
	HasAgent   bool
}

// execPageTarget checks that the caller may exec in the task and finds the task and
// container a page's request names; when not, it has answered with the error page.
func (s *Server) execPageTarget(w http.ResponseWriter, r *http.Request) (*ecsv1alpha1.Task, string, bool) {
	if err := s.mayExec(r.Context(), r.PathValue("ns"), r.PathValue("name")); err != nil {
		s.fail(w, r, nil, http.StatusForbidden, err)
		return nil, "", false
	}
	t, container, err := s.execTarget(r.Context(), r)
	if err != nil {
		s.actionFailed(w, r, err)
		return nil, "", false
	}
	return t, container, true
}

func (s *Server) execPage(w http.ResponseWriter, r *http.Request) {
	t, container, ok := s.execPageTarget(w, r)
	if !ok {
		return
	}
	b := execBody{Task: t, Container: container, Command: defaultShell, HasAgent: s.agent != nil,
		SocketURL: taskPath(t.Namespace, t.Name) + "/exec/ws?container=" + url.QueryEscape(container)}
	for _, c := range t.Status.Containers {
		b.Containers = append(b.Containers, c.Name)
	}
	s.render(w, r, http.StatusOK, "exec.html", page{Title: "Terminal: " + t.Name + " / " + container, Nav: "clusters", Body: b})
}

type runBody struct {
	Task      *ecsv1alpha1.Task
	Container string
	Command   string
	Output    string
	Truncated bool
	ExitCode  int
	Error     string
}

// execRun runs one command without a terminal: the form for browsers without
// script, and for scripted checks. It asks no SelfSubjectAccessReview of its own:
// a command is an exec attempt, and the agent decides it and records the decision
// as an Event on the task (its 403 comes back as this page's 403), so an attempt
// from the console is audited as one from `berth exec` is.
func (s *Server) execRun(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, container, err := s.execTarget(ctx, r)
	if err != nil {
		s.actionFailed(w, r, err)
		return
	}
	raw := r.PostFormValue("command")
	argv, err := splitCommand(raw)
	if err != nil {
		s.actionFailed(w, r, err)
		return
	}
	if s.agent == nil {
		s.fail(w, r, nil, http.StatusServiceUnavailable, errors.New("exec is unavailable: this console runs without an agent client"))
		return
	}
	out := &cappedBuffer{max: maxRunOutput}
	rctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	err = s.agent.Exec(rctx, ExecRequest{Namespace: t.Namespace, Task: t.Name, Container: container, Command: argv, Stdout: out, Stderr: out})
	b := runBody{Task: t, Container: container, Command: raw}
	var exitErr utilexec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		b.ExitCode = exitErr.ExitStatus()
	case apierrors.IsForbidden(err):
		s.fail(w, r, nil, http.StatusForbidden, err)
		return
	default:
		b.ExitCode = -1
		b.Error = err.Error()
	}
	s.log.Info("exec run", "namespace", t.Namespace, "task", t.Name, "container", container, "exitCode", b.ExitCode)
	b.Output, b.Truncated = out.String(), out.truncated
	s.render(w, r, http.StatusOK, "exec_result.html", page{Title: "Command in " + t.Name + " / " + container, Nav: "clusters", Body: b})
}

// splitCommand splits a command line into arguments as a shell would for plain
// words and single or double quotes (no variables, globs or escapes but \" in
// double quotes): enough to type `sh -c 'echo $HOME'`.
func splitCommand(s string) ([]string, error) {
	var sp splitter
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		if sp.quote != 0 {
			i = sp.quoted(rs, i)
			continue
		}
		sp.plain(rs[i])
	}
	if sp.quote != 0 {
		return nil, &fieldError{"command", fmt.Sprintf("unterminated %c quote", sp.quote)}
	}
	sp.endArg()
	if len(sp.args) == 0 {
		return nil, &fieldError{"command", "is required"}
	}
	return sp.args, nil
}

// splitter is splitCommand's state: the arguments so far, the one being read, and
// the quote it is inside of (0 outside quotes).
type splitter struct {
	args  []string
	cur   strings.Builder
	inArg bool
	quote rune
}

func (sp *splitter) endArg() {
	if sp.inArg {
		sp.args = append(sp.args, sp.cur.String())
		sp.cur.Reset()
		sp.inArg = false
	}
}

// plain reads a character outside quotes.
func (sp *splitter) plain(c rune) {
	switch {
	case c == '\'' || c == '"':
		sp.quote, sp.inArg = c, true
	case unicode.IsSpace(c):
		sp.endArg()
	default:
		sp.cur.WriteRune(c)
		sp.inArg = true
	}
}

// quoted reads rs[i] inside quotes and returns the index of the last rune read.
func (sp *splitter) quoted(rs []rune, i int) int {
	switch c := rs[i]; {
	case c == sp.quote:
		sp.quote = 0
	case sp.quote == '"' && c == '\\' && i+1 < len(rs) && rs[i+1] == '"':
		sp.cur.WriteRune('"')
		return i + 1
	default:
		sp.cur.WriteRune(c)
	}
	return i
}

// cappedBuffer keeps the first max bytes written and drops the rest.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - b.buf.Len()
	if len(p) > room {
		b.truncated = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Terminal protocol on the websocket: binary messages are the terminal's bytes
// (keystrokes from the browser, output to it); text messages are JSON control
// messages: {"type":"resize","cols":C,"rows":R} from the browser,
// {"type":"exit","code":N} or {"type":"error","message":M} to it before it closes.
type control struct {
	Type    string `json:"type"`
	Cols    uint16 `json:"cols,omitempty"`
	Rows    uint16 `json:"rows,omitempty"`
	Code    *int   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func (s *Server) execSocket(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := originMatches(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if err := s.mayExec(ctx, r.PathValue("ns"), r.PathValue("name")); err != nil {
		http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	t, container, err := s.execTarget(ctx, r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	command := r.FormValue("command")
	if strings.TrimSpace(command) == "" {
		command = defaultShell
	}
	argv, err := splitCommand(command)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.agent == nil {
		http.Error(w, "exec is unavailable: this console runs without an agent client", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return originMatches(r) == nil }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	defer func() { _ = conn.Close() }()
	s.log.Info("terminal opened", "namespace", t.Namespace, "task", t.Name, "container", container)
	s.bridge(ctx, conn, ExecRequest{Namespace: t.Namespace, Task: t.Name, Container: container, Command: argv, TTY: true})
}

// bridge runs the exec with the websocket as its terminal until either ends.
func (s *Server) bridge(ctx context.Context, conn *websocket.Conn, req ExecRequest) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdin, stdinW := io.Pipe()
	sizes := newSizeQueue(ctx)
	out := &socketWriter{conn: conn}
	go func() {
		// The browser's side: keystrokes and resizes, until it closes.
		defer cancel()
		defer func() { _ = stdinW.Close() }()
		for {
			kind, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if kind == websocket.BinaryMessage {
				if _, err := stdinW.Write(data); err != nil {
					return
				}
				continue
			}
			var c control
			if json.Unmarshal(data, &c) == nil && c.Type == "resize" && c.Cols > 0 && c.Rows > 0 {
				sizes.push(remotecommand.TerminalSize{Width: c.Cols, Height: c.Rows})
			}
		}
	}()
	req.Stdin, req.Stdout, req.Resize = stdin, out, sizes
	err := s.agent.Exec(ctx, req)
	var exitErr utilexec.ExitError
	code := 0
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitStatus()
	default:
		out.control(control{Type: "error", Message: err.Error()})
		return
	}
	out.control(control{Type: "exit", Code: &code})
	out.close()
}

// socketWriter sends output as binary messages; gorilla/websocket allows one
// writer at a time.
type socketWriter struct {
	mu   sync.Mutex
	conn *websocket.Conn
}

func (w *socketWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.conn.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *socketWriter) control(c control) {
	raw, _ := json.Marshal(c)
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.WriteMessage(websocket.TextMessage, raw)
}

func (w *socketWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
}

// sizeQueue hands terminal sizes to the exec; only the newest pending size matters.
type sizeQueue struct {
	ctx context.Context
	ch  chan remotecommand.TerminalSize
}

func newSizeQueue(ctx context.Context) *sizeQueue {
	return &sizeQueue{ctx: ctx, ch: make(chan remotecommand.TerminalSize, 1)}
}

func (q *sizeQueue) push(sz remotecommand.TerminalSize) {
	select {
	case <-q.ch: // drop the stale size
	default:
	}
	q.ch <- sz
}

// Next blocks until a size arrives; nil ends the queue (the exec is over).
func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case sz := <-q.ch:
		return &sz
	case <-q.ctx.Done():
		return nil
	}
}
