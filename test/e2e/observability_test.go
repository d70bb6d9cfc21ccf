package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/berthdev/berth/agent"
	"github.com/berthdev/berth/agent/runtime"
	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/harness"
	"github.com/berthdev/berth/test/testenv"
	regtest "github.com/berthdev/berth/test/testenv/registry"
	"github.com/berthdev/berth/test/testobj"
)

// httpAddrs are the agents' HTTP endpoints by agent name.
var httpAddrs = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// httpAddress is the HTTP endpoint of the agent called name: a free loopback port,
// the same for every call with that name.
func httpAddress(t *testing.T, name string) string {
	t.Helper()
	httpAddrs.Lock()
	defer httpAddrs.Unlock()
	if a, ok := httpAddrs.m[name]; ok {
		return a
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // only the free port is wanted
	httpAddrs.m[name] = addr
	return addr
}

// startAgentWith runs the agent with options o in this process until the test ends.
func (s *stack) startAgentWith(t *testing.T, o agent.Options) {
	t.Helper()
	harness.StartAgent(t, o)
}

// agentGet GETs path from the agent's HTTP endpoint as the test env's task reader
// (a ServiceAccount token that may read every task and its logs), which its
// /v1/tasks and /v1/logs ask for.
func agentGet(t *testing.T, addr, path string) (int, string, error) {
	t.Helper()
	return agentGetWith(addr, path, env.TaskReaderToken(t))
}

// agentGetWith GETs path from the agent's HTTP endpoint with a bearer token, or
// none when token is "" (/healthz and /metrics are open).
func agentGetWith(addr, path, token string) (int, string, error) {
	resp, err := http.DefaultClient.Do(agentRequest(addr, path, token))
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serviceTask waits for the service's task that runs and returns it.
func serviceTask(t *testing.T, ns, service string, status ecsv1alpha1.TaskStatusValue) *ecsv1alpha1.Task {
	t.Helper()
	var found *ecsv1alpha1.Task
	testenv.EventuallyWithin(t, 90*time.Second, "a task of service "+service+" "+string(status), func() error {
		var list ecsv1alpha1.TaskList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{ecsv1alpha1.LabelService: service}); err != nil {
			return err
		}
		for i := range list.Items {
			if status == "" || list.Items[i].Status.LastStatus == status {
				found = &list.Items[i]
				return nil
			}
		}
		return fmt.Errorf("none yet:\n%s", tasksOf(t, ns, service))
	})
	return found
}

// agentRequest is a GET of path from the agent's HTTP endpoint with a bearer token
// ("" for none).
func agentRequest(addr, path, token string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// scrape parses the agent's /metrics, read without credentials as a node-local
// scraper does.
func scrape(addr string) (map[string]*dto.MetricFamily, error) {
	code, body, err := agentGetWith(addr, "/metrics", "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(body))
}

// sample finds the value of the series of family name with exactly these labels.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, error) {
	mf, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("no metric %s", name)
	}
	var seen []string
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		seen = append(seen, fmt.Sprint(got))
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue(), nil
		}
		return m.GetGauge().GetValue(), nil
	}
	return 0, fmt.Errorf("no %s%v among %v", name, labels, seen)
}

// wantSample checks the value of one series.
func wantSample(families map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) error {
	got, err := sample(families, name, labels)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
	return nil
}

// TestHealthAndMetrics: the agent answers /healthz, and a running task's container
// shows in /metrics with its cluster, service, family, revision, namespace and task,
// its memory in use and its limit.
func TestHealthAndMetrics(t *testing.T) {
	s := newStack(t)
	name := "node-" + s.ns
	s.startAgent(t, name)
	addr := httpAddress(t, name)
	testenv.EventuallyWithin(t, 30*time.Second, "/healthz answers 200", func() error {
		code, body, err := agentGetWith(addr, "/healthz", "")
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != "ok\n" {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})

	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(s.ns, "web").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).Obj()); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Service(s.ns, "web", "web", 1).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "web", 1)
	task := serviceTask(t, s.ns, "web", ecsv1alpha1.TaskRunning)

	taskLabels := map[string]string{
		"cluster": s.cluster, "service": "web", "task_definition_family": "web", "revision": "1",
		"namespace": s.ns, "task": task.Name,
	}
	containerLabels := map[string]string{"container": "app"}
	for k, v := range taskLabels {
		containerLabels[k] = v
	}
	testenv.EventuallyWithin(t, 30*time.Second, "the container's metrics", func() error {
		families, err := scrape(addr)
		if err != nil {
			return err
		}
		mem, err := sample(families, "berth_container_memory_usage_bytes", containerLabels)
		if err != nil {
			return err
		}
		if mem <= 0 {
			return fmt.Errorf("memory usage %v, want more than 0", mem)
		}
		if err := wantSample(families, "berth_container_memory_limit_bytes", containerLabels, 128<<20); err != nil {
			return err
		}
		if _, err := sample(families, "berth_container_cpu_usage_seconds_total", containerLabels); err != nil {
			return err
		}
		if err := wantSample(families, "berth_task_memory_usage_bytes", taskLabels, mem); err != nil {
			return err
		}
		if err := wantSample(families, "berth_agent_tasks", map[string]string{"status": "RUNNING"}, 1); err != nil {
			return err
		}
		return wantSample(families, "berth_agent_runtime_up", map[string]string{}, 1)
	})

	code, body, err := agentGet(t, addr, "/v1/tasks")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/v1/tasks: %d %v", code, err)
	}
	var tasks []struct {
		Task       string `json:"task"`
		UID        string `json:"uid"`
		LastStatus string `json:"lastStatus"`
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	}
	if err := json.Unmarshal([]byte(body), &tasks); err != nil {
		t.Fatalf("%v:\n%s", err, body)
	}
	if len(tasks) != 1 || tasks[0].Task != s.ns+"/"+task.Name || tasks[0].UID != string(task.UID) ||
		tasks[0].LastStatus != "RUNNING" || len(tasks[0].Containers) != 1 || tasks[0].Containers[0].Name != "app" {
		t.Errorf("/v1/tasks:\n%s", body)
	}
}

// TestLogs: /v1/logs serves what a container printed, its last lines, follows what it
// prints later, and says 404 for tasks and containers it does not know; it asks the
// apiserver who is calling (401 without a token, 403 for an identity without
// tasks/log).
func TestLogs(t *testing.T) {
	s := newStack(t)
	name := "node-" + s.ns
	s.startAgent(t, name)
	addr := httpAddress(t, name)
	ctx := context.Background()
	td := testobj.TaskDefinition(s.ns, "web").Network(ecsv1alpha1.NetworkModeNone).
		Container("app", s.image).
		Container("talk", s.image).Last(func(c *ecsv1alpha1.ContainerDefinition) {
		c.Command = []string{"echo=first", "sleep=4s", "echo=second", "sleep=inf"}
		// awslogs, as ECS task definitions have it: kept on the instance like
		// json-file, the stream ECS would have written named in the status.
		c.LogConfiguration = &ecsv1alpha1.LogConfiguration{LogDriver: ecsv1alpha1.LogDriverAWSLogs, Options: map[string]string{
			"awslogs-group": "/ecs/web", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "web"}}
	}).Obj()
	if err := env.Client.Create(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Service(s.ns, "web", "web", 1).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	task := serviceTask(t, s.ns, "web", "")
	base := "/v1/logs/" + s.ns + "/" + task.Name + "/"
	wantStream := ecsv1alpha1.AWSLogStream{Group: "/ecs/web", Region: "eu-west-1", Stream: "web/talk/" + strings.ReplaceAll(string(task.UID), "-", "")}
	testenv.EventuallyWithin(t, 90*time.Second, "talk's awslogs stream in the status", func() error {
		var got ecsv1alpha1.Task
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(task), &got); err != nil {
			return err
		}
		for _, c := range got.Status.Containers {
			if c.Name == "talk" && c.AWSLogs != nil && *c.AWSLogs == wantStream {
				return nil
			}
		}
		return fmt.Errorf("containers %+v, want talk with awsLogs %+v", got.Status.Containers, wantStream)
	})

	// Follow talk's output from as soon as it has a log: "second" comes 4s after
	// "first", so it arrives through the stream, not in what was there at first.
	testenv.EventuallyWithin(t, 90*time.Second, "talk has a log", func() error {
		code, body, err := agentGet(t, addr, base+"talk")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	resp, err := http.DefaultClient.Do(agentRequest(addr, base+"talk?follow=true", env.TaskReaderToken(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	opened := time.Now()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: status %d", resp.StatusCode)
	}
	type line struct {
		text string
		at   time.Time
	}
	lines := make(chan line, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- line{sc.Text(), time.Now()}
		}
		close(lines)
	}()
	for _, want := range []string{"first", "second"} {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended before %q", want)
			}
			if l.text != want {
				t.Fatalf("line %q, want %q", l.text, want)
			}
			if want == "second" && l.at.Sub(opened) < time.Second {
				t.Errorf("%q came %s after the stream opened: it was already in the file, not followed", want, l.at.Sub(opened))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q through the followed stream", want)
		}
	}
	_ = resp.Body.Close()

	testenv.EventuallyWithin(t, 30*time.Second, "app's log says ready", func() error {
		code, body, err := agentGet(t, addr, base+"app")
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != "ready\n" {
			return fmt.Errorf("%d %q, want 200 \"ready\\n\"", code, body)
		}
		return nil
	})
	if code, body, err := agentGet(t, addr, base+"talk?tail=1"); err != nil || code != http.StatusOK || body != "second\n" {
		t.Errorf("tail=1: %d %q %v, want \"second\\n\"", code, body, err)
	}
	if code, body, err := agentGetWith(addr, base+"app", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("no token: %d %q %v, want 401", code, body, err)
	}
	stranger := env.ServiceAccountToken(t, s.ns, "stranger")
	if code, body, err := agentGetWith(addr, base+"app", stranger); err != nil || code != http.StatusForbidden ||
		!strings.Contains(body, testenv.ServiceAccountUser(s.ns, "stranger")) || strings.Contains(body, "ready") {
		t.Errorf("an identity without tasks/log: %d %q %v, want 403 naming it", code, body, err)
	}
	for path, want := range map[string]string{
		base + "db":                                    `has no container "db"`,
		"/v1/logs/" + s.ns + "/no-such-task/app":       "is not known to this agent",
		base + "..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd": "has no container",
	} {
		code, body, err := agentGet(t, addr, path)
		if err != nil || code != http.StatusNotFound || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q %v, want 404 saying %q", path, code, body, err, want)
		}
	}
}

// TestCleanup: with a tiny task cleanup wait and image cleanup age, a stopped task's
// containers and logs go, then its image, while the image of a running task stays.
func TestCleanup(t *testing.T) {
	s := newStack(t)
	name := "node-" + s.ns
	o := s.agentOptions(t, name)
	o.TaskCleanupWait, o.ImageCleanupAge, o.CleanupInterval = time.Second, time.Second, 500*time.Millisecond
	s.startAgentWith(t, o)
	reg := regtest.Start(t)
	other, _ := reg.Push(t, regtest.TestImage(t, nil), "e2e/other", "1")

	ctx := context.Background()
	if err := env.Client.Create(ctx, testobj.TaskDefinition(s.ns, "web").Container("app", s.image).Network(ecsv1alpha1.NetworkModeNone).Obj()); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, testobj.Service(s.ns, "web", "web", 1).Cluster(s.cluster).Obj()); err != nil {
		t.Fatal(err)
	}
	batch := testobj.TaskDefinition(s.ns, "batch").Container("main", other).Network(ecsv1alpha1.NetworkModeNone).
		Last(func(c *ecsv1alpha1.ContainerDefinition) { c.Command = []string{"echo=done", "exit=0"} }).Obj()
	if err := env.Client.Create(ctx, batch); err != nil {
		t.Fatal(err)
	}
	job := testobj.Task(s.ns, "job", "batch").Cluster(s.cluster).Obj()
	if err := env.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	steady(t, s.ns, "web", 1)
	testenv.EventuallyWithin(t, 90*time.Second, "the job STOPPED", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		if job.Status.LastStatus != ecsv1alpha1.TaskStopped {
			return fmt.Errorf("lastStatus %s", job.Status.LastStatus)
		}
		return nil
	})

	c, err := s.ctr.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	cctx := namespaces.WithNamespace(ctx, s.ctrNamespace)
	logDir := filepath.Join(o.StateDir, "logs", fmt.Sprintf("%s_%s_%s", s.ns, job.Name, job.UID))
	testenv.EventuallyWithin(t, 30*time.Second, "the job's containers and logs removed", func() error {
		list, err := c.Containers(cctx, fmt.Sprintf("labels.%q==%q", runtime.LabelTaskUID, string(job.UID)))
		if err != nil {
			return err
		}
		if len(list) > 0 {
			return fmt.Errorf("%d containers left", len(list))
		}
		if _, err := os.Stat(logDir); err == nil {
			return fmt.Errorf("log directory %s is still there", logDir)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
	images := func() (map[string]bool, error) {
		list, err := c.ImageService().List(cctx)
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, img := range list {
			out[img.Name] = true
		}
		return out, nil
	}
	testenv.EventuallyWithin(t, 30*time.Second, "the job's image removed", func() error {
		have, err := images()
		if err != nil {
			return err
		}
		if have[other] {
			return fmt.Errorf("%s is still there: %v", other, have)
		}
		return nil
	})
	// More passes leave the running task's image alone, and the job's Task object.
	time.Sleep(2 * time.Second)
	have, err := images()
	if err != nil {
		t.Fatal(err)
	}
	if !have[s.image] {
		t.Errorf("the image %s of the running service was removed: %v", s.image, have)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil || job.Status.LastStatus != ecsv1alpha1.TaskStopped {
		t.Errorf("the job's Task: %v, %s; want it kept, STOPPED", err, job.Status.LastStatus)
	}
	if len(s.containers(t)) != 1 {
		t.Errorf("running containers %v, want the service's one", s.containers(t))
	}
}
