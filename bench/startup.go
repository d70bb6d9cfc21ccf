package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/test/testobj"
)

// startupLatency measures TaskStartupLatency: standalone single-container tasks of
// the already pulled test image, created five a second on one real agent; for each,
// the time from its creation to RUNNING seen through a watch, with the milestones on
// the way: bound by the scheduler (watch), seen by the agent (its PENDING transition)
// and containerd's start returned (both from the agent's debug log, which has
// nanosecond timestamps; the agent runs on this machine's clock). Baseline: `ctr run
// -d` of the same image on the same containerd.
func (cl *ctrLab) startupLatency(ctx context.Context, r *runner, base *ctrBaseline, out *outcome) error {
	const cluster, family = "latency", "lat"
	agent, logPath, err := cl.startAgent(ctx, agentConfig{name: "lat", cluster: cluster, debug: true})
	if err != nil {
		return err
	}
	if err := cl.setupCluster(ctx, cluster, smallTaskDefinition(benchNamespace, family, cl.image)); err != nil {
		return err
	}
	tr := newStartTracker()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := watchObjects(wctx, cl.c, &ecsv1alpha1.TaskList{}, &client.ListOptions{Namespace: benchNamespace}, false, tr.observe); err != nil {
		return err
	}
	newTask := func(name string) error {
		tr.created(name)
		return cl.c.Create(ctx, testobj.Task(benchNamespace, name, family).Cluster(cluster).Obj())
	}
	// One task first: the agent pulls the image (its first pull contacts the
	// registry), which is not what is measured.
	if err := newTask("warm"); err != nil {
		return err
	}
	if err := tr.wait(ctx, []string{"warm"}, 2*time.Minute, agent); err != nil {
		return err
	}

	n := r.size.n(100, 3)
	m := cl.startMeasurement(ctx, TaskStartupLatency, map[string]*child{"berth agent": agent})
	var names []string
	tick := time.NewTicker(time.Second / startRate)
	for i := range n {
		<-tick.C
		name := fmt.Sprintf("lat-%03d", i)
		names = append(names, name)
		if err := newTask(name); err != nil {
			tick.Stop()
			m.stop(ctx)
			return err
		}
	}
	tick.Stop()
	err = tr.wait(ctx, names, time.Minute+time.Duration(n)*time.Second, agent)
	out.contexts = append(out.contexts, m.stop(ctx)...)
	if err != nil {
		return err
	}
	marks, err := parseAgentLog(logPath)
	if err != nil {
		return err
	}
	figs, err := startupFigures(tr, marks, names, base)
	if err != nil {
		return err
	}
	out.figures = append(out.figures, figs...)
	r.logf("containerd: %d tasks, creation to RUNNING p50 %.0f ms", n, figs[0].Values["Perc50"])
	// Stop them, so that the footprint that follows starts from an idle containerd.
	return cl.stopTasks(ctx, append(names, "warm"), agent)
}

// startupFigures turns the timestamps of every task into the latency figures.
func startupFigures(tr *startTracker, marks map[string]agentMarks, names []string, base *ctrBaseline) ([]Figure, error) {
	var total, placed, seen, started []time.Duration
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, name := range names {
		t := tr.tasks[name]
		m, ok := marks[name]
		if !ok {
			m, ok = marks[t.uid]
		}
		if !ok || m.pending.IsZero() || m.started.IsZero() {
			return nil, fmt.Errorf("the agent's log has no PENDING or started container line for task %s", name)
		}
		total = append(total, t.running.Sub(t.created))
		placed = append(placed, t.placed.Sub(t.created))
		seen = append(seen, m.pending.Sub(t.created))
		started = append(started, m.started.Sub(t.created))
	}
	baseline := Baseline{
		What: fmt.Sprintf("`ctr run -d` of the same image, %d containers at %d/s, on the same containerd before the tasks", len(base.latencies), startRate),
		Unit: "ms", Values: Summary(Millis(base.latencies)),
	}
	fig := func(name string, d []time.Duration, note string) Figure {
		return Figure{Metric: TaskStartupLatency, Name: name, Unit: "ms", Values: Summary(Millis(d)), Baseline: baseline, Note: note}
	}
	n := len(names)
	return []Figure{
		fig("CreationToRunning", total, fmt.Sprintf("%d single-container tasks of an already pulled image (network mode none), created %d/s: creation to lastStatus RUNNING seen through a watch.", n, startRate)),
		fig("CreationToPlaced", placed, "breakdown: creation to spec.containerInstance set by the scheduler (watch)."),
		fig("CreationToSeenByAgent", seen, "breakdown: creation to the agent's PENDING transition (its log)."),
		fig("CreationToContainerStarted", started, "breakdown: creation to containerd's task start returning in the agent (its log); the rest of CreationToRunning is the agent's status write, seen as RUNNING."),
	}, nil
}

// startTracker records, per task, when the harness created it and when a watch saw
// it bound and RUNNING.
type startTracker struct {
	mu    sync.Mutex
	tasks map[string]*taskTimes
}

type taskTimes struct {
	uid                      string
	created, placed, running time.Time
}

func newStartTracker() *startTracker { return &startTracker{tasks: map[string]*taskTimes{}} }

func (s *startTracker) created(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks[name] = &taskTimes{created: time.Now()}
}

func (s *startTracker) observe(obj client.Object, at time.Time) {
	t, ok := obj.(*ecsv1alpha1.Task)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tt := s.tasks[t.Name]
	if tt == nil {
		return
	}
	tt.uid = string(t.UID)
	if tt.placed.IsZero() && t.Spec.ContainerInstance != "" {
		tt.placed = at
	}
	if tt.running.IsZero() && t.Status.LastStatus == ecsv1alpha1.TaskRunning {
		tt.running = at
	}
}

// wait waits until every named task was seen RUNNING.
func (s *startTracker) wait(ctx context.Context, names []string, timeout time.Duration, agent *child) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		s.mu.Lock()
		for _, n := range names {
			if t := s.tasks[n]; t == nil || t.running.IsZero() {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if err := agent.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %d of %d tasks never seen RUNNING (agent log: %s)", timeout, missing, len(names), agent.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// agentMarks are the agent's own timestamps of a task.
type agentMarks struct {
	// pending is the agent's first transition of the task (it has seen it).
	pending time.Time
	// started is the last "started container" (containerd's task start returned).
	started time.Time
}

// parseAgentLog reads the agent's debug log (JSON lines, RFC 3339 nano timestamps)
// and returns the marks of every task by name and by UID.
func parseAgentLog(path string) (map[string]agentMarks, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	marks := map[string]agentMarks{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			TS        string `json:"ts"`
			Msg       string `json:"msg"`
			Task      string `json:"task"`
			TaskUID   string `json:"taskUID"`
			Status    string `json:"lastStatus"`
			Container string `json:"container"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || (line.Task == "" && line.TaskUID == "") {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, line.TS)
		if err != nil {
			continue
		}
		for _, key := range []string{taskName(line.Task), line.TaskUID} {
			if key == "" {
				continue
			}
			m := marks[key]
			switch {
			case line.Msg == "task status" && line.Status == "PENDING" && m.pending.IsZero():
				m.pending = ts
			case line.Msg == "started container" && line.Container != "" && ts.After(m.started):
				m.started = ts
			}
			marks[key] = m
		}
	}
	return marks, sc.Err()
}

// taskName is the name part of "namespace/name".
func taskName(nsName string) string {
	if i := strings.LastIndexByte(nsName, '/'); i >= 0 {
		return nsName[i+1:]
	}
	return nsName
}

// stopTasks stops the named tasks as StopTask does and waits until they are STOPPED,
// then stops the agent.
func (cl *ctrLab) stopTasks(ctx context.Context, names []string, agent *child) error {
	for _, name := range names {
		t := &ecsv1alpha1.Task{}
		if err := cl.c.Get(ctx, client.ObjectKey{Namespace: benchNamespace, Name: name}, t); err != nil {
			return err
		}
		patch := client.MergeFrom(t.DeepCopy())
		t.Spec.DesiredStatus, t.Spec.StopReason = ecsv1alpha1.DesiredStopped, "benchmark done"
		if err := cl.c.Patch(ctx, t, patch); err != nil {
			return err
		}
	}
	err := cl.poll(ctx, 2*time.Minute, 200*time.Millisecond, "the latency tasks to stop", func() (bool, string, error) {
		var list ecsv1alpha1.TaskList
		if err := cl.c.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
			return false, "", err
		}
		alive := 0
		for _, t := range list.Items {
			if t.Status.LastStatus != ecsv1alpha1.TaskStopped {
				alive++
			}
		}
		return alive == 0, fmt.Sprintf("%d tasks not stopped", alive), nil
	})
	if err != nil {
		return err
	}
	return agent.stop(30 * time.Second)
}
