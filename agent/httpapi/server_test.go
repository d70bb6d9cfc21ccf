package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthdev/berth/agent/engine"
	"github.com/berthdev/berth/agent/metrics"
	"github.com/berthdev/berth/agent/runtime"
	"github.com/berthdev/berth/agent/runtime/fake"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/internal/access"
)

const image = "registry.example/app:1"

// fixture is an endpoint over a fake runtime with one task, team/web, whose
// containers are app (logging to a file), quiet (logDriver none) and late (not
// created yet). Its callers are checked by fakeAuth.
type fixture struct {
	ns       string
	rt       *fake.Runtime
	srv      *httptest.Server
	stateDir string
	appLog   string
	reports  []engine.Report
}

func newFixture(t *testing.T, rt Runtime) *fixture {
	t.Helper()
	return newFixtureIn(t, rt, "team", fakeAuth)
}

// newFixtureIn is the fixture with its task web in namespace ns, its callers
// checked by auth.
func newFixtureIn(t *testing.T, rt Runtime, ns string, auth *access.Delegated) *fixture {
	t.Helper()
	f := &fixture{ns: ns, rt: fake.New(), stateDir: t.TempDir()}
	if rt == nil {
		rt = f.rt
	}
	f.rt.AddImage(image)
	task := types.NamespacedName{Namespace: ns, Name: "web"}
	f.appLog = filepath.Join(f.stateDir, "logs", ns+"_web_uid-1", "app.log")
	f.create(t, "uid-1", "app", f.appLog)
	f.create(t, "uid-1", "quiet", "")
	f.reports = []engine.Report{
		{Task: task, UID: "uid-0", LastStatus: ecsv1alpha1.TaskStopped}, // an earlier task of the same name
		{Task: task, UID: "uid-1", LastStatus: ecsv1alpha1.TaskRunning, Containers: []ecsv1alpha1.ContainerStatus{
			{Name: "app", LastStatus: ecsv1alpha1.ContainerRunning}, {Name: "quiet"}, {Name: "late"}, {Name: "escape"},
		}},
	}
	// A container whose label points outside the state directory.
	f.create(t, "uid-1", "escape", "/etc/passwd")
	s, err := New(Config{
		Runtime: rt, StateDir: f.stateDir, Tasks: func() []engine.Report { return f.reports },
		Collector: metrics.NewCollector(metrics.Config{Runtime: f.rt, Cluster: "prod"}), FollowPoll: 10 * time.Millisecond,
		Auth: auth,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptestServer(t, s.Handler())
	return f
}

// httptestServer serves h until the test ends.
func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fixture) create(t *testing.T, uid, name, logPath string) {
	t.Helper()
	spec := runtime.ContainerSpec{ID: runtime.ContainerID(uid, name), Image: image, LogPath: logPath, Labels: map[string]string{
		runtime.LabelTaskUID: uid, runtime.LabelTask: f.ns + "/web", runtime.LabelContainer: name, runtime.LabelRevision: "web:1",
	}}
	if _, err := f.rt.Create(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}

// get GETs path as reader, who may read everything.
func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, body := f.getAs(t, "reader", path)
	return resp.StatusCode, body
}

// getAs GETs path with user's token for fakeAuth ("" for none).
func (f *fixture) getAs(t *testing.T, user, path string) (*http.Response, string) {
	t.Helper()
	return f.getWith(t, fakeToken(user), path)
}

// fakeToken is user's token for fakeAuth; "" for none.
func fakeToken(user string) string {
	if user == "" {
		return ""
	}
	return user + "-token"
}

// getWith GETs path with a bearer token ("" for none).
func (f *fixture) getWith(t *testing.T, token, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(request(t, context.Background(), token, f.srv.URL+path))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// request is a GET of url with a bearer token ("" for none).
func request(t *testing.T, ctx context.Context, token, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, content string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fh.Close() }()
	if _, err := fh.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

type downRuntime struct{ *fake.Runtime }

func (downRuntime) Version(context.Context) (string, error) {
	return "", errors.New("dial unix /run/containerd/containerd.sock: connection refused")
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, nil)
	if code, body := f.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthy: %d %q, want 200 ok", code, body)
	}
	down := newFixture(t, downRuntime{fake.New()})
	code, body := down.get(t, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("runtime down: %d %q, want 503 with the error", code, body)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	code, body := f.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"berth_agent_runtime_up 1", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestTasks(t *testing.T) {
	f := newFixture(t, nil)
	code, body := f.get(t, "/v1/tasks")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	if len(got) != 2 {
		t.Fatalf("%d tasks, want 2:\n%s", len(got), body)
	}
	want := map[string]any{
		"task": "team/web", "namespace": "team", "name": "web", "uid": "uid-1", "lastStatus": "RUNNING",
		"containers": []any{
			map[string]any{"name": "app", "lastStatus": "RUNNING"}, map[string]any{"name": "quiet"},
			map[string]any{"name": "late"}, map[string]any{"name": "escape"},
		},
	}
	if d := cmp.Diff(want, got[1]); d != "" {
		t.Errorf("task (-want +got):\n%s", d)
	}
}

func TestLogs(t *testing.T) {
	f := newFixture(t, nil)
	base := "/v1/logs/team/web/"
	// The container has not started: its file does not exist yet.
	if code, body := f.get(t, base+"app"); code != http.StatusOK || body != "" {
		t.Errorf("before any output: %d %q, want 200 and nothing", code, body)
	}
	writeFile(t, f.appLog, "one\ntwo\nthree\nfour\n")
	tests := []struct {
		name, path string
		wantCode   int
		wantBody   string // exact for 200, a substring otherwise
	}{
		{name: "whole file", path: base + "app", wantCode: 200, wantBody: "one\ntwo\nthree\nfour\n"},
		{name: "tail", path: base + "app?tail=2", wantCode: 200, wantBody: "three\nfour\n"},
		{name: "tail zero", path: base + "app?tail=0", wantCode: 200, wantBody: ""},
		{name: "tail beyond", path: base + "app?tail=10", wantCode: 200, wantBody: "one\ntwo\nthree\nfour\n"},
		{name: "bad tail", path: base + "app?tail=-1", wantCode: 400, wantBody: "tail must be"},
		{name: "bad follow", path: base + "app?follow=maybe", wantCode: 400, wantBody: "follow must be"},
		{name: "unknown task", path: "/v1/logs/team/api/app", wantCode: 404, wantBody: "task team/api is not known to this agent"},
		{name: "unknown namespace", path: "/v1/logs/other/web/app", wantCode: 404, wantBody: "task other/web is not known"},
		{name: "unknown container", path: base + "db", wantCode: 404, wantBody: `task team/web has no container "db" (its containers: app, quiet, late, escape)`},
		{name: "not created", path: base + "late", wantCode: 404, wantBody: "not created yet, or it was cleaned up"},
		{name: "logDriver none", path: base + "quiet", wantCode: 404, wantBody: "logDriver is none"},
		{name: "outside the state dir", path: base + "escape", wantCode: 403, wantBody: "outside the agent's state directory"},
		{name: "traversal", path: base + "..%2F..%2F..%2Fetc%2Fpasswd", wantCode: 404, wantBody: "has no container"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.get(t, tc.path)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tc.wantCode, body)
			}
			if tc.wantCode == 200 && body != tc.wantBody || tc.wantCode != 200 && !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
		})
	}
}

// TestLogsFollow: a followed log delivers what is appended, starts over after a
// copy-truncate rotation, and ends when the file is removed.
func TestLogsFollow(t *testing.T) {
	f := newFixture(t, nil)
	writeFile(t, f.appLog, "old\nready\n")
	resp, err := http.DefaultClient.Do(request(t, context.Background(), fakeToken("reader"), f.srv.URL+"/v1/logs/team/web/app?tail=1&follow=true"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := make(chan string)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		done <- sc.Err()
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("line %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line %q", want)
		}
	}
	expect("ready")
	appendFile(t, f.appLog, "second\n")
	expect("second")
	// Rotation: the file is truncated, and the writer carries on at its start.
	if err := os.Truncate(f.appLog, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendFile(t, f.appLog, "after rotation\n")
	expect("after rotation")
	if err := os.Remove(f.appLog); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stream ended with %v", err)
		}
	case l := <-lines:
		t.Errorf("unexpected line %q", l)
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end when the file was removed")
	}
}

// TestLogsFollowEndsWithClient: the handler returns when the client goes away.
func TestLogsFollowEndsWithClient(t *testing.T) {
	f := newFixture(t, nil)
	writeFile(t, f.appLog, "ready\n")
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := http.DefaultClient.Do(request(t, ctx, fakeToken("reader"), f.srv.URL+"/v1/logs/team/web/app?follow=true"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	cancel()
	_ = resp.Body.Close()
	// httptest.Server.Close waits for active handlers: it returns only if the
	// following handler ended.
	closed := make(chan struct{})
	go func() { f.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the follow handler kept running after its client left")
	}
}

func TestTailOffset(t *testing.T) {
	long := strings.Repeat(strings.Repeat("x", 99)+"\n", 1000) // 100 kB, beyond one chunk
	tests := []struct {
		name    string
		content string
		n       int
		want    string
	}{
		{name: "empty", content: "", n: 3, want: ""},
		{name: "last line", content: "a\nb\nc\n", n: 1, want: "c\n"},
		{name: "two lines", content: "a\nb\nc\n", n: 2, want: "b\nc\n"},
		{name: "all lines", content: "a\nb\nc\n", n: 3, want: "a\nb\nc\n"},
		{name: "more than there are", content: "a\nb\n", n: 5, want: "a\nb\n"},
		{name: "unfinished last line", content: "a\nb\nc", n: 2, want: "b\nc"},
		{name: "empty lines", content: "a\n\n\n", n: 2, want: "\n\n"},
		{name: "zero", content: "a\n", n: 0, want: ""},
		{name: "across chunks", content: "first\n" + long, n: 1000, want: long},
		{name: "across chunks all", content: "first\n" + long, n: 1001, want: "first\n" + long},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader([]byte(tc.content))
			off, err := tailOffset(r, int64(len(tc.content)), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.content[off:]; got != tc.want {
				t.Errorf("tail %d = %q, want %q", tc.n, shorten(got), shorten(tc.want))
			}
		})
	}
}

func shorten(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
	}
	return s
}

func TestListenAndServe(t *testing.T) {
	s, err := Listen(Config{Address: "127.0.0.1:0", Runtime: fake.New(), StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{Address: s.Addr().String(), Runtime: fake.New(), StateDir: t.TempDir()}); err == nil {
		t.Error("a second Listen on the same address succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
}
